"""Diminishing returns of paid channels (SPEC §6): weekly spend vs weekly new users, ``users = a·spend^b``.

Query intuition
---------------
1. **paid_weeks** — spend rows (date in the range, channel selection) summed per channel and Monday week.
2. **user_weeks** — new users per first-touch channel and Monday week of their ``first_seen`` in the
   report timezone (users acquired in the range, as in :mod:`metrics.economics`).
3. The two are joined per (channel, week) for channels that have spend; only **complete weeks** are
   kept — the Monday on or after the first day of the range (or of the data: the local date of the
   first event) through the Sunday on or before its last day (the range's end, or the earlier of the
   local date of the last event and the last spend date) — because a partial week has less spend *and* fewer users and would bend the
   curve.

The fit (numpy, over a handful of weekly points per channel): least squares of
``log users = log a + b·log spend`` on the weeks with spend > 0 and users > 0. ``b < 1`` means each
extra yuan brings fewer users. At spend ``s`` the marginal users per yuan are ``a·b·s^(b−1)``, so the
**marginal CAC** is ``s^(1−b) / (a·b)``, evaluated at the **current spend** = mean weekly spend of the
last 4 complete weeks with spend. The **blended CAC** is total spend / total new users over the complete
weeks. A channel is **saturated** when marginal CAC > ``saturation_factor`` (1.5) × blended CAC.
Channels with fewer than ``min_weeks`` usable weeks, or whose weekly spend never changes, get no fit
(a, b NULL, saturated NA) and a note that says why.
"""
from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pandas as pd

from store.errors import UserInputError

from .economics import acquired_sql, spend_where_sql, validate_common
from .filters import Filters, local_sql
from .labels import label as _label
from .stats import power_fit

CURRENT_WEEKS = 4


@dataclass(frozen=True)
class SaturationParams:
    min_weeks: int = 6
    saturation_factor: float = 1.5
    filters: Filters | None = None
    timezone: str = "UTC"
    data_end: datetime | None = None  # None = the latest event time

    def __post_init__(self):
        validate_common(self.filters, self.timezone)
        if not isinstance(self.min_weeks, int) or self.min_weeks < 3:
            raise UserInputError("A saturation fit needs at least 3 weeks; set min_weeks to 3 or more.")
        if not isinstance(self.saturation_factor, (int, float)) or self.saturation_factor <= 1:
            raise UserInputError("The saturation factor must be a number above 1 (e.g. 1.5).")


def saturation_points_sql(p: SaturationParams) -> tuple[str, list]:
    f = p.filters or Filters()
    acq, acq_params = acquired_sql(p.filters)
    spend_where, spend_params = spend_where_sql(p.filters, "s")
    local_first = local_sql("a.first_seen", p.timezone)
    local_end = local_sql("coalesce(CAST(? AS TIMESTAMP), (SELECT max(event_time) FROM events))", p.timezone)
    local_start = local_sql("(SELECT min(event_time) FROM events)", p.timezone)
    sql = f"""
WITH
-- paid_weeks: spend per channel and Monday week
paid_weeks AS (
    SELECT s.channel, CAST(date_trunc('week', s.date) AS DATE) AS week_start, sum(s.spend) AS spend
    FROM spend s WHERE {spend_where}
    GROUP BY ALL
),
-- acquired: users whose first_seen is in the range, keyed by first touch
acquired AS ({acq}),
-- user_weeks: new users per channel and Monday week of first_seen (report timezone)
user_weeks AS (
    SELECT a.channel, CAST(date_trunc('week', CAST({local_first} AS DATE)) AS DATE) AS week_start,
           count(*) AS new_users
    FROM acquired a
    WHERE a.channel IN (SELECT channel FROM paid_weeks)
    GROUP BY ALL
),
-- span: first and last local day covered (the range, else the data)
span AS (
    SELECT coalesce(CAST(? AS DATE), CAST({local_start} AS DATE),
                    (SELECT min(date) FROM spend)) AS first_day,
           coalesce(CAST(? AS DATE), least(CAST({local_end} AS DATE), (SELECT max(date) FROM spend)),
                    (SELECT max(date) FROM spend)) AS last_day
),
points AS (
    SELECT coalesce(pw.channel, uw.channel) AS channel, coalesce(pw.week_start, uw.week_start) AS week_start,
           coalesce(pw.spend, 0) AS spend, coalesce(uw.new_users, 0) AS new_users
    FROM paid_weeks pw
    FULL OUTER JOIN user_weeks uw ON uw.channel = pw.channel AND uw.week_start = pw.week_start
)
SELECT pt.channel, pt.week_start, pt.spend, pt.new_users
FROM points pt CROSS JOIN span
WHERE pt.week_start >= span.first_day AND pt.week_start + INTERVAL '6 days' <= span.last_day
ORDER BY pt.channel, pt.week_start
"""
    return sql, spend_params + acq_params + [f.start, f.end, p.data_end]


def saturation_points(con, params: SaturationParams | None = None) -> pd.DataFrame:
    """``[channel, week_start, spend, new_users]`` per paid channel and complete Monday week."""
    p = params or SaturationParams()
    sql, values = saturation_points_sql(p)
    df = con.execute(sql, values).df()
    df["week_start"] = pd.to_datetime(df["week_start"]).dt.date
    df["new_users"] = df["new_users"].astype("int64")
    return df


def _fit_channel(channel: str, pts: pd.DataFrame, p: SaturationParams) -> dict:
    usable = pts[(pts["spend"] > 0) & (pts["new_users"] > 0)]
    total_users = pts["new_users"].sum()
    blended = pts["spend"].sum() / total_users if total_users > 0 else float("nan")
    recent = pts[pts["spend"] > 0].sort_values("week_start").tail(CURRENT_WEEKS)
    current = float(recent["spend"].mean()) if len(recent) else float("nan")
    row = {"channel": channel, "weeks": int(len(usable)), "a": np.nan, "b": np.nan, "r2": np.nan,
           "current_spend": current, "marginal_cac": np.nan, "blended_cac": blended, "saturated": pd.NA}
    if len(usable) < p.min_weeks:
        row["note"] = (f"Only {len(usable)} complete week(s) with both spend and new users; "
                       f"at least {p.min_weeks} are needed for a fit.")
        return row
    if usable["spend"].nunique() == 1:
        row["note"] = "Weekly spend never changed, so the response of users to spend cannot be measured."
        return row
    a, b, r2 = power_fit(usable["spend"], usable["new_users"])
    row.update(a=a, b=b, r2=r2)
    if b <= 0:
        row["note"] = f"New users do not grow with spend (b = {b:.2f}); the marginal CAC is not defined."
        return row
    marginal = current ** (1 - b) / (a * b)
    saturated = bool(marginal > p.saturation_factor * blended)
    row.update(marginal_cac=marginal, saturated=saturated)
    shape = "diminishing returns" if b < 1 else "no diminishing returns"
    verdict = (f"saturated: marginal CAC {marginal:,.1f} is above {p.saturation_factor:g} × blended CAC {blended:,.1f}"
               if saturated else
               f"not saturated: marginal CAC {marginal:,.1f} vs blended CAC {blended:,.1f}")
    row["note"] = f"users ≈ {a:.3g} · spend^{b:.2f} ({shape}, R² {r2:.2f}); {verdict}."
    return row


def channel_saturation(con, params: SaturationParams | None = None) -> pd.DataFrame:
    """``[channel, weeks, a, b, r2, current_spend, marginal_cac, blended_cac, saturated, note]`` per paid channel."""
    p = params or SaturationParams()
    pts = saturation_points(con, p)
    rows = [_fit_channel(ch, grp, p) for ch, grp in pts.groupby("channel", sort=True)]
    cols = ["channel", "weeks", "a", "b", "r2", "current_spend", "marginal_cac", "blended_cac", "saturated", "note"]
    out = pd.DataFrame(rows, columns=cols)
    out["weeks"] = out["weeks"].astype("int64")
    out["saturated"] = out["saturated"].astype("boolean")
    return out



LABELS: dict[str, dict[str, str]] = {
    "week_start": _label("Week", "周", "Monday of the week.", "该周的周一。"),
    "spend": _label("Weekly spend", "周花费", "Spend of the channel in the week.", "该渠道当周的花费。"),
    "new_users": _label("Weekly new users", "周新用户", "Users first seen in the week, by first-touch channel.",
                        "当周首次出现的用户（按首次触点渠道）。"),
    "weeks": _label("Weeks fitted", "拟合周数", "Complete weeks with both spend and new users.", "同时有花费和新用户的完整周数。"),
    "a": _label("Scale a", "系数 a", "Scale of the fit users = a · spend^b.", "拟合式 用户 = a · 花费^b 的系数。"),
    "b": _label("Elasticity b", "弹性 b", "Exponent of the fit; below 1 means diminishing returns.", "拟合指数；小于 1 表示边际收益递减。"),
    "r2": _label("Fit R²", "拟合 R²", "Share of variance explained on the log-log scale.", "对数-对数尺度上解释的方差比例。"),
    "current_spend": _label("Current weekly spend", "当前周花费", "Mean weekly spend of the last 4 complete weeks.",
                            "最近 4 个完整周的平均周花费。"),
    "marginal_cac": _label("Marginal CAC", "边际获客成本", "Cost of one more new user at the current spend: s^(1−b)/(a·b).",
                           "在当前花费下多获得一个新用户的成本：s^(1−b)/(a·b)。"),
    "blended_cac": _label("Blended CAC", "综合获客成本", "Total spend divided by total new users over the complete weeks.",
                          "完整周内总花费除以总新用户数。"),
    "saturated": _label("Saturated", "已饱和", "Marginal CAC above 1.5 × blended CAC.", "边际获客成本高于综合获客成本的 1.5 倍。"),
    "note": _label("Note", "说明", "The fit in words, or why there is none.", "拟合结果的文字说明，或无法拟合的原因。"),
}
