"""The headline KPIs of the Overview page, each read from a ``metrics`` function.

One place defines them so the page and its tests agree: :data:`KPIS` lists every KPI with its
owner (marketing / operations), the metrics module whose ``LABELS`` names it, and how to compute
it for a ``metrics.Filters``; :func:`shifted` gives the previous period of equal length.
Aggregations here are over a metric's output rows (a handful of channels), never over events.
"""
from __future__ import annotations

import importlib
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Callable

import pandas as pd

import store

from .context import run


def _module(name: str):
    """A metrics module, or None while it is not available."""
    try:
        return importlib.import_module(f"metrics.{name}")
    except ImportError:
        return None


def _value(df: pd.DataFrame, column: str, row: int = 0):
    if df is None or df.empty or column not in df.columns:
        return None
    v = df[column].iloc[row]
    return None if pd.isna(v) else float(v)


def _channel_economics(f):
    econ = _module("economics")
    if econ is None:
        return None
    # spend, new users and revenue within 30 days are all the KPIs need: skip the per-user pass over every event
    return run(econ.acquisition_returns, econ.EconomicsParams(level="channel", filters=f, timezone=f.timezone))


def _sum(df, column):
    return None if df is None or df.empty else float(df[column].fillna(0).sum())


def spend(f):
    return _sum(_channel_economics(f), "spend")


def new_users(f):
    return _sum(_channel_economics(f), "new_users")


def _paid(f):
    """Channels with spend in the range (organic, direct and referral users have no cost to divide)."""
    df = _channel_economics(f)
    return None if df is None or df.empty else df[df["spend"].fillna(0) > 0]


def cac(f):
    """Spend over the new users of the channels with spend."""
    paid = _paid(f)
    if paid is None or paid.empty or not paid["new_users"].sum():
        return None
    return float(paid["spend"].sum() / paid["new_users"].sum())


def roas_30(f):
    """30-day revenue of the users of channels with spend, over that spend."""
    paid = _paid(f)
    if paid is None or paid.empty or not paid["spend"].sum():
        return None
    return float(paid["revenue_h"].fillna(0).sum() / paid["spend"].sum())


def uv(f):
    traffic = _module("traffic")
    if traffic is None:
        return None
    # traffic.visits: the same UV as traffic_summary's, without deriving every session of the range; the page
    # views are those the database keeps its sessions for, as on the Traffic page
    fn = getattr(traffic, "visits", None) or traffic.traffic_summary
    names = run(store.stored_pageview_events)
    return _value(run(fn, traffic.TrafficParams(filters=f, timezone=f.timezone, pageview_events=names)), "uv")


def _aarrr(f):
    """The AARRR table at its defaults: one per-user pass over the events serves the Overview's funnel chart,
    activation rate, paying rate and ARPU."""
    stages = _module("stages")
    return None if stages is None else run(stages.aarrr, stages.AarrrParams(filters=f, timezone=f.timezone))


def _aarrr_rate(f, stage: str):
    df = _aarrr(f)
    return None if df is None else _value(df[df["stage"] == stage].reset_index(drop=True), "rate_of_acquired")


def activation(f):
    return _aarrr_rate(f, "activation")


def retention_w4(f):
    """Week-4 retention from the cohort metric: rolling weeks from each user's first event, cohorts of the
    weeks that start in the range, averaged over the cohorts whose week 4 has fully ended (censored)."""
    ret = _module("retention")
    if ret is None:
        return None
    weeks = (f.end - f.start).days // 7 + 2 if f.start and f.end else 20
    df = run(ret.retention, ret.RetentionParams(period="week", periods=max(5, weeks), alignment="rolling",
                                                filters=f, timezone=f.timezone))
    avg = ret.retention_average(df)
    return _value(avg[avg["period"] == 4].reset_index(drop=True), "rate")


def paying_rate(f):
    """Paying ÷ acquired: the AARRR revenue row, equal to ``revenue_summary``'s ``paying_rate``."""
    return _aarrr_rate(f, "revenue")


def arpu(f):
    """Net revenue ÷ acquired users (``revenue_summary``'s ``arpu``), from the AARRR revenue and acquisition rows."""
    df = _aarrr(f)
    if df is None:
        return None
    rows = df.set_index("stage")
    acquired = rows.loc["acquisition", "users"] if "acquisition" in rows.index else None
    if acquired is None or pd.isna(acquired) or not acquired:
        return None
    return float(rows.loc["revenue", "value"]) / float(acquired)


def k_factor(f):
    referral = _module("referral")
    if referral is None:
        return None
    return _value(run(referral.referral_summary, referral.ReferralParams(filters=f, timezone=f.timezone)), "k_factor")


@dataclass(frozen=True)
class Kpi:
    key: str            # the key in the module's LABELS
    module: str         # the metrics module that defines it
    owner: str          # marketing | operations
    compute: Callable
    kind: str           # money | number | pct | ratio
    en: str             # fallback labels when the module's LABELS lacks the key
    zh: str
    higher_is_better: bool = True


KPIS: tuple[Kpi, ...] = (
    Kpi("spend", "economics", "marketing", spend, "money", "Spend", "花费", higher_is_better=False),
    Kpi("new_users", "economics", "marketing", new_users, "number", "New users", "新用户"),
    Kpi("cac", "economics", "marketing", cac, "money", "CAC (paid)", "付费获客成本", higher_is_better=False),
    Kpi("roas_h", "economics", "marketing", roas_30, "ratio", "ROAS (30 days)", "30 天 ROAS"),
    Kpi("uv", "traffic", "marketing", uv, "number", "Visitors (UV)", "访客 (UV)"),
    Kpi("activation_rate", "stages", "operations", activation, "pct", "Activation rate", "激活率"),
    Kpi("retention_w4", "retention", "operations", retention_w4, "pct", "Week-4 retention", "第 4 周留存"),
    Kpi("paying_rate", "stages", "operations", paying_rate, "pct", "Paying conversion", "付费转化率"),
    Kpi("arpu", "stages", "operations", arpu, "money", "ARPU", "ARPU"),
    Kpi("k_factor", "referral", "operations", k_factor, "ratio", "K-factor", "K 因子"),
)


def shifted(f):
    """The previous period of equal length (None when the filters have no date range)."""
    if f.start is None or f.end is None:
        return None
    length = timedelta(days=(f.end - f.start).days + 1)
    return replace(f, start=f.start - length, end=f.end - length)


def relative_change(now, before):
    """(now − before) / |before|, or None when either is missing or before is 0."""
    if now is None or before is None or before == 0:
        return None
    return (now - before) / abs(before)
