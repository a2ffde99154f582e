"""Traffic (SPEC §5): page views, unique visitors, sessions, bounce rate, pages per session, duration.

Query intuition
---------------
1. **Scope.** The events in scope are those passing the global filters: the users selection
   (first-touch channel/campaign), the segment (property equalities) and the date range — events whose
   local date (in the filter's time zone) lies in ``[start, end]``.
2. **Sessions** are derived once, by :func:`session_table_sql`, and every other function reads them:
   - an event with a ``session_id`` belongs to the session ``(user, session_id)`` — a session id is
     scoped to its user, so two users sharing an id are two sessions;
   - a user's events without a ``session_id`` are ordered by time (ties by ``event_id``); a new
     session starts at the first one and whenever the gap to the previous one is **more than**
     ``session_gap`` (default 30 min). A gap of exactly 30 min stays in the session; 30 min + 1 s
     starts a new one. Events carrying a session id do not break or extend derived sessions;
   - sessions are never split at midnight or at a period boundary; a session belongs to the period of
     its first event. Only in-scope events are seen, so a session running across the edge of the
     date range is cut there;
   - session channel / campaign = those of the session's **first event** (NULL channel → ``direct``,
     NULL campaign → ``(not set)``); entry page = the page of the session's first page view.
3. **Page views** are events whose name is in ``pageview_events``. PV counts them; UV counts the
   distinct users with at least one page view in the period (a user with only other events is not a
   visitor). A week's UV is therefore not the sum of its days' UV.
4. **Breakdowns**: ``page`` = the page-view event's own page (sessions: the entry page); ``channel`` /
   ``campaign`` = the session's (first event's) value, so every page view of a session carries the
   same channel. The ``top_n`` values by PV (sessions for :func:`sessions`) over the whole range are
   kept and the rest grouped as ``Other`` (its UV is the distinct users across all those values).
5. **Session measures**: bounce rate = sessions with exactly one page view / sessions with at least
   one; pages per session = page views / sessions with at least one page view; duration = last − first
   event in seconds (0 for a single-event session), averaged and medianed over all sessions.

Periods are local calendar days, weeks (starting ``week_start``) or months in ``timezone``; only periods
with data produce rows.

Over every stored event of the selected users (no segment, a date range holding every event — the dashboard's
default — and any channel / campaign selection) with the default gap and the page-view events the database keeps
its sessions for (``store.set_pageview_events``; by default ``page_view``, ``pageview``, ``$pageview``), the
sessions are not derived at query time: every load keeps them (``traffic_sessions``, and each page view with its session's
channel and campaign in ``traffic_pageviews``) with :func:`stored_sessions_sql` / :func:`stored_pageviews_sql`,
and :func:`_read` picks those tables — the same rows, since they are this derivation over all events, and a
selection of users keeps each user's sessions whole. Over a shorter date range, :func:`traffic_page` (what the
Traffic page reads) reads them too: the range's sessions are the stored ones inside it, and those cut at its ends
are derived again from their users' events in the range (:func:`_ranged_sql`).
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import timedelta

import pandas as pd

from store.errors import UserInputError
from store.parse import check_timezone
from store.schema import DEFAULT_PAGEVIEW_EVENTS, stored_pageview_events

from .derive import one_snapshot, over_every_event, range_holds, temp_tables
from .filters import Filters, local_sql

PERIODS = ("day", "week", "month")
BREAKDOWNS = ("page", "channel", "campaign")
WEEK_STARTS = ("monday", "sunday")
NOT_SET = "(not set)"
NO_PAGE_VIEW = "(no page view)"
OTHER = "Other"

LABELS: dict[str, dict[str, str]] = {
    "pv": {"en": "Page views (PV)", "zh": "浏览量 (PV)",
           "help_en": "Number of page-view events in the period.",
           "help_zh": "周期内页面浏览事件的次数。"},
    "uv": {"en": "Unique visitors (UV)", "zh": "独立访客 (UV)",
           "help_en": "Distinct users with at least one page view in the period; a week's UV is not the sum of its days'.",
           "help_zh": "周期内至少有一次页面浏览的去重用户数；一周的 UV 不等于各天 UV 之和。"},
    "sessions": {"en": "Sessions", "zh": "会话数",
                 "help_en": "Visits: the file's session id, else a new session after 30 minutes without events.",
                 "help_zh": "访问次数：优先使用文件中的会话 ID，否则超过 30 分钟无事件即开始新会话。"},
    "bounce_rate": {"en": "Bounce rate", "zh": "跳出率",
                    "help_en": "Sessions with exactly one page view divided by sessions with at least one page view.",
                    "help_zh": "仅有一次页面浏览的会话数 ÷ 至少有一次页面浏览的会话数。"},
    "pages_per_session": {"en": "Pages per session", "zh": "每会话页数",
                          "help_en": "Page views divided by sessions with at least one page view.",
                          "help_zh": "页面浏览量 ÷ 至少有一次页面浏览的会话数。"},
    "avg_duration_s": {"en": "Average session duration (s)", "zh": "平均会话时长（秒）",
                       "help_en": "Mean of last minus first event time per session; single-event sessions count as 0 s.",
                       "help_zh": "每个会话最后与最早事件的时间差的平均值；仅一个事件的会话计为 0 秒。"},
    "median_duration_s": {"en": "Median session duration (s)", "zh": "会话时长中位数（秒）",
                          "help_en": "Median of last minus first event time per session.",
                          "help_zh": "每个会话最后与最早事件时间差的中位数。"},
    "entries": {"en": "Entries", "zh": "入口次数",
                "help_en": "Sessions whose first page view was this page.",
                "help_zh": "首次页面浏览为该页面的会话数。"},
    "period_start": {"en": "Period start", "zh": "周期开始",
                     "help_en": "First local day of the day, week or month.",
                     "help_zh": "日、周或月的第一天（本地时间）。"},
    "page": {"en": "Page", "zh": "页面", "help_en": "The page of the page-view event (sessions: the entry page).",
             "help_zh": "页面浏览事件的页面（会话：入口页面）。"},
    "channel": {"en": "Session channel", "zh": "会话渠道",
                "help_en": "The channel of the session's first event; none is 'direct'.",
                "help_zh": "会话第一个事件的渠道；没有则为 direct。"},
    "campaign": {"en": "Session campaign", "zh": "会话活动",
                 "help_en": "The campaign of the session's first event.",
                 "help_zh": "会话第一个事件的活动。"},
}


@dataclass(frozen=True)
class TrafficParams:
    """What to count and how: periods, breakdown, which events are page views, the session gap."""

    period: str = "day"
    breakdown: str | None = None
    pageview_events: tuple[str, ...] = DEFAULT_PAGEVIEW_EVENTS
    session_gap: timedelta = timedelta(minutes=30)
    timezone: str = "UTC"
    week_start: str = "monday"
    filters: Filters | None = None
    top_n: int = 20

    def __post_init__(self):
        if self.period not in PERIODS:
            raise UserInputError(f"Unknown period '{self.period}'; choose day, week or month.")
        if self.breakdown is not None and self.breakdown not in BREAKDOWNS:
            raise UserInputError(f"Traffic can be broken down by page, channel or campaign, not '{self.breakdown}'.")
        if isinstance(self.pageview_events, str):
            object.__setattr__(self, "pageview_events", (self.pageview_events,))
        names = tuple(str(n) for n in self.pageview_events if n is not None and str(n).strip())
        if not names:
            raise UserInputError("Name at least one page-view event (e.g. page_view).")
        object.__setattr__(self, "pageview_events", names)
        if not isinstance(self.session_gap, timedelta) or self.session_gap <= timedelta(0):
            raise UserInputError("The session gap must be a positive duration, e.g. 30 minutes.")
        object.__setattr__(self, "timezone", check_timezone(self.timezone))
        if self.week_start not in WEEK_STARTS:
            raise UserInputError(f"Weeks start on monday or sunday, not '{self.week_start}'.")
        if self.filters is not None and not isinstance(self.filters, Filters):
            raise UserInputError("filters must be a Filters object.")
        if self.filters is not None and check_timezone(self.filters.timezone) != self.timezone:
            raise UserInputError(f"The report time zone ({self.timezone}) differs from the filters' "
                                 f"({self.filters.timezone}); use one time zone for both.")
        if not isinstance(self.top_n, int) or self.top_n < 1:
            raise UserInputError("top_n must be a whole number of at least 1.")


def period_sql(column: str, period: str, tz: str, week_start: str = "monday") -> str:
    """SQL (DATE) for the local calendar period containing the UTC timestamp ``column``."""
    local = local_sql(column, tz)
    if period == "day":
        return f"CAST({local} AS DATE)"
    if period == "month":
        return f"CAST(date_trunc('month', {local}) AS DATE)"
    if week_start == "sunday":
        return f"CAST(date_trunc('week', {local} + INTERVAL 1 DAY) - INTERVAL 1 DAY AS DATE)"
    return f"CAST(date_trunc('week', {local}) AS DATE)"


def _scope_sql(p: TrafficParams, restrict: str | None = None) -> tuple[str, list]:
    """Predicate over ``events e``: filters (segment, users), the date range and ``restrict`` (SQL over ``e``
    binding nothing)."""
    f = p.filters or Filters(timezone=p.timezone)
    where, params = f.events_sql("e")
    conds, values = f.time_sql("e.event_time")
    return " AND ".join([where] + conds + ([restrict] if restrict else [])), params + values


def _with_sql(p: TrafficParams, tagged_table: str | None = None, sessions_table: str | None = None,
              stored: bool = False, restrict: str | None = None) -> tuple[str, list]:
    """The shared CTEs: ``ev`` (in-scope events, page views flagged), ``tagged`` (each event with its
    session key ``(session_id, session_no)``), ``sessions`` (one row each) and ``sev`` (events with
    their session's channel, campaign and entry page — only breakdowns of page views by channel or
    campaign read it).

    Events carrying a session id need no sort at all; only id-less events go through the gap passes
    (a LAG to mark starts, a running SUM to number sessions). Sessions are then one GROUP BY: the
    first event's channel / campaign and the first page view's page are ``min_by`` the
    (time, event_id) pair (``min_by`` / ``arg_min`` exist in DuckDB, ClickHouse, Trino, Spark and
    Snowflake; a window numbering per session would need a sort by user and session id string,
    several times slower).

    ``tagged_table`` / ``sessions_table`` name tables already holding ``tagged`` / ``sessions`` for the same
    parameters (:func:`traffic_page` derives them once for several queries): the CTEs then read them; with a
    ``tagged_table`` nothing is bound.

    ``stored``: the CTEs read the rollup kept by every load instead (:func:`stored_sessions_sql`; only valid
    when :func:`_stored_ok` says so), the selected users' rows when the filters select users: ``ev`` and
    ``sev`` then hold the page views alone, which is all any query reads of them. ``restrict`` (SQL over
    ``events e``) narrows the events in scope, for the load.
    """
    if stored:
        users, users_params = (p.filters or Filters()).user_keys_sql("user_key")
        return _stored_ctes(f"traffic_pageviews WHERE {users}", f"traffic_sessions WHERE {users}"), users_params * 2
    sessions_body = f"SELECT * FROM {sessions_table}" if sessions_table is not None else _SESSIONS_SELECT
    if tagged_table is not None:
        sessions_cte = sessions_body
        return f"""
WITH tagged AS (SELECT * FROM {tagged_table}),
ev AS (SELECT event_id, user_key, event_time, session_id, page, channel, campaign, is_pv FROM tagged),
sessions AS ({sessions_cte}),
{_SEV_CTE}""", []
    scope, params = _scope_sql(p, restrict)
    pv_marks = ", ".join("?" * len(p.pageview_events))
    sql = f"""
WITH ev AS NOT MATERIALIZED (  -- events in scope (filters + date range), page views flagged; read twice,
                              -- each read a filtered scan (cheaper than keeping every column of every event)
    SELECT e.event_id, e.user_key, e.event_time, e.session_id, e.page,
           coalesce(e.channel, 'direct') AS channel, coalesce(e.campaign, '{NOT_SET}') AS campaign,
           CASE WHEN e.event_name IN ({pv_marks}) THEN 1 ELSE 0 END AS is_pv
    FROM events e
    WHERE {scope}
),
marked AS (              -- id-less events: a session starts at the first one and after a gap > session_gap
    SELECT ev.*,
           CASE WHEN lag(event_time) OVER w IS NULL THEN 1
                WHEN event_time - lag(event_time) OVER w > ? THEN 1
                ELSE 0 END AS starts
    FROM ev
    WHERE session_id IS NULL
    WINDOW w AS (PARTITION BY user_key ORDER BY event_time, event_id)
),
tagged AS (              -- every event in scope with its session: file session id, or derived number
    SELECT ev.*, CAST(NULL AS BIGINT) AS session_no FROM ev WHERE session_id IS NOT NULL
    UNION ALL
    SELECT event_id, user_key, event_time, session_id, page, channel, campaign, is_pv,
           CAST(sum(starts) OVER (PARTITION BY user_key ORDER BY event_time, event_id
                                  ROWS BETWEEN UNBOUNDED PRECEDING AND CURRENT ROW) AS BIGINT)
    FROM marked
),
sessions AS (            -- one row per session: (user, file session id) or (user, derived number)
    {sessions_body}
),
{_SEV_CTE}"""
    return sql, list(p.pageview_events) + params + [p.session_gap]  # in the order the ? appear


def _stored_ctes(pageviews: str, sessions: str) -> str:
    """The shared CTEs over rows shaped as the rollups' (``ev`` and ``sev`` the page views, ``sessions``):
    ``pageviews`` / ``sessions`` are what follows ``FROM`` in a query of the rollups' columns."""
    return f"""
WITH ev AS NOT MATERIALIZED (  -- the page views with their session's channel and campaign (rollup rows); each
                              -- read a scan (cheaper than copying them for a query reading twice)
    SELECT user_key, event_time, page, 1 AS is_pv, channel AS s_channel, campaign AS s_campaign
    FROM {pageviews}
),
sessions AS NOT MATERIALIZED (  -- the sessions (rollup rows)
    SELECT {_STORED_COLUMNS} FROM {sessions}
),
sev AS NOT MATERIALIZED (SELECT * FROM ev)"""


_SESSIONS_SELECT = f"""SELECT user_key, session_id, session_no, session_start, session_end,
           first_event.channel AS channel, first_event.campaign AS campaign,
           entry_page, events, pageviews, duration_s
    FROM (SELECT user_key, session_id, session_no,
                 min(event_time) AS session_start, max(event_time) AS session_end,
                 -- channel and campaign of the first event: one min_by (each costs a struct sort key per event)
                 min_by({{'channel': channel, 'campaign': campaign}}, (event_time, event_id)) AS first_event,
                 coalesce(min_by(coalesce(page, '{NOT_SET}'), CASE WHEN is_pv = 1 THEN (event_time, event_id) END),
                          '{NO_PAGE_VIEW}') AS entry_page,
                 count(*) AS events, CAST(sum(is_pv) AS BIGINT) AS pageviews,
                 date_diff('microsecond', min(event_time), max(event_time)) / 1000000.0 AS duration_s
          FROM tagged
          GROUP BY user_key, session_id, session_no)"""
_SEV_CTE = """sev AS (                 -- each event with its session's first-event channel/campaign and entry page
    SELECT t.*, s.channel AS s_channel, s.campaign AS s_campaign, s.entry_page AS s_entry
    FROM tagged t
    JOIN sessions s ON s.user_key = t.user_key AND s.session_id IS NOT DISTINCT FROM t.session_id
                   AND s.session_no IS NOT DISTINCT FROM t.session_no
)"""


# The sessions kept by every load (store.load): the default session gap and page-view events, every stored event — a
# database that stores page-view events of its own (store.set_pageview_events) keeps them for those names instead.
STORED = TrafficParams()
_STORED_COLUMNS = ("user_key, session_id, session_no, session_start, session_end, channel, campaign, entry_page, "
                   "events, pageviews, duration_s")


def stored_sessions_sql(restrict: str | None = None, p: TrafficParams = STORED) -> tuple[str, list]:
    """The rows of the ``traffic_sessions`` rollup: the ``sessions`` CTE for ``p`` (:data:`STORED`, or it with the
    database's page-view events) — over every event, or the events ``restrict`` (SQL over ``events e``) keeps,
    which must be all the events of some users; with filters in ``p`` (see :func:`_stored_ok`), the same rows for
    its events in scope."""
    with_sql, params = _with_sql(p, restrict=restrict)
    return f"{with_sql}\nSELECT {_STORED_COLUMNS} FROM sessions", params


def stored_pageviews_sql(restrict: str | None = None, sessions: str = "traffic_sessions",
                         restrict_params: tuple | list = (),
                         names: tuple[str, ...] = DEFAULT_PAGEVIEW_EVENTS) -> tuple[str, list]:
    """The rows of the ``traffic_pageviews`` rollup: each page view (an event named one of ``names``) with its session's
    channel and campaign, read from ``sessions`` (already holding the sessions of these users — the load passes a
    table of the sessions it has just derived again, so that the join does not read every stored one): an event
    with a session id belongs to the session of that id; one without, to the derived session whose first and last
    events enclose it (a user's derived sessions never overlap — a gap separates them). ``restrict`` (SQL over
    ``events e``, binding ``restrict_params``) keeps some events: those the sessions were derived from."""
    marks = ", ".join("?" * len(names))
    extra = f" AND {restrict}" if restrict else ""
    sql = f"""
SELECT e.user_key, e.event_time, e.page, s.channel, s.campaign
FROM events e JOIN {sessions} s ON s.user_key = e.user_key AND s.session_id = e.session_id
WHERE e.event_name IN ({marks}){extra}
UNION ALL
SELECT e.user_key, e.event_time, e.page, s.channel, s.campaign
FROM events e JOIN {sessions} s ON s.user_key = e.user_key AND s.session_id IS NULL
     AND e.event_time >= s.session_start AND e.event_time <= s.session_end
WHERE e.session_id IS NULL AND e.event_name IN ({marks}){extra}"""
    return sql, (list(names) + list(restrict_params)) * 2


def _stored_ok(p: TrafficParams, names: tuple[str, ...] | None, sessions: bool = True) -> bool:
    """Whether ``p`` counts what the rollups hold — no segment (a channel / campaign selection keeps whole
    users, so it reads their rows), and (when sessions are read) the default session gap and the page-view
    events ``names`` the rollups are kept for (None: read none of them); the date range is checked by
    :func:`_holds_every_event`."""
    if p.filters is not None and p.filters.segment:
        return False
    return not sessions or (names is not None and p.session_gap == STORED.session_gap
                            and set(p.pageview_events) == set(names))


def _as_stored(con, p: TrafficParams, names: tuple[str, ...]) -> TrafficParams:
    """``p`` with the rollups' page-view events ``names`` when its own name the same stored events — the names in
    one list but not the other are carried by no stored event (a list trimmed to the names the data uses:
    ``page_view`` alone); else ``p`` itself. Events are only ever added, so a caller that finds the names still
    unstored after its queries knows that every query saw none of them."""
    differ = sorted(set(p.pageview_events) ^ set(names))
    if not differ:
        return p
    # user_events is stored sorted by event name: the IN list reads the few row groups that could hold them
    stored = con.execute(f"SELECT EXISTS (SELECT 1 FROM user_events WHERE event_name IN ({', '.join('?' * len(differ))}))",
                         differ).fetchone()[0]
    return p if stored else replace(p, pageview_events=names)


def _same_events(con, p: TrafficParams, compute, sessions: bool = True):
    """``compute(p, names)``, ``names`` being the page-view events the rollups are kept for — or ``compute`` of
    ``p`` with those names when they name the same stored events as ``p``'s (:func:`_as_stored`) and that alone
    kept ``p`` off the rollups; should a load bring one of the other names meanwhile, ``compute(p, names)`` again.
    Should the rollups be kept for other names by the end (``store.set_pageview_events`` committing meanwhile),
    ``compute(p, None)``: over the events, without the rollups' sessions."""
    if not sessions:
        return compute(p, None)
    names = stored_pageview_events(con)
    q = _as_stored(con, p, names) if _stored_ok(replace(p, pageview_events=names), names) else p
    out = compute(q, names)
    if q is not p and _as_stored(con, p, names) is p:   # a load brought one of p's other names meanwhile
        out = compute(p, names)
    return out if stored_pageview_events(con) == names else compute(p, None)


def _holds_every_event(p: TrafficParams, span: tuple) -> bool:
    return range_holds(*(p.filters or Filters(timezone=p.timezone)).utc_range(), span)


def _read(con, p: TrafficParams, build, sessions: bool = True) -> pd.DataFrame:
    """``build(p)``'s query as a frame — or ``build(p, stored=True)``'s, over the rollups, when ``p`` counts
    what they hold and its date range holds every stored event (as the dashboard's default range does): the
    same result without deriving the sessions (:func:`metrics.derive.over_every_event`, which also runs the
    query over the events should a load commit in between). Page-view events naming the same stored events as
    the rollups' count what they hold (:func:`_same_events`)."""
    return _same_events(con, p, lambda q, names: _read_as(con, q, build, sessions, names), sessions)


def _read_as(con, p: TrafficParams, build, sessions: bool, names: tuple[str, ...] | None) -> pd.DataFrame:
    def scanned() -> pd.DataFrame:
        return con.execute(*build(p)).df()

    if not _stored_ok(p, names, sessions):
        return scanned()
    return over_every_event(con, lambda span: _holds_every_event(p, span),
                            lambda: con.execute(*build(p, stored=True)).df(), scanned)


def session_table_sql(p: TrafficParams, stored: bool = False) -> tuple[str, list]:
    """One row per session: user_key, session_key, session_start, session_end (UTC), channel, campaign,
    entry_page, events, pageviews, duration_s — the one derivation every traffic number reads."""
    with_sql, params = _with_sql(p, stored=stored)
    return with_sql + """,
keyed_sessions AS (      -- the public session key: 'id:' + file session id, or 'gap:' + derived number
    SELECT user_key,
           CASE WHEN session_id IS NOT NULL THEN 'id:' || session_id
                ELSE 'gap:' || CAST(session_no AS VARCHAR) END AS session_key,
           session_start, session_end, channel, campaign, entry_page, events, pageviews, duration_s
    FROM sessions
)
SELECT * FROM keyed_sessions ORDER BY user_key, session_start, session_key""", params


def session_table(con, p: TrafficParams) -> pd.DataFrame:
    return _read(con, p, session_table_sql)


def _topped(dim: str, p: TrafficParams, source: str, weight: str) -> str:
    """CTE ``topped`` over ``source``: ``dim`` kept for the top_n values by ``weight``, else 'Other'."""
    if p.breakdown is None:
        return f"topped AS (SELECT {source}.*, NULL AS dim FROM {source})"
    return f"""top AS (           -- the top_n breakdown values over the whole range
    SELECT {dim} AS dim FROM {source} GROUP BY {dim} ORDER BY {weight} DESC, {dim} LIMIT {int(p.top_n)}
),
topped AS (              -- values outside the top grouped as Other
    SELECT {source}.*, CASE WHEN {dim} IN (SELECT dim FROM top) THEN {dim} ELSE '{OTHER}' END AS dim
    FROM {source}
)"""


def pv_uv_sql(p: TrafficParams, stored: bool = False) -> tuple[str, list]:
    with_sql, params = _with_sql(p, stored=stored)
    dim = {"page": f"coalesce(page, '{NOT_SET}')", "channel": "s_channel", "campaign": "s_campaign"}.get(p.breakdown)
    src = "sev" if p.breakdown in ("channel", "campaign") else "ev"   # only these need the session
    period = period_sql("event_time", p.period, p.timezone, p.week_start)
    cols = "period_start" + (", dim" if p.breakdown else "")
    sql = f"""{with_sql},
pvs AS (                 -- page views with their period
    SELECT {src}.*, {period} AS period_start FROM {src} WHERE is_pv = 1
),
{_topped(dim, p, 'pvs', 'count(*)')},
visitors AS (            -- each visitor's page views per period (and value): a visitor is one row here, so counting
                         -- rows counts distinct users (cheaper than count(DISTINCT user_key) over the page views)
    SELECT {cols}, user_key, count(*) AS views FROM topped GROUP BY {cols}, user_key
)
SELECT {cols}, CAST(sum(views) AS BIGINT) AS pv, count(*) AS uv
FROM visitors
GROUP BY {cols}
ORDER BY {cols}"""
    return sql, params


def _frame(df: pd.DataFrame, p: TrafficParams, int_cols: tuple[str, ...]) -> pd.DataFrame:
    if "dim" in df.columns:
        if p.breakdown is None:
            df = df.drop(columns="dim")
        else:
            df = df.rename(columns={"dim": p.breakdown})
    for c in int_cols:
        if c in df.columns:
            df[c] = df[c].astype("int64")
    return df.reset_index(drop=True)


def pv_uv(con, p: TrafficParams) -> pd.DataFrame:
    """Per period (and breakdown value): ``period_start, [page|channel|campaign], pv, uv``."""
    return _frame(_read(con, p, pv_uv_sql), p, ("pv", "uv"))


_SESSION_MEASURES = """count(*) AS sessions,
       sum(CASE WHEN pageviews = 1 THEN 1 ELSE 0 END) * 1.0
           / NULLIF(sum(CASE WHEN pageviews >= 1 THEN 1 ELSE 0 END), 0) AS bounce_rate,
       sum(pageviews) * 1.0 / NULLIF(sum(CASE WHEN pageviews >= 1 THEN 1 ELSE 0 END), 0) AS pages_per_session,
       avg(duration_s) AS avg_duration_s"""


def sessions_sql(p: TrafficParams, stored: bool = False) -> tuple[str, list]:
    with_sql, params = _with_sql(p, stored=stored)
    dim = {"page": "entry_page", "channel": "channel", "campaign": "campaign"}.get(p.breakdown)
    period = period_sql("session_start", p.period, p.timezone, p.week_start)
    cols = "period_start" + (", dim" if p.breakdown else "")
    sql = f"""{with_sql},
sess AS (                -- sessions with the period of their first event
    SELECT sessions.*, {period} AS period_start FROM sessions
),
{_topped(dim, p, 'sess', 'count(*)')}
SELECT {cols}, {_SESSION_MEASURES},
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_s) AS median_duration_s
FROM topped
GROUP BY {cols}
ORDER BY {cols}"""
    return sql, params


def sessions(con, p: TrafficParams) -> pd.DataFrame:
    """Per period of the session's first event (and breakdown value): ``period_start, [page|channel|campaign],
    sessions, bounce_rate, pages_per_session, avg_duration_s, median_duration_s``.

    The page breakdown uses the entry page (``(no page view)`` for sessions without one)."""
    return _frame(_read(con, p, sessions_sql), p, ("sessions",))


def top_pages_sql(p: TrafficParams, stored: bool = False) -> tuple[str, list]:
    with_sql, params = _with_sql(p, stored=stored)
    sql = f"""{with_sql},
page_views AS (          -- page views and visitors per page
    SELECT coalesce(page, '{NOT_SET}') AS page, count(*) AS pv, count(DISTINCT user_key) AS uv
    FROM ev WHERE is_pv = 1 GROUP BY 1
),
entries AS (             -- sessions entering on each page, and how many of them bounced
    SELECT entry_page AS page, count(*) AS entries,
           sum(CASE WHEN pageviews = 1 THEN 1 ELSE 0 END) AS bounces
    FROM sessions WHERE pageviews >= 1 GROUP BY 1
)
SELECT v.page, v.pv, v.uv, coalesce(n.entries, 0) AS entries,
       n.bounces * 1.0 / NULLIF(n.entries, 0) AS bounce_rate
FROM page_views v LEFT JOIN entries n ON n.page = v.page
ORDER BY v.pv DESC, v.page
LIMIT {int(p.top_n)}"""
    return sql, params


def top_pages(con, p: TrafficParams) -> pd.DataFrame:
    """The ``top_n`` pages by PV: ``page, pv, uv, entries, bounce_rate`` (bounce rate of the sessions
    entering on the page; NULL when none did)."""
    return _frame(_read(con, p, top_pages_sql), p, ("pv", "uv", "entries"))


def traffic_summary_sql(p: TrafficParams, stored: bool = False) -> tuple[str, list]:
    with_sql, params = _with_sql(p, stored=stored)
    sql = f"""{with_sql},
visits AS (              -- page views and visitors over the whole range
    SELECT count(*) AS pv, count(DISTINCT user_key) AS uv FROM ev WHERE is_pv = 1
),
session_totals AS (      -- session measures over the whole range
    SELECT {_SESSION_MEASURES} FROM sessions
)
SELECT v.pv, v.uv, s.sessions, s.bounce_rate, s.pages_per_session, s.avg_duration_s
FROM visits v CROSS JOIN session_totals s"""
    return sql, params


def traffic_summary(con, p: TrafficParams) -> pd.DataFrame:
    """One row over the filtered range: ``pv, uv, sessions, bounce_rate, pages_per_session, avg_duration_s``."""
    return _frame(_read(con, p, traffic_summary_sql), p, ("pv", "uv", "sessions"))


def visits_sql(p: TrafficParams, stored: bool = False) -> tuple[str, list]:
    """PV and UV over the whole range — the part of :func:`traffic_summary_sql` that needs no sessions.
    ``stored``: from the per-user event rollup ``user_events`` (valid over every stored event of the selected
    users only)."""
    pv_marks = ", ".join("?" * len(p.pageview_events))
    if stored:
        users, users_params = (p.filters or Filters()).user_keys_sql("user_key")
        return f"""
SELECT CAST(coalesce(sum(events), 0) AS BIGINT) AS pv, count(DISTINCT user_key) AS uv
FROM user_events
WHERE event_name IN ({pv_marks}) AND {users}""", list(p.pageview_events) + users_params
    scope, params = _scope_sql(p)
    sql = f"""
SELECT count(*) AS pv, count(DISTINCT e.user_key) AS uv
FROM events e
WHERE {scope} AND e.event_name IN ({pv_marks})"""
    return sql, params + list(p.pageview_events)


def visits(con, p: TrafficParams) -> pd.DataFrame:
    """One row: ``pv, uv`` over the filtered range (equal to :func:`traffic_summary`'s, without deriving
    sessions — for a page that shows only visitors)."""
    return _frame(_read(con, p, visits_sql, sessions=False), p, ("pv", "uv"))


class _Derived:
    """A connection for the public traffic functions whose queries read the sessions :func:`traffic_page`
    derived once: a query that starts with the shared CTEs of the same parameters (and binds the same values)
    has them replaced by reads of the temporary tables; any other query runs as it is."""

    def __init__(self, con, with_sql: str, params: list, head: str, head_params: list):
        self.con, self.with_sql, self.params, self.head, self.head_params = con, with_sql, params, head, head_params

    def execute(self, sql: str, params=None):
        if sql.startswith(self.with_sql) and list(params or []) == self.params:
            return self.con.execute(self.head + sql[len(self.with_sql):], self.head_params)
        return self.con.execute(sql, params or [])


PAGE_PARTS = ("summary", "pv_uv", "sessions", "top_pages", "pv_uv_breakdown", "sessions_breakdown")


def traffic_page(con, p: TrafficParams, breakdown: str = "channel", with_top_pages: bool = True
                 ) -> dict[str, pd.DataFrame]:
    """:func:`_traffic_page`, read off the rollups also when ``p``'s page-view events name the same stored events
    as theirs (:func:`_same_events`)."""
    return _same_events(con, p, lambda q, names: _traffic_page(con, q, breakdown, with_top_pages, names))


def _traffic_page(con, p: TrafficParams, breakdown: str = "channel", with_top_pages: bool = True,
                  names: tuple[str, ...] | None = None) -> dict[str, pd.DataFrame]:
    """Everything the Traffic page shows, from one derivation of the sessions: ``summary``
    (:func:`traffic_summary`), ``pv_uv``, ``sessions``, ``top_pages`` (unless not ``with_top_pages``) for ``p``
    and ``pv_uv_breakdown`` / ``sessions_breakdown`` for ``p`` broken down by ``breakdown`` — each frame
    computed by its own function, so equal to what it returns. The sessions (and, when some events lack a
    session id, the in-scope events with their session key) are computed once into temporary tables of this
    connection (dropped before returning), and the functions' queries read those instead of deriving them
    again. When ``p`` counts what the load's session rollups hold (:func:`_read`), every function reads them
    and nothing is derived; when it differs from them only by a date range short of the stored events, the
    functions read them too, but for the users with a session cut at an end of the range, whose sessions and page
    views are derived again from their events in the range (:func:`_ranged_sql`)."""
    by = replace(p, breakdown=breakdown)

    def frames(c) -> dict[str, pd.DataFrame]:
        out = {"summary": traffic_summary(c, p), "pv_uv": pv_uv(c, p), "sessions": sessions(c, p)}
        if with_top_pages:
            out["top_pages"] = top_pages(c, p)
        out.update(pv_uv_breakdown=pv_uv(c, by), sessions_breakdown=sessions(c, by))
        return out

    def derived() -> dict[str, pd.DataFrame]:
        with_sql, params = _with_sql(p)
        tagged, sess = "_traffic_tagged", "_traffic_sessions"
        # Events without a session id go through window passes worth keeping; events with one are only a
        # filtered scan away, cheaper to read again than to copy.
        scope, scope_params = _scope_sql(p)
        gaps = con.execute(f"SELECT count(*) FROM events e WHERE {scope} AND e.session_id IS NULL",
                           scope_params).fetchone()[0]
        with temp_tables(con, tagged, sess):
            if gaps:
                con.execute(f"CREATE OR REPLACE TEMP TABLE {tagged} AS {with_sql} SELECT * FROM tagged", params)
            head, head_params = _with_sql(p, tagged_table=tagged) if gaps else (with_sql, params)
            con.execute(f"CREATE OR REPLACE TEMP TABLE {sess} AS {head} SELECT * FROM sessions", head_params)
            head, head_params = _with_sql(p, tagged_table=tagged if gaps else None, sessions_table=sess)
            return frames(_Derived(con, with_sql, params, head, head_params))

    def ranged() -> dict[str, pd.DataFrame]:
        # A date range short of the stored events: the range's sessions are the stored sessions lying inside it,
        # plus the in-range part of each stored session running across one of its ends — a session cut at the
        # edge (see _ranged_sql). The users with such a session get their sessions and page views derived from
        # their events in the range; every other user's are read off the rollups. One snapshot: the rows read
        # off the rollups and the events derived again are of the same loads.
        with_sql, params = _with_sql(p)
        with temp_tables(con, *_CUT_TABLES), one_snapshot(con):
            head, head_params = _ranged_sql(con, p)
            return frames(_Derived(con, with_sql, params, head, head_params))

    if not _stored_ok(p, names):
        return derived()
    # every function reads the rollups (over a range, with the few sessions cut at its ends derived again)
    return over_every_event(con, lambda span: _holds_every_event(p, span), lambda: frames(con), ranged)


_CUT_TABLES = ("_traffic_cut_users", "_traffic_cut_sessions", "_traffic_cut_pageviews")


def _ranged_sql(con, p: TrafficParams) -> tuple[str, list]:
    """Shared CTEs (``ev``, ``sessions``, ``sev`` as :func:`_with_sql` makes them with ``stored=True``) for ``p``'s
    date range, which :func:`_stored_ok` allows, read off the rollups. Creates the temporary tables
    :data:`_CUT_TABLES` they read; the caller drops them.

    Deriving over the range's events cuts a stored session only where it runs across an end of the range: a stored
    session lying inside the range holds only in-range events, and is derived from them unchanged (a gap-derived
    one is separated from its neighbours by more than the gap, which dropping events outside the range cannot
    shrink); one outside it has no event in scope; one running across ``start`` or ``end`` (first event before
    the edge, last at or after it) keeps its in-range events, as one session (those of one session id; or a
    run of id-less events no gap breaks) whose first event, channel, entry page and counts may differ. Such
    sessions are few — those open at the two instants — so their users' sessions and page views are derived from
    the events (the traffic metrics' own derivation, restricted to those users); for every other user each stored
    session starting in the range lies inside it, and each stored page view in the range belongs to one of those."""
    f = p.filters or Filters(timezone=p.timezone)
    lo, hi = f.utc_range()
    users, users_params = f.user_keys_sql("user_key")
    edges = [t for t in (lo, hi) if t is not None]
    open_at = " OR ".join(["(session_start < ? AND session_end >= ?)"] * len(edges)) or "FALSE"
    cut, cut_sessions, cut_pageviews = _CUT_TABLES
    con.execute(f"CREATE OR REPLACE TEMP TABLE {cut} AS SELECT DISTINCT user_key FROM traffic_sessions "
                f"WHERE {users} AND ({open_at})", users_params + [v for t in edges for v in (t, t)])
    mine = f"e.user_key IN (SELECT user_key FROM {cut})"
    sql, params = stored_sessions_sql(mine, p)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {cut_sessions} AS {sql}", params)
    conds, values = f.time_sql("e.event_time")
    sql, params = stored_pageviews_sql(" AND ".join([mine] + conds), cut_sessions, values, p.pageview_events)
    con.execute(f"CREATE OR REPLACE TEMP TABLE {cut_pageviews} AS {sql}", params)
    views, view_values = f.time_sql("event_time")
    inside, inside_values = f.time_sql("session_start")
    others = f"user_key NOT IN (SELECT user_key FROM {cut})"
    # the range's page views and sessions: the rollups' rows (those starting in it), but for the users with a session
    # cut at an edge of the range, whose rows are derived again
    return _stored_ctes(
        f"""(SELECT user_key, event_time, page, channel, campaign FROM traffic_pageviews
          WHERE {" AND ".join([users, others] + views)}
          UNION ALL
          SELECT user_key, event_time, page, channel, campaign FROM {cut_pageviews})""",
        f"""(SELECT {_STORED_COLUMNS} FROM traffic_sessions
          WHERE {" AND ".join([users, others] + inside)}
          UNION ALL
          SELECT {_STORED_COLUMNS} FROM {cut_sessions})"""
    ), users_params + view_values + users_params + inside_values
