"""Campaigns & ROI (marketing): spend, CAC, ROAS and payback per campaign or channel, LTV curves, spend coverage."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from metrics import UserInputError
from metrics import economics as em
from ui import format as fmt
from ui.components import (
    PALETTE, card_columns, chart_block, choice, empty_state, help_text, label, metric_sql, page_header, prepared_chart,
    row_names, table_block,
)
from ui.context import filters, lang, memo, run, tr
from ui.safe import csv_bytes, md_escape

LEVELS = {"campaign": ("Per campaign", "按活动"), "channel": ("Per channel", "按渠道")}
HORIZONS = (7, 14, 30, 60, 90)
MONEY_COLS = ("spend", "cac", "cpc", "cost_per_activated", "cost_per_retained_w4", "cost_per_paying", "revenue",
              "arpu", "arppu", "gmv", "revenue_h", "period_revenue")
RATE_COLS = ("ctr", "activation_rate", "retention_w1", "retention_w4", "paying_rate", "roi_h")
RATIO_COLS = ("roas_h", "period_roas")
KEY_LABELS = {"channel": ("Channel", "渠道"), "campaign": ("Campaign", "活动")}
COUNT_COLS = ("impressions", "clicks", "new_users", "activated", "retained_w1", "retained_w4", "paying",
              "payback_day")


_sql = metric_sql


def _lab(key: str) -> str:
    return label(em.LABELS, key)


def _help(key: str) -> str:
    return help_text(em.LABELS, key)


_segment = row_names


def _column_config(columns) -> dict:
    cfg = {}
    for c in columns:
        if c in MONEY_COLS:
            cfg[c] = st.column_config.NumberColumn(_lab(c), help=_help(c), format="¥%,.2f")
        elif c in RATE_COLS:
            cfg[c] = st.column_config.NumberColumn(_lab(c), help=_help(c), format="percent")
        elif c in RATIO_COLS:
            cfg[c] = st.column_config.NumberColumn(_lab(c), help=_help(c), format="%.2f×")
        elif c in COUNT_COLS:
            cfg[c] = st.column_config.NumberColumn(_lab(c), help=_help(c), format="localized")
        elif c in KEY_LABELS:
            cfg[c] = st.column_config.TextColumn(tr(*KEY_LABELS[c]))
        else:
            cfg[c] = st.column_config.Column(_lab(c), help=_help(c))
    return cfg


def _ltv_chart(ltv: pd.DataFrame, picked: tuple) -> tuple:
    """The LTV curves of the ``picked`` segments with CAC lines and payback stars, and their table's CSV (made
    once per data version, parameters, pick and language: :func:`ui.context.memo`)."""
    fig = go.Figure()
    for i, seg in enumerate(picked):
        part = ltv[ltv["segment"] == seg].sort_values("day")
        colour = PALETTE[i % len(PALETTE)]
        fig.add_trace(go.Scatter(x=part["day"], y=part["ltv"], mode="lines", name=seg, legendgroup=seg,
                                 line={"color": colour}))
        cac = part["cac"].dropna()
        if len(cac):
            fig.add_trace(go.Scatter(x=[part["day"].min(), part["day"].max()], y=[cac.iloc[0]] * 2, mode="lines",
                                     name=tr(f"CAC · {seg}", f"获客成本 · {seg}"), legendgroup=seg,
                                     showlegend=False, line={"color": colour, "dash": "dash", "width": 1}))
        pay = part["payback_day"].dropna()
        if len(pay):
            day = pay.iloc[0]
            y = part.loc[part["day"] == day, "ltv"]
            at = y.iloc[0] if len(y) else cac.iloc[0]
            fig.add_trace(go.Scatter(x=[day], y=[at], mode="markers",
                                     marker={"color": colour, "size": 10, "symbol": "star"},
                                     legendgroup=seg, showlegend=False, name=tr("payback", "回本")))
            # the day on a light box of its own above the star: the curves and CAC lines run right through it
            fig.add_annotation(x=day, y=at, yshift=14, showarrow=False, text=tr(f"day {int(day)}", f"第 {int(day)} 天"),
                               font={"color": colour, "size": 11}, bgcolor="rgba(255,255,255,0.85)")
    fig.update_layout(height=420, margin={"t": 30, "b": 10}, xaxis_title=tr("Days after first seen", "首次出现后天数"),
                      yaxis_title=tr("Cumulative revenue per acquired user (¥)", "每位新用户累计收入（¥）"),
                      legend={"orientation": "h", "y": -0.2})
    return prepared_chart(fig, ltv[ltv["segment"].isin(picked)].drop(columns="segment"))


def _roas_chart(roas: pd.DataFrame, keys: list, horizon: int) -> tuple:
    """(figure, CSV) of cohort vs period ROAS per row with spend."""
    fig = go.Figure([
        go.Bar(x=roas["segment"], y=roas["roas_h"], name=tr(f"Cohort ROAS ({horizon} d)", f"同期群 ROAS（{horizon} 天）")),
        go.Bar(x=roas["segment"], y=roas["period_roas"], name=tr("Period ROAS", "期间 ROAS")),
    ])
    fig.add_hline(y=1, line_dash="dot", line_color="#888",
                  # at the right, over the rows of least ROAS (sorted highest first), clear of the tall bars
                  annotation_text=tr("break-even", "盈亏平衡"), annotation_position="top right")
    fig.update_layout(barmode="group", height=380, margin={"t": 30, "b": 10}, yaxis_title="ROAS",
                      legend={"orientation": "h", "y": 1.12})
    return prepared_chart(fig, roas[keys + ["spend", "revenue_h", "roas_h", "period_revenue", "period_roas"]])


def _economics_table(econ: pd.DataFrame, level: str, params: em.EconomicsParams) -> tuple:
    """(table, CSV, SQL) of the unit economics, one row per campaign or channel."""
    keys = ["channel"] if level == "channel" else ["channel", "campaign"]
    shown = keys + [c for c in econ.columns if c not in keys]
    table = econ[shown].assign(**({"campaign": _segment(econ, level)} if level == "campaign" else {}))
    return table, csv_bytes(table), _sql(em.campaign_economics, params)


def _table_parts(frame: pd.DataFrame, fn, *args) -> tuple:
    """(CSV, SQL) of a table made from metric ``fn(*args)``."""
    return csv_bytes(frame), _sql(fn, *args)


def _ltv_view(ltv: pd.DataFrame, econ: pd.DataFrame, level: str) -> tuple:
    """The LTV curves with each row's segment name, and the segments that have a curve, largest spenders first."""
    if not len(ltv):
        return ltv, []
    ltv = ltv.assign(segment=_segment(ltv, level))
    ranked = econ.assign(segment=_segment(econ, level)).sort_values(["spend", "new_users"], ascending=False)
    with_curve = set(ltv["segment"])
    return ltv, [s for s in ranked["segment"] if s in with_curve]


page_header("Campaigns & ROI", "活动与 ROI", owner="marketing")
flt = filters()

c1, c2 = st.columns([2, 3])
level = choice("radio", tr("Rows", "行"), LEVELS, key="campaigns_level", container=c1, horizontal=True)
horizon = c2.select_slider(tr("Revenue horizon h (days after first seen)", "收入窗口 h（首次出现后的天数）"),
                           options=HORIZONS, value=30, key="campaigns_horizon")
try:
    params = em.EconomicsParams(level=level, horizon_days=int(horizon), filters=flt, timezone=flt.timezone)
    both = run(em.campaigns_page, params)   # the economics and the LTV curves, the curves computed once
    econ = both["economics"]
except UserInputError as exc:
    st.error(md_escape(str(exc)))
    st.stop()

if econ.empty:
    empty_state("No campaigns in the selected range: widen the date range, clear the channel and campaign filters, "
                "or load events and an ad-spend sheet on the Data page.",
                "所选范围内没有活动：请放宽日期范围、清除渠道和活动筛选，或在“数据”页加载事件和广告花费表。")
    st.stop()

options = tr(f"Rows: {LEVELS[level][0].lower()}; revenue horizon h = {horizon} days; first-touch attribution; "
             f"time zone {flt.timezone}.",
             f"行：{LEVELS[level][1]}；收入窗口 h = {horizon} 天；首次触达归因；时区 {flt.timezone}。")

# KPIs: a row of three and one of two, so that no label is cut short on a laptop screen ----------------
spend = econ["spend"].sum(min_count=1)
users = econ["new_users"].sum()
rev_h = econ["revenue_h"].sum(min_count=1)
paid_users = econ.loc[econ["spend"].fillna(0) > 0, "new_users"].sum()
coverage = run(em.spend_coverage_summary, flt)
k = card_columns(5)
k[0].metric(_lab("spend"), fmt.money(spend), help=_help("spend"))
k[1].metric(_lab("new_users"), fmt.number(users), help=_help("new_users"))
k[2].metric(tr("Blended CAC (paid rows)", "综合获客成本（付费行）"),
            fmt.money(spend / paid_users if paid_users else None, digits=2),
            help=tr("Total spend ÷ new users of the rows that have spend.", "总花费 ÷ 有花费的行的新用户数。"))
k[3].metric(tr(f"ROAS ({horizon} d, cohort)", f"ROAS（{horizon} 天，同期群）"),
            fmt.ratio(rev_h / spend if spend else None),
            help=tr(f"Revenue of all acquired users within {horizon} days of first seen ÷ spend in the range.",
                    f"所有新用户在首次出现后 {horizon} 天内的收入 ÷ 范围内花费。"))
share = coverage["matched_share"].iloc[0] if len(coverage) else None
k[4].metric(tr("Spend matched to events", "可匹配到事件的花费"), fmt.pct(share),
            help=tr("Share of spend whose (channel, campaign) key appears among the users' first touches.",
                    "花费中其（渠道，活动）键出现在用户首次触达中的比例。"))

# Economics table -------------------------------------------------------------------------------------
st.subheader(tr("Unit economics", "单位经济"))
keys = ["channel"] if level == "channel" else ["channel", "campaign"]
table, table_csv, econ_sql = memo(_economics_table, (params,), econ, level, params)
table_block(table, key="campaigns_table", name=f"economics_{level}", column_config=_column_config(table.columns),
            csv=table_csv,
            caption=tr("New users, revenue and conversions use first-touch attribution; CAC = spend ÷ new "
                       "users (blank with no spend or no users); ROAS_h = revenue within h days of first seen ÷ "
                       "spend; ROI_h = (revenue_h − spend) ÷ spend; period ROAS = revenue earned inside the date "
                       "range ÷ spend in the range; payback day = first day LTV reaches CAC (blank: not yet). ",
                       "新用户、收入和转化按首次触达归因；获客成本 = 花费 ÷ 新用户（无花费或无用户时为空）；"
                       "ROAS_h = 首次出现后 h 天内收入 ÷ 花费；ROI_h = (收入_h − 花费) ÷ 花费；期间 ROAS = 日期范围"
                       "内的收入 ÷ 范围内花费；回本天数 = LTV 首次达到获客成本的那一天（空：尚未回本）。") + options,
            sql=econ_sql)

# LTV curves ------------------------------------------------------------------------------------------
st.subheader(tr("LTV curves and payback", "LTV 曲线与回本"))
ltv, choices = memo(_ltv_view, (params,), both["ltv"], econ, level)
if ltv.empty or ltv["ltv"].notna().sum() == 0:
    empty_state("No revenue curves yet: the acquired users are too recent or have no revenue.",
                "暂无收入曲线：新用户太新或没有收入。")
else:
    picked = st.multiselect(tr("Curves shown (default: the five largest spenders)", "显示的曲线（默认：花费最多的五个）"),
                            choices, default=choices[:5], key=f"campaigns_ltv_pick_{level}_{lang()}")
    fig, csv = memo(_ltv_chart, (params, tuple(picked)), ltv, tuple(picked))
    chart_block(fig, csv, key="campaigns_ltv",
                name=f"ltv_curves_{level}",
                caption=tr("LTV_k = cumulative revenue per acquired user up to k+1 days after first seen, over users "
                           "old enough to have lived k+1 days (younger users are censored, not counted as zero). "
                           "Dashed line = CAC; star = payback day (first k with LTV_k ≥ CAC). ",
                           "LTV_k = 首次出现后 k+1 天内每位新用户的累计收入，仅统计已满 k+1 天的用户（更新的用户"
                           "被删失，不计为 0）。虚线 = 获客成本；星号 = 回本天数（首个 LTV_k ≥ 获客成本的 k）。")
                + options, sql=memo(_sql, (params, "ltv_curves"), em.ltv_curves, params))

# Period vs cohort ROAS ------------------------------------------------------------------------------
st.subheader(tr("Cohort ROAS vs period ROAS", "同期群 ROAS 与期间 ROAS"))
roas = econ.assign(segment=_segment(econ, level))
roas = roas[roas["spend"].fillna(0) > 0].sort_values("roas_h", ascending=False)
if roas.empty:
    empty_state("No spend in the selected range, so there is no return on it to show. Load an ad-spend sheet on "
                "the Data page.", "所选范围内没有花费，因此没有回报可显示。请在“数据”页加载广告花费表。")
else:
    fig, roas_csv = memo(_roas_chart, (params,), roas, keys, int(horizon))
    chart_block(fig, roas_csv, key="campaigns_roas", name=f"roas_{level}",
                caption=tr(f"Cohort ROAS = revenue of the users acquired in the range within {horizon} days of their "
                           "first seen ÷ spend; period ROAS = revenue those users earned inside the date range ÷ "
                           "spend in the range. Rows without spend are left out. ",
                           f"同期群 ROAS = 范围内获取的用户在首次出现后 {horizon} 天内的收入 ÷ 花费；期间 ROAS = 这些"
                           "用户在日期范围内产生的收入 ÷ 范围内花费。无花费的行不显示。") + options,
                sql=econ_sql)

# Spend coverage --------------------------------------------------------------------------------------
st.subheader(tr("Spend coverage", "花费匹配"))
cov = run(em.spend_coverage, flt)
if cov.empty:
    empty_state("No ad spend loaded for this range: load a spend sheet on the Data page.",
                "该范围内没有广告花费：请在“数据”页加载花费表。")
else:
    summary = coverage.iloc[0]
    unmatched = cov[~cov["matched"].astype(bool)]
    st.markdown(tr(f"**{fmt.pct(summary['matched_share'])}** of {fmt.money(summary['total_spend'])} spend matched a "
                   f"channel/campaign seen in the events; **{int(summary['unmatched_keys'])}** spend keys matched "
                   "nothing.",
                   f"{fmt.money(summary['total_spend'])} 花费中 **{fmt.pct(summary['matched_share'])}** 匹配到事件中"
                   f"出现的渠道/活动；**{int(summary['unmatched_keys'])}** 个花费键没有匹配。"))
    listed = unmatched if len(unmatched) else cov
    cov_csv, cov_sql = memo(_table_parts, (flt, "spend_coverage"), listed, em.spend_coverage, flt)
    table_block(listed, key="campaigns_coverage", name="spend_coverage", csv=cov_csv,
                column_config={"channel": st.column_config.TextColumn(tr("Channel", "渠道")),
                               "campaign": st.column_config.TextColumn(tr("Campaign ('' = channel level)",
                                                                          "活动（空 = 渠道层级）")),
                               "spend": st.column_config.NumberColumn(tr("Spend", "花费"), format="¥%,.2f"),
                               "matched": st.column_config.CheckboxColumn(tr("Matched", "已匹配"))},
                caption=tr("Spend keys that match no first-touch channel/campaign of any user (keys compared trimmed "
                           "and case-folded); when every key matches, all keys are listed. ",
                           "没有匹配任何用户首次触达渠道/活动的花费键（去空格、不区分大小写比较）；全部匹配时列出"
                           "所有键。") + options,
                sql=cov_sql)
