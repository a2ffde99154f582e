"""Campaign vs retention (insight, SPEC §8): marketing's columns and operations' columns side by side per
campaign or channel, and a quadrant chart that separates "cheap but churny" from "dear but loyal"."""
from __future__ import annotations


import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from metrics import UserInputError
from metrics import economics as em
from ui import format as fmt
from ui.components import (
    chart_block, choice, data_table, download_and_sql, empty_state, help_text, label, metric_sql, page_header,
    prepared_chart, row_names,
)
from ui.context import filters, memo, run, tr
from ui.labels import LABEL_FONT_PX, PLOT_WIDTH_PX, corner_box, label_positions, padded_range
from ui.safe import csv_bytes, md_escape

CORNER_FONT_PX = 13   # the quadrant's corner names, which its labels keep clear of
QUADRANT_HEIGHT = 520  # the quadrant figure's height, in px
PLOT_HEIGHT_PX = 435   # its plotting area: less the margins and the x axis' ticks and title (measured in Chromium)
LEVELS = {"campaign": ("Per campaign", "按活动"), "channel": ("Per channel", "按渠道")}
MARKETING = ("spend", "impressions", "clicks", "ctr", "new_users", "cac")
OPERATIONS = ("activation_rate", "retention_w1", "retention_w4", "paying_rate", "ltv_30", "roas_30", "payback_day",
              "value_cost_score")
RATES = ("activation_rate", "retention_w1", "retention_w4", "paying_rate")
X_MEASURES = ("cac", "cost_per_activated", "cost_per_retained_w4", "cost_per_paying")
Y_MEASURES = ("retention_w1", "retention_w4", "activation_rate", "paying_rate")


_sql = metric_sql


def _cvr_sql(params) -> str | None:
    """The view's main query: campaign_vs_retention adds Wilson bounds, LTV_30 and the value − cost score to it."""
    sql = _sql(em.campaign_economics, params)
    return sql and ("-- campaign_vs_retention = this query + Wilson 95 % bounds + LTV_30 (ltv_curves) + value − cost "
                    "score (value_cost.score)\n" + sql)


def _lab(key: str) -> str:
    return label(em.LABELS, key)


def _help(key: str) -> str:
    return help_text(em.LABELS, key)


_name = row_names


def _rate_text(frame: pd.DataFrame, col: str) -> pd.Series:
    """``42.1% (38.0–46.3)``: the rate with its 95 % Wilson interval."""
    return pd.Series([
        "–" if pd.isna(v) else f"{fmt.pct(v)} ({fmt.pct(lo)}–{fmt.pct(hi)})"
        for v, lo, hi in zip(frame[col], frame[f"{col}_low"], frame[f"{col}_high"])], index=frame.index)


def _display(frame: pd.DataFrame, level: str) -> pd.DataFrame:
    """The table as people read it: headers marked 📣 (marketing) or ⚙️ (operations), formatted numbers,
    rates with intervals."""
    mkt, ops = "📣 ", "⚙️ "
    out = pd.DataFrame({tr("Campaign" if level == "campaign" else "Channel",
                           "活动" if level == "campaign" else "渠道"): _name(frame, level)})
    if level == "campaign":
        out[tr("Channel", "渠道")] = frame["channel"].astype(str)
    fmts = {"spend": fmt.money, "cac": lambda v: fmt.money(v, digits=2), "ctr": lambda v: fmt.pct(v, 2),
            "impressions": fmt.number, "clicks": fmt.number, "new_users": fmt.number,
            "ltv_30": lambda v: fmt.money(v, digits=2), "roas_30": fmt.ratio,
            "payback_day": fmt.number, "value_cost_score": lambda v: fmt.number(v, 2)}
    for c in MARKETING:
        out[mkt + _lab(c)] = frame[c].map(fmts[c])
    for c in OPERATIONS:
        out[ops + _lab(c)] = _rate_text(frame, c) if c in RATES else frame[c].map(fmts[c])
    out[tr("Sample", "样本")] = frame["small_sample"].map(
        lambda s: tr("⚠ small (< 30 users)", "⚠ 小样本（< 30 人）") if s else "")
    return out


def _quadrant(data: pd.DataFrame, level: str, x_measure: str, y_measure: str) -> tuple:
    """``(figure, CSV, x median, y median, rows left out)`` of the cost vs retention quadrant — figure and CSV
    None when no row has both measures. Run once per data version and parameters (:func:`ui.context.memo`)."""
    keys = ["channel"] if level == "channel" else ["channel", "campaign"]
    plot = data.assign(name=_name(data, level)).dropna(subset=[x_measure, y_measure])
    left_out = len(data) - len(plot)
    if plot.empty:
        return None, None, None, None, left_out
    x_mid, y_mid = plot[x_measure].median(), plot[y_measure].median()
    size = plot["new_users"].clip(lower=1) ** 0.5
    diameters = 8 + 40 * size / size.max()
    y_low = f"{y_measure}_low" if f"{y_measure}_low" in plot else None
    corners = [(0.01, 0.99, "left", "top", tr("cheap and loyal", "便宜且忠诚")),
               (0.99, 0.99, "right", "top", tr("dear but loyal", "贵但忠诚")),
               (0.01, 0.01, "left", "bottom", tr("cheap but churny", "便宜但易流失")),
               (0.99, 0.01, "right", "bottom", tr("dear and churny", "贵且易流失"))]
    corner_boxes = [corner_box(*corner, font_px=CORNER_FONT_PX, height_px=PLOT_HEIGHT_PX) for corner in corners]
    # the axes' ranges set here rather than by plotly, which widens them for the error bars and the names by
    # amounts the names' placement cannot know: then it works in the chart's own pixels (along x, the chart's
    # narrowest width). The y axis keeps the rows of the corner names free of bubbles.
    x_range = padded_range(plot[x_measure], diameters, PLOT_WIDTH_PX)
    y_ends = [plot[y_measure]] + ([plot[y_low], plot[f"{y_measure}_high"]] if y_low else [])
    corner_rows = max(box[3] for box in corner_boxes if box[1] < PLOT_HEIGHT_PX / 2)   # the lower names' tops
    y_range = padded_range(pd.concat(y_ends), diameters, PLOT_HEIGHT_PX, extra_px=corner_rows)
    # each name above, below or beside its bubble, wherever it clears the names, bubbles and corner names around it
    positions = label_positions(plot[x_measure], plot[y_measure], plot["name"], diameters, height_px=PLOT_HEIGHT_PX,
                                x_range=x_range, y_range=y_range, obstacles=corner_boxes)
    fig = go.Figure(go.Scatter(
        x=plot[x_measure], y=plot[y_measure], mode="markers+text", text=plot["name"], textposition=positions,
        cliponaxis=False,   # a name the placement could not keep inside the plot is drawn whole, not cut
        textfont={"size": LABEL_FONT_PX, "color": "#444"},
        error_y=None if y_low is None else {"type": "data", "symmetric": False, "thickness": 1, "width": 0,
                                            "array": plot[f"{y_measure}_high"] - plot[y_measure],
                                            "arrayminus": plot[y_measure] - plot[y_low], "color": "#bbb"},
        marker={"size": diameters, "color": plot["roas_30"], "colorscale": "RdYlGn",
                "cmin": 0, "cmax": 2, "showscale": True,
                "colorbar": {"title": _lab("roas_30"), "tickvals": [0, 0.5, 1, 1.5, 2],
                                                 "ticktext": ["0", "0.5", "1", "1.5", "≥ 2"]},
                "symbol": ["circle-open" if s else "circle" for s in plot["small_sample"]],
                "line": {"width": 1, "color": "#555"}},
        customdata=plot[["new_users", "roas_30"]].to_numpy(),
        hovertemplate="<b>%{text}</b><br>x = %{x:,.2f}<br>y = %{y:.1%}<br>" + _lab("new_users")
                      + " %{customdata[0]:,}<br>" + _lab("roas_30") + " %{customdata[1]:.2f}<extra></extra>"))
    fig.add_vline(x=x_mid, line_dash="dash", line_color="#999")
    fig.add_hline(y=y_mid, line_dash="dash", line_color="#999")
    for x, y, xa, ya, text in corners:
        fig.add_annotation(x=x, y=y, xref="paper", yref="paper", xanchor=xa, yanchor=ya, text=f"<b>{text}</b>",
                           showarrow=False, font={"color": "#666", "size": CORNER_FONT_PX},
                           bgcolor="rgba(255,255,255,0.75)")
    fig.update_layout(height=QUADRANT_HEIGHT, margin={"t": 30, "b": 10}, xaxis_title=_lab(x_measure) + " (¥)",
                      yaxis_title=_lab(y_measure), yaxis_tickformat=".0%", showlegend=False,
                      xaxis_range=list(x_range), yaxis_range=list(y_range))
    cols = keys + ["new_users", x_measure, y_measure] + ([y_low, f"{y_measure}_high"] if y_low else []) \
        + ["roas_30", "small_sample"]
    return (*prepared_chart(fig, plot[cols]), x_mid, y_mid, left_out)


def _with_costs(cvr: pd.DataFrame, econ: pd.DataFrame, level: str) -> pd.DataFrame:
    """The table with the cost measures of its rows' economics beside it, made once per data version and
    parameters (:func:`ui.context.memo`)."""
    keys = ["channel"] if level == "channel" else ["channel", "campaign"]
    costs = [c for c in X_MEASURES if c != "cac" and c in econ.columns]
    return cvr.merge(econ[keys + costs], on=keys, how="left") if costs else cvr


def _table(data: pd.DataFrame, level: str) -> tuple:
    """``(table, CSV of the raw numbers)`` of the side-by-side table, made once per data version and parameters
    (:func:`ui.context.memo`)."""
    return _display(data, level), csv_bytes(data)


page_header("Campaign vs retention", "活动 vs 留存")
flt = filters()

c1, c2, c3 = st.columns([2, 2, 2])
level = choice("radio", tr("Rows", "行"), LEVELS, key="cvr_level", container=c1, horizontal=True)
x_measure = choice("selectbox", tr("Cost axis (x)", "成本轴（x）"), {m: _lab(m) for m in X_MEASURES}, key="cvr_x",
                   container=c2)
y_measure = choice("selectbox", tr("Retention axis (y)", "留存轴（y）"), {m: _lab(m) for m in Y_MEASURES}, key="cvr_y",
                   container=c3)

try:
    params = em.EconomicsParams(level=level, filters=flt, timezone=flt.timezone)
    both = run(em.campaign_vs_retention_page, params)  # the table and its economics from one computation
    cvr, econ = both["table"], both["economics"]
except UserInputError as exc:
    st.error(md_escape(str(exc)))
    st.stop()

if cvr.empty:
    empty_state("No campaigns in the selected range: widen the date range or clear the channel and campaign filters.",
                "所选范围内没有活动：请放宽日期范围或清除渠道和活动筛选。")
    st.stop()

data = memo(_with_costs, (params,), cvr, econ, level)
options = tr(f"Rows: {LEVELS[level][0].lower()}; first-touch attribution; week k retention = active in days "
             f"[7k, 7k+7) after first seen, over users whose week k has ended; LTV and ROAS over 30 days; "
             f"time zone {flt.timezone}.",
             f"行：{LEVELS[level][1]}；首次触达归因；第 k 周留存 = 首次出现后第 [7k, 7k+7) 天内活跃，仅统计第 k 周"
             f"已结束的用户；LTV 与 ROAS 按 30 天；时区 {flt.timezone}。")

# Quadrant chart ---------------------------------------------------------------------------------------
st.subheader(tr("Cost vs retention quadrant", "成本 × 留存 四象限"))
fig, csv, x_mid, y_mid, left_out = memo(_quadrant, (params, x_measure, y_measure), data, level, x_measure, y_measure)
if fig is None:
    empty_state("No row has both a cost and a retention value: cost needs spend in the range, retention needs users "
                "whose week has ended.", "没有同时具有成本和留存的行：成本需要范围内有花费，留存需要已满该周的用户。")
else:
    chart_block(fig, csv, key="cvr_quadrant", name=f"quadrant_{level}",
                caption=tr(f"x = {_lab(x_measure)}, y = {_lab(y_measure)} (bars: 95 % Wilson interval), size = new "
                           f"users, colour = 30-day ROAS (green ≥ 1). Dashed lines at the medians "
                           f"({fmt.money(x_mid, digits=2)}, {fmt.pct(y_mid)}). Open circles: fewer than 30 users. "
                           f"{left_out} rows without spend or retention are not plotted. ",
                           f"x = {_lab(x_measure)}，y = {_lab(y_measure)}（误差线：95% Wilson 区间），大小 = 新用户，"
                           f"颜色 = 30 天 ROAS（绿色 ≥ 1）。虚线为中位数（{fmt.money(x_mid, digits=2)}，"
                           f"{fmt.pct(y_mid)}）。空心圆：少于 30 人。{left_out} 行因无花费或无留存未绘制。") + options,
                sql=memo(_cvr_sql, (params,), params))

# Side-by-side table -----------------------------------------------------------------------------------
st.subheader(tr("Marketing and operations, side by side", "市场与运营指标并列"))
st.markdown(tr("📣 **Marketing** columns · ⚙️ **Operations** columns (each header starts with its side's mark)",
               "📣 **市场**指标 · ⚙️ **运营**指标（列名以所属一方的标记开头）"))
# a plain frame: a pandas Styler tinting the two sides cost about 45 ms per rerun to send (Streamlit turns
# every styled cell into text), nearly half of a warm rerun; the header marks carry the split
shown, csv = memo(_table, (params,), data, level)
data_table(shown, key="cvr_table_table")
st.caption(tr("📣 Marketing owns acquisition: spend, impressions, clicks, CTR, new users, CAC. ⚙️ Operations "
              "owns what happens next: activation (7 days), week-1 and week-4 retention, paying conversion, "
              "LTV_30, ROAS_30, payback day, value − cost score. Rates show their 95 % Wilson interval; rows "
              "with fewer than 30 new users are flagged as small samples. The CSV holds the raw numbers. ",
              "📣 市场负责获客：花费、曝光、点击、点击率、新用户、获客成本。⚙️ 运营负责之后的一切：激活（7 天）、"
              "第 1 周和第 4 周留存、付费转化、LTV_30、ROAS_30、回本天数、价值 − 成本得分。比率附 95% Wilson "
              "区间；新用户少于 30 的行标为小样本。CSV 为原始数值。") + options)
download_and_sql(csv, f"campaign_vs_retention_{level}", "cvr_table", memo(_cvr_sql, (params,), params))
