"""Campaign economics, LTV curves, spend coverage and Wilson intervals on hand-worked fixtures."""
from __future__ import annotations

import math
from datetime import date, datetime

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import store
from metrics.economics import (EconomicsParams, acquisition_returns, campaign_economics, campaign_economics_sql,
                               campaign_vs_retention, campaign_vs_retention_page, economics_columns,
                               economics_levels, ltv_curves, ltv_curves_sql, spend_coverage, spend_coverage_summary)
from metrics.filters import Filters
from metrics.stats import SMALL_SAMPLE, wilson_interval
from store.errors import UserInputError
from tests.conftest import generated_store

NaN = float("nan")
END = datetime(2024, 3, 1)  # end of data for censoring: every user observed > 5 weeks

# u1, u2: wechat / spring.  u1 activates after 24 h, buys 100 on day 1 and 50 on day 35 (outside the
#   30-day horizon), is active on day 8 (week 1) and day 29 (week 4).
# u2: buys 80 on day 1 and is refunded -80 on day 4 (net 0, GMV 80, still a paying user).
# u3: douyin / flash, one page view.   u4: no channel -> direct, buys 30 on day 2.
# u5: "WeChat " without campaign -> ('wechat', ''), buys 50 on day 3.
JOURNEYS = {
    "u1": [("page_view", "2024-01-01 10:00", {"channel": "wechat", "campaign": "spring"}),
           ("activate", "2024-01-02 10:00"),
           ("purchase", "2024-01-03 09:00", {"revenue": 100}),
           ("page_view", "2024-01-09 10:00"),
           ("page_view", "2024-01-30 10:00"),
           ("purchase", "2024-02-05 10:00", {"revenue": 50})],
    "u2": [("page_view", "2024-01-01 12:00", {"channel": "wechat", "campaign": "spring"}),
           ("purchase", "2024-01-02 12:00", {"revenue": 80}),
           ("refund", "2024-01-05 12:00", {"revenue": -80})],
    "u3": [("page_view", "2024-01-02 09:00", {"channel": "douyin", "campaign": "flash"})],
    "u4": [("page_view", "2024-01-02 10:00"),
           ("purchase", "2024-01-04 10:00", {"revenue": 30})],
    "u5": [("page_view", "2024-01-02 08:00", {"channel": "WeChat "}),
           ("purchase", "2024-01-05 09:00", {"revenue": 50})],
}

# spend keys are compared trimmed and case-folded: "WeChat"/"wechat " and "Spring"/"spring" are one key
SPEND = pd.DataFrame([
    ("2024-01-01", "WeChat", "Spring", 100.0, 1000, 50),
    ("2024-01-02", "wechat ", "spring", 100.0, 1000, 50),
    ("2024-01-01", "douyin", "flash", 0.0, 100, 0),       # zero spend
    ("2024-01-01", "weibo", "banner", 50.0, None, None),   # spend, no users: unmatched
    ("2024-01-01", "wechat", "", 40.0, None, None),        # channel level
], columns=["date", "channel", "campaign", "spend", "impressions", "clicks"])


@pytest.fixture
def world(con, journeys):
    journeys(JOURNEYS)
    report = store.load_spend(con, SPEND)
    assert report.rejected == 0
    return con


def expected_campaign_frame() -> pd.DataFrame:
    rows = [
        # direct: no spend -> spend, CAC, ROAS NULL; one user, pays 30 on day 2
        dict(channel="direct", campaign="", spend=NaN, impressions=None, clicks=None, ctr=NaN, cpc=NaN,
             new_users=1, cac=NaN, activated=0, activation_rate=0.0, cost_per_activated=NaN,
             retained_w1=0, retention_w1=0.0, retained_w4=0, retention_w4=0.0, cost_per_retained_w4=NaN,
             paying=1, paying_rate=1.0, cost_per_paying=NaN, revenue=30.0, arpu=30.0, arppu=30.0, gmv=30.0,
             revenue_h=30.0, roas_h=NaN, roi_h=NaN, period_revenue=30.0, period_roas=NaN, payback_day=None),
        # douyin/flash: spend 0 -> CAC 0, ROAS/ROI NULL; CTR 0/100 = 0, CPC 0/0 NULL; LTV_0 = 0 >= 0 -> day 0
        dict(channel="douyin", campaign="flash", spend=0.0, impressions=100, clicks=0, ctr=0.0, cpc=NaN,
             new_users=1, cac=0.0, activated=0, activation_rate=0.0, cost_per_activated=NaN,
             retained_w1=0, retention_w1=0.0, retained_w4=0, retention_w4=0.0, cost_per_retained_w4=NaN,
             paying=0, paying_rate=0.0, cost_per_paying=NaN, revenue=0.0, arpu=0.0, arppu=NaN, gmv=0.0,
             revenue_h=0.0, roas_h=NaN, roi_h=NaN, period_revenue=0.0, period_roas=NaN, payback_day=0),
        # wechat/'' (channel level): spend 40, u5 pays 50 on day 3 -> ROAS 1.25, ROI 0.25, payback day 3
        dict(channel="wechat", campaign="", spend=40.0, impressions=None, clicks=None, ctr=NaN, cpc=NaN,
             new_users=1, cac=40.0, activated=0, activation_rate=0.0, cost_per_activated=NaN,
             retained_w1=0, retention_w1=0.0, retained_w4=0, retention_w4=0.0, cost_per_retained_w4=NaN,
             paying=1, paying_rate=1.0, cost_per_paying=40.0, revenue=50.0, arpu=50.0, arppu=50.0, gmv=50.0,
             revenue_h=50.0, roas_h=1.25, roi_h=0.25, period_revenue=50.0, period_roas=1.25, payback_day=3),
        # wechat/spring: spend 200 / 2 users = CAC 100; CTR 100/2000; CPC 200/100 = 2;
        # activated u1 -> 1/2, cost 200; week 1 and week 4: u1 only -> 0.5, cost per w4-retained = 100/0.5;
        # paying u1, u2 -> 2/2, cost 100; revenue 100+50+80-80 = 150, ARPU = ARPPU = 75, GMV 100+50+80 = 230;
        # within 30 days: 100 + 80 - 80 = 100 -> ROAS 0.5, ROI -0.5; LTV peaks at 90 (day 1) < CAC 100 -> never
        dict(channel="wechat", campaign="spring", spend=200.0, impressions=2000, clicks=100, ctr=0.05, cpc=2.0,
             new_users=2, cac=100.0, activated=1, activation_rate=0.5, cost_per_activated=200.0,
             retained_w1=1, retention_w1=0.5, retained_w4=1, retention_w4=0.5, cost_per_retained_w4=200.0,
             paying=2, paying_rate=1.0, cost_per_paying=100.0, revenue=150.0, arpu=75.0, arppu=75.0, gmv=230.0,
             revenue_h=100.0, roas_h=0.5, roi_h=-0.5, period_revenue=150.0, period_roas=0.75, payback_day=None),
        # weibo/banner: spend 50, no users -> CAC NULL (not inf), revenue 0 -> ROAS 0, ROI -1
        dict(channel="weibo", campaign="banner", spend=50.0, impressions=None, clicks=None, ctr=NaN, cpc=NaN,
             new_users=0, cac=NaN, activated=0, activation_rate=NaN, cost_per_activated=NaN,
             retained_w1=0, retention_w1=NaN, retained_w4=0, retention_w4=NaN, cost_per_retained_w4=NaN,
             paying=0, paying_rate=NaN, cost_per_paying=NaN, revenue=0.0, arpu=NaN, arppu=NaN, gmv=0.0,
             revenue_h=0.0, roas_h=0.0, roi_h=-1.0, period_revenue=0.0, period_roas=0.0, payback_day=None),
    ]
    df = pd.DataFrame(rows)
    for col in ("impressions", "clicks", "payback_day"):
        df[col] = pd.array(df[col].tolist(), dtype="Int64")
    return df


def test_campaign_economics_whole_frame(world):
    got = campaign_economics(world, EconomicsParams(data_end=END))
    expected = expected_campaign_frame()
    assert list(got.columns) == economics_columns(EconomicsParams()) == list(expected.columns)
    assert_frame_equal(got, expected, check_dtype=False)


def test_data_end_defaults_to_last_event(world):
    # the last event is 5 Feb 10:00: u1 (1 Jan 10:00) has exactly a whole week 4 (ends 5 Feb 10:00),
    # u2..u5 (1 Jan 12:00 or later) do not -> week-4 retention is 1/1 for spring and NULL elsewhere.
    expected = expected_campaign_frame()
    expected["retained_w4"] = [0, 0, 0, 1, 0]
    expected["retention_w4"] = [NaN, NaN, NaN, 1.0, NaN]
    expected["cost_per_retained_w4"] = [NaN, NaN, NaN, 100.0, NaN]   # CAC 100 / 1.0
    # the LTV curve is censored too: day 34 is observed for u1 only (u2 is 2 h short), whose 100 reaches
    # CAC 100 -> payback day 34 for spring
    expected["payback_day"] = pd.array([None, 0, 3, 34, None], dtype="Int64")
    assert_frame_equal(campaign_economics(world), expected, check_dtype=False)


def test_channel_level_adds_channel_rows_to_campaigns(world):
    got = campaign_economics(world, EconomicsParams(level="channel", data_end=END))
    cols = ["channel", "spend", "new_users", "cac", "revenue", "revenue_h", "roas_h", "retention_w1"]
    expected = pd.DataFrame({
        "channel": ["direct", "douyin", "wechat", "weibo"],
        "spend": [NaN, 0.0, 240.0, 50.0],            # wechat: 200 (spring) + 40 (channel level)
        "new_users": [1, 1, 3, 0],
        "cac": [NaN, 0.0, 80.0, NaN],                 # 240 / 3
        "revenue": [30.0, 0.0, 200.0, 0.0],           # 150 + 50
        "revenue_h": [30.0, 0.0, 150.0, 0.0],         # 100 + 50
        "roas_h": [NaN, NaN, 150 / 240, 0.0],
        "retention_w1": [0.0, 0.0, 1 / 3, NaN],
    })
    assert_frame_equal(got[cols], expected, check_dtype=False)
    assert "campaign" not in got.columns


def test_period_revenue_counts_only_the_range(world):
    # range 1-3 Jan: users u1..u5 all acquired; spend rows all inside. Revenue before 4 Jan 00:00:
    # spring: 100 (u1, 3 Jan) + 80 (u2, 2 Jan) = 180 -> period ROAS 180 / 200 = 0.9; the refund (5 Jan) is out.
    # u4 (4 Jan) and u5 (5 Jan) earn nothing inside the range; revenue_h is unchanged.
    f = Filters(start=date(2024, 1, 1), end=date(2024, 1, 3))
    got = campaign_economics(world, EconomicsParams(filters=f, data_end=END))
    got = got.set_index(["channel", "campaign"])
    assert got.loc[("wechat", "spring"), "period_revenue"] == 180.0
    assert got.loc[("wechat", "spring"), "period_roas"] == pytest.approx(0.9)
    assert got.loc[("wechat", "spring"), "revenue_h"] == 100.0
    assert got.loc[("wechat", ""), "period_revenue"] == 0.0
    assert got.loc[("direct", ""), "period_revenue"] == 0.0


def test_date_range_selects_users_and_spend(world):
    # only 2 Jan: users first seen that day are u3, u4, u5; spend rows dated 2 Jan: spring 100 only
    f = Filters(start=date(2024, 1, 2), end=date(2024, 1, 2))
    got = campaign_economics(world, EconomicsParams(filters=f, data_end=END))
    expected = pd.DataFrame({
        "channel": ["direct", "douyin", "wechat", "wechat"],
        "campaign": ["", "flash", "", "spring"],
        "spend": [NaN, NaN, NaN, 100.0],
        "new_users": [1, 1, 1, 0],
        "cac": [NaN, NaN, NaN, NaN],
    })
    assert_frame_equal(got[expected.columns], expected, check_dtype=False)


def test_channel_filter_selects_first_touch_users_and_spend(world):
    f = Filters(channels=("WeChat",))
    got = campaign_economics(world, EconomicsParams(filters=f, data_end=END))
    assert got[["channel", "campaign", "spend", "new_users"]].values.tolist() == [
        ["wechat", "", 40.0, 1], ["wechat", "spring", 200.0, 2]]


def test_retention_is_censored_at_the_end_of_the_data(world):
    # data end 16 Jan 00:00: u1 (1 Jan 10:00) and u2 (1 Jan 12:00) have a whole week 1 (ends 15 Jan);
    # u5 (2 Jan 08:00) does not (16 Jan 08:00) and no one has a whole week 4 -> NULL, not 0.
    got = campaign_economics(world, EconomicsParams(data_end=datetime(2024, 1, 16)))
    got = got.set_index(["channel", "campaign"])
    assert got.loc[("wechat", "spring"), "retention_w1"] == 0.5
    assert math.isnan(got.loc[("wechat", ""), "retention_w1"])
    assert got["retention_w4"].isna().all()
    assert (got["retained_w4"] == 0).all()


def test_activation_window_is_half_open(con, journeys):
    # activation exactly 7 days after first_seen is outside [first_seen, first_seen + 7 d)
    journeys({"a": [("page_view", "2024-01-01 00:00"), ("activate", "2024-01-07 23:59")],
              "b": [("page_view", "2024-01-01 00:00"), ("activate", "2024-01-08 00:00")]})
    got = campaign_economics(con, EconomicsParams(data_end=END))
    assert got[["channel", "new_users", "activated"]].values.tolist() == [["direct", 2, 1]]


def test_currency_is_converted_to_base(con, journeys):
    journeys({"u3": JOURNEYS["u3"]})
    store.set_currency_rate(con, "USD", 7.0)
    store.load_spend(con, pd.DataFrame({"date": ["2024-01-01", "2024-01-02"], "channel": ["douyin", "Douyin"],
                                        "campaign": ["flash", "FLASH"], "spend": [10.0, 30.0],
                                        "currency": ["USD", "CNY"]}))
    got = campaign_economics(con, EconomicsParams(data_end=END))
    # 10 USD x 7 + 30 CNY = 100 base; one user -> CAC 100
    assert got[["channel", "campaign", "spend", "new_users", "cac"]].values.tolist() == [
        ["douyin", "flash", 100.0, 1, 100.0]]


def test_ltv_curve_censoring_and_payback(world):
    # data end 5 Jan 11:00: u1 observed 4 d 1 h -> days 0..3; u2 observed 3 d 23 h -> days 0..2.
    # day 1: u1 +100, u2 +80 -> (180) / 2 = 90; day 3: u1 only -> 100 / 1; days 4, 5: nobody -> NULL.
    # CAC 200 / 2 = 100 -> payback on day 3 (100 >= 100).
    p = EconomicsParams(ltv_days=5, data_end=datetime(2024, 1, 5, 11))
    got = ltv_curves(world, p)
    spring = got[(got["channel"] == "wechat") & (got["campaign"] == "spring")].reset_index(drop=True)
    expected = pd.DataFrame({
        "channel": ["wechat"] * 6, "campaign": ["spring"] * 6, "day": [0, 1, 2, 3, 4, 5],
        "users": [2, 2, 2, 1, 0, 0], "ltv": [0.0, 90.0, 90.0, 100.0, NaN, NaN], "cac": [100.0] * 6,
        "payback_day": pd.array([3] * 6, dtype="Int64"),
    })
    assert_frame_equal(spring, expected, check_dtype=False)


def test_ltv_curve_payback_never_reached(world):
    got = ltv_curves(world, EconomicsParams(data_end=END))
    spring = got[(got["channel"] == "wechat") & (got["campaign"] == "spring")]
    assert len(spring) == 91 and spring["day"].tolist() == list(range(91))
    # LTV: 0 on day 0, 90 on days 1-3, 50 from the refund on day 4, 75 after the day-35 purchase; CAC 100.
    # Data end 1 Mar 00:00: u1 and u2 are observed 59.5+ days -> days 0..58; day 59 on is censored (NULL).
    assert spring["ltv"].iloc[[0, 1, 3, 4, 34, 35, 58]].tolist() == [0.0, 90.0, 90.0, 50.0, 50.0, 75.0, 75.0]
    assert spring["ltv"].iloc[59:].isna().all() and (spring["users"].iloc[59:] == 0).all()
    assert spring["payback_day"].isna().all()
    direct = got[got["channel"] == "direct"]
    assert direct["cac"].isna().all() and direct["payback_day"].isna().all()
    # channel level: one curve per channel, no campaign column
    by_channel = ltv_curves(world, EconomicsParams(level="channel", ltv_days=3, data_end=END))
    assert list(by_channel.columns) == ["channel", "day", "users", "ltv", "cac", "payback_day"]
    wechat = by_channel[by_channel["channel"] == "wechat"]
    # 3 users; day 1: 100 + 80 = 180 / 3; day 3: + 50 = 230 / 3 = 76.67 < CAC 240 / 3 = 80 -> not reached
    assert wechat["ltv"].tolist() == pytest.approx([0.0, 60.0, 60.0, 230 / 3])
    assert wechat["cac"].tolist() == [80.0] * 4 and wechat["payback_day"].isna().all()


def test_spend_coverage_lists_unmatched_keys(world):
    got = spend_coverage(world)
    expected = pd.DataFrame({
        "channel": ["douyin", "wechat", "wechat", "weibo"],
        "campaign": ["flash", "", "spring", "banner"],
        "spend": [0.0, 40.0, 200.0, 50.0],
        "matched": [True, True, True, False],   # "WeChat"/"wechat " matched; weibo/banner never seen
    })
    assert_frame_equal(got, expected, check_dtype=False)
    summary = spend_coverage_summary(world)
    assert_frame_equal(summary, pd.DataFrame({"total_spend": [290.0], "matched_spend": [240.0],
                                              "matched_share": [240 / 290], "unmatched_keys": [1]}),
                       check_dtype=False)
    assert summary["unmatched_keys"].dtype.kind == "i"


def test_campaign_vs_retention_has_intervals_and_small_sample_flags(world):
    got = campaign_vs_retention(world, EconomicsParams(data_end=END))
    spring = got[(got["channel"] == "wechat") & (got["campaign"] == "spring")].iloc[0]
    low, high = wilson_interval(1, 2)
    assert (spring["activation_rate"], spring["activation_rate_low"], spring["activation_rate_high"]) == (
        0.5, pytest.approx(low), pytest.approx(high))
    assert spring["paying_rate_low"] == pytest.approx(wilson_interval(2, 2)[0]) and spring["paying_rate_high"] == 1.0
    # 30-day LTV = revenue within 30 days per user observed 30 days = 100 / 2; ROAS_30 = 100 / 200
    assert spring["ltv_30"] == 50.0 and spring["roas_30"] == 0.5
    assert bool(spring["small_sample"]) is True
    assert got["small_sample"].all()
    banner = got[got["campaign"] == "banner"].iloc[0]
    assert math.isnan(banner["activation_rate_low"]) and math.isnan(banner["activation_rate_high"])
    # no survey: each campaign's score comes from behaviour proxies alone (data end 5 Feb 10:00, reference
    # price 500, time ceiling 168 h; learning, emotion, safety missing: no sign-ups, no survey).
    # spring (u1, u2): value (activation 5 + week-1 5 + paying 10)/3 = 20/3; cost: money ARPPU 75 -> 1.5,
    #   time 24 h -> 10/7, trust mean(sign-up drop 1, payment drop 0) -> 5: 37/14 -> 20/3 - 37/14 = 169/42.
    # wechat '' (u5): value (0 + 0 + 10)/3; cost: money 50 -> 1.0, trust: sign-up drop 1 alone (nobody
    #   activated) -> 10; time missing -> 5.5 -> -13/6.  direct (u4): money 30 -> 0.6, trust 10 -> 10/3 - 5.3.
    # douyin/flash (u3): value 0, cost trust 10 alone -> -10.  weibo/banner: no users -> no score.
    scores = got.set_index(["channel", "campaign"])["value_cost_score"]
    assert scores[("wechat", "spring")] == pytest.approx(169 / 42)
    assert scores[("wechat", "")] == pytest.approx(-13 / 6)
    assert scores[("direct", "")] == pytest.approx(10 / 3 - 5.3)
    assert scores[("douyin", "flash")] == pytest.approx(-10.0)
    assert math.isnan(banner["value_cost_score"])
    for col in ("spend", "impressions", "clicks", "ctr", "new_users", "cac", "retention_w4_high",
                "payback_day", "value_cost_score"):
        assert col in got.columns


def test_campaign_vs_retention_page_is_the_table_and_the_economics(world):
    # One computation for the page: the hand-checked economics frame and the table above, unchanged; with
    # weeks that leave out 1 or 4 (other week columns than the table's) the economics are computed apart.
    got = campaign_vs_retention_page(world, EconomicsParams(data_end=END))
    assert_frame_equal(got["economics"], expected_campaign_frame(), check_dtype=False)
    assert_frame_equal(got["table"], campaign_vs_retention(world, EconomicsParams(data_end=END)))
    for p in (EconomicsParams(data_end=END, level="channel"), EconomicsParams(data_end=END, retention_weeks=(2,)),
              EconomicsParams(data_end=END, ltv_days=5)):
        got = campaign_vs_retention_page(world, p)
        assert_frame_equal(got["economics"], campaign_economics(world, p))
        assert_frame_equal(got["table"], campaign_vs_retention(world, p))


def test_sql_builder_is_pure_and_bound():
    sql, params = campaign_economics_sql(EconomicsParams(filters=Filters(channels=("wechat",))))
    assert "wechat" not in sql and "wechat" in params
    assert "-- acquired" in sql and "NULLIF" in sql


@pytest.mark.parametrize("kwargs, message", [
    ({"level": "country"}, "Level"),
    ({"horizon_days": 0}, "Horizon days"),
    ({"retention_weeks": ()}, "Retention weeks"),
    ({"timezone": "Mars/Base"}, "time zone"),
    ({"filters": {"start": "2024-01-01"}}, "Filters"),
    ({"filters": Filters(timezone="Asia/Shanghai")}, "same time zone"),
])
def test_bad_params_are_user_errors(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        EconomicsParams(**kwargs)


# ---------------------------------------------------------------------------------------------
# Wilson intervals
# ---------------------------------------------------------------------------------------------

def test_wilson_known_value_and_extremes():
    low, high = wilson_interval(8, 10)
    assert (round(low, 4), round(high, 4)) == (0.4902, 0.9433)
    low, high = wilson_interval(0, 10)
    # at 0 %: low is exactly 0, high = z²/(n + z²) = 3.8415 / 13.8415
    assert low == 0.0 and high == pytest.approx(1.959964 ** 2 / (10 + 1.959964 ** 2))
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(10 / (10 + 1.959964 ** 2))
    assert all(math.isnan(v) for v in wilson_interval(0, 0))


def test_wilson_vectorised_over_series():
    low, high = wilson_interval(pd.Series([8, 0, 5], index=["a", "b", "c"]), pd.Series([10, 0, 5], index=["a", "b", "c"]))
    assert list(low.index) == ["a", "b", "c"]
    assert low.round(4).tolist()[0] == 0.4902 and math.isnan(low["b"]) and high["c"] == 1.0
    arr_low, arr_high = wilson_interval(np.array([1, 2]), np.array([2, 4]))
    assert arr_low.tolist() == pytest.approx([wilson_interval(1, 2)[0], wilson_interval(2, 4)[0]])
    assert arr_high.tolist() == pytest.approx([wilson_interval(1, 2)[1], wilson_interval(2, 4)[1]])
    assert SMALL_SAMPLE == 30


def test_labels_are_complete_and_documented():
    from pathlib import Path

    from metrics import economics, referral, saturation, value_cost

    headings = [line for line in (Path(__file__).resolve().parent.parent / "docs" / "metrics.md")
                .read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    for module in (economics, saturation, referral, value_cost):
        for key, label in module.LABELS.items():
            assert set(label) == {"en", "zh", "help_en", "help_zh"} and all(label.values()), (module, key)
            assert any(label["en"] in h for h in headings), f"{module.__name__}: {label['en']!r} has no heading"
    shown = set(economics_columns(EconomicsParams())) - {"channel", "campaign"}
    assert shown <= set(economics.LABELS), shown - set(economics.LABELS)


# ---------------------------------------------------------------------------------------------
# A second, straight-line implementation in pandas on a small generated data set
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    con = generated_store(tmp_path_factory, "econ_sample", seed=11)
    yield con
    con.close()


def pandas_economics(con, horizon_days=30) -> pd.DataFrame:
    """campaign_economics re-done in pandas, one user at a time in vectorised form."""
    ev = con.execute("""SELECT e.user_key, e.event_time, e.revenue, sm.stage FROM events e
                        LEFT JOIN stage_map sm USING (event_name)""").df()
    users = con.execute("SELECT user_key, first_seen, channel, coalesce(campaign, '') AS campaign FROM users").df()
    spend = con.execute("SELECT channel, campaign, sum(spend) AS spend FROM spend GROUP BY ALL").df()
    data_end = ev["event_time"].max()
    ev = ev.merge(users, on="user_key")
    age = (ev["event_time"] - ev["first_seen"]).dt.total_seconds()
    day = 86_400
    ev = ev.assign(
        activated=(ev["stage"] == "activation") & (age < 7 * day),
        w1=(age >= 7 * day) & (age < 14 * day), w4=(age >= 28 * day) & (age < 35 * day),
        paying=ev["revenue"] > 0, gmv=ev["revenue"].where(ev["revenue"] > 0),
        revenue_h=ev["revenue"].where(age < horizon_days * day))
    per_user = ev.groupby("user_key").agg(activated=("activated", "max"), w1=("w1", "max"), w4=("w4", "max"),
                                          paying=("paying", "max"), revenue=("revenue", "sum"),
                                          gmv=("gmv", "sum"), revenue_h=("revenue_h", "sum")).reset_index()
    per_user = users.merge(per_user, on="user_key")
    observed = (data_end - per_user["first_seen"]).dt.total_seconds()
    per_user["e1"], per_user["e4"] = observed >= 14 * day, observed >= 35 * day
    per_user["r1"], per_user["r4"] = per_user["w1"] & per_user["e1"], per_user["w4"] & per_user["e4"]
    cohort = per_user.groupby(["channel", "campaign"]).agg(
        new_users=("user_key", "size"), activated=("activated", "sum"), retained_w1=("r1", "sum"),
        eligible_w1=("e1", "sum"), retained_w4=("r4", "sum"), eligible_w4=("e4", "sum"), paying=("paying", "sum"),
        revenue=("revenue", "sum"), gmv=("gmv", "sum"), revenue_h=("revenue_h", "sum")).reset_index()
    out = cohort.merge(spend, on=["channel", "campaign"], how="outer").sort_values(["channel", "campaign"])
    out = out.fillna({c: 0 for c in cohort.columns if c not in ("channel", "campaign")})
    out["cac"] = out["spend"] / out["new_users"].replace(0, np.nan)
    out["activation_rate"] = out["activated"] / out["new_users"].replace(0, np.nan)
    out["retention_w1"] = out["retained_w1"] / out["eligible_w1"].replace(0, np.nan)
    out["retention_w4"] = out["retained_w4"] / out["eligible_w4"].replace(0, np.nan)
    out["paying_rate"] = out["paying"] / out["new_users"].replace(0, np.nan)
    out["arppu"] = out["revenue"] / out["paying"].replace(0, np.nan)
    out["roas_h"] = out["revenue_h"] / out["spend"].replace(0, np.nan)
    cols = ["channel", "campaign", "spend", "new_users", "cac", "activated", "activation_rate", "retained_w1",
            "retention_w1", "retained_w4", "retention_w4", "paying", "paying_rate", "revenue", "arppu", "gmv",
            "revenue_h", "roas_h"]
    return out[cols].reset_index(drop=True)


def test_economics_match_a_pandas_reimplementation(generated):
    got = campaign_economics(generated)
    expected = pandas_economics(generated)
    assert len(got) >= 15 and got["new_users"].sum() > 500
    assert_frame_equal(got[expected.columns].reset_index(drop=True), expected, check_dtype=False, rtol=1e-9)


def test_ltv_curve_matches_a_pandas_reimplementation(generated):
    got = ltv_curves(generated, EconomicsParams(ltv_days=60))
    ev = generated.execute("SELECT user_key, event_time, revenue FROM events WHERE revenue IS NOT NULL").df()
    users = generated.execute("SELECT user_key, first_seen, channel, coalesce(campaign, '') AS campaign FROM users").df()
    data_end = generated.execute("SELECT max(event_time) FROM events").fetchall()[0][0]
    users["last_day"] = ((pd.Timestamp(data_end) - users["first_seen"]).dt.total_seconds() // 86_400 - 1).astype(int)
    ev = ev.merge(users, on="user_key")
    ev["day"] = ((ev["event_time"] - ev["first_seen"]).dt.total_seconds() // 86_400).astype(int)
    rows = []
    for k in (0, 6, 29, 60):
        n = users[users["last_day"] >= k].groupby(["channel", "campaign"]).size().rename("users")
        r = ev[(ev["last_day"] >= k) & (ev["day"] <= k)].groupby(["channel", "campaign"])["revenue"].sum()
        part = pd.concat([n, r], axis=1).fillna({"revenue": 0.0}).reset_index()
        rows.append(part.assign(day=k, ltv=part["revenue"] / part["users"]))
    expected = pd.concat(rows).dropna(subset=["users"]).sort_values(["channel", "campaign", "day"])
    mine = got[got["day"].isin([0, 6, 29, 60]) & (got["users"] > 0)].sort_values(["channel", "campaign", "day"])
    assert len(mine) > 40
    assert_frame_equal(mine[["channel", "campaign", "day", "users", "ltv"]].reset_index(drop=True),
                       expected[["channel", "campaign", "day", "users", "ltv"]].reset_index(drop=True),
                       check_dtype=False, rtol=1e-9)


def test_segment_filter_keeps_matching_users_and_events(con, journeys):
    # i1 uses ios (its purchase too), a1 android; i2 has one ios event and an android purchase.
    journeys({
        "i1": [("page_view", "2024-01-01 10:00", {"channel": "wechat", "campaign": "spring", "platform": "ios"}),
               ("purchase", "2024-01-02 10:00", {"revenue": 10, "platform": "ios"})],
        "a1": [("page_view", "2024-01-01 10:00", {"channel": "wechat", "campaign": "spring", "platform": "android"}),
               ("purchase", "2024-01-02 10:00", {"revenue": 99, "platform": "android"})],
        "i2": [("page_view", "2024-01-01 11:00", {"channel": "wechat", "campaign": "spring", "platform": "ios"}),
               ("purchase", "2024-01-03 10:00", {"revenue": 7, "platform": "android"})],
    })
    f = Filters(segment={"platform": "ios"})
    got = campaign_economics(con, EconomicsParams(filters=f, data_end=END)).iloc[0]
    # users with an ios event: i1, i2; revenue from ios events only: 10 (i2's android purchase is left out)
    assert (got["new_users"], got["paying"], got["revenue"], got["arppu"]) == (2, 1, 10.0, 10.0)


def test_campaign_filter_and_channel_level_view(world):
    # a campaign filter keeps spring's users and spend; the channel-level wechat spend row has no campaign
    got = campaign_economics(world, EconomicsParams(filters=Filters(campaigns=("Spring",)), data_end=END))
    assert got[["channel", "campaign", "spend", "new_users", "cac"]].values.tolist() == [
        ["wechat", "spring", 200.0, 2, 100.0]]
    view = campaign_vs_retention(world, EconomicsParams(level="channel", data_end=END))
    assert view["channel"].tolist() == ["direct", "douyin", "wechat", "weibo"] and "campaign" not in view.columns
    wechat = view[view["channel"] == "wechat"].iloc[0]
    # 3 users: activation 1/3 with its Wilson bounds; 30-day LTV (100 + 80 - 80 + 50) / 3 = 50; ROAS 150 / 240
    assert (wechat["new_users"], wechat["cac"], wechat["ltv_30"], wechat["roas_30"]) == (
        3, 80.0, pytest.approx(50.0), pytest.approx(150 / 240))
    assert (wechat["activation_rate_low"], wechat["activation_rate_high"]) == tuple(
        pytest.approx(v) for v in wilson_interval(1, 3))
    # the channel's value - cost score: 50/9 - 163/63 (see test_value_cost)
    assert wechat["value_cost_score"] == pytest.approx(187 / 63)


@pytest.mark.parametrize("kwargs", [
    {}, {"data_end": END}, {"horizon_days": 7, "ltv_days": 20, "retention_weeks": (2,)},
    {"filters": Filters(start=date(2024, 1, 1), end=date(2024, 1, 3))},
    {"filters": Filters(channels=("wechat",))},
    {"filters": Filters(start=date(2030, 1, 1), end=date(2030, 1, 2))},          # nobody acquired, no spend
], ids=["defaults", "data_end", "options", "range", "channel", "empty"])
def test_economics_levels_equal_the_two_calls(world, kwargs):
    got = economics_levels(world, EconomicsParams(**kwargs))
    assert set(got) == {"campaign", "channel"}
    for level in ("campaign", "channel"):
        assert_frame_equal(got[level], campaign_economics(world, EconomicsParams(level=level, **kwargs)))
    if kwargs == {"data_end": END}:
        assert_frame_equal(got["campaign"], expected_campaign_frame(), check_dtype=False)
    # the temporary tables are gone
    assert not world.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_econ_%'").fetchone()[0]


def test_economics_levels_on_a_generated_log(generated):
    # a few thousand users over 9 channels and their campaigns, payback days included
    got = economics_levels(generated)
    for level in ("campaign", "channel"):
        expected = campaign_economics(generated, EconomicsParams(level=level))
        assert len(expected) > 5 and expected["payback_day"].notna().any()
        assert_frame_equal(got[level], expected)


def test_without_payback_only_payback_day_is_empty(generated):
    # the Overview's KPIs skip the LTV-curve query: every other column must stay exactly as it is
    for level in ("campaign", "channel"):
        full = campaign_economics(generated, EconomicsParams(level=level))
        lean = campaign_economics(generated, EconomicsParams(level=level), payback=False)
        assert full["payback_day"].notna().any() and lean["payback_day"].isna().all()
        assert list(lean.columns) == list(full.columns) and str(lean["payback_day"].dtype) == "Int64"
        assert_frame_equal(lean.drop(columns="payback_day"), full.drop(columns="payback_day"))


RETURNS = ["spend", "new_users", "cac", "revenue_h", "roas_h"]


@pytest.mark.parametrize("kwargs", [
    {}, {"data_end": END}, {"horizon_days": 3}, {"filters": Filters(start=date(2024, 1, 2), end=date(2024, 1, 2))},
    {"filters": Filters(channels=("wechat",))}, {"filters": Filters(segment={"platform": "ios"})},
    {"filters": Filters(start=date(2030, 1, 1), end=date(2030, 1, 2))},
], ids=["defaults", "data_end", "horizon", "range", "channel", "segment", "empty"])
def test_acquisition_returns_are_campaign_economics_columns(world, kwargs):
    for level in ("campaign", "channel"):
        p = EconomicsParams(level=level, **kwargs)
        full = campaign_economics(world, p, payback=False)
        assert_frame_equal(acquisition_returns(world, p), full[list(p.keys) + RETURNS])


def test_acquisition_returns_by_hand(world):
    # new users per channel: wechat u1, u2, u5 (3), douyin u3, direct u4; revenue within 30 days of first_seen:
    # wechat 100 (u1; 50 on day 35 is outside) + 80 - 80 (u2) + 50 (u5) = 150, direct 30, douyin 0
    got = acquisition_returns(world, EconomicsParams(level="channel")).set_index("channel")
    assert got.loc["wechat", "new_users"] == 3 and got.loc["wechat", "revenue_h"] == 150
    assert got.loc["direct", "revenue_h"] == 30 and got.loc["douyin", "revenue_h"] == 0
    assert got.loc["wechat", "roas_h"] == pytest.approx(150 / got.loc["wechat", "spend"])


def test_acquisition_returns_on_a_generated_log(generated):
    for level in ("campaign", "channel"):
        p = EconomicsParams(level=level)
        expected = campaign_economics(generated, p, payback=False)[list(p.keys) + RETURNS]
        assert len(expected) > 5 and (expected["revenue_h"] > 0).sum() > 3
        assert_frame_equal(acquisition_returns(generated, p), expected)


# ---------------------------------------------------------------------------------------------
# The per-user rollups (user_events, user_days, revenue_events) in place of the join to every event
# ---------------------------------------------------------------------------------------------

ROLLUP_CASES = [
    {},
    {"level": "channel", "horizon_days": 7, "activation_days": 1, "retention_weeks": (2, 3, 8)},
    {"retention_weeks": (1,), "activation_days": 30,
     "filters": Filters(start=date(2026, 7, 20), end=date(2026, 9, 10), timezone="Asia/Shanghai"),
     "timezone": "Asia/Shanghai"},
    {"filters": Filters(channels=("douyin", "baidu", "referral"))},
    {"level": "channel", "filters": Filters(campaigns=("douyin_flash_sale", "invite_friend"))},
    {"data_end": datetime(2026, 9, 1), "horizon_days": 90, "retention_weeks": (4, 12)},
]


def _through_events(monkeypatch) -> None:
    import metrics.economics as economics
    monkeypatch.setattr(economics, "rollups_ok", lambda filters: False)


@pytest.mark.parametrize("kwargs", ROLLUP_CASES)
def test_rollups_give_the_economics_of_the_event_join(generated, monkeypatch, kwargs):
    p = EconomicsParams(**kwargs)
    # this is the rollup path: the days of life, and the events with revenue for the money and the LTV curve
    assert "user_days" in campaign_economics_sql(p)[0] and "revenue_events" in campaign_economics_sql(p)[0]
    assert "revenue_events" in ltv_curves_sql(p)[0]
    got, levels, curve = campaign_economics(generated, p), economics_levels(generated, p), ltv_curves(generated, p)
    assert got["new_users"].sum() > 50 and got["activated"].sum() > 0 and got["paying"].sum() > 0
    assert sum(got[f"retained_w{k}"].sum() for k in p.retention_weeks) > 0
    assert (got["revenue"] != 0).sum() >= 2 and (curve["ltv"] > 0).sum() > 10
    _through_events(monkeypatch)
    assert "user_days" not in campaign_economics_sql(p)[0] and "revenue_events" not in campaign_economics_sql(p)[0]
    assert "revenue_events" not in ltv_curves_sql(p)[0]
    assert_frame_equal(got, campaign_economics(generated, p))
    assert_frame_equal(curve, ltv_curves(generated, p))
    expected = economics_levels(generated, p)
    for level in ("campaign", "channel"):
        assert_frame_equal(levels[level], expected[level])


def test_rollups_at_the_edges_of_the_windows(con, journeys, monkeypatch):
    """Events exactly at and one second short of the activation, retention-week and horizon bounds, and a
    first_seen that a later load moves earlier (every day of the user moves with it)."""
    journeys({
        # activated 1 s inside 7 days; day 7 exactly (week 1); a purchase exactly 30 days on: outside the 30-day
        # horizon, inside week 4 (days 28-34)
        "a": [("page_view", "2024-01-01 00:00:00", {"channel": "ads"}), ("activate", "2024-01-07 23:59:59"),
              ("page_view", "2024-01-08 00:00:00"), ("purchase", "2024-01-31 00:00:00", {"revenue": 5})],
        # activation exactly 7 days on (not activated); day 13 (week 1); day 28 exactly (week 4); a purchase 1 s
        # inside the horizon and its refund 31 days on (net 0, GMV 7, revenue_h 7)
        "b": [("page_view", "2024-01-01 00:00:00", {"channel": "ads"}), ("activate", "2024-01-08 00:00:00"),
              ("page_view", "2024-01-14 23:59:59"), ("purchase", "2024-01-30 23:59:59", {"revenue": 7}),
              ("page_view", "2024-01-29 00:00:00"), ("refund", "2024-02-01 00:00:00", {"revenue": -7})],
        # 1 s short of day 28: day 27, week 3 (neither week 1 nor week 4)
        "d": [("page_view", "2024-01-01 00:00:00", {"channel": "ads"}), ("page_view", "2024-01-28 23:59:59")],
        # a zero-revenue purchase is not paying
        "c": [("page_view", "2024-01-03 12:00:00", {"channel": "seo"}),
              ("purchase", "2024-01-03 13:00:00", {"revenue": 0})],
    })
    # c's event a week earlier, without a channel: its first_seen moves to 12-27 12:00 (first touch stays seo,
    # the earliest event with a channel), and its 01-03 events to day 7 (week 1)
    store.load_events(con, pd.DataFrame({"user_id": ["c"], "event_name": ["page_view"],
                                         "event_time": ["2023-12-27 12:00:00"]}))
    p = EconomicsParams(data_end=END)
    got = campaign_economics(con, p)
    ads = got[got["channel"] == "ads"].iloc[0]
    assert (ads["new_users"], ads["activated"], ads["retained_w1"], ads["retained_w4"]) == (3, 1, 2, 2)
    assert (ads["paying"], ads["revenue"], ads["gmv"], ads["revenue_h"]) == (2, 5.0, 12.0, 7.0)
    seo = got[got["channel"] == "seo"].iloc[0]
    assert (seo["new_users"], seo["retained_w1"], seo["retained_w4"], seo["paying"]) == (1, 1, 0, 0)
    _through_events(monkeypatch)
    assert_frame_equal(got, campaign_economics(con, p))


@pytest.mark.parametrize("kwargs", [{}, {"level": "channel", "horizon_days": 7, "ltv_days": 30}])
def test_campaigns_page_is_the_economics_and_the_curves(world, generated, kwargs):
    from metrics.economics import campaigns_page

    for con, p in ((world, EconomicsParams(data_end=END, **kwargs)), (generated, EconomicsParams(**kwargs))):
        got = campaigns_page(con, p)
        assert_frame_equal(got["economics"], campaign_economics(con, p))
        assert_frame_equal(got["ltv"], ltv_curves(con, p))
        assert got["economics"]["payback_day"].notna().any()
