"""AARRR stages and ownership (SPEC §3): the editable stage map, the stage summary, revenue per user.

Query intuition
---------------
``stage_map`` says which stage each event name belongs to (guessed from the name at load time,
editable here). The summary follows one cohort — the **acquired users** — through the stages:

- **Awareness** (marketing): impressions and clicks summed from ``spend`` rows dated in the range
  (``users`` is NULL; ``value`` = impressions, ``clicks`` = clicks). The users selection filters spend
  rows by channel/campaign; the segment does not apply to spend.
- **Acquisition** (marketing): users whose ``first_seen`` (over all data) falls on a local date in the
  range, by first-touch channel/campaign; with a segment, only users with at least one event in it.
- **Activation** (operations): acquired users with an activation-stage event at ``t`` with
  ``first_seen <= t <= first_seen + activation_days`` (inclusive, an absolute duration).
- **Retention** (operations): acquired users with an event in the rolling period
  ``[first_seen + k·len, first_seen + (k+1)·len)`` (len 1, 7 or 30 days; default week 1 =
  ``[first_seen + 7 d, first_seen + 14 d)``). Any event counts (``retention_event="any"``) or only
  retention-stage events (``"stage"``). ``value`` = users whose period had started by ``data_end``
  (default: the last event loaded) — the others cannot have been retained yet.
- **Revenue** (operations): acquired users with at least one event whose ``revenue > 0`` — any event
  name: the revenue column is the money, whatever the stage map says. Revenue = the net sum of
  ``revenue`` (refunds, as negative revenue, subtract); GMV = the sum of positive revenue only;
  ARPU = revenue / acquired users; ARPPU = revenue / paying users. A user whose purchase was
  refunded still counts as paying.
- **Referral** (operations): acquired users with a referral-stage event (any time); value = how many
  such events.

The range selects acquired users only: their later activity counts even after the range end.
``rate_of_acquired`` = users / acquired users. Breakdowns use the first-touch channel or campaign
(NULL campaign = no campaign; spend rows with campaign '' are the channel-level spend).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

import pandas as pd

from store import schema
from store.errors import UserInputError
from store.parse import check_timezone
from store.stages import STAGES, guess_stage_sql

from .economics import money_sql, returned_sql, staged_sql
from .filters import Filters, local_sql

STAGE_ORDER = ("awareness", "acquisition", "activation", "retention", "revenue", "referral")
OWNERS = {"awareness": "marketing", "acquisition": "marketing", "activation": "operations",
          "retention": "operations", "revenue": "operations", "referral": "operations"}
RETENTION_PERIOD_DAYS = {"day": 1, "week": 7, "month": 30}
BREAKDOWNS = ("channel", "campaign")

LABELS: dict[str, dict[str, str]] = {
    "awareness": {"en": "Awareness", "zh": "认知",
                  "help_en": "Impressions and clicks from the ad-spend file for the range.",
                  "help_zh": "范围内广告投放文件中的曝光与点击。"},
    "acquisition": {"en": "Acquisition", "zh": "获客",
                    "help_en": "New users: first seen in the range, by first-touch channel or campaign.",
                    "help_zh": "新用户：首次出现在所选范围内，按首次触达渠道或活动。"},
    "activation": {"en": "Activation", "zh": "激活",
                   "help_en": "Acquired users doing an activation event within 7 days of first seen.",
                   "help_zh": "首次出现后 7 天内完成激活事件的新用户。"},
    "retention": {"en": "Retention", "zh": "留存",
                  "help_en": "Acquired users active again in week 1 after first seen (days 7 to 14).",
                  "help_zh": "首次出现后第 1 周（第 7 至 14 天）再次活跃的新用户。"},
    "revenue": {"en": "Revenue", "zh": "收入",
                "help_en": "Acquired users with revenue above zero; as an amount, their net revenue (refunds subtracted).",
                "help_zh": "产生正收入的新用户；作为金额时为其净收入（已扣除退款）。"},
    "referral": {"en": "Referral", "zh": "推荐",
                 "help_en": "Acquired users doing a referral event (invite, share, refer).",
                 "help_zh": "完成推荐事件（邀请、分享、推荐）的新用户。"},
    "stage": {"en": "Stage", "zh": "阶段", "help_en": "The AARRR stage.", "help_zh": "AARRR 阶段。"},
    "owner": {"en": "Owner", "zh": "负责团队", "help_en": "The team that owns the stage: marketing or operations.",
              "help_zh": "负责该阶段的团队：市场或运营。"},
    "users": {"en": "Users", "zh": "用户数", "help_en": "Acquired users who reached the stage.",
              "help_zh": "到达该阶段的新用户数。"},
    "rate_of_acquired": {"en": "Share of acquired users", "zh": "占新用户比例",
                         "help_en": "Users at the stage divided by acquired users.",
                         "help_zh": "该阶段用户数 ÷ 新用户数。"},
    "value": {"en": "Stage value", "zh": "阶段数值",
              "help_en": "The stage's own quantity, named in value_label (impressions, revenue, ...).",
              "help_zh": "该阶段的主要数值，名称见 value_label（曝光、收入等）。"},
    "clicks": {"en": "Clicks", "zh": "点击", "help_en": "Ad clicks from the spend file (awareness row only).",
               "help_zh": "投放文件中的广告点击（仅认知阶段）。"},
    "acquired": {"en": "Acquired users", "zh": "新用户数", "help_en": "Users first seen in the range.",
                 "help_zh": "首次出现在范围内的用户数。"},
    "paying": {"en": "Paying users", "zh": "付费用户数",
               "help_en": "Acquired users with at least one event with revenue above zero.",
               "help_zh": "至少有一笔正收入事件的新用户数。"},
    "paying_rate": {"en": "Paying rate", "zh": "付费率", "help_en": "Paying users divided by acquired users.",
                    "help_zh": "付费用户数 ÷ 新用户数。"},
    "net_revenue": {"en": "Net revenue", "zh": "净收入",
                    "help_en": "Sum of all revenue of acquired users, refunds (negative revenue) subtracted.",
                    "help_zh": "新用户全部收入之和，已扣除退款（负收入）。"},
    "gmv": {"en": "GMV", "zh": "GMV（成交总额）", "help_en": "Sum of positive revenue only (before refunds).",
            "help_zh": "仅正收入之和（未扣退款）。"},
    "arpu": {"en": "ARPU", "zh": "ARPU（每用户收入）", "help_en": "Net revenue divided by acquired users.",
             "help_zh": "净收入 ÷ 新用户数。"},
    "arppu": {"en": "ARPPU", "zh": "ARPPU（每付费用户收入）", "help_en": "Net revenue divided by paying users.",
              "help_zh": "净收入 ÷ 付费用户数。"},
    "event_name": {"en": "Event", "zh": "事件", "help_en": "The event name as loaded.", "help_zh": "导入的事件名称。"},
    "events": {"en": "Events", "zh": "事件数", "help_en": "How many events with this name are loaded.",
               "help_zh": "已导入的该名称事件数。"},
    "guessed_stage": {"en": "Guessed stage", "zh": "推测阶段",
                      "help_en": "The stage guessed from the event name.", "help_zh": "根据事件名称推测的阶段。"},
}
LABELS["revenue_total"] = LABELS["net_revenue"]


# --------------------------------------------------------------------------------------------
# The stage map
# --------------------------------------------------------------------------------------------

def stage_map(con) -> pd.DataFrame:
    """Every event name: ``event_name, stage, owner, events, guessed_stage`` (most frequent first).

    ``owner`` is NULL for stage 'none'; names seen in events but missing from the map show as 'none'."""
    df = con.execute(f"""
        WITH counts AS (         -- events per name
            SELECT event_name, count(*) AS events FROM events GROUP BY event_name
        ),
        names AS (               -- every name in the map or in the events
            SELECT event_name FROM stage_map UNION SELECT event_name FROM counts
        )
        SELECT n.event_name, coalesce(m.stage, 'none') AS stage, coalesce(c.events, 0) AS events,
               coalesce({guess_stage_sql('n.event_name')}, 'none') AS guessed_stage
        FROM names n
        LEFT JOIN stage_map m ON m.event_name = n.event_name
        LEFT JOIN counts c ON c.event_name = n.event_name
        ORDER BY events DESC, n.event_name
    """).df()
    df.insert(2, "owner", df["stage"].map(OWNERS).astype("str"))
    df["events"] = df["events"].astype("int64")
    return df


def _checked_stage(event_name, stage) -> tuple[str, str]:
    if not isinstance(event_name, str) or not event_name.strip():
        raise UserInputError("An event name is needed to set its stage.")
    key = str(stage).strip().lower() if stage is not None else ""
    if key == "awareness":
        raise UserInputError("Awareness comes from the ad-spend file (impressions, clicks); "
                             f"event '{event_name}' cannot be put in it.")
    if key not in STAGES:
        raise UserInputError(f"Unknown stage '{stage}' for event '{event_name}'; choose one of: "
                             + ", ".join(STAGES) + ".")
    return event_name, key


def set_stage_map(con, mapping: Mapping[str, str]) -> None:
    """Set the stage of several event names at once: all are checked first, then written in one transaction."""
    rows = [_checked_stage(name, stage) for name, stage in dict(mapping).items()]
    if not rows:
        return
    con.execute("BEGIN TRANSACTION")
    try:
        con.executemany("INSERT OR REPLACE INTO stage_map (event_name, stage) VALUES (?, ?)", rows)
        bump = getattr(schema, "bump_data_version", None)  # cached results keyed by the data version go stale
        if bump is not None:
            bump(con)
        con.execute("COMMIT")
    except Exception:
        con.execute("ROLLBACK")
        raise


def set_stage(con, event_name: str, stage: str) -> None:
    """Put ``event_name`` in ``stage`` (acquisition, activation, retention, revenue, referral or none)."""
    set_stage_map(con, {event_name: stage})


# --------------------------------------------------------------------------------------------
# The AARRR summary
# --------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class AarrrParams:
    """Windows of the stages, the range (via ``filters``), the breakdown, and the data end for censoring."""

    activation_days: float = 7
    retention_period: str = "week"
    retention_k: int = 1
    filters: Filters | None = None
    breakdown: str | None = None
    timezone: str = "UTC"
    retention_event: str = "any"
    data_end: datetime | None = None

    def __post_init__(self):
        if isinstance(self.activation_days, bool) or not isinstance(self.activation_days, (int, float)) \
                or not self.activation_days > 0:
            raise UserInputError("The activation window must be a positive number of days.")
        if self.retention_period not in RETENTION_PERIOD_DAYS:
            raise UserInputError(f"Unknown retention period '{self.retention_period}'; choose day, week or month.")
        if isinstance(self.retention_k, bool) or not isinstance(self.retention_k, int) or self.retention_k < 1:
            raise UserInputError("The retention period must be a whole number of at least 1 (1 = the next period).")
        if self.breakdown is not None and self.breakdown not in BREAKDOWNS:
            raise UserInputError(f"AARRR can be broken down by channel or campaign, not '{self.breakdown}'.")
        object.__setattr__(self, "timezone", check_timezone(self.timezone))
        if self.filters is not None and not isinstance(self.filters, Filters):
            raise UserInputError("filters must be a Filters object.")
        if self.filters is not None and check_timezone(self.filters.timezone) != self.timezone:
            raise UserInputError(f"The report time zone ({self.timezone}) differs from the filters' "
                                 f"({self.filters.timezone}); use one time zone for both.")
        if self.retention_event not in ("any", "stage"):
            raise UserInputError("Retention counts 'any' event or only retention-'stage' events.")
        if self.data_end is not None and not isinstance(self.data_end, datetime):
            raise UserInputError("data_end must be a date-time (UTC).")


def rollups_ok(p: AarrrParams) -> bool:
    """Whether the per-user flags can come from the rollups every load keeps — activation and referral from
    ``user_events`` (per user and event name: first time and count), return in retention period k from
    ``user_days`` (periods are whole days) — instead of a pass over the acquired users' events: not with a
    segment (a condition on event properties) or when only retention-stage events count as a return."""
    return (p.filters is None or not p.filters.segment) and p.retention_event == "any"


def _per_user_sql(p: AarrrParams) -> tuple[str, list]:
    """CTEs ``acquired`` and ``per_user``: one row per acquired user with their stage flags and money."""
    f = p.filters or Filters(timezone=p.timezone)
    users_where, params = f.users_sql("u")
    conds, values = f.time_sql("u.first_seen")
    users_where = " AND ".join([users_where] + conds)
    params += values
    segment = Filters(segment=f.segment)  # the users selection is applied on users above
    seg_where, seg_params = segment.events_sql("e")
    if f.segment:
        users_where += f" AND u.user_key IN (SELECT e.user_key FROM events e WHERE {seg_where})"
        params += seg_params
    dim = {"channel": "u.channel", "campaign": "u.campaign"}.get(p.breakdown, "CAST(NULL AS VARCHAR)")
    period = timedelta(days=RETENTION_PERIOD_DAYS[p.retention_period])
    activation = timedelta(days=p.activation_days)
    acquired = f"""
acquired AS (            -- users first seen in the range, in the users selection (and the segment)
    SELECT u.user_key, u.first_seen, {dim} AS dim FROM users u WHERE {users_where}
),"""
    if rollups_ok(p):
        days = RETENTION_PERIOD_DAYS[p.retention_period]
        by_user = f"""
staged AS (              -- per acquired user, the first activation-stage event and the referral-stage events
    {staged_sql('activation', 'referral')}
),
came_back AS (           -- acquired users with an event in retention period k (their days of life)
    {returned_sql(days * p.retention_k, days * (p.retention_k + 1))}
),
money AS (               -- per acquired user with revenue, their money
    {money_sql()}
),
by_user AS (             -- per user: stage flags, time to activation, money (from the per-user rollups)
    SELECT a.user_key,
           CASE WHEN s.first_activation <= a.first_seen + ? THEN 1 ELSE 0 END AS activated,
           CASE WHEN s.first_activation <= a.first_seen + ? THEN s.first_activation END AS activated_at,
           CASE WHEN c.user_key IS NULL THEN 0 ELSE 1 END AS retained,
           coalesce(mo.paying, 0) AS paying, mo.revenue, mo.gmv,
           CASE WHEN s.referral_events > 0 THEN 1 ELSE 0 END AS referred,
           coalesce(s.referral_events, 0) AS referral_events
    FROM acquired a
    LEFT JOIN staged s ON s.user_key = a.user_key
    LEFT JOIN came_back c ON c.user_key = a.user_key
    LEFT JOIN money mo ON mo.user_key = a.user_key
),"""
        params += [activation, activation]
    else:
        returning = "TRUE" if p.retention_event == "any" else "coalesce(m.stage = 'retention', FALSE)"
        by_user = f"""
ev AS (                  -- their events (segment only), with the stage of each event name
    SELECT e.user_key, a.first_seen, e.event_time, e.revenue, coalesce(m.stage, 'none') AS stage,
           {returning} AS is_returning
    FROM events e
    JOIN acquired a ON a.user_key = e.user_key
    LEFT JOIN stage_map m ON m.event_name = e.event_name
    WHERE {seg_where}
),
by_user AS (             -- per user with events: stage flags, time to activation, money
    SELECT user_key,
           max(CASE WHEN stage = 'activation' AND event_time <= first_seen + ? THEN 1 ELSE 0 END) AS activated,
           min(CASE WHEN stage = 'activation' AND event_time <= first_seen + ? THEN event_time END) AS activated_at,
           max(CASE WHEN is_returning AND event_time >= first_seen + ? AND event_time < first_seen + ?
                    THEN 1 ELSE 0 END) AS retained,
           max(CASE WHEN revenue > 0 THEN 1 ELSE 0 END) AS paying,
           sum(revenue) AS revenue,
           sum(CASE WHEN revenue > 0 THEN revenue END) AS gmv,
           max(CASE WHEN stage = 'referral' THEN 1 ELSE 0 END) AS referred,
           sum(CASE WHEN stage = 'referral' THEN 1 ELSE 0 END) AS referral_events
    FROM ev
    GROUP BY user_key
),"""
        params += seg_params + [activation, activation, period * p.retention_k, period * (p.retention_k + 1)]
    sql = acquired + by_user + """
per_user AS (            -- one row per acquired user (aggregated before the join: one pass over the events)
    SELECT a.user_key, a.dim, a.first_seen, coalesce(b.activated, 0) AS activated, b.activated_at,
           coalesce(b.retained, 0) AS retained,
           CASE WHEN a.first_seen + ? <= (SELECT coalesce(?, max(event_time)) FROM events) THEN 1 ELSE 0 END
               AS retention_observed,
           coalesce(b.paying, 0) AS paying, b.revenue, b.gmv, coalesce(b.referred, 0) AS referred,
           coalesce(b.referral_events, 0) AS referral_events
    FROM acquired a
    LEFT JOIN by_user b ON b.user_key = a.user_key
),
totals AS (              -- per breakdown value
    SELECT dim, count(*) AS acquired, sum(activated) AS activated,
           percentile_cont(0.5) WITHIN GROUP (ORDER BY date_diff('second', first_seen, activated_at) / 3600.0)
               AS median_hours_to_activate,
           sum(retained) AS retained, sum(retention_observed) AS retention_observed,
           sum(paying) AS paying, sum(revenue) AS revenue, sum(gmv) AS gmv,
           sum(referred) AS referred, sum(referral_events) AS referral_events
    FROM per_user GROUP BY dim
)"""
    params += [period * p.retention_k, p.data_end]
    return sql, params


def _spend_sql(p: AarrrParams) -> tuple[str, list]:
    """CTE ``aware``: impressions and clicks of spend rows in the range and the users selection."""
    f = p.filters or Filters(timezone=p.timezone)
    where, params = f.spend_sql("s")
    dim = {"channel": "s.channel", "campaign": "NULLIF(s.campaign, '')"}.get(p.breakdown, "CAST(NULL AS VARCHAR)")
    sql = f"""
aware AS (               -- impressions and clicks from spend rows in the range
    SELECT {dim} AS dim, sum(s.impressions) AS impressions, sum(s.clicks) AS clicks
    FROM spend s WHERE {where} GROUP BY 1
)"""
    return sql, params


def aarrr_sql(p: AarrrParams) -> tuple[str, list]:
    users_sql, params = _per_user_sql(p)
    spend_sql, spend_params = _spend_sql(p)
    dims = ("SELECT dim FROM totals UNION SELECT dim FROM aware" if p.breakdown
            else "SELECT CAST(NULL AS VARCHAR) AS dim")
    sql = f"""WITH {users_sql},{spend_sql},
dims AS (                -- every breakdown value with acquired users or spend (one row without a breakdown)
    {dims}
),
joined AS (
    SELECT d.dim, coalesce(t.acquired, 0) AS acquired, t.activated, t.median_hours_to_activate, t.retained,
           t.retention_observed, t.paying, t.revenue, t.referred, t.referral_events, a.impressions, a.clicks
    FROM dims d
    LEFT JOIN totals t ON t.dim IS NOT DISTINCT FROM d.dim
    LEFT JOIN aware a ON a.dim IS NOT DISTINCT FROM d.dim
),
stage_rows AS (          -- one row per stage: users reaching it and the stage's own value
    SELECT dim, 1 AS ord, 'awareness' AS stage, CAST(NULL AS BIGINT) AS users, CAST(impressions AS DOUBLE) AS value,
           'impressions' AS value_label, clicks, acquired FROM joined
    UNION ALL SELECT dim, 2, 'acquisition', acquired, acquired, 'new users', NULL, acquired FROM joined
    UNION ALL SELECT dim, 3, 'activation', coalesce(activated, 0), median_hours_to_activate,
                     'median hours to activation', NULL, acquired FROM joined
    UNION ALL SELECT dim, 4, 'retention', coalesce(retained, 0), coalesce(retention_observed, 0),
                     'users with the period observed', NULL, acquired FROM joined
    UNION ALL SELECT dim, 5, 'revenue', coalesce(paying, 0), coalesce(revenue, 0), 'net revenue', NULL,
                     acquired FROM joined
    UNION ALL SELECT dim, 6, 'referral', coalesce(referred, 0), coalesce(referral_events, 0),
                     'referral events', NULL, acquired FROM joined
)
SELECT dim, stage, users, users * 1.0 / NULLIF(acquired, 0) AS rate_of_acquired, value, value_label, clicks
FROM stage_rows
ORDER BY dim NULLS LAST, ord"""
    return sql, params + spend_params


def aarrr(con, p: AarrrParams) -> pd.DataFrame:
    """One row per stage in AARRR order (per breakdown value): ``[channel|campaign], stage, owner, users,
    rate_of_acquired, value, value_label, clicks``. ``users`` is NULL for awareness; ``clicks`` is
    set on the awareness row only."""
    sql, params = aarrr_sql(p)
    df = con.execute(sql, params).df()
    df.insert(2, "owner", df["stage"].map(OWNERS))
    df["users"] = df["users"].astype("Int64")
    df["clicks"] = df["clicks"].astype("Int64")
    if p.breakdown is None:
        df = df.drop(columns="dim")
    else:
        df = df.rename(columns={"dim": p.breakdown})
    return df.reset_index(drop=True)


def revenue_summary_sql(p: AarrrParams) -> tuple[str, list]:
    users_sql, params = _per_user_sql(p)
    sql = f"""WITH {users_sql}
SELECT dim, acquired, coalesce(paying, 0) AS paying, coalesce(paying, 0) * 1.0 / NULLIF(acquired, 0) AS paying_rate,
       coalesce(revenue, 0) AS revenue, coalesce(gmv, 0) AS gmv,
       coalesce(revenue, 0) / NULLIF(acquired, 0) AS arpu, coalesce(revenue, 0) / NULLIF(paying, 0) AS arppu
FROM totals
ORDER BY dim NULLS LAST"""
    return sql, params


COHORT_PERIODS = ("week", "month")


def revenue_by_cohort_sql(p: AarrrParams, period: str = "week") -> tuple[str, list]:
    if period not in COHORT_PERIODS:
        raise UserInputError(f"Cohorts are weeks or months, not '{period}'.")
    users_sql, params = _per_user_sql(replace(p, breakdown=None))
    cohort = f"CAST(date_trunc('{period}', {local_sql('first_seen', p.timezone)}) AS DATE)"
    sql = f"""WITH {users_sql},
cohorts AS (             -- per local week (Monday) / month of the first visit
    SELECT {cohort} AS cohort, count(*) AS acquired, sum(paying) AS paying, sum(revenue) AS revenue, sum(gmv) AS gmv
    FROM per_user GROUP BY 1
)
SELECT cohort, acquired, coalesce(paying, 0) AS paying, coalesce(paying, 0) * 1.0 / NULLIF(acquired, 0) AS paying_rate,
       coalesce(revenue, 0) AS revenue, coalesce(gmv, 0) AS gmv,
       coalesce(revenue, 0) / NULLIF(acquired, 0) AS arpu, coalesce(revenue, 0) / NULLIF(paying, 0) AS arppu
FROM cohorts
ORDER BY cohort"""
    return sql, params


def revenue_by_cohort(con, p: AarrrParams, period: str = "week") -> pd.DataFrame:
    """:func:`revenue_summary` per acquisition cohort — the local week (Monday) or month, in ``p.timezone``,
    of the users' first visit — in one pass: ``cohort, acquired, paying, paying_rate, revenue, gmv, arpu,
    arppu``; a cohort's row equals ``revenue_summary`` with the date range narrowed to that week or month
    (clipped to the range). Cohorts without acquired users have no row."""
    sql, params = revenue_by_cohort_sql(p, period)
    return _cohort_frame(con.execute(sql, params).df())


def _typed(df: pd.DataFrame) -> pd.DataFrame:
    for c in ("acquired", "paying"):
        df[c] = df[c].astype("int64")
    for c in ("paying_rate", "revenue", "gmv", "arpu", "arppu"):
        df[c] = df[c].astype("float64")
    return df.reset_index(drop=True)


def _cohort_frame(df: pd.DataFrame) -> pd.DataFrame:
    df["cohort"] = pd.to_datetime(df["cohort"]).dt.date
    return _typed(df)


def revenue_summary(con, p: AarrrParams) -> pd.DataFrame:
    """Revenue of the acquired users: ``[channel|campaign], acquired, paying, paying_rate, revenue, gmv, arpu,
    arppu`` — one row (per breakdown value); with no acquired users, one row of zeros and NULL rates."""
    sql, params = revenue_summary_sql(p)
    return _summary_frame(con.execute(sql, params).df(), p.breakdown)


def _summary_frame(df: pd.DataFrame, breakdown: str | None) -> pd.DataFrame:
    if breakdown is None:
        df = df.drop(columns="dim")
        if df.empty:
            df = pd.DataFrame({"acquired": [0], "paying": [0], "paying_rate": [None], "revenue": [0.0],
                               "gmv": [0.0], "arpu": [None], "arppu": [None]})
    else:
        df = df.rename(columns={"dim": breakdown})
    return _typed(df)


_MONEY_COLUMNS = """coalesce(paying, 0) AS paying, coalesce(paying, 0) * 1.0 / NULLIF(acquired, 0) AS paying_rate,
       coalesce(revenue, 0) AS revenue, coalesce(gmv, 0) AS gmv,
       coalesce(revenue, 0) / NULLIF(acquired, 0) AS arpu, coalesce(revenue, 0) / NULLIF(paying, 0) AS arppu"""


def revenue_page_sql(p: AarrrParams, period: str = "week") -> tuple[str, list]:
    """One pass over the acquired users for :func:`revenue_page`: their totals overall, per first-touch channel
    and per acquisition cohort, as the grouping sets (), (channel), (cohort) of one GROUP BY."""
    if period not in COHORT_PERIODS:
        raise UserInputError(f"Cohorts are weeks or months, not '{period}'.")
    users_sql, params = _per_user_sql(replace(p, breakdown="channel"))
    cohort = f"CAST(date_trunc('{period}', {local_sql('first_seen', p.timezone)}) AS DATE)"
    sql = f"""WITH {users_sql},
parts AS (               -- all acquired users, per first-touch channel, per acquisition cohort
    SELECT CASE WHEN GROUPING(dim) = 0 THEN 'channel' WHEN GROUPING(cohort) = 0 THEN 'cohort' ELSE 'summary' END
               AS part,
           dim, cohort, count(*) AS acquired, sum(paying) AS paying, sum(revenue) AS revenue, sum(gmv) AS gmv
    FROM (SELECT per_user.*, {cohort} AS cohort FROM per_user) u
    GROUP BY GROUPING SETS ((), (dim), (cohort))
)
SELECT part, dim, cohort, acquired, {_MONEY_COLUMNS}
FROM parts
WHERE acquired > 0
ORDER BY part, dim NULLS LAST, cohort"""
    return sql, params


def revenue_page(con, p: AarrrParams, period: str = "week") -> dict[str, pd.DataFrame]:
    """The Revenue page's three tables from one pass over the acquired users' events: ``summary`` =
    :func:`revenue_summary` of ``p``, ``by_channel`` = :func:`revenue_summary` of ``p`` broken down by
    channel, ``by_cohort`` = :func:`revenue_by_cohort` of ``p`` and ``period`` — each equal to what that
    function returns (``p.breakdown`` is not used)."""
    p = replace(p, breakdown=None)
    sql, params = revenue_page_sql(p, period)
    df = con.execute(sql, params).df()
    money = ["acquired", "paying", "paying_rate", "revenue", "gmv", "arpu", "arppu"]
    part = df.pop("part")
    return {"summary": _summary_frame(df.loc[part == "summary", ["dim"] + money], None),
            "by_channel": _summary_frame(df.loc[part == "channel", ["dim"] + money], "channel"),
            "by_cohort": _cohort_frame(df.loc[part == "cohort", ["cohort"] + money])}
