"""AARRR stages (SPEC §3): stage guesses, editing the stage map, the stage summary and revenue per user."""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

import store
from metrics.filters import Filters
from metrics.stages import (LABELS, OWNERS, STAGE_ORDER, AarrrParams, aarrr, revenue_by_cohort, revenue_page,
                            revenue_summary, set_stage, set_stage_map, stage_map)
from store.errors import UserInputError
from tests.conftest import generated_store
from store.stages import guess_stage

NAN = np.nan
NA = pd.NA

# The log, range Jan 1 - Jan 7 2024 (UTC):
#   a: signup Jan 1 10:00 (ads/spring); first_project Jan 8 10:00 = exactly 7 days later -> activated (168 h);
#      login Jan 9 09:00 in [Jan 8 10:00, Jan 15 10:00) -> retained; purchase Jan 9 12:00 +100; refund Jan 10 -30;
#      invite_friend Jan 20 00:00 -> referral. Activity after the range end still counts.
#   b: signup Jan 3 08:00 (seo, ios); onboarding_done Jan 3 09:00 -> activated (1 h); purchase Jan 4 +50 (ios);
#      share_link Jan 5 -> referral; nothing in [Jan 10 08:00, Jan 17 08:00) -> not retained.
#   c: page_view Jan 6 00:00 (no channel: direct); first_project Jan 13 00:00:01 = 7 d + 1 s -> not activated,
#      but it is an event in [Jan 13 00:00, Jan 20 00:00) -> retained; checkout with revenue 0 -> not paying.
#   d: signup Dec 31 23:00 2023 (before the range), purchase +999 -> not acquired.
#   e: signup Jan 8 00:00 (tiktok) -> after the range, not acquired.
# Acquired a, b, c = 3. Activated a, b = 2 (median (168 + 1) / 2 = 84.5 h). Retained a, c = 2; every acquired
# user's week 1 had started by the data end (Jan 20 00:00) -> 3 observed. Paying a, b = 2; net revenue
# 100 - 30 + 50 = 120; GMV 150. Referral a, b = 2 (2 events).
# Spend in range: Jan 1 ads/spring 1000 impressions 50 clicks, Jan 5 seo (channel level) 400 / 20;
# Jan 8 ads/spring 999 / 9 is outside. Awareness = 1400 impressions, 70 clicks.
LOG = {
    "a": [("signup", "2024-01-01 10:00", {"channel": "ads", "campaign": "spring"}),
          ("first_project", "2024-01-08 10:00"), ("login", "2024-01-09 09:00"),
          ("purchase", "2024-01-09 12:00", {"revenue": 100}), ("refund", "2024-01-10 12:00", {"revenue": -30}),
          ("invite_friend", "2024-01-20 00:00")],
    "b": [("signup", "2024-01-03 08:00", {"channel": "seo", "platform": "ios"}),
          ("onboarding_done", "2024-01-03 09:00"), ("purchase", "2024-01-04 10:00", {"revenue": 50, "platform": "ios"}),
          ("share_link", "2024-01-05 10:00")],
    "c": [("page_view", "2024-01-06 00:00"), ("first_project", "2024-01-13 00:00:01"),
          ("checkout", "2024-01-13 00:10", {"revenue": 0})],
    "d": [("signup", "2023-12-31 23:00"), ("purchase", "2024-01-02 10:00", {"revenue": 999})],
    "e": [("signup", "2024-01-08 00:00", {"channel": "tiktok"})],
}
SPEND_CSV = ("date,channel,campaign,spend,impressions,clicks\n"
             "2024-01-01,ads,spring,10,1000,50\n2024-01-05,seo,,20,400,20\n2024-01-08,ads,spring,5,999,9\n")
RANGE = Filters(start=date(2024, 1, 1), end=date(2024, 1, 7))
COLS = ["stage", "owner", "users", "rate_of_acquired", "value", "value_label", "clicks"]
LABEL = {"awareness": "impressions", "acquisition": "new users", "activation": "median hours to activation",
         "retention": "users with the period observed", "revenue": "net revenue", "referral": "referral events"}


def stage_frame(rows, breakdown: str | None = None) -> pd.DataFrame:
    """rows: (stage, users, rate, value, clicks) or (breakdown value, stage, users, rate, value, clicks)."""
    recs = []
    for r in rows:
        dim, r = (r[0], r[1:]) if breakdown else (None, r)
        stage, users, rate, value, clicks = r
        rec = {breakdown: dim} if breakdown else {}
        rec.update(stage=stage, owner=OWNERS[stage], users=users, rate_of_acquired=rate, value=value,
                   value_label=LABEL[stage], clicks=clicks)
        recs.append(rec)
    df = pd.DataFrame(recs)
    df["users"] = pd.array(df["users"].tolist(), dtype="Int64")
    df["clicks"] = pd.array(df["clicks"].tolist(), dtype="Int64")
    for c in ("rate_of_acquired", "value"):
        df[c] = df[c].astype("float64")
    for c in ["stage", "owner", "value_label"] + ([breakdown] if breakdown else []):
        df[c] = df[c].astype("str")
    return df


@pytest.fixture
def log(con, journeys, tmp_path):
    journeys(LOG)
    path = tmp_path / "spend.csv"
    path.write_text(SPEND_CSV)
    # Loaded from a CSV file, the way spend arrives in the app.
    store.load_spend(con, str(path))
    return con


@pytest.mark.parametrize("name, stage", [
    ("signup", "acquisition"), ("user_register", "acquisition"), ("app_install", "acquisition"),
    ("activate_account", "activation"), ("onboarding_done", "activation"), ("first_project", "activation"),
    ("purchase", "revenue"), ("pay_success", "revenue"), ("order_created", "revenue"),
    ("invite_friend", "referral"), ("share_link", "referral"), ("refer_a_friend", "referral"),
    ("page_view", None), ("login", None),
])
def test_stage_guesses_follow_the_spec_names(name, stage):
    assert guess_stage(name) == stage


def test_stage_map_lists_every_event_with_counts_owner_and_guess(log):
    got = stage_map(log)
    # signup: a, b, d, e = 4; purchase: a, b, d = 3; first_project: a, c = 2; the rest once each.
    expected = pd.DataFrame([
        ("signup", "acquisition", "marketing", 4, "acquisition"),
        ("purchase", "revenue", "operations", 3, "revenue"),
        ("first_project", "activation", "operations", 2, "activation"),
        ("checkout", "none", None, 1, "none"),
        ("invite_friend", "referral", "operations", 1, "referral"),
        ("login", "none", None, 1, "none"),
        ("onboarding_done", "activation", "operations", 1, "activation"),
        ("page_view", "none", None, 1, "none"),
        ("refund", "none", None, 1, "none"),
        ("share_link", "referral", "operations", 1, "referral"),
    ], columns=["event_name", "stage", "owner", "events", "guessed_stage"])
    for c in ("event_name", "stage", "guessed_stage"):
        expected[c] = expected[c].astype("str")
    expected["events"] = expected["events"].astype("int64")
    assert_frame_equal(got, expected)


def test_aarrr_on_a_log_with_every_stage(log):
    got = aarrr(log, AarrrParams(filters=RANGE))
    expected = stage_frame([
        ("awareness", NA, NAN, 1400.0, 70),
        ("acquisition", 3, 1.0, 3.0, NA),
        ("activation", 2, 2 / 3, 84.5, NA),
        ("retention", 2, 2 / 3, 3.0, NA),
        ("revenue", 2, 2 / 3, 120.0, NA),
        ("referral", 2, 2 / 3, 2.0, NA),
    ])
    assert_frame_equal(got, expected)
    assert tuple(got["stage"]) == STAGE_ORDER


def test_aarrr_by_first_touch_channel(log):
    # a = ads, b = seo, c = direct (d and e are not acquired, so tiktok has no row). Spend: ads 1000/50, seo 400/20.
    got = aarrr(log, AarrrParams(filters=RANGE, breakdown="channel"))
    expected = stage_frame([
        ("ads", "awareness", NA, NAN, 1000.0, 50), ("ads", "acquisition", 1, 1.0, 1.0, NA),
        ("ads", "activation", 1, 1.0, 168.0, NA), ("ads", "retention", 1, 1.0, 1.0, NA),
        ("ads", "revenue", 1, 1.0, 70.0, NA), ("ads", "referral", 1, 1.0, 1.0, NA),
        ("direct", "awareness", NA, NAN, NAN, NA), ("direct", "acquisition", 1, 1.0, 1.0, NA),
        ("direct", "activation", 0, 0.0, NAN, NA), ("direct", "retention", 1, 1.0, 1.0, NA),
        ("direct", "revenue", 0, 0.0, 0.0, NA), ("direct", "referral", 0, 0.0, 0.0, NA),
        ("seo", "awareness", NA, NAN, 400.0, 20), ("seo", "acquisition", 1, 1.0, 1.0, NA),
        ("seo", "activation", 1, 1.0, 1.0, NA), ("seo", "retention", 0, 0.0, 1.0, NA),
        ("seo", "revenue", 1, 1.0, 50.0, NA), ("seo", "referral", 1, 1.0, 1.0, NA),
    ], breakdown="channel")
    assert_frame_equal(got, expected)


def test_range_selects_acquired_users_in_the_filter_time_zone(log):
    # In Shanghai the range is [Dec 31 16:00, Jan 7 16:00) UTC: d (Dec 31 23:00 UTC) is now acquired too.
    # Acquired a, b, c, d = 4; paying a, b, d = 3; revenue 120 + 999 = 1119; GMV 150 + 999 = 1149.
    tz = "Asia/Shanghai"
    p = AarrrParams(timezone=tz, filters=Filters(start=date(2024, 1, 1), end=date(2024, 1, 7), timezone=tz))
    expected = pd.DataFrame({"acquired": [4], "paying": [3], "paying_rate": [0.75], "revenue": [1119.0],
                             "gmv": [1149.0], "arpu": [1119 / 4], "arppu": [1119 / 3]})
    assert_frame_equal(revenue_summary(log, p), expected)


def test_revenue_by_cohort_is_the_summary_per_week_or_month(log):
    # The Shanghai week of Mon 2024-01-01 is the one cohort: acquired a, b, c, d = 4, paying 3, revenue 1119,
    # GMV 1149 (the summary above); as a month cohort (Jan 2024) the same users.
    tz = "Asia/Shanghai"
    p = AarrrParams(timezone=tz, filters=Filters(start=date(2024, 1, 1), end=date(2024, 1, 7), timezone=tz))
    for period in ("week", "month"):
        got = revenue_by_cohort(log, p, period)
        assert got["cohort"].tolist() == [date(2024, 1, 1)]
        assert got.drop(columns="cohort").iloc[0].tolist() == pytest.approx([4, 3, 0.75, 1119.0, 1149.0, 1119 / 4,
                                                                             1119 / 3])
    # Over a wider range each week's row equals the summary with that week as the range.
    wide = AarrrParams(filters=Filters(start=date(2023, 12, 25), end=date(2024, 1, 21)))
    got = revenue_by_cohort(log, wide, "week").set_index("cohort")
    for monday in (date(2023, 12, 25), date(2024, 1, 1), date(2024, 1, 8), date(2024, 1, 15)):
        one = revenue_summary(log, AarrrParams(filters=Filters(start=monday, end=monday + timedelta(days=6))))
        if one["acquired"].iloc[0] == 0:
            assert monday not in got.index
        else:
            assert got.loc[monday].tolist() == pytest.approx(one.iloc[0].tolist(), nan_ok=True)
    with pytest.raises(UserInputError, match="weeks or months"):
        revenue_by_cohort(log, wide, "day")


def test_revenue_summary_numbers(log):
    # acquired 3, paying 2, revenue 120, GMV 150, ARPU 120 / 3 = 40, ARPPU 120 / 2 = 60.
    expected = pd.DataFrame({"acquired": [3], "paying": [2], "paying_rate": [2 / 3], "revenue": [120.0],
                             "gmv": [150.0], "arpu": [40.0], "arppu": [60.0]})
    assert_frame_equal(revenue_summary(log, AarrrParams(filters=RANGE)), expected)
    # By channel: ads = a (100 - 30), direct = c (no revenue: ARPPU undefined), seo = b (50).
    by = revenue_summary(log, AarrrParams(filters=RANGE, breakdown="channel"))
    expected = pd.DataFrame({"channel": pd.array(["ads", "direct", "seo"], dtype="str"), "acquired": [1, 1, 1],
                             "paying": [1, 0, 1], "paying_rate": [1.0, 0.0, 1.0], "revenue": [70.0, 0.0, 50.0],
                             "gmv": [100.0, 0.0, 50.0], "arpu": [70.0, 0.0, 50.0], "arppu": [70.0, NAN, 50.0]})
    assert_frame_equal(by, expected)


@pytest.mark.parametrize("flt", [
    RANGE, Filters(start=date(2023, 12, 25), end=date(2024, 1, 21)), Filters(),
    Filters(start=date(2024, 1, 1), end=date(2024, 1, 7), timezone="Asia/Shanghai"),
    Filters(start=date(2024, 1, 1), end=date(2024, 1, 21), channels=("seo", "tiktok")),
    Filters(start=date(2024, 1, 1), end=date(2024, 1, 7), segment={"platform": "ios"}),
    Filters(start=date(2030, 1, 1), end=date(2030, 1, 7)),      # nobody acquired
], ids=["range", "wide", "all", "shanghai", "channels", "segment", "empty"])
def test_revenue_page_equals_the_separate_functions(log, flt):
    p = AarrrParams(filters=flt, timezone=flt.timezone)
    for period in ("week", "month"):
        got = revenue_page(log, p, period)
        assert set(got) == {"summary", "by_channel", "by_cohort"}
        assert_frame_equal(got["summary"], revenue_summary(log, p))
        assert_frame_equal(got["by_channel"], revenue_summary(log, replace(p, breakdown="channel")))
        assert_frame_equal(got["by_cohort"], revenue_by_cohort(log, p, period))
    # the numbers above, not only equal frames: the range's users a, b, c (120 net, 150 GMV)
    if flt == RANGE:
        assert got["summary"].iloc[0].tolist() == pytest.approx([3, 2, 2 / 3, 120.0, 150.0, 40.0, 60.0])
        assert got["by_channel"]["channel"].tolist() == ["ads", "direct", "seo"]
    if flt.start == date(2030, 1, 1):
        assert got["summary"]["acquired"].tolist() == [0] and got["by_channel"].empty and got["by_cohort"].empty
    with pytest.raises(UserInputError, match="weeks or months"):
        revenue_page(log, p, "day")


def test_refunds_subtract_from_revenue_not_from_gmv_or_paying(con, journeys):
    # x buys 50 and is refunded 50 -> still paying, net 0; y only has a refund of 20 -> not paying; z buys nothing.
    # acquired 3, paying 1 (x), revenue 50 - 50 - 20 = -20, GMV 50, ARPU -20 / 3, ARPPU -20 / 1.
    journeys({"x": [("signup", "2024-01-01 10:00"), ("purchase", "2024-01-02 10:00", {"revenue": 50}),
                    ("refund", "2024-01-03 10:00", {"revenue": -50})],
              "y": [("signup", "2024-01-01 11:00"), ("refund", "2024-01-02 11:00", {"revenue": -20})],
              "z": [("signup", "2024-01-01 12:00")]})
    expected = pd.DataFrame({"acquired": [3], "paying": [1], "paying_rate": [1 / 3], "revenue": [-20.0],
                             "gmv": [50.0], "arpu": [-20 / 3], "arppu": [-20.0]})
    assert_frame_equal(revenue_summary(con, AarrrParams()), expected)


def test_editing_the_stage_map_changes_the_stages(log):
    # login becomes a retention event and retention counts only those: c's return (first_project) no longer
    # counts -> retained = a only. first_project leaves activation -> activated = b only (1 h).
    set_stage_map(log, {"login": "Retention", "first_project": "none"})
    assert stage_map(log).set_index("event_name").loc[["login", "first_project"], "stage"].tolist() == \
        ["retention", "none"]
    got = aarrr(log, AarrrParams(filters=RANGE, retention_event="stage"))
    assert got.set_index("stage").loc[["activation", "retention"], ["users", "value"]].values.tolist() == \
        [[1, 1.0], [1, 3.0]]
    set_stage(log, "first_project", "activation")
    got = aarrr(log, AarrrParams(filters=RANGE))
    assert got.set_index("stage").loc["activation", "users"] == 2


def test_a_bad_stage_map_edit_writes_nothing(log):
    with pytest.raises(UserInputError, match="Unknown stage 'bogus'"):
        set_stage_map(log, {"login": "retention", "refund": "bogus"})
    with pytest.raises(UserInputError, match="ad-spend"):
        set_stage(log, "login", "awareness")
    assert stage_map(log).set_index("event_name").loc["login", "stage"] == "none"


def test_filters_users_selection_and_segment(log):
    # channels=seo: acquired b only; spend only the seo row (400 / 20).
    got = aarrr(log, AarrrParams(filters=Filters(start=date(2024, 1, 1), end=date(2024, 1, 7), channels=("SEO",))))
    assert_frame_equal(got, stage_frame([
        ("awareness", NA, NAN, 400.0, 20), ("acquisition", 1, 1.0, 1.0, NA), ("activation", 1, 1.0, 1.0, NA),
        ("retention", 0, 0.0, 1.0, NA), ("revenue", 1, 1.0, 50.0, NA), ("referral", 1, 1.0, 1.0, NA)]))
    # segment platform=ios: acquired b (the only user with an ios event); only b's ios events count:
    # signup and the 50 purchase — onboarding_done and share_link are not ios. Spend ignores the segment.
    seg = Filters(start=date(2024, 1, 1), end=date(2024, 1, 7), segment={"platform": "ios"})
    assert_frame_equal(aarrr(log, AarrrParams(filters=seg)), stage_frame([
        ("awareness", NA, NAN, 1400.0, 70), ("acquisition", 1, 1.0, 1.0, NA), ("activation", 0, 0.0, NAN, NA),
        ("retention", 0, 0.0, 1.0, NA), ("revenue", 1, 1.0, 50.0, NA), ("referral", 0, 0.0, 0.0, NA)]))


def test_retention_window_and_data_end_censoring(log):
    # Day-1 rolling retention: [first_seen + 1 d, first_seen + 2 d): a Jan 2 10:00-Jan 3 10:00 nothing;
    # b Jan 4 08:00-Jan 5 08:00: purchase Jan 4 10:00 -> retained; c Jan 7-Jan 8 nothing. -> 1.
    got = aarrr(log, AarrrParams(filters=RANGE, retention_period="day"))
    assert got.set_index("stage").loc["retention", ["users", "value"]].tolist() == [1, 3.0]
    # data_end Jan 10 09:00: week 1 had started for a (Jan 8 10:00) only; b's starts Jan 10 08:00 -> also started.
    got = aarrr(log, AarrrParams(filters=RANGE, data_end=datetime(2024, 1, 10, 9)))
    assert got.set_index("stage").loc["retention", "value"] == 2.0


def test_empty_store_gives_six_zero_rows(con):
    got = aarrr(con, AarrrParams())
    assert_frame_equal(got, stage_frame([
        ("awareness", NA, NAN, NAN, NA), ("acquisition", 0, NAN, 0.0, NA), ("activation", 0, NAN, NAN, NA),
        ("retention", 0, NAN, 0.0, NA), ("revenue", 0, NAN, 0.0, NA), ("referral", 0, NAN, 0.0, NA)]))
    summary = revenue_summary(con, AarrrParams())
    assert summary[["acquired", "paying", "revenue", "gmv"]].iloc[0].tolist() == [0, 0, 0.0, 0.0]


@pytest.mark.parametrize("kwargs, words", [
    ({"activation_days": 0}, "activation window"),
    ({"retention_period": "year"}, "retention period"),
    ({"retention_k": 0}, "whole number"),
    ({"breakdown": "page"}, "broken down"),
    ({"timezone": "Nowhere/Land"}, "time zone"),
    ({"retention_event": "some"}, "Retention counts"),
    ({"filters": Filters(timezone="Asia/Shanghai")}, "differs"),
])
def test_bad_params_are_user_errors(kwargs, words):
    with pytest.raises(UserInputError, match=words):
        AarrrParams(**kwargs)


def test_labels_name_every_stage_and_column():
    for key in STAGE_ORDER + ("owner", "users", "rate_of_acquired", "value", "clicks", "acquired", "paying",
                              "paying_rate", "gmv", "arpu", "arppu"):
        assert set(LABELS[key]) == {"en", "zh", "help_en", "help_zh"}


def test_a_stage_map_edit_moves_the_data_version(log):
    from store import schema
    if not hasattr(schema, "data_version"):
        pytest.skip("this store has no data version")
    before = schema.data_version(log)
    set_stage(log, "login", "retention")
    assert schema.data_version(log) == before + 1


def test_labels_appear_in_the_docs_headings():
    doc = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
    headings = [line for line in doc.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    for key, label in LABELS.items():
        assert all(label.values()), key
        assert any(label["en"] in h for h in headings), label["en"]


@pytest.mark.parametrize("breakdown", [None, "channel", "campaign"])
def test_every_value_is_bound(breakdown):
    from metrics.stages import aarrr_sql, revenue_summary_sql
    f = Filters(start=date(2024, 1, 1), end=date(2024, 1, 7), channels=("x'; DROP TABLE users; --",),
                campaigns=("c",), segment={"platform": "ios'"})
    for builder in (aarrr_sql, revenue_summary_sql):
        sql, values = builder(AarrrParams(filters=f, breakdown=breakdown))
        assert sql.count("?") == len(values)
        assert "DROP TABLE" not in sql and "ios'" not in sql


def test_campaign_breakdown_puts_channel_level_spend_with_users_without_a_campaign(log):
    # spring = a (ads/spring): 1000 impressions, 50 clicks; no campaign = b and c, with the seo channel-level row
    # (campaign '' in the file): 400 / 20. Revenue: spring 100 - 30 = 70 (GMV 100); no campaign: b's 50 over 2 users.
    got = aarrr(log, AarrrParams(filters=RANGE, breakdown="campaign"))
    aware = got[got["stage"] == "awareness"]
    assert aware["campaign"].tolist()[0] == "spring" and pd.isna(aware["campaign"].tolist()[1])
    assert aware[["value", "clicks"]].values.tolist() == [[1000.0, 50], [400.0, 20]]
    expected = pd.DataFrame({"campaign": pd.array(["spring", None], dtype="str"), "acquired": [1, 2],
                             "paying": [1, 1], "paying_rate": [1.0, 0.5], "revenue": [70.0, 50.0],
                             "gmv": [100.0, 50.0], "arpu": [70.0, 25.0], "arppu": [70.0, 50.0]})
    assert_frame_equal(revenue_summary(log, AarrrParams(filters=RANGE, breakdown="campaign")), expected)


# ---------------------------------------------------------------------------------------------
# The per-user rollups (user_events, user_days, revenue_events) in place of the pass over the acquired users'
# events
# ---------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def generated(tmp_path_factory):
    con = generated_store(tmp_path_factory, "stages_sample", seed=5)
    yield con
    con.close()


ROLLUP_CASES = [
    {},
    {"activation_days": 0.5, "retention_period": "day", "retention_k": 3, "breakdown": "channel"},
    {"activation_days": 1.5, "retention_period": "month", "retention_k": 1, "breakdown": "campaign",
     "filters": Filters(start=date(2026, 7, 15), end=date(2026, 9, 30), timezone="Asia/Shanghai"),
     "timezone": "Asia/Shanghai"},
    {"retention_k": 2, "filters": Filters(channels=("douyin", "baidu", "referral"))},
    {"retention_period": "week", "retention_k": 4, "data_end": datetime(2026, 9, 1), "breakdown": "channel"},
]


@pytest.mark.parametrize("kwargs", ROLLUP_CASES)
def test_rollups_give_the_stages_of_the_event_pass(generated, monkeypatch, kwargs):
    import metrics.stages as stages

    p = AarrrParams(**kwargs)
    assert "user_days" in stages.aarrr_sql(p)[0] and "revenue_events" in stages.aarrr_sql(p)[0]   # the rollup path
    got = (aarrr(generated, p), stages.revenue_summary(generated, p), stages.revenue_by_cohort(generated, p))
    users = got[0].groupby("stage")["users"].sum()
    assert users["acquisition"] > 50 and users["activation"] > 0 and users["retention"] > 0
    assert users["revenue"] > 0 and users["referral"] > 0
    monkeypatch.setattr(stages, "rollups_ok", lambda p: False)
    assert "user_days" not in stages.aarrr_sql(p)[0] and "revenue_events" not in stages.aarrr_sql(p)[0]
    expected = (aarrr(generated, p), stages.revenue_summary(generated, p), stages.revenue_by_cohort(generated, p))
    for g, e in zip(got, expected):
        assert_frame_equal(g, e)


def test_retention_stage_events_and_segments_take_the_event_pass():
    import metrics.stages as stages

    assert stages.rollups_ok(AarrrParams())
    assert not stages.rollups_ok(AarrrParams(retention_event="stage"))
    assert not stages.rollups_ok(AarrrParams(filters=Filters(segment={"platform": "ios"})))
    assert "user_days" not in stages.aarrr_sql(AarrrParams(retention_event="stage"))[0]
