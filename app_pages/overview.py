"""Overview: marketing and operations KPIs side by side with their change against the previous
period, the AARRR funnel coloured by owner, and the biggest movers in words."""
from __future__ import annotations

import plotly.graph_objects as go
import streamlit as st

from store.errors import UserInputError
from ui import format as fmt
from ui.components import card_columns, chart_block, empty_state, page_header, prepared_chart
from ui.context import data_facts, filters, lang, local_date, memo, run, tr, write
from ui.kpis import KPIS, _module, relative_change, shifted
from ui.safe import md_escape

OWNER_COLOURS = {"marketing": "#1f77b4", "operations": "#ff7f0e"}
STAGE_NAMES = {"awareness": ("Awareness", "认知"), "acquisition": ("Acquisition", "获客"),
               "activation": ("Activation", "激活"), "retention": ("Retention", "留存"),
               "revenue": ("Revenue", "收入"), "referral": ("Referral", "推荐")}


def kpi_label(k) -> str:
    module = _module(k.module)
    entry = getattr(module, "LABELS", {}).get(k.key) if module else None
    if entry and k.key not in ("cac", "roas_h", "uv", "arpu"):  # the Overview's own, shorter definitions
        return entry.get(lang(), entry.get("en"))
    return tr(k.en, k.zh)


OWN_HELP = {
    "cac": ("Spend in the range / new users of the channels with spend.", "区间内花费 / 有花费渠道的新用户数。"),
    "roas_h": ("Revenue within 30 days of first visit from the paid channels' new users / their spend.",
               "付费渠道新用户在首次访问后 30 天内的收入 / 其花费。"),
    "arpu": ("Net revenue of users acquired in the range / those users.", "区间内获客用户的净收入 / 用户数。"),
    "uv": ("Distinct users with a page view in the range.", "区间内有页面浏览的去重用户数。"),
    "activation_rate": ("Share of users acquired in the range who did an activation event within 7 days.",
                        "区间内获客用户中，7 天内完成激活事件的比例。"),
    "retention_w4": ("Users active again 28–35 days after their first event, over the weekly cohorts starting in "
                     "the range whose week 4 has ended (younger cohorts are not counted as lost).",
                     "首次事件后第 28–35 天再次活跃的用户占比，只计区间内开始且第 4 周已结束的周队列（较新的队列不算流失）。"),
}


def kpi_help(k) -> str | None:
    if k.key in OWN_HELP:
        return tr(*OWN_HELP[k.key])
    module = _module(k.module)
    entry = getattr(module, "LABELS", {}).get(k.key) if module else None
    return entry.get(f"help_{lang()}", entry.get("help_en")) if entry else None


def formatted(k, x) -> str:
    if k.kind == "money" and k.key in ("cac", "arpu"):
        return fmt.money(x, digits=2)
    if k.key == "k_factor":   # as the Revenue & referral page shows it: new users per user, not a multiple
        return fmt.number(x, 3)
    return {"money": fmt.money, "number": fmt.number, "pct": fmt.pct, "ratio": fmt.ratio}[k.kind](x)


def load_sample() -> None:
    import store
    with write() as con:
        store.load_sample_data(con)


def kpi_rows(f, prev) -> list:
    """(KPI, value now, value in the previous period, relative change) for every KPI; ``prev`` is None
    without a previous period. Built once per data version and filters (:func:`ui.context.memo`)."""
    # Nobody acquired in the previous period: nothing to compare with (a cohort week that straddles the
    # range start would otherwise give week-4 retention a spurious delta).
    baseline = prev if prev is not None and next(k for k in KPIS if k.key == "new_users").compute(prev) else None
    rows = []
    for k in KPIS:
        now = k.compute(f)
        before = k.compute(baseline) if baseline is not None else None
        rows.append((k, now, before, relative_change(now, before)))
    return rows


def aarrr_chart(df, params) -> tuple:
    """(figure, CSV, SQL) of the AARRR stages, one bar per stage coloured by its owner."""
    stages = _module("stages")
    chart = df[df["users"].notna()].copy()
    chart["stage_label"] = [tr(*STAGE_NAMES.get(s.lower(), (s, s))) for s in chart["stage"]]
    chart["owner_label"] = [tr("Marketing", "市场") if o == "marketing" else tr("Operations", "运营")
                            for o in chart["owner"]]
    fig = go.Figure()
    for owner in ("marketing", "operations"):
        part = chart[chart["owner"] == owner]
        fig.add_trace(go.Bar(
            x=part["users"], y=part["stage_label"], orientation="h",
            name=part["owner_label"].iloc[0] if len(part) else owner,
            marker_color=OWNER_COLOURS[owner],
            text=[f"{fmt.number(u)} · {fmt.pct(r)}" for u, r in zip(part["users"], part["rate_of_acquired"])],
            textposition="auto"))
    fig.update_layout(yaxis={"categoryorder": "array", "categoryarray": list(chart["stage_label"])[::-1]},
                      xaxis_title=tr("Users", "用户数"), legend_title=tr("Owner", "负责方"), height=360,
                      margin={"l": 10, "r": 10, "t": 10, "b": 10}, barmode="overlay")
    sql_fn = getattr(stages, "aarrr_sql", None)
    return *prepared_chart(fig, df), sql_fn(params)[0] if sql_fn else None


page_header("Overview", "总览")
facts = data_facts()
if facts["events"] == 0:
    empty_state("The database is empty. Load the bundled sample data to explore the dashboard, or upload "
                "your own event export on the Data page.",
                "数据库为空。加载内置示例数据即可浏览看板，或在“数据”页上传你自己的事件导出文件。")
    c1, c2 = st.columns([1, 3])
    if c1.button(tr("Load sample data", "加载示例数据"), key="overview_load_sample", type="primary"):
        with st.spinner(tr("Loading sample data…", "正在加载示例数据…")):
            load_sample()
        st.rerun()
    c2.page_link("app_pages/data.py", label=tr("Upload files on the Data page", "到“数据”页上传文件"), icon="🗂️")
    st.stop()

f = filters()
prev = shifted(f)
try:
    rows = memo(kpi_rows, (f, prev), f, prev)
except UserInputError as exc:
    st.error(md_escape(str(exc)))
    st.stop()

counted = [now for k, now, _, _ in rows if k.key in ("new_users", "uv") and now is not None]
if counted and all(v == 0 for v in counted):
    empty_state("No users match the current filters. Widen the date range or clear the channel and campaign "
                "filters in the sidebar.",
                "当前筛选条件下没有用户。请在侧边栏扩大日期范围，或清除渠道和活动筛选。")
    st.stop()

if prev is not None:
    st.caption(tr(f"Change against the previous period of equal length: {fmt.date(prev.start)} – {fmt.date(prev.end)}.",
                  f"变化对比等长的上一周期：{fmt.date(prev.start)} – {fmt.date(prev.end)}。"))
cols = st.columns(2, gap="large")
for col, owner, title in ((cols[0], "marketing", tr("Marketing", "市场")),
                          (cols[1], "operations", tr("Operations", "运营"))):
    with col:
        st.subheader(title)
        group = [r for r in rows if r[0].owner == owner]
        # two cards a row: in half the page, three would cut labels such as "Week-4 retention" short on a
        # laptop screen (1280-1440 px)
        for c, (k, now, before, change) in zip(card_columns(len(group), per_row=2), group):
            delta = fmt.signed_pct(change) if change is not None else None
            c.metric(kpi_label(k), formatted(k, now), delta=delta, help=kpi_help(k), border=True,
                     delta_color="normal" if k.higher_is_better else "inverse")
st.caption(tr("CAC (paid) = spend / new users of the channels with spend; ROAS (30 days) = revenue within 30 days "
              "of first visit from those users / that spend; rates are over users acquired in the range (first "
              "visit in the range); week-4 retention = active 28–35 days after the first event, over the weekly "
              "cohorts whose week 4 has ended.",
              "付费获客成本 = 花费 / 有花费渠道的新用户；30 天 ROAS = 这些用户在首次访问后 30 天内的收入 / 该花费；"
              "各比率以区间内获客（首次访问在区间内）的用户为分母；第 4 周留存 = 首次事件后第 28–35 天活跃，"
              "只计第 4 周已结束的周队列。"))
data_end = local_date(facts["last"], f.timezone)
if f.end is not None and data_end is not None and (data_end - f.end).days < 30:
    st.caption(tr(f"⚠️ The data ends {fmt.date(data_end)}: users acquired in the last 30 days of the range have "
                  "not had their full 30 days yet, so ROAS (30 days), ARPU and paying conversion are still growing "
                  "for them — compare with care.",
                  f"⚠️ 数据截至 {fmt.date(data_end)}：区间最后 30 天获客的用户尚未满 30 天，其 30 天 ROAS、ARPU 和"
                  "付费转化仍在增长，对比时请注意。"))

# The AARRR funnel, one bar per stage, coloured by the team that owns it (SPEC §3).
stages = _module("stages")
if stages is not None:
    st.subheader(tr("AARRR funnel", "AARRR 漏斗"))
    params = stages.AarrrParams(filters=f, timezone=f.timezone)
    df = run(stages.aarrr, params)
    fig, csv, sql = memo(aarrr_chart, (params,), df, params)
    awareness = df[df["stage"].str.lower() == "awareness"]
    aware_text = ""
    if len(awareness):
        imp = awareness["value"].iloc[0]
        clicks = awareness["clicks"].iloc[0] if "clicks" in awareness else None
        aware_text = tr(f" Awareness (marketing, from the spend file, not drawn to keep the user stages readable): "
                        f"{fmt.number(imp)} impressions and {fmt.number(clicks)} clicks in the range.",
                        f" 认知（市场，来自投放文件，为保持用户阶段清晰未画出）：区间内曝光 {fmt.number(imp)} 次，"
                        f"点击 {fmt.number(clicks)} 次。")
    chart_block(fig, csv, name="aarrr_funnel", key="overview_aarrr", sql=sql,
                caption=tr("Users per AARRR stage among users acquired in the range (first visit in the range); "
                           "activation within 7 days, retention = active in week 1 after the first visit; the "
                           "percentage is of acquired users. Stages come from the stage map on the Data page.",
                           "区间内获客用户在各 AARRR 阶段的人数；激活为 7 天内，留存 = 首次访问后第 1 周仍活跃；"
                           "百分比以获客用户为分母。阶段来自“数据”页的阶段映射。") + aware_text)

# What changed most, in words.
if prev is not None:
    movers = sorted((r for r in rows if r[3] is not None), key=lambda r: abs(r[3]), reverse=True)[:5]
    st.subheader(tr("What changed most", "变化最大的指标"))
    if not movers:
        empty_state(f"The previous period ({fmt.date(prev.start)} – {fmt.date(prev.end)}) has no data to compare "
                    "with. Narrow the date range in the sidebar, e.g. to the last four weeks, to see what changed.",
                    f"上一周期（{fmt.date(prev.start)} – {fmt.date(prev.end)}）没有可对比的数据。请在侧边栏缩小日期"
                    "范围（例如最近四周）以查看变化。")
    for k, now, before, change in movers:
        up = change >= 0
        verb = tr("rose" if up else "fell", "上升" if up else "下降")
        good = up == k.higher_is_better
        icon = "🟢" if good else "🔴"
        st.markdown(f"{icon} " + tr(
            f"**{kpi_label(k)}** {verb} {fmt.pct(abs(change))} ({formatted(k, before)} → {formatted(k, now)}).",
            f"**{kpi_label(k)}** {verb} {fmt.pct(abs(change))}（{formatted(k, before)} → {formatted(k, now)}）。"))
