"""Retention cohorts, DAU / WAU / MAU with stickiness, and the lifecycle of active users (SPEC §4).

Query intuition (cohort matrix)
-------------------------------
1. **Members.** ``first_time``: every user's first-ever start event over *all* data (never "first inside
   the filter") gives their start time t0 and cohort period; when the start step is "any event" and
   nothing needs the start event's own row, this is simply ``users.first_seen``. ``recurring``: a user
   is a member of the cohort of every period in which they did a start event, with t0 = their first
   start event in that period. Only members whose cohort is one of the report's ``periods`` cohort
   periods (ending with the one containing ``end``) are kept; filters apply to the start event.
2. **Returns, aggregated early.** The events are reduced to as few rows as possible before any cell is
   counted. ``first_time`` (one membership per user): each return event is joined to its user's single
   membership and counted per (member, offset k) -- calendar k = period index - cohort index, rolling
   k = floor((t - t0) / len) -- so the join never multiplies events. ``recurring`` + calendar: one pass over
   the events counts start and return events per (user_key, period[, value]); memberships and returns both
   come from that table, and memberships meet returns per user-period, not per event. ``recurring`` +
   rolling joins events to every membership (at most ``periods`` per user), since k depends on each t0.
   With one required occurrence (the default), the joined returns are grouped by member only: a bit mask
   of the offsets k with a return (``bit_or(1 << k)``, the shape of ClickHouse's ``retention()``), or, for
   ``on_or_after``, the largest k; so the hash aggregate has one group per member, not per member-period.
3. **Cells.** ``on``: a member is retained in period k when they have at least ``minimum_occurrences``
   return events in period k. ``on_or_after``: the occurrences are counted per period and a member is
   retained in k when some period k' >= k (any later period in the data, also beyond the report's
   last column) reaches ``minimum_occurrences``; so one member's last qualifying period L makes them
   retained in every k <= L.
4. **Censoring.** The data end is the latest event time over all events. Calendar: a cell is null
   (future) when its period starts after the data end, and incomplete when it has not ended by then.
   Rolling (each member has their own periods) is judged at cohort level: null when no member's period
   k has started (earliest t0 + k·len > data end), incomplete while any member's period k is still
   running (latest t0 + (k+1)·len > data end).

Period indexes are integers counted from 1970 in the report time zone (days; weeks starting on the
chosen weekday; months), so an offset is a subtraction and a calendar bucket is a GROUP BY.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import pandas as pd

from store.errors import UserInputError
from store.parse import check_timezone
from store.sqlutil import quote_ident

from .derive import hours_local_sql, hours_zone, query_of, ran, with_hours
from .filters import Filters, local_day_sql, local_sql, to_utc
from .selectors import Step, property_sql, step_sql

PERIODS = ("day", "week", "month")
MODES = ("first_time", "recurring")
CRITERIA = ("on", "on_or_after")
ALIGNMENTS = ("calendar", "rolling")
WEEK_STARTS = ("monday", "sunday")
USER_ATTRIBUTES = ("channel", "campaign")  # first-touch acquisition, from the users table
LIFECYCLE_STATUSES = ("new", "returning", "resurrecting", "dormant")
ROLLING_US = {"day": 86_400_000_000, "week": 7 * 86_400_000_000, "month": 30 * 86_400_000_000}
EPOCH = date(1970, 1, 1)
WEEK_ANCHOR = {"monday": date(1970, 1, 5), "sunday": date(1970, 1, 4)}
MAX_PERIODS = 400

LABELS: dict[str, dict[str, str]] = {
    "cohort": {"en": "Cohort", "zh": "同期群",
               "help_en": "The local start of the period in which the cohort's users did their start event.",
               "help_zh": "用户完成起始事件所在周期的本地起始时间。"},
    "cohort_size": {"en": "Cohort size", "zh": "同期群人数",
                    "help_en": "Users who joined the cohort (period 0, 100%).",
                    "help_zh": "加入该同期群的用户数（第 0 期，即 100%）。"},
    "period": {"en": "Period", "zh": "周期",
               "help_en": "Periods since the cohort period (0 = the cohort period itself).",
               "help_zh": "距同期群所在周期的期数（0 即同期群所在周期）。"},
    "retained": {"en": "Retained users", "zh": "留存用户数",
                 "help_en": "Cohort members who did the return event in this period (or later, for 'on or after'); empty for periods that have not started.",
                 "help_zh": "在该周期（“当期或之后”口径下为该周期或之后）完成回访事件的同期群用户数；尚未开始的周期为空。"},
    "rate": {"en": "Retention rate", "zh": "留存率",
             "help_en": "Retained users divided by the cohort size.",
             "help_zh": "留存用户数除以同期群人数。"},
    "complete": {"en": "Complete period", "zh": "周期已结束",
                 "help_en": "Whether the period had fully ended by the end of the data; incomplete cells are still growing.",
                 "help_zh": "数据截止时该周期是否已完全结束；未结束的单元格数值仍会增长。"},
    "date": {"en": "Date", "zh": "日期",
             "help_en": "The local calendar day in the report time zone.",
             "help_zh": "报告时区的本地日历日。"},
    "dau": {"en": "DAU", "zh": "日活跃用户",
            "help_en": "Distinct users with at least one event on the day.",
            "help_zh": "当天至少有一个事件的去重用户数。"},
    "wau": {"en": "WAU", "zh": "周活跃用户",
            "help_en": "Distinct users with at least one event in the 7 days ending on the day.",
            "help_zh": "截至当天（含）的 7 天内至少有一个事件的去重用户数。"},
    "mau": {"en": "MAU", "zh": "月活跃用户",
            "help_en": "Distinct users with at least one event in the 30 days ending on the day.",
            "help_zh": "截至当天（含）的 30 天内至少有一个事件的去重用户数。"},
    "stickiness": {"en": "Stickiness", "zh": "粘性",
                   "help_en": "DAU divided by MAU: the share of the month's users active on the day.",
                   "help_zh": "日活除以月活：当月用户中当天活跃的比例。"},
    "period_start": {"en": "Period start", "zh": "周期开始",
                     "help_en": "The local start of the lifecycle period.",
                     "help_zh": "生命周期所在周期的本地起始时间。"},
    "status": {"en": "Lifecycle status", "zh": "生命周期状态",
               "help_en": "New, returning, resurrecting or dormant, relative to the previous period.",
               "help_zh": "相对上一周期的状态：新增、留存、回流或沉睡。"},
    "users": {"en": "Users", "zh": "用户数",
              "help_en": "Distinct users with this status in the period (dormant users are counted positively).",
              "help_zh": "该周期处于此状态的去重用户数（沉睡用户以正数计）。"},
}


def _check_timezone(tz: str, filters: Filters | None = None) -> str:
    """A whitelisted IANA name (it is inlined into SQL), the same as the filters' when they carry dates."""
    if not isinstance(tz, str):
        raise UserInputError(f"Unknown time zone {tz!r}; use an IANA name such as 'Asia/Shanghai' or 'UTC'.")
    tz = check_timezone(tz)
    if filters is not None and (filters.start or filters.end) and check_timezone(filters.timezone) != tz:
        raise UserInputError(f"The report time zone ({tz}) differs from the filters' ({filters.timezone}); "
                             "use one time zone for both.")
    return tz


def _check_choice(name: str, value, choices) -> None:
    if value not in choices:
        raise UserInputError(f"{name} must be one of {', '.join(map(repr, choices))}, not {value!r}.")


@dataclass(frozen=True)
class RetentionParams:
    """Options of a cohort retention matrix; defaults are the SPEC §4 defaults."""

    start: Step | None = None
    returning: Step | None = None
    period: str = "week"
    periods: int = 8
    mode: str = "first_time"
    criterion: str = "on"
    minimum_occurrences: int = 1
    alignment: str = "calendar"
    week_start: str = "monday"
    end: date | datetime | None = None
    timezone: str = "UTC"
    breakdown: str | None = None
    filters: Filters | None = None

    def __post_init__(self):
        _check_choice("period", self.period, PERIODS)
        _check_choice("mode", self.mode, MODES)
        _check_choice("criterion", self.criterion, CRITERIA)
        _check_choice("alignment", self.alignment, ALIGNMENTS)
        _check_choice("week_start", self.week_start, WEEK_STARTS)
        if self.filters is not None and not isinstance(self.filters, Filters):
            raise UserInputError("filters must be a Filters object or None.")
        object.__setattr__(self, "timezone", _check_timezone(self.timezone, self.filters))
        if isinstance(self.periods, bool) or not isinstance(self.periods, int) or not 1 <= self.periods <= MAX_PERIODS:
            raise UserInputError(f"Choose between 1 and {MAX_PERIODS} periods (got {self.periods!r}).")
        if (isinstance(self.minimum_occurrences, bool) or not isinstance(self.minimum_occurrences, int)
                or self.minimum_occurrences < 1):
            raise UserInputError(f"The minimum number of occurrences must be a whole number of at least 1 "
                                 f"(got {self.minimum_occurrences!r}).")
        for name in ("start", "returning"):
            if getattr(self, name) is not None and not isinstance(getattr(self, name), Step):
                raise UserInputError(f"The {name} event must be a Step (an event name and property filters) or None.")
        if self.end is not None:
            if not isinstance(self.end, date):
                raise UserInputError(f"The end must be a date or a date-time, not {self.end!r}.")
            if isinstance(self.end, datetime) and self.end.tzinfo is not None:
                raise UserInputError("Give the end as a local date-time without a UTC offset; "
                                     "the report time zone says where it is.")
        if self.breakdown is not None and (not isinstance(self.breakdown, str) or not self.breakdown.strip()):
            raise UserInputError("The breakdown must name a user attribute (channel, campaign), a column or a property.")


# -- calendar periods: SQL and Python twins ------------------------------------------------------------

def period_index_sql(local: str, period: str, week_start: str = "monday") -> str:
    """SQL for the integer calendar period of a naive local timestamp expression ``local``."""
    if period == "day":
        return f"(CAST({local} AS DATE) - DATE '1970-01-01')"
    if period == "week":
        anchor = WEEK_ANCHOR[week_start].isoformat()
        return f"CAST(floor((CAST({local} AS DATE) - DATE '{anchor}') / 7.0) AS INTEGER)"
    return f"CAST((EXTRACT(YEAR FROM {local}) - 1970) * 12 + EXTRACT(MONTH FROM {local}) - 1 AS INTEGER)"


def _hours_period_sql(column: str, timezone: str, period: str, week_start: str = "monday") -> str:
    """:func:`period_index_sql` of the local time of ``column``, an hour of ``user_hours`` read where
    :func:`metrics.derive.hours_ok` holds (:func:`metrics.derive.hours_local_sql`). In a zone other than UTC the
    day (so the week) is counted from the epoch seconds plus the offset: integer arithmetic, cheaper than adding
    an interval to every timestamp; a month needs the calendar."""
    zone = hours_zone(timezone)
    if zone is None or period == "month":
        return period_index_sql(hours_local_sql(column, timezone), period, week_start)
    day = f"CAST({local_day_sql(column, zone.sql(column))} AS INTEGER)"
    if period == "day":
        return day
    return f"CAST(floor(({day} - {(WEEK_ANCHOR[week_start] - EPOCH).days}) / 7.0) AS INTEGER)"


def period_index(value: date, period: str, week_start: str = "monday") -> int:
    """The Python twin of :func:`period_index_sql` for a local date (or date-time)."""
    day = value.date() if isinstance(value, datetime) else value
    if period == "day":
        return (day - EPOCH).days
    if period == "week":
        return (day - WEEK_ANCHOR[week_start]).days // 7
    return (day.year - 1970) * 12 + day.month - 1


def period_start(index: int, period: str, week_start: str = "monday") -> date:
    """The local first day of calendar period ``index``."""
    if period == "day":
        return EPOCH + timedelta(days=index)
    if period == "week":
        return WEEK_ANCHOR[week_start] + timedelta(days=7 * index)
    return date(1970 + index // 12, index % 12 + 1, 1)


def _to_local(utc: datetime, tz: str) -> datetime:
    return utc.replace(tzinfo=ZoneInfo("UTC")).astimezone(ZoneInfo(tz)).replace(tzinfo=None)


def data_end(con) -> datetime | None:
    """The end of the data: the latest event time over all events (naive UTC), None when empty."""
    value = con.execute("SELECT max(event_time) FROM events").fetchone()[0]
    return None if value is None else pd.Timestamp(value).to_pydatetime()


# -- retention -----------------------------------------------------------------------------------------

RETENTION_COLUMNS = ["cohort", "cohort_size", "period", "retained", "rate", "complete"]


def _breakdown_kind(p: RetentionParams) -> str | None:
    if p.breakdown is None:
        return None
    return "user" if p.breakdown in USER_ATTRIBUTES else "event"


def _cohort_range(p: RetentionParams, end_data: datetime) -> tuple[int, int]:
    """First and last cohort period index: ``periods`` periods ending with the one containing the end."""
    f = p.filters or Filters()
    end = p.end if p.end is not None else (f.end if f.end is not None else _to_local(end_data, p.timezone))
    last = period_index(end, p.period, p.week_start)
    first = last - p.periods + 1
    if f.start is not None:  # only cohorts whose period starts within the date range
        start_idx = period_index(f.start, p.period, p.week_start)
        if period_start(start_idx, p.period, p.week_start) < f.start:
            start_idx += 1
        first = max(first, start_idx)
    if f.end is not None:
        last = min(last, period_index(f.end, p.period, p.week_start))
    return first, last


def days_of_life_ok(p: RetentionParams) -> bool:
    """Whether returns can be read from the days of life (``user_days``, kept by every load) instead of the
    events, for first-time cohorts of any event (members from ``users.first_seen``): rolling periods counted from
    first_seen, any event returning, one return needed in a period (the days say whether, not how many)."""
    return p.alignment == "rolling" and p.returning is None and p.minimum_occurrences == 1


def retention_sql(params: RetentionParams, data_end: datetime, sizes_only: bool = False) -> tuple[str, list]:
    """SQL and bound values of the cohort matrix; ``data_end`` is the latest event time (naive UTC).
    ``sizes_only``: period 0 alone — the cohorts and their sizes, without looking at a single return."""
    p, tz = params, params.timezone
    f = p.filters or Filters()
    kind = _breakdown_kind(p)
    first, last = _cohort_range(p, data_end)
    de_idx = period_index(_to_local(data_end, tz), p.period, p.week_start)
    loc = local_sql("e.event_time", tz)
    pidx = period_index_sql(loc, p.period, p.week_start)
    args: list = []

    # the report's cohort periods: index, local label, UTC start (for empty rolling cohorts)
    grid_rows = []
    for c in range(first, last + 1):
        start_local = period_start(c, p.period, p.week_start)
        grid_rows.append("(CAST(? AS INTEGER), CAST(? AS TIMESTAMP), CAST(? AS TIMESTAMP))")
        args += [c, datetime.combine(start_local, time()), to_utc(start_local, tz)]
    grid_sql = ", ".join(grid_rows) if grid_rows else "(NULL, NULL, NULL)"
    grid_where = "" if grid_rows else " WHERE FALSE"

    filt_sql, filt_args = f.events_sql("e")
    start_pred, start_args = step_sql(p.start, "e")
    ret_pred, ret_args = step_sql(p.returning, "e")
    if kind == "event":
        bexpr, bargs = property_sql(p.breakdown, "e")
    else:
        bexpr, bargs = "CAST(NULL AS VARCHAR)", []

    # members: (user_key, c, t0, bval)
    if kind == "user":
        battr = f"u.{quote_ident(p.breakdown)}"
    else:
        battr = "CAST(NULL AS VARCHAR)"
    fast_first = p.mode == "first_time" and p.start is None and not f.segment and kind != "event"
    if fast_first:
        users_pred, users_args = f.users_sql("u")
        ploc = period_index_sql(local_sql("u.first_seen", tz), p.period, p.week_start)
        members = f"""
    -- members: first-ever event of each selected user (users.first_seen, all data)
    members AS (
        SELECT u.user_key, {ploc} AS c, u.first_seen AS t0, {battr} AS bval
        FROM users u
        WHERE {users_pred} AND {ploc} BETWEEN ? AND ?
    ),"""
        member_args = users_args + [first, last]
    elif p.mode == "first_time" and not f.segment and kind != "event":
        users_pred, users_args = f.users_sql("u")
        ploc = period_index_sql(local_sql("s.t0", tz), p.period, p.week_start)
        members = f"""
    -- firsts: each user's first-ever start event time (all data)
    firsts AS (SELECT e.user_key, min(e.event_time) AS t0 FROM events e WHERE {start_pred} GROUP BY e.user_key),
    -- members: the selected users whose first start falls in a reported cohort period
    members AS (
        SELECT s.user_key, {ploc} AS c, s.t0, {battr} AS bval
        FROM firsts s JOIN users u ON u.user_key = s.user_key
        WHERE {users_pred} AND {ploc} BETWEEN ? AND ?
    ),"""
        member_args = start_args + users_args + [first, last]
    elif p.mode == "recurring" and p.alignment == "calendar":
        join_users = "JOIN users u ON u.user_key = s.user_key" if kind == "user" else ""
        sb = "s.bval" if kind == "event" else battr
        members = f"""
    -- user_periods: one pass over events, start and return events per (user, period[, value])
    user_periods AS (
        SELECT e.user_key, {pidx} AS p, {bexpr} AS bval,
               count(*) FILTER (WHERE {start_pred} AND {filt_sql}) AS s,
               count(*) FILTER (WHERE {ret_pred} AND {filt_sql}) AS n
        FROM events e
        WHERE {pidx} >= ?
        GROUP BY 1, 2, 3
    ),
    -- members: one membership per user and period with a start event (calendar: t0 is not needed)
    members AS (
        SELECT s.user_key, s.p AS c, CAST(NULL AS TIMESTAMP) AS t0, {sb} AS bval
        FROM user_periods s {join_users}
        WHERE s.s > 0 AND s.p BETWEEN ? AND ?
    ),"""
        member_args = bargs + start_args + filt_args + ret_args + filt_args + [first, first, last]
    else:
        join_users = "JOIN users u ON u.user_key = s.user_key" if kind == "user" else ""
        sb = "s.bval" if kind == "event" else battr
        starts = f"""
    -- start events (all data), with whether they pass the filters and their breakdown value
    starts AS (
        SELECT e.user_key, e.event_id, e.event_time, {pidx} AS c, {bexpr} AS bval, ({filt_sql}) AS ok
        FROM events e
        WHERE {start_pred}
    ),"""
        starts_args = bargs + filt_args + start_args
        if p.mode == "first_time":
            # the first start event's own row decides the segment and the breakdown value
            members = starts + f"""
    -- members: each user's first-ever start event, kept when it passes the filters and is in range
    members AS (
        SELECT s.user_key, s.c, s.event_time AS t0, {sb} AS bval
        FROM (SELECT *, ROW_NUMBER() OVER (PARTITION BY user_key ORDER BY event_time, event_id) AS rn
              FROM starts) s {join_users}
        WHERE s.rn = 1 AND s.ok AND s.c BETWEEN ? AND ?
    ),"""
        else:
            members = starts + f"""
    -- members: one membership per user and start period (per breakdown value), t0 = first start in it
    members AS (
        SELECT s.user_key, s.c, min(s.event_time) AS t0, {sb} AS bval
        FROM starts s {join_users}
        WHERE s.ok AND s.c BETWEEN ? AND ?
        GROUP BY s.user_key, s.c, {sb}
    ),"""
        member_args = starts_args + [first, last]

    last_counts = f"""last_counts AS (
        SELECT c, bval, least(last_k, {p.periods - 1}) AS last_k, count(*) AS n FROM last_hit GROUP BY 1, 2, 3
    ),
    -- cells: a member whose last qualifying period is L is retained in every period 1..L
    cells AS (
        SELECT l.c, l.bval, o.k, sum(l.n) AS retained
        FROM last_counts l JOIN offsets o ON o.k BETWEEN 1 AND l.last_k
        GROUP BY l.c, l.bval, o.k
    ),"""
    if p.mode == "recurring" and p.alignment == "calendar":
        # memberships meet returns per user-period (both from user_periods)
        match_b = "AND a.bval IS NOT DISTINCT FROM m.bval" if kind == "event" else ""
        if p.criterion == "on":
            hits = f"""
    -- returns: user-periods with enough return events
    activity AS (SELECT user_key, p, bval FROM user_periods WHERE n >= ? AND p > ?),
    -- cells: members retained in period k
    cells AS (
        SELECT m.c, m.bval, a.p - m.c AS k, count(*) AS retained
        FROM members m JOIN activity a ON a.user_key = m.user_key AND a.p > m.c {match_b}
        WHERE a.p - m.c < {p.periods}
        GROUP BY 1, 2, 3
    ),"""
        else:
            hits = f"""
    -- last_hit: each member's last period with enough return events (one row per user first)
    user_last AS (SELECT user_key, bval, max(p) AS p FROM user_periods WHERE n >= ? AND p > ? GROUP BY 1, 2),
    last_hit AS (
        SELECT m.user_key, m.c, m.bval, a.p - m.c AS last_k
        FROM members m JOIN user_last a ON a.user_key = m.user_key AND a.p > m.c {match_b}
    ),
    {last_counts}"""
        hit_args = [p.minimum_occurrences, first]
    else:
        # events are joined to each membership: first-time (one per user) or rolling (k depends on t0)
        if fast_first and days_of_life_ok(p):
            # rolling periods from first_seen, any event returning, one needed: the days of life say it all —
            # day d holds the events aged [d, d + 1) days, so period k = floor(d / days per period)
            days = ROLLING_US[p.period] // ROLLING_US["day"]
            kexpr = f"CAST(floor(e.day / {days}.0) AS BIGINT)"
            join = f"""FROM members m JOIN user_days e ON e.user_key = m.user_key
        WHERE {filt_sql} AND e.day >= {days}"""
            hit_args = filt_args
        else:
            if p.alignment == "calendar":
                kexpr, kwhere = f"({pidx} - m.c)", f"{pidx} > m.c"
            else:
                length = ROLLING_US[p.period]
                kexpr = f"CAST(floor(date_diff('microsecond', m.t0, e.event_time) / {length}.0) AS BIGINT)"
                kwhere = f"e.event_time >= m.t0 AND date_diff('microsecond', m.t0, e.event_time) >= {length}"
            bmatch = f"AND {bexpr} IS NOT DISTINCT FROM m.bval" if kind == "event" else ""
            join = f"""FROM members m JOIN events e ON e.user_key = m.user_key
        WHERE {ret_pred} AND {filt_sql} AND {kwhere} {bmatch}"""
            hit_args = ret_args + filt_args + bargs
        if p.minimum_occurrences == 1 and p.criterion == "on" and p.periods <= 62:
            hits = f"""
    -- masks: one row per member, bit k set when they returned in period k (grouped by member only)
    masks AS (
        SELECT m.user_key, m.c, m.bval, bit_or(CAST(1 AS BIGINT) << CAST({kexpr} AS INTEGER)) AS mask
        {join} AND {kexpr} < {p.periods}
        GROUP BY 1, 2, 3
    ),
    mask_counts AS (SELECT c, bval, mask, count(*) AS n FROM masks GROUP BY 1, 2, 3),
    -- cells: members whose mask has bit k
    cells AS (
        SELECT mc.c, mc.bval, o.k, sum(mc.n) AS retained
        FROM mask_counts mc JOIN offsets o ON o.k >= 1 AND ((mc.mask >> o.k) & 1) = 1
        GROUP BY 1, 2, 3
    ),"""
        elif p.minimum_occurrences == 1:  # on_or_after: only the last period with a return matters
            hits = f"""
    -- last_hit: each member's last period with a return event
    last_hit AS (SELECT m.user_key, m.c, m.bval, max({kexpr}) AS last_k {join} GROUP BY 1, 2, 3),
    {last_counts}"""
        else:
            k_cap = f"AND k < {p.periods}" if p.criterion == "on" else ""
            hits = f"""
    -- activity: return events per member and offset k
    activity AS (SELECT m.user_key, m.c, m.bval, {kexpr} AS k, count(*) AS n {join} GROUP BY 1, 2, 3, 4),
    -- hits: member x offset with enough return events
    hits AS (SELECT user_key, c, bval, k FROM activity WHERE n >= ? {k_cap}),"""
            if p.criterion == "on":
                hits += """
    -- cells: members retained in period k
    cells AS (SELECT c, bval, k, count(*) AS retained FROM hits GROUP BY c, bval, k),"""
            else:
                hits += f"""
    last_hit AS (SELECT user_key, c, bval, max(k) AS last_k FROM hits GROUP BY user_key, c, bval),
    {last_counts}"""
            hit_args = hit_args + [p.minimum_occurrences]
    if sizes_only:
        hits = """
    -- cells: none (period 0 is the cohort itself)
    cells AS (SELECT CAST(NULL AS INTEGER) AS c, CAST(NULL AS VARCHAR) AS bval, CAST(NULL AS INTEGER) AS k,
                     CAST(0 AS BIGINT) AS retained WHERE FALSE),"""
        hit_args = []

    if p.alignment == "calendar":
        started = f"(g.c + o.k <= {de_idx})"
        ended = f"(g.c + o.k < {de_idx})"
    else:
        length = ROLLING_US[p.period]
        t_min = "coalesce(s.t0_min, g.c_start)"
        t_max = "coalesce(s.t0_max, g.c_start)"
        started = f"(date_diff('microsecond', {t_min}, ?) >= o.k * {length})"
        ended = f"(date_diff('microsecond', {t_max}, ?) >= (o.k + 1) * {length})"
    values = "SELECT DISTINCT bval FROM members" if kind else "SELECT CAST(NULL AS VARCHAR) AS bval"
    sql = f"""
WITH
    -- grid: the report's cohort periods
    grid(c, cohort, c_start) AS (SELECT * FROM (VALUES {grid_sql}){grid_where}),
    offsets AS (SELECT CAST(generate_series AS INTEGER) AS k
                FROM generate_series(0, {0 if sizes_only else p.periods - 1})),
    {members.strip()}
    {hits.strip()}
    -- sizes: members per cohort, with the spread of their start times (rolling censoring)
    sizes AS (SELECT c, bval, count(*) AS cohort_size, min(t0) AS t0_min, max(t0) AS t0_max
              FROM members GROUP BY c, bval),
    bvalues AS ({values}),
    -- matrix: every cohort x period, censored
    matrix AS (
        SELECT b.bval AS breakdown, g.cohort, g.c, CAST(coalesce(s.cohort_size, 0) AS BIGINT) AS cohort_size, o.k AS period,
               {started} AS started, {ended} AS complete,
               CASE WHEN o.k = 0 THEN coalesce(s.cohort_size, 0) ELSE coalesce(x.retained, 0) END AS retained_all
        FROM grid g CROSS JOIN bvalues b CROSS JOIN offsets o
        LEFT JOIN sizes s ON s.c = g.c AND s.bval IS NOT DISTINCT FROM b.bval
        LEFT JOIN cells x ON x.c = g.c AND x.bval IS NOT DISTINCT FROM b.bval AND x.k = o.k
    )
SELECT breakdown, cohort, cohort_size, period,
       CASE WHEN started THEN retained_all END AS retained,
       CASE WHEN started THEN retained_all / NULLIF(CAST(cohort_size AS DOUBLE), 0) END AS rate,
       complete
FROM matrix
ORDER BY breakdown NULLS LAST, cohort, period
"""
    end_args = [data_end, data_end] if p.alignment == "rolling" else []
    all_args = args + member_args + hit_args + end_args
    return sql, all_args


def _empty_retention(p: RetentionParams) -> pd.DataFrame:
    df = pd.DataFrame({
        "cohort": pd.Series([], dtype="datetime64[us]"), "cohort_size": pd.Series([], dtype="int64"),
        "period": pd.Series([], dtype="int64"), "retained": pd.Series([], dtype="Int64"),
        "rate": pd.Series([], dtype="float64"), "complete": pd.Series([], dtype="bool")})
    if p.breakdown is not None:
        df.insert(0, "breakdown", pd.Series([], dtype="object"))
    return df


def retention(con, params: RetentionParams) -> pd.DataFrame:
    """The cohort matrix in long form: [breakdown,] cohort, cohort_size, period, retained, rate, complete."""
    end_data = data_end(con)
    if end_data is None:
        return _empty_retention(params)
    sql, args = retention_sql(params, end_data)
    df = con.execute(sql, args).df()
    if df.empty:
        return _empty_retention(params)
    out = pd.DataFrame({
        "cohort": pd.to_datetime(df["cohort"]).astype("datetime64[us]"),
        "cohort_size": df["cohort_size"].astype("int64"),
        "period": df["period"].astype("int64"),
        "retained": df["retained"].astype("Int64"),
        "rate": df["rate"].astype("float64"),
        "complete": df["complete"].astype(bool),
    })
    if params.breakdown is not None:
        out.insert(0, "breakdown", df["breakdown"].astype(object).where(df["breakdown"].notna(), None))
    return out


def cohort_sizes_sql(params: RetentionParams, data_end: datetime) -> tuple[str, list]:
    """SQL of :func:`cohort_sizes`: :func:`retention_sql` for period 0 alone."""
    return retention_sql(params, data_end, sizes_only=True)


def cohort_sizes(con, params: RetentionParams) -> pd.DataFrame:
    """The cohorts of :func:`retention` and their sizes, without the returns: ``[breakdown,] cohort, cohort_size``,
    equal to the matrix's period-0 rows. With the default start (any event, first time) these are the new users
    per period, counted from ``users.first_seen``."""
    end_data = data_end(con)
    cols = (["breakdown"] if params.breakdown is not None else []) + ["cohort", "cohort_size"]
    if end_data is None:
        return _empty_retention(params)[cols]
    sql, args = cohort_sizes_sql(params, end_data)
    df = con.execute(sql, args).df()
    out = pd.DataFrame({"cohort": pd.to_datetime(df["cohort"]).astype("datetime64[us]"),
                        "cohort_size": df["cohort_size"].astype("int64")})
    if params.breakdown is not None:
        out.insert(0, "breakdown", df["breakdown"].astype(object).where(df["breakdown"].notna(), None))
    return out


def total_of_breakdown(by: pd.DataFrame) -> pd.DataFrame:
    """The matrix without a breakdown from the matrix split by a first-touch user attribute, in calendar periods:
    each member belongs to exactly one value, so sizes and retained users add up, and whether a cell has started
    or ended depends on its period alone. (In rolling periods it also depends on the members' start times, and an
    event property can put one user under two values: there :func:`retention` must run without a breakdown.)"""
    g = by.groupby(["cohort", "period"], sort=True)
    out = g.agg(cohort_size=("cohort_size", "sum"), retained=("retained", lambda r: r.sum(min_count=1)),
                complete=("complete", "first")).reset_index()
    size = out["cohort_size"].astype("int64")
    retained = out["retained"].astype("Int64")
    rate = (retained.astype("Float64") / size.where(size > 0)).astype("float64")
    return pd.DataFrame({"cohort": out["cohort"].astype("datetime64[us]"), "cohort_size": size,
                         "period": out["period"].astype("int64"), "retained": retained,
                         "rate": rate.where(retained.notna()), "complete": out["complete"].astype(bool)})


def retention_with_total(con, params: RetentionParams) -> dict[str, pd.DataFrame]:
    """``{"by": retention(con, params), "total": retention(con, params without its breakdown)}`` — from one query
    when the breakdown is a first-touch user attribute (channel, campaign) and periods are calendar ones
    (:func:`total_of_breakdown`), as the Retention page draws both; otherwise from two."""
    by = retention(con, params)
    if params.breakdown in USER_ATTRIBUTES and params.alignment == "calendar" and not by.empty:
        return {"by": by, "total": total_of_breakdown(by)}
    return {"by": by, "total": retention(con, replace(params, breakdown=None))}


def retention_average(df: pd.DataFrame) -> pd.DataFrame:
    """The average row: per period, retained / cohort size over complete, non-empty cohorts (size-weighted).

    Columns: [breakdown,] period, cohort_size (sum over the included cohorts), retained, rate.
    """
    keys = (["breakdown"] if "breakdown" in df.columns else []) + ["period"]
    used = df[df["complete"] & (df["cohort_size"] > 0)]
    sums = used.groupby(keys, dropna=False)[["cohort_size", "retained"]].sum()
    every = df[keys].drop_duplicates().set_index(keys)
    out = every.join(sums, how="left").reset_index()
    if "breakdown" in out.columns:
        out["breakdown"] = out["breakdown"].astype(object).where(out["breakdown"].notna(), None)
    out["cohort_size"] = out["cohort_size"].fillna(0).astype("int64")
    out["retained"] = out["retained"].fillna(0).astype("Int64")
    out["rate"] = (out["retained"].astype("float64") / out["cohort_size"].where(out["cohort_size"] > 0)).astype("float64")
    return out.sort_values(keys, kind="stable").reset_index(drop=True)


# -- DAU / WAU / MAU -----------------------------------------------------------------------------------

def _index_labels(index: pd.Series, period: str, week_start: str = "monday") -> pd.Series:
    """Local period starts (Timestamps) for integer period indexes, vectorised over a small result."""
    idx = index.astype("int64")
    if period == "month":
        return pd.to_datetime(pd.DataFrame({"year": 1970 + idx // 12, "month": idx % 12 + 1, "day": 1})).astype("datetime64[us]")
    origin = pd.Timestamp(EPOCH if period == "day" else WEEK_ANCHOR[week_start])
    step = 1 if period == "day" else 7
    return (origin + pd.to_timedelta(idx * step, unit="D")).astype("datetime64[us]")


def _last_index(con, filters: Filters, end, timezone: str, period: str, week_start: str) -> int | None:
    """The last reported period: ``end``, else the filter's end date, else the period of the data end."""
    if end is None:
        end = filters.end
    if end is None:
        last = data_end(con)
        if last is None:
            return None
        end = _to_local(last, timezone)
    return period_index(end, period, week_start)


def active_users_sql(filters: Filters | None, last_day: int, timezone: str = "UTC",
                     hours: bool = False) -> tuple[str, list]:
    """SQL of :func:`active_users` up to local day index ``last_day`` (days since 1970-01-01), over the hours
    with an event (``hours``, see :func:`metrics.derive.hours_ok`) or the events."""
    f = filters or Filters()
    first = period_index(f.start, "day") if f.start is not None else None
    if hours:
        filt, args = f.events_sql("h")
        day, next_day = (_hours_period_sql(c, timezone, "day") for c in ("h.hour_start", "h.next_hour"))
        # each user's hours are distinct and know the next one: the last hour of an active day is the one whose
        # next hour falls on another day, and that day is the next active one (when it comes after the last
        # reported day, the span it ends reaches past every reported day, as the span of a last active day does)
        gaps = f"""-- active days, one row each: a user's last hour with an event of the local day, with the gap in days
    -- to their next hour with an event (none: NULL); the hours in the filters
    gaps AS (
        SELECT {day} AS d, {next_day} - {day} AS gap FROM user_hours h
        WHERE {filt} AND {day} <= ? AND (h.next_hour IS NULL OR {next_day} <> {day})
    ),"""
    else:
        filt, args = f.events_sql("e")
        day = period_index_sql(local_sql("e.event_time", timezone), "day")
        gaps = f"""-- active days: distinct (user, local day) in the filters
    active AS (
        SELECT DISTINCT e.user_key, {day} AS d FROM events e WHERE {filt} AND {day} <= ?
    ),
    -- the gap in days from each active day to the user's next one (none: NULL)
    gaps AS (SELECT d, LEAD(d) OVER (PARTITION BY user_key ORDER BY d) - d AS gap FROM active),"""
    sql = f"""
WITH
    {gaps}
    -- each active day d covers the days [d, d + n) of the trailing windows (n = 7, 30) up to the user's
    -- next active day: a user's spans never overlap, so counting the spans over a day counts distinct users;
    -- spans: how many users have an active day d whose span is len days (up to the next one, at most 30)
    spans AS (
        SELECT d, least(coalesce(gap, 30), 30) AS len, count(*) AS users
        FROM gaps GROUP BY d, least(coalesce(gap, 30), 30)
    ),
    -- every day from the first activity to the last reported day
    bounds AS (SELECT min(d) AS lo FROM gaps),
    days AS (SELECT g.day FROM bounds CROSS JOIN LATERAL generate_series(bounds.lo, ?) AS g(day)),
    -- per day, the spans over it (a few thousand rows: days x lengths)
    windows AS (
        SELECT days.day,
               coalesce(sum(s.users) FILTER (WHERE s.d = days.day), 0) AS dau,
               coalesce(sum(s.users) FILTER (WHERE days.day - s.d < least(s.len, 7)), 0) AS wau,
               coalesce(sum(s.users), 0) AS mau
        FROM days LEFT JOIN spans s ON s.d <= days.day AND days.day - s.d < s.len
        GROUP BY days.day
    )
SELECT day, dau, wau, mau, dau / NULLIF(CAST(mau AS DOUBLE), 0) AS stickiness
FROM windows
WHERE day >= ?
ORDER BY day
"""
    return sql, args + [last_day, last_day, first if first is not None else -10**9]


def active_users(con, filters: Filters | None = None, end: date | None = None, timezone: str = "UTC") -> pd.DataFrame:
    """Per local day: date, dau, wau (7 trailing days), mau (30 trailing days), stickiness = dau / mau.

    Days run from the first active day (or the filter's start date) to ``end`` (default: the filter's end
    date, else the day of the last event); the trailing windows also look back before the start date.
    ``attrs["query"]`` holds the ``(SQL, bound values)`` that ran (:func:`metrics.derive.query_of`; none
    without events).
    """
    timezone = _check_timezone(timezone, filters)
    f = filters or Filters()
    last = _last_index(con, f, end, timezone, "day", "monday")
    empty = pd.DataFrame({"date": pd.Series([], dtype="datetime64[us]"), "dau": pd.Series([], dtype="int64"),
                          "wau": pd.Series([], dtype="int64"), "mau": pd.Series([], dtype="int64"),
                          "stickiness": pd.Series([], dtype="float64")})
    if last is None:
        return empty

    def frame(hours: bool) -> pd.DataFrame:
        query = active_users_sql(f, last, timezone, hours)
        return ran(con.execute(*query).df(), query)

    df = with_hours(con, f, timezone, frame)
    out = empty if df.empty else pd.DataFrame({
        "date": _index_labels(df["day"], "day"), "dau": df["dau"].astype("int64"), "wau": df["wau"].astype("int64"),
        "mau": df["mau"].astype("int64"), "stickiness": df["stickiness"].astype("float64")})
    return ran(out, query_of(df))


# -- lifecycle -----------------------------------------------------------------------------------------

def lifecycle_sql(period: str, filters: Filters | None, last: int, timezone: str = "UTC",
                  week_start: str = "monday", hours: bool = False) -> tuple[str, list]:
    """SQL of :func:`lifecycle` for periods up to index ``last``, over the hours with an event (``hours``, see
    :func:`metrics.derive.hours_ok`) or the events."""
    f = filters or Filters()
    first = period_index(f.start, period, week_start) if f.start is not None else None
    statuses = ", ".join(f"({i}, '{s}')" for i, s in enumerate(LIFECYCLE_STATUSES))
    if hours:
        filt, args = f.events_sql("h")
        pe, pp, pn = (_hours_period_sql(c, timezone, period, week_start)
                      for c in ("h.hour_start", "h.prev_hour", "h.next_hour"))
        # each user's hours are distinct and know the previous and next one: the first hour of an active period is
        # the one whose previous hour is in another period (or that has none: the user's first-ever hour, so the
        # period of first_seen), and the last one is the one whose next hour is in another period
        active = f"""-- active: each user's hours in the filters, with the periods of their previous and next hour
    active AS (SELECT {pe} AS p, {pp} AS pp, {pn} AS np FROM user_hours h WHERE {filt} AND {pe} <= ?),
    -- labelled: active users by how they relate to the previous period (at the first hour of their period);
    -- dormant ones one period later (at the last hour of their period)
    labelled AS (
        SELECT p, CASE WHEN pp IS NULL THEN 'new'
                       WHEN pp = p - 1 THEN 'returning'
                       ELSE 'resurrecting' END AS status
        FROM active WHERE pp IS NULL OR pp <> p
        UNION ALL
        SELECT p + 1, 'dormant' FROM active WHERE (np IS NULL OR np > p + 1) AND p + 1 <= ?
    ),"""
    else:
        filt, args = f.events_sql("e")
        pe = period_index_sql(local_sql("e.event_time", timezone), period, week_start)
        pu = period_index_sql(local_sql("u.first_seen", timezone), period, week_start)
        active = f"""-- active: distinct (user, period) in the filters
    active AS (SELECT DISTINCT e.user_key, {pe} AS p FROM events e WHERE {filt} AND {pe} <= ?),
    -- first: the period of each user's first-ever event (all data)
    first AS (SELECT u.user_key, {pu} AS fp FROM users u),
    -- labelled: active users by how they relate to the previous period; dormant ones one period later
    labelled AS (
        SELECT a.p, CASE WHEN f.fp = a.p THEN 'new'
                         WHEN prev.user_key IS NOT NULL THEN 'returning'
                         ELSE 'resurrecting' END AS status
        FROM active a
        JOIN first f ON f.user_key = a.user_key
        LEFT JOIN active prev ON prev.user_key = a.user_key AND prev.p = a.p - 1
        UNION ALL
        SELECT a.p + 1, 'dormant'
        FROM active a
        LEFT JOIN active nxt ON nxt.user_key = a.user_key AND nxt.p = a.p + 1
        WHERE nxt.user_key IS NULL AND a.p + 1 <= ?
    ),"""
    sql = f"""
WITH
    {active}
    counts AS (SELECT p, status, count(*) AS users FROM labelled GROUP BY p, status),
    -- grid: every period from the first activity to the last reported one, every status
    bounds AS (SELECT min(p) AS lo FROM active),
    periods AS (SELECT g.p FROM bounds CROSS JOIN LATERAL generate_series(bounds.lo, ?) AS g(p)),
    statuses(ord, status) AS (VALUES {statuses})
SELECT periods.p, s.status, coalesce(c.users, 0) AS users
FROM periods CROSS JOIN statuses s
LEFT JOIN counts c ON c.p = periods.p AND c.status = s.status
WHERE periods.p >= ?
ORDER BY periods.p, s.ord
"""
    return sql, args + [last, last, last, first if first is not None else -10**9]


def lifecycle(con, period: str = "week", filters: Filters | None = None, timezone: str = "UTC",
              week_start: str = "monday") -> pd.DataFrame:
    """Per period and status: period_start, status (new / returning / resurrecting / dormant), users.

    new = first-ever event (all data) in the period; returning = active in this and the previous period;
    resurrecting = active now, not in the previous period, but seen before; dormant = active in the
    previous period and not in this one, reported as a positive count (the chart draws it below the axis).
    ``attrs["query"]`` holds the ``(SQL, bound values)`` that ran (:func:`metrics.derive.query_of`; none
    without events).
    """
    _check_choice("period", period, PERIODS)
    _check_choice("week_start", week_start, WEEK_STARTS)
    timezone = _check_timezone(timezone, filters)
    f = filters or Filters()
    last = _last_index(con, f, None, timezone, period, week_start)
    empty = pd.DataFrame({"period_start": pd.Series([], dtype="datetime64[us]"),
                          "status": pd.Series([], dtype="str"), "users": pd.Series([], dtype="int64")})
    if last is None:
        return empty

    def frame(hours: bool) -> pd.DataFrame:
        query = lifecycle_sql(period, f, last, timezone, week_start, hours)
        return ran(con.execute(*query).df(), query)

    df = with_hours(con, f, timezone, frame)
    out = empty if df.empty else pd.DataFrame({
        "period_start": _index_labels(df["p"], period, week_start), "status": df["status"].astype("str"),
        "users": df["users"].astype("int64")})
    return ran(out, query_of(df))
