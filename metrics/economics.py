"""Campaign economics: CAC, activation, retention, revenue, ROAS/ROI, LTV curves and payback (SPEC §3, §6, §8).

Query intuition
---------------
1. **acquired** — the users whose ``first_seen`` (earliest event over all data, never "first inside
   the filter") falls in the filter's date range, keyed by their first-touch ``channel`` and
   ``campaign`` (users table, SPEC §1). A user without a campaign gets campaign ``''``, the same key
   as channel-level spend rows, so an organic user and the channel's unattributed spend meet.
2. **per_user** — one pass over the events of those users (joined on the integer ``user_key``)
   computes, per user: activated (an event whose stage is ``activation`` within
   ``activation_days`` of first_seen, half-open ``[first_seen, first_seen + 7 d)``), active in week k
   (any event in ``[first_seen + 7k d, first_seen + 7(k+1) d)``), paying (any event with revenue > 0),
   net revenue (refunds are negative and included), GMV (positive revenue only), revenue within the
   horizon (``event_time < first_seen + h days``) and revenue earned inside the date range.
   Without a segment (a condition on event properties, which needs the events themselves) the pass
   reads the per-user rollups every load keeps instead (:func:`rollups_ok`): activated from
   ``user_events`` (the first event of an activation-stage name, younger than the window), week k
   from ``user_days`` (days 7k to 7k+6 of life; day d holds the events aged ``[d, d+1)`` days, so
   the weeks are exact) and the revenue columns from the acquired users' events with revenue only.
3. **cohort** — per key (campaign or channel): counts and sums of the per-user columns, grouped per
   campaign first (a channel's are the sums of its campaigns', so :func:`economics_levels` groups the
   users once for both levels). Week-k retention
   only counts users whose week k has fully elapsed by the end of the data (``first_seen + 7(k+1) d
   <= data_end``); this is exactly the rolling-alignment retention of SPEC §4 with period = week,
   start = first_seen and return = any event.
4. **paid** — spend rows with a date in the range, summed per key. Spend keys are stored trimmed and
   case-folded, so "WeChat" and "wechat " are one key. At campaign level a channel-level spend row
   (campaign '') is its own row "(channel level)"; at channel level every row adds to its channel.
5. A full outer join of cohort and paid keeps campaigns with spend but no users (new_users 0, every
   per-user ratio NULL, revenue 0 so ROI is −100 %) and users but no spend (spend NULL, so CAC, ROAS
   and ROI are NULL — unknown spend is not zero spend). Every division goes through ``NULLIF(x, 0)``:
   CAC with no users and ROI with zero spend are NULL, never infinite. A user is paying once any of
   their events has revenue > 0 (a later refund does not undo it).

LTV curves (:func:`ltv_curves`): ``LTV_k`` = net revenue per acquired user earned from first_seen up to
``first_seen + (k+1) days`` (day 0 = the first 24 h), over the users observed that long
(``first_seen + (k+1) d <= data_end``); a day no user has reached is NULL (censored). Payback day =
the first k with ``LTV_k >= CAC``; NULL when never reached inside ``ltv_days`` or when CAC is NULL.

The end of the data (``data_end``) defaults to the latest event time and can be passed in.
"""
from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime

import pandas as pd

from store.errors import UserInputError

from .derive import split_at, temp_tables
from .filters import Filters
from .labels import label as _label
from .selectors import property_sql
from .stats import SMALL_SAMPLE, wilson_interval

DAY_S = 86_400
WEEK_S = 7 * DAY_S
LEVELS = ("campaign", "channel")


@dataclass(frozen=True)
class EconomicsParams:
    """Economics options. ``timezone`` is the report time zone and must equal the filters' (whose date
    range selects users by first_seen and spend rows by date); ``data_end`` censors retention and LTV."""

    level: str = "campaign"
    horizon_days: int = 30
    ltv_days: int = 90
    activation_days: int = 7
    retention_weeks: tuple[int, ...] = (1, 4)
    filters: Filters | None = None
    timezone: str = "UTC"
    data_end: datetime | None = None  # None = the latest event time

    def __post_init__(self):
        object.__setattr__(self, "retention_weeks", tuple(self.retention_weeks))
        validate_common(self.filters, self.timezone)
        if self.level not in LEVELS:
            raise UserInputError(f"Level must be 'campaign' or 'channel', not {self.level!r}.")
        for name in ("horizon_days", "activation_days"):
            value = getattr(self, name)
            if not isinstance(value, int) or value < 1:
                raise UserInputError(f"{name.replace('_', ' ').capitalize()} must be a whole number of at least 1.")
        if not isinstance(self.ltv_days, int) or self.ltv_days < 0 or self.ltv_days > 3650:
            raise UserInputError("LTV days must be a whole number between 0 and 3650.")
        if not self.retention_weeks or any(not isinstance(k, int) or k < 1 for k in self.retention_weeks):
            raise UserInputError("Retention weeks must be one or more whole numbers of at least 1 (e.g. 1 and 4).")

    @property
    def keys(self) -> tuple[str, ...]:
        return ("channel", "campaign") if self.level == "campaign" else ("channel",)

    @property
    def last_week(self) -> int:
        return max(self.retention_weeks)


def validate_common(filters, timezone: str) -> None:
    """Checks shared by every params class of this family."""
    from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

    if filters is not None and not isinstance(filters, Filters):
        raise UserInputError("Filters must be a metrics.filters.Filters object.")
    if filters is not None and filters.timezone != timezone:
        raise UserInputError(f"The report time zone ({timezone}) and the filters' time zone ({filters.timezone}) "
                             "differ; pass the same time zone to both.")
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise UserInputError(f"Unknown time zone {timezone!r}; use a name like 'Asia/Shanghai' or 'UTC'.") from None


# ---------------------------------------------------------------------------------------------
# Shared SQL pieces
# ---------------------------------------------------------------------------------------------

def segment_sql(filters: Filters | None, alias: str) -> tuple[str, list]:
    """Predicate over events ``alias``: the filter's segment property equalities (TRUE without)."""
    if filters is None or not filters.segment:
        return "TRUE", []
    parts, params = [], []
    for key, value in sorted(filters.segment.items()):
        expr, p = property_sql(key, alias)
        parts.append(f"{expr} = ?")
        params += p + [str(value)]
    return " AND ".join(parts), params


def rollups_ok(filters: Filters | None) -> bool:
    """Whether the acquired users' activation and weekly activity can come from the per-user rollups kept by
    every load (``user_events``, ``user_days``) instead of a join to all their events: only a segment (a
    condition on event properties) needs the events themselves."""
    return filters is None or not filters.segment


def staged_sql(*stages: str) -> str:
    """CTE body over ``acquired`` (user_key, first_seen): per acquired user with an event of one of ``stages``
    (of activation, acquisition, referral: the ones the caller reads), from the per-user event rollup, the time
    of the first activation-stage event (``first_activation``), whether any acquisition-stage (sign-up) event
    (``signed_up``) and how many referral-stage events (``referral_events``) — what :func:`rollups_ok` readers
    take instead of a pass over the events."""
    if not stages or not set(stages) <= {"activation", "acquisition", "referral"}:
        raise ValueError(f"stages must be some of activation, acquisition, referral, not {stages!r}")
    return f"""SELECT r.user_key,
           min(CASE WHEN m.stage = 'activation' THEN r.first_time END) AS first_activation,
           max(CASE WHEN m.stage = 'acquisition' THEN 1 ELSE 0 END) AS signed_up,
           sum(CASE WHEN m.stage = 'referral' THEN r.events ELSE 0 END) AS referral_events
    FROM acquired a
    JOIN user_events r ON r.user_key = a.user_key
    JOIN stage_map m ON m.event_name = r.event_name
    WHERE m.stage IN ({", ".join(f"'{x}'" for x in sorted(stages))})
    GROUP BY r.user_key"""


def returned_sql(first_day: int, end_day: int) -> str:
    """CTE body over ``acquired``: the acquired users with an event on a day of life in [first_day, end_day)
    (``user_days``: day d holds the events aged [d, d + 1) days)."""
    return f"""SELECT DISTINCT d.user_key
    FROM acquired a
    JOIN user_days d ON d.user_key = a.user_key
    WHERE d.day >= {int(first_day)} AND d.day < {int(end_day)}"""


def revenue_source(filters: Filters | None) -> str:
    """The table a query over the acquired users' revenue events reads: ``revenue_events`` (every event with a
    revenue value — user, time and revenue — kept by every load) when :func:`rollups_ok`, else ``events`` (a
    segment is a condition on event properties)."""
    return "revenue_events" if rollups_ok(filters) else "events"


def money_sql() -> str:
    """CTE body over ``acquired`` for a :func:`rollups_ok` reader: per acquired user with revenue events,
    ``paying`` (any revenue > 0), net ``revenue`` and ``gmv`` (positive revenue only)."""
    return """SELECT e.user_key, max(CASE WHEN e.revenue > 0 THEN 1 ELSE 0 END) AS paying, sum(e.revenue) AS revenue,
           sum(CASE WHEN e.revenue > 0 THEN e.revenue END) AS gmv
    FROM acquired a
    JOIN revenue_events e ON e.user_key = a.user_key
    GROUP BY e.user_key"""


def acquired_sql(filters: Filters | None) -> tuple[str, list]:
    """SELECT of acquired users: first_seen in the range, first-touch selection, segment (any matching event)."""
    f = filters or Filters()
    where, params = f.time_sql("u.first_seen")
    users, p = f.users_sql("u")
    where.append(users)
    params += p
    if f.segment:
        seg, p = segment_sql(f, "se")
        where.append(f"EXISTS (SELECT 1 FROM events se WHERE se.user_key = u.user_key AND {seg})")
        params += p
    sql = ("SELECT u.user_key, u.first_seen, u.channel, coalesce(u.campaign, '') AS campaign "
           f"FROM users u WHERE {' AND '.join(where)}")
    return sql, params


def spend_where_sql(filters: Filters | None, alias: str = "s") -> tuple[str, list]:
    """Predicate over spend rows: date in the range (local dates, inclusive), channel/campaign selection."""
    return (filters or Filters()).spend_sql(alias)


def data_end_sql() -> str:
    """SQL for the end of the data: the bound value, else the latest event time."""
    return "coalesce(CAST(? AS TIMESTAMP), (SELECT max(event_time) FROM events))"


def _acquired_with(acq: str) -> str:
    """The head of the per-user queries: ``acquired`` (the SELECT ``acq``) and ``bounds`` (the end of the data)."""
    return f"""WITH
-- acquired: users whose first_seen is in the range, keyed by first touch
acquired AS ({acq}),
-- bounds: the end of the data, for censoring
bounds AS (SELECT {data_end_sql()} AS data_end),"""


def _on(keys, left: str, right: str) -> str:
    return " AND ".join(f"{left}.{k} = {right}.{k}" for k in keys)


def _range_utc(filters: Filters | None):
    return (filters or Filters()).utc_range()


# ---------------------------------------------------------------------------------------------
# Campaign economics
# ---------------------------------------------------------------------------------------------

def campaign_economics_sql(p: EconomicsParams) -> tuple[str, list]:
    """SQL and bound values for the per-campaign (or per-channel) economics, with eligible-user counts."""
    keys = p.keys
    key_list = ", ".join(keys)
    acq, acq_params = acquired_sql(p.filters)
    seg, seg_params = segment_sql(p.filters, "e")
    spend_where, spend_params = spend_where_sql(p.filters, "s")
    r_start, r_end = _range_utc(p.filters)
    weeks = sorted(set(p.retention_weeks))

    week_cols = ",\n           ".join(
        f"max(CASE WHEN age >= {k * WEEK_S} AND age < {(k + 1) * WEEK_S} THEN 1 ELSE 0 END) AS active_w{k}"
        for k in weeks)
    week_user = ", ".join(f"coalesce(s.active_w{k}, 0) AS active_w{k}" for k in weeks)
    week_sums = ",\n           ".join(
        f"sum(CASE WHEN observed >= {(k + 1) * WEEK_S} THEN active_w{k} ELSE 0 END) AS retained_w{k}, "
        f"sum(CASE WHEN observed >= {(k + 1) * WEEK_S} THEN 1 ELSE 0 END) AS eligible_w{k}"
        for k in weeks)
    week_out = ",\n       ".join(
        f"coalesce(c.retained_w{k}, 0) AS retained_w{k}, coalesce(c.eligible_w{k}, 0) AS eligible_w{k}, "
        f"CAST(c.retained_w{k} AS DOUBLE) / NULLIF(c.eligible_w{k}, 0) AS retention_w{k}"
        for k in weeks)
    counts = (["new_users", "activated"] + [c for k in weeks for c in (f"retained_w{k}", f"eligible_w{k}")]
              + ["paying"])
    last = p.last_week
    coalesced = ", ".join(f"coalesce(c.{k}, s.{k}) AS {k}" for k in keys)

    revenue_cols = """max(CASE WHEN revenue > 0 THEN 1 ELSE 0 END) AS paying,
           sum(revenue) AS revenue,
           sum(CASE WHEN revenue > 0 THEN revenue END) AS gmv,
           sum(CASE WHEN age < ? THEN revenue END) AS revenue_h,
           sum(CASE WHEN event_time >= coalesce(CAST(? AS TIMESTAMP), event_time)
                     AND event_time < coalesce(CAST(? AS TIMESTAMP), event_time + INTERVAL '1 day')
                    THEN revenue END) AS period_revenue"""
    if rollups_ok(p.filters):
        day_cols = ",\n           ".join(
            f"max(CASE WHEN day >= {7 * k} AND day < {7 * (k + 1)} THEN 1 ELSE 0 END) AS active_w{k}" for k in weeks)
        stats = f"""-- staged: per acquired user, the first activation-stage event (from the per-user event rollup)
staged AS ({staged_sql('activation')}),
-- activated: acquired users whose first activation-stage event is younger than the activation window
activated AS (
    SELECT a.user_key, 1 AS activated
    FROM acquired a
    JOIN staged s ON s.user_key = a.user_key
    WHERE EXTRACT(EPOCH FROM s.first_activation - a.first_seen) < ?
),
-- active_weeks: per acquired user, activity in each retention week, from their days of life with an event
-- (day d holds the events aged [d, d + 1) days, so week k is days 7k to 7k + 6)
active_weeks AS (
    SELECT d.user_key,
           {day_cols}
    FROM acquired a
    JOIN user_days d ON d.user_key = a.user_key
    WHERE d.day >= {7 * weeks[0]} AND d.day < {7 * (weeks[-1] + 1)}
    GROUP BY d.user_key
),
-- paid_events: per acquired user with revenue, its sums (events without revenue add nothing to them)
paid_events AS (
    SELECT user_key, {revenue_cols}
    FROM (SELECT e.user_key, e.event_time, e.revenue, EXTRACT(EPOCH FROM e.event_time - a.first_seen) AS age
          FROM acquired a
          JOIN revenue_events e ON e.user_key = a.user_key
          WHERE e.revenue <> 0) r
    GROUP BY user_key
),
-- user_stats: one row per acquired user
user_stats AS (
    SELECT a.user_key, coalesce(ac.activated, 0) AS activated,
           {", ".join(f"coalesce(w.active_w{k}, 0) AS active_w{k}" for k in weeks)},
           coalesce(r.paying, 0) AS paying, r.revenue, r.gmv, r.revenue_h, r.period_revenue
    FROM acquired a
    LEFT JOIN activated ac ON ac.user_key = a.user_key
    LEFT JOIN active_weeks w ON w.user_key = a.user_key
    LEFT JOIN paid_events r ON r.user_key = a.user_key
),"""
    else:
        stats = f"""-- user_events: events of acquired users, with their age in seconds since first_seen and stage
user_events AS (
    SELECT e.user_key, e.event_time, e.revenue, sm.stage,
           EXTRACT(EPOCH FROM e.event_time - a.first_seen) AS age
    FROM acquired a
    JOIN events e ON e.user_key = a.user_key
    LEFT JOIN stage_map sm ON sm.event_name = e.event_name
    WHERE {seg}
),
-- user_stats: one row per acquired user with events (grouped on the integer key only)
user_stats AS (
    SELECT user_key,
           max(CASE WHEN stage = 'activation' AND age < ? THEN 1 ELSE 0 END) AS activated,
           {week_cols},
           {revenue_cols}
    FROM user_events
    GROUP BY user_key
),"""

    sql = f"""
{_acquired_with(acq)}
{stats}
-- per_user: every acquired user, with the seconds observed until the end of the data
per_user AS (
    SELECT a.user_key, a.channel, a.campaign,
           EXTRACT(EPOCH FROM b.data_end - a.first_seen) AS observed,
           coalesce(s.activated, 0) AS activated,
           {week_user},
           coalesce(s.paying, 0) AS paying, coalesce(s.revenue, 0) AS revenue, coalesce(s.gmv, 0) AS gmv,
           coalesce(s.revenue_h, 0) AS revenue_h, coalesce(s.period_revenue, 0) AS period_revenue
    FROM acquired a
    CROSS JOIN bounds b
    LEFT JOIN user_stats s ON s.user_key = a.user_key
),
-- per_campaign: per channel and campaign (the finer key), counts and sums over users
per_campaign AS (
    SELECT channel, campaign, count(*) AS new_users, sum(activated) AS activated,
           {week_sums},
           sum(paying) AS paying, sum(revenue) AS revenue, sum(gmv) AS gmv,
           sum(revenue_h) AS revenue_h, sum(period_revenue) AS period_revenue
    FROM per_user
    GROUP BY channel, campaign
),
-- cohort: per key, counts over users (a channel's are the sums of its campaigns')
cohort AS (
    SELECT {key_list}, {", ".join(f"CAST(sum({c}) AS BIGINT) AS {c}" for c in counts)},
           sum(revenue) AS revenue, sum(gmv) AS gmv, sum(revenue_h) AS revenue_h,
           sum(period_revenue) AS period_revenue
    FROM per_campaign
    GROUP BY {key_list}
),
-- paid: spend rows of the range, per key
paid AS (
    SELECT {key_list}, sum(s.spend) AS spend, CAST(sum(s.impressions) AS BIGINT) AS impressions,
           CAST(sum(s.clicks) AS BIGINT) AS clicks
    FROM spend s
    WHERE {spend_where}
    GROUP BY {key_list}
),
-- joined: every key with users or spend
joined AS (
    SELECT {coalesced}, s.spend, s.impressions, s.clicks,
           coalesce(c.new_users, 0) AS new_users, coalesce(c.activated, 0) AS activated,
           {week_out},
           coalesce(c.paying, 0) AS paying, coalesce(c.revenue, 0) AS revenue, coalesce(c.gmv, 0) AS gmv,
           coalesce(c.revenue_h, 0) AS revenue_h, coalesce(c.period_revenue, 0) AS period_revenue
    FROM cohort c
    FULL OUTER JOIN paid s ON {_on(keys, 'c', 's')}
)
SELECT {key_list}, spend, impressions, clicks,
       CAST(clicks AS DOUBLE) / NULLIF(impressions, 0) AS ctr,
       spend / NULLIF(clicks, 0) AS cpc,
       new_users,
       spend / NULLIF(new_users, 0) AS cac,
       activated,
       CAST(activated AS DOUBLE) / NULLIF(new_users, 0) AS activation_rate,
       spend / NULLIF(activated, 0) AS cost_per_activated,
       {", ".join(f"retained_w{k}, retention_w{k}, eligible_w{k}" for k in weeks)},
       spend / NULLIF(new_users, 0) / NULLIF(retention_w{last}, 0) AS cost_per_retained_w{last},
       paying,
       CAST(paying AS DOUBLE) / NULLIF(new_users, 0) AS paying_rate,
       spend / NULLIF(paying, 0) AS cost_per_paying,
       revenue,
       revenue / NULLIF(new_users, 0) AS arpu,
       revenue / NULLIF(paying, 0) AS arppu,
       gmv,
       revenue_h,
       revenue_h / NULLIF(spend, 0) AS roas_h,
       (revenue_h - spend) / NULLIF(spend, 0) AS roi_h,
       period_revenue,
       period_revenue / NULLIF(spend, 0) AS period_roas
FROM joined
ORDER BY {key_list}
"""
    params = (acq_params + [p.data_end] + seg_params
              + [p.activation_days * DAY_S, p.horizon_days * DAY_S, r_start, r_end] + spend_params)
    return sql, params


def economics_columns(p: EconomicsParams) -> list[str]:
    """The public output columns of :func:`campaign_economics` for these params."""
    weeks = sorted(set(p.retention_weeks))
    last = p.last_week
    return (list(p.keys) + ["spend", "impressions", "clicks", "ctr", "cpc", "new_users", "cac", "activated",
                            "activation_rate", "cost_per_activated"]
            + [c for k in weeks for c in (f"retained_w{k}", f"retention_w{k}")]
            + [f"cost_per_retained_w{last}", "paying", "paying_rate", "cost_per_paying", "revenue", "arpu",
               "arppu", "gmv", "revenue_h", "roas_h", "roi_h", "period_revenue", "period_roas", "payback_day"])


def _economics_full(con, p: EconomicsParams, curve: pd.DataFrame | None = None, payback: bool = True
                    ) -> pd.DataFrame:
    """Economics with the eligible-user counts; ``curve`` (an LTV curve of these keys) saves a query, and
    without ``payback`` none is needed."""
    sql, params = campaign_economics_sql(p)
    if curve is None and payback:
        curve = ltv_curves(con, p)
    return _economics_frame(con.execute(sql, params).df(), p, curve)


def _economics_frame(df: pd.DataFrame, p: EconomicsParams, curve: pd.DataFrame | None) -> pd.DataFrame:
    """The economics query's frame typed, with ``payback_day`` from ``curve`` (left empty when None)."""
    keys = list(p.keys)
    if curve is None:
        df["payback_day"] = pd.array([pd.NA] * len(df), dtype="Int64")
    else:
        within = curve[(curve["day"] <= p.ltv_days) & (curve["ltv"] >= curve["cac"])]
        payback = within.groupby(keys, sort=False)["day"].min().rename("payback_day").reset_index()
        df = df.merge(payback, on=keys, how="left")
        df["payback_day"] = df["payback_day"].astype("Int64")
    df["impressions"] = df["impressions"].astype("Int64")
    df["clicks"] = df["clicks"].astype("Int64")
    for col in ("new_users", "activated", "paying") + tuple(
            c for k in p.retention_weeks for c in (f"retained_w{k}", f"eligible_w{k}")):
        df[col] = df[col].astype("int64")
    return df


def campaign_economics(con, params: EconomicsParams | None = None, payback: bool = True) -> pd.DataFrame:
    """One row per campaign (``channel, campaign``) or per channel; columns as :func:`economics_columns`.

    Campaign '' is "(channel level)": users without a campaign and channel-level spend rows.
    ``payback=False`` leaves ``payback_day`` empty and skips the LTV-curve query it needs (for a caller that
    shows no payback, such as the Overview's KPIs); every other column is the same.
    """
    p = params or EconomicsParams()
    return _economics_full(con, p, payback=payback)[economics_columns(p)]


RETURNS_COLUMNS = ("spend", "new_users", "cac", "revenue_h", "roas_h")


def acquisition_returns_sql(p: EconomicsParams) -> tuple[str, list]:
    """SQL for :func:`acquisition_returns`: the acquired users and spend of :func:`campaign_economics_sql`, and
    of the acquired users' events only those with revenue (to sum the revenue within the horizon)."""
    keys = p.keys
    key_list = ", ".join(keys)
    acq, acq_params = acquired_sql(p.filters)
    seg, seg_params = segment_sql(p.filters, "e")
    spend_where, spend_params = spend_where_sql(p.filters, "s")
    coalesced = ", ".join(f"coalesce(c.{k}, s.{k}) AS {k}" for k in keys)
    sql = f"""
WITH
-- acquired: users whose first_seen is in the range, keyed by first touch
acquired AS ({acq}),
-- user_revenue: per acquired user with revenue events, the revenue within the horizon of first_seen
user_revenue AS (
    SELECT e.user_key, sum(CASE WHEN EXTRACT(EPOCH FROM e.event_time - a.first_seen) < ? THEN e.revenue END)
               AS revenue_h
    FROM acquired a
    JOIN {revenue_source(p.filters)} e ON e.user_key = a.user_key
    WHERE e.revenue IS NOT NULL AND {seg}
    GROUP BY e.user_key
),
-- cohort: per key, new users and their revenue within the horizon
cohort AS (
    SELECT {key_list}, count(*) AS new_users, sum(coalesce(r.revenue_h, 0)) AS revenue_h
    FROM acquired a
    LEFT JOIN user_revenue r ON r.user_key = a.user_key
    GROUP BY {key_list}
),
-- paid: spend rows of the range, per key
paid AS (
    SELECT {key_list}, sum(s.spend) AS spend FROM spend s WHERE {spend_where} GROUP BY {key_list}
),
joined AS (
    SELECT {coalesced}, s.spend, coalesce(c.new_users, 0) AS new_users, coalesce(c.revenue_h, 0) AS revenue_h
    FROM cohort c
    FULL OUTER JOIN paid s ON {_on(keys, 'c', 's')}
)
SELECT {key_list}, spend, new_users, spend / NULLIF(new_users, 0) AS cac, revenue_h,
       revenue_h / NULLIF(spend, 0) AS roas_h
FROM joined
ORDER BY {key_list}
"""
    return sql, acq_params + [p.horizon_days * DAY_S] + seg_params + spend_params


def acquisition_returns(con, params: EconomicsParams | None = None) -> pd.DataFrame:
    """The acquisition columns of :func:`campaign_economics` — ``[channel, campaign,] spend, new_users, cac,
    revenue_h, roas_h``, the same rows and values — without its pass over every event of the acquired users:
    only their revenue events are read (for the Overview's spend, new users, CAC and ROAS)."""
    p = params or EconomicsParams()
    sql, values = acquisition_returns_sql(p)
    df = con.execute(sql, values).df()
    df["new_users"] = df["new_users"].astype("int64")
    return df[list(p.keys) + list(RETURNS_COLUMNS)]


def economics_levels(con, params: EconomicsParams | None = None) -> dict[str, pd.DataFrame]:
    """``campaign`` and ``channel``: :func:`campaign_economics` of ``params`` at each level (``params.level``
    is not used), equal to the two calls, from one pass over the acquired users' events for both. The
    per-campaign counts and sums, the LTV cohort users and their revenue per campaign and day are computed
    once into temporary tables of this connection (dropped before returning); each level's queries group them
    by its keys (a channel's counts, sums and day revenue are the sums of its campaigns')."""
    base = replace(params or EconomicsParams(), level="campaign")
    # shared: the CTEs up to per_campaign; up to cohort_users; day_revenue (campaign keys)
    econ_sql, econ_values = campaign_economics_sql(base)
    econ_head = split_at(econ_sql, "-- cohort: per key")[0]
    ltv_sql, ltv_values = ltv_curves_sql(base)
    ltv_head, ltv_rest = split_at(ltv_sql, "-- observed:")
    revenue = split_at(split_at(ltv_rest, "-- day_revenue:")[1], "-- days:")[0]
    n, m, r = econ_head.count("?"), ltv_head.count("?"), revenue.count("?")
    spend_values = len(spend_where_sql(base.filters)[1])
    if (n + spend_values, m + r + 1 + spend_values) != (len(econ_values), len(ltv_values)):
        raise AssertionError("the shared parts must hold every bound value but the spend filter's and LTV days")
    with temp_tables(con, "_econ_per_campaign", "_econ_cohort_users", "_econ_day_revenue") as (
            campaigns_t, cohort_t, revenue_t):
        con.execute(f"CREATE OR REPLACE TEMP TABLE {campaigns_t} AS {econ_head}\nSELECT * FROM per_campaign",
                    econ_values[:n])
        con.execute(f"CREATE OR REPLACE TEMP TABLE {cohort_t} AS {ltv_head}\nSELECT * FROM cohort_users",
                    ltv_values[:m])
        con.execute(f"CREATE OR REPLACE TEMP TABLE {revenue_t} AS WITH cohort_users AS (SELECT * FROM {cohort_t}),"
                    f"\n{revenue}\nSELECT * FROM day_revenue", ltv_values[m:m + r])
        out = {}
        for level in ("campaign", "channel"):
            p = replace(base, level=level)
            keys = ", ".join(p.keys)
            econ_tail = split_at(campaign_economics_sql(p)[0], "-- cohort: per key")[1]
            observed, rest = split_at(split_at(ltv_curves_sql(p)[0], "-- observed:")[1], "-- day_revenue:")
            curve_sql = (f"WITH cohort_users AS (SELECT * FROM {cohort_t}),\n{observed},\n"
                         f"day_revenue AS (SELECT {keys}, last_day, day, sum(revenue) AS revenue FROM {revenue_t} "
                         f"GROUP BY {keys}, last_day, day),\n{split_at(rest, '-- days:')[1]}")
            curve = _curve_frame(con.execute(curve_sql, ltv_values[m + r:]).df())
            df = con.execute(f"WITH per_campaign AS (SELECT * FROM {campaigns_t}),\n{econ_tail}",
                             econ_values[n:]).df()
            out[level] = _economics_frame(df, p, curve)[economics_columns(p)]
        return out


# ---------------------------------------------------------------------------------------------
# LTV curves and payback
# ---------------------------------------------------------------------------------------------

def ltv_curves_sql(p: EconomicsParams) -> tuple[str, list]:
    """SQL and bound values for LTV_k per key and day k = 0..ltv_days, with CAC and payback day."""
    keys = p.keys
    key_list = ", ".join(keys)
    ck = ", ".join(f"cu.{k}" for k in keys)
    acq, acq_params = acquired_sql(p.filters)
    seg, seg_params = segment_sql(p.filters, "e")
    spend_where, spend_params = spend_where_sql(p.filters, "s")
    sql = f"""
{_acquired_with(acq)}
-- cohort_users: each user's last whole day observed (day k needs first_seen + (k+1) days <= data_end)
cohort_users AS (
    SELECT a.user_key, a.first_seen, {", ".join(f"a.{k}" for k in keys)},
           CAST(floor(EXTRACT(EPOCH FROM b.data_end - a.first_seen) / {DAY_S}) AS INTEGER) - 1 AS last_day
    FROM acquired a CROSS JOIN bounds b
),
-- observed: users per key by last observed day
observed AS (
    SELECT {key_list}, last_day, count(*) AS users FROM cohort_users GROUP BY {key_list}, last_day
),
-- day_revenue: net revenue per key, last observed day and day since first_seen
day_revenue AS (
    SELECT {ck}, cu.last_day,
           CAST(floor(EXTRACT(EPOCH FROM e.event_time - cu.first_seen) / {DAY_S}) AS INTEGER) AS day,
           sum(e.revenue) AS revenue
    FROM cohort_users cu
    JOIN {revenue_source(p.filters)} e ON e.user_key = cu.user_key
    WHERE e.revenue IS NOT NULL AND EXTRACT(EPOCH FROM e.event_time - cu.first_seen) < ? AND {seg}
    GROUP BY ALL
),
-- days: 0..ltv_days
days AS (SELECT CAST(generate_series AS INTEGER) AS day FROM generate_series(0, ?)),
-- key_days: every key with users, every day
key_days AS (SELECT DISTINCT {", ".join(f"o.{k}" for k in keys)}, d.day FROM observed o CROSS JOIN days d),
-- eligible: users observed through day k
eligible AS (
    SELECT {", ".join(f"kd.{k}" for k in keys)}, kd.day, coalesce(sum(o.users), 0) AS users
    FROM key_days kd LEFT JOIN observed o ON {_on(keys, 'kd', 'o')} AND o.last_day >= kd.day
    GROUP BY ALL
),
-- earned: revenue of those users up to the end of day k = the revenue of days <= k of every user, less that
-- of the users whose last observed day L is before k (theirs all falls on days <= L + 1 <= k; a day after
-- L + 1 is past the end of the data and never counts). Both are running sums over the days of +revenue on
-- its day and -revenue on L + 1, in exact decimals so the difference leaves no rounding residue.
deltas AS (
    SELECT {key_list}, day, CAST(revenue AS DECIMAL(38, 6)) AS delta FROM day_revenue WHERE day <= last_day + 1
    UNION ALL
    SELECT {key_list}, last_day + 1, -CAST(revenue AS DECIMAL(38, 6)) FROM day_revenue WHERE day <= last_day + 1
),
earned AS (
    SELECT {", ".join(f"kd.{k}" for k in keys)}, kd.day,
           CAST(sum(coalesce(dl.delta, 0)) OVER (PARTITION BY {", ".join(f"kd.{k}" for k in keys)}
                                                ORDER BY kd.day) AS DOUBLE) AS revenue
    FROM key_days kd
    LEFT JOIN (SELECT {key_list}, day, sum(delta) AS delta FROM deltas GROUP BY ALL) dl
           ON {_on(keys, 'kd', 'dl')} AND dl.day = kd.day
),
-- cac: spend in the range per new user
new_users AS (SELECT {key_list}, count(*) AS new_users FROM cohort_users GROUP BY {key_list}),
paid AS (SELECT {key_list}, sum(s.spend) AS spend FROM spend s WHERE {spend_where} GROUP BY {key_list}),
cac AS (
    SELECT {", ".join(f"n.{k}" for k in keys)}, p.spend / NULLIF(n.new_users, 0) AS cac
    FROM new_users n LEFT JOIN paid p ON {_on(keys, 'n', 'p')}
),
curve AS (
    SELECT {", ".join(f"el.{k}" for k in keys)}, el.day, el.users,
           CASE WHEN el.users > 0 THEN coalesce(er.revenue, 0) / el.users END AS ltv, c.cac
    FROM eligible el
    LEFT JOIN earned er ON {_on(keys, 'el', 'er')} AND er.day = el.day
    JOIN cac c ON {_on(keys, 'el', 'c')}
)
SELECT {key_list}, day, users, ltv, cac,
       min(CASE WHEN ltv >= cac THEN day END) OVER (PARTITION BY {key_list}) AS payback_day
FROM curve
ORDER BY {key_list}, day
"""
    params = acq_params + [p.data_end, (p.ltv_days + 1) * DAY_S] + seg_params + [p.ltv_days] + spend_params
    return sql, params


def ltv_curves(con, params: EconomicsParams | None = None) -> pd.DataFrame:
    """LTV curve per key: ``[channel, campaign?, day, users, ltv, cac, payback_day]`` for day 0..ltv_days."""
    p = params or EconomicsParams()
    sql, values = ltv_curves_sql(p)
    return _curve_frame(con.execute(sql, values).df())


def _curve_frame(df: pd.DataFrame) -> pd.DataFrame:
    df["day"] = df["day"].astype("int64")
    df["users"] = df["users"].astype("int64")
    df["payback_day"] = df["payback_day"].astype("Int64")
    return df


# ---------------------------------------------------------------------------------------------
# Spend coverage
# ---------------------------------------------------------------------------------------------

def spend_coverage_sql(filters: Filters | None = None) -> tuple[str, list]:
    where, params = spend_where_sql(filters, "s")
    sql = f"""
WITH
-- paid: spend per key in the range
paid AS (SELECT s.channel, s.campaign, sum(s.spend) AS spend FROM spend s WHERE {where} GROUP BY ALL),
-- seen: first-touch keys of all users
seen AS (SELECT DISTINCT channel, coalesce(campaign, '') AS campaign FROM users)
SELECT p.channel, p.campaign, p.spend,
       CASE WHEN p.campaign = ''
            THEN EXISTS (SELECT 1 FROM seen WHERE seen.channel = p.channel)
            ELSE EXISTS (SELECT 1 FROM seen WHERE seen.channel = p.channel AND seen.campaign = p.campaign)
       END AS matched
FROM paid p
ORDER BY p.channel, p.campaign
"""
    return sql, params


def spend_coverage(con, filters: Filters | None = None) -> pd.DataFrame:
    """One row per spend key: ``[channel, campaign, spend, matched]`` (campaign '' = channel level).

    matched: the key's campaign (with its channel) is some user's first touch; for a channel-level row,
    the channel is.
    """
    validate_common(filters, filters.timezone if isinstance(filters, Filters) else "UTC")
    sql, params = spend_coverage_sql(filters)
    df = con.execute(sql, params).df()
    df["matched"] = df["matched"].astype(bool)
    return df


def spend_coverage_summary(con, filters: Filters | None = None) -> pd.DataFrame:
    """One row: ``[total_spend, matched_spend, matched_share, unmatched_keys]``."""
    cov = spend_coverage(con, filters)
    total = float(cov["spend"].sum())
    matched = float(cov.loc[cov["matched"], "spend"].sum())
    return pd.DataFrame({
        "total_spend": [total], "matched_spend": [matched],
        "matched_share": [matched / total if total else float("nan")],
        "unmatched_keys": [int((~cov["matched"]).sum())],
    })


# ---------------------------------------------------------------------------------------------
# Campaign vs retention (SPEC §8)
# ---------------------------------------------------------------------------------------------

RATES = ("activation_rate", "retention_w1", "retention_w4", "paying_rate")


def campaign_vs_retention(con, params: EconomicsParams | None = None) -> pd.DataFrame:
    """Marketing and operations columns side by side, one row per campaign (or channel).

    Rates carry Wilson 95 % bounds (``<rate>_low``, ``<rate>_high``); ``small_sample`` marks rows with
    fewer than 30 new users. ``ltv_<h>`` is the LTV curve after h days (day index h−1, censored);
    ``roas_<h>`` is revenue within h days / spend. ``value_cost_score`` is the perceived value − cost
    score (:func:`metrics.value_cost.score`, default model) of the campaign (its behaviour, its channel's
    survey ratings) or, at channel level, of the channel.
    """
    return _campaign_vs_retention(con, params or EconomicsParams())[0]


def campaigns_page(con, params: EconomicsParams | None = None) -> dict[str, pd.DataFrame]:
    """``economics``: :func:`campaign_economics`; ``ltv``: :func:`ltv_curves` — of the same parameters, with the
    curve computed once (the economics read their payback day from it)."""
    p = params or EconomicsParams()
    curve = ltv_curves(con, p)
    return {"economics": _economics_full(con, p, curve)[economics_columns(p)], "ltv": curve}


def campaign_vs_retention_page(con, params: EconomicsParams | None = None) -> dict[str, pd.DataFrame]:
    """``table``: :func:`campaign_vs_retention`; ``economics``: :func:`campaign_economics` of the same
    parameters — read from the economics the table is built on instead of computing them a second time when
    the retention weeks already include 1 and 4 (the table's longer LTV curve changes none of the columns)."""
    p = params or EconomicsParams()
    table, full = _campaign_vs_retention(con, p)
    if not {1, 4} <= set(p.retention_weeks):  # the table's economics have other week columns
        return {"table": table, "economics": campaign_economics(con, p)}
    return {"table": table, "economics": full[economics_columns(p)].reset_index(drop=True)}


def _campaign_vs_retention(con, p: EconomicsParams) -> tuple[pd.DataFrame, pd.DataFrame]:
    from . import value_cost  # value_cost builds on this module

    weeks = tuple(sorted(set(p.retention_weeks) | {1, 4}))
    h = p.horizon_days
    wide = EconomicsParams(level=p.level, horizon_days=h, ltv_days=max(p.ltv_days, h - 1),
                           activation_days=p.activation_days, retention_weeks=weeks, filters=p.filters,
                           timezone=p.timezone, data_end=p.data_end)
    curve = ltv_curves(con, wide)
    full = _economics_full(con, EconomicsParams(
        level=p.level, horizon_days=h, ltv_days=p.ltv_days, activation_days=p.activation_days,
        retention_weeks=weeks, filters=p.filters, timezone=p.timezone, data_end=p.data_end), curve)
    keys = list(p.keys)
    ltv_h = curve.loc[curve["day"] == h - 1, keys + ["ltv"]].rename(columns={"ltv": f"ltv_{h}"})
    out = full.merge(ltv_h, on=keys, how="left")
    out[f"roas_{h}"] = out["roas_h"]
    denominators = {"activation_rate": "new_users", "retention_w1": "eligible_w1",
                    "retention_w4": "eligible_w4", "paying_rate": "new_users"}
    numerators = {"activation_rate": "activated", "retention_w1": "retained_w1",
                  "retention_w4": "retained_w4", "paying_rate": "paying"}
    for rate in RATES:
        low, high = wilson_interval(out[numerators[rate]], out[denominators[rate]])
        out[f"{rate}_low"], out[f"{rate}_high"] = low, high
    scores = value_cost.score(con, value_cost.default_model(con), segment_by=p.level, filters=p.filters)
    scores = scores[["segment", "score"]].rename(columns={"score": "value_cost_score"})
    # the value - cost segment of a row: its campaign, or its channel for users without a campaign
    out["segment"] = out["channel"] if p.level == "channel" else out["campaign"].where(out["campaign"] != "",
                                                                                        out["channel"])
    out = out.merge(scores, on="segment", how="left")
    out["small_sample"] = out["new_users"] < SMALL_SAMPLE
    cols = keys + ["spend", "impressions", "clicks", "ctr", "new_users", "cac"]
    for rate in RATES:
        cols += [rate, f"{rate}_low", f"{rate}_high"]
    cols += [f"ltv_{h}", f"roas_{h}", "payback_day", "value_cost_score", "small_sample"]
    return out[cols].reset_index(drop=True), full



LABELS: dict[str, dict[str, str]] = {
    "spend": _label("Spend", "花费", "Ad spend in the date range, in the base currency.", "日期范围内的广告花费（本位币）。"),
    "impressions": _label("Impressions", "展示量", "Ad impressions from the spend file.", "花费文件中的广告展示次数。"),
    "clicks": _label("Clicks", "点击量", "Ad clicks from the spend file.", "花费文件中的广告点击次数。"),
    "ctr": _label("CTR", "点击率", "Clicks divided by impressions.", "点击量除以展示量。"),
    "cpc": _label("CPC", "单次点击成本", "Spend divided by clicks.", "花费除以点击量。"),
    "new_users": _label("New users", "新用户", "Users first seen in the date range, by first-touch channel and campaign.",
                        "首次出现在日期范围内的用户，按首次触点渠道和活动归因。"),
    "cac": _label("CAC", "获客成本", "Spend divided by new users.", "花费除以新用户数。"),
    "activated": _label("Activated users", "激活用户", "New users with an activation event within 7 days of first seen.",
                        "首次出现后 7 天内发生激活事件的新用户。"),
    "activation_rate": _label("Activation rate", "激活率", "Activated users divided by new users.", "激活用户除以新用户。"),
    "cost_per_activated": _label("Cost per activated user", "每激活用户成本", "Spend divided by activated users.",
                                 "花费除以激活用户数。"),
    "retained_w1": _label("Week-1 retained users", "第 1 周留存用户",
                          "Users active 7–14 days after first seen, among users observed that long.",
                          "首次出现后第 7–14 天活跃的用户（仅计观察期足够的用户）。"),
    "retention_w1": _label("Week-1 retention", "第 1 周留存率", "Week-1 retained users divided by users observed through week 1.",
                           "第 1 周留存用户除以观察满第 1 周的用户。"),
    "retained_w4": _label("Week-4 retained users", "第 4 周留存用户",
                          "Users active 28–35 days after first seen, among users observed that long.",
                          "首次出现后第 28–35 天活跃的用户（仅计观察期足够的用户）。"),
    "retention_w4": _label("Week-4 retention", "第 4 周留存率", "Week-4 retained users divided by users observed through week 4.",
                           "第 4 周留存用户除以观察满第 4 周的用户。"),
    "cost_per_retained_w4": _label("Cost per week-4 retained user", "每第 4 周留存用户成本",
                                   "CAC divided by week-4 retention.", "获客成本除以第 4 周留存率。"),
    "paying": _label("Paying users", "付费用户", "New users with at least one event with revenue above 0.",
                     "至少有一笔收入大于 0 的事件的新用户。"),
    "paying_rate": _label("Paying conversion", "付费转化率", "Paying users divided by new users.", "付费用户除以新用户。"),
    "cost_per_paying": _label("Cost per paying user", "每付费用户成本", "Spend divided by paying users.", "花费除以付费用户数。"),
    "revenue": _label("Revenue", "收入", "Net revenue (refunds subtracted) of the new users up to the end of the data.",
                      "新用户截至数据末尾的净收入（已扣除退款）。"),
    "arpu": _label("ARPU", "每用户平均收入", "Revenue divided by new users.", "收入除以新用户数。"),
    "arppu": _label("ARPPU", "每付费用户平均收入", "Revenue divided by paying users.", "收入除以付费用户数。"),
    "gmv": _label("GMV", "成交总额", "Sum of positive revenue (refunds not subtracted).", "正收入之和（不扣除退款）。"),
    "revenue_h": _label("Revenue within horizon", "周期内收入", "Net revenue earned within the horizon (30 days) of each user's first seen.",
                        "每个用户首次出现后周期（30 天）内的净收入。"),
    "roas_h": _label("ROAS (horizon)", "周期 ROAS", "Revenue within the horizon divided by spend.", "周期内收入除以花费。"),
    "roi_h": _label("ROI (horizon)", "周期 ROI", "(Revenue within the horizon − spend) divided by spend.", "（周期内收入 − 花费）除以花费。"),
    "period_revenue": _label("Period revenue", "区间收入", "Revenue of the new users earned inside the date range.",
                             "新用户在日期范围内产生的收入。"),
    "period_roas": _label("Period ROAS", "区间 ROAS", "Period revenue divided by spend in the same range.",
                          "区间收入除以同一范围内的花费。"),
    "payback_day": _label("Payback day", "回本天数", "First day k on which LTV_k reaches CAC; empty if not yet reached.",
                          "LTV_k 首次达到获客成本的天数 k；尚未回本则为空。"),
    "ltv": _label("LTV", "用户生命周期价值", "Cumulative net revenue per acquired user up to day k, over users observed that long.",
                  "截至第 k 天每个获客用户的累计净收入（仅计观察期足够的用户）。"),
    "ltv_30": _label("LTV (30 days)", "30 天 LTV", "Net revenue per user within 30 days of first seen, over users observed 30 days.",
                     "首次出现后 30 天内每用户净收入（仅计观察满 30 天的用户）。"),
    "roas_30": _label("ROAS (30 days)", "30 天 ROAS", "Revenue within 30 days of first seen divided by spend.",
                      "首次出现后 30 天内收入除以花费。"),
    "matched": _label("Matched spend key", "已匹配的花费键", "The spend row's campaign (or channel) is some user's first touch.",
                      "该花费行的活动（或渠道）是某个用户的首次触点。"),
    "matched_share": _label("Matched spend share", "已匹配花费占比", "Share of spend whose key matched a first-touch campaign.",
                            "键与首次触点活动匹配的花费占比。"),
    "unmatched_keys": _label("Unmatched spend keys", "未匹配的花费键", "Spend keys no user's first touch matched.",
                             "没有用户首次触点与之匹配的花费键。"),
    "small_sample": _label("Small sample", "小样本", "Fewer than 30 new users: compare with care.", "新用户少于 30：比较需谨慎。"),
    "value_cost_score": _label("Value − cost score", "价值 − 成本得分", "Perceived value minus perceived cost of the campaign (or channel), −10..10.",
                               "该活动（或渠道）的感知价值减感知成本，范围 −10..10。"),
}
