"""The chain paths (steps no event can share: ``_lookup_chains`` and ``_chains`` for ordered funnels,
``_strict_chains``, ``_any_chains``) against the general path (per-attempt searchsorted joins) on random logs — per user: furthest level, in-progress
flag, every step time of the counted attempt and, with an entry breakdown, its entry value.

Ordered and strict funnels (with and without exclusions) and any-order funnels. One database holds 400 independent random users (1–12 events of a, b, c, d, x over 40 s, many ties; strict funnels use a second one without ties,
random entry values); each definition is one query per path over all of them.
"""
from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import pytest

import store
from metrics import funnel as fm
from metrics import Filters
from metrics.funnel import Exclusion, FunnelParams, Step

BASE = datetime(2024, 3, 1, 12, 0, 0)
N_USERS = 400
CHANNELS = ("ads", "seo", None)   # each user's events all carry one (first touch: that channel, or direct)


def _log(ties: bool):
    rng = np.random.default_rng(11)
    rows = []
    eid = 0
    for u in range(N_USERS):
        k = int(rng.integers(1, 13))
        times = rng.integers(0, 40, size=k) if ties else rng.choice(40, size=k, replace=False)
        for t in times:
            eid += 1
            rows.append({"event_id": f"e{eid:06d}", "user_id": f"u{u:04d}",
                         "event_name": str(rng.choice(["a", "b", "c", "d", "x"], p=[.35, .2, .2, .15, .1])),
                         "event_time": (BASE + timedelta(seconds=int(t))).isoformat(sep=" "),
                         "channel": CHANNELS[u % len(CHANNELS)], "properties": {"v": str(rng.integers(0, 3))}})
    con = store.connect(":memory:")
    assert store.load_events(con, pd.DataFrame(rows).astype(object)).loaded == len(rows)
    return con


@pytest.fixture(scope="module")
def log_con():
    con = _log(ties=True)
    yield con
    con.close()


@pytest.fixture(scope="module")
def unique_con():
    """The same shape with no two events of a user at one time: strict funnels are compared here, as the
    general path takes the earliest event at each strict step, which ties can make fall short (the chain
    path does not; ``tests/test_funnel_oracle.py`` checks it against an exhaustive search with ties)."""
    con = _log(ties=False)
    yield con
    con.close()


def _per_user(con, p: FunnelParams) -> pd.DataFrame:
    sql, params = fm._core(p).sql("SELECT * FROM per_user ORDER BY user_key")
    return con.execute(sql, params).df()


def _span_users(con, p: FunnelParams) -> tuple[int, int]:
    """Of an any-order funnel reading ``any_span``: the users with two steps or more settled by their span (every
    step event within one window of their first), and the users whose step events the window pass reads."""
    sql, params = fm._core(p).sql(
        "SELECT count(*) FILTER (WHERE within), count(*) FILTER (WHERE NOT within) FROM any_span WHERE ns >= 2")
    return con.execute(sql, params).fetchone()


def _params(spec: dict) -> FunnelParams:
    kw = dict(spec)
    kw["steps"] = tuple(Step(s) if isinstance(s, str) else s for s in kw["steps"])
    kw.setdefault("window", timedelta(seconds=15))
    kw.setdefault("data_end", BASE + timedelta(seconds=60))
    kw.setdefault("top_n", 100)
    return FunnelParams(**kw)


DEFINITIONS = [
    dict(steps=("a", "b")),
    dict(steps=("a", "b", "c")),
    dict(steps=("a", "b", "c", "d")),
    dict(steps=("b", "a", "d")),
    dict(steps=("a", "b", "c", "d"), window=timedelta(seconds=5)),
    dict(steps=("a", "b", "c"), window=timedelta(seconds=1)),
    dict(steps=("a", "b", "c"), attempt="first"),
    dict(steps=("a", "b", "c", "d"), attempt="first", window=timedelta(seconds=8)),
    dict(steps=("a", "b", "c"), start=BASE + timedelta(seconds=5), end=BASE + timedelta(seconds=25)),
    dict(steps=("a", "b", "c"), start=BASE + timedelta(seconds=5), end=BASE + timedelta(seconds=25),
         conversion_in_range=True, window=timedelta(seconds=10)),
    dict(steps=("a", "b", "c"), data_end=BASE + timedelta(seconds=30), window=timedelta(seconds=10)),
    dict(steps=("a", "b", "c"), data_end=BASE + timedelta(seconds=30), window=timedelta(seconds=10),
         end=BASE + timedelta(seconds=35), conversion_in_range=True),
    dict(steps=("a", "b"), data_end=BASE + timedelta(seconds=30), window=timedelta(seconds=10)),
    dict(steps=("a", "b", "c"), breakdown="v", breakdown_attribution="entry", window=timedelta(seconds=6)),
    dict(steps=("a", "b", "c", "d"), breakdown="v", breakdown_attribution="entry", attempt="first"),
    dict(steps=(Step("a", {"v": "1"}), Step("a", {"v": "2"}), "c"), window=timedelta(seconds=12)),
    dict(steps=("a", "b"), order="strict"),
    dict(steps=("a", "b", "c"), order="strict", window=timedelta(seconds=30)),
    dict(steps=("a", "b", "c", "d"), order="strict", window=timedelta(seconds=40)),
    dict(steps=("b", "a", "c"), order="strict", attempt="first", window=timedelta(seconds=40)),
    dict(steps=("a", "b", "c"), order="strict", data_end=BASE + timedelta(seconds=30), window=timedelta(seconds=10),
         start=BASE + timedelta(seconds=3), end=BASE + timedelta(seconds=33), conversion_in_range=True),
    dict(steps=("a", "b", "c"), order="strict", breakdown="v", breakdown_attribution="entry"),
    dict(steps=("a", "b"), exclusions=(Exclusion("x"),)),
    dict(steps=("a", "b", "c", "d"), exclusions=(Exclusion("x", from_step=1, to_step=3),), window=timedelta(seconds=20)),
    dict(steps=("a", "b", "c", "d"), exclusions=(Exclusion("x", from_step=0, to_step=2), Exclusion("d", from_step=1, to_step=2),
                                                 Exclusion("x", from_step=2, to_step=3))),
    dict(steps=("a", "b", "c"), exclusions=(Exclusion("x", from_step=0, to_step=1),), attempt="first"),
    dict(steps=("a", "b", "c"), exclusions=(Exclusion("x", from_step=1, to_step=2),), breakdown="v",
         breakdown_attribution="entry", data_end=BASE + timedelta(seconds=30), window=timedelta(seconds=10)),
    dict(steps=("a", "b", "c"), order="strict", exclusions=(Exclusion("x", from_step=0, to_step=2),), window=timedelta(seconds=30)),
    dict(steps=("a", "b", "c"), exclusions=(Exclusion("x", {"v": "1"}, from_step=0, to_step=2),),
         start=BASE + timedelta(seconds=3), end=BASE + timedelta(seconds=33), conversion_in_range=True),
    dict(steps=("a", "a")),
    dict(steps=("a", "a", "a", "b"), window=timedelta(seconds=20)),
    dict(steps=("a", Step("a", {"v": "1"}), "b", "b"), attempt="first"),
    dict(steps=(Step(None), Step("b"), Step("b", {"v": "2"})), window=timedelta(seconds=10)),
    # a step repeated right after itself: the next later event of the step, read off its own events
    dict(steps=("a", "a", "b"), start=BASE + timedelta(seconds=5), end=BASE + timedelta(seconds=25)),
    dict(steps=("a", "a", "b"), start=BASE + timedelta(seconds=5), end=BASE + timedelta(seconds=25),
         conversion_in_range=True, window=timedelta(seconds=10)),
    dict(steps=("a", "a", "b"), attempt="first", window=timedelta(seconds=10)),
    dict(steps=("b", "a", "a"), window=timedelta(seconds=8)),
    dict(steps=("a", "b", "b", "c"), exclusions=(Exclusion("x", from_step=1, to_step=3),), window=timedelta(seconds=20)),
    dict(steps=("a", "a", "b"), order="strict", window=timedelta(seconds=30)),
    dict(steps=("a", "a", "b"), exclusions=(Exclusion("x", from_step=0, to_step=2),), breakdown="v",
         breakdown_attribution="entry"),
    dict(steps=("a", "b"), order="any"),
    dict(steps=("a", "b", "c"), order="any", window=timedelta(seconds=6)),
    dict(steps=("d", "c", "b", "a"), order="any", window=timedelta(seconds=10)),
    dict(steps=("a", "b", "c", "d"), order="any", attempt="first", window=timedelta(seconds=20)),
    # the first attempt's window, not the user's latest one, says whether a level-1 user is in progress
    dict(steps=("a", "b", "c"), order="any", attempt="first", data_end=BASE + timedelta(seconds=30),
         window=timedelta(seconds=10)),
    # the latest attempt at the user's furthest level says whether it is open
    dict(steps=("a", "b", "c"), order="any", data_end=BASE + timedelta(seconds=30), window=timedelta(seconds=10)),
    dict(steps=("a", "b", "c"), order="any", attempt="first", data_end=BASE + timedelta(seconds=30),
         window=timedelta(seconds=10), start=BASE + timedelta(seconds=3), end=BASE + timedelta(seconds=33)),
    dict(steps=("a", "b", "c"), order="any", data_end=BASE + timedelta(seconds=30), window=timedelta(seconds=10),
         start=BASE + timedelta(seconds=3), end=BASE + timedelta(seconds=33), conversion_in_range=True),
    dict(steps=("a", "b", "c"), order="any", breakdown="v", breakdown_attribution="entry", window=timedelta(seconds=8)),
    dict(steps=(Step("a", {"v": "1"}), Step("a", {"v": "2"}), "b"), order="any", window=timedelta(seconds=12)),
    dict(steps=("a", "b"), order="any", exclusions=(Exclusion("x"),)),
    dict(steps=("a", "b", "c", "d"), order="any", window=timedelta(seconds=20),
         exclusions=(Exclusion("x", from_step=0, to_step=3), Exclusion("b", from_step=2, to_step=3))),
    dict(steps=("a", "b", "c"), order="any", exclusions=(Exclusion("x", from_step=1, to_step=2),), attempt="first",
         breakdown="v", breakdown_attribution="entry"),
    dict(steps=("a", "b", "c"), order="any", exclusions=(Exclusion("x", {"v": "2"}, from_step=0, to_step=1),),
         start=BASE + timedelta(seconds=3), end=BASE + timedelta(seconds=33), conversion_in_range=True,
         data_end=BASE + timedelta(seconds=30), window=timedelta(seconds=10)),
]


# ordered funnels send users with more later-step events than LOOKUP_LIMIT to the window path:
# 64 = every user here takes the lookup joins, 0 = every user the windows, 3 = some each way
CASES = [(i, spec, limit) for i, spec in enumerate(DEFINITIONS)
         for limit in ([64, 3, 0] if spec.get("order", "ordered") == "ordered" else [64])]


@pytest.mark.parametrize("spec, limit", [(s, lim) for _, s, lim in CASES],
                         ids=[f"{i}-{ {64: 'lookup', 3: 'mixed', 0: 'window'}[lim]}" for i, _, lim in CASES])
def test_chain_path_equals_general_path(log_con, unique_con, spec, limit, monkeypatch):
    monkeypatch.setattr(fm, "LOOKUP_LIMIT", limit)
    if limit == 3 and spec.get("order", "ordered") == "ordered":
        sql, params = fm._core(_params(spec)).sql("SELECT COUNT(*) FROM heavy")
        assert 0 < log_con.execute(sql, params).fetchall()[0][0] < N_USERS   # both kinds of user present
    p = _params(spec)
    assert fm._chain_ok(p)
    con = unique_con if p.order == "strict" else log_con
    fast, fast_steps = _per_user(con, p), fm.funnel(con, p)
    monkeypatch.setattr(fm, "_chain_ok", lambda q: False)   # force the general path
    general, general_steps = _per_user(con, p), fm.funnel(con, p)
    assert len(fast) > 100 and fast["ulvl"].max() == p.n   # some users reach the last step
    assert fast["is_open"].sum() + (fast["ulvl"] == 1).sum() > 0
    pd.testing.assert_frame_equal(fast, general, check_dtype=False)
    pd.testing.assert_frame_equal(fast_steps, general_steps)


# strict and any order read the rollup for their level-1 rows (with an entry breakdown too: its values are looked
# up after the counting)
ROLLUP_CASES = [(i, spec, limit) for i, spec, limit in CASES if limit and fm._rollup_ok(_params(spec))]
assert len({i for i, _, _ in ROLLUP_CASES}) >= 10
assert len({i for i, spec, _ in ROLLUP_CASES if spec.get("order") == "any"}) >= 3
assert len({i for i, spec, _ in ROLLUP_CASES if spec.get("order") == "strict"}) >= 3
assert len({i for i, spec, _ in ROLLUP_CASES if spec.get("order") == "any" and not spec.get("exclusions")
            and len(set(spec["steps"])) == len(spec["steps"])}) >= 5


@pytest.mark.parametrize("spec, limit", [(s, lim) for _, s, lim in ROLLUP_CASES],
                         ids=[f"{i}-{ {64: 'lookup', 3: 'mixed'}[lim]}" for i, _, lim in ROLLUP_CASES])
def test_rollup_counts_equal_the_scanned_ones(log_con, spec, limit, monkeypatch):
    """An ordered funnel over every event reads the heavy users' counts and the level-1 rows from the
    ``user_events`` rollup and its step events from ``events_by_name``; strict and any-order ones their level-1
    rows. With the rollups switched off they scan the events: the same users, levels and times."""
    monkeypatch.setattr(fm, "LOOKUP_LIMIT", limit)
    p = _params(spec)
    sql, _ = fm.funnel_sql(p)
    assert "FROM user_events r" in sql
    # the ordered and exact any-order step events come from the copy stored by event name (no event ids: ties at
    # one time reach the same steps); an entry breakdown reads the values of the counted attempts' events alone
    # from the events
    assert ("FROM events_by_name e" in sql) == (p.order == "ordered" or (p.order == "any" and fm._any_exact(p.steps)))
    assert ("JOIN counted c ON c.user_key = e.user_key AND e.event_time = c.t1" in sql) == (
        p.breakdown is not None and p.breakdown_attribution == "entry")
    # any order with distinct steps and no exclusion: users within one window of their first step event are
    # settled by their span in the rollup, the others by the window pass (both kinds are here)
    spans = p.order == "any" and not p.exclusions and len(set(p.steps)) == p.n
    assert ("FROM any_span" in sql) == spans
    if spans:
        assert all(n > 0 for n in _span_users(log_con, p))
    rolled, rolled_steps = _per_user(log_con, p), fm.funnel(log_con, p)
    monkeypatch.setattr(fm, "_rollup_ok", lambda q: False)
    assert "user_events" not in fm.funnel_sql(p)[0] and "events_by_name" not in fm.funnel_sql(p)[0]
    scanned, scanned_steps = _per_user(log_con, p), fm.funnel(log_con, p)
    assert (rolled["ulvl"] == 1).sum() > 0 and rolled["ulvl"].max() == p.n
    pd.testing.assert_frame_equal(rolled, scanned, check_dtype=False)
    pd.testing.assert_frame_equal(rolled_steps, scanned_steps)


# Any order repeating a step: the m-th event of the step from the attempt (exact by an exhaustive search in
# tests/test_funnel_oracle.py, which selects its logs by a segment, so it never reads the rollups; the general
# path is no reference here, as it does not keep repeated steps on distinct events).
REPEATED_ANY = [
    dict(steps=("a", "a", "b"), order="any", window=timedelta(seconds=10)),
    dict(steps=("a", "b", "a", "b"), order="any", window=timedelta(seconds=15),
         exclusions=(Exclusion("x", from_step=0, to_step=3),)),
    dict(steps=("b", "a", "a", "c"), order="any", attempt="first", window=timedelta(seconds=20)),
    dict(steps=("a", "a", "b"), order="any", breakdown="v", breakdown_attribution="entry",
         exclusions=(Exclusion("x", from_step=1, to_step=2),)),
]


@pytest.mark.parametrize("spec", REPEATED_ANY, ids=range(len(REPEATED_ANY)))
def test_any_order_repeating_a_step_reads_the_copy_by_name_as_the_events(log_con, spec, monkeypatch):
    """Over every event, an any-order funnel repeating a step reads its step events from ``events_by_name``, which
    has no event ids: the m-th event from an attempt is then taken among events at one time in no set order, and
    the result is the same — per user, level, open flag, times and entry value — as over the events, with ids."""
    p = _params(spec)
    assert fm._chain_ok(p) and fm._rollup_ok(p) and "FROM events_by_name e" in fm.funnel_sql(p)[0]
    rolled, rolled_steps = _per_user(log_con, p), fm.funnel(log_con, p)
    monkeypatch.setattr(fm, "_rollup_ok", lambda q: False)
    scanned, scanned_steps = _per_user(log_con, p), fm.funnel(log_con, p)
    assert len(rolled) > 100 and rolled["ulvl"].max() == p.n and (rolled["ulvl"] == 1).sum() > 0
    pd.testing.assert_frame_equal(rolled, scanned, check_dtype=False)
    pd.testing.assert_frame_equal(rolled_steps, scanned_steps)
    # ties between events of the repeated step are there to be ordered
    assert log_con.execute("SELECT count(*) FROM (SELECT user_key, event_time FROM events WHERE event_name = 'a' "
                           "GROUP BY ALL HAVING count(*) > 1)").fetchone()[0] > 10


# ordered funnels with some users on each path; strict and any-order ones (one path each)
SELECTED_CASES = [(i, s, lim) for i, s, lim in ROLLUP_CASES if lim == 3 or s.get("order", "ordered") != "ordered"]


@pytest.mark.parametrize("filters", [Filters(channels=("ads",)), Filters(channels=("seo", "direct")),
                                     Filters(channels=("ads", "seo"), campaigns=("none",))],
                         ids=["ads", "seo+direct", "no-campaign"])
@pytest.mark.parametrize("spec, limit", [(s, lim) for _, s, lim in SELECTED_CASES],
                         ids=[str(i) for i, _, _ in SELECTED_CASES])
def test_rollup_counts_of_selected_users_equal_the_scanned_ones(log_con, spec, limit, filters, monkeypatch):
    """A channel / campaign selection keeps or drops each user whole: the funnel still reads the rollups, only
    the selected users' rows, and counts exactly the users (and levels and times) a scan of their events does."""
    monkeypatch.setattr(fm, "LOOKUP_LIMIT", limit)
    p = replace(_params(spec), filters=filters)
    assert fm._rollup_ok(p) and "FROM user_events r" in fm.funnel_sql(p)[0]
    rolled, rolled_steps = _per_user(log_con, p), fm.funnel(log_con, p)
    selected = {k for (k,) in log_con.execute(
        f"SELECT user_key FROM users u WHERE {filters.users_sql('u')[0]}", filters.users_sql("u")[1]).fetchall()}
    everyone = _per_user(log_con, _params(spec))
    if filters.campaigns:
        assert rolled.empty and not selected      # no user has a campaign
    else:
        assert 0 < len(rolled) < len(everyone)
        assert set(rolled["user_key"]) == selected & set(everyone["user_key"])
        # a selected user's level, times and entry value are those of the unfiltered funnel: the filter drops
        # users, not events (only the order of breakdown values, ranked over the users counted, may differ)
        pd.testing.assert_frame_equal(rolled.drop(columns="bd_order").reset_index(drop=True),
                                      everyone[everyone["user_key"].isin(selected)].drop(columns="bd_order")
                                      .reset_index(drop=True), check_dtype=False)
    monkeypatch.setattr(fm, "_rollup_ok", lambda q: False)
    pd.testing.assert_frame_equal(rolled, _per_user(log_con, p), check_dtype=False)
    pd.testing.assert_frame_equal(rolled_steps, fm.funnel(log_con, p))


def test_rollup_only_over_every_event():
    ab = (Step("a"), Step("b"))
    assert fm._rollup_ok(FunnelParams(steps=ab))
    assert fm._rollup_ok(FunnelParams(steps=(Step(None), Step("b"))))
    assert not fm._rollup_ok(FunnelParams(steps=ab, start=BASE))                      # an entry range
    assert not fm._rollup_ok(FunnelParams(steps=(Step("a", {"v": "1"}), Step("b"))))   # a property condition
    assert not fm._rollup_ok(FunnelParams(steps=ab, exclusions=(Exclusion("x", {"v": "1"}),)))
    assert not fm._rollup_ok(FunnelParams(steps=ab, filters=Filters(segment={"platform": "ios"})))
    assert fm._rollup_ok(FunnelParams(steps=ab, filters=Filters(channels=("ads",))))        # whole users
    assert fm._rollup_ok(FunnelParams(steps=ab, filters=Filters(campaigns=("c1",))))
    assert not fm._rollup_ok(FunnelParams(steps=ab, filters=Filters(start=BASE.date())))


def test_chain_path_only_where_it_is_exact():
    """Steps that could share an event (no strictly-later step between them) take the general path, except
    in any order (an exact matching up to six distinct steps) and in strict funnels whose step 1 shares
    no event with a different step (states per time rank)."""
    ab = (Step("a"), Step("b"))
    assert fm._chain_ok(FunnelParams(steps=ab))
    assert fm._chain_ok(FunnelParams(steps=(Step("a"), Step("a"))))   # step 2 strictly later
    assert fm._chain_ok(FunnelParams(steps=(Step("a"), Step("a", {"v": "1"}), Step("b"))))
    assert not fm._chain_ok(FunnelParams(steps=(Step("a", {"v": "1"}), Step("a"))))   # may share a tied event
    assert not fm._chain_ok(FunnelParams(steps=(Step("a"), Step("b"), Step("a"))))
    assert fm._chain_ok(FunnelParams(steps=(Step(None), Step("b"))))     # b covers "any event"
    assert not fm._chain_ok(FunnelParams(steps=(Step("b"), Step(None))))
    assert fm._chain_ok(FunnelParams(steps=(Step("a"), Step("a")), order="any"))   # a repeated step: exact
    # overlapping steps in any order: the exact matching (up to six distinct steps), not the general path
    assert fm._chain_ok(FunnelParams(steps=(Step("a"), Step("a"), Step("a", {"v": "1"})), order="any"))
    assert not fm._chain_ok(FunnelParams(steps=(Step(None),) + tuple(Step(s) for s in "abcdef"), order="any"))
    assert fm._chain_ok(FunnelParams(steps=ab, order="strict"))
    assert fm._chain_ok(FunnelParams(steps=(Step("a"), Step("a")), order="strict"))
    # strict, one event could fill two steps: ranks keep such steps apart (exact), unless step 1 itself
    # overlaps a different step
    assert fm._chain_ok(FunnelParams(steps=(Step("b"), Step("a"), Step("b")), order="strict"))
    assert not fm._distinct_chain((Step("b"), Step("a"), Step("b")))
    assert not fm._chain_ok(FunnelParams(steps=(Step("b"), Step("a"), Step("b", {"v": "1"})), order="strict"))
    assert not fm._chain_ok(FunnelParams(steps=(Step("a", {"v": "1"}), Step("b"), Step("a")), order="strict"))
    assert fm._chain_ok(FunnelParams(steps=ab, order="any"))
    assert fm._chain_ok(FunnelParams(steps=(Step("a"), Step(None)), order="any"))
    assert fm._chain_ok(FunnelParams(steps=ab, exclusions=(Exclusion("x"),)))
    assert fm._chain_ok(FunnelParams(steps=ab, order="any", exclusions=(Exclusion("x"),)))


def test_a_range_holding_every_event_reads_like_no_range(log_con):
    """The dashboard always sends its date range; when that range holds every stored event the funnel is
    built without it (and may read the rollup) — with the same result as with the range applied."""
    built = []

    def spy(q):
        built.append(q.entry_range())
        return fm.funnel_sql(q)

    day = BASE.date()
    wide = [dict(start=BASE - timedelta(days=1), end=BASE + timedelta(days=1)),
            dict(start=BASE, end=BASE + timedelta(seconds=41), conversion_in_range=True,
                 data_end=BASE + timedelta(seconds=40)),
            dict(filters=Filters(start=day, end=day))]                     # the sidebar's default: whole days
    narrow = [dict(start=BASE + timedelta(seconds=1), end=BASE + timedelta(days=1)),   # cuts off the first second
              dict(start=BASE, end=BASE + timedelta(seconds=39)),                       # and the last
              dict(start=BASE, end=BASE + timedelta(seconds=50), conversion_in_range=True,
                   data_end=BASE + timedelta(seconds=60))]                # its end still closes open windows
    for extra, reads_whole in [(w, True) for w in wide] + [(n, False) for n in narrow]:
        p = _params(dict(steps=("a", "b", "c"), **extra))
        built.clear()
        got = fm._run(log_con, p, spy)
        assert (built[-1] == (None, None)) == reads_whole, extra
        expected = log_con.execute(*fm.funnel_sql(p)).df()      # the range applied, events scanned
        pd.testing.assert_frame_equal(got, expected)
        assert got["users"].iloc[0] > 0



def test_a_load_between_the_check_and_the_query_runs_it_with_the_range(log_con, monkeypatch):
    from metrics import derive
    spans = iter([(BASE, BASE + timedelta(seconds=40)), (BASE, BASE + timedelta(days=9))])   # a load committed
    monkeypatch.setattr(derive, "event_span", lambda con: next(spans))
    built = []

    def spy(q):
        built.append(q.entry_range())
        return fm.funnel_sql(q)

    p = _params(dict(steps=("a", "b", "c"), start=BASE - timedelta(days=1), end=BASE + timedelta(days=1)))
    got = fm._run(log_con, p, spy)
    assert built == [(None, None), p.entry_range()]
    pd.testing.assert_frame_equal(got, log_con.execute(*fm.funnel_sql(p)).df())
