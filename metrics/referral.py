"""Referral and the K-factor (SPEC §3, §6).

Query intuition
---------------
Event names whose stage (``stage_map``) is ``referral`` are **invites**; names whose stage is
``acquisition`` are **sign-ups**. Per period (day / week (Monday) / month, in the report timezone) and
per acquisition channel (the first-touch channel of the user doing the event):

- **active users** — distinct users with any event in the period;
- **inviters** — distinct users with an invite event; **invites** — invite events;
- **invited sign-ups** — distinct users with a sign-up event in the period whose ``inviter_property``
  (default ``inviter_id``; a canonical column or a key of ``properties``) names an existing user other
  than themselves. The sign-up is credited to the *inviter's* acquisition channel, in the period of the
  sign-up (which may be later than the invite's period);
- **invites per user** = invites / active users; **invite conversion** = invited sign-ups / invites;
- **K-factor** = invites per user × invite conversion (= invited sign-ups / active users).

The date range selects events (invites, activity and sign-ups) by their time; the channel and
campaign filters select the acting users — for invited sign-ups, the inviter. Periods with invited
sign-ups but no invites have a NULL conversion (no division by zero).

Activity is first reduced to one row per user and bucket (with its invite count) and only those rows are
converted to local time. A bucket is a local day when the report time zone keeps one UTC offset from 2000 to
2100 (UTC, Asia/Shanghai, Asia/Kolkata …: the day is plain arithmetic on the UTC time) and the event falls in
those years — the local Monday week when the periods are weeks; otherwise it is a UTC quarter-hour, as every
local midnight in use today falls on one. Either way
the periods are the same as converting each event, at a fraction of the cost. The summaries, which have no
periods, reduce activity to one row per user instead — and when every event counts (no date range, or one
holding every stored event, and no segment) read each user's invites from the per-user rollup ``user_events``.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import pandas as pd

from store.errors import UserInputError

from .derive import hours_local_sql, over_every_event, ran, range_holds, split_at, temp_tables, with_hours
from .economics import rollups_ok, segment_sql, validate_common
from .filters import Filters, fixed_offset_seconds, local_day_sql, local_sql, zone_offsets
from .labels import label as _label
from .selectors import property_sql

PERIODS = ("day", "week", "month")


_DAY_BUCKETS = -100_000_000_000   # day bucket q = _DAY_BUCKETS - local day number: apart from any quarter-hour number


def _bucket_sql(tz: str, period: str) -> tuple[str, str]:
    """SQL for an event's bucket number ``q`` (over ``e.event_time``) and for the UTC start of bucket ``q``.

    In a zone with one offset a bucket is the local day, or the local Monday week when the periods are weeks
    (day 0, 1 Jan 1970, was a Thursday: day ``d``'s Monday is ``d - (d + 3) % 7``)."""
    quarter = "CAST(floor(EXTRACT(EPOCH FROM e.event_time) / 900) AS BIGINT)"
    quarter_start = "(TIMESTAMP '1970-01-01 00:00:00' + q * INTERVAL '15 minutes')"
    off = fixed_offset_seconds(tz)
    if off is None:
        return quarter, quarter_start
    zone = zone_offsets(tz)   # the zone's one offset, and the years it holds through
    day = f"CAST({local_day_sql('e.event_time', off)} AS BIGINT)"
    first_day = f"{day} - ({day} + 3) % 7" if period == "week" else day
    bucket = f"CASE WHEN {zone.holds('e.event_time')} THEN {_DAY_BUCKETS} - ({first_day}) ELSE {quarter} END"
    start = (f"(CASE WHEN q <= {_DAY_BUCKETS} THEN TIMESTAMP '1970-01-01 00:00:00' "
             f"+ CAST({_DAY_BUCKETS} - q AS INTEGER) * INTERVAL '1 day' - {off} * INTERVAL '1 second' "
             f"ELSE {quarter_start} END)")
    return bucket, start


@dataclass(frozen=True)
class ReferralParams:
    period: str = "week"
    inviter_property: str = "inviter_id"
    filters: Filters | None = None
    timezone: str = "UTC"

    def __post_init__(self):
        validate_common(self.filters, self.timezone)
        if self.period not in PERIODS:
            raise UserInputError(f"Period must be day, week or month, not {self.period!r}.")
        if not isinstance(self.inviter_property, str) or not self.inviter_property.strip():
            raise UserInputError("Name the property that holds the inviter's user id (e.g. inviter_id).")


def referral_sql(p: ReferralParams, grouped: bool = True, by_channel: bool = False,
                 tables: tuple[str, str] | None = None, hours: bool = False) -> tuple[str, list]:
    """SQL for the per-period, per-channel table (``grouped``), the one-row summary, or (``by_channel``)
    the summary per acquisition channel. ``tables`` names tables already holding ``buckets`` and ``signups``
    for the same parameters (:func:`referral_page`): the query then reads them and binds nothing. With
    ``hours`` (:func:`metrics.derive.hours_ok`) the per-period buckets come from the hours with an event and
    the referral-stage events of ``events_by_name``."""
    f = p.filters or Filters()
    time_where, time_params = f.time_sql("e.event_time")
    seg, seg_params = segment_sql(p.filters, "e")
    time_sql = " AND ".join(time_where + [seg])
    users_actor, actor_params = f.users_sql("u")
    users_inviter, inviter_params = f.users_sql("inv")
    inviter_expr, inviter_params_expr = property_sql(p.inviter_property, "e")
    period = f"CAST(date_trunc('{p.period}', {local_sql('e.event_time', p.timezone)}) AS DATE)"
    bucket, bucket_time = _bucket_sql(p.timezone, p.period)
    bucket_period = f"CAST(date_trunc('{p.period}', {local_sql(bucket_time, p.timezone)}) AS DATE)"
    keys = ["channel"] if by_channel else ["period_start", "channel"] if grouped else []
    grouped = bool(keys)
    sel = ", ".join(keys)
    group = f"GROUP BY {sel}" if grouped else ""
    on = " AND ".join(f"a.{k} = s.{k}" for k in keys) or "TRUE"
    coalesced = "".join(f"coalesce(a.{k}, s.{k}) AS {k}, " for k in keys)
    # Without periods (the summaries) a user's activity needs no time buckets: one bucket per user.
    per_period = "period_start" in keys
    bucket = bucket if per_period else "CAST(NULL AS BIGINT)"
    buckets_body = f"""SELECT b.user_key, u.channel, b.q, b.invites
    FROM (SELECT e.user_key, {bucket} AS q, sum(CASE WHEN sm.stage = 'referral' THEN 1 ELSE 0 END) AS invites
          FROM events e
          LEFT JOIN stage_map sm ON sm.event_name = e.event_name
          WHERE {time_sql}
          GROUP BY e.user_key{", q" if per_period else ""}) b
    JOIN users u ON u.user_key = b.user_key   -- after the grouping: one lookup per bucket, not per event
    WHERE {users_actor}"""
    signups_body = f"""SELECT {period} AS period_start, inv.channel, e.user_key
    FROM events e
    JOIN stage_map sm ON sm.event_name = e.event_name AND sm.stage = 'acquisition'
    JOIN users inv ON inv.user_id = {inviter_expr} AND inv.user_key <> e.user_key
    WHERE {time_sql} AND {users_inviter}"""
    buckets_params = time_params + seg_params + actor_params
    # the buckets hold one row per user and local period (the acts) when they come from the hours
    per_user_period = per_period and hours
    if per_user_period:
        # the user's local periods with an hour with an event (the period of the hour's start: in UTC and a zone of
        # one whole-hour offset every event of an hour is in it), and the invites counted over the referral-stage
        # events alone, each in the period of its hour's start too; the local time of an hour is plain arithmetic
        # (:func:`metrics.derive.hours_local_sql`), so the hours need no buckets to convert
        hour_period = f"CAST(date_trunc('{p.period}', {hours_local_sql('h.hour_start', p.timezone)}) AS DATE)"
        invite_hour = "date_trunc('hour', x.event_time)"
        invite_period = f"CAST(date_trunc('{p.period}', {hours_local_sql(invite_hour, p.timezone)}) AS DATE)"
        hour_where, hour_params = f.time_sql("h.hour_start")
        invite_where, invite_params = f.time_sql("x.event_time")
        buckets_body = f"""SELECT b.user_key, u.channel, b.period_start, coalesce(i.invites, 0) AS invites
    FROM (SELECT h.user_key, {hour_period} AS period_start FROM user_hours h
          WHERE {" AND ".join(hour_where) or "TRUE"}
          GROUP BY h.user_key, period_start) b
    LEFT JOIN (SELECT x.user_key, {invite_period} AS period_start, count(*) AS invites
               FROM events_by_name x
               JOIN stage_map sm ON sm.event_name = x.event_name AND sm.stage = 'referral'
               WHERE {" AND ".join(invite_where) or "TRUE"}
               GROUP BY x.user_key, period_start) i ON i.user_key = b.user_key AND i.period_start = b.period_start
    JOIN users u ON u.user_key = b.user_key
    WHERE {users_actor}"""
        buckets_params = hour_params + invite_params + actor_params
    if not per_period and not time_where and rollups_ok(p.filters):
        # every event counts (no date range, no segment): each user's invites are in the per-user rollup
        buckets_body = f"""SELECT b.user_key, u.channel, b.q, b.invites
    FROM (SELECT r.user_key, CAST(NULL AS BIGINT) AS q,
                 sum(CASE WHEN sm.stage = 'referral' THEN r.events ELSE 0 END) AS invites
          FROM user_events r
          LEFT JOIN stage_map sm ON sm.event_name = r.event_name
          GROUP BY r.user_key) b
    JOIN users u ON u.user_key = b.user_key
    WHERE {users_actor}"""
        buckets_params = actor_params
    signups_params = inviter_params_expr + time_params + seg_params + inviter_params
    if tables is not None:
        buckets_body, signups_body = (f"SELECT * FROM {t}" for t in tables)
    buckets_comment = ("-- buckets: the hours with an event in the range of users of the selection, per user and local period,\n"
                       "-- invites counted" if per_user_period else
                       "-- buckets: events in the range by users of the selection, per user and local day or week (a time zone "
                       "with\n-- one offset) or UTC quarter-hour (local midnights fall on those in every time zone in use), invites "
                       "counted:\n-- the local period of a bucket is that of each of its events, and converting buckets is cheaper.")
    # acts: one row per user (and period) with their invites; a user has one channel, so counting the acts counts
    # the distinct users
    if per_user_period:
        acts_body = "SELECT user_key, channel, invites, period_start FROM buckets"
    elif per_period:
        acts_body = (f"SELECT user_key, channel, sum(invites) AS invites, {bucket_period} AS period_start FROM buckets "
                     f"GROUP BY user_key, channel, period_start")
    elif tables is None:   # the summaries' buckets: one per user already
        acts_body = "SELECT user_key, channel, invites FROM buckets"
    else:                  # the summaries over the per-period buckets of referral_page
        acts_body = "SELECT user_key, channel, sum(invites) AS invites FROM buckets GROUP BY user_key, channel"
    sql = f"""
WITH
{buckets_comment}
buckets AS (
    {buckets_body}
),
-- acts: per user (and local period), with their invites
acts AS (
    {acts_body}
),
-- activity: active users, inviters and invites
activity AS (
    SELECT {sel + ',' if grouped else ''} count(*) AS active_users,
           count(CASE WHEN invites > 0 THEN 1 END) AS inviters, coalesce(sum(invites), 0) AS invites
    FROM acts {group}
),
-- signups: sign-up events in the range naming an existing user (the inviter) in the inviter property
signups AS (
    {signups_body}
),
invited AS (
    SELECT {sel + ',' if grouped else ''} count(DISTINCT user_key) AS invited_signups FROM signups {group}
),
joined AS (
    SELECT {coalesced}coalesce(a.active_users, 0) AS active_users, coalesce(a.inviters, 0) AS inviters,
           coalesce(a.invites, 0) AS invites, coalesce(s.invited_signups, 0) AS invited_signups
    FROM activity a FULL OUTER JOIN invited s ON {on}
)
SELECT {sel + ',' if grouped else ''} active_users{' AS users' if by_channel or not grouped else ''}, inviters, invites,
       CAST(invites AS DOUBLE) / NULLIF(active_users, 0) AS invites_per_user,
       invited_signups,
       CAST(invited_signups AS DOUBLE) / NULLIF(invites, 0) AS invite_conversion,
       (CAST(invites AS DOUBLE) / NULLIF(active_users, 0))
           * (CAST(invited_signups AS DOUBLE) / NULLIF(invites, 0)) AS k_factor
FROM joined
{'ORDER BY ' + sel if grouped else ''}
"""
    if tables is not None:
        return sql, []
    return sql, buckets_params + signups_params


def _parts_sql(p: ReferralParams, hours: bool = False) -> tuple[tuple[str, list], tuple[str, list]]:
    """``buckets`` and ``signups`` of :func:`referral_sql` as two standalone queries (with their values)."""
    sql, params = referral_sql(p, grouped=True, hours=hours)  # time buckets: every table can be read from them
    head = split_at(sql, "-- acts:")[0]   # WITH … buckets AS (…)
    n_buckets = head.count("?")
    signups = split_at(split_at(sql, "signups AS (")[1], "invited AS (")[0]
    if n_buckets + signups.count("?") != len(params):
        raise AssertionError("the buckets and sign-ups must hold every bound value of the referral query")
    return ((f"{head}\nSELECT * FROM buckets", params[:n_buckets]),
            (f"WITH {signups}\nSELECT * FROM signups", params[n_buckets:]))


class _Derived:
    """A connection on which a referral query of the given parameters reads the buckets and sign-ups
    :func:`referral_page` derived once; any other query runs as it is."""

    def __init__(self, con, p: ReferralParams, tables: tuple[str, str], hours: bool):
        self.con = con
        self.swap = {}
        # the summaries may be asked without the date range (:func:`_whole`: it holds every event, so the tables
        # hold what they need)
        asked = [p]
        if p.filters is not None and (p.filters.start is not None or p.filters.end is not None):
            asked.append(replace(p, filters=replace(p.filters, start=None, end=None)))
        for grouped, by_channel in ((True, False), (False, False), (False, True)):
            for q in asked:
                sql, params = referral_sql(q, grouped, by_channel, hours=hours)
                self.swap[sql] = (params, referral_sql(p, grouped, by_channel, tables, hours)[0])

    def execute(self, sql: str, params=None):
        params = list(params or [])
        if sql in self.swap and self.swap[sql][0] == params:
            return self.con.execute(self.swap[sql][1])
        return self.con.execute(sql, params)


def referral_page(con, params: ReferralParams | None = None) -> dict[str, pd.DataFrame]:
    """``summary`` (:func:`referral_summary`), ``per_period`` (:func:`referral`) and ``by_channel``
    (:func:`referral_by_channel`) from one pass over the events: the per-user time buckets and the
    invited sign-ups are computed once into temporary tables of this connection (dropped before returning),
    and each function's query reads them."""
    p = params or ReferralParams()

    def page(hours: bool) -> dict[str, pd.DataFrame]:
        (b_sql, b_params), (s_sql, s_params) = _parts_sql(p, hours)
        with temp_tables(con, "_referral_buckets", "_referral_signups") as tables:
            con.execute(f"CREATE OR REPLACE TEMP TABLE {tables[0]} AS {b_sql}", b_params)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {tables[1]} AS {s_sql}", s_params)
            d = _Derived(con, p, tables, hours)
            return {"summary": referral_summary(d, p), "per_period": referral(d, p),
                    "by_channel": referral_by_channel(d, p)}

    return with_hours(con, p.filters, p.timezone, page)


def _ints(df: pd.DataFrame, cols) -> pd.DataFrame:
    for c in cols:
        df[c] = df[c].astype("int64")
    return df


def referral(con, params: ReferralParams | None = None) -> pd.DataFrame:
    """``[period_start, channel, active_users, inviters, invites, invites_per_user, invited_signups,
    invite_conversion, k_factor]`` per period and acquisition channel. ``attrs["query"]`` holds the ``(SQL, bound
    values)`` that computes it (:func:`metrics.derive.query_of`): the query that ran, or within
    :func:`referral_page` the query whose first part it read from the page's temporary tables."""
    p = params or ReferralParams()

    def frame(hours: bool) -> pd.DataFrame:
        query = referral_sql(p, grouped=True, hours=hours)
        return ran(con.execute(*query).df(), query)

    df = with_hours(con, p.filters, p.timezone, frame)
    df["period_start"] = pd.to_datetime(df["period_start"]).dt.date
    return _ints(df, ["active_users", "inviters", "invites", "invited_signups"])


def _whole(con, p: ReferralParams, by_channel: bool) -> pd.DataFrame:
    """The summary query (per channel or not) as a frame. When the date range holds every stored event (as the
    dashboard's default range does) it is built without the range, and so reads each user's invites from the
    per-user rollup instead of scanning the events (:func:`metrics.derive.over_every_event`, which runs it with
    the range should a load commit in between)."""
    def frame(q: ReferralParams) -> pd.DataFrame:
        return con.execute(*referral_sql(q, grouped=False, by_channel=by_channel)).df()

    f = p.filters
    if f is None or (f.start is None and f.end is None):
        return frame(p)
    whole = replace(p, filters=replace(f, start=None, end=None))
    return over_every_event(con, lambda span: range_holds(*f.utc_range(), span), lambda: frame(whole),
                            lambda: frame(p))


def referral_summary(con, params: ReferralParams | None = None) -> pd.DataFrame:
    """One row over the whole range: ``[users, inviters, invites, invites_per_user, invited_signups,
    invite_conversion, k_factor]``."""
    p = params or ReferralParams()
    df = _whole(con, p, by_channel=False)
    if df.empty:
        df = pd.DataFrame([{"users": 0, "inviters": 0, "invites": 0, "invites_per_user": float("nan"),
                            "invited_signups": 0, "invite_conversion": float("nan"), "k_factor": float("nan")}])
    return _ints(df, ["users", "inviters", "invites", "invited_signups"])


def referral_by_channel(con, params: ReferralParams | None = None) -> pd.DataFrame:
    """:func:`referral_summary` per acquisition channel, in one pass: ``[channel, users, inviters, invites,
    invites_per_user, invited_signups, invite_conversion, k_factor]``; a channel's row equals the summary with
    the channel filter narrowed to that channel (users without a channel form a NULL row, sorted last)."""
    p = params or ReferralParams()
    return _ints(_whole(con, p, by_channel=True), ["users", "inviters", "invites", "invited_signups"])


LABELS: dict[str, dict[str, str]] = {
    "period_start": _label("Period", "周期", "Start of the day, week (Monday) or month.", "日、周（周一）或月的开始。"),
    "active_users": _label("Active users", "活跃用户", "Distinct users with any event in the period.", "周期内有任意事件的去重用户。"),
    "users": _label("Active users", "活跃用户", "Distinct users with any event in the range.", "范围内有任意事件的去重用户。"),
    "inviters": _label("Inviters", "邀请人", "Distinct users with an invite (referral-stage) event.", "有邀请（推荐阶段）事件的去重用户。"),
    "invites": _label("Invites", "邀请数", "Invite (referral-stage) events.", "邀请（推荐阶段）事件数。"),
    "invites_per_user": _label("Invites per user", "人均邀请数", "Invites divided by active users.", "邀请数除以活跃用户数。"),
    "invited_signups": _label("Invited sign-ups", "受邀注册", "Users whose sign-up names an existing user as inviter.",
                              "注册事件中邀请人指向已有用户的去重用户。"),
    "invite_conversion": _label("Invite conversion", "邀请转化率", "Invited sign-ups divided by invites.", "受邀注册除以邀请数。"),
    "k_factor": _label("K-factor", "K 因子", "Invites per user times invite conversion.", "人均邀请数乘以邀请转化率。"),
}
