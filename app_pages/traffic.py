"""Traffic (marketing): page views, unique visitors, sessions, bounce — over time, by page, by channel."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st
from plotly.subplots import make_subplots

import store
from metrics import UserInputError
from metrics import traffic as tm
from ui import format as fmt
from ui.components import (card_columns, chart_block, choice, chosen, empty_state, help_text, label, page_header, prepared_chart,
                           sql_text, table_block)
from ui.context import filters, lang, memo, run, tr, write
from ui.safe import csv_bytes, md_escape

PERIOD_NAMES = {"day": ("day", "日"), "week": ("week", "周"), "month": ("month", "月")}


def _sql(builder, params) -> str:
    return sql_text(builder(params))


def _lab(key: str) -> str:
    return label(tm.LABELS, key)


def _help(key: str) -> str:
    return help_text(tm.LABELS, key)


def _frames(base, dim: str) -> dict | None:
    """Every frame of the page from one derivation of the sessions (one cached call instead of six queries that
    each sessionise the whole range). None when any of them failed or was stopped: the page then runs them one
    by one, so it shows what it can and the error where it belongs."""
    try:
        return run(tm.traffic_page, base, dim)
    except Exception:  # noqa: BLE001 — reported by the per-query call that fails again below
        return None


def _part(frames: dict | None, name: str, fn, params):
    return frames[name] if frames is not None else run(fn, params)


# Chart and table builders: run once per data version, parameters and language (:func:`ui.context.memo`); a
# rerun only sends what they made.

def _series_chart(base: tm.TrafficParams, pvuv, sess) -> tuple:
    """(figure, CSV, SQL) of PV, UV, sessions and bounce rate over time."""
    series = pvuv.merge(sess, on="period_start", how="outer").sort_values("period_start")
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=series["period_start"], y=series["sessions"], name=_lab("sessions"),
                         marker_color="#c7d7ee"), secondary_y=False)
    fig.add_trace(go.Scatter(x=series["period_start"], y=series["pv"], name=_lab("pv"), mode="lines",
                             line={"color": "#1f77b4"}), secondary_y=False)
    fig.add_trace(go.Scatter(x=series["period_start"], y=series["uv"], name=_lab("uv"), mode="lines",
                             line={"color": "#ff7f0e"}), secondary_y=False)
    fig.add_trace(go.Scatter(x=series["period_start"], y=series["bounce_rate"], name=_lab("bounce_rate"),
                             mode="lines", line={"color": "#7f7f7f", "dash": "dot"}), secondary_y=True)
    fig.update_yaxes(title_text=tr("Count", "数量"), secondary_y=False)
    fig.update_yaxes(title_text=_lab("bounce_rate"), tickformat=".0%", secondary_y=True, showgrid=False,
                     range=[0, max(0.05, float(series["bounce_rate"].max() or 0) * 1.3)])
    fig.update_layout(height=380, margin={"t": 30, "b": 10}, legend={"orientation": "h", "y": 1.12},
                      xaxis_title=_lab("period_start"), hovermode="x unified")
    if lang() == "zh":
        fig.update_xaxes(tickformat="%m月%d日")
    return *prepared_chart(fig, series), _sql(tm.pv_uv_sql, base) + "\n\n" + _sql(tm.sessions_sql, base)


def _breakdown_chart(by: tm.TrafficParams, ch, measure: str) -> tuple:
    """(figure, CSV, SQL) of ``measure`` per period, stacked by the values of ``by``'s breakdown."""
    fig = go.Figure()
    for name, part in ch.groupby(by.breakdown, sort=False):
        fig.add_trace(go.Bar(x=part["period_start"], y=part[measure], name=str(name)))
    fig.update_layout(barmode="stack", height=360, margin={"t": 30, "b": 10},
                      xaxis_title=_lab("period_start"), yaxis_title=_lab(measure),
                      legend={"title": _lab(by.breakdown)})
    if lang() == "zh":
        fig.update_xaxes(tickformat="%m月%d日")
    return *prepared_chart(fig, ch), _sql(tm.pv_uv_sql, by)


def _table(frame, builder, params) -> tuple[bytes, str]:
    """(CSV, SQL) of one of the page's tables."""
    return csv_bytes(frame), _sql(builder, params)


page_header("Traffic", "流量", owner="marketing")
flt = filters()

c1, c2, c3 = st.columns([2, 2, 3])
period = choice("radio", tr("Period", "周期"), PERIOD_NAMES, key="traffic_period", container=c1, index=1,
                horizontal=True)
top_n = c2.number_input(tr("Top pages / channels shown", "显示的页面/渠道数"), min_value=3, max_value=50, value=10,
                        step=1, key="traffic_top_n")
stored_names = run(store.stored_pageview_events)   # the names the stored sessions are kept for
events_text = c3.text_input(tr("Page-view events (comma-separated)", "页面浏览事件（逗号分隔）"),
                            value=", ".join(stored_names), key="traffic_pv_events")
pv_events = tuple(e.strip() for e in events_text.split(",") if e.strip())
if pv_events and set(pv_events) != set(stored_names):
    # other names than the stored sessions': every session is derived again at each visit (slow on big data)
    n1, n2 = st.columns([5, 2])
    n1.caption(tr(f"The stored sessions count {md_escape(', '.join(stored_names))} as page views. For other names "
                  "every session is derived again from the events at each visit, which takes seconds on millions "
                  "of events. Keep the sessions for these names to make the page read them (this derives every "
                  "session once).",
                  f"已保存的会话以 {md_escape(', '.join(stored_names))} 作为页面浏览。换用其他事件名时，每次打开都要从事件重新"
                  "推导全部会话，数百万事件时需要数秒。为这些事件保存会话后，本页将直接读取（需一次性重新推导全部会话）。"))
    if n2.button(tr("Keep sessions for these names", "为这些事件保存会话"), key="traffic_pv_keep"):
        try:
            with st.spinner(tr("Deriving every session for these page-view events…", "正在为这些页面浏览事件推导全部会话…")), \
                    write() as con:
                store.set_pageview_events(con, pv_events)
        except UserInputError as exc:
            st.error(md_escape(str(exc)))
        else:
            st.rerun()   # every cached result follows the new data version

try:
    base = tm.TrafficParams(period=period, pageview_events=pv_events, filters=flt, timezone=flt.timezone,
                            top_n=int(top_n))
    frames_dim = chosen("traffic_breakdown", "channel")  # the breakdown radio further down, as last chosen
    frames_dim = frames_dim if frames_dim in ("channel", "campaign") else "channel"
    frames = _frames(base, frames_dim)
    summary = _part(frames, "summary", tm.traffic_summary, base)
except UserInputError as exc:
    st.error(md_escape(str(exc)))
    st.stop()

row = summary.iloc[0] if len(summary) else None
if row is None or not row["pv"] and not row["sessions"]:
    empty_state("No traffic in the selected range and filters: widen the date range or clear the channel "
                "and campaign filters, or load an event file on the Data page.",
                "所选范围和筛选条件下没有流量：请放宽日期范围、清除渠道和活动筛选，或在“数据”页加载事件文件。")
    st.stop()

# KPIs: two rows of three, so that no label is cut short on a laptop screen ---------------------------
k = card_columns(6)
k[0].metric(_lab("pv"), fmt.number(row["pv"]), help=_help("pv"))
k[1].metric(_lab("uv"), fmt.number(row["uv"]), help=_help("uv"))
k[2].metric(_lab("sessions"), fmt.number(row["sessions"]), help=_help("sessions"))
k[3].metric(_lab("bounce_rate"), fmt.pct(row["bounce_rate"]), help=_help("bounce_rate"))
k[4].metric(_lab("pages_per_session"), fmt.number(row["pages_per_session"], 2), help=_help("pages_per_session"))
k[5].metric(_lab("avg_duration_s"), fmt.number(row["avg_duration_s"], 0), help=_help("avg_duration_s"))

period_word = tr(*PERIOD_NAMES[period])
options = tr(f"Period: {period_word}; page-view events: {md_escape(', '.join(pv_events))}; session gap 30 min; "
             f"time zone {flt.timezone}.",
             f"周期：{period_word}；页面浏览事件：{md_escape(', '.join(pv_events))}；会话间隔 30 分钟；时区 {flt.timezone}。")

# Time series -------------------------------------------------------------------------------------------
st.subheader(tr("Over time", "趋势"))
pvuv = _part(frames, "pv_uv", tm.pv_uv, base)
sess = _part(frames, "sessions", tm.sessions, base)
fig, csv, sql = memo(_series_chart, (base,), base, pvuv, sess)
chart_block(fig, csv, key="traffic_series", name="traffic_over_time",
            caption=tr("PV = page-view events; UV = distinct users with a page view in the period — a week's UV "
                       "is not the sum of its days' UV (a user visiting on three days is one weekly visitor). "
                       "Sessions are counted in the period of their first event; bounce rate = sessions with "
                       "exactly one page view ÷ sessions with at least one. ",
                       "PV = 页面浏览事件数；UV = 周期内有页面浏览的去重用户数——一周的 UV 不等于各天 UV 之和"
                       "（三天都来的用户在周内只算一位访客）。会话按其首个事件所在周期计数；跳出率 = 仅一次页面浏览的"
                       "会话 ÷ 至少一次页面浏览的会话。") + options,
            sql=sql)

# Top pages ---------------------------------------------------------------------------------------------
st.subheader(tr("Top pages", "热门页面"))
pages = _part(frames, "top_pages", tm.top_pages, base)
if pages.empty:
    empty_state("No page views in this range.", "该范围内没有页面浏览。")
else:
    cfg = {c: st.column_config.NumberColumn(_lab(c), help=_help(c), format="localized")
           for c in ("pv", "uv", "entries")}
    cfg["page"] = st.column_config.TextColumn(_lab("page"), help=_help("page"))
    cfg["bounce_rate"] = st.column_config.NumberColumn(_lab("bounce_rate"), help=_help("bounce_rate"),
                                                       format="percent")
    csv, sql = memo(_table, (base, "top_pages"), pages, tm.top_pages_sql, base)
    table_block(pages, key="traffic_pages", name="top_pages", column_config=cfg, csv=csv,
                caption=tr(f"The top {int(top_n)} pages by PV over the whole range. Entries = sessions whose "
                           "first page view was this page; bounce rate of those sessions. ",
                           f"整个范围内 PV 最高的 {int(top_n)} 个页面。入口次数 = 首次页面浏览为该页的会话数；"
                           "跳出率按这些会话计算。") + options,
                sql=sql)

# By channel --------------------------------------------------------------------------------------------
st.subheader(tr("By channel or campaign", "按渠道或活动"))
b1, b2 = st.columns(2)
dim = choice("radio", tr("Break down by", "拆分维度"), {d: _lab(d) for d in ("channel", "campaign")},
             key="traffic_breakdown", container=b1, horizontal=True)
by_channel = tm.TrafficParams(period=period, breakdown=dim, pageview_events=pv_events, filters=flt,
                              timezone=flt.timezone, top_n=int(top_n))
ch = _part(frames if dim == frames_dim else None, "pv_uv_breakdown", tm.pv_uv, by_channel)
if ch.empty:
    empty_state("No page views in this range.", "该范围内没有页面浏览。")
else:
    measure = choice("radio", tr("Measure", "指标"), {m: _lab(m) for m in ("pv", "uv")},
                     key="traffic_channel_measure", container=b2, horizontal=True)
    fig, csv, sql = memo(_breakdown_chart, (by_channel, measure), by_channel, ch, measure)
    chart_block(fig, csv, key="traffic_channel", name=f"traffic_by_{dim}",
                caption=tr("Channel / campaign = those of the session's first event (no channel → direct, no "
                           f"campaign → (not set)); the top {int(top_n)} by PV are kept, the rest are 'Other'. "
                           "Stacked PV "
                           "adds up to the total; stacked UV does not need to (a visitor may arrive through "
                           "two channels in one period). ",
                           f"渠道/活动 = 会话第一个事件的渠道/活动（无渠道为 direct，无活动为 (not set)）；保留 PV 最高的 {int(top_n)} 个，"
                           "其余归为 Other。堆叠的 PV 之和等于总数；堆叠的 UV "
                           "不一定（同一访客可能在同一周期经由两个渠道到达）。") + options,
                sql=sql)

st.subheader(tr(f"Sessions by {dim}", "各渠道会话" if dim == "channel" else "各活动会话"))
ch_sess = _part(frames if dim == frames_dim else None, "sessions_breakdown", tm.sessions, by_channel)
if ch_sess.empty:
    empty_state("No sessions in this range.", "该范围内没有会话。")
else:
    cfg = {c: st.column_config.NumberColumn(_lab(c), help=_help(c), format="%,.0f" if c == "sessions" else "%.0f")
           for c in ("sessions", "avg_duration_s", "median_duration_s")}
    cfg.update({
        "period_start": st.column_config.DateColumn(_lab("period_start"), help=_help("period_start")),
        dim: st.column_config.TextColumn(_lab(dim), help=_help(dim)),
        "bounce_rate": st.column_config.NumberColumn(_lab("bounce_rate"), help=_help("bounce_rate"),
                                                     format="percent"),
        "pages_per_session": st.column_config.NumberColumn(_lab("pages_per_session"),
                                                           help=_help("pages_per_session"), format="%.2f"),
    })
    csv, sql = memo(_table, (by_channel, "sessions"), ch_sess, tm.sessions_sql, by_channel)
    table_block(ch_sess, key="traffic_channel_sessions", name=f"sessions_by_{dim}", column_config=cfg, csv=csv,
                caption=tr(f"One row per period and session {dim}. ", "每个周期和会话渠道/活动一行。") + options,
                sql=sql)
