"""Channel saturation (marketing): weekly spend vs new users per channel, the fitted a·spend^b curve,
marginal CAC at current spend, and which channels are past the point of diminishing returns."""
from __future__ import annotations


import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from metrics import UserInputError
from metrics import saturation as sm
from ui import format as fmt
from ui.components import PALETTE, chart_block, empty_state, help_text, label, metric_sql, page_header, table_block
from ui.context import filters, lang, run, tr
from ui.safe import md_escape, plot_escape


_sql = metric_sql


def _note_zh(r, min_weeks: int) -> str:
    """The metric's note (English) restated in Chinese from the row's numbers."""
    if pd.isna(r["b"]):
        if r["weeks"] < min_weeks:
            return f"仅 {int(r['weeks'])} 周同时有花费和新用户；拟合至少需要 {min_weeks} 周。"
        return "每周花费从未变化，无法衡量用户对花费的反应。"
    if r["b"] <= 0:
        return f"新用户不随花费增长（b = {r['b']:.2f}），边际获客成本无定义。"
    shape = "边际递减" if r["b"] < 1 else "无边际递减"
    state = "已饱和" if bool(r["saturated"]) else "未饱和"
    return (f"用户 ≈ {r['a']:.3g} · 花费^{r['b']:.2f}（{shape}，R² {r['r2']:.2f}）；{state}：边际获客成本 "
            f"{r['marginal_cac']:,.1f}，综合获客成本 {r['blended_cac']:,.1f}。")


def _lab(key: str) -> str:
    return label(sm.LABELS, key)


def _help(key: str) -> str:
    return help_text(sm.LABELS, key)


page_header("Channel saturation", "渠道饱和度", owner="marketing")
flt = filters()

c1, c2 = st.columns(2)
factor = c1.slider(tr("Saturated when marginal CAC exceeds blended CAC by ×", "边际获客成本超过综合获客成本的倍数即饱和"),
                   min_value=1.1, max_value=3.0, value=1.5, step=0.1, key="saturation_factor")
min_weeks = c2.number_input(tr("Minimum weeks with spend to fit a curve", "拟合曲线所需的最少有花费周数"),
                            min_value=3, max_value=26, value=6, step=1, key="saturation_min_weeks")
try:
    params = sm.SaturationParams(min_weeks=int(min_weeks), saturation_factor=float(factor), filters=flt,
                                 timezone=flt.timezone)
    points = run(sm.saturation_points, params)
    fits = run(sm.channel_saturation, params)
except UserInputError as exc:
    st.error(md_escape(str(exc)))
    st.stop()

paid = points[points["spend"].fillna(0) > 0] if len(points) else points
if paid.empty:
    empty_state("No weeks with ad spend in the selected range: load an ad-spend sheet on the Data page or widen "
                "the date range.", "所选范围内没有有花费的周：请在“数据”页加载广告花费表或放宽日期范围。")
    st.stop()

options = tr(f"Weekly (Monday weeks, {flt.timezone}); fit on weeks with spend > 0 and new users > 0; at least "
             f"{int(min_weeks)} weeks; saturated when marginal CAC > {factor:.1f} × blended CAC.",
             f"按周（周一开始，{flt.timezone}）；只用花费 > 0 且新用户 > 0 的周拟合；至少 {int(min_weeks)} 周；"
             f"边际获客成本 > {factor:.1f} × 综合获客成本即为饱和。")

fitted = fits[fits["b"].notna()] if len(fits) else fits
saturated = fitted[fitted["saturated"].fillna(False).astype(bool)] if len(fitted) else fitted
k = st.columns(3)
k[0].metric(tr("Channels with spend", "有花费的渠道"), fmt.number(paid["channel"].nunique()))
k[1].metric(tr("Channels fitted", "已拟合的渠道"), fmt.number(len(fitted)))
k[2].metric(tr("Saturated channels", "饱和渠道"), fmt.number(len(saturated)),
            help=", ".join(saturated["channel"]) if len(saturated) else None)

# Scatter with fitted curves --------------------------------------------------------------------------
st.subheader(tr("Weekly spend vs new users", "每周花费与新用户"))
channels = sorted(paid["channel"].unique())
sc1, sc2 = st.columns([4, 1])
shown = sc1.multiselect(tr("Channels shown", "显示的渠道"), channels, default=channels, key="saturation_channels")
log_axes = sc2.toggle(tr("Log–log axes", "双对数坐标"), value=False, key="saturation_log",
                      help=tr("On log–log axes each fitted curve is a straight line of slope b.",
                              "在双对数坐标上，每条拟合曲线是一条斜率为 b 的直线。"))
fig = go.Figure()
for i, ch in enumerate(shown):
    colour = PALETTE[i % len(PALETTE)]
    part = paid[paid["channel"] == ch]
    fig.add_trace(go.Scatter(x=part["spend"], y=part["new_users"], mode="markers", name=ch, legendgroup=ch,
                             marker={"color": colour, "size": 8, "opacity": 0.7},
                             customdata=part["week_start"].astype(str),
                             hovertemplate="%{customdata}<br>¥%{x:,.0f} → %{y} <extra>" + plot_escape(ch) + "</extra>"))
    fit = fits[fits["channel"] == ch]
    if len(fit) and pd.notna(fit["b"].iloc[0]):
        a, b = float(fit["a"].iloc[0]), float(fit["b"].iloc[0])
        xs = np.linspace(part["spend"].min() * 0.8, part["spend"].max() * 1.2, 60)
        flag = bool(fit["saturated"].iloc[0])
        fig.add_trace(go.Scatter(x=xs, y=a * xs ** b, mode="lines", legendgroup=ch, showlegend=False,
                                 line={"color": colour, "width": 3 if flag else 1.5,
                                       "dash": "solid" if flag else "dot"},
                                 hovertemplate=f"{a:.3g}·spend^{b:.2f}<extra>{ch}</extra>"))
fig.update_layout(height=460, margin={"t": 30, "b": 10}, xaxis_title=tr("Weekly spend (¥)", "每周花费（¥）"),
                  yaxis_title=tr("New users that week (first touch)", "当周新用户（首次触达）"),
                  xaxis_type="log" if log_axes else "linear", yaxis_type="log" if log_axes else "linear")
chart_block(fig, paid[paid["channel"].isin(shown)], key="saturation_scatter", name="saturation_points",
            caption=tr("One dot per channel and week: spend that week vs users whose first touch was that channel "
                       "that week. Line = least-squares fit of users = a·spend^b on log-log axes; b < 1 means each "
                       "extra yuan buys fewer users. Thick solid lines are saturated channels. ",
                       "每个点是一个渠道的一周：当周花费与当周首次触达该渠道的用户数。线 = 在对数坐标上用最小二乘"
                       "拟合的 用户 = a·花费^b；b < 1 表示每多花一元换来的用户更少。粗实线为饱和渠道。") + options,
            sql=_sql(sm.saturation_points, params))

# Fit table -------------------------------------------------------------------------------------------
st.subheader(tr("Fitted curves and marginal CAC", "拟合曲线与边际获客成本"))
cfg = {c: st.column_config.Column(_lab(c), help=_help(c)) for c in fits.columns}
cfg["channel"] = st.column_config.TextColumn(tr("Channel", "渠道"))
for c in ("current_spend", "marginal_cac", "blended_cac"):
    cfg[c] = st.column_config.NumberColumn(_lab(c), help=_help(c), format="¥%,.2f")
for c in ("a", "b", "r2"):
    cfg[c] = st.column_config.NumberColumn(_lab(c), help=_help(c), format="%.3f")
cfg["saturated"] = st.column_config.CheckboxColumn(_lab("saturated"), help=_help("saturated"))
if lang() == "zh" and len(fits):
    fits = fits.assign(note=[_note_zh(r, int(min_weeks)) for _, r in fits.iterrows()])
table_block(fits, key="saturation_table", name="channel_saturation", column_config=cfg,
            caption=tr("Fitted in Python (least squares on log spend, log users) over the weekly points whose SQL is "
                       "shown. Marginal CAC at current spend s = 1 ÷ (a·b·s^(b−1)), with s = mean weekly spend of the "
                       "last 4 weeks; blended CAC = total spend ÷ total new users. Channels that cannot be fitted "
                       "(too few weeks, or spend that never varies) have no curve and say why in the note column. ",
                       "在下方 SQL 产生的每周数据点上用 Python 拟合（对 log 花费与 log 用户做最小二乘）。"
                       "当前花费 s 下的边际获客成本 = 1 ÷ (a·b·s^(b−1))，s 为最近 4 周的平均周花费；综合获客成本 = "
                       "总花费 ÷ 总新用户。无法拟合的渠道（周数太少或花费从不变化）没有曲线，备注列说明原因。")
            + options, sql=_sql(sm.saturation_points, params))

unfit = fits[fits["b"].isna()] if len(fits) else fits
if len(unfit):
    st.markdown(tr("**Channels without a curve**", "**没有曲线的渠道**"))
    for _, r in unfit.iterrows():
        st.markdown(f"- **{md_escape(r['channel'])}** — {md_escape(r['note'])}")
if len(saturated):
    st.warning(tr("Saturated: ", "已饱和：") + "; ".join(
        tr(f"{md_escape(r.channel)} (marginal CAC {fmt.money(r.marginal_cac)} vs blended {fmt.money(r.blended_cac)})",
           f"{md_escape(r.channel)}（边际获客成本 {fmt.money(r.marginal_cac)}，综合 {fmt.money(r.blended_cac)}）")
        for r in saturated.itertuples()))
