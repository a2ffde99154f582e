"""Revenue & referral (operations): paying conversion, ARPU / ARPPU, GMV of the acquired users; invites,
invited sign-ups and the K-factor per period and per acquisition channel."""
from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from metrics import UserInputError
from metrics import referral as rf
from metrics import stages as sg
from metrics.derive import query_of
from ui import format as fmt
from ui.components import (
    chart_block, choice, chosen, empty_state, help_text, label, page_header, prepared_chart, sql_text, table_block,
)
from ui.context import data_facts, filters, memo, run, tr
from ui.safe import md_escape, plot_escape

PERIODS = {"week": ("week", "周"), "month": ("month", "月")}
MAX_COHORTS = 30


_sql = sql_text


_help = help_text


# Chart builders: run once per data version, parameters and language (:func:`ui.context.memo`); a rerun only
# sends what they made. Each returns (figure, CSV bytes of its table, SQL text).

def _channel_chart(by_channel: pd.DataFrame, rev_params) -> tuple:
    """ARPU (bars, bottom axis) and paying rate (diamonds, top axis) per channel, one row each, highest ARPU on top.

    Rows rather than columns: a channel's name and its two values ("xiaohongshu", "¥178.1 · 24.8%") are longer
    than a column of a half-width chart is wide, and collided or turned on their side."""
    n = len(by_channel)
    # the values go into the row labels: bar texts would collide with the diamonds
    y = [f"{plot_escape(c)}<br>{fmt.money(a, digits=1)} · {fmt.pct(r)}"
         for c, a, r in zip(by_channel["channel"], by_channel["arpu"], by_channel["paying_rate"])]
    fig = go.Figure()
    fig.add_trace(go.Bar(y=y, x=by_channel["arpu"], orientation="h", name=label(sg.LABELS, "arpu"),
                         marker_color="#1f77b4", hovertemplate="%{y}<extra></extra>"))
    fig.add_trace(go.Scatter(y=y, x=by_channel["paying_rate"], xaxis="x2", mode="markers",
                             marker={"size": 11, "color": "#ff7f0e", "symbol": "diamond"},
                             name=label(sg.LABELS, "paying_rate"), hovertemplate="%{y}<extra></extra>"))
    fig.update_layout(
        height=max(400, 110 + 34 * n), margin={"t": 64, "b": 10},
        legend={"orientation": "h", "y": 1.0, "yanchor": "top", "yref": "container"},   # above the top axis's ticks
        xaxis={"title": label(sg.LABELS, "arpu"), "range": [0, 1.15 * max(float(by_channel["arpu"].max()), 1e-9)]},
        # the top axis is named by the legend's diamond, just above it
        xaxis2={"overlaying": "x", "side": "top", "tickformat": ".0%",
                "showgrid": False, "range": [0, 1.15 * max(float(by_channel["paying_rate"].max()), 1e-9)]},
        yaxis={"title": tr("First-touch channel", "首次触达渠道"), "autorange": "reversed", "tickfont": {"size": 10}})
    return *prepared_chart(fig, by_channel), _sql(sg.revenue_summary_sql(replace(rev_params, breakdown="channel")))


def _cohort_chart(cohorts: pd.DataFrame, rev_params, period: str) -> tuple:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=cohorts["cohort"], y=cohorts["revenue"], name=label(sg.LABELS, "net_revenue"),
                         marker_color="#2ca02c"), secondary_y=False)
    fig.add_trace(go.Scatter(x=cohorts["cohort"], y=cohorts["arpu"], name=label(sg.LABELS, "arpu"),
                             mode="lines+markers", line={"color": "#1f77b4"}), secondary_y=True)
    fig.update_yaxes(title_text=label(sg.LABELS, "net_revenue"), secondary_y=False)
    fig.update_yaxes(title_text=label(sg.LABELS, "arpu"), rangemode="tozero", secondary_y=True)
    fig.update_layout(height=380, margin={"t": 30, "b": 10}, legend_orientation="h", legend_y=1.12,
                      xaxis_title=tr(f"Acquisition {tr(*PERIODS[period])}", f"获客{tr(*PERIODS[period])}"))
    return *prepared_chart(fig, cohorts), _sql(sg.revenue_by_cohort_sql(rev_params, period))


def _k_period_chart(per_period: pd.DataFrame) -> tuple:
    L = rf.LABELS
    totals = per_period.groupby("period_start", as_index=False)[
        ["active_users", "invites", "invited_signups"]].sum()
    totals["k_factor"] = totals["invited_signups"] / totals["active_users"].where(totals["active_users"] > 0)
    fig = go.Figure(go.Scatter(x=totals["period_start"], y=totals["k_factor"], mode="lines+markers",
                               name=tr("All channels", "全部渠道"), line={"color": "#111111", "width": 3}))
    for channel, part in per_period.groupby("channel", sort=True):
        fig.add_trace(go.Scatter(x=part["period_start"], y=part["k_factor"], mode="lines", name=str(channel),
                                 opacity=0.6))
    fig.update_layout(height=380, margin={"t": 30, "b": 10}, yaxis_title=label(L, "k_factor"),
                      xaxis_title=tr("Week (Monday)", "周（周一开始）"), legend={"font": {"size": 10}})
    return *prepared_chart(fig, per_period), _sql(query_of(per_period))


def _k_channel_chart(by_channel: pd.DataFrame, channels: tuple, ref_params) -> tuple:
    """``(figure, CSV, SQL)`` of the K-factor per channel, every channel of ``channels`` shown: all of them come
    from one query (equal to referral_summary narrowed to the channel); a channel without activity is the
    summary's row of zeros."""
    L = rf.LABELS
    by_ch = by_channel.dropna(subset=["channel"]).set_index("channel")
    nothing = {"users": 0, "inviters": 0, "invites": 0, "invites_per_user": float("nan"), "invited_signups": 0,
               "invite_conversion": float("nan"), "k_factor": float("nan")}
    rows = [{"channel": channel, **(by_ch.loc[channel].to_dict() if channel in by_ch.index else nothing)}
            for channel in channels]
    per_channel = pd.DataFrame(rows).sort_values("k_factor", ascending=False, na_position="last")
    fig = go.Figure(go.Bar(x=per_channel["channel"], y=per_channel["k_factor"], marker_color="#9467bd",
                           text=[fmt.number(v, 3) for v in per_channel["k_factor"]], textposition="outside",
                           customdata=per_channel[["invites", "invited_signups", "users"]].to_numpy(),
                           hovertemplate="%{x}: K %{y:.3f}<br>" + label(L, "invites") + " %{customdata[0]:,} · "
                           + label(L, "invited_signups") + " %{customdata[1]:,} · " + label(L, "users")
                           + " %{customdata[2]:,}<extra></extra>"))
    fig.update_layout(height=380, margin={"t": 30, "b": 10}, yaxis_title=label(L, "k_factor"),
                      xaxis_title=tr("First-touch channel of the acting users", "行为用户的首次触达渠道"))
    return *prepared_chart(fig, per_channel), _sql(rf.referral_sql(ref_params, by_channel=True))


def _periods(start, end, period: str) -> list[tuple]:
    """Local (first day, last day) of each week (Monday) / month overlapping [start, end], clipped to it."""
    first = start - timedelta(days=start.weekday()) if period == "week" else start.replace(day=1)
    out = []
    while first <= end:
        if period == "week":
            nxt = first + timedelta(days=7)
        else:
            nxt = (first.replace(day=28) + timedelta(days=4)).replace(day=1)
        out.append((first, max(first, start), min(nxt - timedelta(days=1), end)))
        first = nxt
    return out


page_header("Revenue & referral", "转化与自传播", owner="operations")
flt = filters()

try:
    rev_params = sg.AarrrParams(filters=flt, timezone=flt.timezone)
    # the summary, the channels and the cohorts of the period radio below come from one pass over the events
    cohort_period = chosen("revref_period", next(iter(PERIODS)))
    revenue = run(sg.revenue_page, rev_params, cohort_period)
    summary = revenue["summary"]
    ref_params = rf.ReferralParams(period="week", filters=flt, timezone=flt.timezone)
    ref_frames = run(rf.referral_page, ref_params)  # summary, per week and per channel from one pass over the events
    ref_summary = ref_frames["summary"]
except UserInputError as exc:
    st.error(md_escape(str(exc)))
    st.stop()

row = summary.iloc[0]
if not int(row["acquired"]) and not int(ref_summary.iloc[0]["users"]):
    empty_state("No users in the selected date range and filters: widen the date range or clear the channel and "
                "campaign filters, or load an event file on the Data page.",
                "所选日期范围和筛选条件下没有用户：请放宽日期范围、清除渠道和活动筛选，或在“数据”页加载事件文件。")
    st.stop()

# Revenue KPIs ------------------------------------------------------------------------------------------
st.subheader(tr("Revenue of the acquired users", "新用户的收入"))
k = st.columns(6)
k[0].metric(label(sg.LABELS, "acquired"), fmt.number(row["acquired"]), help=_help(sg.LABELS, "acquired"))
k[1].metric(label(sg.LABELS, "paying_rate"), fmt.pct(row["paying_rate"]), help=_help(sg.LABELS, "paying_rate"))
k[2].metric(label(sg.LABELS, "net_revenue"), fmt.money(row["revenue"]), help=_help(sg.LABELS, "net_revenue"))
k[3].metric(label(sg.LABELS, "gmv"), fmt.money(row["gmv"]), help=_help(sg.LABELS, "gmv"))
k[4].metric(label(sg.LABELS, "arpu"), fmt.money(row["arpu"], digits=2), help=_help(sg.LABELS, "arpu"))
k[5].metric(label(sg.LABELS, "arppu"), fmt.money(row["arppu"], digits=2), help=_help(sg.LABELS, "arppu"))
rev_scope = tr(f"Acquired users = first seen in the sidebar date range ({flt.timezone}); their revenue counts up to "
               f"the "
               f"end of the data, refunds (negative revenue) subtracted; paying = at least one event with revenue > 0.",
               f"新用户 = 首次出现在侧栏日期范围内（{flt.timezone}）的用户；其收入计至数据截止，已扣除退款（负收入）；"
               f"付费 = 至少一笔收入 > 0 的事件。")

# By channel --------------------------------------------------------------------------------------------
left, right = st.columns([3, 2])
with left:
    by_channel = revenue["by_channel"]
    by_channel = by_channel[by_channel["acquired"] > 0].sort_values("arpu", ascending=False)
    if by_channel.empty:
        empty_state("No acquired users in the selected range.", "所选范围内没有新用户。")
    else:
        fig, csv, sql = memo(_channel_chart, (rev_params,), by_channel, rev_params)
        chart_block(fig, csv, key="revref_channel", name="revenue_by_channel",
                    caption=tr("ARPU (net revenue ÷ acquired users, bars) and paying conversion (paying ÷ acquired, "
                               "diamonds) per first-touch channel. ", "各首次触达渠道的 ARPU（净收入 ÷ 新用户，柱）"
                               "与付费转化率（付费 ÷ 新用户，菱形）。") + rev_scope,
                    sql=sql)

# Revenue by acquisition cohort -------------------------------------------------------------------------
with right:
    period = choice("radio", tr("Cohort period", "同期群周期"), PERIODS, horizontal=True, key="revref_period")
    if flt.start is None or flt.end is None:
        empty_state("Choose a date range in the sidebar to see revenue by cohort.", "请在侧栏选择日期范围以查看同期群收入。")
    else:
        rows = []
        # every cohort in one query (equal to revenue_summary over the cohort's clipped dates); cohorts that
        # acquired nobody are the summary's row of zeros
        by_cohort = (revenue["by_cohort"] if period == cohort_period
                     else run(sg.revenue_by_cohort, rev_params, period)).set_index("cohort")
        nobody = {"acquired": 0, "paying": 0, "paying_rate": float("nan"), "revenue": 0.0, "gmv": 0.0,
                  "arpu": float("nan"), "arppu": float("nan")}
        for first, lo, hi in _periods(flt.start, flt.end, period)[-MAX_COHORTS:]:
            part = by_cohort.loc[first].to_dict() if first in by_cohort.index else nobody
            rows.append({"cohort": pd.Timestamp(first), **part})
        cohorts = pd.DataFrame(rows)
        fig, csv, sql = memo(_cohort_chart, (rev_params, period), cohorts, rev_params, period)
        chart_block(fig, csv, key="revref_cohorts", name=f"revenue_by_{period}_cohort",
                    caption=tr(f"Revenue over time, by acquisition {period}: the net revenue to date (bars) and ARPU "
                               f"(line) of the users first seen in each {period} (Monday weeks; the first and last are "
                               "clipped to the date range). Older cohorts have had longer to pay, so the latest bars "
                               "are still growing. Each bar equals the revenue summary run with the cohort's days as "
                               "the range; all cohorts come from one query (shown). ",
                               f"按获客{tr(*PERIODS[period])}的收入趋势：每{tr(*PERIODS[period])}首次出现的用户迄今的净收入"
                               "（柱）与 ARPU（线）（周从周一开始；首尾按日期范围截断）。越早的同期群付费时间越长，"
                               "最近的柱仍在增长。每根柱等于以该同期群的日期为范围运行的收入汇总；所有同期群由一条查询得出（如下所示）。")
                    + rev_scope,
                    sql=sql)

# Referral ----------------------------------------------------------------------------------------------
st.subheader(tr("Referral", "自传播"))
ref = ref_summary.iloc[0]
L = rf.LABELS
k = st.columns(6)
k[0].metric(label(L, "users"), fmt.number(ref["users"]), help=_help(L, "users"))
k[1].metric(label(L, "inviters"), fmt.number(ref["inviters"]), help=_help(L, "inviters"))
k[2].metric(label(L, "invites"), fmt.number(ref["invites"]), help=_help(L, "invites"))
k[3].metric(label(L, "invited_signups"), fmt.number(ref["invited_signups"]), help=_help(L, "invited_signups"))
k[4].metric(label(L, "invite_conversion"), fmt.pct(ref["invite_conversion"]), help=_help(L, "invite_conversion"))
k[5].metric(label(L, "k_factor"), fmt.number(ref["k_factor"], 3), help=_help(L, "k_factor"))
ref_scope = tr("Invites = referral-stage events, sign-ups = acquisition-stage events (stage map on the Data page); an "
               "invited sign-up names an existing user in its inviter_id property and is credited to the inviter's "
               "first-touch channel. K-factor = invites per active user × invite conversion = invited sign-ups ÷ "
               f"active users. Events in the sidebar date range ({flt.timezone}).",
               "邀请 = 推荐阶段事件，注册 = 获客阶段事件（阶段映射见“数据”页）；受邀注册指其 inviter_id 属性指向已有用户的注册，"
               "计入邀请人的首次触达渠道。K 因子 = 人均邀请数 × 邀请转化率 = 受邀注册 ÷ 活跃用户。"
               f"统计侧栏日期范围（{flt.timezone}）内的事件。")
if not int(ref["invites"]) and not int(ref["invited_signups"]):
    empty_state("No invites in the selected range: check that invite events are mapped to the referral stage on the "
                "Data page.", "所选范围内没有邀请：请在“数据”页确认邀请事件已映射到推荐阶段。")
    st.stop()

left, right = st.columns(2)
period_csv = period_sql = None   # the CSV and SQL of the table by week and channel: its chart's, made once
with left:
    per_period = ref_frames["per_period"]
    if per_period.empty:
        empty_state("No activity in the selected range.", "所选范围内没有活动。")
    else:
        fig, period_csv, period_sql = memo(_k_period_chart, (ref_params,), per_period)
        chart_block(fig, period_csv, key="revref_k_period", name="k_factor_by_week",
                    caption=tr("K-factor per week: all channels (thick; invited sign-ups ÷ active users of the week, "
                               "summed over channels) and per inviter's first-touch channel. ",
                               "每周 K 因子：全部渠道（粗线；当周受邀注册 ÷ 活跃用户，按渠道加总）及按邀请人首次触达渠道。")
                    + ref_scope,
                    sql=period_sql)

with right:
    channels = tuple(flt.channels) or tuple(data_facts()["channels"])
    fig, csv, sql = memo(_k_channel_chart, (ref_params, channels), ref_frames["by_channel"], channels, ref_params)
    chart_block(fig, csv, key="revref_k_channel", name="k_factor_by_channel",
                caption=tr("K-factor over the whole range per first-touch channel (of the inviters and active users): "
                           "each "
                           "channel's row equals the summary query with that channel as the filter; all channels come "
                           "from one query grouped by channel (shown). ",
                           "整个范围内按首次触达渠道（邀请人及活跃用户）的 K 因子：每个渠道的结果等于以该渠道为筛选条件的汇总查询；"
                           "所有渠道由一条按渠道分组的查询得出（如下所示）。") + ref_scope,
                sql=sql)

with st.expander(tr("Referral table by week and channel", "按周和渠道的自传播明细"), expanded=False):
    cfg = {c: st.column_config.NumberColumn(label(L, c), help=_help(L, c), format="localized")
           for c in ("active_users", "inviters", "invites", "invited_signups")}
    cfg.update({c: st.column_config.NumberColumn(label(L, c), help=_help(L, c), format="%.3f")
                for c in ("invites_per_user", "k_factor")})
    cfg["invite_conversion"] = st.column_config.NumberColumn(label(L, "invite_conversion"),
                                                             help=_help(L, "invite_conversion"), format="percent")
    cfg["period_start"] = st.column_config.DateColumn(label(L, "period_start"), help=_help(L, "period_start"))
    table_block(per_period, key="revref_ref_table", name="referral_by_week_channel", column_config=cfg,
                csv=period_csv,
                caption=tr("One row per week and first-touch channel. ", "每周每个首次触达渠道一行。") + ref_scope,
                sql=period_sql or _sql(query_of(per_period)))
