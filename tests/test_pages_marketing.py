"""AppTest checks of the Marketing pages (traffic, acquisition, campaigns, saturation) and the two insight pages
(campaign vs retention, value vs cost): each renders in both languages without an exception, shows the numbers
the metrics return for the same filters, draws its charts with a caption, a CSV download and (where a SQL
builder exists) the SQL, and turns an empty database or a filter that matches nothing into a sentence.

The sample data is loaded once into a temporary DuckDB file; the expected numbers are computed by calling the
metrics on that file with the ``Filters`` the app's sidebar produced (read back from session state).
"""
from __future__ import annotations

import base64
import itertools
import time

import numpy as np
import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

import store
from metrics import economics as em
from metrics import saturation as sm
from metrics import traffic as tm
from metrics import value_cost as vm
from tests.conftest import ROOT, journeys_frame
from tests.test_ui_labels import _overlap
from ui.labels import PLOT_WIDTH_PX, _boxes, text_px

PAGES = ("traffic", "acquisition", "campaigns", "saturation", "campaign_vs_retention", "value_cost")
TITLES = {"traffic": ("Traffic", "流量"), "acquisition": ("Acquisition", "拉新"),
          "campaigns": ("Campaigns & ROI", "活动与 ROI"), "saturation": ("Channel saturation", "渠道饱和度"),
          "campaign_vs_retention": ("Campaign vs retention", "活动 vs 留存"),
          "value_cost": ("Value vs cost", "价值 vs 成本")}
CHARTS = {"traffic": 2, "acquisition": 1, "campaigns": 2, "saturation": 1, "campaign_vs_retention": 1,
          "value_cost": 3}


def _app(db: str, monkeypatch, lang: str = "en", no_sample: bool = False, page: str | None = None) -> AppTest:
    """The app on ``db``, run once on ``page`` (default: the Overview)."""
    monkeypatch.setenv("OPSFUNNEL_DB", db)
    if no_sample:
        monkeypatch.setenv("OPSFUNNEL_NO_SAMPLE", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.session_state["lang"] = lang
    if page:
        at.switch_page(f"app_pages/{page}.py")
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _open(at: AppTest, page: str) -> AppTest:
    """Switch to another page and run it."""
    at.switch_page(f"app_pages/{page}.py").run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _values(arr) -> np.ndarray:
    """A plotly array from the figure JSON: plain list, or plotly 6+'s base64 ``{"dtype", "bdata"}``."""
    if isinstance(arr, dict) and "bdata" in arr:
        return np.frombuffer(base64.b64decode(arr["bdata"]), dtype=np.dtype(arr["dtype"]))
    return np.asarray(arr)


def _figure(at: AppTest, i: int) -> dict:
    import json
    return json.loads(at.get("plotly_chart")[i].proto.spec)


@pytest.fixture(scope="module")
def sample_db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("marketing_pages") / "sample.duckdb")
    con = store.connect(path)
    store.load_sample_data(con)
    st.cache_data.clear()
    yield path, con
    con.close()


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("page", PAGES)
def test_page_renders_with_charts_captions_and_downloads(sample_db, monkeypatch, page, lang):
    at = _app(sample_db[0], monkeypatch, lang, page=page)
    assert not at.error, [e.value for e in at.error]
    assert at.title[0].value == TITLES[page][lang == "zh"]
    assert len(at.get("plotly_chart")) >= CHARTS[page]
    downloads = at.get("download_button")
    assert len(downloads) >= CHARTS[page]
    assert all(b.proto.label == ("下载 CSV" if lang == "zh" else "Download CSV") for b in downloads)
    if page != "value_cost":  # every other page's charts come from SQL builders
        sql_label = "查看 SQL" if lang == "zh" else "Show SQL"
        assert sum(e.proto.label == sql_label for e in at.expander) >= CHARTS[page]
    t = time.perf_counter()
    at.run()
    print(f"warm rerun {page} ({lang}): {time.perf_counter() - t:.3f} s")


def test_traffic_kpis_equal_the_metric(sample_db, monkeypatch):
    path, con = sample_db
    at = _app(path, monkeypatch, page="traffic")
    flt = at.session_state["filters"]
    expected = tm.traffic_summary(con, tm.TrafficParams(period="week", filters=flt, timezone=flt.timezone)).iloc[0]
    shown = {m.label: m.value for m in at.metric}
    assert shown["Page views (PV)"] == f"{int(expected['pv']):,}"
    assert shown["Unique visitors (UV)"] == f"{int(expected['uv']):,}"
    assert shown["Sessions"] == f"{int(expected['sessions']):,}"
    assert shown["Bounce rate"] == f"{expected['bounce_rate'] * 100:.1f}%"
    # the series chart's PV line (trace 1) is pv_uv's weekly PV, period by period
    weekly = tm.pv_uv(con, tm.TrafficParams(period="week", filters=flt, timezone=flt.timezone))
    pv_trace = _figure(at, 0)["data"][1]
    np.testing.assert_array_equal(_values(pv_trace["y"]).astype(int), weekly["pv"].to_numpy())
    # the top pages table is the metric's frame (top 10 by default)
    top = tm.top_pages(con, tm.TrafficParams(period="week", filters=flt, timezone=flt.timezone, top_n=10))
    pd.testing.assert_frame_equal(at.dataframe[0].value.reset_index(drop=True), top, check_dtype=False)


def test_acquisition_new_users_add_up(sample_db, monkeypatch):
    path, con = sample_db
    at = _app(path, monkeypatch, page="acquisition")
    flt = at.session_state["filters"]
    by_channel = em.campaign_economics(con, em.EconomicsParams(level="channel", filters=flt, timezone=flt.timezone))
    total = int(by_channel["new_users"].sum())
    assert {m.label: m.value for m in at.metric}["New users"] == f"{total:,}"
    # the default range is all the data, so the stacked weekly bars hold every user exactly once
    bars = sum(int(_values(t["y"]).sum()) for t in _figure(at, 0)["data"])
    users = con.execute("SELECT count(*) FROM users").fetchone()[0]
    assert bars == total == users
    # per channel, the bars agree with campaign_economics' first-touch new users
    per_trace = {t["name"]: int(_values(t["y"]).sum()) for t in _figure(at, 0)["data"]}
    assert per_trace == dict(zip(by_channel["channel"], by_channel["new_users"].astype(int)))


def test_campaigns_table_is_the_economics_frame(sample_db, monkeypatch):
    path, con = sample_db
    at = _app(path, monkeypatch, page="campaigns")
    flt = at.session_state["filters"]
    econ = em.campaign_economics(con, em.EconomicsParams(level="campaign", horizon_days=30, filters=flt,
                                                         timezone=flt.timezone))
    shown = at.dataframe[0].value.reset_index(drop=True)
    numbers = [c for c in econ.columns if c not in ("channel", "campaign")]
    pd.testing.assert_frame_equal(shown[numbers], econ[numbers], check_dtype=False)
    assert {m.label: m.value for m in at.metric}["Spend"] == f"¥{econ['spend'].sum():,.0f}"
    # the rows without spend (direct, organic, referral) have no CAC: blank cells, not "None"
    assert econ["cac"].isna().sum() >= 3
    assert at.dataframe[0].proto.HasField("placeholder") and at.dataframe[0].proto.placeholder == ""
    # the LTV chart (the five largest spenders) names each payback day on a light box above its star, at that day
    top5 = econ.sort_values(["spend", "new_users"], ascending=False).head(5)
    paid_back = top5["payback_day"].dropna().astype(int)
    assert len(paid_back) >= 2
    boxes = {(a["text"], a["x"]) for a in _figure(at, 0)["layout"]["annotations"]}
    assert boxes == {(f"day {d}", d) for d in paid_back}
    assert all(a["bgcolor"] and a["yshift"] > 0 for a in _figure(at, 0)["layout"]["annotations"])
    # the break-even line's name sits at the right, over the rows of least ROAS
    (even,) = [a for a in _figure(at, 1)["layout"]["annotations"] if a["text"] == "break-even"]
    assert even["x"] == 1 and even["xanchor"] == "right"
    # per channel, then a 7-day horizon: the table follows the options
    at.radio(key="campaigns_level_en").set_value("channel").run()
    at.select_slider(key="campaigns_horizon").set_value(7).run()
    assert not at.exception
    econ7 = em.campaign_economics(con, em.EconomicsParams(level="channel", horizon_days=7, filters=flt,
                                                          timezone=flt.timezone))
    pd.testing.assert_frame_equal(at.dataframe[0].value.reset_index(drop=True), econ7, check_dtype=False)
    # the one unmatched spend key of the sample is listed
    unmatched = em.spend_coverage(con, flt)
    unmatched = unmatched[~unmatched["matched"]].reset_index(drop=True)
    pd.testing.assert_frame_equal(at.dataframe[1].value.reset_index(drop=True), unmatched, check_dtype=False)


def test_saturation_flags_the_metric_channels(sample_db, monkeypatch):
    path, con = sample_db
    at = _app(path, monkeypatch, page="saturation")
    flt = at.session_state["filters"]
    fits = sm.channel_saturation(con, sm.SaturationParams(filters=flt, timezone=flt.timezone))
    pd.testing.assert_frame_equal(at.dataframe[0].value.reset_index(drop=True), fits, check_dtype=False)
    saturated = fits.loc[fits["saturated"].astype(bool), "channel"].tolist()
    assert {m.label: m.value for m in at.metric}["Saturated channels"] == str(len(saturated))
    assert all(ch in at.warning[0].value for ch in saturated)
    # a stricter factor (3×) flags fewer channels, never more
    at.slider(key="saturation_factor").set_value(3.0).run()
    strict = sm.channel_saturation(con, sm.SaturationParams(saturation_factor=3.0, filters=flt,
                                                            timezone=flt.timezone))
    assert {m.label: m.value for m in at.metric}["Saturated channels"] == str(int(strict["saturated"].sum()))
    assert int(strict["saturated"].sum()) <= len(saturated)
    # asking for more weeks than the sample has (16) leaves every channel without a curve, each with its note
    at.number_input(key="saturation_min_weeks").set_value(20).run()
    unfit = sm.channel_saturation(con, sm.SaturationParams(min_weeks=20, saturation_factor=3.0, filters=flt,
                                                           timezone=flt.timezone))
    assert unfit["b"].isna().all() and not at.warning
    listed = [m.value for m in at.markdown if m.value.startswith("- **")]
    assert listed == [f"- **{r.channel}** — {r.note}" for r in unfit.itertuples()]


def test_quadrant_axes_follow_the_chosen_measures(sample_db, monkeypatch):
    path, con = sample_db
    at = _app(path, monkeypatch, page="campaign_vs_retention")
    flt = at.session_state["filters"]
    params = em.EconomicsParams(level="campaign", filters=flt, timezone=flt.timezone)
    cvr = em.campaign_vs_retention(con, params)
    econ = em.campaign_economics(con, params)
    assert len(at.dataframe[0].value) == len(cvr)
    at.selectbox(key="cvr_x_en").set_value("cost_per_paying").run()
    at.selectbox(key="cvr_y_en").set_value("retention_w4").run()
    assert not at.exception
    both = cvr.merge(econ[["channel", "campaign", "cost_per_paying"]], on=["channel", "campaign"])
    both = both.dropna(subset=["cost_per_paying", "retention_w4"])
    trace = _figure(at, 0)["data"][0]
    np.testing.assert_allclose(_values(trace["x"]), both["cost_per_paying"].to_numpy())
    np.testing.assert_allclose(_values(trace["y"]), both["retention_w4"].to_numpy())
    # the sample's cheap campaign sits lowest on week-4 retention among campaigns with enough users
    big = both[~both["small_sample"]]
    assert big.loc[big["retention_w4"].idxmin(), "campaign"] == "douyin_flash_sale"
    assert any("cheap but churny" in a["text"] for a in _figure(at, 0)["layout"]["annotations"])
    # the page sets both axes' ranges: every bubble and error bar inside them, the bubbles clear of the rows of the
    # corner names (13 px: 19.5 px high, 1 % = 4.35 px up from the bottom of the 435 px plot), and no two names
    # overlapping in the label placement's model of the chart (620 px wide)
    layout = _figure(at, 0)["layout"]
    (x_lo, x_hi), (y_lo, y_hi) = layout["xaxis"]["range"], layout["yaxis"]["range"]
    x, y = _values(trace["x"]), _values(trace["y"])
    low, high = y - _values(trace["error_y"]["arrayminus"]), y + _values(trace["error_y"]["array"])
    np.testing.assert_allclose(low, both["retention_w4_low"].to_numpy())
    assert x_lo < x.min() and x.max() < x_hi and y_lo < low.min() and high.max() < y_hi
    radius = _values(trace["marker"]["size"]) / 2
    py = (y - y_lo) / (y_hi - y_lo) * 435
    assert (py - radius).min() > 4.35 + 19.5 and (py + radius).max() < 435 - 4.35 - 19.5
    px = (x - x_lo) / (x_hi - x_lo) * PLOT_WIDTH_PX
    boxes = [_boxes(px[i], py[i], radius[i], text_px(name))[pos]
             for i, (name, pos) in enumerate(zip(trace["text"], trace["textposition"]))]
    assert not [(a, b) for a, b in itertools.combinations(boxes, 2) if _overlap(a, b)]
    # switching to Chinese keeps the chosen axes and names their options in Chinese
    at.radio(key="lang").set_value("zh").run()
    assert not at.exception
    x_box = at.selectbox(key="cvr_x_zh")
    assert x_box.value == "cost_per_paying"
    assert x_box.options == [em.LABELS[m]["zh"] for m in ("cac", "cost_per_activated", "cost_per_retained_w4",
                                                           "cost_per_paying")]
    assert at.selectbox(key="cvr_y_zh").value == "retention_w4"
    assert any("便宜但易流失" in a["text"] for a in _figure(at, 0)["layout"]["annotations"])


def test_side_by_side_table_marks_each_side_in_its_headers(sample_db, monkeypatch):
    path, con = sample_db
    at = _app(path, monkeypatch, page="campaign_vs_retention")
    flt = at.session_state["filters"]
    cvr = em.campaign_vs_retention(con, em.EconomicsParams(level="campaign", filters=flt, timezone=flt.timezone))
    shown = at.dataframe[0].value.reset_index(drop=True)
    labels = {k: em.LABELS[k]["en"] for k in ("spend", "impressions", "clicks", "ctr", "new_users", "cac",
                                              "activation_rate", "retention_w1", "retention_w4", "paying_rate",
                                              "ltv_30", "roas_30", "payback_day", "value_cost_score")}
    marketing = [f"📣 {labels[k]}" for k in ("spend", "impressions", "clicks", "ctr", "new_users", "cac")]
    operations = [f"⚙️ {labels[k]}" for k in ("activation_rate", "retention_w1", "retention_w4", "paying_rate",
                                               "ltv_30", "roas_30", "payback_day", "value_cost_score")]
    assert list(shown.columns) == ["Campaign", "Channel", *marketing, *operations, "Sample"]
    # the rows and numbers of the metric, formatted: new users as counts, a rate with its Wilson interval
    assert shown["📣 " + labels["new_users"]].tolist() == [f"{n:,}" for n in cvr["new_users"]]
    r = cvr.iloc[0]
    assert shown.loc[0, "⚙️ " + labels["retention_w1"]] == \
        f"{r.retention_w1:.1%} ({r.retention_w1_low:.1%}–{r.retention_w1_high:.1%})"
    assert (shown["Sample"] != "").tolist() == cvr["small_sample"].astype(bool).tolist()


def test_value_cost_scores_and_diagnosis(sample_db, monkeypatch):
    path, con = sample_db
    at = _app(path, monkeypatch, page="value_cost")
    flt = at.session_state["filters"]
    model = vm.default_model(con)
    scores = vm.score(con, model, segment_by="channel", rival="brightcart", filters=flt)
    assert len(at.dataframe[0].value) == len(model.dimensions)  # the model editor comes first
    pd.testing.assert_frame_equal(at.dataframe[1].value.reset_index(drop=True), scores, check_dtype=False)
    # the sample's story: the first segment's diagnosis names trust, in the sentence above the waterfall
    first = scores.iloc[0]
    sentence = [m.value for m in at.markdown if m.value.startswith(f"{first['segment']}: score")]
    assert sentence and first["diagnosis"] in sentence[0] and "trust" in first["diagnosis"]
    # the scorecard compares like with like: our score on the rival's dimensions next to the rival's
    traces = {t["name"]: t for t in _figure(at, 0)["data"]}
    np.testing.assert_allclose(_values(traces["Ours on the rival's dimensions"]["y"]).astype(float),
                               scores["shared_score"].astype(float))
    np.testing.assert_allclose(_values(traces["brightcart"]["y"]).astype(float), scores["rival_score"].astype(float))
    # the waterfall's numbers stand level outside their bars, and the one over the highest step is not cut off at
    # the plot's top (inside, a narrow bar's number was turned on its side; outside, the top one was clipped)
    fall = _figure(at, 1)["data"][0]
    assert fall["type"] == "waterfall" and fall["textposition"] == "outside" and fall["cliponaxis"] is False
    # each bar names its dimension and kind; in Chinese the kind too (价值 / 成本), as the diagnosis does
    kinds = {d.name: d.kind for d in model.dimensions}
    names = [x.rsplit(" (", 1)[0] for x in fall["x"][:-1]]
    assert fall["x"] == [f"{n} ({kinds[n]})" for n in names] + ["score"] and sorted(names) == sorted(kinds)
    at.radio(key="lang").set_value("zh").run()
    zh_kind = {"value": "价值", "cost": "成本"}
    assert _figure(at, 1)["data"][0]["x"] == [f"{n}（{zh_kind[kinds[n]]}）" for n in names] + ["得分"]
    # the captions list the model's dimensions with their kind and source in Chinese too
    zh_source = {"survey": "调研", "behaviour": "行为"}
    listed = "；".join(f"{d.name}（{zh_kind[d.kind]}，{zh_source[d.source]}，w={d.weight:g}）" for d in model.dimensions)
    assert {d.source for d in model.dimensions} == set(zh_source)        # (both sources are in the sample's model)
    assert any(f"维度：{listed}。" in c.value for c in at.caption)
    at.radio(key="lang").set_value("en").run()
    # survey segments without a rival
    at.radio(key="value_cost_segment_by_en").set_value("survey").run()
    at.selectbox(key="value_cost_rival_en").set_value("").run()
    assert not at.exception and not at.error
    plain = vm.score(con, model, segment_by="survey", rival=None, filters=flt)
    pd.testing.assert_frame_equal(at.dataframe[1].value.reset_index(drop=True), plain, check_dtype=False)


@pytest.mark.parametrize("page", PAGES)
def test_filter_matching_nothing_is_a_sentence(sample_db, monkeypatch, page):
    at = _app(sample_db[0], monkeypatch, page=page)
    # wechat users never have a xiaohongshu campaign as first touch: the selection is empty
    at.multiselect(key="flt_campaigns").set_value(["xhs_kol_review"]).run()
    at.multiselect(key="flt_channels").set_value(["wechat"]).run()
    assert at.session_state["filters"].channels == ("wechat",)
    assert at.session_state["filters"].campaigns == ("xhs_kol_review",)
    assert not at.error, [e.value for e in at.error]
    if page != "value_cost":  # survey ratings do not depend on the users selection
        assert at.info, f"{page} shows no empty-state sentence"


@pytest.mark.parametrize("page", PAGES)
def test_empty_database_is_a_sentence(tmp_path, monkeypatch, page):
    at = _app(str(tmp_path / "empty.duckdb"), monkeypatch, no_sample=True, page=page)
    assert not at.error, [e.value for e in at.error]
    assert at.info and not at.get("plotly_chart")


def test_events_without_spend_or_survey(tmp_path, monkeypatch):
    """A log with page views and revenue but no spend sheet and no survey: traffic and acquisition draw,
    the spend pages say there is no spend, value vs cost says there is no survey."""
    path = str(tmp_path / "events_only.duckdb")
    con = store.connect(path)
    # u1: 3 page views in one session on 2024-01-01 (wechat, spring); u2: 1 page view (direct), 1 purchase
    store.load_events(con, journeys_frame({
        "u1": [("page_view", "2024-01-01 10:00", {"channel": "wechat", "campaign": "spring", "page": "/"}),
               ("page_view", "2024-01-01 10:05", {"page": "/pricing"}),
               ("page_view", "2024-01-01 10:10", {"page": "/signup"})],
        "u2": [("page_view", "2024-01-02 09:00", {"page": "/"}),
               ("purchase", "2024-01-02 09:30", {"revenue": 50})]}))
    con.close()
    at = _app(path, monkeypatch, no_sample=True, page="traffic")
    # PV = 4, UV = 2, sessions = 2 (u1's three within 30 min; u2's two within 30 min), bounce = 1/2 (u2)
    shown = {m.label: m.value for m in at.metric}
    assert (shown["Page views (PV)"], shown["Unique visitors (UV)"], shown["Sessions"], shown["Bounce rate"]) \
        == ("4", "2", "2", "50.0%")
    _open(at, "acquisition")
    assert {m.label: m.value for m in at.metric}["New users"] == "2"
    for page in ("campaigns", "saturation", "value_cost"):
        _open(at, page)
        assert not at.error, (page, [e.value for e in at.error])
    _open(at, "value_cost")
    assert at.info and "survey" in at.info[0].value
    _open(at, "saturation")
    assert at.info and "spend" in at.info[0].value



def test_traffic_keeps_the_sessions_for_page_view_events_typed_on_the_page(tmp_path, monkeypatch):
    """An app export whose page views are ``screen_view``: the page starts from the stored names, says that other
    names are derived at each visit, and its button keeps the sessions for the typed names — after which the page
    counts them (and says nothing more)."""
    path = str(tmp_path / "screens.duckdb")
    con = store.connect(path)
    # u1: 3 screens in one session (wechat); u2: 1 screen, then a page_view and a signup 10 minutes later
    store.load_events(con, journeys_frame({
        "u1": [("screen_view", "2024-01-01 10:00", {"channel": "wechat", "page": "home"}),
               ("screen_view", "2024-01-01 10:05", {"page": "cart"}),
               ("screen_view", "2024-01-01 10:10", {"page": "pay"})],
        "u2": [("screen_view", "2024-01-02 09:00", {"page": "home"}),
               ("page_view", "2024-01-02 09:10", {"page": "/"}),
               ("signup", "2024-01-02 09:20", {})]}))
    con.close()
    at = _app(path, monkeypatch, no_sample=True)
    assert {m.label: m.value for m in at.metric}["Visitors (UV)"] == "1"      # u2's page_view alone
    _open(at, "traffic")
    assert at.text_input(key="traffic_pv_events").value == "page_view, pageview, $pageview"
    assert "traffic_pv_keep" not in [b.key for b in at.button]     # the stored names: nothing to keep
    at.text_input(key="traffic_pv_events").set_value("screen_view, page_view").run()
    assert not at.exception, [e.message for e in at.exception]
    # PV = 5, UV = 2, sessions = 2, bounce = 0 (u1 3 views, u2 2) — derived from the events for these names
    shown = {m.label: m.value for m in at.metric}
    assert (shown["Page views (PV)"], shown["Unique visitors (UV)"], shown["Sessions"], shown["Bounce rate"]) \
        == ("5", "2", "2", "0.0%")
    assert any("derived again from the events at each visit" in c.value for c in at.caption)
    at.button(key="traffic_pv_keep").click().run()
    assert not at.exception, [e.message for e in at.exception]
    con = store.connect(path)      # the app's own database instance (a read-only one cannot open beside it)
    assert store.stored_pageview_events(con) == ("screen_view", "page_view")
    assert con.execute("SELECT entry_page, pageviews FROM traffic_sessions ORDER BY user_key").fetchall() == [
        ("home", 3), ("home", 2)]
    con.close()
    shown = {m.label: m.value for m in at.metric}
    assert (shown["Page views (PV)"], shown["Sessions"], shown["Bounce rate"]) == ("5", "2", "0.0%")
    assert not any("derived again from the events at each visit" in c.value for c in at.caption)
    assert "traffic_pv_keep" not in [b.key for b in at.button]
    _open(at, "overview")                                     # the Overview counts the same page views
    assert {m.label: m.value for m in at.metric}["Visitors (UV)"] == "2"
