"""Funnel (operations): a funnel builder — steps, order, window, attempt, breakdown — with conversion,
drop-off and in-progress per step, time to convert, and the users who reached or dropped at a step."""
from __future__ import annotations

from datetime import timedelta

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from metrics import UserInputError
from metrics import funnel as fm
from ui import format as fmt
from ui.components import (
    chart_block, choice, data_table, empty_state, help_text, label, page_header, prepared_chart, sql_text, table_block,
)
from ui.context import event_names, filters, frame_download, lang, memo, run, run_listing, tr
from ui.safe import csv_bytes, md_escape, plot_escape

DEFAULT_STEPS = ("page_view", "signup", "activate", "purchase")
ANY_LABELS = ("(any event)", "（任意事件）")  # the "any event" choice in either language
ORDERS = {"ordered": ("ordered", "有序"), "strict": ("strict", "严格"), "any": ("any order", "任意顺序")}
ATTEMPTS = {"best": ("best attempt", "最佳尝试"), "first": ("first attempt", "首次尝试")}
BREAKDOWNS = {"none": ("none", "无"), "channel": ("channel", "渠道"), "campaign": ("campaign", "活动"),
              "property": ("property…", "属性…")}
ATTRIBUTIONS = {"acquisition": ("first touch (acquisition)", "首次触达（获客）"),
                "entry": ("entry event (step 1)", "进入事件（第 1 步）")}
COLOURS = {"users": "#1f77b4", "in_progress": "#f2b134", "dropped": "#e8a0a0"}


def _word(pair: tuple) -> str:
    """``pair`` (en, zh) in the language of this run; option labels must not read the session while
    widgets are re-described between runs, so the language is fixed when the page starts."""
    return pair[_LANG]


_LANG = 1 if lang() == "zh" else 0


def _lab(key: str) -> str:
    return label(fm.LABELS, key)


def _help(key: str) -> str:
    return help_text(fm.LABELS, key)


_sql = sql_text


def _steps_from(editor: pd.DataFrame) -> tuple[fm.Step, ...]:
    """Steps from the editor's rows (rows without an event are skipped)."""
    steps = []
    for row in editor.itertuples(index=False):
        event = row.event if isinstance(row.event, str) and row.event.strip() else None
        if event is None:
            continue
        prop = row.property.strip() if isinstance(row.property, str) else ""
        value = row.value.strip() if isinstance(row.value, str) else ""
        if prop and not value:
            raise UserInputError(tr(f"Give a value for the property '{prop}' of step {event}, or clear the property.",
                                    f"请为步骤 {event} 的属性“{prop}”填写取值，或清空该属性。"))
        steps.append(fm.Step(None if event in ANY_LABELS else event, {prop: value} if prop else {}))
    return tuple(steps)


def _duration_text(s) -> str:
    if s is None or pd.isna(s):
        return "–"
    if s >= 86_400:
        return tr(f"{s / 86_400:.1f} d", f"{s / 86_400:.1f} 天")
    return fmt.seconds(s)


def _funnel_sql_text(params: fm.FunnelParams) -> str:
    return _sql(fm.funnel_sql(params))


def _conversion_chart(result: pd.DataFrame, breakdown: str | None) -> tuple:
    """(figure, CSV) of users per step: stacked with dropped and in progress, or grouped per breakdown value."""
    bd_col = "breakdown" in result.columns
    step_names = [f"{i}. {lab}" for i, lab in zip(result["step"], result["label"])]
    fig = go.Figure()
    if not bd_col:
        # users and the conversion from step 1 in the axis labels, so small bars stay readable
        x = [f"{plot_escape(name)}<br><b>{fmt.number(u)}</b> · {fmt.pct(c)}"
             for name, u, c in zip(step_names, result["users"], result["conv_from_first"])]
        fig.add_trace(go.Bar(x=x, y=result["users"], name=_lab("users"), marker_color=COLOURS["users"],
                             text=[fmt.pct(c) for c in result["conv_from_first"]], textposition="inside",
                             insidetextanchor="middle"))
        fig.add_trace(go.Bar(x=x, y=result["in_progress"], name=_lab("in_progress"),
                             marker_color=COLOURS["in_progress"], marker_pattern_shape="/",
                             text=[fmt.number(v) if v else "" for v in result["in_progress"]], textposition="inside"))
        fig.add_trace(go.Bar(x=x, y=result["dropped"], name=_lab("dropped"), marker_color=COLOURS["dropped"],
                             text=[fmt.number(v) if v else "" for v in result["dropped"]], textposition="inside"))
        fig.update_layout(barmode="stack", uniformtext={"minsize": 10, "mode": "hide"}, legend_traceorder="normal")
    else:
        for value, part in result.groupby("breakdown", sort=False):
            fig.add_trace(go.Bar(x=[f"{i}. {lab}" for i, lab in zip(part["step"], part["label"])],
                                 y=part["users"], name=str(value), text=[fmt.pct(c) for c in part["conv_from_first"]],
                                 textposition="outside",
                                 customdata=part[["dropped", "in_progress"]].to_numpy(),
                                 hovertemplate="%{x}<br>%{y:,} " + _lab("users") + " (%{text})<br>" + _lab("dropped")
                                 + " %{customdata[0]:,} · " + _lab("in_progress") + " %{customdata[1]:,}<extra>"
                                 + str(value) + "</extra>"))
        fig.update_layout(barmode="group", legend={"title": breakdown}, uniformtext={"minsize": 8, "mode": "hide"})
    fig.update_layout(height=420, margin={"t": 30, "b": 10}, yaxis_title=_lab("users"),
                      legend_orientation="h", legend_y=1.1)
    return prepared_chart(fig, result)


def _ttc_chart(ttc: pd.DataFrame) -> tuple:
    """(figure, CSV) of the time from the previous step: median, mean and p90, or the median per breakdown value."""
    bd_col = "breakdown" in ttc.columns
    measures = ("median_s", "mean_s", "p90_s")
    fig = go.Figure()
    if not bd_col:
        # the bars are drawn in hours and labelled as durations: the legend drops the labels' "(s)", which is the
        # unit of the table's columns; the tail (p90) in grey, apart from the two blues of the centre
        for m, colour in zip(measures, ("#1f77b4", "#9ecae1", "#8c8c8c")):
            name = _lab(m).removesuffix(" (s)").removesuffix("（秒）")
            fig.add_trace(go.Bar(x=[f"{i}. {lab}" for i, lab in zip(ttc["step"], ttc["label"])], y=ttc[m] / 3600,
                                 name=name, marker_color=colour, text=[_duration_text(v) for v in ttc[m]],
                                 textposition="outside"))
    else:
        for value, part in ttc.groupby("breakdown", sort=False):
            fig.add_trace(go.Bar(x=[f"{i}. {lab}" for i, lab in zip(part["step"], part["label"])],
                                 y=part["median_s"] / 3600, name=str(value),
                                 text=[_duration_text(v) for v in part["median_s"]], textposition="outside"))
    fig.update_layout(barmode="group", height=360, margin={"t": 30, "b": 10},
                      yaxis_title=tr("Hours from the previous step", "距上一步小时数"),
                      legend_orientation="h", legend_y=1.12)
    cols = (["breakdown"] if bd_col else []) + ["step", "label", "users", *measures]
    return prepared_chart(fig, ttc[cols])


page_header("Funnel", "漏斗", owner="operations")
flt = filters()
names = event_names()
if not names:
    empty_state("No events loaded yet: load an event file on the Data page to build a funnel.",
                "尚未加载事件：请在“数据”页加载事件文件后再构建漏斗。")
    st.stop()

# Builder -----------------------------------------------------------------------------------------------
st.subheader(tr("Steps", "步骤"))
defaults = [e for e in DEFAULT_STEPS if e in names] or names[:3]
left, right = st.columns([3, 2])
with left:
    editor = st.data_editor(
        pd.DataFrame({"event": defaults, "property": [""] * len(defaults), "value": [""] * len(defaults)}),
        num_rows="dynamic", hide_index=False, width="stretch", key="funnel_steps",
        column_config={
            "event": st.column_config.SelectboxColumn(tr("Event", "事件"), options=[_word(ANY_LABELS)] + names,
                                                      required=True,
                                                      help=tr("The event this step matches.", "该步骤匹配的事件。")),
            "property": st.column_config.TextColumn(tr("Property (optional)", "属性（可选）"),
                                                    help=tr("A column (channel, campaign, page, …) or a key of the "
                                                            "event's properties.",
                                                            "事件列（channel、campaign、page 等）或事件属性中的键。")),
            "value": st.column_config.TextColumn(tr("equals", "等于"),
                                                 help=tr("Compared as text.", "按文本比较。")),
        })
    st.caption(tr("Rows are the steps in order (add rows at the bottom, delete with the row checkbox). "
                  "A property filter keeps only the step's events whose property equals the value.",
                  "每行是一个步骤，按顺序排列（在底部添加行，勾选行后删除）。属性筛选只保留该属性等于给定值的事件。"))
with right:
    c1, c2 = st.columns(2)
    order = choice("radio", tr("Order", "顺序"), ORDERS, key="funnel_order", container=c1,
                   help=tr("Ordered: each step after the previous, other events may come between. Strict: no other "
                           "event in between. Any order: k different steps within one window.",
                           "有序：每步在上一步之后，中间可有其他事件；严格：中间不能有其他事件；任意顺序："
                           "一个窗口内完成 k 个不同步骤。"))
    attempt = choice("radio", tr("Attempt", "尝试"), ATTEMPTS, key="funnel_attempt", container=c2,
                     help=tr("Best: every step-1 event starts an attempt and the user counts at the furthest step. "
                             "First: only the user's first step-1 event in the range.",
                             "最佳：每个第 1 步事件都开启一次尝试，用户按最远到达的步骤计；首次：只看用户在范围内的"
                             "第一个第 1 步事件。"))
    window_days = c1.number_input(tr("Window (days)", "转化窗口（天）"), min_value=1, max_value=365, value=14, step=1,
                                  key="funnel_window",
                                  help=tr("Measured from the step-1 event, inclusive.", "自第 1 步事件起算，含边界。"))
    in_range = c2.checkbox(tr("All steps in range", "全部步骤在范围内"), value=False,
                           key="funnel_in_range",
                           help=tr("Off: later steps may land up to one window after the range end.",
                                   "关闭时，后续步骤可在范围结束后一个窗口内完成。"))
    breakdown_kind = choice("selectbox", tr("Breakdown", "细分"), BREAKDOWNS, key="funnel_breakdown", container=c1)
    breakdown = None if breakdown_kind == "none" else breakdown_kind
    if breakdown_kind == "property":
        breakdown = c2.text_input(tr("Property name", "属性名"), value="platform", key="funnel_breakdown_property").strip()
    attribution = "acquisition"
    if breakdown:
        attribution = choice("radio", tr("Breakdown value taken from", "细分值取自"), ATTRIBUTIONS, horizontal=True,
                             key="funnel_attribution")

try:
    steps = _steps_from(editor)
    params = fm.FunnelParams(steps=steps, order=order, window=timedelta(days=int(window_days)), attempt=attempt,
                             conversion_in_range=bool(in_range), breakdown=breakdown or None,
                             breakdown_attribution=attribution, filters=flt, timezone=flt.timezone)
    result = run(fm.funnel, params)
except UserInputError as exc:
    st.error(md_escape(str(exc)))
    st.stop()

if not fm.any_order_is_exact(params):
    st.warning(tr("In any order with more than six distinct steps, one event here could match two of the steps; "
                  "the counts are an upper bound (see the funnel definitions). Use fewer distinct steps, or make "
                  "their events or filters distinct, for exact counts.",
                  "任意顺序下步骤超过六个且互有重叠，同一事件可能同时匹配两个步骤，人数为上限（见漏斗定义）。"
                  "减少不同步骤的数量，或让各步骤的事件或筛选互不重叠，即可得到精确人数。"))

bd_col = "breakdown" in result.columns
first_users = int(result.loc[result["step"] == 1, "users"].sum())
if first_users == 0:
    empty_state("No user did the first step in the selected date range and filters: pick another first step, widen "
                "the date range or clear the channel and campaign filters.",
                "所选日期范围和筛选条件下没有用户完成第 1 步：请更换第 1 步、放宽日期范围或清除渠道和活动筛选。")
    st.stop()

options = tr(f"Order: {tr(*ORDERS[order])}; window {int(window_days)} days from step 1 (inclusive); "
             f"{tr(*ATTEMPTS[attempt])}; entry = step 1 in the sidebar date range ({flt.timezone})"
             f"{', every step inside it' if in_range else ', later steps up to one window after it'}"
             f"{f'; breakdown: {breakdown} ({tr(*ATTRIBUTIONS[attribution])})' if breakdown else ''}.",
             f"顺序：{tr(*ORDERS[order])}；窗口：自第 1 步起 {int(window_days)} 天（含）；{tr(*ATTEMPTS[attempt])}；"
             f"进入 = 第 1 步落在侧栏日期范围内（{flt.timezone}）"
             f"{'，所有步骤均在范围内' if in_range else '，后续步骤可在范围后一个窗口内完成'}"
             f"{f'；细分：{breakdown}（{tr(*ATTRIBUTIONS[attribution])}）' if breakdown else ''}。")
funnel_sql = memo(_funnel_sql_text, (params,), params)

# KPIs --------------------------------------------------------------------------------------------------
total = result.groupby("step", as_index=False)[["users", "dropped", "in_progress"]].sum() if bd_col else result
last = total.iloc[-1]
k = st.columns(4)
k[0].metric(tr("Entered (step 1)", "进入（第 1 步）"), fmt.number(first_users))
k[1].metric(tr("Reached the last step", "到达最后一步"), fmt.number(last["users"]))
k[2].metric(_lab("conv_from_first"), fmt.pct(last["users"] / first_users), help=_help("conv_from_first"))
k[3].metric(_lab("in_progress"), fmt.number(total["in_progress"].sum()), help=_help("in_progress"))

# Conversion chart --------------------------------------------------------------------------------------
st.subheader(tr("Conversion by step", "各步骤转化"))
fig, chart_csv = memo(_conversion_chart, (params,), result, breakdown)
if bd_col:
    chart_text = tr("Bars: users who reached each step within one attempt's window, per breakdown value, labelled with "
                    "the conversion from step 1; dropped (window closed) and in progress (window still open at the "
                    "end of the data, never counted as drop-off) are in the hover and the table. ",
                    "柱：各细分值在一次尝试的窗口内到达各步骤的用户数，标注相对第 1 步的转化率；流失（窗口已结束）与"
                    "进行中（数据截止时窗口仍未结束，不计为流失）见悬停提示和明细表。")
else:
    chart_text = tr("Bars: users who reached each step within one attempt's window; the axis labels give users and "
                    "the conversion from step 1. Above them, the previous step's users who did not reach this step: "
                    "dropped (window closed) and in progress (hatched: window still open at the end of the data — "
                    "not counted as drop-off). ",
                    "柱：在一次尝试的窗口内到达各步骤的用户数；坐标轴标签给出用户数和相对第 1 步的转化率。其上为到达"
                    "上一步但未到达本步的用户：流失（窗口已结束）与进行中（斜线：数据截止时窗口仍未结束，不计为流失）。")
chart_block(fig, chart_csv, key="funnel_chart", name="funnel", caption=chart_text + options, sql=funnel_sql)

# Time to convert ---------------------------------------------------------------------------------------
st.subheader(tr("Time to convert", "转化耗时"))
ttc = result[result["step"] > 1]
if ttc["median_s"].isna().all():
    empty_state("Nobody reached a second step, so there is no time to convert yet.",
                "还没有用户到达第 2 步，因此暂无转化耗时。")
else:
    fig, ttc_csv = memo(_ttc_chart, (params,), ttc)
    chart_block(fig, ttc_csv, key="funnel_ttc", name="funnel_time_to_convert",
                caption=tr("Time from the previous step to this one over the users who reached this step (the attempt "
                           "that got furthest): median, mean and 90th percentile (interpolated)"
                           f"{' — median per breakdown value' if bd_col else ''}. ",
                           "到达本步骤的用户（取走得最远的那次尝试）从上一步到本步的耗时：中位数、平均值与第 90 百分位"
                           f"（插值）{'——按细分值显示中位数' if bd_col else ''}。") + options,
                sql=funnel_sql)

# Table -------------------------------------------------------------------------------------------------
with st.expander(tr("Funnel table", "漏斗明细表"), expanded=False):
    cfg = {c: st.column_config.NumberColumn(_lab(c), help=_help(c), format="localized")
           for c in ("step", "users", "dropped", "in_progress", "median_s", "mean_s", "p90_s")}
    cfg.update({c: st.column_config.NumberColumn(_lab(c), help=_help(c), format="percent")
                for c in ("conv_from_first", "conv_from_prev")})
    cfg["label"] = st.column_config.TextColumn(_lab("label"), help=_help("label"))
    cfg["breakdown"] = st.column_config.TextColumn(_lab("breakdown"), help=_help("breakdown"))
    table_block(result, key="funnel_table", name="funnel_table", column_config=cfg,
                csv=memo(csv_bytes, (params, "funnel_table"), result),
                caption=tr("One row per step (and breakdown value). Dropped = previous step's users − this step's "
                           "users − in progress. ",
                           "每个步骤（及细分值）一行。流失 = 上一步用户 − 本步用户 − 进行中。") + options,
                sql=funnel_sql)

# Users at a step ---------------------------------------------------------------------------------------
st.subheader(tr("Users at a step", "某一步的用户"))
u1, u2, u3 = st.columns([2, 2, 2])
step_no = choice("selectbox", tr("Step", "步骤"), list(range(1, params.n + 1)), key="funnel_users_step", container=u1,
                 format_func=lambda i: f"{i}. {params.steps[i - 1].label}")
status = choice("radio", tr("Users who", "用户"), {"reached": ("reached this step", "到达此步"),
                                                  "dropped": ("dropped at this step", "在此步流失")},
                horizontal=True, key="funnel_users_status", container=u2)
bd_value = None
if bd_col:
    values = list(dict.fromkeys(result["breakdown"]))
    bd_value = choice("selectbox", tr("Breakdown value", "细分值"), [None] + values, key="funnel_users_bd",
                      container=u3, format_func=lambda v: _word(("all", "全部")) if v is None else str(v))
# The count comes from the funnel table (its users and dropped columns are these users, counted); the list
# itself is a query over every entered user and a CSV of their ids, made only when asked for.
rows = result[result["step"] == int(step_no)]
if bd_value is not None:
    rows = rows[rows["breakdown"] == bd_value]
n_users = int(rows["users" if status == "reached" else "dropped"].sum())
st.caption(tr(f"Users who {'reached' if status == 'reached' else 'dropped at'} step {step_no}: "
              f"{fmt.number(n_users)}"
              + (" (dropped = reached the previous step, window closed, not this step)" if status == "dropped" else "")
              + ".",
              f"{'到达' if status == 'reached' else '流失于'}第 {step_no} 步的用户：{fmt.number(n_users)}"
              f"{'（流失 = 到达上一步、窗口已结束且未到达本步）' if status == 'dropped' else ''}。"))
if n_users and st.toggle(tr("List their user ids (preview and CSV)", "列出其用户 ID（预览与 CSV）"),
                         key="funnel_users_list"):
    try:
        listed, preview, users_csv = run_listing(fm.funnel_users, params, int(step_no), status, bd_value)
    except UserInputError as exc:
        st.error(md_escape(str(exc)))
    else:
        frame_download(users_csv, f"funnel_step{step_no}_{status}_users", key="funnel_users_csv")
        data_table(preview, key="funnel_users_preview",
                   column_config={"user_id": st.column_config.TextColumn(tr("User id", "用户 ID"))})
        st.caption(tr(f"The first {len(preview):,} of {listed:,} user ids, sorted; the CSV has them all.",
                      f"按用户 ID 排序的前 {len(preview):,} 位（共 {listed:,} 位）；CSV 包含全部。"))
