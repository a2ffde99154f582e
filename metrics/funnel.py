"""Conversion funnels (SPEC §2): how many users reach each step, how fast, and who drops out.

Query intuition
---------------
Everything is UTC inside DuckDB; the entry range is converted from local time once, so the window
is an absolute duration (14 days are 14 × 24 h, across DST changes too).

1. **scope / matched** — the events the filters keep, with one boolean per step (``m1..mN``) and per
   exclusion (``x1..``); only events matching some step or exclusion go on (``matched``). Events
   of one user are ordered by (time, event_id) throughout. Strict funnels also need, per event,
   ``nt``: the user's next distinct event time over *all* scoped events.
2. **c<k>** — the step-k candidates of each user, numbered ``rn`` 1, 2, ... in (time, event_id) order;
   an attempt is known by its step-1 event's number ``a``.
3. **attempts** — every step-1 event in [start, end) starts an attempt (``attempt="first"``: only
   the user's first one); ``dl = t1 + window`` is its deadline (inclusive).
4. **next matching event** (ordered / strict) — for step k, each attempt's step-(k-1) time is
   placed among the step-k candidates by one running count over their union sorted by time
   (``p<k>``: a "searchsorted", like an ASOF join); the candidate numbered ``pos + 1`` is then the
   earliest event at or after t_{k-1} — an equi-join on (user_key, rn), never a cross product, so
   users with many events cost O(n log n). Taking the earliest possible event at every step is
   optimal for an ordered funnel (an earlier step k only widens the choice for step k+1).
   Ties: t_{k-1} <= t_k is allowed, but one event never fills two steps: when step k's filter
   equals or contains step k-1's (``Step.covers``), the candidate must be strictly later;
   otherwise the few next candidates (one more per earlier step an event could share) are
   tried and the first whose event no earlier step used wins. Among candidates at one
   timestamp the lower event_id is taken first. The candidate must be within ``dl`` (and before
   ``end`` when ``conversion_in_range``); strict funnels also require t_k <= the next distinct
   event time after t_{k-1}, i.e. no other event of the user strictly in between (events at the
   very same timestamp as a step cannot be ordered, so they do not break the chain; a repeated
   step-1 event later in time does). Known limit of this general path: in a strict funnel the
   earliest qualifying event is taken even when it ties with the previous step and a later one
   would carry the chain further (a@0, b@0, b@5, c@10 stops at b@0: level 2, not 3); without ties
   within a user the result equals an exhaustive search (``tests/test_funnel_oracle.py``). Strict
   funnels on the chain path (``_strict_chains``, below) have no such limit; only
   strict funnels whose step 1 overlaps a different step, or with more than six distinct steps, come here.
   Ordered funnels with the best attempt build each chain once per group of step-1 events that
   share their next step-2 event, then cut it at every attempt's own deadline (same result).
   **Chain paths** (``_chain_ok``): funnels in which no event can fill two steps of one chain
   (distinct steps — the common case — or a repeated step separated by a step that covers its
   predecessor and so must be strictly later, e.g. page_view → page_view) skip the per-attempt
   joins; so do strict funnels that repeat a step (rank blocks, below) and any-order funnels of up
   to six distinct steps. In ``_chains`` (ordered; the users with many later-step events) passes
   run from the last step back:
   each step-j event inherits, from the first step-(j+1) event at or after it (one running count
   + an equi-join), the times at which its greedy chain reaches every later step. Step-1 rows are
   the attempts; the counted attempt's times are the per-user minimum over the untainted attempts
   at the furthest level (chain times only grow with t1). An exclusion is checked the same way:
   the step-f events (f = its from-step) look up the first exclusion event strictly after them,
   earlier steps inherit that time along the chain, and the attempt is tainted when it comes
   before its (reached) to-step time. ``tests/test_funnel_chains.py`` checks it
   equals the general path user by user on random logs. **Strict chains** (``_strict_chains``)
   work on ranks of event times (``DENSE_RANK`` over the user's scoped events): each step lies at
   the previous step's rank (a tie) or the next one, so a dynamic programme over (step, rank) states
   gives the earliest time each later step can be reached, hence the exact level, and a forward
   pass picks the chain with the earliest times among those reaching it (ties included: exact
   against an exhaustive search with many ties). When one event could fill two steps (a → b → a)
   the states also carry the first step of the run of steps at one rank, which may only grow while
   those steps can take distinct events at that rank (Hall's condition on counts per rank).
   **Lookup path** (``_lookup_chains``, ordered funnels on the chain path): the same passes with no
   sort at all: since chain times grow with the event's time, the chain of the first step-(j+1)
   event at or after a step-j event is the per-column MIN over the user's step-(j+1) events at or
   after it within one window — an equi-join on the user with a range condition and a GROUP BY.
   Only attempts that reach step 2 within their window get a row, and one row per user stands for
   the rest (level 1). The join
   compares an event with each later-step event of its user, so users with more than
   ``LOOKUP_LIMIT`` later-step events take the window passes instead (``_split_heavy``). A step
   repeated right after itself (page_view → page_view) would pair every event with each later one
   of the step in the window; its first later event is the user's next one at a later time, read by
   one LEAD over the step's own events instead. The
   counted attempt is then found by one GROUP BY (``_chain_users``: times shifted by level).
   Any-order funnels of steps no event can share (``_any_chains``) take one window pass over the
   step events (time descending, a running MIN per step = each step's first event at or after the
   attempt); the k-th smallest of those within the deadline is t_k; a step repeated r times reads
   the r-th such event. Attempts that reach no other step (level 1) are then folded into one row
   per user, from the per-user event rollup when the funnel reads every event; with no exclusion,
   those reaching step 2 are folded per user too (by one GROUP BY: each step's first time only
   grows with the attempt's, so the counted attempt has the smallest at its level) and only that
   attempt's times are ranked. An exclusion adds
   one pass (the first exclusion event strictly after each event) whose value rides along to each
   step's first event. When different steps can share an
   event, ``_any_matching`` solves the matching of events to steps by Hall's theorem over the sets
   of distinct steps (one window pass per set).
5. **any order** (general path: more than six distinct steps that overlap) — every event matching
   any step in range starts an attempt; for each step the next matching event at or after t1 is
   found the same way, and sorted ascending; the attempt reaches level k when the k-th of those
   times and the k-th step event from t1 both lie in the window, and t_k is the later of the two
   (k steps need k distinct events: an upper bound when step filters overlap; the UI says so).
6. **exclusions** — an exclusion event strictly between the attempt's from-step and to-step times
   (both reached) taints the attempt, found with the same searchsorted on exclusion events.
7. **per user** — a user's level is the furthest any attempt reached; the counted attempt is the
   earliest untainted one at that level (plain GROUP BY aggregates, no window sorts) (times-to-convert come from it); a user whose every
   furthest attempt is tainted is dropped from all steps. A user is *in progress* when an
   untainted attempt at their furthest level still has its window open at the end of the data (``dl`` > latest event, and
   ``end`` > latest event when ``conversion_in_range``): they show at the next step as
   ``in_progress``, never as ``dropped``.
8. **output** — users at step k = users with level >= k; dropped = users(k-1) − users(k) −
   in_progress(k); median / mean / p90 of t_k − t_{k-1} in seconds (continuous percentiles) over
   the users who reached step k; breakdown values (first-touch or entry) keep the ``top_n`` by
   step-1 users, the rest are ``Other``, NULL is ``(none)``.
"""
from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from types import MappingProxyType

import pandas as pd

from store.errors import UserInputError
from store.parse import check_timezone
from store.sqlutil import normalise_key

from .derive import over_every_event, range_holds
from .filters import Filters, range_sql, to_utc
from .selectors import KEY_COLUMNS, Step, property_sql, step_sql

__all__ = ["Exclusion", "FunnelParams", "LABELS", "Step", "funnel", "funnel_sql", "funnel_users",
           "funnel_users_sql"]

ORDERS = ("ordered", "strict", "any")
ATTEMPTS = ("best", "first")
ATTRIBUTIONS = ("acquisition", "entry")
STATUSES = ("reached", "dropped")
MIN_STEPS, MAX_STEPS = 2, 20
OTHER, NONE = "Other", "(none)"

COLUMNS = ["step", "label", "users", "conv_from_first", "conv_from_prev", "dropped", "median_s", "mean_s",
           "p90_s", "in_progress"]

LABELS: dict[str, dict[str, str]] = {
    "breakdown": {"en": "Breakdown value", "zh": "细分值",
                  "help_en": "The user's value of the breakdown key (first touch or entry event); values beyond the top N are grouped as Other.",
                  "help_zh": "用户在细分维度上的取值（首次触达或进入事件）；排名前 N 以外的值归入 Other。"},
    "step": {"en": "Step", "zh": "步骤",
             "help_en": "The step's position in the funnel, starting at 1.",
             "help_zh": "该步骤在漏斗中的序号，从 1 开始。"},
    "label": {"en": "Step name", "zh": "步骤名称",
              "help_en": "The event (and property filters) the step matches.",
              "help_zh": "该步骤匹配的事件（及属性筛选）。"},
    "users": {"en": "Users", "zh": "用户数",
              "help_en": "Distinct users who reached this step within the window of one attempt.",
              "help_zh": "在一次尝试的时间窗口内到达该步骤的去重用户数。"},
    "conv_from_first": {"en": "Conversion from first step", "zh": "相对首步转化率",
                        "help_en": "Users at this step divided by users at step 1.",
                        "help_zh": "该步骤用户数除以第 1 步用户数。"},
    "conv_from_prev": {"en": "Conversion from previous step", "zh": "相对上一步转化率",
                       "help_en": "Users at this step divided by users at the previous step (1 for step 1).",
                       "help_zh": "该步骤用户数除以上一步用户数（第 1 步为 1）。"},
    "dropped": {"en": "Dropped", "zh": "流失用户数",
                "help_en": "Users who reached the previous step but not this one and whose window has closed.",
                "help_zh": "到达上一步但未到达该步骤且时间窗口已结束的用户数。"},
    "median_s": {"en": "Median time from previous step (s)", "zh": "距上一步时间中位数（秒）",
                 "help_en": "Median seconds between the previous step and this one, over users who reached this step.",
                 "help_zh": "到达该步骤的用户从上一步到该步骤所用秒数的中位数。"},
    "mean_s": {"en": "Mean time from previous step (s)", "zh": "距上一步平均时间（秒）",
               "help_en": "Mean seconds between the previous step and this one, over users who reached this step.",
               "help_zh": "到达该步骤的用户从上一步到该步骤所用秒数的平均值。"},
    "p90_s": {"en": "90th percentile time from previous step (s)", "zh": "距上一步时间 P90（秒）",
              "help_en": "90th percentile (interpolated) of seconds from the previous step, over users who reached this step.",
              "help_zh": "到达该步骤的用户从上一步起所用秒数的第 90 百分位（插值）。"},
    "in_progress": {"en": "In progress", "zh": "进行中",
                    "help_en": "Users at the previous step whose attempt that got them there still has an open window at the end of the data; not counted as dropped.",
                    "help_zh": "已到达上一步、且到达该步的那次尝试在数据截止时窗口仍未结束的用户；不计为流失。"},
}


@dataclass(frozen=True)
class Exclusion:
    """An event that must not happen strictly between steps ``from_step`` and ``to_step`` (0-based)."""

    event: str | None
    where: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    from_step: int = 0
    to_step: int = 1

    def __post_init__(self):
        object.__setattr__(self, "where", MappingProxyType(dict(self.where)))

    def __hash__(self):
        return hash((self.event, tuple(sorted(self.where.items())), self.from_step, self.to_step))

    @property
    def step(self) -> Step:
        return Step(self.event, self.where)


@dataclass(frozen=True)
class FunnelParams:
    """A funnel definition (SPEC §2). ``start``/``end`` are local to ``timezone``; ``end`` is exclusive.

    ``data_end`` (naive UTC) is "the end of the data" for ``in_progress``; None = the latest event stored.
    """

    steps: tuple[Step, ...]
    order: str = "ordered"
    window: timedelta = timedelta(days=14)
    start: date | datetime | None = None
    end: date | datetime | None = None
    conversion_in_range: bool = False
    attempt: str = "best"
    breakdown: str | None = None
    breakdown_attribution: str = "acquisition"
    exclusions: tuple[Exclusion, ...] = ()
    timezone: str = "UTC"
    top_n: int = 10
    filters: Filters | None = None
    data_end: datetime | None = None

    def __post_init__(self):
        steps = self.steps
        if isinstance(steps, (str, Step)) or not isinstance(steps, Sequence):
            raise UserInputError("Give the funnel steps as a list of steps.")
        steps = tuple(Step(s) if isinstance(s, str) else s for s in steps)
        object.__setattr__(self, "steps", steps)
        object.__setattr__(self, "exclusions", tuple(self.exclusions or ()))
        _validate(self)

    @property
    def n(self) -> int:
        return len(self.steps)

    def entry_range(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) of step 1 as naive UTC datetimes (None = open)."""
        if self.start is None and self.end is None and self.filters is not None:
            return self.filters.utc_range()
        return to_utc(self.start, self.timezone), to_utc(self.end, self.timezone)


def _validate(p: FunnelParams) -> None:
    if not MIN_STEPS <= len(p.steps) <= MAX_STEPS:
        raise UserInputError(f"A funnel needs {MIN_STEPS} to {MAX_STEPS} steps; this one has {len(p.steps)}.")
    for i, s in enumerate(p.steps, start=1):
        if not isinstance(s, Step):
            raise UserInputError(f"Step {i} is not a step; give an event name or a Step(event, where).")
    if p.order not in ORDERS:
        raise UserInputError(f"Unknown funnel order '{p.order}'; choose one of {', '.join(ORDERS)}.")
    if p.attempt not in ATTEMPTS:
        raise UserInputError(f"Unknown attempt rule '{p.attempt}'; choose 'best' or 'first'.")
    if p.breakdown_attribution not in ATTRIBUTIONS:
        raise UserInputError(f"Unknown breakdown attribution '{p.breakdown_attribution}'; "
                             "choose 'acquisition' or 'entry'.")
    if not isinstance(p.window, timedelta) or p.window <= timedelta(0):
        raise UserInputError("The conversion window must be a positive duration, e.g. 14 days.")
    check_timezone(p.timezone)
    if not isinstance(p.top_n, int) or p.top_n < 1:
        raise UserInputError("Keep at least one breakdown value (top N must be 1 or more).")
    if p.breakdown is not None and not str(p.breakdown).strip():
        raise UserInputError("Name the column or property to break the funnel down by, or leave it empty.")
    if p.filters is not None and not isinstance(p.filters, Filters):
        raise UserInputError("The funnel's filters must be a Filters object.")
    start, end = p.entry_range()
    if start is not None and end is not None and start >= end:
        raise UserInputError("The funnel's entry range is empty: its start must be before its end.")
    for x in p.exclusions:
        if not isinstance(x, Exclusion):
            raise UserInputError("Give each exclusion as Exclusion(event, where, from_step, to_step).")
        if not (0 <= x.from_step < x.to_step < len(p.steps)):
            raise UserInputError(f"An exclusion's steps must satisfy 0 <= from_step < to_step < {len(p.steps)} "
                                 f"(steps are numbered from 0); got {x.from_step} and {x.to_step}.")


def _compatible(a: Step, b: Step) -> bool:
    """False only when no event can match both ``a`` and ``b`` (different names or a conflicting value)."""
    if a.event is not None and b.event is not None and a.event != b.event:
        return False
    for key in set(a.where) & set(b.where):
        va, vb = str(a.where[key]), str(b.where[key])
        if key in KEY_COLUMNS:
            va, vb = normalise_key(va), normalise_key(vb)
        if va != vb:
            return False
    return True


class _Query:
    """CTEs in order, with their bound values in the order they appear in the text."""

    def __init__(self):
        self.ctes: list[tuple[str, str, str, bool]] = []
        self.params: list = []
        self.level_one: str | None = None   # a CTE of one level-1 row per user, kept out of ``att``

    def add(self, name: str, comment: str, body: str, params: Sequence = (), inline: bool = False) -> None:
        """``inline``: a cheap filter over the events that each reader should rescan with its own
        predicates pushed down, rather than one materialised copy of every row it could keep."""
        self.ctes.append((name, comment, body, inline))
        self.params += list(params)

    def has(self, name: str) -> bool:
        """Whether a CTE ``name`` was added (a path may build one a later shared step would otherwise add)."""
        return any(cte[0] == name for cte in self.ctes)

    def sql(self, final: str, params: Sequence = ()) -> tuple[str, list]:
        parts = [f"-- {comment}\n{name} AS {'NOT MATERIALIZED ' if inline else ''}(\n{body.strip()}\n)"
                 for name, comment, body, inline in self.ctes]
        return "WITH\n" + ",\n".join(parts) + "\n" + final.strip(), self.params + list(params)


def _position(q: _Query, name: str, cand: str, probes: str, probe_params: Sequence, strictly_after: bool) -> None:
    """``name``(user_key, a, pos, lim): for each probe time, how many ``cand`` rows come before it.

    ``probes`` selects (user_key, a, t, lim). Candidates at the probe's own time count as before it
    when ``strictly_after`` (so candidate pos + 1 is strictly later), else as after it.
    """
    cand_ord, probe_ord = (0, 1) if strictly_after else (1, 0)
    q.add(name, f"position of each probe among {cand} (searchsorted{', strictly after' if strictly_after else ''})", f"""
SELECT user_key, a, pos, lim FROM (
    SELECT user_key, a, lim, is_probe,
           CAST(SUM(1 - is_probe) OVER (PARTITION BY user_key ORDER BY t, ord
                                        ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS pos
    FROM (
        SELECT user_key, CAST(NULL AS BIGINT) AS a, t, CAST(NULL AS TIMESTAMP) AS lim, 0 AS is_probe, {cand_ord} AS ord
        FROM {cand}
        UNION ALL
        SELECT user_key, a, t, lim, 1 AS is_probe, {probe_ord} AS ord FROM ({probes}) pr
    ) u
) s
WHERE is_probe = 1""", probe_params)


def _core(p: FunnelParams) -> _Query:
    """CTEs ending in ``per_user``(user_key, ulvl, is_open, t1..tN[, breakdown, bd_order])."""
    n = p.n
    q = _Query()
    start, end = p.entry_range()
    cir_end = end if p.conversion_in_range else None

    # bounds
    if p.data_end is not None:
        q.add("bounds", "the end of the data, for in-progress users", "SELECT CAST(? AS TIMESTAMP) AS data_end",
              [p.data_end])
    else:
        q.add("bounds", "the end of the data: the latest stored event", "SELECT max(event_time) AS data_end FROM events")

    # scope: filtered events with step / exclusion flags
    cols, params = [], []
    for k, s in enumerate(p.steps, start=1):
        sql, prm = step_sql(s, "e")
        cols.append(f"{sql} AS m{k}")
        params += prm
    for i, x in enumerate(p.exclusions, start=1):
        sql, prm = step_sql(x.step, "e")
        cols.append(f"{sql} AS x{i}")
        params += prm
    chain = _chain_ok(p)
    # An entry breakdown on the chain paths is looked up after the counting (see _breakdown): the chains count
    # as without one, and only the general path carries each event's value along.
    entry_bd = p.breakdown is not None and p.breakdown_attribution == "entry" and not chain
    if entry_bd:
        sql, prm = property_sql(p.breakdown, "e")
        cols.append(f"{sql} AS bd")
        params += prm
    where, wprm = (p.filters.events_sql("e") if p.filters is not None else ("TRUE", []))
    lookups = chain and p.order == "ordered"
    narrow = chain and (lookups or (p.order == "any" and _any_exact(p.steps)))
    if narrow and _rollup_ok(p):
        # Every event, and no use for an event's id or properties: read the narrow copy clustered by event name,
        # where each step's scan reads only the row groups holding that name.
        users, users_prm = (p.filters or Filters()).user_keys_sql("e.user_key")
        q.add("scope", "every event's user and time (the copy stored by event name), flagged per step and "
                       "exclusion", f"""
SELECT e.user_key, CAST(NULL AS VARCHAR) AS event_id, e.event_time AS t, {', '.join(cols)}
FROM events_by_name e
WHERE {users}""", params + users_prm, inline=True)
    else:
        q.add("scope", "events the filters keep, flagged per step and exclusion", f"""
SELECT e.user_key, e.event_id, e.event_time AS t, {', '.join(cols)}
FROM events e
WHERE {where}""", params + wprm, inline=lookups)

    any_flag = " OR ".join([f"m{k}" for k in range(1, n + 1)] + [f"x{i}" for i in range(1, len(p.exclusions) + 1)])
    strict = p.order == "strict"
    if chain:
        if strict:
            # Only users with a step-2 event can have an attempt beyond step 1, and only their attempts are
            # traced (the level-1 row per user comes from the scope or the rollup): the others' events, most of
            # them, need no rank.
            q.add("ranked", "step events of the users with a step-2 event, with the rank of their time among all "
                            "the user's scoped event times (a strict step must be at most one rank later than the "
                            "previous step)", f"""
SELECT * FROM (
    SELECT s.*, DENSE_RANK() OVER (PARTITION BY user_key ORDER BY t) AS d
    FROM scope s WHERE s.user_key IN (SELECT user_key FROM scope WHERE m2)
) r
WHERE {any_flag}""")
        q.add("matched", "only events matching a step", f"SELECT * FROM {'ranked' if strict else 'scope'} WHERE {any_flag}",
              inline=not strict)
        if p.order == "ordered":
            _split_heavy(q, p)
            _lookup_chains(q, p, start, end, cir_end, "matched_l", "k_")
            _chains(q, p, start, end, cir_end, "matched_h", "h_")
            q.add("att", "every attempt, light and heavy users together", "SELECT * FROM k_att UNION ALL SELECT * FROM h_att")
        elif p.order == "any":
            (_any_chains if _any_exact(p.steps) else _any_matching)(q, p, start, end, cir_end)
        else:
            _strict_chains(q, p, start, end, cir_end, blocks=not _distinct_chain(p.steps))
        _chain_users(q, p, cir_end)
        _breakdown(q, p, entry_bd)
        return q
    if strict:
        q.add("next_times", "per user and event time, the next distinct event time (any event breaks a strict chain)", """
SELECT user_key, t, LEAD(t) OVER (PARTITION BY user_key ORDER BY t) AS nt
FROM (SELECT DISTINCT user_key, t FROM scope) d""")
    q.add("matched", "only events matching a step or an exclusion", f"""
SELECT s.*{', nx.nt' if strict else ''}
FROM scope s{' JOIN next_times nx ON nx.user_key = s.user_key AND nx.t = s.t' if strict else ''}
WHERE {any_flag}""")
    extra = (", nt" if strict else "") + (", bd" if entry_bd else "")
    for k in range(1, n + 1):
        q.add(f"c{k}", f"step-{k} candidates numbered in time order", f"""
SELECT user_key, t, event_id AS id{extra}, ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY t, event_id) AS rn
FROM matched WHERE m{k}""")
    if p.order == "any":
        step_any = " OR ".join(f"m{k}" for k in range(1, n + 1))
        q.add("c_any", "events matching any step, numbered in time order", f"""
SELECT user_key, t, event_id AS id{extra}, ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY t, event_id) AS rn
FROM matched WHERE {step_any}""")

    # attempts: step-1 events (any order: any step event) in the entry range
    range_sql, range_prm = _entry_range(start, end)
    entry_src = "c_any" if p.order == "any" else "c1"
    in_range = " AND ".join(range_sql) or "TRUE"
    bd_col = ", bd" if entry_bd else ""
    nt_col = ", nt AS nt1" if strict else ""
    first = p.attempt == "first"
    q.add("a1", "attempts: each step-1 event in the entry range" + (" (the user's first only)" if first else "")
          + "; dl = deadline t1 + window, inclusive", f"""
SELECT user_key, rn AS a, t AS t1, id AS s1, t + CAST(? AS INTERVAL) AS dl{nt_col}{bd_col}
FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY rn) AS nth
      FROM {entry_src} WHERE {in_range}) ev
WHERE {'nth = 1' if first else 'TRUE'}""", [p.window] + range_prm)

    end_cond, end_prm = ("", [])
    if cir_end is not None:
        end_cond, end_prm = " AND c.t < ?", [cir_end]

    if p.order == "any":
        _any_order(q, p, end_cond, end_prm)
    else:
        _sequential(q, p, strict, end_cond, end_prm)

    # exclusions: taint an attempt when an exclusion event lies strictly between its from- and to-step
    taints = []
    for i, x in enumerate(p.exclusions, start=1):
        f, t = x.from_step + 1, x.to_step + 1
        q.add(f"xc{i}", f"exclusion {i} events numbered in time order", f"""
SELECT user_key, t, ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY t, event_id) AS rn FROM matched WHERE x{i}""")
        _position(q, f"xp{i}", f"xc{i}", f"SELECT user_key, a, t{f} AS t, t{t} AS lim FROM att WHERE t{t} IS NOT NULL",
                  [], strictly_after=True)
        q.add(f"xt{i}", f"attempts tainted by exclusion {i}", f"""
SELECT DISTINCT pp.user_key, pp.a
FROM xp{i} pp JOIN xc{i} c ON c.user_key = pp.user_key AND c.rn = pp.pos + 1
WHERE c.t < pp.lim""")
        taints.append(i)
    taint_join = "".join(f"\nLEFT JOIN xt{i} ON xt{i}.user_key = att.user_key AND xt{i}.a = att.a" for i in taints)
    taint_expr = (" OR ".join(f"xt{i}.a IS NOT NULL" for i in taints)) if taints else "FALSE"
    t_cols = ", ".join(f"t{k}" for k in range(1, n + 1))
    is_open, open_prm = _is_open("att.dl", cir_end)
    q.add("scored", "attempt level, taint and whether its window is still open at the end of the data", f"""
SELECT att.user_key, att.a, {', '.join('att.' + c.strip() for c in t_cols.split(','))}{', att.bd' if entry_bd else ''},
       att.lvl, CASE WHEN {taint_expr} THEN 1 ELSE 0 END AS tainted,
       {is_open} AS is_open
FROM att CROSS JOIN bounds b{taint_join}""", open_prm)
    q.add("levels", "per user: the furthest level any attempt reached; open if an untainted attempt AT that "
                    "level still is (an attempt stuck lower cannot make the user's next step pending)", """
SELECT s.user_key, m.ulvl, MAX(CASE WHEN s.tainted = 0 AND s.lvl = m.ulvl THEN s.is_open ELSE 0 END) AS is_open
FROM scored s JOIN (SELECT user_key, MAX(lvl) AS ulvl FROM scored GROUP BY user_key) m ON m.user_key = s.user_key
GROUP BY s.user_key, m.ulvl""")
    q.add("picked", "the counted attempt: the earliest untainted one at that level (a follows step-1 time)", """
SELECT s.user_key, MIN(s.a) AS a
FROM scored s JOIN levels l ON l.user_key = s.user_key AND s.lvl = l.ulvl
WHERE s.tainted = 0
GROUP BY s.user_key""")
    q.add("counted", "one row per counted user", f"""
SELECT s.user_key, l.ulvl, l.is_open, {', '.join('s.' + c.strip() for c in t_cols.split(','))}{', s.bd' if entry_bd else ''}
FROM picked pk
JOIN scored s ON s.user_key = pk.user_key AND s.a = pk.a
JOIN levels l ON l.user_key = pk.user_key""")
    _breakdown(q, p, entry_bd)
    return q


def _entry_range(start, end) -> tuple[list[str], list]:
    """Conditions (and their bound values) keeping step-1 times ``t`` in the entry range [start, end)."""
    return range_sql("t", start, end)


def any_order_is_exact(p: FunnelParams) -> bool:
    """False for an any-order funnel in which one event could match two steps: its counts are then an upper
    bound (k steps are taken as k distinct step events, not a matching of events to steps), so the UI says so."""
    return p.order != "any" or _chain_ok(p)


def _step_key(s: Step) -> tuple:
    """Identifies a step's filter: equal keys match exactly the same events."""
    where = tuple(sorted((k, normalise_key(str(v)) if k in KEY_COLUMNS else str(v)) for k, v in s.where.items()))
    return s.event, where


def _copies(steps: Sequence[Step]) -> dict[int, tuple[int, int]]:
    """Step j (1-based) -> (the first step with the same filter, which copy of it j is: 1, 2, ...)."""
    first: dict[tuple, int] = {}
    count: dict[tuple, int] = {}
    out = {}
    for j, s in enumerate(steps, start=1):
        key = _step_key(s)
        first.setdefault(key, j)
        count[key] = count.get(key, 0) + 1
        out[j] = (first[key], count[key])
    return out


def _any_exact(steps: Sequence[Step]) -> bool:
    """Any order: no event can match two different steps (the same step may repeat), so taking each
    step's earliest events is an exact matching of events to steps."""
    return not any(_compatible(a, b) and _step_key(a) != _step_key(b) for i, a in enumerate(steps) for b in steps[i + 1:])


def _chain_ok(p: FunnelParams) -> bool:
    """The chain path applies: no event can fill two steps of one chain (any order: no event can
    match two steps). Ordered and strict chains may repeat a step when a step between the two
    repeats covers its predecessor (``Step.covers``): that step must be strictly later, so the
    chain's times rise strictly across it and one event cannot fill both (e.g. page_view, page_view)."""
    steps = p.steps
    if p.order == "any":
        return _any_exact(steps) or len({j0 for j0, _ in _copies(steps).values()}) <= ANY_MATCHING_CLASSES
    return _distinct_chain(steps) or (p.order == "strict" and _blocks_ok(steps))


def _distinct_chain(steps: Sequence[Step]) -> bool:
    """No event can fill two steps of one ordered or strict chain."""
    return all(not _compatible(steps[i], steps[j]) or any(steps[m].covers(steps[m - 1]) for m in range(i + 1, j + 1))
               for i in range(len(steps)) for j in range(i + 1, len(steps)))


# Strict funnels whose steps can share an event keep steps at one rank apart by Hall's condition over
# the sets of distinct steps: up to this many distinct steps (2^C - 1 counts per rank).
STRICT_BLOCK_CLASSES = 6


def _blocks_ok(steps: Sequence[Step]) -> bool:
    """A strict funnel in which one event could fill two steps can take :func:`_strict_chains` with blocks:
    few distinct steps, and step 1 shares no event with a different step (an attempt's own step-1 event
    then never needs to fill another step, so counts per rank suffice)."""
    copies = _copies(steps)
    first = _step_key(steps[0])
    return (len({j0 for j0, _ in copies.values()}) <= STRICT_BLOCK_CLASSES
            and not any(_compatible(steps[0], s) and _step_key(s) != first for s in steps[1:]))


def _rollup_ok(p: FunnelParams) -> bool:
    """Whether per-user counts and first / last times of the step events can come from the ``user_events``
    rollup (one row per user and event name, kept by every load) instead of a scan and GROUP BY of the
    events, and the step events themselves from ``events_by_name`` (stored by event name): the funnel reads
    every stored event of the selected users (no segment, no entry range; a channel / campaign selection keeps
    or drops each user whole, so it reads the selected users' rows) and its steps and exclusions name events
    without property conditions."""
    start, end = p.entry_range()
    if start is not None or end is not None:
        return False
    if p.filters is not None and p.filters.segment:
        return False
    return all(not s.where for s in list(p.steps) + [x.step for x in p.exclusions])


# Step times shifted by (N - level) × this many days sort attempts at a higher level first; stored
# event times span 1970-2100 (under 48,000 days), so the shifts never overlap.
_SHIFT_DAYS = 100_000
_SHIFT = f"INTERVAL '{_SHIFT_DAYS} days'"


def _is_open(dl: str, cir_end) -> tuple[str, list]:
    """SQL (1 or 0) and its bound values: whether an attempt with deadline ``dl`` is still open at the end of the
    data (``b.data_end``, from ``bounds``) — and, when every step must fall in the entry range, that range too."""
    if cir_end is None:
        return f"CASE WHEN {dl} > b.data_end THEN 1 ELSE 0 END", []
    return f"CASE WHEN {dl} > b.data_end AND ? > b.data_end THEN 1 ELSE 0 END", [cir_end]

# Users with more step events than this (steps after the first, and exclusions) take the window
# path in ordered funnels: the lookup join compares each event with every later-step event of its
# user, so its cost per user grows with the product of the two counts.
LOOKUP_LIMIT = 64


def _split_heavy(q: _Query, p: FunnelParams) -> None:
    """``matched_l`` / ``matched_h``: the step events of users with at most / more than
    ``LOOKUP_LIMIT`` events of the steps after the first (and exclusions)."""
    comment = (f"users with many events of the later steps (more than {LOOKUP_LIMIT}): the window path is "
               "cheaper for them than a lookup join")
    if _rollup_ok(p):
        later_steps = list(p.steps[1:]) + [x.step for x in p.exclusions]
        parts, prm = [], []
        for s in later_steps:
            sql, sp = step_sql(s, "r")
            parts.append(f"SELECT user_key, events FROM user_events r WHERE {sql}")
            prm += sp
        later = "\n    UNION ALL ".join(parts)
        # Counted over every user, whatever the channel / campaign selection: heavy only routes a user's step
        # events, and ``scope`` holds none of an unselected user's.
        # A sum of k counts over the limit has one count over limit / k: only those users are grouped.
        k = len(later_steps)
        q.add("heavy", comment + " (counted from the per-user event rollup)", f"""
SELECT user_key FROM (
    {later}
) s
WHERE user_key IN (SELECT user_key FROM (
    {later}
) c WHERE events * {k} > {int(LOOKUP_LIMIT)})
GROUP BY user_key HAVING SUM(events) > {int(LOOKUP_LIMIT)}""", prm + prm)
    else:
        flags = [f"m{k}" for k in range(2, p.n + 1)] + [f"x{i}" for i in range(1, len(p.exclusions) + 1)]
        # one scan per flag (an OR of flags would not push the event-name filter into the scan)
        later = "\n    UNION ALL ".join(f"SELECT user_key FROM scope WHERE {f}" for f in flags)
        q.add("heavy", comment, f"""
SELECT user_key FROM (
    {later}
) s GROUP BY user_key HAVING COUNT(*) > {int(LOOKUP_LIMIT)}""")
    # from scope, not matched: every reader keeps one step's events anyway, and matched's OR of all the
    # flags would be evaluated again on every row
    q.add("matched_l", "events of every other user",
          "SELECT * FROM scope m WHERE NOT EXISTS (SELECT 1 FROM heavy h WHERE h.user_key = m.user_key)",
          inline=True)
    q.add("matched_h", "step events of the heavy users",
          "SELECT * FROM matched m WHERE m.user_key IN (SELECT user_key FROM heavy)", inline=True)


def _lookup_chains(q: _Query, p: FunnelParams, start, end, cir_end, src_tab: str,
                   pfx: str) -> None:
    """Ordered funnels whose steps no single event can share, by joins and GROUP BYs only (same
    result as :func:`_chains`, with no sort at all).

    As in :func:`_chains`, passes run from the last step back and each step-j event inherits the
    chain of the first step-(j+1) event at or after it (strictly after when step j+1 covers step
    j). Chain times only grow with the event's time (a later step-(j+1) event reaches every later
    step no sooner; NULL = never), so the first event's chain is the per-column MIN over all the
    user's step-(j+1) events at or after — an equi-join on the user with a range condition,
    then a GROUP BY. Events more than one window later cannot be part of any attempt's chain (the
    deadline t1 + window is no later than t_j + window), so the range stops there. Exclusions are
    looked up the same way (the first exclusion event strictly after each from-step event). Only
    attempts that reach step 2 within their window get a row; one row per user stands for the
    rest (level 1; never tainted). The join compares an event with each later-step event of its
    user in the window, so users with many such events take the window path (:func:`_split_heavy`).
    """
    n = p.n
    cir = " AND t < ?" if cir_end is not None else ""
    cir_prm = [cir_end] if cir_end is not None else []
    excl = [(i, x.from_step + 1, x.to_step + 1) for i, x in enumerate(p.exclusions, start=1)]
    within = "CAST(? AS INTERVAL)"
    for i, _, _ in excl:
        q.add(f"{pfx}xc{i}", f"exclusion {i} events", f"SELECT user_key, t FROM {src_tab} WHERE x{i}")

    def first_after(y: str, y_params: list, keys: list[str], own: list[str], tab: str, cols: list[str],
                    strictly: bool, inner: bool = False, names: list[str] | None = None,
                    bounded: bool = False) -> tuple[str, list]:
        """Rows of ``y`` with, per column of ``tab`` (output as ``names``), its MIN over ``tab``'s rows of the
        same user at or after (strictly after) ``y.t`` and within one window: the first such row's value.
        Returns the SQL and its bound values (``y_params`` and the window).

        ``bounded``: both sides are later-step events of light users (at most ``LOOKUP_LIMIT`` of them per
        user, so at most a few hundred pairs). The join is then on the user alone and the time range filters
        the aggregates: the same rows, but the planner sizes an equi-join's result rightly, where a range
        condition in the join makes it guess the result a hundred times too big — and then build the hash
        table of the next join (the step-1 attempts) on millions of step-1 events instead of on this."""
        group = f"{', '.join('y.' + k for k in keys)}{''.join(', y.' + o for o in own)}"
        op = ">" if strictly else ">="
        if bounded:
            mins = ", ".join(f"MIN(l.{c}) FILTER (WHERE l.t {op} y.t AND l.t <= y.lim) AS {n}"
                             for c, n in zip(cols, names or cols))
            return (f"SELECT {group}, {mins}\n"
                    f"FROM (SELECT *, t + {within} AS lim FROM {y} y0) y "
                    f"LEFT JOIN {tab} l ON l.user_key = y.user_key\n"
                    f"GROUP BY {group}"), [p.window] + list(y_params)
        mins = ", ".join(f"MIN(l.{c}) AS {n}" for c, n in zip(cols, names or cols))
        return (f"SELECT {group}, {mins}\n"
                f"FROM {y} y {'JOIN' if inner else 'LEFT JOIN'} {tab} l ON l.user_key = y.user_key AND l.t {op} y.t "
                f"AND l.t <= y.t + {within}\n"
                f"GROUP BY {group}"), list(y_params) + [p.window]

    def repeated(j: int) -> bool:
        """Step j+1 repeats step j's filter (page_view → page_view): its events are step j's (a superset at step
        1, cut to the entry range), and the first one strictly after a step-j event is the user's next one at a
        later time. A running lookup then reads it off the step's own events, where a join would pair each
        event with every later one of the user in the window (many, for a frequent event)."""
        return _step_key(p.steps[j]) == _step_key(p.steps[j - 1])

    def next_later(j: int, inherited: list[str]) -> str:
        """``nx<j>``: per user and distinct time of the step-(j+1) events, the inherited values of the events at
        the user's next later time of that step (NULL when that is more than one window later, as the lookup
        join's range leaves it)."""
        first = inherited[0]   # r<j+1>: that event's own time
        lead = ", ".join(f"CASE WHEN LEAD({first}) OVER w <= t + {within} THEN LEAD({c}) OVER w END AS {c}"
                         for c in inherited)
        # the last step's rows are its events, several at one time; an earlier step's are one per user and time
        times = (f"(SELECT user_key, t, {', '.join(f'MIN({c}) AS {c}' for c in inherited)} FROM {pfx}l{j + 1} "
                 f"GROUP BY user_key, t)" if j + 1 == n else f"{pfx}l{j + 1}")
        q.add(f"{pfx}nx{j}", f"per user and time of the step-{j + 1} events (step {j} repeated): the chain of the "
                             f"next later one", f"""
SELECT user_key, t, {lead}
FROM {times} d
WINDOW w AS (PARTITION BY user_key ORDER BY t)""", [p.window] * len(inherited))
        return f"{pfx}nx{j}"

    q.add(f"{pfx}l{n}", f"step-{n} events", f"SELECT user_key, t, t AS r{n} FROM {src_tab} WHERE m{n}{cir}", cir_prm)
    for j in range(n - 1, 1, -1):
        src, prm, own = f"(SELECT user_key, t FROM {src_tab} WHERE m{j}{cir})", list(cir_prm), []
        for i, f, _ in excl:
            if f == j:
                q.add(f"{pfx}x{j}_{i}", f"step-{j} events with the first exclusion-{i} event strictly after each",
                      *first_after(src, prm, ["user_key", "t"], own, f"{pfx}xc{i}", ["t"], True, names=[f"xa{i}"]))
                src, prm, own = f"{pfx}x{j}_{i}", [], own + [f"xa{i}"]
        later = p.steps[j].covers(p.steps[j - 1])   # step j+1 covers step j: strictly later
        inherited = [f"r{k}" for k in range(j + 1, n + 1)] + [f"xa{i}" for i, f, _ in excl if f > j]
        if repeated(j):
            nx = next_later(j, inherited)
            # the step-j events are the step-(j+1) ones: one row per user and time, as the lookup's GROUP BY gives
            body = (f"SELECT n.*, n.t AS r{j} FROM {nx} n" if not own else
                    f"SELECT s.*, {', '.join('n.' + c for c in inherited)}, s.t AS r{j} "
                    f"FROM {src} s JOIN {nx} n ON n.user_key = s.user_key AND n.t = s.t")
            q.add(f"{pfx}l{j}", f"step-{j} events with the time their greedy chain reaches each later step (from "
                  f"the user's next step-{j + 1} event, strictly later)", body, prm if own else [])
            continue
        body, body_prm = first_after(src, prm, ["user_key", "t"], own, f"{pfx}l{j + 1}", inherited, later,
                                     bounded=True)
        q.add(f"{pfx}l{j}", f"step-{j} events with the time their greedy chain reaches each later step (from the first "
              f"step-{j + 1} event {'strictly after' if later else 'at or after'} each)",
              f"SELECT *, t AS r{j} FROM (\n{body}\n) s", body_prm)
    # step 1: the attempts
    rng, prm = _entry_range(start, end)
    where = " AND ".join(["m1"] + rng)
    # Step-1 events are read straight from the scope: heavy users' ones find no step-2 row here (those come
    # from light users only) and are dropped from the per-user level-1 row below; skipping the split keeps the
    # big side a plain filtered scan, which the planner then rightly takes for the probe side of the join
    # rather than building a hash table on it.
    src = f"({_attempt_times('scope', where, p.attempt == 'first')})"
    later = p.steps[1].covers(p.steps[0])
    inherited = [f"r{k}" for k in range(2, n + 1)] + [f"xa{i}" for i, f, _ in excl if f > 1]
    # Most step-1 events (e.g. page views) reach no step-2 event within their window: they are level-1
    # attempts and need no row each; one row per user stands for them, with the earliest step-1 time
    # (the counted attempt's, when the user stays at level 1) and the latest deadline (open if any is).
    comment = "per user: the step-1 events in the entry range as level-1 attempts (earliest time, latest deadline)"
    one, one_prm, rollup = _level_one(p, p.steps[:1], src, prm)
    q.add(f"{pfx}one", comment + (", from the per-user event rollup" if rollup else ""), f"""
SELECT * FROM ({one}) o WHERE NOT EXISTS (SELECT 1 FROM heavy h WHERE h.user_key = o.user_key)""", one_prm)
    keys = ["user_key", "t"]
    comment = ("attempts that reach step 2 within their window: step-1 events in the entry range" + (" (the user's first only)" if p.attempt == "first" else "")
               + ", with the time their greedy chain reaches each later step (from the first step-2 event "
               + ("strictly after" if later else "at or after") + " each)")
    if repeated(1):
        nx = next_later(1, inherited)
        # every step-1 event in the entry range is a step-2 event too: the attempts are those rows in range (the
        # user's first one only, when only that one is an attempt)
        body = (f"SELECT n.* FROM {src} s JOIN {nx} n ON n.user_key = s.user_key AND n.t = s.t WHERE n.r2 IS NOT NULL"
                if p.attempt == "first" else f"SELECT * FROM {nx} n WHERE {' AND '.join(['n.r2 IS NOT NULL'] + rng)}")
        q.add(f"{pfx}r1", comment + " — the user's next one", body, prm)
    else:
        q.add(f"{pfx}r1", comment, *first_after(src, prm, keys, [], f"{pfx}l2", inherited, later, inner=True))
    src, own = f"{pfx}r1", []
    for i, f, _ in excl:
        if f == 1:
            q.add(f"{pfx}x1_{i}", f"those attempts with the first exclusion-{i} event strictly after each",
                  *first_after(src, [], keys + inherited, own, f"{pfx}xc{i}", ["t"], True, names=[f"xa{i}"]))
            src, own = f"{pfx}x1_{i}", own + [f"xa{i}"]
    q.add(f"{pfx}l1", "attempts reaching step 2, with every exclusion time",
          f"SELECT *, t AS t1 FROM {src}")
    lvl = " + ".join(["1"] + [f"CASE WHEN r{k} <= dl THEN 1 ELSE 0 END" for k in range(2, n + 1)])
    t_cols = ", ".join(f"CASE WHEN r{k} <= dl THEN r{k} END AS t{k}" for k in range(2, n + 1))
    taint = " OR ".join(f"(r{to} <= dl AND xa{i} < r{to})" for i, _, to in excl) or "FALSE"
    q.level_one = f"{pfx}one"   # joined in per user by _chain_users, not grouped with the attempts
    q.add(f"{pfx}att", "every attempt: deadline, step times within it, level, taint", f"""
SELECT user_key, t1, dl, {t_cols}, {lvl} AS lvl, CASE WHEN {taint} THEN 1 ELSE 0 END AS tainted
FROM (SELECT l1.*, t1 + CAST(? AS INTERVAL) AS dl FROM {pfx}l1 l1) a""", [p.window])


def _attempt_times(src: str, where: str, first: bool, ranked: bool = False) -> str:
    """SQL for the attempts' times on the chain paths: ``src``'s rows meeting ``where`` (``user_key, t``, and the
    time's rank ``d`` when ``ranked``), or with ``first`` the user's earliest one alone. Attempts at one time reach
    the same steps there, so the earliest time stands for the first attempt whichever event it is."""
    d = ", d" if ranked else ""
    if first:   # a time's rank grows with the time: the earliest has the smallest
        return f"SELECT user_key, MIN(t) AS t{', MIN(d) AS d' if ranked else ''} FROM {src} WHERE {where} GROUP BY user_key"
    return f"SELECT user_key, t{d} FROM {src} WHERE {where}"


def _any_step_sql(steps: Sequence[Step], alias: str) -> tuple[str, list]:
    """SQL (and its bound values) for: the row of ``alias`` (an event, or a rollup row) matches one of ``steps``."""
    conds, prm = [], []
    for s in steps:
        sql, sp = step_sql(s, alias)
        conds.append(sql)
        prm += sp
    return f"({' OR '.join(conds)})", prm


def _level_one(p: FunnelParams, steps: Sequence[Step], src: str, src_prm: Sequence) -> tuple[str, list, bool]:
    """(SQL, bound values, from the rollup?) of one row per user standing for all their attempts as level-1
    ones: ``user_key``, ``t1`` (the earliest attempt's time) and ``dl`` (the latest deadline).

    The attempts are the events of ``steps`` in the entry range, selected with their times ``t`` by ``src``
    (the user's first only when ``attempt="first"``: its deadline is then the earliest one). When the funnel
    reads every stored event of the selected users (:func:`_rollup_ok`), the per-user event rollup holds each
    event's first and last time, so the events need no scan."""
    window = [p.window]
    if _rollup_ok(p):
        any_step, prm = _any_step_sql(steps, "r")
        users, users_prm = (p.filters or Filters()).user_keys_sql("r.user_key")
        where = f"{any_step} AND {users}"
        # one rollup row per user and event name: one step naming one event needs no GROUP BY; the first
        # attempt only is the earliest event, and its deadline the latest
        last = "first_time" if p.attempt == "first" else "last_time"
        per_user = (f"SELECT user_key, first_time AS t1, {last} AS t_last FROM user_events r WHERE {where}"
                    if len(steps) == 1 and steps[0].event is not None else
                    f"SELECT user_key, MIN(first_time) AS t1, {'MIN' if p.attempt == 'first' else 'MAX'}({last}) "
                    f"AS t_last FROM user_events r WHERE {where} GROUP BY user_key")
        return (f"SELECT user_key, t1, t_last + CAST(? AS INTERVAL) AS dl "
                f"FROM ({per_user}) r"), window + prm + users_prm, True
    return (f"SELECT user_key, MIN(t) AS t1, MAX(t) + CAST(? AS INTERVAL) AS dl "
            f"FROM {src} x GROUP BY user_key"), window + list(src_prm), False


def _strict_chains(q: _Query, p: FunnelParams, start, end, cir_end, blocks: bool = False) -> None:
    """Strict funnels on the chain path: a dynamic programme over time ranks.

    ``d`` is the rank of an event's time among all the user's scoped event times (``DENSE_RANK``).
    In a strict chain each step lies at the previous step's rank (a tie: same timestamp, allowed
    unless the step covers the previous one) or the next rank (nothing in between). All events of
    one step at one rank are interchangeable, so the states are (step, rank). From the last step
    back, ``g<j>`` gives for each step-j state the earliest time at which some strict chain from it
    reaches every later step: the smaller of the two successors' (same rank, next rank). An
    attempt reaches level k when that time for step k is within its deadline (each step's minimum
    is taken independently, but a chain reaching step k reached every earlier step sooner, so the
    levels are exact).

    The attempt's step times then come from one chain: forward from step 1, each step stays at the
    previous step's rank (the earlier time) when the attempt's level is still reachable from there
    within the deadline, else it moves to the next rank — the chain with the earliest times among
    those reaching that level. (Taking the earliest event at each step instead can stop a chain
    that a later tied event would carry on: a@0, b@0, b@5, c@10 reaches c through b@5.) Only
    attempts reaching step 2 are traced, and only they get a row at all (found by one join of the step-1
    events with the step-2 states at the rank each can follow); one row per user stands for the level-1
    attempts. An exclusion taints the attempt when an exclusion event's
    rank lies strictly between the from- and to-step's ranks.

    ``blocks``: one event could fill two steps (a → b → a). Events at different ranks are different
    events, so only steps at one rank (a block: a run of consecutive steps at one timestamp) can
    compete for an event; the states gain the block's first step ``bs``, and a step joins the
    previous step's block only when the block's steps can still take distinct events at that rank —
    Hall's condition over the sets of distinct steps in the block (every set has at least as many
    events at that rank matching it as the block has copies of its steps), from one GROUP BY of
    counts per rank. Without it ``bs`` is always 0.
    """
    from itertools import combinations
    n = p.n
    cir = " AND t < ?" if cir_end is not None else ""
    cir_prm = [cir_end] if cir_end is not None else []
    tie = {k: not p.steps[k - 1].covers(p.steps[k - 2]) for k in range(2, n + 1)}   # step k may share step k-1's time
    if blocks:
        copies = _copies(p.steps)
        sets = [cs for r in range(1, len({c for c, _ in copies.values()}) + 1)
                for cs in combinations(sorted({c for c, _ in copies.values()}), r)]
        counts = ", ".join(f"SUM(CASE WHEN {' OR '.join(f'COALESCE(m{c}, FALSE)' for c in cs)} THEN 1 ELSE 0 END) "
                           f"AS n_{'_'.join(map(str, cs))}" for cs in sets)
        q.add("rank_counts", "per user and time rank: how many events match each set of distinct steps",
              f"SELECT user_key, d, MIN(t) AS t, {counts} FROM matched WHERE TRUE{cir} GROUP BY user_key, d", cir_prm)

        def feasible(s: int, e: int) -> str:   # steps s..e can take distinct events at one rank (Hall)
            need: dict[int, int] = {}
            for j in range(s, e + 1):
                need[copies[j][0]] = need.get(copies[j][0], 0) + 1
            return " AND ".join(f"n_{'_'.join(map(str, cs))} >= {sum(need.get(c, 0) for c in cs)}"
                                for cs in sets if any(c in need for c in cs))

    def states(k: int) -> tuple[str, list]:   # step k's states (user_key, d, t, bs) and their bound values
        if not blocks:
            return f"SELECT DISTINCT user_key, d, t, 0 AS bs FROM matched WHERE m{k}{cir}", list(cir_prm)
        return "\nUNION ALL\n".join(f"SELECT user_key, d, t, {s} AS bs FROM rank_counts WHERE {feasible(s, k)}"
                                    for s in range(1, k + 1) if all(tie[m] for m in range(s + 1, k + 1))), []

    def opens(k: int) -> str:                 # the block start of a step-k state at a new rank
        return str(k) if blocks else "0"

    def successors(k: int, bs: str, cols: range) -> tuple[str, str]:
        """Joins to step k's states at the rank of x (a tie, if allowed) and the next rank, and the smaller value per column."""
        joins = (f"\nLEFT JOIN g{k} a ON a.user_key = x.user_key AND a.d = x.d AND a.bs = {bs}" if tie[k] else "") + \
                f"\nLEFT JOIN g{k} b ON b.user_key = x.user_key AND b.d = x.d + 1 AND b.bs = {opens(k)}"
        vals = ", ".join((f"LEAST(a.r{c}, b.r{c}) AS r{c}" if tie[k] else f"b.r{c} AS r{c}") for c in cols)
        return joins, vals
    body, prm = states(n)
    q.add(f"g{n}", f"step-{n} states (rank{', block start' if blocks else ''})",
          f"SELECT user_key, d, bs, t AS r{n} FROM (\n{body}\n) x", prm)
    for j in range(n - 1, 1, -1):
        body, prm = states(j)
        joins, vals = successors(j + 1, "x.bs", range(j + 1, n + 1))
        q.add(f"g{j}", f"step-{j} states: the earliest time a strict chain from each reaches every later step", f"""
SELECT x.user_key, x.d, x.bs, x.t AS r{j}, {vals}
FROM (
{body}
) x{joins}""", prm)
    rng, prm = _entry_range(start, end)
    where = " AND ".join(["m1"] + rng)
    cur = _attempt_times("matched", where, p.attempt == "first", ranked=True)
    lvl = " + ".join(["1"] + [f"CASE WHEN r{k} <= dl THEN 1 ELSE 0 END" for k in range(2, n + 1)])
    first = " (the user's first only)" if p.attempt == "first" else ""
    # Only attempts with a step-2 state at their own rank (a tie) or the next can reach step 2; most step-1
    # events (page views) have none. One join with the states placed at the step-1 rank they serve finds
    # those attempts; every attempt counts in the per-user level-1 row (used for users with no attempt
    # beyond step 1).
    cols = range(2, n + 1)
    rs = ", ".join(f"r{c}" for c in cols)
    served = (f"SELECT user_key, d, {rs} FROM g2 WHERE bs = {opens(1)}\n    UNION ALL\n    " if tie[2] else "") + \
        f"SELECT user_key, d - 1 AS d, {rs} FROM g2 WHERE bs = {opens(2)}"
    q.add("g2_at", "step-2 states at the step-1 rank they can follow: the same rank (a tie) and the one before",
          served)
    q.add("s_lvl", f"attempts reaching a step-2 state: step-1 events in the entry range{first}, their deadline "
                   "and level", f"""
SELECT *, {lvl} AS lvl FROM (
    SELECT x.user_key, x.t AS t1, x.d AS c1, {opens(1)} AS b1,
           x.t + CAST(? AS INTERVAL) AS dl, {', '.join(f'MIN(g.r{c}) AS r{c}' for c in cols)}
    FROM ({cur}) x JOIN g2_at g ON g.user_key = x.user_key AND g.d = x.d
    GROUP BY x.user_key, x.t, x.d
) s""", [p.window] + prm)
    # over every user's step-1 events: ``matched`` holds only the users with a step-2 event
    one, one_prm, rollup = _level_one(p, p.steps[:1], f"({_attempt_times('scope', where, p.attempt == 'first')})", prm)
    q.add("s_one", "per user: every attempt as a level-1 one (earliest time, latest deadline)"
          + (", from the per-user event rollup" if rollup else ""), one, one_prm)
    q.level_one = "s_one"
    q.add("s_lvl2", "the attempts that reach step 2 (only they need their chain traced)",
          "SELECT * FROM s_lvl WHERE lvl >= 2")
    prev = "s_lvl2"
    for k in range(2, n + 1):
        # the attempt's level reached from step k's state at the previous rank (the tie) within the deadline?
        reach = "CASE x.lvl " + " ".join(f"WHEN {L} THEN a.r{L}" for L in range(k, n + 1)) + " END <= x.dl"
        stay = f"a.d IS NOT NULL AND {reach}" if tie[k] else "FALSE"
        joins = (f"\nLEFT JOIN g{k} a ON a.user_key = x.user_key AND a.d = x.c{k - 1} AND a.bs = x.b{k - 1}" if tie[k] else "") + \
                f"\nLEFT JOIN g{k} b ON b.user_key = x.user_key AND b.d = x.c{k - 1} + 1 AND b.bs = {opens(k)}"
        q.add(f"s_f{k}", f"the attempt's step-{k} state: the previous rank when its level is still reachable from there "
                         "in time, else the next", f"""
SELECT x.*,
       CASE WHEN x.lvl < {k} THEN NULL WHEN {stay} THEN x.c{k - 1} ELSE x.c{k - 1} + 1 END AS c{k},
       CASE WHEN x.lvl < {k} THEN NULL WHEN {stay} THEN x.b{k - 1} ELSE {opens(k)} END AS b{k},
       CASE WHEN x.lvl < {k} THEN NULL {f'WHEN {stay} THEN a.r{k} ' if tie[k] else ''}ELSE b.r{k} END AS t{k}
FROM {prev} x{joins}""")
        prev = f"s_f{k}"
    taints = []
    for i, x in enumerate(p.exclusions, start=1):
        f, to = x.from_step + 1, x.to_step + 1
        q.add(f"xr{i}", f"ranks of exclusion-{i} events", f"SELECT DISTINCT user_key, d FROM matched WHERE x{i}")
        taints.append(f"(s.lvl >= {to} AND EXISTS (SELECT 1 FROM xr{i} x WHERE x.user_key = s.user_key "
                      f"AND x.d > s.c{f} AND x.d < s.c{to}))")
    q.add("att", "every attempt: deadline, step times, level, taint (an exclusion event ranked strictly between "
                 "its from- and to-step); level-1 attempts have no later step and no taint", f"""
SELECT s.user_key, s.t1, s.dl, {', '.join(f's.t{k}' for k in range(2, n + 1))}, s.lvl,
       CASE WHEN {' OR '.join(taints) or 'FALSE'} THEN 1 ELSE 0 END AS tainted
FROM {prev} s""")


def _chains(q: _Query, p: FunnelParams, start, end, cir_end, src_tab: str = "matched",
            pfx: str = "") -> None:
    """Ordered funnels whose steps no single event can share: one pass per step, last step first.

    For a step-j event e, ``r<k>`` (k > j) is the time the greedy chain from e reaches step k:
    the earliest step-(j+1) event at or after e, then the earliest step-(j+2) event at or after
    that, ... Since a later step-(j+1) event never reaches step k sooner, e simply inherits the
    r<k> of the first step-(j+1) event at or after it (same timestamp allowed: consecutive steps
    may share one). That event is found with one running count over the two steps' events sorted
    by time (a searchsorted) and an equi-join on its number. Used for the users with many later-step
    events (``_split_heavy``); the others take :func:`_lookup_chains`. Passes run from the last step back to
    step 1; the step-1 rows are the attempts, and an attempt reaches step k when r<k> <= its
    deadline — the same greedy chain the general path builds, but each step's chain is computed
    once and shared by all earlier events. The counted attempt (earliest at the user's furthest
    level) has the smallest time at every step among those attempts, since chain times only grow
    with t1 — so a GROUP BY MIN gives its times.
    """
    n = p.n
    cir = " AND t < ?" if cir_end is not None else ""
    cir_prm = [cir_end] if cir_end is not None else []
    rs = lambda lo, pre="": ", ".join(f"{pre}r{k}" for k in range(lo, n + 1))  # noqa: E731
    # exclusion i: xa<i> = the first exclusion-i event strictly after the chain's from-step time,
    # computed on the from-step's events and inherited by earlier steps like the r's
    excl = [(i, x.from_step + 1, x.to_step + 1) for i, x in enumerate(p.exclusions, start=1)]
    for i, _, _ in excl:
        q.add(f"{pfx}xc{i}", f"exclusion {i} events numbered in time order",
              f"SELECT user_key, t, ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY t) AS rn FROM {src_tab} WHERE x{i}")
    q.add(f"{pfx}l{n}", f"step-{n} events numbered in time order",
          f"SELECT user_key, t, t AS r{n}, ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY t) AS rn "
          f"FROM {src_tab} WHERE m{n}{cir}", cir_prm)
    for j in range(n - 1, 0, -1):
        if j == 1:
            rng, prm = _entry_range(start, end)
            where = " AND ".join(["m1"] + rng)
            cur = _attempt_times(src_tab, where, p.attempt == "first")
        else:
            cur, prm = f"SELECT user_key, t FROM {src_tab} WHERE m{j}{cir}", list(cir_prm)
        cols = ["user_key", "t"]
        src = f"({cur}) c"
        for i, f, _ in excl:
            if f != j:
                continue
            nulls = "".join(", NULL" for _ in cols[2:])
            q.add(f"{pfx}x{j}_{i}", f"step-{j} events with the first exclusion-{i} event strictly after each", f"""
SELECT y.*, xc.t AS xa{i} FROM (
    SELECT {', '.join(cols)}, pos FROM (
        SELECT {', '.join(cols)}, cur,
               CAST(SUM(1 - cur) OVER (PARTITION BY user_key ORDER BY t, cur
                                       ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS pos
        FROM (SELECT {', '.join(cols)}, 1 AS cur FROM {src} UNION ALL SELECT user_key, t{nulls}, 0 FROM {pfx}xc{i}) u
    ) s WHERE cur = 1
) y
LEFT JOIN {pfx}xc{i} xc ON xc.user_key = y.user_key AND xc.rn = y.pos + 1""", prm)
            prm, src = [], f"{pfx}x{j}_{i}"
            cols.append(f"xa{i}")
        own = "".join(f", x.xa{i}" for i, f, _ in excl if f == j)
        inherited = "".join(f", l.xa{i}" for i, f, _ in excl if f > j)
        nulls = "".join(", NULL" for _ in cols[2:])
        later = p.steps[j].covers(p.steps[j - 1])   # step j+1 covers step j: strictly later
        q.add(f"{pfx}q{j}", f"step-{j} events: how many step-{j + 1} events come "
              + ("at or " if later else "strictly ") + "before each (searchsorted)", f"""
SELECT {', '.join(cols)}, pos FROM (
    SELECT {', '.join(cols)}, cur,
           CAST(SUM(1 - cur) OVER (PARTITION BY user_key ORDER BY t, cur{'' if later else ' DESC'}
                                   ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT) AS pos
    FROM (
        SELECT {', '.join(cols)}, 1 AS cur FROM {src}
        UNION ALL
        SELECT user_key, t{nulls}, 0 FROM {pfx}l{j + 1}
    ) u
) s
WHERE cur = 1""", prm)
        if j == 1:
            q.add(f"{pfx}l1", "attempts: step-1 events in the entry range" + (" (the user's first only)" if p.attempt == "first" else "")
                  + ", with the time their greedy chain reaches each later step", f"""
SELECT x.user_key, x.t AS t1, {rs(2, 'l.')}{own}{inherited}
FROM {pfx}q1 x LEFT JOIN {pfx}l2 l ON l.user_key = x.user_key AND l.rn = x.pos + 1""")
        else:
            q.add(f"{pfx}l{j}", f"step-{j} events with the time their greedy chain reaches each later step, numbered", f"""
SELECT x.user_key, x.t, x.t AS r{j}, {rs(j + 1, 'l.')}{own}{inherited}, ROW_NUMBER() OVER (PARTITION BY x.user_key ORDER BY x.t) AS rn
FROM {pfx}q{j} x LEFT JOIN {pfx}l{j + 1} l ON l.user_key = x.user_key AND l.rn = x.pos + 1""")
    lvl = " + ".join(["1"] + [f"CASE WHEN r{k} <= dl THEN 1 ELSE 0 END" for k in range(2, n + 1)])
    t_cols = ", ".join(f"CASE WHEN r{k} <= dl THEN r{k} END AS t{k}" for k in range(2, n + 1))
    # tainted: an exclusion event strictly between the from-step and the (reached) to-step
    taint = " OR ".join(f"(r{to} <= dl AND xa{i} < r{to})" for i, _, to in excl) or "FALSE"
    q.add(f"{pfx}att", "every attempt: deadline, step times within it, level, taint", f"""
SELECT user_key, t1, dl, {t_cols}, {lvl} AS lvl, CASE WHEN {taint} THEN 1 ELSE 0 END AS tainted
FROM (SELECT l1.*, t1 + CAST(? AS INTERVAL) AS dl FROM {pfx}l1 l1) a""", [p.window])


def _exclusions_after(q: _Query, count: int) -> str:
    """The step events' source for the any-order paths: ``matched``, or with ``count`` exclusions
    ``xafter``, which adds ``xa<i>``: the first exclusion-i event strictly after each event."""
    if not count:
        return "matched"
    xa = ", ".join(f"MIN(CASE WHEN x{i} THEN t END) OVER (PARTITION BY user_key ORDER BY t DESC RANGE BETWEEN "
                   f"UNBOUNDED PRECEDING AND CURRENT ROW EXCLUDE GROUP) AS xa{i}" for i in range(1, count + 1))
    q.add("xafter", "every step or exclusion event with the first exclusion event strictly after it",
          f"SELECT *, {xa} FROM matched")
    return "xafter"


def _any_chains(q: _Query, p: FunnelParams, start, end, cir_end) -> None:
    """Any order, steps no single event can share unless they are the same step repeated: one window
    pass over the step events (more with exclusions or repeated steps, see below).

    Every step event in the entry range is an attempt. Walking each user's step events from the
    latest back (time descending, ties together), a running MIN per step gives ``f<j>``: the first
    step-j event at or after the attempt. The attempt reaches level k when k of those lie within
    its deadline; t_k is the k-th smallest of them (ranked by comparing the N values pairwise, ties
    broken by step number). With no event matching two steps these are k distinct events, so this
    equals the general path (its "k-th step event from t1" is never later than the k-th of the f's).

    A step repeated r times (e.g. page_view twice) needs r distinct events of that step: its m-th
    copy takes the m-th event at or after the attempt — ``LEAD(t, m - 1)`` over that step's events,
    read at its first event at or after the attempt by the same running MIN (leads grow with time).
    Events at one time are in no set order there: the frame holds all of them, and the k-th time in
    time order is the same whichever goes first (so no event id is needed, nor a string in the sort).
    Taking each step's earliest events is an exact matching when different steps share no event,
    and it gives every k-th time its smallest possible value.
    """
    n = p.n
    excl = [(i, x.from_step + 1, x.to_step + 1) for i, x in enumerate(p.exclusions, start=1)]
    copies = _copies(p.steps)           # step j -> (its first identical step j0, which copy m)
    leads = []
    for j0, m in sorted(set(copies.values())):
        if m == 1:
            continue
        over = f"OVER (PARTITION BY user_key, m{j0} ORDER BY t)"
        leads.append(f"CASE WHEN m{j0} THEN LEAD(t, {m - 1}) {over} END AS n{j0}_{m}")
        leads += [f"CASE WHEN m{j0} THEN LEAD(xa{i}, {m - 1}) {over} END AS nx{j0}_{m}_{i}" for i, _, _ in excl]

    def val(j: int, col: str = "t") -> tuple[str, str]:   # step j's copy: its flag and the time it reads
        j0, m = copies[j]
        t = "t" if m == 1 else f"n{j0}_{m}"
        v = col if m == 1 else (t if col == "t" else f"nx{j0}_{m}_{col[2:]}")
        return f"m{j0}" + (f" AND {t} < ?" if cir_end is not None else ""), v

    def running_min(flag: str, value: str) -> str:
        """The smallest ``value`` over the frame's rows with ``flag``. A value that is the row's own time (or one
        that peers at one time share) is smallest at the frame's last such row, as the frame runs by time
        descending: LAST_VALUE IGNORE NULLS, about twice as fast as MIN over the frame. A later copy's LEAD
        differs between peers (they are in no set order), so it keeps the MIN."""
        if value == "t" or value.startswith("xa"):
            return f"LAST_VALUE(CASE WHEN {flag} THEN {value} END IGNORE NULLS) OVER w"
        return f"MIN(CASE WHEN {flag} THEN {value} END) OVER w"

    firsts = ", ".join(f"{running_min(*val(j))} AS f{j}" for j in range(1, n + 1))
    # exclusions: xf<j>_<i> = the first exclusion-i event strictly after step j's first event (xa<i> is
    # that time for every event; it never decreases with time, so the smallest is the first event's)
    firsts += "".join(f", {running_min(*val(j, f'xa{i}'))} AS xf{j}_{i}" for j in range(1, n + 1) for i, _, _ in excl)
    source = _exclusions_after(q, len(excl))
    if leads:
        q.add("leads", "repeated steps: for each of their events, the time of the 2nd, 3rd, ... such event from it "
                       "(and the first exclusion event strictly after that one)", f"SELECT *, {', '.join(leads)} FROM {source}")
        source = "leads"
    rng, prm = _entry_range(start, end)
    spans = not excl and not leads and _any_spans(q, p)
    if spans:
        source = "wide"
    q.add("firsts", "every step event with the first event of each step at or after it", f"""
SELECT user_key, t, {' OR '.join(f'm{j}' for j in range(1, n + 1))} AS is_step, {firsts}
FROM {source}
WINDOW w AS (PARTITION BY user_key ORDER BY t DESC RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)""",
          [cir_end] * (n * (1 + len(excl))) if cir_end is not None else [])
    # with no exclusion every row is a step event
    where = " AND ".join((["is_step"] if excl else []) + rng) or "TRUE"
    src = f"SELECT * FROM firsts WHERE {where}"
    if p.attempt == "first":
        # attempts at one time have the same frame (peers included), so the same step times: any of them is the first
        src = f"""SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY t) AS nth
    FROM firsts WHERE {where}) f WHERE nth = 1"""
    which = " (the user's first only)" if p.attempt == "first" else ""
    if not excl:
        # each step's first time itself goes on, for the per-user MINs of _any_best
        lvl = " + ".join(f"CASE WHEN f{j} <= dl THEN 1 ELSE 0 END" for j in range(1, n + 1))
        q.add("leveled", f"attempts: step events in the entry range{which}; each one's level: how many steps' first "
                         "events are within its deadline", f"""
SELECT user_key, dl, {', '.join(f'f{j}' for j in range(1, n + 1))}, {lvl} AS lvl
FROM (SELECT a.*, a.t + CAST(? AS INTERVAL) AS dl FROM ({src}) a) x""", [p.window] + prm)
    else:
        valid = ", ".join(f"CASE WHEN f{j} <= dl THEN f{j} END AS v{j}" for j in range(1, n + 1))
        q.add("valid", f"attempts: step events in the entry range{which}; each step's first event kept when within the "
                       "deadline", f"""
SELECT user_key, t AS t0, dl, {valid}{''.join(f', xf{j}_{i}' for j in range(1, n + 1) for i, _, _ in excl)}
FROM (SELECT a.*, a.t + CAST(? AS INTERVAL) AS dl FROM ({src}) a) x""", [p.window] + prm)
        lvl = " + ".join(f"CASE WHEN v{j} IS NOT NULL THEN 1 ELSE 0 END" for j in range(1, n + 1))
        q.add("leveled", "each attempt's level: how many steps' first events are within its deadline",
              f"SELECT *, {lvl} AS lvl FROM valid")

    def before(i: int, j: int) -> str:   # v_i sorts before v_j (ties: lower step number first)
        return f"v{i} < v{j}" if i > j else f"v{i} <= v{j}"
    ranks = ", ".join(
        f"CASE WHEN v{j} IS NOT NULL THEN 1" + "".join(
            f" + CASE WHEN {before(i, j)} THEN 1 ELSE 0 END" for i in range(1, n + 1) if i != j) + f" END AS k{j}"
        for j in range(1, n + 1))
    t_cols = ", ".join("CASE " + " ".join(f"WHEN k{j} = {k} THEN v{j}" for j in range(1, n + 1)) + f" END AS t{k}"
                       for k in range(1, n + 1))
    # Most attempts (e.g. page views) reach no other step within their window. They need no rank or time
    # each: one row per user stands for them (earliest time, latest deadline), as on the ordered path. It
    # is used only for users with no attempt at level 2 or more (:func:`_chain_users`), whose attempts
    # are all level-1 ones: so it is taken over all their step events, with no need of the window pass.
    if spans:
        last = "t0" if p.attempt == "first" else "t_last"
        q.add("any_one", "per user: every attempt as a level-1 one (earliest time, latest deadline), from their span",
              f"SELECT user_key, t0 AS t1, {last} + CAST(? AS INTERVAL) AS dl FROM any_span", [p.window])
    else:
        # the attempts' times, without the window pass
        step_rows = " AND ".join([f"({' OR '.join(f'm{j}' for j in range(1, n + 1))})"] + rng)
        attempts = _attempt_times("matched", step_rows, p.attempt == "first")
        one, one_prm, rollup = _level_one(p, list(dict.fromkeys(p.steps)), f"({attempts})", prm)
        q.add("any_one", "per user: every attempt as a level-1 one (earliest time, latest deadline)"
              + (", from the per-user event rollup" if rollup else ""), one, one_prm)
    q.level_one = "any_one"
    if not excl:
        _any_best(q, p, cir_end, ranks, t_cols, spans)
        return
    q.add("ranked_v", "each kept time's rank among the attempt's kept times",
          f"SELECT *, {ranks} FROM leveled WHERE lvl >= 2")
    # tainted: the first exclusion event after the from-step's time (that of the step ranked there)
    # comes before the reached to-step
    taint = " OR ".join(
        f"(t{to} IS NOT NULL AND CASE " + " ".join(f"WHEN k{j} = {f} THEN xf{j}_{i}" for j in range(1, n + 1))
        + f" END < t{to})" for i, f, to in excl) or "FALSE"
    q.add("att", "every attempt: its k-th kept time is step k's; level = how many were kept; taint", f"""
SELECT user_key, dl, {', '.join(f't{k}' for k in range(1, n + 1))}, lvl,
       CASE WHEN {taint} THEN 1 ELSE 0 END AS tainted
FROM (SELECT *, {t_cols} FROM ranked_v) r""")


def _any_spans(q: _Query, p: FunnelParams) -> bool:
    """For an any-order funnel of distinct named steps over every stored event of the selected users
    (:func:`_rollup_ok`): ``any_span``, one row per user from the per-user event rollup — how many of the
    steps they have an event of (``ns``), their first and last step event (``t0``, ``t_last``), the earliest
    of their steps' last events (``t_lo``), whether they all lie within one window of the first (``within``:
    ``t_last <= t0 + window``) and each step's first time (``g<j>``) — and ``wide``, the step events of the
    users the window pass still needs. Returns whether it added them.

    A user with one step only never gets past step 1, and a user whose step events are ``within`` is settled
    by the span alone: the first attempt, at ``t0``, has
    every step they have within its deadline, so it is the earliest at the furthest level (``ns``), and its
    step times are each step's first time. An attempt reaches that level while every step has an event at or
    after it, so the latest such attempt is at ``t_lo`` (with ``attempt="first"``, only ``t0`` is one): its
    deadline says whether the level is still open. The window pass reads the other users' events alone."""
    if not _rollup_ok(p) or any(s.event is None for s in p.steps) or len(set(p.steps)) < p.n:
        return False
    users, users_prm = (p.filters or Filters()).user_keys_sql("r.user_key")
    any_step, step_prm = _any_step_sql(p.steps, "r")
    g_cols, g_prm = [], []
    for j, s in enumerate(p.steps, start=1):
        sql, sp = step_sql(s, "r")
        g_cols.append(f"MIN(CASE WHEN {sql} THEN r.first_time END) AS g{j}")
        g_prm += sp
    q.add("any_span", "per user, from the per-user event rollup: how many steps they have an event of, their first "
                      "and last step event, the earliest of the steps' last events, and each step's first time", f"""
SELECT r.user_key, COUNT(*) AS ns, MIN(r.first_time) AS t0, MAX(r.last_time) AS t_last, MIN(r.last_time) AS t_lo,
       MAX(r.last_time) <= MIN(r.first_time) + CAST(? AS INTERVAL) AS within, {', '.join(g_cols)}
FROM user_events r
WHERE {any_step} AND {users}
GROUP BY r.user_key""", [p.window] + g_prm + step_prm + users_prm)
    q.add("wide", "step events of the users with two steps or more whose step events span more than one window "
                  "(every other user's level comes from their span)", """
SELECT m.* FROM matched m
WHERE m.user_key IN (SELECT user_key FROM any_span WHERE ns >= 2 AND NOT within)""", inline=True)
    return True


def _any_best(q: _Query, p: FunnelParams, cir_end, ranks: str, t_cols: str, spans: bool = False) -> None:
    """``ukeys_att`` for :func:`_any_chains` with no exclusion: the attempts reaching step 2 folded per user
    first, and only the counted attempt's times ranked.

    Each step's first time at or after an attempt, ``f<j>``, only grows with the attempt's time (NULL:
    none), and so does its deadline. The earliest attempt at the furthest level — the counted one — thus
    has the smallest ``f<j>`` and deadline of every attempt at that level, step by step; shifted by
    (N - level) × ``_SHIFT_DAYS`` as in :func:`_chain_users`, one GROUP BY's MINs are those values.
    A MIN can come from a lower level only for a step with no event at or after any attempt at the
    furthest level; it then decodes to at least ``_SHIFT_DAYS`` after a stored time, beyond the
    deadline, so the step stays unreached. (That holds for any window: one under ``_SHIFT_DAYS`` less
    the span of stored times, 1970-2100, ends before that; with a longer one every attempt reaches
    every step after it, so the earlier attempt holding the extra step would be further, not lower.)
    The kept times of one row per user are then ranked, rather than those of every attempt. With an
    exclusion each attempt's taint needs its own ranks."""
    n = p.n
    is_open, open_prm = _is_open("a.dl", cir_end)
    mins = ", ".join(f"MIN(a.f{j} + ({n} - a.lvl) * {_SHIFT}) AS sf{j}" for j in range(1, n + 1))
    q.add("any_best", "per user with an attempt reaching step 2: the furthest level, whether an attempt there is open, "
                      "and the deadline and each step's first time of the earliest attempt there (shifted by level)", f"""
SELECT a.user_key, MAX(a.lvl) AS ulvl,
       MAX(2 * a.lvl + {is_open}) AS okey,
       MIN(a.dl + ({n} - a.lvl) * {_SHIFT}) AS sdl, {mins}
FROM leveled a CROSS JOIN bounds b
WHERE a.lvl >= 2
GROUP BY a.user_key""", open_prm)
    # every value of a user is shifted alike: compared, ranked and passed on shifted (as the other paths' GROUP BY
    # gives them to _chain_users)
    valid = ", ".join(f"CASE WHEN sf{j} <= sdl THEN sf{j} END AS v{j}" for j in range(1, n + 1))
    kept = f"SELECT user_key, ulvl, okey, {valid} FROM any_best"
    kept_prm = []
    if spans:
        s_open, kept_prm = _is_open(f"s.{'t0' if p.attempt == 'first' else 't_lo'} + CAST(? AS INTERVAL)", cir_end)
        kept_prm = [p.window] + kept_prm
        g = ", ".join(f"s.g{j} + ({n} - s.ns) * {_SHIFT} AS v{j}" for j in range(1, n + 1))
        kept += f"""
UNION ALL
SELECT s.user_key, s.ns AS ulvl, 2 * s.ns + {s_open} AS okey, {g}
FROM any_span s CROSS JOIN bounds b
WHERE s.ns >= 2 AND s.within"""
    q.add("any_kept", "the counted attempt's step times within its deadline (shifted)"
          + ("; users within one window, from their span" if spans else ""), kept, kept_prm)
    keys = ", ".join(f"t{k} AS k{k}" for k in range(1, n + 1))
    q.add("ukeys_att", "per user with an attempt reaching step 2: the furthest level, its open flag, and the counted "
                       "attempt's step times in order (shifted)", f"""
SELECT user_key, ulvl, okey, {keys}
FROM (SELECT *, {t_cols} FROM (SELECT *, {ranks} FROM any_kept) r) s""")


# Any-order funnels whose different steps can share an event are solved exactly by Hall's theorem
# over sets of step classes: 2^classes - 1 window passes, so only up to this many distinct steps.
ANY_MATCHING_CLASSES = 6


def _any_matching(q: _Query, p: FunnelParams, start, end, cir_end) -> None:
    """Any order when one event could match two different steps: the level is a maximum matching of
    distinct events to steps, by Hall's theorem.

    With N steps, the events in the attempt's window up to time T can fill k steps (each with its own
    event) exactly when every set S of steps has at least |S| - (N - k) events matching one of its
    steps from the attempt to T. So t_k, the earliest time k steps are filled, is the latest over the
    sets S with |S| > N - k of "the (|S| - N + k)-th event matching S at or after the attempt", and
    the attempt reaches level k when t_k is within its deadline. Identical steps form one class; a set
    takes every copy of its classes (more copies only raise the requirement for the same events), so
    the sets are the 2^C - 1 non-empty sets of the C classes. For each, the m-th matching event at or
    after the attempt is ``LEAD(t, m - 1)`` over that set's events, read at its first event at or
    after the attempt by a running MIN (time descending), as in :func:`_any_chains`. An exclusion
    taints the attempt when the first exclusion event strictly after t_f comes before t_to; that
    time is carried along the same way (it grows with time, so the latest term's is the largest).
    """
    from itertools import combinations
    n = p.n
    excl = [(i, x.from_step + 1, x.to_step + 1) for i, x in enumerate(p.exclusions, start=1)]
    copies = _copies(p.steps)
    classes = sorted({j0 for j0, _ in copies.values()})
    mult = {c: sum(1 for j0, _ in copies.values() if j0 == c) for c in classes}
    # A set's events are those of its classes not contained in another of its classes (page_view on
    # /pricing adds nothing to page_view): sets with the same such classes share their window pass.
    preds: dict[tuple, int] = {}
    sets = []                             # (the set's predicate number, its number of steps)
    for r in range(1, len(classes) + 1):
        for cs in combinations(classes, r):
            own = tuple(c for c in cs if not any(d != c and p.steps[c - 1].covers(p.steps[d - 1]) for d in cs))
            sets.append((preds.setdefault(own, len(preds) + 1), sum(mult[c] for c in cs)))
    source = _exclusions_after(q, len(excl))
    leads, firsts, fprm = [], [], []
    for own, s in preds.items():
        flag = " OR ".join(f"COALESCE(m{c}, FALSE)" for c in own)
        size = max(k for pi, k in sets if pi == s)
        over = f"OVER (PARTITION BY user_key, ({flag}) ORDER BY t)"   # ties in no set order, as in _any_chains
        for m in range(1, size + 1):
            lt = "t" if m == 1 else f"LEAD(t, {m - 1}) {over}"
            leads.append(f"CASE WHEN {flag} THEN {lt} END AS n{s}_{m}")
            leads += [f"CASE WHEN {flag} THEN {'xa' + str(i) if m == 1 else f'LEAD(xa{i}, {m - 1}) {over}'} END AS nx{s}_{m}_{i}"
                      for i, _, _ in excl]
            cir = f" AND n{s}_{m} < ?" if cir_end is not None else ""
            firsts.append(f"MIN(CASE WHEN ({flag}){cir} THEN n{s}_{m} END) OVER w AS f{s}_{m}")
            firsts += [f"MIN(CASE WHEN ({flag}){cir} THEN nx{s}_{m}_{i} END) OVER w AS fx{s}_{m}_{i}" for i, _, _ in excl]
            fprm += [cir_end] * (1 + len(excl)) if cir_end is not None else []
    q.add("set_leads", "for each set of steps, each of its events with the time of the 2nd, 3rd, ... event matching "
                       "the set from there (and the first exclusion event strictly after that one)",
          f"SELECT *, {', '.join(leads)} FROM {source}")
    rng, prm = _entry_range(start, end)
    q.add("set_firsts", "every step event with, for each set of steps, the m-th event matching it at or after", f"""
SELECT user_key, t, {' OR '.join(f'm{j}' for j in range(1, n + 1))} AS is_step, {', '.join(firsts)}
FROM set_leads
WINDOW w AS (PARTITION BY user_key ORDER BY t DESC RANGE BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)""", fprm)
    where = " AND ".join(["is_step"] + rng)
    src = f"SELECT * FROM set_firsts WHERE {where}"
    if p.attempt == "first":
        src = f"""SELECT * FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY t) AS nth
    FROM set_firsts WHERE {where}) f WHERE nth = 1"""
    far = "TIMESTAMP '9999-12-31 00:00:00'"

    def latest(k: int, col: str) -> str:   # the latest over the sets' terms for step k; NULL when a term is missing
        terms = [f"{col}{s}_{size - n + k}" for s, size in sets if size > n - k]
        return f"NULLIF(GREATEST({', '.join(f'COALESCE({t}, {far})' for t in terms)}), {far})"
    t_all = ", ".join(f"{latest(k, 'f')} AS u{k}" for k in range(1, n + 1))
    xs = []
    for i, f, _ in excl:
        terms = [f"fx{s}_{size - n + f}_{i}" for s, size in sets if size > n - f]
        xs.append(f"NULLIF(GREATEST({', '.join(f'COALESCE({t}, {far})' for t in terms)}), {far}) AS xa{i}")
    q.add("matching", "attempts: step events in the entry range" + (" (the user's first only)" if p.attempt == "first" else "")
          + "; u<k> = the earliest time k steps are filled by distinct events", f"""
SELECT user_key, t + CAST(? AS INTERVAL) AS dl, {t_all}{''.join(', ' + x for x in xs)}
FROM ({src}) a""", [p.window] + prm)
    kept = ", ".join(f"CASE WHEN u{k} <= dl THEN u{k} END AS t{k}" for k in range(1, n + 1))
    lvl = " + ".join(f"CASE WHEN u{k} <= dl THEN 1 ELSE 0 END" for k in range(1, n + 1))
    taint = " OR ".join(f"(u{to} <= dl AND xa{i} < u{to})" for i, _, to in excl) or "FALSE"
    q.add("att", "every attempt: step times within the deadline, level, taint", f"""
SELECT user_key, dl, {kept}, {lvl} AS lvl, CASE WHEN {taint} THEN 1 ELSE 0 END AS tainted
FROM matching""")


def _chain_users(q: _Query, p: FunnelParams, cir_end) -> None:
    """``counted`` from ``att``(user_key, dl, t1..tN, lvl, tainted): per user the furthest level, the
    earliest attempt there (its times are the smallest: they only grow with t1) and whether any
    attempt there is still open at the end of the data."""
    n = p.n
    is_open, open_prm = _is_open("a.dl", cir_end)
    one_open, one_prm = _is_open("o.dl", cir_end)
    # One GROUP BY: the counted attempt's time at step k is the smallest t_k among the untainted
    # attempts at the furthest level. Shifting t_k by (N - lvl) × SHIFT makes every attempt at a
    # higher level sort first (stored times span far less than SHIFT), so MIN(shifted) is that
    # time plus (N - ulvl) × SHIFT; likewise MAX(2·lvl + open) says whether an untainted attempt
    # at the furthest untainted level is open.
    keys = ", ".join(f"MIN(CASE WHEN a.tainted = 0 THEN a.t{k} + ({n} - a.lvl) * {_SHIFT} END) AS k{k}"
                     for k in range(1, n + 1))
    comment = ("per user: the furthest level, the furthest untainted level with its open flag, and the shifted "
               "step times of the untainted attempts")
    grouped = f"""SELECT a.user_key, MAX(a.lvl) AS ulvl,
       MAX(CASE WHEN a.tainted = 0 THEN 2 * a.lvl + {is_open} END) AS okey,
       {keys}
FROM att a CROSS JOIN bounds b
GROUP BY a.user_key"""
    if q.level_one is None:
        q.add("ukeys", comment, grouped, open_prm)
    else:
        # The level-1 rows (one per light user) only matter for users with no attempt in att: anyone
        # with one has a furthest level of 2 or more, which a level-1 row can neither raise nor be
        # counted at. So they are added after the GROUP BY, for those users only, rather than grouped.
        if not q.has("ukeys_att"):   # _any_best folded it per user already
            q.add("ukeys_att", comment + " (users with an attempt reaching step 2, and heavy users)", grouped,
                  open_prm)
        nulls = ", ".join(f"CAST(NULL AS TIMESTAMP) AS k{k}" for k in range(2, n + 1))
        q.add("ukeys", comment + "; users with level-1 attempts only come from their one row", f"""
SELECT * FROM ukeys_att
UNION ALL
SELECT o.user_key, 1 AS ulvl, 2 + {one_open} AS okey,
       o.t1 + ({n} - 1) * {_SHIFT} AS k1, {nulls}
FROM {q.level_one} o CROSS JOIN bounds b
WHERE NOT EXISTS (SELECT 1 FROM ukeys_att u WHERE u.user_key = o.user_key)""", one_prm)
    times = ", ".join(f"k{k} - ({n} - ulvl) * {_SHIFT} AS t{k}" for k in range(1, n + 1))
    q.add("counted", "one row per user whose furthest level has an untainted attempt (the earliest one's "
                     "times: the smallest, as chain times only grow with t1)", f"""
SELECT user_key, ulvl, CAST(okey % 2 AS INTEGER) AS is_open, {times}
FROM ukeys WHERE okey - okey % 2 = 2 * ulvl""")


def _sequential(q: _Query, p: FunnelParams, strict: bool, end_cond: str, end_prm: list) -> None:
    """Ordered and strict funnels: step k = the earliest usable step-k event after step k-1.

    Shared chains (ordered, best attempt, no later step that step-1 events could also match):
    step-1 events with no step-2 event between them find the same step-2 event, hence the same
    chain, cut only by their own deadlines. So the chain is built once per group, from its latest
    step-1 event (the latest deadline), and every attempt of the group keeps the chain's steps
    up to its own deadline — exact, and far fewer rows for users with many step-1 events.
    """
    n = p.n
    shared = (p.order == "ordered" and p.attempt == "best"
              and not any(_compatible(p.steps[0], s) for s in p.steps[1:]))
    for k in range(2, n + 1):
        later = p.steps[k - 1].covers(p.steps[k - 2])
        used = [] if later else [j for j in range(1, k) if _compatible(p.steps[j - 1], p.steps[k - 1])]
        offsets = len(used) + 1
        _position(q, f"p{k}", f"c{k}", f"SELECT user_key, a, t{k - 1} AS t, dl AS lim FROM a{k - 1} WHERE t{k - 1} IS NOT NULL",
                  [], strictly_after=later)
        src = f"a{k - 1}"
        if shared and k == 2:
            q.add("grp", "attempts with no step-2 event between them share one chain: its latest start leads", """
SELECT pp.user_key, pp.a, l.lead_a
FROM p2 pp JOIN (SELECT user_key, pos, MAX(a) AS lead_a FROM p2 GROUP BY user_key, pos) l
  ON l.user_key = pp.user_key AND l.pos = pp.pos""")
            q.add("r1", "the attempts that lead a group", """
SELECT a1.* FROM a1 JOIN grp g ON g.user_key = a1.user_key AND g.a = a1.a WHERE g.a = g.lead_a""")
            src = "r1"
        conds = ["c.t <= pp.lim"] + [f"c.id <> x.s{j}" for j in used]
        if strict:
            conds.append(f"c.t <= COALESCE(x.nt{k - 1}, x.t{k - 1})")
        values = ", ".join(f"({o})" for o in range(1, offsets + 1))
        q.add(f"n{k}", f"step {k}: the first usable candidate after step {k - 1}"
              + (" (strictly later: its filter covers step {})".format(k - 1) if later else ""), f"""
SELECT x.user_key, x.a, MIN(c.rn) AS rn
FROM {src} x
JOIN (SELECT p.user_key, p.a, p.lim, p.pos + o.off AS target FROM p{k} p CROSS JOIN (VALUES {values}) o(off)) pp
  ON pp.user_key = x.user_key AND pp.a = x.a
JOIN c{k} c ON c.user_key = pp.user_key AND c.rn = pp.target
WHERE {' AND '.join(conds)}{end_cond}
GROUP BY x.user_key, x.a""", end_prm)
        q.add(f"a{k}", f"attempts with step {k}'s time and event", f"""
SELECT x.*, c.t AS t{k}, c.id AS s{k}{f', c.nt AS nt{k}' if strict else ''}
FROM {src} x
LEFT JOIN n{k} nk ON nk.user_key = x.user_key AND nk.a = x.a
LEFT JOIN c{k} c ON c.user_key = nk.user_key AND c.rn = nk.rn""")
    lvl = " + ".join(f"CASE WHEN t{k} IS NOT NULL THEN 1 ELSE 0 END" for k in range(1, n + 1))
    if not shared:
        q.add("att", "every attempt with its step times and level", f"SELECT *, {lvl} AS lvl FROM a{n}")
        return
    cut = ", ".join(f"CASE WHEN r.t{k} <= a1.dl THEN r.t{k} END AS t{k}" for k in range(2, n + 1))
    bd = ", a1.bd" if p.breakdown is not None and p.breakdown_attribution == "entry" else ""
    q.add("shared", "every attempt: its group's chain, cut at its own deadline", f"""
SELECT a1.user_key, a1.a, a1.t1, a1.dl{bd}, {cut}
FROM a1
JOIN grp g ON g.user_key = a1.user_key AND g.a = a1.a
JOIN a{n} r ON r.user_key = g.user_key AND r.a = g.lead_a""")
    q.add("att", "every attempt with its step times and level", f"SELECT *, {lvl} AS lvl FROM shared")


def _any_order(q: _Query, p: FunnelParams, end_cond: str, end_prm: list) -> None:
    """Any order: per step, the first matching event at or after t1 within the window."""
    n = p.n
    step_any = " OR ".join(f"m{k}" for k in range(1, n + 1))
    flags = ", ".join(f"CASE WHEN m{k} THEN 1 ELSE 0 END AS f{k}" for k in range(1, n + 1))
    zeros = ", ".join(f"0 AS f{k}" for k in range(1, n + 1))
    sums = ", ".join(f"CAST(SUM(f{k}) OVER w AS BIGINT) AS pos{k}" for k in range(1, n + 1))
    pos = ", ".join(f"pos{k}" for k in range(1, n + 1))
    q.add("p_all", "each attempt's position among every step's candidates and among all step events (one sort)", f"""
SELECT user_key, a, lim, {pos}, pos_any FROM (
    SELECT user_key, a, lim, is_probe, {sums}, CAST(SUM(1 - is_probe) OVER w AS BIGINT) AS pos_any
    FROM (
        SELECT user_key, CAST(NULL AS BIGINT) AS a, t, CAST(NULL AS TIMESTAMP) AS lim, 0 AS is_probe, 1 AS ord, {flags}
        FROM matched WHERE {step_any}
        UNION ALL
        SELECT user_key, a, t1, dl, 1, 0, {zeros} FROM a1
    ) u
    WINDOW w AS (PARTITION BY user_key ORDER BY t, ord ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW)
) s
WHERE is_probe = 1""")
    hits = []
    for k in range(1, n + 1):
        q.add(f"h{k}", f"step {k}: its first event at or after t1 within the window", f"""
SELECT pp.user_key, pp.a, {k} AS j, c.t, c.id
FROM p_all pp JOIN c{k} c ON c.user_key = pp.user_key AND c.rn = pp.pos{k} + 1
WHERE c.t <= pp.lim{end_cond}""", end_prm)
        hits.append(f"SELECT * FROM h{k}")
    ks = ", ".join(f"({k})" for k in range(1, n + 1))
    q.add("nth_target", "the numbers of the first N step events from t1 (targets of an equi-join)", f"""
SELECT pp.user_key, pp.a, pp.lim, o.k, pp.pos_any + o.k AS target
FROM p_all pp CROSS JOIN (VALUES {ks}) o(k)""")
    q.add("nth_event", "the k-th step event from t1 within the window: k steps need k distinct events", f"""
SELECT nt.user_key, nt.a, nt.k, c.t
FROM nth_target nt JOIN c_any c ON c.user_key = nt.user_key AND c.rn = nt.target
WHERE c.t <= nt.lim{end_cond}""", end_prm)
    q.add("hits", "steps reached per attempt, ranked by time", f"""
SELECT h.user_key, h.a, h.t, ROW_NUMBER() OVER (PARTITION BY h.user_key, h.a ORDER BY h.t, h.id, h.j) AS k
FROM ({' UNION ALL '.join(hits)}) h""")
    t_cols = ", ".join(f"MAX(CASE WHEN h.k = {k} THEN GREATEST(h.t, ne.t) END) AS t{k}" for k in range(1, n + 1))
    bd = ", a1.bd" if p.breakdown is not None and p.breakdown_attribution == "entry" else ""
    q.add("att", "every attempt: step k is reached when k steps and k distinct step events have happened", f"""
SELECT a1.user_key, a1.a, a1.dl{bd}, {t_cols}, COUNT(*) AS lvl
FROM a1
JOIN hits h ON h.user_key = a1.user_key AND h.a = a1.a
JOIN nth_event ne ON ne.user_key = h.user_key AND ne.a = h.a AND ne.k = h.k
GROUP BY a1.user_key, a1.a, a1.dl{bd}""")


def _breakdown(q: _Query, p: FunnelParams, entry_bd: bool) -> None:
    """``per_user``: counted users with their breakdown value (top N kept, the rest Other)."""
    n = p.n
    t_cols = ", ".join(f"c.t{k}" for k in range(1, n + 1))
    if p.breakdown is None:
        q.add("per_user", "counted users", f"SELECT c.user_key, c.ulvl, c.is_open, {t_cols}, "
              "CAST(NULL AS VARCHAR) AS breakdown, 0 AS bd_order FROM counted c")
        return
    if entry_bd:
        q.add("bd_raw", "breakdown: the value on the counted attempt's step-1 event",
              "SELECT c.*, CAST(c.bd AS VARCHAR) AS raw FROM counted c")
    elif p.breakdown_attribution == "entry":
        # Chain paths: attempts at one time reach the same steps (a chain depends on its first time alone), so the
        # counted attempt — the earliest at the furthest level, the smallest event_id on ties — is the attempt
        # event at the user's t1 with the smallest event_id: one join of the counted users with those events.
        expr, prm = property_sql(p.breakdown, "e")
        starts = p.steps[:1] if p.order != "any" else list(dict.fromkeys(p.steps))   # any order: every step
        attempt, pprm = _any_step_sql(starts, "e")
        where, wprm = (p.filters.events_sql("e") if p.filters is not None else ("TRUE", []))
        _tied_value(q, "entry_event", "each counted user's attempt event (a step-1 event; any step's in any order) at "
                    "their t1", expr, prm, "JOIN counted c ON c.user_key = e.user_key AND e.event_time = c.t1",
                    f"{attempt} AND {where}", pprm + wprm)
        q.add("bd_raw", "counted users with the value on their attempt event",
              "SELECT c.*, f.raw FROM counted c JOIN entry_event f ON f.user_key = c.user_key")
    elif p.breakdown in KEY_COLUMNS:
        q.add("bd_raw", f"breakdown: the user's first-touch {p.breakdown}",
              f"SELECT c.*, u.{p.breakdown} AS raw FROM counted c JOIN users u ON u.user_key = c.user_key")
    else:
        expr, prm = property_sql(p.breakdown, "e")
        # the first event's time is the user's first_seen: a join keeps only the events at that time, so only
        # the (few) tied ones are numbered, not every event of the user
        _tied_value(q, "first_event", "each counted user's first event over all data (at their first_seen)", expr, prm,
                    "JOIN users u ON u.user_key = e.user_key AND e.event_time = u.first_seen",
                    "e.user_key IN (SELECT user_key FROM counted)", [])
        q.add("bd_raw", "counted users with their first-event value",
              "SELECT c.*, f.raw FROM counted c JOIN first_event f ON f.user_key = c.user_key")
    q.add("bd_rank", "breakdown values ranked by step-1 users", f"""
SELECT v, ROW_NUMBER() OVER (ORDER BY COUNT(*) DESC, v) AS r
FROM (SELECT COALESCE(raw, '{NONE}') AS v FROM bd_raw) b GROUP BY v""")
    q.add("per_user", f"counted users with their breakdown value; beyond the top N it is {OTHER}", f"""
SELECT b.user_key, b.ulvl, b.is_open, {t_cols.replace('c.', 'b.')},
       CASE WHEN r.r <= ? THEN r.v ELSE '{OTHER}' END AS breakdown,
       CASE WHEN r.r <= ? THEN r.r ELSE ? + 1 END AS bd_order
FROM bd_raw b JOIN bd_rank r ON r.v = COALESCE(b.raw, '{NONE}')""", [p.top_n, p.top_n, p.top_n])


def _tied_value(q: _Query, name: str, what: str, expr: str, expr_prm: Sequence, join: str, where: str,
                where_prm: Sequence) -> None:
    """``name``(user_key, raw): per user, the breakdown value ``expr`` on the event picked by ``join`` (one time per
    user) and ``where`` — the one with the smallest event_id when several events are tied there.

    Tied events nearly always agree on the value, so the ids (a 32-character string per event) are read only for
    the users whose tied events differ, or where some have the value and some not: none, most often, and that
    second scan then stops at once. The rest take the value all their tied events share."""
    q.add(f"{name}_values", f"breakdown: the values on {what} — lowest, highest, how many events, how many with one",
          f"""
SELECT e.user_key, MIN({expr}) AS lo, MAX({expr}) AS hi, COUNT(*) AS n, COUNT({expr}) AS n_value
FROM events e {join}
WHERE {where}
GROUP BY e.user_key""", list(expr_prm) * 3 + list(where_prm))
    agree = "(v.n_value = 0 OR (v.n_value = v.n AND v.lo = v.hi))"
    q.add(name, f"breakdown: the value on {what}; where tied events differ, the one with the smallest event_id", f"""
SELECT v.user_key, v.lo AS raw FROM {name}_values v WHERE {agree}
UNION ALL
SELECT user_key, raw FROM (
    SELECT e.user_key, {expr} AS raw, ROW_NUMBER() OVER (PARTITION BY e.user_key ORDER BY e.event_id) AS r
    FROM events e {join}
    JOIN {name}_values v ON v.user_key = e.user_key AND NOT {agree}
    WHERE {where}
) f WHERE r = 1""", list(expr_prm) + list(where_prm))


def funnel_sql(p: FunnelParams) -> tuple[str, list]:
    """The funnel's SQL and bound values (pure). Columns: see :func:`funnel`."""
    q = _core(p)
    n = p.n
    values = ", ".join("(?, ?)" for _ in range(n))
    labels = [v for k, s in enumerate(p.steps, start=1) for v in (k, s.label)]
    q.add("steps", "one row per step", f"SELECT * FROM (VALUES {values}) v(k, label)", labels)
    dt = "CASE s.k " + " ".join(f"WHEN {k} THEN EXTRACT(EPOCH FROM (u.t{k} - u.t{k - 1}))"
                                 for k in range(2, n + 1)) + " END"
    q.add("agg", "per breakdown value and step: users, in progress, and seconds from the previous step", f"""
SELECT u.breakdown, s.k,
       SUM(CASE WHEN u.ulvl >= s.k THEN 1 ELSE 0 END) AS users,
       SUM(CASE WHEN u.ulvl = s.k - 1 AND u.is_open = 1 THEN 1 ELSE 0 END) AS in_progress,
       PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY CASE WHEN u.ulvl >= s.k THEN {dt} END) AS median_s,
       AVG(CASE WHEN u.ulvl >= s.k THEN {dt} END) AS mean_s,
       PERCENTILE_CONT(0.9) WITHIN GROUP (ORDER BY CASE WHEN u.ulvl >= s.k THEN {dt} END) AS p90_s
FROM per_user u CROSS JOIN steps s
GROUP BY u.breakdown, s.k""")
    q.add("grid", "every step for every breakdown value (zeros included)", """
SELECT g.breakdown, g.bd_order, s.k, s.label,
       CAST(COALESCE(a.users, 0) AS BIGINT) AS users, CAST(COALESCE(a.in_progress, 0) AS BIGINT) AS in_progress,
       a.median_s, a.mean_s, a.p90_s
FROM (SELECT breakdown, MIN(bd_order) AS bd_order FROM per_user GROUP BY breakdown
      UNION ALL SELECT CAST(NULL AS VARCHAR), 0 WHERE NOT EXISTS (SELECT 1 FROM per_user)) g
CROSS JOIN steps s
LEFT JOIN agg a ON a.breakdown IS NOT DISTINCT FROM g.breakdown AND a.k = s.k""")
    q.add("framed", "previous and first step users", """
SELECT *, LAG(users) OVER (PARTITION BY breakdown ORDER BY k) AS prev_users,
       FIRST_VALUE(users) OVER (PARTITION BY breakdown ORDER BY k) AS first_users
FROM grid""")
    bd = "breakdown, " if p.breakdown is not None else ""
    where = "WHERE breakdown IS NOT NULL" if p.breakdown is not None else ""
    return q.sql(f"""
SELECT {bd}CAST(k AS BIGINT) AS step, label, users,
       users / NULLIF(first_users, 0) AS conv_from_first,
       users / NULLIF(COALESCE(prev_users, users), 0) AS conv_from_prev,
       CAST(CASE WHEN k = 1 THEN 0 ELSE prev_users - users - in_progress END AS BIGINT) AS dropped,
       CASE WHEN k = 1 THEN NULL ELSE median_s END AS median_s,
       CASE WHEN k = 1 THEN NULL ELSE mean_s END AS mean_s,
       CASE WHEN k = 1 THEN NULL ELSE p90_s END AS p90_s,
       in_progress
FROM framed
{where}
ORDER BY bd_order, breakdown, k""")


def _run(con, p: FunnelParams, build) -> pd.DataFrame:
    """``build(p)``'s query as a frame. When ``p``'s date range holds every stored event (as the dashboard's
    default range does), the query is built without it — the same result, and the funnel may then read the
    per-user rollup (:func:`_rollup_ok`) instead of scanning the events (:func:`metrics.derive.over_every_event`,
    which also runs the query with the range should a load commit in between)."""
    start, end = p.entry_range()
    if start is None and end is None:
        return con.execute(*build(p)).df()

    def holds(span: tuple) -> bool:
        if not range_holds(start, end, span):
            return False
        # a range end before data_end still closes windows open at data_end
        return not (p.conversion_in_range and end is not None and p.data_end is not None and end <= p.data_end)

    whole = replace(p, start=None, end=None,
                    filters=replace(p.filters, start=None, end=None) if p.filters is not None else None)
    return over_every_event(con, holds, lambda: con.execute(*build(whole)).df(),
                            lambda: con.execute(*build(p)).df())


def funnel(con, p: FunnelParams) -> pd.DataFrame:
    """Per step (and breakdown value): step, label, users, conv_from_first, conv_from_prev, dropped,
    median_s, mean_s, p90_s, in_progress — with a leading ``breakdown`` column when one is set."""
    df = _run(con, p, funnel_sql)
    for col in ("conv_from_first", "conv_from_prev", "median_s", "mean_s", "p90_s"):
        df[col] = df[col].astype("float64")
    for col in ("step", "users", "dropped", "in_progress"):
        df[col] = df[col].astype("int64")
    df["label"] = df["label"].astype(object)
    if "breakdown" in df.columns:
        df["breakdown"] = df["breakdown"].astype(object)
    return df.reset_index(drop=True)


def funnel_users_sql(p: FunnelParams, step: int, status: str = "reached",
                     breakdown_value: str | None = None) -> tuple[str, list]:
    """SQL for the user ids that reached (or dropped at) ``step`` (1-based); pure."""
    if not isinstance(step, int) or not 1 <= step <= p.n:
        raise UserInputError(f"Choose a step between 1 and {p.n}.")
    if status not in STATUSES:
        raise UserInputError(f"Unknown user status '{status}'; choose 'reached' or 'dropped'.")
    if breakdown_value is not None and p.breakdown is None:
        raise UserInputError("A breakdown value was given but the funnel has no breakdown.")
    q = _core(p)
    cond = "u.ulvl >= ?" if status == "reached" else "u.ulvl = ? - 1 AND u.is_open = 0"
    params = [step]
    if breakdown_value is not None:
        cond += " AND u.breakdown = ?"
        params.append(breakdown_value)
    return q.sql(f"""
SELECT us.user_id
FROM per_user u JOIN users us ON us.user_key = u.user_key
WHERE {cond}
ORDER BY us.user_id""", params)


def funnel_users(con, p: FunnelParams, step: int, status: str = "reached",
                 breakdown_value: str | None = None) -> pd.DataFrame:
    """The ``user_id`` of users who reached ``step`` (1-based) or dropped there (reached step − 1, not
    ``step``, window closed — in-progress users are not dropped), optionally for one breakdown value."""
    df = _run(con, p, lambda q: funnel_users_sql(q, step, status, breakdown_value))
    df["user_id"] = df["user_id"].astype(object)
    return df.reset_index(drop=True)
