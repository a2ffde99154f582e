"""Traffic metrics (SPEC §5) on small hand-worked logs; every expected frame is computed in the comments."""
from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from metrics.filters import Filters
from metrics.traffic import (LABELS, TrafficParams, pv_uv, pv_uv_sql, session_table, sessions, top_pages,
                             traffic_page, traffic_summary, visits)
from store.errors import UserInputError

NAN = np.nan


def frame(columns: list[str], rows: list[tuple], ints=(), dates=("period_start",)) -> pd.DataFrame:
    df = pd.DataFrame(rows, columns=columns)
    for c in columns:
        if c in dates:
            df[c] = pd.to_datetime(df[c]).astype("datetime64[us]")
        elif c in ints:
            df[c] = df[c].astype("int64")
        elif df[c].dtype == object and all(isinstance(v, str) for v in df[c]):
            df[c] = df[c].astype("str")
        elif c not in ints and df[c].dtype.kind in "if":
            df[c] = df[c].astype("float64")
    return df


SESSION_COLS = ["period_start", "sessions", "bounce_rate", "pages_per_session", "avg_duration_s", "median_duration_s"]

# Fixture A — one Monday, 2024-01-01 (UTC).
#   u1: S1 = pv "/" 10:00 (ads/spring), pv "/pricing" 10:20 (channel seo on the event), signup 10:25
#            -> 3 events, 2 page views, 1500 s, channel ads (first event's), campaign spring, entry "/"
#       S2 = pv "/" 11:00 (35 min after 10:25 -> new session) -> 1 page view (a bounce), 0 s, direct, entry "/"
#   u2: S3 = file session "x": pv "/pricing" 09:00 (seo), pv "/" 09:10, pv "/docs" 09:40
#            -> 3 page views, 2400 s, seo, entry "/pricing"
#   u3: S4 = signup 12:00 (ads) -> no page view, 0 s, ads, entry "(no page view)"
FIXTURE_A = {
    "u1": [("page_view", "2024-01-01 10:00", {"page": "/", "channel": "ads", "campaign": "spring"}),
           ("page_view", "2024-01-01 10:20", {"page": "/pricing", "channel": "seo"}),
           ("signup", "2024-01-01 10:25", {"platform": "ios"}),
           ("page_view", "2024-01-01 11:00", {"page": "/", "platform": "ios"})],
    "u2": [("page_view", "2024-01-01 09:00", {"page": "/pricing", "channel": "seo", "session_id": "x"}),
           ("page_view", "2024-01-01 09:10", {"page": "/", "session_id": "x"}),
           ("page_view", "2024-01-01 09:40", {"page": "/docs", "session_id": "x"})],
    "u3": [("signup", "2024-01-01 12:00", {"channel": "ads"})],
}


@pytest.fixture
def day_a(con, journeys):
    journeys(FIXTURE_A)
    return con


def test_sessions_at_the_30_minute_boundary(con, journeys):
    # 10:00 -> 10:30:00 is exactly 30 min: same session; 10:30 -> 11:00:01 is 30 min 1 s: a new one.
    journeys({"u1": [("page_view", "2024-01-01 10:00:00"), ("page_view", "2024-01-01 10:30:00"),
                     ("page_view", "2024-01-01 11:00:01")]})
    got = session_table(con, TrafficParams()).drop(columns="user_key")
    expected = frame(
        ["session_key", "session_start", "session_end", "channel", "campaign", "entry_page", "events", "pageviews",
         "duration_s"],
        [("gap:1", "2024-01-01 10:00:00", "2024-01-01 10:30:00", "direct", "(not set)", "(not set)", 2, 2, 1800.0),
         ("gap:2", "2024-01-01 11:00:01", "2024-01-01 11:00:01", "direct", "(not set)", "(not set)", 1, 1, 0.0)],
        ints=("events", "pageviews"), dates=("session_start", "session_end"))
    assert_frame_equal(got, expected)


def test_session_gap_is_configurable(day_a):
    # With a 40-minute gap u1's 11:00 page view (35 min after 10:25) joins S1: 3 sessions, not 4.
    # S1' = 4 events, 3 page views, 3600 s; S3 = 3 page views 2400 s; S4 = 0 page views 0 s.
    # bounce 0/2; pages per session 6/2 = 3; mean (3600+2400+0)/3 = 2000; median 2400.
    got = sessions(day_a, TrafficParams(session_gap=timedelta(minutes=40)))
    assert_frame_equal(got, frame(SESSION_COLS, [("2024-01-01", 3, 0.0, 3.0, 2000.0, 2400.0)], ints=("sessions",)))


def test_sessions_are_not_split_at_midnight_and_belong_to_their_first_day(con, journeys):
    # 23:50 -> 00:10 is 20 min: one session of 1200 s on Jan 1; its second page view still counts as Jan 2 PV.
    journeys({"u1": [("page_view", "2024-01-01 23:50"), ("page_view", "2024-01-02 00:10")]})
    assert_frame_equal(sessions(con, TrafficParams()),
                       frame(SESSION_COLS, [("2024-01-01", 1, 0.0, 2.0, 1200.0, 1200.0)], ints=("sessions",)))
    assert_frame_equal(pv_uv(con, TrafficParams()),
                       frame(["period_start", "pv", "uv"], [("2024-01-01", 1, 1), ("2024-01-02", 1, 1)],
                             ints=("pv", "uv")))


def test_file_session_ids_win_over_gaps_and_are_scoped_per_user(con, journeys):
    # u1: session "a" spans 10:00 -> 12:00 (2 h, no gap split); its id-less events 10:05, 10:20 form one derived
    # session (15 min gap). u2 reuses the id "a": a different session because ids are per user.
    journeys({"u1": [("page_view", "2024-01-01 10:00", {"session_id": "a"}),
                     ("page_view", "2024-01-01 12:00", {"session_id": "a"}),
                     ("click", "2024-01-01 10:05"), ("page_view", "2024-01-01 10:20")],
              "u2": [("page_view", "2024-01-01 10:00", {"session_id": "a"})]})
    got = session_table(con, TrafficParams())[["user_key", "session_key", "events", "pageviews", "duration_s"]]
    expected = pd.DataFrame({"user_key": np.array([1, 1, 2], dtype="int32"),
                             "session_key": pd.array(["id:a", "gap:1", "id:a"], dtype="str"),
                             "events": np.array([2, 2, 1], dtype="int64"),
                             "pageviews": np.array([2, 1, 1], dtype="int64"),
                             "duration_s": [7200.0, 900.0, 0.0]})
    assert_frame_equal(got, expected)


def test_bounce_pages_per_session_and_duration(day_a):
    # 4 sessions (S1..S4); 3 with a page view; 1 bounce (S2) -> 1/3; 6 page views / 3 = 2.0;
    # durations 1500, 0, 2400, 0 -> mean 975, median (0 + 1500) / 2 = 750.
    assert_frame_equal(sessions(day_a, TrafficParams()),
                       frame(SESSION_COLS, [("2024-01-01", 4, 1 / 3, 2.0, 975.0, 750.0)], ints=("sessions",)))
    # Summary: PV 6, UV 2 (u3 viewed no page), same session measures.
    assert_frame_equal(traffic_summary(day_a, TrafficParams()),
                       frame(["pv", "uv", "sessions", "bounce_rate", "pages_per_session", "avg_duration_s"],
                             [(6, 2, 4, 1 / 3, 2.0, 975.0)], ints=("pv", "uv", "sessions")))


def test_session_channel_is_the_first_events_channel(day_a):
    # ads: S1 (2 pv, 1500 s) + S4 (no pv, 0 s) -> 2 sessions, bounce 0/1, pps 2/1, mean 750, median 750
    # direct: S2 (1 pv, 0 s); seo: S3 (3 pv, 2400 s). u1's 10:20 "seo" page view stays in ads.
    got = sessions(day_a, TrafficParams(breakdown="channel"))
    cols = SESSION_COLS[:1] + ["channel"] + SESSION_COLS[1:]
    assert_frame_equal(got, frame(cols, [("2024-01-01", "ads", 2, 0.0, 2.0, 750.0, 750.0),
                                         ("2024-01-01", "direct", 1, 1.0, 1.0, 0.0, 0.0),
                                         ("2024-01-01", "seo", 1, 0.0, 3.0, 2400.0, 2400.0)], ints=("sessions",)))
    # PV by session channel: ads = S1's 2, direct = S2's 1, seo = S3's 3.
    assert_frame_equal(pv_uv(day_a, TrafficParams(breakdown="channel")),
                       frame(["period_start", "channel", "pv", "uv"],
                             [("2024-01-01", "ads", 2, 1), ("2024-01-01", "direct", 1, 1),
                              ("2024-01-01", "seo", 3, 1)], ints=("pv", "uv")))
    # campaign: spring = S1's 2 page views (u1); (not set) = S2 + S3 = 4 page views by u1 and u2.
    assert_frame_equal(pv_uv(day_a, TrafficParams(breakdown="campaign")),
                       frame(["period_start", "campaign", "pv", "uv"],
                             [("2024-01-01", "(not set)", 4, 2), ("2024-01-01", "spring", 2, 1)],
                             ints=("pv", "uv")))


def test_page_breakdown_top_pages_and_other(day_a):
    # "/" = u1 10:00, u1 11:00, u2 09:10 -> 3 PV, 2 UV; "/docs" 1/1; "/pricing" = u1 10:20, u2 09:00 -> 2/2.
    assert_frame_equal(pv_uv(day_a, TrafficParams(breakdown="page")),
                       frame(["period_start", "page", "pv", "uv"],
                             [("2024-01-01", "/", 3, 2), ("2024-01-01", "/docs", 1, 1),
                              ("2024-01-01", "/pricing", 2, 2)], ints=("pv", "uv")))
    # top_n=1 keeps "/"; Other = /docs + /pricing = 3 PV by u1 and u2 -> UV 2 (not 1 + 2).
    assert_frame_equal(pv_uv(day_a, TrafficParams(breakdown="page", top_n=1)),
                       frame(["period_start", "page", "pv", "uv"],
                             [("2024-01-01", "/", 3, 2), ("2024-01-01", "Other", 3, 2)], ints=("pv", "uv")))
    # Sessions by entry page: S4 has none; "/" = S1 (2 pv, 1500 s) + S2 (bounce, 0 s); "/pricing" = S3.
    cols = SESSION_COLS[:1] + ["page"] + SESSION_COLS[1:]
    assert_frame_equal(sessions(day_a, TrafficParams(breakdown="page")),
                       frame(cols, [("2024-01-01", "(no page view)", 1, NAN, NAN, 0.0, 0.0),
                                    ("2024-01-01", "/", 2, 0.5, 1.5, 750.0, 750.0),
                                    ("2024-01-01", "/pricing", 1, 0.0, 3.0, 2400.0, 2400.0)], ints=("sessions",)))
    # Top pages by PV: "/" entered by S1 and S2 (1 bounce of 2); "/pricing" entered by S3 (no bounce);
    # "/docs" never entered -> bounce rate NULL.
    assert_frame_equal(top_pages(day_a, TrafficParams()),
                       frame(["page", "pv", "uv", "entries", "bounce_rate"],
                             [("/", 3, 2, 2, 0.5), ("/pricing", 2, 2, 1, 0.0), ("/docs", 1, 1, 0, NAN)],
                             ints=("pv", "uv", "entries")))
    assert_frame_equal(top_pages(day_a, TrafficParams(top_n=2)),
                       frame(["page", "pv", "uv", "entries", "bounce_rate"],
                             [("/", 3, 2, 2, 0.5), ("/pricing", 2, 2, 1, 0.0)], ints=("pv", "uv", "entries")))


def test_configurable_pageview_events(day_a):
    # Counting signups as page views too: 6 + 2 = 8 PV by u1, u2, u3.
    got = pv_uv(day_a, TrafficParams(pageview_events=("page_view", "signup")))
    assert_frame_equal(got, frame(["period_start", "pv", "uv"], [("2024-01-01", 8, 3)], ints=("pv", "uv")))


# Periods: u1 views on Mon Jan 1 and Tue Jan 2, u2 on Tue Jan 2, u1 on Mon Jan 8, u2 on Thu Feb 1 (2024).
PERIOD_LOG = {"u1": [("page_view", "2024-01-01 09:00"), ("page_view", "2024-01-02 09:00"),
                     ("page_view", "2024-01-08 09:00")],
              "u2": [("page_view", "2024-01-02 10:00"), ("page_view", "2024-02-01 10:00")]}


@pytest.mark.parametrize("period, week_start, rows", [
    ("day", "monday", [("2024-01-01", 1, 1), ("2024-01-02", 2, 2), ("2024-01-08", 1, 1), ("2024-02-01", 1, 1)]),
    # week of Jan 1: 3 PV, UV 2 although its days' UVs sum to 1 + 2 = 3; Feb 1 is in the week of Mon Jan 29.
    ("week", "monday", [("2024-01-01", 3, 2), ("2024-01-08", 1, 1), ("2024-01-29", 1, 1)]),
    # Sunday weeks: Jan 1-2 in the week of Sun Dec 31, Jan 8 in that of Sun Jan 7, Feb 1 in that of Sun Jan 28.
    ("week", "sunday", [("2023-12-31", 3, 2), ("2024-01-07", 1, 1), ("2024-01-28", 1, 1)]),
    ("month", "monday", [("2024-01-01", 4, 2), ("2024-02-01", 1, 1)]),
])
def test_pv_uv_by_period(con, journeys, period, week_start, rows):
    journeys(PERIOD_LOG)
    got = pv_uv(con, TrafficParams(period=period, week_start=week_start))
    assert_frame_equal(got, frame(["period_start", "pv", "uv"], rows, ints=("pv", "uv")))


def test_week_uv_is_not_the_sum_of_day_uv(con, journeys):
    journeys(PERIOD_LOG)
    days = pv_uv(con, TrafficParams(period="day"))
    weeks = pv_uv(con, TrafficParams(period="week"))
    first_week = days[days["period_start"] < pd.Timestamp("2024-01-08")]
    assert first_week["uv"].sum() == 3
    assert weeks.loc[0, "uv"] == 2
    assert weeks.loc[0, "pv"] == first_week["pv"].sum() == 3


def test_time_zone_day_boundaries_and_date_range(con, journeys):
    # 15:59 UTC = 23:59 Jan 1 in Shanghai; 16:00 UTC = 00:00 Jan 2 in Shanghai.
    journeys({"u1": [("page_view", "2024-01-01 15:59")], "u2": [("page_view", "2024-01-01 16:00")]})
    assert_frame_equal(pv_uv(con, TrafficParams()),
                       frame(["period_start", "pv", "uv"], [("2024-01-01", 2, 2)], ints=("pv", "uv")))
    tz = "Asia/Shanghai"
    assert_frame_equal(pv_uv(con, TrafficParams(timezone=tz)),
                       frame(["period_start", "pv", "uv"], [("2024-01-01", 1, 1), ("2024-01-02", 1, 1)],
                             ints=("pv", "uv")))
    # The range Jan 2 .. Jan 2 (Shanghai) is [Jan 1 16:00, Jan 2 16:00) UTC: only u2's view.
    p = TrafficParams(timezone=tz, filters=Filters(start=date(2024, 1, 2), end=date(2024, 1, 2), timezone=tz))
    assert_frame_equal(pv_uv(con, p), frame(["period_start", "pv", "uv"], [("2024-01-02", 1, 1)], ints=("pv", "uv")))


def test_filters_restrict_events(day_a):
    # Users by first touch: ads = u1 (first channel ads) and u3; u2 (seo) drops out. u1: 3 PV in S1 + S2.
    ads = TrafficParams(filters=Filters(channels=("ADS ",)))
    assert_frame_equal(traffic_summary(day_a, ads),
                       frame(["pv", "uv", "sessions", "bounce_rate", "pages_per_session", "avg_duration_s"],
                             [(3, 1, 3, 0.5, 1.5, 500.0)], ints=("pv", "uv", "sessions")))
    # Segment platform=ios keeps u1's signup 10:25 and page view 11:00 (35 min apart -> 2 sessions).
    ios = TrafficParams(filters=Filters(segment={"platform": "ios"}))
    assert_frame_equal(traffic_summary(day_a, ios),
                       frame(["pv", "uv", "sessions", "bounce_rate", "pages_per_session", "avg_duration_s"],
                             [(1, 1, 2, 1.0, 1.0, 0.0)], ints=("pv", "uv", "sessions")))


def test_empty_range_gives_empty_frames_and_a_null_summary(day_a):
    p = TrafficParams(filters=Filters(start=date(2030, 1, 1), end=date(2030, 1, 2)))
    assert pv_uv(day_a, p).empty and sessions(day_a, p).empty and top_pages(day_a, p).empty
    summary = traffic_summary(day_a, p)
    assert summary[["pv", "uv", "sessions"]].iloc[0].tolist() == [0, 0, 0]
    assert summary[["bounce_rate", "pages_per_session", "avg_duration_s"]].isna().all(axis=None)


def test_traffic_page_is_every_frame_from_one_session_derivation(day_a):
    # The hand-worked numbers of fixture A, read through the page's single call: PV 6, UV 2, 4 sessions,
    # bounce 1/3, 2.0 pages per session, mean 975 s; by session channel ads 2 / direct 1 / seo 3 page views.
    got = traffic_page(day_a, TrafficParams(), "channel")
    assert got["summary"][["pv", "uv", "sessions"]].iloc[0].tolist() == [6, 2, 4]
    assert got["summary"][["bounce_rate", "pages_per_session", "avg_duration_s"]].iloc[0].tolist() == \
        pytest.approx([1 / 3, 2.0, 975.0])
    assert got["pv_uv_breakdown"][["channel", "pv", "uv"]].values.tolist() == [["ads", 2, 1], ["direct", 1, 1],
                                                                             ["seo", 3, 1]]
    assert got["sessions_breakdown"]["sessions"].tolist() == [2, 1, 1]
    # ... and each frame equals its own function's, for either breakdown and a filtered range.
    for breakdown in ("channel", "campaign"):
        for p in (TrafficParams(), TrafficParams(period="week", top_n=1),
                  TrafficParams(filters=Filters(channels=("ads",)))):
            got = traffic_page(day_a, p, breakdown)
            by = TrafficParams(period=p.period, breakdown=breakdown, filters=p.filters, top_n=p.top_n)
            assert_frame_equal(got["summary"], traffic_summary(day_a, p))
            assert_frame_equal(got["pv_uv"], pv_uv(day_a, p))
            assert_frame_equal(got["sessions"], sessions(day_a, p))
            assert_frame_equal(got["top_pages"], top_pages(day_a, p))
            assert_frame_equal(got["pv_uv_breakdown"], pv_uv(day_a, by))
            assert_frame_equal(got["sessions_breakdown"], sessions(day_a, by))
    # the temporary tables are gone afterwards
    assert day_a.execute("SELECT count(*) FROM duckdb_tables() WHERE table_name LIKE '_traffic%'").fetchone()[0] == 0
    # u2 alone: every event carries a session id (no gap-derived sessions to keep): S3, 3 page views, 2400 s
    only_ids = traffic_page(day_a, TrafficParams(filters=Filters(channels=("seo",))), "channel")
    assert only_ids["summary"][["pv", "uv", "sessions", "avg_duration_s"]].iloc[0].tolist() == [3, 1, 1, 2400.0]
    assert only_ids["top_pages"]["page"].tolist() == ["/", "/docs", "/pricing"]
    assert_frame_equal(only_ids["sessions_breakdown"], sessions(day_a, TrafficParams(
        breakdown="channel", filters=Filters(channels=("seo",)))))


def test_visits_are_the_summarys_pv_and_uv(day_a):
    # PV 6 (u1's 3 and u2's 3 page views), UV 2 (u3 viewed no page); ads users only: u1 (first touch ads)
    # and u3 -> PV 3, UV 1; an empty range -> 0, 0.
    assert visits(day_a, TrafficParams()).iloc[0].tolist() == [6, 2]
    assert visits(day_a, TrafficParams(filters=Filters(channels=("ads",)))).iloc[0].tolist() == [3, 1]
    assert visits(day_a, TrafficParams(filters=Filters(start=date(2030, 1, 1), end=date(2030, 1, 2)))
                  ).iloc[0].tolist() == [0, 0]


@pytest.mark.parametrize("kwargs, words", [
    ({"period": "year"}, "period"),
    ({"breakdown": "browser"}, "broken down"),
    ({"pageview_events": ()}, "page-view event"),
    ({"session_gap": timedelta(0)}, "session gap"),
    ({"timezone": "Mars/Base"}, "time zone"),
    ({"week_start": "friday"}, "Weeks start"),
    ({"top_n": 0}, "top_n"),
    ({"filters": Filters(timezone="Asia/Shanghai")}, "differs"),
])
def test_bad_params_are_user_errors(kwargs, words):
    with pytest.raises(UserInputError, match=words):
        TrafficParams(**kwargs)


def test_values_are_bound_not_formatted():
    sql, params = pv_uv_sql(TrafficParams(pageview_events=("x'; DROP TABLE events; --",)))
    assert "DROP TABLE" not in sql and params[0] == "x'; DROP TABLE events; --"


def test_labels_cover_every_output_column():
    for key in ("pv", "uv", "sessions", "bounce_rate", "pages_per_session", "avg_duration_s", "median_duration_s",
                "entries"):
        assert set(LABELS[key]) == {"en", "zh", "help_en", "help_zh"}


def test_labels_appear_in_the_docs_headings():
    doc = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
    headings = [line for line in doc.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    for key, label in LABELS.items():
        assert all(label.values()), key
        assert any(label["en"] in h for h in headings), label["en"]


@pytest.mark.parametrize("breakdown", [None, "page", "channel", "campaign"])
def test_every_value_is_bound(breakdown):
    from metrics.traffic import session_table_sql, sessions_sql, top_pages_sql, traffic_summary_sql
    f = Filters(start=date(2024, 1, 1), end=date(2024, 1, 7), channels=("x'; DROP TABLE users; --",),
                segment={"platform": "ios'"})
    for builder in (pv_uv_sql, sessions_sql, top_pages_sql, traffic_summary_sql, session_table_sql):
        sql, values = builder(TrafficParams(filters=f, breakdown=breakdown))
        assert sql.count("?") == len(values)
        assert "DROP TABLE" not in sql and "ios'" not in sql
