"""Value vs cost (insight, SPEC §7): perceived value − perceived cost per segment, against a rival, with the
model's dimensions, weights and sources editable on the page."""
from __future__ import annotations

import inspect

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from metrics import UserInputError
from metrics import value_cost as vm
from ui import format as fmt
from ui.components import (chart_block, choice, empty_state, help_text, label, page_header, prepared_chart,
                           table_block)
from ui.context import data_version, db, filters, lang, memo, run, tr
from ui.safe import csv_bytes, md_escape

SEGMENTS = {"channel": ("First-touch channel", "首次触达渠道"), "campaign": ("First-touch campaign", "首次触达活动"),
            "survey": ("Survey segment", "调研细分")}
# The metric writes its verdict and diagnosis in English; these phrases make them Chinese (order matters).
ZH_PHRASES = (("no dimension trails the rival; ", "没有维度落后于竞品；"), (" is the largest weighted cost", " 为加权最大的成本"),
              ("no cost data", "无成本数据"), ("does not adopt", "不采用"), ("adopts", "采用"), ("no data", "无数据"),
              ("beats ", "胜过 "), ("loses to ", "不敌 "), ("ties with ", "持平 "), ("no ratings of ", "无评分："),
              (" vs rival ", " 对比竞品 "), (" cost ", " 成本 "), (" value ", " 价值 "), (", ", "，"))
EDITABLE = ("name", "kind", "weight", "source", "metric", "transform")
# The dimensions' kinds and sources (vm.KINDS, vm.SOURCES) in Chinese.
ZH_CODES = {"value": "价值", "cost": "成本", "survey": "调研", "behaviour": "行为"}


@st.cache_data(ttl=3600, max_entries=16, show_spinner=False)
def _survey_products(version: int) -> list[str]:
    """The products rated in the survey table (``ours`` and the rivals), for the rival picker."""
    return [r[0] for r in db().execute("SELECT DISTINCT product FROM survey ORDER BY product").fetchall()]


def _words(text) -> str:
    """A verdict or diagnosis of the metric in the chosen language."""
    if not isinstance(text, str) or lang() != "zh":
        return text
    for en, zh in ZH_PHRASES:
        text = text.replace(en, zh)
    return text


def _sources_sql(model, segment_by: str, flt) -> str:
    """The two queries the scores are built from: survey means and the behaviour proxies."""
    survey, _ = vm.survey_means_sql()
    behaviour, values = vm.behaviour_sql(segment_by, flt, model.activation_days)
    return (f"-- survey means (0–10) per segment, product and dimension\n{survey.strip()}\n\n"
            f"-- behaviour proxies per segment\n{behaviour.strip()}\n-- bound values: {values!r}")


def _lab(key: str) -> str:
    return label(vm.LABELS, key)


def _help(key: str) -> str:
    return help_text(vm.LABELS, key)


def _default_model():
    """The model the metrics module proposes (it may read the survey to find its dimensions)."""
    return run(vm.default_model) if inspect.signature(vm.default_model).parameters else vm.default_model()


def _model_editor(model) -> object:
    """The dimensions as an editable table; the edited rows become a new ``ValueCostModel``."""
    dims = pd.DataFrame([{k: getattr(d, k) for k in EDITABLE} for d in model.dimensions])
    edited = st.data_editor(
        dims, key="value_cost_model", hide_index=True, width="stretch", num_rows="dynamic",
        column_config={
            "name": st.column_config.TextColumn(tr("Dimension", "维度"), required=True),
            "kind": st.column_config.SelectboxColumn(tr("Kind", "类型"), options=list(vm.KINDS), required=True),
            "weight": st.column_config.NumberColumn(tr("Weight", "权重"), min_value=0.0, step=0.5, required=True,
                                                    help=tr("Normalised within each kind; 0 leaves the dimension out.",
                                                            "在同一类型内归一化；设为 0 即不计入该维度。")),
            "source": st.column_config.SelectboxColumn(tr("Source", "来源"), options=list(vm.SOURCES),
                                                       required=True),
            "metric": st.column_config.SelectboxColumn(tr("Behaviour metric", "行为指标"), options=list(vm.METRICS),
                                                       help=tr("For behaviour dimensions: the proxy metric.",
                                                               "行为来源维度使用的代理指标。")),
            "transform": st.column_config.SelectboxColumn(
                tr("Transform to 0–10", "转换为 0–10"), options=list(vm.TRANSFORMS),
                help=tr("rate: 10 × rate; time: 10 × min(hours / ceiling, 1); money: 10 × min(ARPPU / price, 1).",
                        "rate：10 × 比率；time：10 × min(小时 / 上限, 1)；money：10 × min(ARPPU / 参考价, 1)。"))})
    c1, c2 = st.columns(2)
    price = c1.number_input(tr("Reference price for the money cost (¥)", "金钱成本的参考价格（¥）"), min_value=1.0,
                            value=float(model.reference_price), key="value_cost_price")
    ceiling = c2.number_input(tr("Time ceiling for the time cost (hours)", "时间成本的上限（小时）"), min_value=0.5,
                              value=float(model.time_ceiling_hours), key="value_cost_ceiling")
    rows = edited.dropna(subset=["name", "kind", "source"])
    rows = rows[rows["weight"].fillna(0) > 0]
    dimensions = tuple(
        vm.Dimension(name=str(r["name"]).strip().lower(), kind=r["kind"], weight=float(r["weight"]),
                     source=r["source"], metric=(r["metric"] or None) if pd.notna(r["metric"]) else None,
                     transform=(r["transform"] or None) if pd.notna(r["transform"]) else None)
        for _, r in rows.iterrows())
    return vm.ValueCostModel(dimensions=dimensions, reference_price=float(price), time_ceiling_hours=float(ceiling))


# Chart and table builders: run once per data version, parameters and language (:func:`ui.context.memo`); a
# rerun only sends what they made.

def _scorecard(scores: pd.DataFrame, rival: str | None) -> tuple:
    """(figure, CSV) of the scores per segment, with the rival's where one is chosen."""
    fig = go.Figure(go.Bar(x=scores["segment"], y=scores["score"], name=tr("Ours", "我们"),
                           marker_color=["#2ca02c" if s > 0 else "#d62728" for s in scores["score"].fillna(0)]))
    if rival and "rival_score" in scores:
        # The verdict compares like with like: our score on the survey dimensions both products were rated on
        # (shared_score) against the rival's; the bars also carry behaviour dimensions a rival cannot have.
        fig.add_trace(go.Scatter(x=scores["segment"], y=scores["shared_score"], mode="markers",
                                 name=tr("Ours on the rival's dimensions", "我方（与竞品相同维度）"),
                                 marker={"symbol": "diamond", "size": 12, "color": "#1f77b4"}))
        fig.add_trace(go.Scatter(x=scores["segment"], y=scores["rival_score"], mode="markers", name=rival,
                                 marker={"symbol": "line-ew-open", "size": 28, "color": "#333",
                                         "line": {"width": 3, "color": "#333"}}))
    fig.add_hline(y=0, line_color="#888")
    fig.update_layout(height=360, margin={"t": 30, "b": 10}, yaxis_title=_lab("score"), yaxis_range=[-10, 10],
                      legend={"orientation": "h", "y": 1.12})
    return prepared_chart(fig, scores)


def _scorecard_table(scores: pd.DataFrame) -> tuple:
    """(table, CSV) of the scorecard, verdict and diagnosis in the chosen language."""
    shown = scores.assign(verdict=scores["verdict"].map(_words), diagnosis=scores["diagnosis"].map(_words))
    return shown, csv_bytes(shown)


def _code_word(code: str) -> str:
    """A dimension's kind or source code (``vm.KINDS``, ``vm.SOURCES``) in the chosen language; an unknown one as
    it is."""
    return tr(code, ZH_CODES.get(code, code))


def _dimension_names(dimensions: pd.Series, kinds: pd.Series) -> list[str]:
    """Each dimension named with its kind in the chosen language: "trust (cost)", "trust（成本）"."""
    return [tr(f"{d} ({_code_word(k)})", f"{d}（{_code_word(k)}）") for d, k in zip(dimensions, kinds)]


def _waterfall(ours: pd.DataFrame) -> tuple:
    """(figure, CSV) of one segment's weighted value and cost dimensions summing to its score."""
    ours = ours.sort_values(["kind", "weighted"], ascending=[False, False])
    signed = ours["weighted"].abs().where(ours["kind"] == "value", -ours["weighted"].abs())
    fig = go.Figure(go.Waterfall(
        x=_dimension_names(ours["dimension"], ours["kind"]) + [tr("score", "得分")],
        y=list(signed) + [None], measure=["relative"] * len(ours) + ["total"],
        increasing={"marker": {"color": "#2ca02c"}}, decreasing={"marker": {"color": "#d62728"}},
        totals={"marker": {"color": "#1f77b4"}}, texttemplate="%{delta:.2f}", textposition="outside",
        cliponaxis=False))
    fig.update_layout(height=400, margin={"t": 30, "b": 10}, yaxis_title=tr("Weighted points", "加权分"),
                      showlegend=False)
    return prepared_chart(fig, ours)


def _against_rival(both: pd.DataFrame, rival: str) -> tuple:
    """(figure, CSV) of our mean score against the rival's per dimension of one segment."""
    fig = go.Figure()
    for prod, colour in (("ours", "#1f77b4"), (rival, "#ff7f0e")):
        part = both[both["product"] == prod]
        fig.add_trace(go.Bar(x=_dimension_names(part["dimension"], part["kind"]), y=part["score"],
                             name=tr("ours", "我们") if prod == "ours" else prod, marker_color=colour))
    fig.update_layout(barmode="group", height=400, margin={"t": 30, "b": 10}, yaxis_range=[0, 10],
                      yaxis_title=tr("Mean score (0–10)", "平均分（0–10）"), legend={"orientation": "h", "y": 1.12})
    return prepared_chart(fig, both)


page_header("Value vs cost", "价值 vs 成本")
flt = filters()
products = _survey_products(data_version())
if not products:
    empty_state("No survey is loaded: load perceived value / cost ratings (segment, product, dimension, kind, score) "
                "on the Data page to score value against cost.",
                "尚未加载调研数据：请在“数据”页加载感知价值/成本评分（细分、产品、维度、类型、分数）后再比较价值与成本。")
    st.stop()

rivals = [p for p in products if p != "ours"]
c1, c2 = st.columns(2)
segment_by = choice("radio", tr("Segments", "细分"), SEGMENTS, key="value_cost_segment_by", container=c1,
                    horizontal=True)
rival = choice("selectbox", tr("Rival", "竞品"), {"": ("(none)", "（无）"), **{r: (r, r) for r in rivals}},
               key="value_cost_rival", container=c2, index=1 if rivals else 0) or None

try:
    with st.expander(tr("Model: dimensions, weights and sources (editable)", "模型：维度、权重与来源（可编辑）")):
        model = _model_editor(_default_model())
    # the scores and the dimensions behind them from one pass over the behaviour
    both = run(vm.value_cost_page, model, segment_by=segment_by, rival=rival, filters=flt)
    scores, dims = both["scores"], both["dimensions"]
except UserInputError as exc:
    st.error(md_escape(str(exc)))
    st.stop()

if scores.empty:
    empty_state("No segment has ratings or behaviour in the selected range and filters.",
                "所选范围和筛选下没有任何细分有评分或行为数据。")
    st.stop()

given = (model, segment_by, rival, flt)   # what the scores and dimension scores were computed from
sources_sql = memo(_sources_sql, given, model, segment_by, flt)
weights = md_escape(tr("; ", "；").join(
    tr(f"{d.name} ({_code_word(d.kind)}, {_code_word(d.source)}, w={d.weight:g})",
       f"{d.name}（{_code_word(d.kind)}，{_code_word(d.source)}，w={d.weight:g}）")
    for d in model.dimensions))
options = tr(f"Segments: {SEGMENTS[segment_by][0].lower()}; rival: {md_escape(rival) or 'none'}; "
             f"dimensions: {weights}.",
             f"细分：{SEGMENTS[segment_by][1]}；竞品：{md_escape(rival) or '无'}；维度：{weights}。")
definition = tr("Score = Σ w·value − Σ w·cost on a 0–10 scale per dimension, weights normalised within each kind, so "
                "the score lies in [−10, 10]; a segment adopts when the score > 0 and beats the rival when its score "
                "is higher on the same (survey) dimensions. Survey ratings are not narrowed by the date range or the "
                "channel/campaign filters; behaviour dimensions are (users acquired in the range). ",
                "得分 = Σ w·价值 − Σ w·成本（每个维度 0–10 分，权重在同类型内归一化），范围 [−10, 10]；得分 > 0 即会"
                "采用，在相同（调研）维度上得分高于竞品即胜出。调研评分不受日期范围和渠道/活动筛选影响；行为维度受其影响"
                "（范围内获取的用户）。")

# Scorecard ---------------------------------------------------------------------------------------------
st.subheader(tr("Scorecard", "评分卡"))
fig, csv = memo(_scorecard, given, scores, rival)
chart_block(fig, csv, key="value_cost_scores", name=f"value_cost_scores_{segment_by}",
            caption=definition + tr("Bars: our score per segment on every dimension of the model. With a rival: "
                                    "blue diamonds are our score on the survey dimensions both products were rated "
                                    "on, black ticks the rival's on the same dimensions — the verdict compares these "
                                    "two. ",
                                    "柱：各细分在模型全部维度上的我方得分。选择竞品时：蓝色菱形为我方在双方都有调研评分的"
                                    "维度上的得分，黑色短线为竞品在同样维度上的得分——胜负按这两者比较。") + options,
            sql=sources_sql)
cfg = {c: st.column_config.Column(_lab(c), help=_help(c)) for c in scores.columns}
cfg["segment"] = st.column_config.TextColumn(tr(*SEGMENTS[segment_by]))
for c in ("value", "cost", "score", "rival_value", "rival_cost", "rival_score", "shared_score"):
    if c in scores:
        cfg[c] = st.column_config.NumberColumn(_lab(c), help=_help(c), format="%.2f")
shown, csv = memo(_scorecard_table, given, scores)
table_block(shown, csv=csv, key="value_cost_table", name=f"value_cost_scorecard_{segment_by}", column_config=cfg,
            caption=tr("Missing = dimensions with no data for the segment: they are left out and the remaining "
                       "weights renormalised, never counted as zero. ",
                       "缺失 = 该细分没有数据的维度：它们被排除、其余权重重新归一化，绝不计为 0。") + options,
            sql=sources_sql)

# One segment in detail -------------------------------------------------------------------------------
st.subheader(tr("One segment in detail", "单个细分详情"))
segment = st.selectbox(tr("Segment", "细分"), list(scores["segment"]), key="value_cost_segment")
row = scores[scores["segment"] == segment].iloc[0]
verdict, diagnosis = f"**{md_escape(_words(row['verdict']))}**", md_escape(_words(row["diagnosis"]))
st.markdown(tr(f"{md_escape(segment)}: score {fmt.number(row['score'], 2)} → {verdict}. Diagnosis: {diagnosis}",
               f"{md_escape(segment)}：得分 {fmt.number(row['score'], 2)} → {verdict}。诊断：{diagnosis}"))

ours = dims[(dims["segment"] == segment) & (dims["product"] == "ours")].copy()
left, right = st.columns(2)
with left:
    if ours.empty:
        empty_state("No dimension has data for this segment.", "该细分没有任何维度有数据。")
    else:
        fig, csv = memo(_waterfall, (given, segment), ours)
        chart_block(fig, csv, key="value_cost_waterfall", name=f"value_cost_waterfall_{segment}",
                    caption=tr(f"{segment}: each value dimension adds its weighted score (w·score), each cost "
                               "dimension subtracts its own; the last bar is the score. ",
                               f"{segment}：每个价值维度加上其加权分（w·分数），每个成本维度减去其加权分；最后一根柱为"
                               "得分。") + options, sql=sources_sql)
with right:
    both = dims[(dims["segment"] == segment)]
    if not rival or both[both["product"] == rival].empty:
        empty_state("Pick a rival rated in the survey to compare dimension by dimension.",
                    "请选择调研中有评分的竞品以逐维度比较。")
    else:
        fig, csv = memo(_against_rival, (given, segment), both, rival)
        chart_block(fig, csv, key="value_cost_rival", name=f"value_cost_vs_{rival}_{segment}",
                    caption=tr(f"{segment}: our mean score against {rival}'s per dimension (higher value is better, "
                               "higher cost is worse). The rival has no behaviour data, so only survey dimensions "
                               "are compared. ",
                               f"{segment}：各维度我们与 {rival} 的平均分（价值越高越好，成本越高越差）。竞品没有行为"
                               "数据，因此只比较调研维度。") + options, sql=sources_sql)
