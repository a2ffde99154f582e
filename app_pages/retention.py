"""Retention (operations): the cohort heatmap, retention curves by acquisition channel or campaign,
DAU / WAU / MAU with stickiness, and the lifecycle of active users."""
from __future__ import annotations

from dataclasses import replace

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

from metrics import UserInputError
from metrics import retention as rm
from metrics.derive import query_of
from ui import format as fmt
from ui.components import chart_block, choice, chosen, empty_state, label, page_header, prepared_chart, sql_text
from ui.context import db, event_names, filters, lang, memo, run, tr
from ui.safe import md_escape

ANY = "(any event)"
PERIODS = {"day": ("day", "日"), "week": ("week", "周"), "month": ("month", "月")}
MODES = {"first_time": ("first time", "首次"), "recurring": ("recurring", "重复")}
CRITERIA = {"on": ("on period k", "恰在第 k 期"), "on_or_after": ("on or after period k", "第 k 期及以后")}
ALIGNMENTS = {"calendar": ("calendar", "日历"), "rolling": ("rolling (from each user's start)", "滚动（自用户起始时刻）")}
WEEK_STARTS = {"monday": ("Monday", "周一"), "sunday": ("Sunday", "周日")}
BREAKDOWNS = {"channel": ("acquisition channel", "获客渠道"), "campaign": ("acquisition campaign", "获客活动")}
STATUS = {"new": ("new", "新增", "#2ca02c"), "returning": ("returning", "留存", "#1f77b4"),
          "resurrecting": ("resurrecting", "回流", "#9467bd"), "dormant": ("dormant", "沉睡", "#d62728")}
MAX_CURVES = 8


def _word(pair: tuple) -> str:
    """``pair`` (en, zh) in the language of this run; option labels must not read the session while
    widgets are re-described between runs, so the language is fixed when the page starts."""
    return pair[_LANG]


_LANG = 1 if lang() == "zh" else 0


def _event_word(name: str) -> str:
    return _word(("(any event)", "（任意事件）")) if name == ANY else name


def _lab(key: str) -> str:
    return label(rm.LABELS, key)


_sql = sql_text


def _cohort_label(ts, period: str) -> str:
    d = pd.Timestamp(ts).date()
    if period == "month":
        return tr(d.strftime("%Y-%m"), f"{d.year}年{d.month}月")
    return fmt.date(d)


# Chart builders: run once per data version, parameters and language (:func:`ui.context.memo`); a rerun
# only sends what they made. Each returns (figure, CSV bytes, SQL text[, ...]).

def _heatmap(matrix: pd.DataFrame, params: rm.RetentionParams) -> tuple:
    period, pw = params.period, tr(*PERIODS[params.period])
    avg = rm.retention_average(matrix)
    cohorts = matrix.drop_duplicates("cohort")[["cohort", "cohort_size"]].sort_values("cohort")
    cols = sorted(matrix["period"].unique())
    rate = matrix.pivot(index="cohort", columns="period", values="rate").reindex(index=cohorts["cohort"], columns=cols)
    done = matrix.pivot(index="cohort", columns="period", values="complete").reindex(index=cohorts["cohort"],
                                                                                     columns=cols)
    avg_rate = avg.set_index("period")["rate"].reindex(cols)
    avg_label = tr("Average (complete cells)", "平均（仅已结束单元格）")
    y = [avg_label] + [f"{_cohort_label(c, period)} · n={fmt.number(n)}" for c, n in
                       zip(cohorts["cohort"], cohorts["cohort_size"])]
    z = np.vstack([avg_rate.to_numpy(dtype=float), rate.to_numpy(dtype=float)])
    text = [[fmt.pct(v, 0) if not pd.isna(v) else "" for v in avg_rate]]
    for r, d in zip(rate.to_numpy(dtype=float), done.to_numpy()):
        text.append([("" if pd.isna(v) else fmt.pct(v, 0) + ("" if bool(ok) else "*")) for v, ok in zip(r, d)])
    fig = go.Figure(go.Heatmap(z=z, x=[f"{pw} {k}" for k in cols], y=y, text=text, texttemplate="%{text}",
                               colorscale="Blues", zmin=0, zmax=max(0.05, float(np.nanmax(z[:, 1:])) if z.shape[1] > 1
                                                                    and not np.isnan(z[:, 1:]).all() else 1.0),
                               hoverongaps=False, colorbar={"title": _lab("rate"), "tickformat": ".0%"},
                               hovertemplate="%{y}<br>%{x}: %{text}<extra></extra>"))
    fig.update_yaxes(autorange="reversed", type="category")
    fig.update_layout(height=max(320, 34 * len(y) + 120), margin={"t": 30, "b": 10},
                      xaxis_title=tr("Periods since the cohort period", "距同期群周期的期数"))
    return *prepared_chart(fig, matrix), _sql(rm.retention_sql(params, rm.data_end(db())))


def _curves(bd_matrix: pd.DataFrame, bd_params: rm.RetentionParams) -> tuple:
    """... and the cohort size per breakdown value (largest first) and the values drawn."""
    bd, pw = bd_params.breakdown, tr(*PERIODS[bd_params.period])
    curves = rm.retention_average(bd_matrix)
    curves["breakdown"] = curves["breakdown"].fillna(tr("(none)", "（无）"))
    sizes = curves[curves["period"] == 0].set_index("breakdown")["cohort_size"].sort_values(ascending=False)
    shown = list(sizes.index[:MAX_CURVES])
    fig = go.Figure()
    for value in shown:
        part = curves[(curves["breakdown"] == value) & curves["rate"].notna()]
        fig.add_trace(go.Scatter(x=part["period"], y=part["rate"], mode="lines+markers",
                                 name=f"{value} (n={fmt.number(sizes[value])})",
                                 customdata=part[["cohort_size", "retained"]].to_numpy(),
                                 hovertemplate="%{x}: %{y:.1%} (%{customdata[1]:,} / %{customdata[0]:,})"))
    fig.update_layout(height=380, margin={"t": 30, "b": 10}, yaxis_tickformat=".0%", yaxis_title=_lab("rate"),
                      xaxis_title=tr(f"Periods ({pw}s) since the cohort period", f"距同期群周期的期数（{pw}）"),
                      legend_title=tr(*BREAKDOWNS[bd]))
    return (*prepared_chart(fig, curves), _sql(rm.retention_sql(bd_params, rm.data_end(db()))), sizes, shown)


def _active_chart(active: pd.DataFrame) -> tuple:
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    for key, colour in (("mau", "#c6dbef"), ("wau", "#6baed6"), ("dau", "#08519c")):
        fig.add_trace(go.Scatter(x=active["date"], y=active[key], name=_lab(key), mode="lines",
                                 line={"color": colour}), secondary_y=False)
    fig.add_trace(go.Scatter(x=active["date"], y=active["stickiness"], name=_lab("stickiness"), mode="lines",
                             line={"color": "#ff7f0e", "dash": "dot"}), secondary_y=True)
    fig.update_yaxes(title_text=tr("Users", "用户数"), secondary_y=False)
    fig.update_yaxes(title_text=_lab("stickiness"), tickformat=".0%", rangemode="tozero", secondary_y=True)
    fig.update_layout(height=380, margin={"t": 30, "b": 10}, hovermode="x unified", legend_orientation="h",
                      legend_y=1.12, xaxis_title=_lab("date"))
    return *prepared_chart(fig, active), _sql(query_of(active))   # the SQL that ran: over the hours or the events


def _lifecycle_chart(life: pd.DataFrame) -> tuple:
    fig = go.Figure()
    for status, (en, zh, colour) in STATUS.items():
        part = life[life["status"] == status]
        sign = -1 if status == "dormant" else 1
        fig.add_trace(go.Bar(x=part["period_start"], y=sign * part["users"], name=tr(en, zh), marker_color=colour,
                             customdata=part["users"], hovertemplate="%{x}: %{customdata:,}"))
    fig.update_layout(barmode="relative", height=380, margin={"t": 30, "b": 10}, yaxis_title=tr("Users", "用户数"),
                      xaxis_title=_lab("period_start"), legend_orientation="h", legend_y=1.12)
    return *prepared_chart(fig, life), _sql(query_of(life))


page_header("Retention", "留存", owner="operations")
flt = filters()
names = event_names()
if not names:
    empty_state("No events loaded yet: load an event file on the Data page to see retention.",
                "尚未加载事件：请在“数据”页加载事件文件后查看留存。")
    st.stop()

# Controls ----------------------------------------------------------------------------------------------
c = st.columns(4)
period = choice("radio", tr("Period", "周期"), PERIODS, index=1, horizontal=True, key="retention_period",
                container=c[0])
periods = c[0].number_input(tr("Cohorts / periods shown", "显示的同期群/期数"), min_value=2, max_value=60, value=8,
                            step=1, key="retention_periods")
mode = choice("radio", tr("Cohort mode", "同期群方式"), MODES, key="retention_mode", container=c[1],
              help=tr("First time: a user's cohort is the period of their first-ever start event. Recurring: a "
                      "user joins every period's cohort in which they did the start event.",
                      "首次：用户归入其首次完成起始事件的周期；重复：用户归入每个完成起始事件的周期。"))
criterion = choice("radio", tr("Counted as retained", "留存口径"), CRITERIA, key="retention_criterion",
                   container=c[1])
alignment = choice("radio", tr("Alignment", "对齐方式"), ALIGNMENTS, key="retention_alignment", container=c[2])
week_start = choice("radio", tr("Weeks start on", "每周起始日"), WEEK_STARTS, horizontal=True,
                    key="retention_week_start", container=c[2],
                    disabled=period != "week")
start_event = choice("selectbox", tr("Start event", "起始事件"), [ANY] + names, key="retention_start",
                     container=c[3], format_func=_event_word)
return_event = choice("selectbox", tr("Return event", "回访事件"), [ANY] + names, key="retention_return",
                      container=c[3], format_func=_event_word)
min_occ = c[3].number_input(tr("Minimum occurrences", "最少次数"), min_value=1, max_value=100, value=1, step=1,
                            key="retention_min_occ")


def _step(name: str):
    return None if name == ANY else rm.Step(name)


try:
    params = rm.RetentionParams(start=_step(start_event), returning=_step(return_event), period=period,
                                periods=int(periods), mode=mode, criterion=criterion,
                                minimum_occurrences=int(min_occ), alignment=alignment, week_start=week_start,
                                timezone=flt.timezone, filters=flt)
    # the matrix and its split by acquisition (the curves below, split as the radio there was left) in one pass
    bd_params = replace(params, breakdown=chosen("retention_curve_by", next(iter(BREAKDOWNS))))
    both = run(rm.retention_with_total, bd_params)
    matrix = both["total"]
except UserInputError as exc:
    st.error(md_escape(str(exc)))
    st.stop()

pw = tr(*PERIODS[period])
options = tr(f"Period: {pw}"
             f"{f' (weeks start on {tr(*WEEK_STARTS[week_start])})' if period == 'week' else ''}; "
             f"{tr(*MODES[mode])} cohorts of '{md_escape(_event_word(start_event))}'; "
             f"return event '{md_escape(_event_word(return_event))}' "
             f"{tr(*CRITERIA[criterion])}, at least {int(min_occ)}×; {tr(*ALIGNMENTS[alignment])} alignment; "
             f"time zone {flt.timezone}.",
             f"周期：{pw}{f'（每周从{tr(*WEEK_STARTS[week_start])}开始）' if period == 'week' else ''}；"
             f"以“{md_escape(_event_word(start_event))}”划分{tr(*MODES[mode])}同期群；"
             f"回访事件“{md_escape(_event_word(return_event))}”{tr(*CRITERIA[criterion])}，"
             f"至少 {int(min_occ)} 次；{tr(*ALIGNMENTS[alignment])}对齐；时区 {flt.timezone}。")

# Heatmap -----------------------------------------------------------------------------------------------
st.subheader(tr("Cohort retention", "同期群留存"))
if matrix.empty or int(matrix.drop_duplicates("cohort")["cohort_size"].sum()) == 0:
    empty_state("No cohort in the selected date range and filters: widen the date range, pick another start event or "
                "clear the channel and campaign filters.",
                "所选日期范围和筛选条件下没有同期群：请放宽日期范围、更换起始事件或清除渠道和活动筛选。")
else:
    fig, csv, sql = memo(_heatmap, (params,), matrix, params)
    chart_block(fig, csv, key="retention_heatmap", name="retention_cohorts",
                caption=tr("Rows: cohorts (the period of the start event) with their size n; columns: periods since "
                           "then (0 = the cohort period, 100 %). Colour and text = retained users ÷ cohort size. "
                           "Blank cells "
                           "have not started by the end of the data; * marks a period still running (its number can "
                           "still grow). The average row on top is weighted by cohort size over complete cells only "
                           "(the colour scale is fitted to periods 1 and later). ",
                           "行：同期群（起始事件所在周期）及人数 n；列：此后的期数（0 = 同期群所在周期，100%）。颜色与数字 = "
                           "留存用户 ÷ 同期群人数。空白单元格在数据截止时尚未开始；* 表示该周期仍在进行（数字还会增长）。"
                           "顶部平均行按同期群人数加权，只计已结束的单元格（色阶按第 1 期及以后拟合）。") + options,
                sql=sql)

# Curves by channel / campaign --------------------------------------------------------------------------
st.subheader(tr("Retention curves by acquisition", "按获客来源的留存曲线"))
bd = choice("radio", tr("Split by", "拆分维度"), BREAKDOWNS, horizontal=True, key="retention_curve_by")
bd_matrix = both["by"]
if bd_matrix.empty:
    empty_state("No cohort to split in the selected range.", "所选范围内没有可拆分的同期群。")
else:
    fig, csv, sql, sizes, shown = memo(_curves, (bd_params,), bd_matrix, bd_params)
    more = len(sizes) - len(shown)
    chart_block(fig, csv, key="retention_curves", name=f"retention_by_{bd}",
                caption=tr(f"Each line is the size-weighted average retention of the cohorts of one first-touch "
                           f"{bd} (complete cells only), so a period still running is left out. The {len(shown)} "
                           f"largest values by users are drawn"
                           + (f"; the CSV has all {len(sizes)}. " if more else ". "),
                           f"每条线是某一首次触达{tr(*BREAKDOWNS[bd])}各同期群按人数加权的平均留存（只计已结束的单元格）。"
                           f"图中为用户数最多的 {len(shown)} 个取值" + (f"；CSV 含全部 {len(sizes)} 个。" if more else "。"))
                + options,
                sql=sql)

# DAU / WAU / MAU ---------------------------------------------------------------------------------------
st.subheader(tr("Active users and stickiness", "活跃用户与粘性"))
active = run(rm.active_users, flt, None, flt.timezone)
if active.empty:
    empty_state("No activity in the selected range and filters.", "所选范围和筛选条件下没有活跃用户。")
else:
    fig, csv, sql = memo(_active_chart, (flt,), active)
    latest = active.iloc[-1]
    chart_block(fig, csv, key="retention_active", name="dau_wau_mau",
                caption=tr(f"DAU = distinct users with an event on the day; WAU / MAU = distinct users in the "
                           f"7 / 30 days "
                           f"ending that day (the windows look back before the range start); stickiness = DAU ÷ MAU "
                           f"(right axis). Last day: DAU {fmt.number(latest['dau'])}, MAU {fmt.number(latest['mau'])}, "
                           f"stickiness {fmt.pct(latest['stickiness'])}. Local days in {flt.timezone}.",
                           f"DAU = 当天有事件的去重用户；WAU / MAU = 截至当天的 7 / 30 天内的去重用户（窗口可回看到范围开始"
                           f"之前）；粘性 = DAU ÷ MAU（右轴）。最后一天：DAU {fmt.number(latest['dau'])}，MAU "
                           f"{fmt.number(latest['mau'])}，粘性 {fmt.pct(latest['stickiness'])}。按 {flt.timezone} 本地日。"),
                sql=sql)

# Lifecycle ---------------------------------------------------------------------------------------------
st.subheader(tr("Lifecycle", "生命周期"))
life = run(rm.lifecycle, period, flt, flt.timezone, week_start)
if life.empty or int(life["users"].sum()) == 0:
    empty_state("No activity in the selected range and filters.", "所选范围和筛选条件下没有活跃用户。")
else:
    fig, csv, sql = memo(_lifecycle_chart, (period, flt, week_start), life)
    chart_block(fig, csv, key="retention_lifecycle", name="lifecycle",
                caption=tr(f"Active users per {pw}: new (first-ever event in the {pw}), returning (active in the "
                           f"previous {pw} too), resurrecting (inactive in the previous {pw}, active before); "
                           f"below the "
                           f"axis, dormant = active in the previous {pw} but not in this one (the CSV counts them "
                           f"positively). The last {pw} may still be running. ",
                           f"每{pw}活跃用户：新增（首次事件在本{pw}）、留存（上一{pw}也活跃）、回流（上一{pw}不活跃但更早活跃过）；"
                           f"轴下方为沉睡 = 上一{pw}活跃而本{pw}未活跃（CSV 中为正数）。最后一{pw}可能仍在进行。")
                + tr(f" Time zone {flt.timezone}.", f"时区 {flt.timezone}。"),
                sql=sql)
