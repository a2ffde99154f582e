"""Hand-worked cohort matrices, DAU/WAU/MAU and lifecycle (SPEC §4).

Every expected frame is worked out by hand in the comment above it. Week indexes: 2024-01-01 is a
Monday. "de" is the data end: the latest event time over all events.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import date, datetime, timedelta

import pandas as pd
import pytest
from pandas.testing import assert_frame_equal

from metrics.filters import Filters
import metrics.retention as rm
from metrics.retention import (LABELS, RetentionParams, active_users, cohort_sizes, lifecycle, retention,
                               retention_average, retention_sql, retention_with_total)
from metrics.selectors import Step
from store.errors import UserInputError
from tests.conftest import reads_hours

NA = None


def frame(rows, breakdown: bool = False) -> pd.DataFrame:
    cols = (["breakdown"] if breakdown else []) + ["cohort", "cohort_size", "period", "retained", "rate", "complete"]
    df = pd.DataFrame(rows, columns=cols)
    df["cohort"] = pd.to_datetime(df["cohort"]).astype("datetime64[us]")
    df["cohort_size"] = df["cohort_size"].astype("int64")
    df["period"] = df["period"].astype("int64")
    df["retained"] = df["retained"].astype("Int64")
    df["rate"] = df["rate"].astype("float64")
    df["complete"] = df["complete"].astype(bool)
    if breakdown:
        df["breakdown"] = df["breakdown"].astype(object)
    return df


# -- mode ----------------------------------------------------------------------------------------------

MODE_LOG = {
    "u1": [("signup", "2024-01-01 10:00"), ("open", "2024-01-09 10:00"), ("signup", "2024-01-15 09:00"),
           ("open", "2024-01-16 10:00")],
    "u2": [("signup", "2024-01-08 12:00"), ("open", "2024-01-17 10:00")],
}
# Weeks W0=01-01, W1=01-08, W2=01-15; de = 01-17 (in W2), periods=3 -> cohorts W0, W1, W2.
# first_time: W0={u1}: k1 open 01-09 -> 1 (complete), k2 open 01-16 -> 1 (W2 running: incomplete).
#             W1={u2}: k1 open 01-17 -> 1 (incomplete), k2 = W3 not started -> null.
#             W2: u1's second signup is not their first -> empty; k0 = 0 with rate null; k1, k2 null.
# recurring:  the same, except u1's signup on 01-15 makes them a member of W2 (size 1).
MODE_EXPECTED = {
    "first_time": [("2024-01-01", 1, 0, 1, 1.0, True), ("2024-01-01", 1, 1, 1, 1.0, True),
                   ("2024-01-01", 1, 2, 1, 1.0, False),
                   ("2024-01-08", 1, 0, 1, 1.0, True), ("2024-01-08", 1, 1, 1, 1.0, False),
                   ("2024-01-08", 1, 2, NA, NA, False),
                   ("2024-01-15", 0, 0, 0, NA, False), ("2024-01-15", 0, 1, NA, NA, False),
                   ("2024-01-15", 0, 2, NA, NA, False)],
    "recurring": [("2024-01-01", 1, 0, 1, 1.0, True), ("2024-01-01", 1, 1, 1, 1.0, True),
                  ("2024-01-01", 1, 2, 1, 1.0, False),
                  ("2024-01-08", 1, 0, 1, 1.0, True), ("2024-01-08", 1, 1, 1, 1.0, False),
                  ("2024-01-08", 1, 2, NA, NA, False),
                  ("2024-01-15", 1, 0, 1, 1.0, False), ("2024-01-15", 1, 1, NA, NA, False),
                  ("2024-01-15", 1, 2, NA, NA, False)],
}


@pytest.mark.parametrize("mode", ["first_time", "recurring"])
def test_first_time_vs_recurring(con, journeys, mode):
    journeys(MODE_LOG)
    got = retention(con, RetentionParams(start=Step("signup"), returning=Step("open"), periods=3, mode=mode))
    assert_frame_equal(got, frame(MODE_EXPECTED[mode]))


# -- criterion and minimum occurrences -----------------------------------------------------------------

CRITERION_LOG = {
    "u1": [("signup", "2024-03-01 09:00"), ("visit", "2024-03-03 10:00")],
    "u2": [("signup", "2024-03-01 09:00"), ("visit", "2024-03-02 10:00"), ("visit", "2024-03-04 10:00"),
           ("visit", "2024-03-04 23:00")],
    "u3": [("signup", "2024-03-01 09:00"), ("visit", "2024-03-02 10:00"), ("visit", "2024-03-02 11:00")],
}
# Daily; one cohort 03-01 = {u1, u2, u3} (the date range keeps only it); de = 03-04 23:00, so k3 is running.
# Visits per period: u1 {k2: 1}; u2 {k1: 1, k3: 2}; u3 {k1: 2}.
#   on, min 1:          k1 {u2, u3} = 2, k2 {u1} = 1, k3 {u2} = 1
#   on, min 2:          k1 {u3} = 1,     k2 {} = 0,   k3 {u2} = 1
#   on_or_after, min 1: last qualifying period u1=2, u2=3, u3=1 -> k1 3, k2 2, k3 1
#   on_or_after, min 2: qualifying periods u2: k3, u3: k1 -> k1 2, k2 1 (u2), k3 1
CRITERION_CASES = [("on", 1, [2, 1, 1]), ("on", 2, [1, 0, 1]), ("on_or_after", 1, [3, 2, 1]),
                   ("on_or_after", 2, [2, 1, 1])]


@pytest.mark.parametrize("criterion, minimum, retained", CRITERION_CASES)
def test_criterion_and_minimum_occurrences(con, journeys, criterion, minimum, retained):
    journeys(CRITERION_LOG)
    params = RetentionParams(start=Step("signup"), returning=Step("visit"), period="day", periods=4,
                             criterion=criterion, minimum_occurrences=minimum,
                             filters=Filters(start=date(2024, 3, 1), end=date(2024, 3, 1)))
    expected = frame([("2024-03-01", 3, 0, 3, 1.0, True)]
                     + [("2024-03-01", 3, k, r, r / 3, k < 3) for k, r in zip((1, 2, 3), retained)])
    assert_frame_equal(retention(con, params), expected)


# -- alignment -----------------------------------------------------------------------------------------

ALIGN_LOG = {
    "a": [("signup", "2024-01-01 10:00"), ("x", "2024-01-08 10:00"), ("x", "2024-01-20 10:00")],
    "b": [("signup", "2024-01-03 10:00"), ("x", "2024-01-16 10:00")],
    "c": [("signup", "2024-01-09 10:00"), ("x", "2024-01-10 10:00"), ("x", "2024-01-17 00:00")],
}
# de = 01-20 10:00 (in W2 = 01-15); cohorts 01-01 {a, b}, 01-08 {c}, 01-15 {}.
# calendar: 01-01: k1 (W1) a -> 1; k2 (W2) a (01-20), b (01-16) -> 2, running. 01-08: k1 (W2) c -> 1, running.
# rolling (7 d from each t0):
#   a t0 01-01 10:00: k1 = [01-08 10:00, 01-15 10:00) holds 01-08 10:00 (start inclusive); k2 holds 01-20.
#   b t0 01-03 10:00: k1 = [01-10 10:00, 01-17 10:00) holds 01-16; k2 nothing.  -> k1 2, k2 1.
#   k1 complete: latest t0 01-03 10:00 + 14 d = 01-17 10:00 <= de; k2: 01-24 10:00 > de -> incomplete;
#   k0 complete: 01-10 10:00 <= de.  k3 would start at 01-22 10:00 > de.
#   c t0 01-09 10:00: k0 ends 01-16 10:00 <= de (complete); k1 = [01-16 10:00, 01-23 10:00) holds 01-17 -> 1,
#   incomplete; k2 starts 01-23 10:00 > de -> null.
#   empty 01-15 cohort: judged from its period start 01-15 00:00: k0 ends 01-22 > de, k1 starts 01-22 > de.
ALIGN_EXPECTED = {
    "calendar": [("2024-01-01", 2, 0, 2, 1.0, True), ("2024-01-01", 2, 1, 1, 0.5, True),
                 ("2024-01-01", 2, 2, 2, 1.0, False),
                 ("2024-01-08", 1, 0, 1, 1.0, True), ("2024-01-08", 1, 1, 1, 1.0, False),
                 ("2024-01-08", 1, 2, NA, NA, False),
                 ("2024-01-15", 0, 0, 0, NA, False), ("2024-01-15", 0, 1, NA, NA, False),
                 ("2024-01-15", 0, 2, NA, NA, False)],
    "rolling": [("2024-01-01", 2, 0, 2, 1.0, True), ("2024-01-01", 2, 1, 2, 1.0, True),
                ("2024-01-01", 2, 2, 1, 0.5, False),
                ("2024-01-08", 1, 0, 1, 1.0, True), ("2024-01-08", 1, 1, 1, 1.0, False),
                ("2024-01-08", 1, 2, NA, NA, False),
                ("2024-01-15", 0, 0, 0, NA, False), ("2024-01-15", 0, 1, NA, NA, False),
                ("2024-01-15", 0, 2, NA, NA, False)],
}


@pytest.mark.parametrize("alignment", ["calendar", "rolling"])
def test_calendar_vs_rolling_weeks(con, journeys, alignment):
    journeys(ALIGN_LOG)
    got = retention(con, RetentionParams(start=Step("signup"), returning=Step("x"), periods=3, alignment=alignment))
    assert_frame_equal(got, frame(ALIGN_EXPECTED[alignment]))


# Sunday 01-07 start, Monday 01-08 return, Saturday 01-13 last event (de).
# monday weeks: start in week 01-01, return in week 01-08 (= de's week, running) -> k1 = 1, incomplete;
#   cohort 01-08 is empty.
# sunday weeks: start and return both in week 01-07 (de's week) -> nothing in k1 (null: not started);
#   the cohort before, 12-31, is empty and its k1 (week 01-07) has started: 0 with rate null.
WEEK_START_EXPECTED = {
    "monday": [("2024-01-01", 1, 0, 1, 1.0, True), ("2024-01-01", 1, 1, 1, 1.0, False),
               ("2024-01-08", 0, 0, 0, NA, False), ("2024-01-08", 0, 1, NA, NA, False)],
    "sunday": [("2023-12-31", 0, 0, 0, NA, True), ("2023-12-31", 0, 1, 0, NA, False),
               ("2024-01-07", 1, 0, 1, 1.0, False), ("2024-01-07", 1, 1, NA, NA, False)],
}


@pytest.mark.parametrize("week_start", ["monday", "sunday"])
def test_sunday_vs_monday_weeks(con, journeys, week_start):
    journeys({"u1": [("signup", "2024-01-07 10:00"), ("open", "2024-01-08 10:00"), ("open", "2024-01-13 10:00")]})
    got = retention(con, RetentionParams(returning=Step("open"), periods=2, week_start=week_start))
    assert_frame_equal(got, frame(WEEK_START_EXPECTED[week_start]))


MONTH_LOG = {
    "u1": [("signup", "2024-01-31 12:00"), ("open", "2024-02-01 09:00"), ("open", "2024-03-01 09:00"),
           ("open", "2024-03-02 09:00")],
    "u2": [("signup", "2024-02-29 08:00"), ("open", "2024-03-30 09:00")],
}
# de = 03-30 09:00; cohorts Jan {u1}, Feb {u2}, Mar {}.
# calendar months: Jan k1 (Feb) 02-01 -> 1, complete; Jan k2 (Mar, running) 03-01 -> 1. Feb k1 (Mar) -> 1.
# rolling 30 d (February 2024 has 29 days):
#   u1 t0 01-31 12:00: k0 = [01-31 12:00, 03-01 12:00) holds 02-01 and 03-01 09:00; k1 = [03-01 12:00,
#   03-31 12:00) holds 03-02 -> 1, incomplete (03-31 12:00 > de); k2 starts 03-31 12:00 > de -> null.
#   u2 t0 02-29 08:00: k0 ends 03-30 08:00 <= de 09:00 -> complete; k1 holds 03-30 09:00 -> 1, incomplete.
#   empty March cohort from its start 03-01 00:00: k0 ends 03-31 > de; k1 starts 03-31 > de -> null.
MONTH_EXPECTED = {
    "calendar": [("2024-01-01", 1, 0, 1, 1.0, True), ("2024-01-01", 1, 1, 1, 1.0, True),
                 ("2024-01-01", 1, 2, 1, 1.0, False),
                 ("2024-02-01", 1, 0, 1, 1.0, True), ("2024-02-01", 1, 1, 1, 1.0, False),
                 ("2024-02-01", 1, 2, NA, NA, False),
                 ("2024-03-01", 0, 0, 0, NA, False), ("2024-03-01", 0, 1, NA, NA, False),
                 ("2024-03-01", 0, 2, NA, NA, False)],
    "rolling": [("2024-01-01", 1, 0, 1, 1.0, True), ("2024-01-01", 1, 1, 1, 1.0, False),
                ("2024-01-01", 1, 2, NA, NA, False),
                ("2024-02-01", 1, 0, 1, 1.0, True), ("2024-02-01", 1, 1, 1, 1.0, False),
                ("2024-02-01", 1, 2, NA, NA, False),
                ("2024-03-01", 0, 0, 0, NA, False), ("2024-03-01", 0, 1, NA, NA, False),
                ("2024-03-01", 0, 2, NA, NA, False)],
}


@pytest.mark.parametrize("alignment", ["calendar", "rolling"])
def test_months_of_varying_length(con, journeys, alignment):
    journeys(MONTH_LOG)
    got = retention(con, RetentionParams(start=Step("signup"), returning=Step("open"), period="month", periods=3,
                                         alignment=alignment))
    assert_frame_equal(got, frame(MONTH_EXPECTED[alignment]))


# An event at 23:30 UTC is 07:30 the next day in Asia/Shanghai (UTC+8).
# UTC: start 05-01 10:00 and return 05-01 23:30 share a day -> k1 of 05-01 has not started (de is 05-01).
# Shanghai: start 05-01 18:00, return 05-02 07:30 -> k1 = 1, running (de is 05-02 07:30 local).
TZ_EXPECTED = {
    "UTC": [("2024-04-30", 0, 0, 0, NA, True), ("2024-04-30", 0, 1, 0, NA, False),
            ("2024-05-01", 1, 0, 1, 1.0, False), ("2024-05-01", 1, 1, NA, NA, False)],
    "Asia/Shanghai": [("2024-05-01", 1, 0, 1, 1.0, True), ("2024-05-01", 1, 1, 1, 1.0, False),
                      ("2024-05-02", 0, 0, 0, NA, False), ("2024-05-02", 0, 1, NA, NA, False)],
}


@pytest.mark.parametrize("tz", ["UTC", "Asia/Shanghai"])
def test_day_periods_follow_the_report_time_zone(con, journeys, tz):
    journeys({"u1": [("signup", "2024-05-01 10:00"), ("open", "2024-05-01 23:30")]})
    got = retention(con, RetentionParams(period="day", periods=2, timezone=tz))
    assert_frame_equal(got, frame(TZ_EXPECTED[tz]))


# -- censoring, explicit end and the average row -------------------------------------------------------

AVG_LOG = {
    "a": [("e", "2024-06-01 08:00"), ("e", "2024-06-02 08:00"), ("e", "2024-06-03 08:00")],
    "b": [("e", "2024-06-01 09:00"), ("e", "2024-06-02 09:00")],
    "c": [("e", "2024-06-01 10:00"), ("e", "2024-06-02 10:00")],
    "d": [("e", "2024-06-01 11:00")],
    "e": [("e", "2024-06-02 08:00"), ("e", "2024-06-03 09:00")],
    "f": [("e", "2024-06-02 09:00"), ("e", "2024-06-04 09:00")],
    "g": [("e", "2024-06-03 10:00"), ("e", "2024-06-04 10:00")],
    "h": [("e", "2024-06-04 20:00")],
}
# end = 06-03 picks cohorts 06-01..06-03; de = 06-04 20:00 still censors (cells after end keep their data).
# 06-01 {a,b,c,d}: k1 a,b,c = 3/4 (complete), k2 a = 1/4 (06-03 complete).
# 06-02 {e,f}:     k1 (06-03) e = 1/2 complete; k2 (06-04, running) f = 1/2 incomplete.
# 06-03 {g}:       k0 complete (06-03 < 06-04); k1 (06-04) g = 1/1 incomplete; k2 (06-05) null.
AVG_MATRIX = [("2024-06-01", 4, 0, 4, 1.0, True), ("2024-06-01", 4, 1, 3, 0.75, True),
              ("2024-06-01", 4, 2, 1, 0.25, True),
              ("2024-06-02", 2, 0, 2, 1.0, True), ("2024-06-02", 2, 1, 1, 0.5, True),
              ("2024-06-02", 2, 2, 1, 0.5, False),
              ("2024-06-03", 1, 0, 1, 1.0, True), ("2024-06-03", 1, 1, 1, 1.0, False),
              ("2024-06-03", 1, 2, NA, NA, False)]


def test_censoring_and_weighted_average_over_complete_cells(con, journeys):
    journeys(AVG_LOG)
    got = retention(con, RetentionParams(period="day", periods=3, end=date(2024, 6, 3)))
    assert_frame_equal(got, frame(AVG_MATRIX))
    # average over complete cells, weighted by cohort size:
    #   k0: all three cohorts 7/7; k1: 06-01 and 06-02 only (06-03's k1 is running): (3+1)/(4+2) = 2/3
    #   (the unweighted mean would be 0.625); k2: 06-01 only: 1/4.
    expected = pd.DataFrame({"period": [0, 1, 2], "cohort_size": [7, 6, 4],
                             "retained": pd.array([7, 4, 1], dtype="Int64"), "rate": [1.0, 4 / 6, 0.25]})
    assert_frame_equal(retention_average(got), expected)


def test_average_of_a_period_without_complete_cells_is_null(con, journeys):
    journeys(AVG_LOG)
    got = retention(con, RetentionParams(period="day", periods=3))  # cohorts 06-02..06-04, de in 06-04
    # 06-02 {e,f}: k1 1/2 complete, k2 f 1/2 incomplete; 06-03 {g}: k1 incomplete; 06-04 {h}: k0 incomplete.
    # k0: 06-02 + 06-03 = 3/3; k1: 06-02 only = 1/2; k2: no complete cell -> size 0, retained 0, rate null.
    expected = pd.DataFrame({"period": [0, 1, 2], "cohort_size": [3, 2, 0],
                             "retained": pd.array([3, 1, 0], dtype="Int64"), "rate": [1.0, 0.5, None]})
    assert_frame_equal(retention_average(got), expected.astype({"rate": "float64"}))


# -- breakdowns ----------------------------------------------------------------------------------------

BREAKDOWN_LOG = {
    "u1": [("open", "2024-07-01 10:00", {"channel": "WeChat", "platform": "ios"}),
           ("open", "2024-07-02 10:00", {"channel": "ads", "platform": "android"})],
    "u2": [("open", "2024-07-01 11:00", {"channel": "Ads ", "platform": "android"}),
           ("open", "2024-07-02 11:00", {"platform": "android"})],
    "u3": [("open", "2024-07-01 12:00", {"platform": "ios"}), ("open", "2024-07-02 12:00", {"platform": "ios"})],
    "u4": [("open", "2024-07-02 13:00", {"platform": "ios"})],
}


def test_breakdown_by_first_touch_channel(con, journeys):
    journeys(BREAKDOWN_LOG)
    # first touch: u1 wechat (its later 'ads' does not move it), u2 ads, u3 and u4 direct; de 07-02 13:00.
    # Every 07-01 member returns on 07-02 (running); u4 is the only 07-02 cohort member.
    got = retention(con, RetentionParams(period="day", periods=2, breakdown="channel"))
    expected = frame([
        ("ads", "2024-07-01", 1, 0, 1, 1.0, True), ("ads", "2024-07-01", 1, 1, 1, 1.0, False),
        ("ads", "2024-07-02", 0, 0, 0, NA, False), ("ads", "2024-07-02", 0, 1, NA, NA, False),
        ("direct", "2024-07-01", 1, 0, 1, 1.0, True), ("direct", "2024-07-01", 1, 1, 1, 1.0, False),
        ("direct", "2024-07-02", 1, 0, 1, 1.0, False), ("direct", "2024-07-02", 1, 1, NA, NA, False),
        ("wechat", "2024-07-01", 1, 0, 1, 1.0, True), ("wechat", "2024-07-01", 1, 1, 1, 1.0, False),
        ("wechat", "2024-07-02", 0, 0, 0, NA, False), ("wechat", "2024-07-02", 0, 1, NA, NA, False),
    ], breakdown=True)
    assert_frame_equal(got, expected)
    # average per channel: only the 07-01 k0 cells are complete (1 user each); no k1 cell is complete.
    average = pd.DataFrame({"breakdown": ["ads", "ads", "direct", "direct", "wechat", "wechat"],
                            "period": [0, 1] * 3, "cohort_size": [1, 0] * 3,
                            "retained": pd.array([1, 0] * 3, dtype="Int64"), "rate": [1.0, None] * 3})
    average["breakdown"] = average["breakdown"].astype(object)
    assert_frame_equal(retention_average(got), average.astype({"rate": "float64"}))


def test_the_total_adds_up_the_channels_hand_worked(con, journeys):
    journeys(BREAKDOWN_LOG)
    # from the per-channel matrix above: 07-01 = ads 1 + direct 1 + wechat 1 = 3, all back on 07-02 (running);
    # 07-02 = direct's u4 alone, its k1 not started
    both = retention_with_total(con, RetentionParams(period="day", periods=2, breakdown="channel"))
    assert_frame_equal(both["total"], frame([
        ("2024-07-01", 3, 0, 3, 1.0, True), ("2024-07-01", 3, 1, 3, 1.0, False),
        ("2024-07-02", 1, 0, 1, 1.0, False), ("2024-07-02", 1, 1, NA, NA, False)]))
    assert_frame_equal(both["total"], retention(con, RetentionParams(period="day", periods=2)))


def _random_log(seed: int) -> dict:
    import random
    rng = random.Random(seed)
    log = {}
    for u in range(60):
        first = {"channel": rng.choice([None, "wechat", "ads", "seo"]), "campaign": rng.choice([None, "c1", "c2"]),
                 "platform": rng.choice(["ios", "android"])}
        events = []
        for i in range(rng.randrange(1, 9)):
            day, minute = rng.randrange(0, 75), rng.randrange(0, 1440)
            events.append((rng.choice(["signup", "open", "open", "buy"]),
                           f"{datetime(2024, 1, 1) + pd.Timedelta(days=day, minutes=minute):%Y-%m-%d %H:%M}",
                           first if i == 0 else {"platform": rng.choice(["ios", "android"])}))
        log[f"r{u}"] = events
    return log


TOTAL_CASES = [
    {}, {"mode": "recurring"}, {"criterion": "on_or_after"}, {"minimum_occurrences": 2},
    {"mode": "recurring", "criterion": "on_or_after", "minimum_occurrences": 2}, {"period": "day", "periods": 20},
    {"period": "month", "periods": 3}, {"start": Step("signup"), "returning": Step("buy")},
    {"week_start": "sunday", "timezone": "Asia/Shanghai"},
    {"filters": Filters(channels=("wechat", "ads"))}, {"filters": Filters(segment={"platform": "ios"})},
    {"filters": Filters(start=date(2024, 1, 15), end=date(2024, 2, 20))},
]


@pytest.mark.parametrize("breakdown", ["channel", "campaign"])
@pytest.mark.parametrize("case", range(len(TOTAL_CASES)))
def test_the_total_from_the_breakdown_is_the_matrix_without_it(con, journeys, monkeypatch, case, breakdown):
    """The Retention page draws the matrix and its split by channel or campaign from one query: over a random
    log and every kind of option, the total so made equals the matrix computed without a breakdown."""
    journeys(_random_log(case))
    kw = dict(TOTAL_CASES[case])
    if "timezone" in kw:
        kw.setdefault("filters", Filters(timezone=kw["timezone"]))
    p = RetentionParams(breakdown=breakdown, **kw)
    calls = []
    real = rm.retention
    monkeypatch.setattr(rm, "retention", lambda c, q: calls.append(q.breakdown) or real(c, q))
    both = retention_with_total(con, p)
    assert calls == [breakdown]    # one query
    monkeypatch.undo()
    alone = retention(con, replace(p, breakdown=None))
    assert_frame_equal(both["total"], alone)
    assert_frame_equal(both["by"], retention(con, p))
    assert alone["cohort_size"].sum() > 0 and both["by"]["breakdown"].nunique(dropna=False) > 1


@pytest.mark.parametrize("breakdown", [None, "channel", "platform"])
@pytest.mark.parametrize("alignment", ["calendar", "rolling"])
@pytest.mark.parametrize("case", range(len(TOTAL_CASES)))
def test_cohort_sizes_are_the_matrix_period_0(con, journeys, case, alignment, breakdown):
    """The Acquisition page's new users per period: the cohorts and sizes alone, equal to period 0 of the matrix
    for every option (without computing a single return)."""
    journeys(_random_log(100 + case))
    kw = dict(TOTAL_CASES[case])
    if "timezone" in kw:
        kw.setdefault("filters", Filters(timezone=kw["timezone"]))
    p = RetentionParams(breakdown=breakdown, alignment=alignment, **kw)
    full = retention(con, p)
    expected = full[full["period"] == 0][(["breakdown"] if breakdown else []) + ["cohort", "cohort_size"]]
    got = cohort_sizes(con, p)
    assert_frame_equal(got, expected.reset_index(drop=True))
    assert got["cohort_size"].sum() > 0
    if case == 0 and breakdown != "platform":   # first-time cohorts of any event: the users table alone
        assert "events" not in retention_sql(p, datetime(2024, 3, 20), sizes_only=True)[0]


def test_cohort_sizes_of_an_empty_database(con):
    got = cohort_sizes(con, RetentionParams(breakdown="channel"))
    assert got.empty and list(got.columns) == ["breakdown", "cohort", "cohort_size"]


@pytest.mark.parametrize("kw", [
    {}, {"criterion": "on_or_after"}, {"period": "day", "periods": 30}, {"period": "month", "periods": 3},
    {"breakdown": "channel"}, {"periods": 70},
    {"filters": Filters(channels=("wechat", "seo"), start=date(2024, 1, 8), end=date(2024, 2, 25))},
    {"timezone": "Asia/Kathmandu", "filters": Filters(timezone="Asia/Kathmandu")},
])
def test_rolling_returns_from_the_days_of_life_equal_the_events(con, journeys, monkeypatch, kw):
    """First-time cohorts of any event in rolling periods read the returns from the days of life (``user_days``):
    the same matrix as joining every event, over random logs and every option that keeps that path."""
    journeys(_random_log(200 + len(kw)))
    # events exactly 7, 14 … days after a first event: on the edge of a rolling period
    journeys({"edge": [("open", "2024-01-03 10:00:00"), ("open", "2024-01-10 10:00:00"),
                       ("open", "2024-01-17 09:59:59.999999"), ("open", "2024-02-02 10:00:00")]})
    p = RetentionParams(alignment="rolling", **kw)
    assert "user_days" in retention_sql(p, datetime(2024, 3, 20))[0]
    fast = retention(con, p)
    monkeypatch.setattr(rm, "days_of_life_ok", lambda q: False)
    assert "user_days" not in retention_sql(p, datetime(2024, 3, 20))[0]
    assert_frame_equal(fast, retention(con, p))
    assert fast["retained"].fillna(0).sum() > fast["cohort_size"].drop_duplicates().sum()   # returns counted
    for other in ({"minimum_occurrences": 2}, {"returning": Step("buy")}, {"alignment": "calendar"},
                  {"start": Step("signup")}):
        assert "user_days" not in retention_sql(replace(p, **other), datetime(2024, 3, 20))[0]

@pytest.mark.parametrize("kw", [{"alignment": "rolling", "breakdown": "channel"}, {"breakdown": "platform"}])
def test_the_total_runs_its_own_query_where_the_breakdown_does_not_add_up(con, journeys, monkeypatch, kw):
    # rolling periods (a cell's start depends on its members' start times) and an event property (one user
    # can be under two values): the matrix without a breakdown is computed, not summed
    journeys(_random_log(3))
    p = RetentionParams(**kw)
    calls = []
    real = rm.retention
    monkeypatch.setattr(rm, "retention", lambda c, q: calls.append(q.breakdown) or real(c, q))
    both = retention_with_total(con, p)
    assert calls == [kw["breakdown"], None]
    monkeypatch.undo()
    assert_frame_equal(both["total"], retention(con, replace(p, breakdown=None)))

@pytest.mark.parametrize("returning", [None, Step("open")])
@pytest.mark.parametrize("alignment", ["calendar", "rolling"])
def test_breakdown_by_event_property_counts_only_matching_returns(con, journeys, alignment, returning):
    journeys(BREAKDOWN_LOG)
    # start values: u1 ios, u2 android, u3 ios, u4 ios. u1's return is on android -> not an ios return.
    # android 07-01 {u2}: k1 1/1. ios 07-01 {u1, u3}: k1 only u3 -> 1/2. ios 07-02 {u4}.
    # rolling gives the same cells: every return is 24 h after its start (k1); k1 of 07-01 starts
    # 07-02 10:00 <= de and runs past de; ios 07-02 k0 ends 07-03 13:00 > de, k1 starts after de.
    # (every event is an "open", so returning=open gives the same cells as any event)
    got = retention(con, RetentionParams(period="day", periods=2, breakdown="platform", alignment=alignment,
                                         start=returning, returning=returning))
    expected = frame([
        ("android", "2024-07-01", 1, 0, 1, 1.0, alignment == "calendar"),
        ("android", "2024-07-01", 1, 1, 1, 1.0, False),
        ("android", "2024-07-02", 0, 0, 0, NA, False), ("android", "2024-07-02", 0, 1, NA, NA, False),
        ("ios", "2024-07-01", 2, 0, 2, 1.0, True), ("ios", "2024-07-01", 2, 1, 1, 0.5, False),
        ("ios", "2024-07-02", 1, 0, 1, 1.0, False), ("ios", "2024-07-02", 1, 1, NA, NA, False),
    ], breakdown=True)
    if alignment == "rolling":
        # rolling k0 completeness per cohort: android t0 07-01 11:00 + 24 h <= de 07-02 13:00 -> complete;
        # ios t0 max 07-01 12:00 + 24 h <= de -> complete; empty android 07-02 from 07-02 00:00 + 24 h > de.
        expected.loc[0, "complete"] = True
    assert_frame_equal(got, expected)


# -- start / returning step filters and global filters -------------------------------------------------

def test_start_and_return_steps_with_property_filters(con, journeys):
    journeys({
        "u1": [("signup", "2024-08-01 10:00", {"plan": "pro"}), ("purchase", "2024-08-02 10:00", {"channel": "ads"})],
        "u2": [("signup", "2024-08-01 10:00", {"plan": "free"}), ("purchase", "2024-08-02 10:00", {"channel": "ads"})],
        "u3": [("signup", "2024-08-01 10:00", {"plan": "pro"}),
               ("purchase", "2024-08-02 10:00", {"channel": "wechat"}), ("page_view", "2024-08-02 11:00")],
        "u4": [("page_view", "2024-07-31 10:00"), ("signup", "2024-08-01 10:00", {"plan": "pro"}),
               ("purchase", "2024-08-02 12:00", {"channel": "ads"})],
    })
    # members (first pro signup): u1, u3, u4 -- u4's first event is earlier, but its first *start* event is 08-01.
    # returns = purchase with channel 'Ads' (compared as a key): u1, u4 -> 2/3 on 08-02 (de's day, running).
    got = retention(con, RetentionParams(start=Step("signup", {"plan": "pro"}),
                                         returning=Step("purchase", {"channel": " Ads"}), period="day", periods=2))
    expected = frame([("2024-08-01", 3, 0, 3, 1.0, True), ("2024-08-01", 3, 1, 2, 2 / 3, False),
                      ("2024-08-02", 0, 0, 0, NA, False), ("2024-08-02", 0, 1, NA, NA, False)])
    assert_frame_equal(got, expected)


FILTER_CASES = {
    # user selection: only u1 (first touch wechat): joins 07-01 and returns on 07-02.
    "users": (Filters(channels=("WeChat",)),
              [("2024-07-01", 1, 0, 1, 1.0, True), ("2024-07-01", 1, 1, 1, 1.0, False),
               ("2024-07-02", 0, 0, 0, NA, False), ("2024-07-02", 0, 1, NA, NA, False)]),
    # segment platform=ios: members are users whose first-ever event is an ios event (u1, u3 on 07-01, u4 on
    # 07-02; u2 started on android). Only ios returns count: u1's android return does not -> 1/2.
    "segment": (Filters(segment={"platform": "ios"}),
                [("2024-07-01", 2, 0, 2, 1.0, True), ("2024-07-01", 2, 1, 1, 0.5, False),
                 ("2024-07-02", 1, 0, 1, 1.0, False), ("2024-07-02", 1, 1, NA, NA, False)]),
    # date range 07-02..07-02: only the 07-02 cohort; u1..u3 are active that day but their first event is
    # on 07-01 (first-time cohorts use all data, not the range), so the cohort is {u4}.
    "range": (Filters(start=date(2024, 7, 2), end=date(2024, 7, 2)),
              [("2024-07-02", 1, 0, 1, 1.0, False), ("2024-07-02", 1, 1, NA, NA, False)]),
}


@pytest.mark.parametrize("case", sorted(FILTER_CASES))
def test_global_filters(con, journeys, case):
    journeys(BREAKDOWN_LOG)
    filters, rows = FILTER_CASES[case]
    got = retention(con, RetentionParams(period="day", periods=2, filters=filters))
    assert_frame_equal(got, frame(rows))


def test_recurring_with_a_segment(con, journeys):
    journeys(BREAKDOWN_LOG)
    # segment platform=ios, recurring, any event: 07-01 members u1, u3 (ios events that day); 07-02 members
    # u3, u4 (u1's 07-02 event is android). Returns must be ios: of 07-01, only u3 is back on 07-02 -> 1/2.
    got = retention(con, RetentionParams(period="day", periods=2, mode="recurring",
                                         filters=Filters(segment={"platform": "ios"})))
    expected = frame([("2024-07-01", 2, 0, 2, 1.0, True), ("2024-07-01", 2, 1, 1, 0.5, False),
                      ("2024-07-02", 2, 0, 2, 1.0, False), ("2024-07-02", 2, 1, NA, NA, False)])
    assert_frame_equal(got, expected)


def test_a_date_range_without_cohorts_gives_an_empty_frame(con, journeys):
    journeys(BREAKDOWN_LOG)
    got = retention(con, RetentionParams(period="week", filters=Filters(start=date(2024, 7, 3), end=date(2024, 7, 5))))
    assert got.empty and list(got.columns) == ["cohort", "cohort_size", "period", "retained", "rate", "complete"]


def test_recurring_rolling_starts_each_membership_at_its_first_start_event(con, journeys):
    # u1 signs up 01-01 10:00 and 01-02 09:00 and 01-02 20:00; opens 01-03 08:00 and 01-03 12:00.
    # day cohorts; 01-01 membership t0 01-01 10:00: k1 = [01-02 10:00, 01-03 10:00) holds 01-03 08:00 (and the
    # 01-02 20:00 signup, which is not an open); 01-02 membership t0 01-02 09:00: k1 = [01-03 09:00, 01-04 09:00)
    # holds 01-03 12:00. de = 01-03 12:00: 01-01 k1 ended 01-03 10:00 -> complete; 01-02 k1 running.
    journeys({"u1": [("signup", "2024-01-01 10:00"), ("signup", "2024-01-02 09:00"), ("signup", "2024-01-02 20:00"),
                     ("open", "2024-01-03 08:00"), ("open", "2024-01-03 12:00")]})
    got = retention(con, RetentionParams(start=Step("signup"), returning=Step("open"), period="day", periods=2,
                                         mode="recurring", alignment="rolling", end=date(2024, 1, 2)))
    expected = frame([("2024-01-01", 1, 0, 1, 1.0, True), ("2024-01-01", 1, 1, 1, 1.0, True),
                      ("2024-01-02", 1, 0, 1, 1.0, True), ("2024-01-02", 1, 1, 1, 1.0, False)])
    assert_frame_equal(got, expected)


# -- empty data, purity, validation --------------------------------------------------------------------

def test_empty_data(con):
    got = retention(con, RetentionParams())
    assert list(got.columns) == ["cohort", "cohort_size", "period", "retained", "rate", "complete"] and got.empty
    assert list(retention(con, RetentionParams(breakdown="channel")).columns)[0] == "breakdown"
    assert retention_average(got).empty
    assert active_users(con).empty and list(active_users(con).columns) == ["date", "dau", "wau", "mau", "stickiness"]
    assert lifecycle(con).empty and list(lifecycle(con).columns) == ["period_start", "status", "users"]


def test_sql_binds_values_and_is_pure():
    sql, args = retention_sql(RetentionParams(start=Step("o'clock", {"plan": "x'y"}), breakdown="plan"),
                              datetime(2024, 1, 10, 12, 0))
    assert "o'clock" not in sql and "x'y" not in sql
    assert "o'clock" in args and "x'y" in args
    assert sql.count("?") == len(args)
    assert retention_sql(RetentionParams(), datetime(2024, 1, 10)) == retention_sql(RetentionParams(),
                                                                                    datetime(2024, 1, 10))


@pytest.mark.parametrize("kwargs, message", [
    ({"period": "year"}, "period must be one of"),
    ({"periods": 0}, "between 1 and"),
    ({"mode": "first"}, "mode must be one of"),
    ({"criterion": "after"}, "criterion must be one of"),
    ({"minimum_occurrences": 0}, "at least 1"),
    ({"alignment": "sliding"}, "alignment must be one of"),
    ({"week_start": "friday"}, "week_start must be one of"),
    ({"timezone": "Mars/Olympus"}, "Unknown time zone"),
    ({"end": datetime(2024, 1, 1, tzinfo=__import__("datetime").timezone.utc)}, "without a UTC offset"),
    ({"start": "signup"}, "must be a Step"),
    ({"breakdown": " "}, "breakdown must name"),
    ({"timezone": "Asia/Shanghai", "filters": Filters(start=date(2024, 1, 1))}, "differs from the filters'"),
])
def test_validation(kwargs, message):
    with pytest.raises(UserInputError, match=message):
        RetentionParams(**kwargs)


def test_lifecycle_validation(con):
    with pytest.raises(UserInputError, match="period must be one of"):
        lifecycle(con, period="quarter")
    with pytest.raises(UserInputError, match="Unknown time zone"):
        active_users(con, timezone="Nowhere/Land")


# -- DAU / WAU / MAU -----------------------------------------------------------------------------------

ACTIVE_LOG = {
    "u1": [("e", "2024-01-01 10:00"), ("e", "2024-01-05 10:00"), ("e", "2024-01-31 10:00")],
    "u2": [("e", "2024-01-05 09:00"), ("e", "2024-01-05 18:00"), ("e", "2024-01-06 10:00")],
    "u3": [("e", "2024-01-30 10:00")],
}


def test_dau_wau_mau_and_stickiness(con, journeys):
    journeys(ACTIVE_LOG)
    got = active_users(con, filters=Filters(start=date(2024, 1, 29)), end=date(2024, 2, 6))
    # day   DAU  WAU (d-6..d)         MAU (d-29..d)
    # 01-29  0   01-23..: none = 0    12-31..: u1, u2 = 2
    # 01-30  1   u3 = 1               01-01..: u1, u2, u3 = 3
    # 01-31  1   u3, u1 = 2           01-02..: u1 (01-05), u2, u3 = 3
    # 02-01  0   2                    01-03..: 3
    # 02-02  0   2                    01-04..: 3
    # 02-03  0   2                    01-05..: 3
    # 02-04  0   01-29..: 2           01-06..: u2 (01-06) still in = 3
    # 02-05  0   01-30..: 2           01-07..: u1, u3 = 2
    # 02-06  0   01-31..: u1 = 1      01-08..: 2
    expected = pd.DataFrame({
        "date": pd.date_range("2024-01-29", "2024-02-06").astype("datetime64[us]"),
        "dau": [0, 1, 1, 0, 0, 0, 0, 0, 0], "wau": [0, 1, 2, 2, 2, 2, 2, 2, 1], "mau": [2, 3, 3, 3, 3, 3, 3, 2, 2]})
    expected["stickiness"] = expected["dau"] / expected["mau"]
    assert_frame_equal(got, expected)


def test_active_users_default_range_time_zone_and_filters(con, journeys):
    journeys({"u1": [("e", "2024-01-01 23:30")], "u2": [("e", "2024-01-02 01:00", {"channel": "ads"})]})
    # UTC: two days, one user each; WAU/MAU accumulate to 2 on 01-02.
    expected = pd.DataFrame({"date": pd.to_datetime(["2024-01-01", "2024-01-02"]).astype("datetime64[us]"),
                             "dau": [1, 1], "wau": [1, 2], "mau": [1, 2], "stickiness": [1.0, 0.5]})
    assert_frame_equal(active_users(con), expected)
    # Shanghai: both events fall on 01-02 local -> one day with DAU 2.
    expected = pd.DataFrame({"date": pd.to_datetime(["2024-01-02"]).astype("datetime64[us]"),
                             "dau": [2], "wau": [2], "mau": [2], "stickiness": [1.0]})
    assert_frame_equal(active_users(con, timezone="Asia/Shanghai"), expected)
    # user selection: only u2 (first touch ads); days start at its first active day and end at the data end.
    expected = pd.DataFrame({"date": pd.to_datetime(["2024-01-02"]).astype("datetime64[us]"),
                             "dau": [1], "wau": [1], "mau": [1], "stickiness": [1.0]})
    assert_frame_equal(active_users(con, filters=Filters(channels=("ads",))), expected)


@pytest.mark.parametrize("tz", ["Asia/Shanghai", "America/New_York"])
@pytest.mark.parametrize("seed", [1, 2, 3])
def test_active_users_equal_counting_every_window_over_random_logs(con, journeys, seed, tz):
    """Against the definition counted directly: per day D, the users with an event on D, in [D-6, D], in
    [D-29, D] — users with gaps of every length around 7 and 30 days, in Shanghai time and in New York time (whose
    summer time begins on 10 March 2024, inside the logs), from a start date; each event's local day converted by
    pandas."""
    import random
    rng = random.Random(seed)
    log = {}
    for u in range(40):
        t = datetime(2024, 1, 1) + timedelta(hours=rng.randrange(24 * 20))
        events = []
        for _ in range(rng.randrange(1, 12)):
            events.append(("e", t.strftime("%Y-%m-%d %H:%M")))
            t += timedelta(hours=rng.choice([1, 20, 24 * 6 + 5, 24 * 7, 24 * 8, 24 * 29, 24 * 30 + 3, 24 * 31]))
        log[f"u{u}"] = events
    journeys(log)
    got = active_users(con, filters=Filters(start=date(2024, 1, 10), timezone=tz), timezone=tz)
    local = pd.DataFrame([(u, pd.Timestamp(t)) for u, evs in log.items() for _, t in evs], columns=["user", "t"])
    assert local["t"].min() < pd.Timestamp("2024-03-10") < local["t"].max()
    local["day"] = local["t"].dt.tz_localize("UTC").dt.tz_convert(tz).dt.tz_localize(None).dt.normalize()
    days = pd.date_range("2024-01-10", local["day"].max())
    expected = pd.DataFrame({
        "date": days.astype("datetime64[us]"),
        "dau": [local.loc[local["day"] == d, "user"].nunique() for d in days],
        "wau": [local.loc[local["day"].between(d - pd.Timedelta(days=6), d), "user"].nunique() for d in days],
        "mau": [local.loc[local["day"].between(d - pd.Timedelta(days=29), d), "user"].nunique() for d in days]})
    expected["stickiness"] = expected["dau"] / expected["mau"]
    assert expected["wau"].gt(expected["dau"]).any() and expected["mau"].gt(expected["wau"]).any()
    assert_frame_equal(got, expected)


@pytest.mark.parametrize("loads", [1, 3])
@pytest.mark.parametrize("tz", ["UTC", "Asia/Shanghai", "Asia/Kolkata", "America/New_York"])
def test_the_hours_with_an_event_give_the_counts_of_the_events(con, journeys, monkeypatch, tz, loads):
    """``user_hours`` in place of the events (UTC, a whole-hour fixed zone and one whose summer time moves by a
    whole hour at a whole UTC hour) gives the same DAU/WAU/MAU and lifecycle as the events, over random minutes
    around local midnights and the 2024 changes of New York's summer time, loaded at once or in three loads whose
    hours fall before, between and after the stored ones; a half-hour zone, a segment and events before 2000 take
    the events."""
    import random

    import metrics.derive as derive
    rng = random.Random(11)
    log = {}
    for u in range(60):
        events = []
        for _ in range(rng.randrange(1, 15)):
            t = rng.choice([datetime(2024, 1, 1) + timedelta(days=rng.randrange(100)),     # New York: 10 March,
                            datetime(2024, 10, 20) + timedelta(days=rng.randrange(30))])   # 3 November
            t += timedelta(hours=rng.choice([15, 16, 4, 5, 6, 7, 23, 0]), minutes=rng.choice([0, 29, 30, 59]),
                           seconds=rng.choice([0, 59]))
            first_touch = u % 3 == 0 and not events   # every third user's first event carries a channel
            events.append(("e", t.strftime("%Y-%m-%d %H:%M:%S"), {"channel": "ads"} if first_touch else {}))
        log[f"u{u}"] = events
    for part in range(loads):   # each event in one of the loads, at random
        journeys({user: kept for user, events in log.items()
                  if (kept := [e for i, e in enumerate(events) if random.Random(f"{user}{i}").randrange(loads) == part])})
    hours = tz != "Asia/Kolkata"
    assert derive.hours_ok(con, None, tz) == hours
    assert not derive.hours_ok(con, Filters(segment={"platform": "ios"}), "UTC")
    ads = Filters(channels=("ads",), timezone=tz)

    def counts():
        return [active_users(con, timezone=tz), active_users(con, ads, timezone=tz),
                lifecycle(con, "week", None, tz), lifecycle(con, "month", ads, tz),
                lifecycle(con, "day", None, tz, week_start="sunday"), lifecycle(con, "week", ads, tz, week_start="sunday")]

    got = counts()
    assert got[0]["wau"].max() > 10 and got[1]["dau"].sum() > 0 and got[3]["users"].sum() > 0
    # each frame carries the query that made it (the one a page shows), over the hours where they stand
    assert [reads_hours(con, g) for g in got] == [hours] * 6
    asked = []   # the events' counts: every check says no (and is the one consulted)
    monkeypatch.setattr(derive, "hours_ok", lambda *args: asked.append(args) or False)
    on_events = counts()
    for g, e in zip(got, on_events):
        assert_frame_equal(g, e)
    assert len(asked) >= 6
    assert [reads_hours(con, e) for e in on_events] == [False] * 6
    # an event before 2000 in Shanghai: its local time takes the zone database (offsets of other minutes then)
    monkeypatch.undo()
    journeys({"old": [("e", "1999-12-31 10:00:00")]})
    assert derive.hours_ok(con, None, "UTC") and not derive.hours_ok(con, None, "Asia/Shanghai")


class _LoadsMidway:
    """A connection on which ``load()`` commits just before the first query that reads ``user_hours``: a load
    landing between the check of the hours and the query."""

    def __init__(self, con, load):
        self.con, self.load = con, load

    def execute(self, sql, *args):
        if self.load is not None and "user_hours" in sql:
            load, self.load = self.load, None
            load()
        return self.con.execute(sql, *args)

    def __getattr__(self, name):
        return getattr(self.con, name)


_SINGAPORE = "Asia/Singapore"   # +8:00 since 1982, +7:30 in 1975: read at +8:00, a 1975 hour is on another local day


@pytest.mark.parametrize("metric", ["active_users", "lifecycle", "referral", "referral_page"])
def test_a_load_between_the_check_and_the_query_leaves_no_hours_behind(con, journeys, monkeypatch, metric):
    """The hours stand for the events of 2000-2099 only. A load that commits events of 1975 after the check said
    yes, and before the query ran, must not leave the result counted over the hours: the metric gives the events'
    counts of the data as loaded."""
    import metrics.derive as derive
    from metrics.referral import ReferralParams, referral, referral_page

    calls = {
        "active_users": lambda c: active_users(c, timezone=_SINGAPORE),
        "lifecycle": lambda c: lifecycle(c, "day", None, _SINGAPORE),
        "referral": lambda c: referral(c, ReferralParams(period="day", timezone=_SINGAPORE)),
        "referral_page": lambda c: referral_page(c, ReferralParams(period="day", timezone=_SINGAPORE))["per_period"],
    }
    journeys({"a": [("e", "2024-03-01 16:45:00"), ("e", "2024-03-02 10:00:00")], "b": [("e", "2024-03-02 01:00:00")]})
    assert derive.hours_ok(con, None, _SINGAPORE)
    # 16:15 UTC on 1 June 1975 is 23:45 on 1 June in Singapore; over the hours, read at the offset of 2000-2099
    # (+8:00), its hour's start, 16:00, is 00:00 on 2 June
    old = {"old": [("e", "1975-06-01 16:15:00")]}
    got = calls[metric](_LoadsMidway(con, lambda: journeys(old)))

    assert not derive.hours_ok(con, None, _SINGAPORE)
    expected = calls[metric](con)
    assert_frame_equal(got, expected)
    assert not reads_hours(con, got)   # and the query it carries for the page to show is the one over the events
    # the hours over the same data would count the 1975 event on 2 June: the test sees a result left on the hours
    monkeypatch.setattr(derive, "hours_ok", lambda *args: True)
    with pytest.raises(AssertionError):
        assert_frame_equal(calls[metric](con), expected)


# -- lifecycle -----------------------------------------------------------------------------------------

LIFECYCLE_LOG = {
    "u1": [("e", "2024-01-01 10:00"), ("e", "2024-01-09 10:00"), ("e", "2024-01-16 10:00")],
    "u2": [("e", "2024-01-02 10:00"), ("e", "2024-01-17 10:00")],
    "u3": [("e", "2024-01-10 10:00")],
    "u4": [("e", "2024-01-15 10:00"), ("e", "2024-01-23 10:00")],
}


def test_lifecycle_every_state(con, journeys):
    journeys(LIFECYCLE_LOG)
    # weeks W0 01-01, W1 01-08, W2 01-15, W3 01-22 (de's week).
    # u1 active W0 W1 W2: new, returning, returning, dormant in W3.
    # u2 active W0 W2:    new, dormant in W1, resurrecting in W2, dormant in W3.
    # u3 active W1:       new in W1, dormant in W2.
    # u4 active W2 W3:    new in W2, returning in W3.
    got = lifecycle(con, period="week")
    counts = {"2024-01-01": [2, 0, 0, 0], "2024-01-08": [1, 1, 0, 1], "2024-01-15": [1, 1, 1, 1],
              "2024-01-22": [0, 1, 0, 2]}
    expected = pd.DataFrame({
        "period_start": pd.to_datetime([d for d in counts for _ in range(4)]).astype("datetime64[us]"),
        "status": ["new", "returning", "resurrecting", "dormant"] * 4,
        "users": [n for d in counts for n in counts[d]]})
    assert_frame_equal(got, expected)


def test_lifecycle_new_means_first_ever_activity_not_first_in_the_filter(con, journeys):
    # u1's first event is on web in W0, then ios in W1 and W2; u2 starts on ios in W1.
    # With segment platform=ios: W1 u1 is resurrecting (seen before, not active on ios in W0), u2 new;
    # W2 u1 returning, u2 dormant.
    journeys({"u1": [("e", "2024-01-01 10:00", {"platform": "web"}), ("e", "2024-01-08 10:00", {"platform": "ios"}),
                     ("e", "2024-01-15 10:00", {"platform": "ios"})],
              "u2": [("e", "2024-01-09 10:00", {"platform": "ios"})]})
    got = lifecycle(con, period="week", filters=Filters(segment={"platform": "ios"}))
    expected = pd.DataFrame({
        "period_start": pd.to_datetime(["2024-01-08"] * 4 + ["2024-01-15"] * 4).astype("datetime64[us]"),
        "status": ["new", "returning", "resurrecting", "dormant"] * 2,
        "users": [1, 0, 1, 0, 0, 1, 0, 1]})
    assert_frame_equal(got, expected)


def test_labels_cover_every_output_column():
    columns = {"cohort", "cohort_size", "period", "retained", "rate", "complete", "date", "dau", "wau", "mau",
               "stickiness", "period_start", "status", "users"}
    assert columns <= set(LABELS)
    assert all(set(v) == {"en", "zh", "help_en", "help_zh"} and all(v.values()) for v in LABELS.values())


def test_every_english_label_is_in_a_docs_heading():
    from pathlib import Path
    text = (Path(__file__).resolve().parent.parent / "docs" / "metrics.md").read_text(encoding="utf-8")
    headings = [line for line in text.splitlines() if line.startswith("##")]
    missing = [v["en"] for v in LABELS.values() if not any(v["en"] in h for h in headings)]
    assert missing == []
