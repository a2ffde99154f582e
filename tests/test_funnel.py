"""Funnel metric (SPEC §2) on hand-worked journeys; every expected frame is computed in the comments.

Unless a test is about in-progress users, ``data_end`` is set far after the data so every window
is closed and nobody is in progress.
"""
from __future__ import annotations

import ast
from dataclasses import replace
from datetime import date, datetime, timedelta
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from metrics.filters import Filters
from metrics.funnel import COLUMNS, LABELS, Exclusion, FunnelParams, Step, funnel, funnel_sql, funnel_users
from store.errors import UserInputError

FAR = datetime(2030, 1, 1)
N = None


def params(*steps, **kw) -> FunnelParams:
    kw.setdefault("data_end", FAR)
    return FunnelParams(steps=tuple(Step(s) if isinstance(s, str) else s for s in steps), **kw)


def expected(rows, breakdown: bool = False) -> pd.DataFrame:
    """rows: (step, label, users, conv_from_first, conv_from_prev, dropped, median_s, mean_s, p90_s, in_progress)."""
    cols = (["breakdown"] if breakdown else []) + COLUMNS
    df = pd.DataFrame([list(r) for r in rows], columns=cols)
    for c in ("step", "users", "dropped", "in_progress"):
        df[c] = df[c].astype("int64")
    for c in ("conv_from_first", "conv_from_prev", "median_s", "mean_s", "p90_s"):
        df[c] = df[c].astype("float64")
    for c in ["label"] + (["breakdown"] if breakdown else []):
        df[c] = df[c].astype(object)
    return df


def check(con, p, rows, breakdown=False):
    pd.testing.assert_frame_equal(funnel(con, p), expected(rows, breakdown))


def users(con, p, step, status="reached", **kw) -> list[str]:
    return funnel_users(con, p, step, status, **kw)["user_id"].tolist()


# --------------------------------------------------------------------------------------------
# ordered funnels, ties, windows
# --------------------------------------------------------------------------------------------

def test_ordered_funnel_whole_frame(con, journeys):
    journeys({
        "u1": [("signup", "2024-01-01 10:00"), ("activate", "2024-01-01 10:10"), ("purchase", "2024-01-01 11:10")],
        "u2": [("signup", "2024-01-01 09:00"), ("page_view", "2024-01-01 09:01"), ("activate", "2024-01-01 09:05")],
        "u3": [("signup", "2024-01-02 08:00")],
        "u4": [("activate", "2024-01-01 08:00"), ("signup", "2024-01-01 09:00")],   # wrong order
        "u5": [("purchase", "2024-01-01 08:00")],                                     # never did step 1
    })
    # step 1: u1 u2 u3 u4 = 4; step 2: u1 (600 s) u2 (300 s) = 2; step 3: u1 (3600 s) = 1
    # step 2 median = mean = 450; p90 = 300 + 0.9 * (600 - 300) = 570
    check(con, params("signup", "activate", "purchase"), [
        (1, "signup", 4, 1.0, 1.0, 0, N, N, N, 0),
        (2, "activate", 2, 0.5, 0.5, 2, 450.0, 450.0, 570.0, 0),
        (3, "purchase", 1, 0.25, 0.5, 1, 3600.0, 3600.0, 3600.0, 0),
    ])
    p = params("signup", "activate", "purchase")
    assert users(con, p, 1) == ["u1", "u2", "u3", "u4"]
    assert users(con, p, 2, "dropped") == ["u3", "u4"]
    assert users(con, p, 3, "dropped") == ["u2"]
    assert users(con, p, 3) == ["u1"]
    # the variants quoted in docs/metrics.md (Funnels): strict stops u2 (page_view between); any order lets u4 through
    assert users(con, params("signup", "activate", "purchase", order="strict"), 2) == ["u1"]
    assert users(con, params("signup", "activate", "purchase", order="any"), 2) == ["u1", "u2", "u4"]


def test_ties_at_one_timestamp_count_in_either_listed_order(con, journeys):
    journeys({"u1": [("activate", "2024-01-01 10:00"), ("signup", "2024-01-01 10:00")]})
    # both at 10:00: t1 <= t2 holds, two different events -> reaches step 2 in 0 s
    check(con, params("signup", "activate"), [
        (1, "signup", 1, 1.0, 1.0, 0, N, N, N, 0),
        (2, "activate", 1, 1.0, 1.0, 0, 0.0, 0.0, 0.0, 0),
    ])


def test_superset_step_needs_a_strictly_later_event(con, journeys):
    a, b = {"page": "/a"}, {"page": "/b"}
    journeys({
        "ua": [("view", "2024-01-01 10:00", a)],                                     # one event: step 1 only
        "ub": [("view", "2024-01-01 10:00", {**a, "event_id": "b1"}),
               ("view", "2024-01-01 10:00", {**a, "event_id": "b2"})],             # same time: not strictly later
        "uc": [("view", "2024-01-01 10:00", b), ("view", "2024-01-01 10:00", a)],  # same time: not strictly later
        "ud": [("view", "2024-01-01 10:00", a), ("view", "2024-01-01 10:01", a)],  # 60 s later: step 2
    })
    # step 2 = view(page=/a) contains step 1 = view, so a strictly later event is required: only ud (60 s)
    check(con, params("view", Step("view", a)), [
        (1, "view", 4, 1.0, 1.0, 0, N, N, N, 0),
        (2, "view (page=/a)", 1, 0.25, 0.25, 3, 60.0, 60.0, 60.0, 0),
    ])


def test_broader_later_step_may_tie_but_never_reuses_the_event(con, journeys):
    a, b = {"page": "/a"}, {"page": "/b"}
    journeys({
        "ua": [("view", "2024-01-01 10:00", a)],                                     # the one event can't be both
        "ue": [("view", "2024-01-01 10:00", a), ("view", "2024-01-01 10:00", b)],  # tie, another event: step 2
        "uf": [("view", "2024-01-01 10:00", b), ("view", "2024-01-01 10:05", a)],  # nothing at/after 10:05 but itself
    })
    check(con, params(Step("view", a), "view"), [
        (1, "view (page=/a)", 3, 1.0, 1.0, 0, N, N, N, 0),
        (2, "view", 1, 1 / 3, 1 / 3, 2, 0.0, 0.0, 0.0, 0),
    ])


def test_repeated_steps(con, journeys):
    journeys({
        # identical steps: each needs a strictly later event -> 10:00, 10:01, 10:02 (60 s, 60 s)
        "ug": [("view", "2024-01-01 10:00", {"event_id": "g1"}), ("view", "2024-01-01 10:00", {"event_id": "g2"}),
               ("view", "2024-01-01 10:01"), ("view", "2024-01-01 10:02")],
        # two views at one time: step 2 must be strictly later -> step 1 only
        "uh": [("view", "2024-01-01 10:00", {"event_id": "h1"}), ("view", "2024-01-01 10:00", {"event_id": "h2"})],
    })
    check(con, params("view", "view", "view"), [
        (1, "view", 2, 1.0, 1.0, 0, N, N, N, 0),
        (2, "view", 1, 0.5, 0.5, 1, 60.0, 60.0, 60.0, 0),
        (3, "view", 1, 0.5, 1.0, 0, 60.0, 60.0, 60.0, 0),
    ])


def test_a_step_repeated_later_in_the_funnel_does_not_reuse_step_one(con, journeys):
    journeys({
        "ui": [("a", "2024-01-01 10:00"), ("b", "2024-01-01 10:00")],                     # a, b; the a is used
        "uj": [("a", "2024-01-01 10:00", {"event_id": "j1"}), ("b", "2024-01-01 10:00"),
               ("a", "2024-01-01 10:00", {"event_id": "j2"})],                            # a second a: step 3
    })
    check(con, params("a", "b", "a"), [
        (1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 2, 1.0, 1.0, 0, 0.0, 0.0, 0.0, 0),
        (3, "a", 1, 0.5, 0.5, 1, 0.0, 0.0, 0.0, 0),
    ])


def test_window_boundary_is_inclusive_to_the_microsecond(con, journeys):
    journeys({
        "on": [("a", "2024-01-01 10:00:00"), ("b", "2024-01-01 11:00:00")],            # exactly t1 + 1 h: counts
        "late": [("a", "2024-01-01 10:00:00"), ("b", "2024-01-01 11:00:00.000001")],   # 1 µs later: does not
    })
    check(con, params("a", "b", window=timedelta(hours=1)), [
        (1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 1, 0.5, 0.5, 1, 3600.0, 3600.0, 3600.0, 0),
    ])
    assert users(con, params("a", "b", window=timedelta(hours=1)), 2, "dropped") == ["late"]


def test_window_is_an_absolute_duration_across_dst(con, journeys):
    # New York springs forward on 2024-03-10 02:00 -> 03:00 (a 23-hour local day)
    journeys({
        "d1": [("a", "2024-03-09 12:00"), ("b", "2024-03-10 13:00")],             # 17:00Z -> 17:00Z = 24 h: counts
        "d2": [("a", "2024-03-09 12:00"), ("b", "2024-03-10 13:00:00.000001")],   # 24 h + 1 µs: does not
        "d3": [("a", "2024-03-09 23:30"), ("b", "2024-03-10 23:30")],             # same clock time next day = 23 h
        "d4": [("a", "2024-03-10 00:30"), ("b", "2024-03-10 01:00")],             # entry after the local range end
    }, timezone="America/New_York")
    # step 2: d1 86400 s, d3 82800 s -> median = mean = 84600, p90 = 82800 + 0.9 * 3600 = 86040
    check(con, params("a", "b", window=timedelta(days=1), timezone="America/New_York",
                      start=date(2024, 3, 9), end=date(2024, 3, 10)), [
        (1, "a", 3, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 2, 2 / 3, 2 / 3, 1, 84600.0, 84600.0, 86040.0, 0),
    ])


def test_time_to_convert_statistics(con, journeys):
    deltas = [60, 120, 180, 240, 600]
    journeys({f"u{i}": [("a", "2024-01-01 10:00:00"), ("b", f"2024-01-01 10:{d // 60:02d}:{d % 60:02d}")]
              for i, d in enumerate(deltas)})
    # median 180; mean 1200 / 5 = 240; p90 at position 0.9 * 4 = 3.6: 240 + 0.6 * (600 - 240) = 456
    check(con, params("a", "b"), [
        (1, "a", 5, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 5, 1.0, 1.0, 0, 180.0, 240.0, 456.0, 0),
    ])


# --------------------------------------------------------------------------------------------
# strict and any order
# --------------------------------------------------------------------------------------------

STRICT = {
    "s1": [("a", "2024-01-01 10:00"), ("b", "2024-01-01 10:01"), ("c", "2024-01-01 10:02")],
    "s2": [("a", "2024-01-01 10:00"), ("x", "2024-01-01 10:01"), ("b", "2024-01-01 10:02")],    # other event
    "s3": [("a", "2024-01-01 10:00"), ("a", "2024-01-01 10:01"), ("b", "2024-01-01 10:02")],    # repeated step 1
    "s4": [("a", "2024-01-01 10:00"), ("x", "2024-01-01 10:00"), ("b", "2024-01-01 10:01")],    # tie: no break
    "s5": [("a", "2024-01-01 10:00"), ("b", "2024-01-01 10:01"), ("x", "2024-01-01 10:02"), ("c", "2024-01-01 10:03")],
}


def test_strict_order_breaks_on_other_events_and_repeated_first_step(con, journeys):
    journeys(STRICT)
    # strict, best: s1 3; s2 1 (x between); s3 2 via the second a (60 s); s4 2; s5 2 (x before c)
    check(con, params("a", "b", "c", order="strict"), [
        (1, "a", 5, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 4, 0.8, 0.8, 1, 60.0, 60.0, 60.0, 0),
        (3, "c", 1, 0.2, 0.25, 3, 60.0, 60.0, 60.0, 0),
    ])
    # strict, first attempt: s3's first a is followed by another a -> step 1 only
    check(con, params("a", "b", "c", order="strict", attempt="first"), [
        (1, "a", 5, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 3, 0.6, 0.6, 2, 60.0, 60.0, 60.0, 0),
        (3, "c", 1, 0.2, 1 / 3, 2, 60.0, 60.0, 60.0, 0),
    ])
    # ordered: other events may come between: s1 3, s2 2 (120 s), s3 2 (best: the 10:00 a, 120 s), s4 2, s5 3
    # step 2 seconds 60, 120, 120, 60, 60 -> median 60, mean 84, p90 at 3.6 -> 120; step 3: s1 60, s5 120
    check(con, params("a", "b", "c"), [
        (1, "a", 5, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 5, 1.0, 1.0, 0, 60.0, 84.0, 120.0, 0),
        (3, "c", 2, 0.4, 0.4, 3, 90.0, 90.0, 114.0, 0),
    ])


def test_any_order(con, journeys):
    journeys({
        "y1": [("c", "2024-01-01 10:00"), ("a", "2024-01-01 10:10")],                               # 2 steps
        "y2": [("b", "2024-01-01 10:00")],                                                          # 1 step
        "y3": [("c", "2024-01-01 10:00"), ("b", "2024-01-01 10:20"), ("a", "2024-01-01 10:30")],    # 3 steps
        "y4": [("a", "2024-01-01 10:00"), ("c", "2024-01-01 12:00")],                               # 2 h apart: 1
        "y5": [("a", "2024-01-01 10:00"), ("a", "2024-01-01 10:05")],                               # same step: 1
    })
    # step 2: y1 600 s, y3 1200 s -> median = mean = 900, p90 = 600 + 0.9 * 600 = 1140; step 3: y3 600 s
    check(con, params("a", "b", "c", order="any", window=timedelta(hours=1)), [
        (1, "a", 5, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 2, 0.4, 0.4, 3, 900.0, 900.0, 1140.0, 0),
        (3, "c", 1, 0.2, 0.5, 1, 600.0, 600.0, 600.0, 0),
    ])


def test_any_order_with_a_window_longer_than_all_stored_time(con, journeys):
    # 60,000 days is more than 1970-2100: each attempt then reaches every step at or after it
    journeys({
        "z1": [("b", "2024-01-01 10:00"), ("a", "2024-01-02 10:00"), ("c", "2090-01-01 00:00")],
        "z2": [("c", "1975-01-01 00:00"), ("a", "2099-12-31 00:00")],
    })
    # step 2: z1 86,400 s, z2 3,944,592,000 s (1975-01-01 -> 2099-12-31); step 3: z1 2,082,722,400 s. z2's
    # window is open at the end of the data: in progress at step 3
    check(con, params("a", "b", "c", order="any", window=timedelta(days=60_000)), [
        (1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 2, 1.0, 1.0, 0, 1_972_339_200.0, 1_972_339_200.0, 86_400.0 + 0.9 * (3_944_592_000 - 86_400), 0),
        (3, "c", 1, 0.5, 0.5, 0, 2_082_722_400.0, 2_082_722_400.0, 2_082_722_400.0, 1),
    ])


def test_any_order_users_within_one_window_are_settled_by_their_span(con, journeys):
    """Over every event, a user whose step events all lie within one window of their first is counted from the
    per-user rollup (``any_span``), the others by the window pass: the same levels, times and open flags. Window
    10 s, data end 12:00:30 (an attempt is open when its deadline is after it)."""
    journeys({
        # within one window: a@15 reaches b@22 (level 2); b@22 alone is level 1. The latest level-2 attempt
        # is a@15, deadline :25, closed, although the user's last event (:22) has an open deadline (:32)
        "w1": [("a", "2024-01-01 12:00:15"), ("b", "2024-01-01 12:00:22")],
        # within one window (span 10 s, inclusive): a@12 and b@21 reach level 2, b@21 with a@22 too: that
        # attempt's deadline :31 is open. The first attempt, a@12 (deadline :22), is closed
        "w2": [("a", "2024-01-01 12:00:12"), ("b", "2024-01-01 12:00:21"), ("a", "2024-01-01 12:00:22")],
        # wider than a window: the window pass. a@0 reaches b@5 (level 2, deadline :10, closed)
        "w3": [("a", "2024-01-01 12:00:00"), ("b", "2024-01-01 12:00:05"), ("c", "2024-01-01 12:00:25")],
        # one step only: level 1, open (deadline :38)
        "w4": [("c", "2024-01-01 12:00:28")],
        # within one window, every step: b@2, c@3, a@9
        "w5": [("b", "2024-01-01 12:00:02"), ("c", "2024-01-01 12:00:03"), ("a", "2024-01-01 12:00:09")],
    })
    end = datetime(2024, 1, 1, 12, 0, 30)
    best = params("a", "b", "c", order="any", window=timedelta(seconds=10), data_end=end)
    first = replace(best, attempt="first")
    assert "FROM any_span" in funnel_sql(best)[0] and "FROM any_span" in funnel_sql(first)[0]
    # step 2: w1 7 s, w2 9 s, w3 5 s, w5 1 s -> median 6, mean 5.5, p90 = 7 + 0.7 × 2 = 8.4; w4 in progress.
    # step 3: w5 6 s; best: w2 in progress (w1, w3 dropped); first: w2's first attempt is closed (3 dropped)
    check(con, best, [
        (1, "a", 5, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 4, 0.8, 0.8, 0, 6.0, 5.5, 8.4, 1),
        (3, "c", 1, 0.2, 0.25, 2, 6.0, 6.0, 6.0, 1),
    ])
    check(con, first, [
        (1, "a", 5, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 4, 0.8, 0.8, 0, 6.0, 5.5, 8.4, 1),
        (3, "c", 1, 0.2, 0.25, 3, 6.0, 6.0, 6.0, 0),
    ])
    assert users(con, best, 3, "dropped") == ["w1", "w3"]


def test_any_order_one_event_fills_one_step(con, journeys):
    a = {"page": "/a"}
    journeys({
        "one": [("view", "2024-01-01 10:00", a)],                                      # matches both steps, once
        "two": [("view", "2024-01-01 10:00", a), ("view", "2024-01-01 10:05", a)],    # two events: both steps
    })
    check(con, params("view", Step("view", a), order="any"), [
        (1, "view", 2, 1.0, 1.0, 0, N, N, N, 0),
        (2, "view (page=/a)", 1, 0.5, 0.5, 1, 300.0, 300.0, 300.0, 0),
    ])


# --------------------------------------------------------------------------------------------
# attempts, exclusions, entry range
# --------------------------------------------------------------------------------------------

def test_best_versus_first_attempt(con, journeys):
    journeys({
        # first a on Jan 1 cannot reach b on Jan 21 (14 days); the Jan 20 a can (1 day)
        "b1": [("a", "2024-01-01 10:00"), ("a", "2024-01-20 10:00"), ("b", "2024-01-21 10:00")],
        # both attempts convert; the earliest furthest attempt gives the time: 1 day, not 1 hour
        "b2": [("a", "2024-01-01 10:00"), ("b", "2024-01-02 10:00"), ("a", "2024-01-03 10:00"),
               ("b", "2024-01-03 11:00")],
    })
    check(con, params("a", "b"), [
        (1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 2, 1.0, 1.0, 0, 86400.0, 86400.0, 86400.0, 0),
    ])
    check(con, params("a", "b", attempt="first"), [
        (1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 1, 0.5, 0.5, 1, 86400.0, 86400.0, 86400.0, 0),
    ])


def test_exclusions(con, journeys):
    journeys({
        "x1": [("a", "2024-01-01 10:00"), ("x", "2024-01-01 10:30"), ("b", "2024-01-01 11:00")],   # tainted: out
        "x2": [("a", "2024-01-01 10:00"), ("x", "2024-01-01 10:30"), ("a", "2024-01-01 10:40"),
               ("b", "2024-01-01 11:00")],                                 # second attempt clean: 1200 s
        "x3": [("a", "2024-01-01 10:00"), ("b", "2024-01-01 11:00"), ("x", "2024-01-01 11:30")],   # x after b: 3600 s
        "x4": [("a", "2024-01-01 10:00"), ("x", "2024-01-01 10:00"), ("b", "2024-01-01 10:00")],   # not strictly between
        # furthest attempt (level 3) tainted, the later clean attempt only reaches level 2: removed entirely
        "x5": [("a", "2024-01-01 10:00"), ("x", "2024-01-01 10:10"), ("b", "2024-01-01 10:20"),
               ("c", "2024-01-01 10:30"), ("a", "2024-01-01 11:00"), ("b", "2024-01-01 11:10")],
        "x6": [("a", "2024-01-01 10:00"), ("x", "2024-01-01 10:05")],       # never reaches b: not tainted
    })
    # kept: x2 x3 x4 x6 = 4; step 2: 1200, 3600, 0 -> median 1200, mean 1600, p90 at 1.8: 1200 + 0.8 * 2400 = 3120
    p = params("a", "b", "c", exclusions=(Exclusion("x", from_step=0, to_step=1),))
    check(con, p, [
        (1, "a", 4, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 3, 0.75, 0.75, 1, 1200.0, 1600.0, 3120.0, 0),
        (3, "c", 0, 0.0, 0.0, 3, N, N, N, 0),
    ])
    assert users(con, p, 1) == ["x2", "x3", "x4", "x6"]
    # an exclusion between steps 1 and 2 (0-based) does not touch x1's a -> x -> b
    p2 = params("a", "b", "c", exclusions=(Exclusion("x", from_step=1, to_step=2),))
    assert users(con, p2, 1) == ["x1", "x2", "x3", "x4", "x5", "x6"]   # x5: x at 10:10 is before its b
    assert users(con, p2, 3) == ["x5"]


@pytest.mark.parametrize("in_range, step2, stats", [
    # r1 converts on Jan 11 (after the range end), r4 inside: 172800 s and 86400 s
    (False, 2, (129600.0, 129600.0, 164160.0)),
    # every step inside [Jan 1, Jan 10): only r4
    (True, 1, (86400.0, 86400.0, 86400.0)),
])
def test_conversion_after_the_range_end(con, journeys, in_range, step2, stats):
    journeys({
        "r1": [("a", "2024-01-09 10:00"), ("b", "2024-01-11 10:00")],
        "r2": [("a", "2024-01-10 00:00"), ("b", "2024-01-10 01:00")],        # entry at the (exclusive) end
        "r3": [("a", "2023-12-31 23:59:59"), ("b", "2024-01-02 00:00")],     # entry before the start
        "r4": [("a", "2024-01-01 00:00"), ("b", "2024-01-02 00:00")],
    })
    p = params("a", "b", start=date(2024, 1, 1), end=date(2024, 1, 10), conversion_in_range=in_range)
    check(con, p, [
        (1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", step2, step2 / 2, step2 / 2, 2 - step2, *stats, 0),
    ])


@pytest.mark.parametrize("order", ["ordered", "strict", "any", "general"])
@pytest.mark.parametrize("in_range, end, pending", [
    (True, date(2024, 1, 3), False),    # every step before Jan 3, the data ending Jan 5: the window has closed
    (True, date(2024, 1, 10), True),    # the range still open at the end of the data
    (False, date(2024, 1, 3), True),    # later steps may land after the range end: open until Jan 15
])
def test_in_progress_with_every_step_in_range(con, journeys, order, in_range, end, pending):
    # p1 stops at step 1, p2 converts in an hour. "general": step 2 (any a) also matches step 1's events (a on
    # /x), which takes the general path rather than a chain path
    x = {"page": "/x"}
    second = "a" if order == "general" else "b"
    journeys({
        "p1": [("a", "2024-01-01 10:00", x)],
        "p2": [("a", "2024-01-01 10:00", x), (second, "2024-01-01 11:00")],
    })
    p = params(Step("a", x), Step(second), order="ordered" if order == "general" else order, start=date(2024, 1, 1),
               end=end, conversion_in_range=in_range, data_end=datetime(2024, 1, 5))
    check(con, p, [
        (1, "a (page=/x)", 2, 1.0, 1.0, 0, N, N, N, 0),
        (2, second, 1, 0.5, 0.5, 0 if pending else 1, 3600.0, 3600.0, 3600.0, 1 if pending else 0),
    ])


def test_in_progress_is_apart_from_dropped(con, journeys):
    journeys({
        "i1": [("a", "2024-01-01 00:00"), ("b", "2024-01-02 00:00")],
        "i2": [("a", "2024-01-01 00:00")],          # window closed Jan 15: dropped
        "i3": [("a", "2024-01-25 00:00")],          # window open until Feb 8: in progress
        "i6": [("a", "2024-01-18 00:00")],          # window ends Feb 1 = data end, not after it: dropped
        "zz": [("x", "2024-02-01 00:00")],          # the latest event: end of the data
    })
    p = FunnelParams(steps=(Step("a"), Step("b")))   # data end = latest stored event
    # step 2: reached 1; of the other 3, 1 in progress, 2 dropped
    check(con, p, [
        (1, "a", 4, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 1, 0.25, 0.25, 2, 86400.0, 86400.0, 86400.0, 1),
    ])
    assert users(con, p, 2, "dropped") == ["i2", "i6"]
    assert users(con, p, 2) == ["i1"]
    assert users(con, p, 1, "dropped") == []
    # an explicit data end before i2's deadline puts i2 and i6 in progress as well
    check(con, FunnelParams(steps=(Step("a"), Step("b")), data_end=datetime(2024, 1, 10)), [
        (1, "a", 4, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 1, 0.25, 0.25, 0, 86400.0, 86400.0, 86400.0, 3),
    ])


def test_a_newer_attempt_stuck_lower_does_not_make_the_next_step_pending(con, journeys):
    journeys({
        # reached b on Jan 2 (window closed Jan 15); a new a on Jan 25 is an open attempt, but it is
        # at step 1, below the user's furthest step 2: at c the user has dropped, not in progress.
        "s1": [("a", "2024-01-01 00:00"), ("b", "2024-01-02 00:00"), ("a", "2024-01-25 00:00")],
        # reached b on Jan 26 (window open until Feb 9): in progress at c
        "s2": [("a", "2024-01-26 00:00"), ("b", "2024-01-26 12:00")],
        # at step 1 with an open window: in progress at b
        "s3": [("a", "2024-01-30 00:00")],
        "zz": [("x", "2024-02-01 00:00")],          # the latest event: end of the data
    })
    p = FunnelParams(steps=(Step("a"), Step("b"), Step("c")))
    # step 2: s1, s2 reached; s3 in progress. step 3: none reached; s2 in progress, s1 dropped.
    # a→b times: s1 86400 s, s2 43200 s; median = mean = 64800; p90 = 43200 + 0.9 × 43200 = 82080.
    check(con, p, [
        (1, "a", 3, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 2, 2 / 3, 2 / 3, 0, 64800.0, 64800.0, 82080.0, 1),
        (3, "c", 0, 0.0, 0.0, 1, N, N, N, 1),
    ])
    assert users(con, p, 3, "dropped") == ["s1"]


@pytest.mark.parametrize("kw", [
    {"order": "ordered"}, {"order": "strict"}, {"order": "any"}, {"attempt": "first"},
    {"breakdown": "channel", "top_n": 1}, {"breakdown": "channel", "breakdown_attribution": "entry"},
])
def test_the_table_counts_the_users_the_lists_give(con, journeys, kw):
    """The Funnel page reads a step's user count off the table (``users``; ``dropped``) and lists the ids only
    on request: for every step, status and breakdown value the two must be the same users, counted."""
    journeys({
        "i1": [("a", "2024-01-01 00:00", {"channel": "wechat"}), ("b", "2024-01-02 00:00"), ("c", "2024-01-03 00:00")],
        "i2": [("a", "2024-01-01 00:00", {"channel": "google"})],                        # dropped at b
        "i3": [("a", "2024-01-25 00:00", {"channel": "wechat"})],                        # in progress at b
        "s1": [("a", "2024-01-01 00:00"), ("b", "2024-01-02 00:00"), ("a", "2024-01-25 00:00")],
        "s2": [("a", "2024-01-26 00:00", {"channel": "google"}), ("b", "2024-01-26 12:00")],
        "s3": [("b", "2024-01-05 00:00", {"channel": "baidu"}), ("x", "2024-01-05 01:00"), ("a", "2024-01-05 02:00"),
               ("c", "2024-01-05 03:00")],
        "zz": [("x", "2024-02-01 00:00")],                                                 # the end of the data
    })
    p = FunnelParams(steps=(Step("a"), Step("b"), Step("c")), **kw)
    table = funnel(con, p)
    values = [None] + (list(dict.fromkeys(table["breakdown"])) if "breakdown" in table.columns else [])
    seen = 0
    for value in values:
        rows = table if value is None else table[table["breakdown"] == value]
        for step in (1, 2, 3):
            at = rows[rows["step"] == step]
            for status, column in (("reached", "users"), ("dropped", "dropped")):
                listed = users(con, p, step, status, breakdown_value=value)
                assert len(listed) == int(at[column].sum()), (value, step, status, listed)
                seen += len(listed)
    assert seen > 0 and int(table["dropped"].sum()) > 0 and int(table["in_progress"].sum()) > 0

# --------------------------------------------------------------------------------------------
# breakdowns, property filters, global filters
# --------------------------------------------------------------------------------------------

BREAKDOWN = {
    "k1": [("a", "2024-01-01 10:00", {"channel": "wechat"}), ("b", "2024-01-01 10:10")],
    "k2": [("page_view", "2024-01-01 09:00", {"channel": "WeChat"}), ("a", "2024-01-01 10:00", {"channel": "google"})],
    "k3": [("a", "2024-01-01 10:00", {"channel": "google"}), ("b", "2024-01-01 10:30")],
    "k4": [("a", "2024-01-01 10:00")],
    "k5": [("a", "2024-01-01 10:00", {"channel": "baidu"}), ("b", "2024-01-01 11:00")],
}


def test_breakdown_by_acquisition_channel_with_top_n(con, journeys):
    journeys(BREAKDOWN)
    # first touch: wechat k1 k2 (2), google k3, direct k4, baidu k5 (1 each); top 2 = wechat, then baidu (name order
    # breaks the tie); direct + google -> Other
    check(con, params("a", "b", breakdown="channel", top_n=2), [
        ("wechat", 1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        ("wechat", 2, "b", 1, 0.5, 0.5, 1, 600.0, 600.0, 600.0, 0),
        ("baidu", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("baidu", 2, "b", 1, 1.0, 1.0, 0, 3600.0, 3600.0, 3600.0, 0),
        ("Other", 1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        ("Other", 2, "b", 1, 0.5, 0.5, 1, 1800.0, 1800.0, 1800.0, 0),
    ], breakdown=True)
    p = params("a", "b", breakdown="channel", top_n=2)
    assert users(con, p, 1, breakdown_value="Other") == ["k3", "k4"]
    assert users(con, p, 2, "dropped", breakdown_value="wechat") == ["k2"]


def test_breakdown_by_entry_channel(con, journeys):
    journeys(BREAKDOWN)
    # step-1 event values: k1 wechat, k2 google, k3 google, k4 (none), k5 baidu; top 2 = google (2), then
    # "(none)" (sorts before "baidu"); baidu + wechat -> Other: 600 s and 3600 s -> p90 = 600 + 0.9 * 3000 = 3300
    check(con, params("a", "b", breakdown="channel", breakdown_attribution="entry", top_n=2), [
        ("google", 1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        ("google", 2, "b", 1, 0.5, 0.5, 1, 1800.0, 1800.0, 1800.0, 0),
        ("(none)", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("(none)", 2, "b", 0, 0.0, 0.0, 1, N, N, N, 0),
        ("Other", 1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        ("Other", 2, "b", 2, 1.0, 1.0, 0, 2100.0, 2100.0, 3300.0, 0),
    ], breakdown=True)


def test_breakdown_by_property(con, journeys):
    journeys({
        "q1": [("page_view", "2024-01-01 09:00", {"plan": "free"}), ("a", "2024-01-01 10:00", {"plan": "pro"}),
               ("b", "2024-01-01 10:01")],
        "q2": [("a", "2024-01-01 10:00", {"plan": "pro"})],
        "q3": [("a", "2024-01-02 10:00")],
    })
    # acquisition: the first event's value: q1 free, q2 pro, q3 (none); 1 user each -> name order
    check(con, params("a", "b", breakdown="plan"), [
        ("(none)", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("(none)", 2, "b", 0, 0.0, 0.0, 1, N, N, N, 0),
        ("free", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("free", 2, "b", 1, 1.0, 1.0, 0, 60.0, 60.0, 60.0, 0),
        ("pro", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("pro", 2, "b", 0, 0.0, 0.0, 1, N, N, N, 0),
    ], breakdown=True)
    # entry: q1 and q2 both pro
    p = params("a", "b", breakdown="plan", breakdown_attribution="entry")
    check(con, p, [
        ("pro", 1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        ("pro", 2, "b", 1, 0.5, 0.5, 1, 60.0, 60.0, 60.0, 0),
        ("(none)", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("(none)", 2, "b", 0, 0.0, 0.0, 1, N, N, N, 0),
    ], breakdown=True)
    assert users(con, p, 1, breakdown_value="pro") == ["q1", "q2"]


def test_entry_breakdown_takes_the_counted_attempts_event_in_scope_ties_by_event_id(con, journeys):
    journeys({
        # two step-1 events at one time: the smaller event_id decides...
        "w1": [("a", "2024-01-01 10:00", {"event_id": "k2", "plan": "pro", "platform": "ios"}),
               ("a", "2024-01-01 10:00", {"event_id": "k1", "plan": "free", "platform": "ios"}),
               ("b", "2024-01-01 10:05", {"event_id": "k0", "platform": "ios"})],
        # ...among the events the segment keeps: k3 (android) is out of scope
        "w2": [("a", "2024-01-01 11:00", {"event_id": "k4", "plan": "team", "platform": "ios"}),
               ("a", "2024-01-01 11:00", {"event_id": "k3", "plan": "free", "platform": "android"}),
               ("b", "2024-01-01 11:05", {"event_id": "k5", "platform": "ios"})],
        # the counted attempt is the one reaching b, not the earlier step-1 event
        "w3": [("a", "2024-01-01 08:00", {"event_id": "m1", "plan": "free", "platform": "ios"}),
               ("a", "2024-01-03 08:00", {"event_id": "m2", "plan": "team", "platform": "ios"}),
               ("b", "2024-01-03 09:00", {"event_id": "m3", "platform": "ios"})],
    })
    p = params("a", "b", breakdown="plan", breakdown_attribution="entry", window=timedelta(days=1),
               filters=Filters(segment={"platform": "ios"}))
    check(con, p, [
        ("team", 1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        ("team", 2, "b", 2, 1.0, 1.0, 0, 1950.0, 1950.0, 3270.0, 0),   # 300 s and 3600 s: p90 = 300 + 0.9 * 3300
        ("free", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("free", 2, "b", 1, 1.0, 1.0, 0, 300.0, 300.0, 300.0, 0),
    ], breakdown=True)


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
def test_entry_breakdown_ties_between_a_value_and_none_go_by_event_id(con, journeys, order):
    journeys({
        # two step-1 events at one time, one without the property: the smaller event_id decides, so a value on
        # the other event does not win over its absence...
        "n1": [("a", "2024-01-01 10:00", {"event_id": "k1"}),
               ("a", "2024-01-01 10:00", {"event_id": "k2", "plan": "pro"}),
               ("b", "2024-01-01 10:05", {"event_id": "k3"})],
        # ...nor loses to it
        "n2": [("a", "2024-01-01 10:00", {"event_id": "k5"}),
               ("a", "2024-01-01 10:00", {"event_id": "k4", "plan": "pro"}),
               ("b", "2024-01-01 10:05", {"event_id": "k6"})],
        # tied events that agree: their value
        "n3": [("a", "2024-01-01 10:00", {"event_id": "k8", "plan": "team"}),
               ("a", "2024-01-01 10:00", {"event_id": "k7", "plan": "team"}),
               ("b", "2024-01-01 10:10", {"event_id": "k9"})],
    })
    p = params("a", "b", order=order, breakdown="plan", breakdown_attribution="entry", window=timedelta(days=1))
    check(con, p, [
        ("(none)", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("(none)", 2, "b", 1, 1.0, 1.0, 0, 300.0, 300.0, 300.0, 0),
        ("pro", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("pro", 2, "b", 1, 1.0, 1.0, 0, 300.0, 300.0, 300.0, 0),
        ("team", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("team", 2, "b", 1, 1.0, 1.0, 0, 600.0, 600.0, 600.0, 0),
    ], breakdown=True)
    assert users(con, p, 1, breakdown_value="pro") == ["n2"]


def test_breakdown_by_property_takes_the_first_event_over_all_data_ties_by_event_id(con, journeys):
    journeys({
        # two events at the first time: the one with the smaller event_id decides (pro), whatever the load order
        "t1": [("page_view", "2024-01-01 09:00", {"event_id": "z9", "plan": "free"}),
               ("page_view", "2024-01-01 09:00", {"event_id": "a1", "plan": "pro"}),
               ("a", "2024-01-03 10:00", {"event_id": "m5", "plan": "free"})],
        # the first event has no value: (none), though a later one (with a smaller event_id) has
        "t2": [("page_view", "2024-01-01 08:00", {"event_id": "b9"}),
               ("a", "2024-01-03 11:00", {"event_id": "b3", "plan": "free"})],
        # the first event lies before the date range: it decides all the same
        "t3": [("page_view", "2023-12-20 08:00", {"event_id": "c9", "plan": "team"}),
               ("a", "2024-01-03 12:00", {"event_id": "c2", "plan": "free"})],
    })
    f = Filters(start=date(2024, 1, 2), end=date(2024, 1, 5))
    check(con, params("a", "b", breakdown="plan", filters=f), [
        ("(none)", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("(none)", 2, "b", 0, 0.0, 0.0, 1, N, N, N, 0),
        ("pro", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("pro", 2, "b", 0, 0.0, 0.0, 1, N, N, N, 0),
        ("team", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("team", 2, "b", 0, 0.0, 0.0, 1, N, N, N, 0),
    ], breakdown=True)


def test_breakdown_by_property_ties_between_a_value_and_none_at_the_first_event_go_by_event_id(con, journeys):
    journeys({
        "f1": [("page_view", "2024-01-01 09:00", {"event_id": "a1"}),
               ("page_view", "2024-01-01 09:00", {"event_id": "a2", "plan": "pro"}),
               ("a", "2024-01-03 10:00", {"event_id": "a3", "plan": "pro"})],
        "f2": [("page_view", "2024-01-01 09:00", {"event_id": "b2"}),
               ("page_view", "2024-01-01 09:00", {"event_id": "b1", "plan": "pro"}),
               ("a", "2024-01-03 10:00", {"event_id": "b3"})],
        "f3": [("page_view", "2024-01-01 09:00", {"event_id": "c2", "plan": "pro"}),
               ("page_view", "2024-01-01 09:00", {"event_id": "c1", "plan": "pro"}),
               ("a", "2024-01-03 10:00", {"event_id": "c3"}), ("b", "2024-01-03 10:01", {"event_id": "c4"})],
    })
    check(con, params("a", "b", breakdown="plan"), [
        ("pro", 1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        ("pro", 2, "b", 1, 0.5, 0.5, 1, 60.0, 60.0, 60.0, 0),
        ("(none)", 1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        ("(none)", 2, "b", 0, 0.0, 0.0, 1, N, N, N, 0),
    ], breakdown=True)
    assert users(con, params("a", "b", breakdown="plan"), 1, breakdown_value="pro") == ["f2", "f3"]


def test_a_real_value_named_other_joins_the_other_block(con, journeys):
    journeys({
        "o1": [("a", "2024-01-01 10:00", {"plan": "pro"}), ("b", "2024-01-01 10:01")],
        "o2": [("a", "2024-01-01 10:00", {"plan": "pro"})],
        "o3": [("a", "2024-01-01 10:00", {"plan": "Other"}), ("b", "2024-01-01 10:02")],
        "o4": [("a", "2024-01-01 10:00", {"plan": "free"})],
    })
    # top 1 = pro (2 users); "Other" (a real value) and free fall into one Other block: 2 users, o3 at 120 s
    check(con, params("a", "b", breakdown="plan", top_n=1), [
        ("pro", 1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        ("pro", 2, "b", 1, 0.5, 0.5, 1, 60.0, 60.0, 60.0, 0),
        ("Other", 1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        ("Other", 2, "b", 1, 0.5, 0.5, 1, 120.0, 120.0, 120.0, 0),
    ], breakdown=True)


def test_step_filters_on_canonical_columns_and_properties(con, journeys):
    journeys({
        "w1": [("page_view", "2024-01-01 10:00", {"page": "/pricing"}), ("signup", "2024-01-01 10:01", {"plan": "pro"}),
               ("pay", "2024-01-01 10:02", {"channel": "wechat"})],
        "w2": [("page_view", "2024-01-01 10:00", {"page": "/home"}), ("signup", "2024-01-01 10:01", {"plan": "pro"})],
        "w3": [("page_view", "2024-01-01 10:00", {"page": "/pricing"}), ("signup", "2024-01-01 10:01", {"plan": "free"})],
        "w4": [("page_view", "2024-01-01 10:00", {"page": "/pricing"}), ("signup", "2024-01-01 10:01", {"plan": "pro"}),
               ("pay", "2024-01-01 10:02", {"channel": "google"})],
    })
    # channel compares as a key: " WeChat " matches wechat. w1 3, w2 out, w3 1, w4 2
    check(con, params(Step("page_view", {"page": "/pricing"}), Step("signup", {"plan": "pro"}),
                      Step("pay", {"channel": " WeChat "})), [
        (1, "page_view (page=/pricing)", 3, 1.0, 1.0, 0, N, N, N, 0),
        (2, "signup (plan=pro)", 2, 2 / 3, 2 / 3, 1, 60.0, 60.0, 60.0, 0),
        (3, "pay (channel= WeChat )", 1, 1 / 3, 0.5, 1, 60.0, 60.0, 60.0, 0),
    ])


def test_any_event_step(con, journeys):
    journeys({"u1": [("signup", "2024-01-01 10:00"), ("page_view", "2024-01-01 10:05")],
              "u2": [("signup", "2024-01-01 10:00")]})
    check(con, params("signup", Step(None)), [
        (1, "signup", 2, 1.0, 1.0, 0, N, N, N, 0),
        (2, "any event", 1, 0.5, 0.5, 1, 300.0, 300.0, 300.0, 0),
    ])


def test_global_filters_select_users_segment_and_entry_dates(con, journeys):
    journeys({
        "f1": [("a", "2024-01-02 10:00", {"channel": "wechat", "platform": "ios"}),
               ("b", "2024-01-03 10:00", {"platform": "ios"})],
        "f2": [("a", "2024-01-02 10:00", {"channel": "google", "platform": "ios"})],     # not a wechat user
        "f3": [("a", "2024-01-01 10:00", {"channel": "wechat", "platform": "ios"})],     # entry before Jan 2
        "f4": [("a", "2024-01-02 10:00", {"channel": "wechat", "platform": "ios"}),
               ("b", "2024-01-02 11:00", {"platform": "android"})],                      # b outside the segment
    })
    f = Filters(start=date(2024, 1, 2), end=date(2024, 1, 2), channels=("WeChat",), segment={"platform": "ios"})
    # entry range [Jan 2, Jan 3): f1 and f4; f1's b lands a day later (allowed), f4's b is android
    check(con, params("a", "b", filters=f), [
        (1, "a", 2, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 1, 0.5, 0.5, 1, 86400.0, 86400.0, 86400.0, 0),
    ])
    # explicit start/end win over the filters' dates
    assert users(con, params("a", "b", filters=f, start=date(2024, 1, 1), end=date(2024, 1, 3)), 1) == ["f1", "f3", "f4"]


# --------------------------------------------------------------------------------------------
# degenerate data, validation, purity
# --------------------------------------------------------------------------------------------

def test_empty_data_gives_the_step_rows_with_zero_users(con):
    check(con, FunnelParams(steps=(Step("a"), Step("b"))), [
        (1, "a", 0, N, N, 0, N, N, N, 0),
        (2, "b", 0, N, N, 0, N, N, N, 0),
    ])
    assert funnel_users(con, FunnelParams(steps=(Step("a"), Step("b"))), 2).empty


def test_empty_breakdown_has_no_rows(con):
    df = funnel(con, FunnelParams(steps=(Step("a"), Step("b")), breakdown="channel"))
    assert list(df.columns) == ["breakdown"] + COLUMNS and df.empty


def test_single_event_users(con, journeys):
    journeys({"u1": [("a", "2024-01-01 10:00")], "u2": [("b", "2024-01-01 10:00")]})
    check(con, params("a", "b"), [
        (1, "a", 1, 1.0, 1.0, 0, N, N, N, 0),
        (2, "b", 0, 0.0, 0.0, 1, N, N, N, 0),
    ])


@pytest.mark.parametrize("kwargs, message", [
    ({"steps": (Step("a"),)}, "2 to 20 steps"),
    ({"steps": tuple(Step(str(i)) for i in range(21))}, "2 to 20 steps"),
    ({"order": "sideways"}, "Unknown funnel order"),
    ({"attempt": "last"}, "choose 'best' or 'first'"),
    ({"window": timedelta(0)}, "positive duration"),
    ({"timezone": "Mars/Base"}, "Unknown time zone"),
    ({"breakdown_attribution": "last_touch"}, "attribution"),
    ({"top_n": 0}, "top N"),
    ({"start": date(2024, 1, 5), "end": date(2024, 1, 5)}, "start must be before its end"),
    ({"exclusions": (Exclusion("x", from_step=1, to_step=1),)}, "from_step < to_step"),
    ({"exclusions": (Exclusion("x", from_step=0, to_step=2),)}, "from_step < to_step < 2"),
])
def test_validation(kwargs, message):
    kwargs = {"steps": (Step("a"), Step("b")), **kwargs}
    with pytest.raises(UserInputError, match=message):
        FunnelParams(**kwargs)


def test_user_list_arguments_are_checked(con):
    p = FunnelParams(steps=(Step("a"), Step("b")))
    for args, message in [((0,), "between 1 and 2"), ((3,), "between 1 and 2"), ((1, "gone"), "Unknown user status")]:
        with pytest.raises(UserInputError, match=message):
            funnel_users(con, p, *args)
    with pytest.raises(UserInputError, match="no breakdown"):
        funnel_users(con, p, 1, breakdown_value="wechat")


def test_funnel_sql_is_pure_with_bound_values():
    p = FunnelParams(steps=(Step("signup", {"plan": "pro'; DROP TABLE events; --"}), Step("pay")),
                     exclusions=(Exclusion("refund"),), breakdown="plan", start=date(2024, 1, 1))
    sql, values = funnel_sql(p)
    assert "DROP TABLE" not in sql and "pro'" not in sql
    assert sql.count("?") == len(values)
    assert "pro'; DROP TABLE events; --" in values


def test_labels_cover_every_output_column_and_appear_in_the_docs():
    assert set(COLUMNS) | {"breakdown"} <= set(LABELS)
    for key, label in LABELS.items():
        assert set(label) == {"en", "zh", "help_en", "help_zh"} and all(label.values()), key
    doc = Path(__file__).resolve().parent.parent / "docs" / "metrics.md"
    headings = [line for line in doc.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    for key, label in LABELS.items():
        assert any(label["en"] in h for h in headings), label["en"]


def test_metrics_module_imports_no_ui():
    tree = ast.parse((Path(__file__).resolve().parent.parent / "metrics" / "funnel.py").read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {(n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not names & {"streamlit", "plotly"}


@pytest.mark.parametrize("order", ["ordered", "strict", "any"])
def test_many_attempts_per_user_stay_linear(con, order):
    """A user with 20,000 step events: the next-event joins must not pair every event with every other
    (a per-user cross product here is 4e8 rows and turns this sub-second test into minutes)."""
    import store
    rng = np.random.default_rng(7)
    n = 20_000
    t = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.integers(0, 86_400 * 30, n)), unit="s")
    frame = pd.DataFrame({"user_id": "heavy", "event_name": rng.choice(["a", "b", "c"], n),
                          "event_time": t.astype(str), "event_id": [f"h{i}" for i in range(n)]}).astype(object)
    store.load_events(con, frame)
    df = funnel(con, params("a", "b", "c", window=timedelta(hours=1), order=order))
    assert df["users"].tolist() == [1, 1, 1]


def test_any_order_says_when_its_counts_are_an_upper_bound():
    from metrics.funnel import any_order_is_exact
    # distinct events, or steps whose filters conflict, can never share an event: exact
    assert any_order_is_exact(params("a", "b", "c", order="any"))
    assert any_order_is_exact(params(Step("a", {"page": "/x"}), Step("a", {"page": "/y"}), order="any"))
    assert any_order_is_exact(params(Step("a", {"channel": "WeChat"}), Step("a", {"channel": "douyin"}), order="any"))
    # the same step repeated needs as many distinct events of it: an exact matching (keys compare
    # trimmed and case-folded, so these two are the same step)
    assert any_order_is_exact(params("a", "b", "a", order="any"))
    assert any_order_is_exact(params(Step("a", {"channel": "WeChat "}), Step("a", {"channel": "wechat"}), order="any"))
    # one event could match two different steps: a maximum matching (Hall's theorem over the sets of
    # distinct steps), exact up to six distinct steps ...
    assert any_order_is_exact(params("a", Step("a", {"page": "/x"}), order="any"))
    assert any_order_is_exact(params(Step("a", {"channel": "WeChat "}), Step("a"), order="any"))
    assert any_order_is_exact(params(Step(None), "b", order="any"))
    assert any_order_is_exact(params("a", "a", Step("a", {"page": "/x"}), order="any"))
    assert any_order_is_exact(params(Step(None), "a", "b", "c", "d", "e", "e", order="any"))
    # ... beyond that an upper bound (k steps taken as k distinct step events)
    assert not any_order_is_exact(params(Step(None), "a", "b", "c", "d", "e", "f", order="any"))
    # seven distinct steps that cannot share an event stay exact
    assert any_order_is_exact(params("a", "b", "c", "d", "e", "f", "g", order="any"))
    # the limit is any order's only: ordered funnels require a strictly later event instead
    assert any_order_is_exact(params("a", Step("a", {"page": "/x"})))
