"""Acquisition (marketing): new users per period by first-touch channel or campaign, and per campaign."""
from __future__ import annotations

from dataclasses import replace
from datetime import date

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from metrics import UserInputError
from metrics import economics as em
from metrics import retention as rm
from ui import format as fmt
from ui.components import (
    campaign_label, chart_block, choice, empty_state, help_text, label, metric_sql, page_header, prepared_chart,
    table_block,
)
from ui.context import data_facts, filters, lang, local_date, memo, run, tr
from ui.safe import csv_bytes, md_escape

PERIOD_NAMES = {"day": ("day", "日"), "week": ("week", "周"), "month": ("month", "月")}
BY = {"channel": ("First-touch channel", "首次触达渠道"), "campaign": ("First-touch campaign", "首次触达活动")}
PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94", "#f7b6d2", "#c7c7c7")


_sql = metric_sql


def _lab(key: str) -> str:
    return label(em.LABELS, key)


def _help(key: str) -> str:
    return help_text(em.LABELS, key)


def _periods(start: date, end: date, period: str) -> int:
    """How many calendar periods (Monday weeks, months) the local dates [start, end] touch."""
    if period == "day":
        return (end - start).days + 1
    if period == "week":
        return (end.toordinal() - end.weekday() - (start.toordinal() - start.weekday())) // 7 + 1
    return (end.year - start.year) * 12 + end.month - start.month + 1


def _series_chart(new: pd.DataFrame, by: str, cohorts: rm.RetentionParams, data_end) -> tuple:
    """(figure, CSV, SQL) of new users per period, stacked by first-touch channel or campaign."""
    order = new.groupby(by)["new_users"].sum().sort_values(ascending=False).index
    fig = go.Figure()
    for i, value in enumerate(order):
        part = new[new[by] == value].sort_values("period_start")
        fig.add_trace(go.Bar(x=part["period_start"], y=part["new_users"], name=str(value),
                             marker_color=PALETTE[i % len(PALETTE)]))
    fig.update_layout(barmode="stack", height=420, margin={"t": 30, "b": 10},
                      xaxis_title=tr("Period start", "周期开始"), yaxis_title=_lab("new_users"),
                      legend={"title": tr(*BY[by])})
    if lang() == "zh":
        fig.update_xaxes(tickformat="%m月%d日")
    return *prepared_chart(fig, new), _sql(rm.cohort_sizes, cohorts, data_end)


def _tables(by_channel: pd.DataFrame, by_campaign: pd.DataFrame, flt) -> tuple:
    """(channel table, its CSV and SQL, campaign table, its CSV and SQL)."""
    total = by_channel["new_users"].sum()
    ch = by_channel[["channel", "new_users", "spend", "cac"]].assign(share=by_channel["new_users"] / total)
    ch = ch.sort_values("new_users", ascending=False)
    cols = ["channel", "campaign", "new_users", "spend", "cac", "activation_rate", "paying_rate"]
    camp = by_campaign[cols].sort_values("new_users", ascending=False)
    camp = camp.assign(campaign=campaign_label(camp["campaign"]))
    sqls = [_sql(em.campaign_economics, em.EconomicsParams(level=level, filters=flt, timezone=flt.timezone))
            for level in ("channel", "campaign")]
    return ch, csv_bytes(ch), sqls[0], camp, csv_bytes(camp), sqls[1]


page_header("Acquisition", "拉新", owner="marketing")
flt = filters()
facts = data_facts()
start = flt.start or local_date(facts["first"], flt.timezone)
end = flt.end or local_date(facts["last"], flt.timezone)
if start is None or end is None or not facts["users"]:
    empty_state("No users yet: load an event file on the Data page.", "还没有用户：请在“数据”页加载事件文件。")
    st.stop()

c1, c2 = st.columns(2)
period = choice("radio", tr("Period", "周期"), PERIOD_NAMES, key="acquisition_period", container=c1, index=1,
                horizontal=True)
by = choice("radio", tr("Split by", "拆分维度"), BY, key="acquisition_by", container=c2, horizontal=True)
# Cohort sizes (period 0 of a first-time, any-event retention matrix split by first touch, computed without its
# returns) are the new users per period. The date range is turned into whole periods ending with the one holding
# ``end``: the retention metric itself would drop a period that starts before the range.
try:
    cohorts = rm.RetentionParams(period=period, periods=min(_periods(start, end, period), rm.MAX_PERIODS),
                                 end=end, breakdown=by, filters=replace(flt, start=None, end=None),
                                 timezone=flt.timezone)
    sizes = run(rm.cohort_sizes, cohorts)
    # both levels of the economics from one pass over the acquired users (= campaign_economics at each level)
    levels = run(em.economics_levels, em.EconomicsParams(filters=flt, timezone=flt.timezone))
    by_campaign, by_channel = levels["campaign"], levels["channel"]
except UserInputError as exc:
    st.error(md_escape(str(exc)))
    st.stop()

new = sizes.rename(columns={"breakdown": by, "cohort": "period_start", "cohort_size": "new_users"})
if new.empty or by_channel["new_users"].sum() == 0:
    empty_state("No user was first seen in the selected range: widen the date range or clear the channel and "
                "campaign filters.", "所选范围内没有首次出现的用户：请放宽日期范围或清除渠道和活动筛选。")
    st.stop()

period_word = tr(*PERIOD_NAMES[period])
options = tr(f"Period: {period_word}; split by {BY[by][0].lower()}; first-touch attribution (fixed per user); "
             f"time zone {flt.timezone}.",
             f"周期：{period_word}；拆分：{BY[by][1]}；首次触达归因（每位用户固定）；时区 {flt.timezone}。")

# KPI row ---------------------------------------------------------------------------------------------
total = int(by_channel["new_users"].sum())
paid = int(by_channel.loc[by_channel["spend"].fillna(0) > 0, "new_users"].sum())
top = by_channel.sort_values("new_users", ascending=False).iloc[0]
k = st.columns(4)
k[0].metric(_lab("new_users"), fmt.number(total), help=_help("new_users"))
k[1].metric(tr("From paid channels", "来自付费渠道"), fmt.pct(paid / total if total else None),
            help=tr("Share of new users whose first-touch channel has spend in the range.",
                    "首次触达渠道在范围内有花费的新用户占比。"))
k[2].metric(tr("Largest channel", "最大渠道"), str(top["channel"]),
            tr(f"{fmt.pct(top['new_users'] / total)} of new users", f"占新用户 {fmt.pct(top['new_users'] / total)}"),
            delta_color="off", delta_arrow="off")
k[3].metric(tr("Campaigns with new users", "有新用户的活动"),
            fmt.number(int(((by_campaign["new_users"] > 0) & (by_campaign["campaign"].fillna("") != "")).sum())))

# New users over time ---------------------------------------------------------------------------------
st.subheader(tr("New users over time", "新用户趋势"))
fig, csv, sql = memo(_series_chart, (cohorts,), new, by, cohorts, run(rm.data_end))
chart_block(fig, csv, key="acquisition_series", name=f"new_users_by_{by}_{period}",
            caption=tr("New users = users whose first event over all data (first seen) falls in the period, by "
                       "the channel/campaign of their earliest event that has one (none → direct). Whole periods "
                       "are shown, so the first and last bars may include days outside the date range. ",
                       "新用户 = 全部数据中首个事件（首次出现）落在该周期的用户，按其最早带渠道/活动的事件归因（无则为 "
                       "direct）。按完整周期显示，首尾柱可能包含日期范围外的天数。") + options,
            sql=sql)

# Channel and campaign tables -------------------------------------------------------------------------
ch, ch_csv, ch_sql, camp, camp_csv, camp_sql = memo(_tables, (flt,), by_channel, by_campaign, flt)
left, right = st.columns([2, 3])
money = {c: st.column_config.NumberColumn(_lab(c), help=_help(c), format="¥%,.2f") for c in ("spend", "cac")}
with left:
    st.subheader(tr("By channel", "按渠道"))
    table_block(ch, key="acquisition_channels", name="new_users_by_channel", csv=ch_csv,
                column_config={"channel": st.column_config.TextColumn(tr("Channel", "渠道")),
                               "new_users": st.column_config.NumberColumn(_lab("new_users"), help=_help("new_users"),
                                                                          format="localized"),
                               "share": st.column_config.ProgressColumn(tr("Share", "占比"), format="percent",
                                                                        min_value=0.0, max_value=1.0), **money},
                caption=tr("New users in the date range per first-touch channel, with that channel's spend and "
                           "CAC (blank when the channel has no spend). ",
                           "日期范围内各首次触达渠道的新用户，以及该渠道的花费和获客成本（无花费则为空）。") + options,
                sql=ch_sql)
with right:
    st.subheader(tr("By campaign", "按活动"))
    table_block(camp, key="acquisition_campaigns", name="new_users_by_campaign", csv=camp_csv,
                column_config={"channel": st.column_config.TextColumn(tr("Channel", "渠道")),
                               "campaign": st.column_config.TextColumn(tr("Campaign", "活动")),
                               "new_users": st.column_config.NumberColumn(_lab("new_users"), help=_help("new_users"),
                                                                          format="localized"),
                               "activation_rate": st.column_config.NumberColumn(
                                   _lab("activation_rate"), help=_help("activation_rate"), format="percent"),
                               "paying_rate": st.column_config.NumberColumn(
                                   _lab("paying_rate"), help=_help("paying_rate"), format="percent"), **money},
                caption=tr("One row per first-touch campaign (users without a campaign and channel-level spend share "
                           "the row '(no campaign / channel level)'); campaigns with spend but no users show 0. ",
                           "每个首次触达活动一行（无活动的用户与渠道层级花费合并为“无活动/渠道层级”）；有花费但无用户"
                           "的活动显示 0。") + options,
                sql=camp_sql)
