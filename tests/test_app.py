"""AppTest checks of the whole dashboard: every page in both languages, the Overview's numbers
against the metrics they come from, an upload through the Data page, and a filter that matches
nothing.

The app reads ``OPSFUNNEL_DB`` itself: a session-scoped temporary DuckDB file holds the sample
data, loaded once; uploads go to a separate empty database so they never change the shared one.
"""
from __future__ import annotations

import re
from datetime import date, timedelta
from pathlib import Path

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

import store
from metrics import Filters
from ui.safe import md_escape

ROOT = Path(__file__).resolve().parent.parent
PAGES = sorted(p.name for p in (ROOT / "app_pages").glob("*.py") if p.name != "__init__.py")
CJK = re.compile(r"[\u4e00-\u9fff]")


@pytest.fixture(scope="session")
def sample_db(tmp_path_factory):
    path = str(tmp_path_factory.mktemp("app") / "sample.duckdb")
    con = store.connect(path)
    store.load_sample_data(con)
    con.close()
    return path


@pytest.fixture
def app(sample_db, monkeypatch):
    monkeypatch.chdir(ROOT)  # AppTest reads .streamlit/config.toml from the working directory
    monkeypatch.setenv("OPSFUNNEL_DB", sample_db)
    monkeypatch.delenv("OPSFUNNEL_NO_SAMPLE", raising=False)

    def make(lang: str = "en") -> AppTest:
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["lang"] = lang
        return at.run()
    return make


def test_eleven_pages():
    assert len(PAGES) == 11, PAGES


@pytest.mark.parametrize("lang", ["en", "zh"])
@pytest.mark.parametrize("page", PAGES)
def test_page_renders(app, page, lang):
    at = app(lang)
    at.switch_page(f"app_pages/{page}").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.title, "every page starts with its header"
    sidebar = [w.label for w in at.sidebar.multiselect]
    if lang == "zh":
        assert sidebar == ["渠道", "活动"]
        assert CJK.search(at.title[0].value), at.title[0].value
    else:
        assert sidebar == ["Channels", "Campaigns"]
        assert not CJK.search(at.title[0].value), at.title[0].value
    # every table leaves a cell with no value blank, as the captions say (Streamlit would print "None")
    shown = [d.proto for d in at.dataframe if d.proto.editing_mode == d.proto.EditingMode.READ_ONLY]
    assert all(p.HasField("placeholder") and p.placeholder == "" for p in shown), page


def _metric_values(at) -> dict[str, tuple[str, str]]:
    return {m.label: (m.value, m.delta) for m in at.metric}


def test_overview_numbers_equal_the_metrics(app, sample_db):
    import importlib.util

    from metrics import economics, retention, stages, traffic
    referral = importlib.import_module("metrics.referral") if importlib.util.find_spec("metrics.referral") else None
    from ui import format as fmt

    at = app()
    # 28 days ending five weeks before the data ends: week 4 of their first cohorts has ended, and the
    # previous period (the 28 days before) has data too.
    start, end = at.date_input(key="flt_dates").value
    last28 = (end - timedelta(days=27 + 35), end - timedelta(days=35))
    at.date_input(key="flt_dates").set_value(last28).run()
    assert not at.exception
    f = Filters(start=last28[0], end=last28[1], timezone="UTC")
    prev = Filters(start=last28[0] - timedelta(days=28), end=last28[1] - timedelta(days=28), timezone="UTC")
    assert at.session_state["filters"] == f

    con = store.connect(sample_db)

    def numbers(flt):
        ch = economics.campaign_economics(con, economics.EconomicsParams(level="channel", filters=flt, timezone="UTC"))
        paid = ch[ch["spend"].fillna(0) > 0]
        a1 = stages.aarrr(con, stages.AarrrParams(filters=flt)).set_index("stage")["rate_of_acquired"]
        # week-4 retention: rolling weekly cohorts starting in the range (28 days → 4 + 2 periods kept),
        # averaged over the cohorts whose week 4 has ended
        cohorts = retention.retention(con, retention.RetentionParams(
            period="week", periods=6, alignment="rolling", filters=flt))
        avg = retention.retention_average(cohorts).set_index("period")["rate"]
        rev = stages.revenue_summary(con, stages.AarrrParams(filters=flt)).iloc[0]
        ts = traffic.traffic_summary(con, traffic.TrafficParams(filters=flt)).iloc[0]
        spend, users = ch["spend"].fillna(0).sum(), ch["new_users"].sum()
        out = {"Spend": spend, "New users": users, "CAC (paid)": paid["spend"].sum() / paid["new_users"].sum(),
               "ROAS (30 days)": paid["revenue_h"].fillna(0).sum() / paid["spend"].sum(),
               "Visitors (UV)": ts["uv"], "Activation rate": a1["activation"],
               "Week-4 retention": avg.get(4), "Paying rate": rev["paying_rate"], "ARPU": rev["arpu"]}
        if referral is not None:
            out["K-factor"] = referral.referral_summary(
                con, referral.ReferralParams(filters=flt)).iloc[0]["k_factor"]
        return out

    now, before = numbers(f), numbers(prev)
    con.close()
    shown = _metric_values(at)
    formats = {"Spend": fmt.money, "New users": fmt.number, "CAC (paid)": lambda x: fmt.money(x, digits=2),
               "ROAS (30 days)": fmt.ratio, "Visitors (UV)": fmt.number, "Activation rate": fmt.pct,
               "Week-4 retention": fmt.pct, "Paying rate": fmt.pct, "ARPU": lambda x: fmt.money(x, digits=2),
               "K-factor": lambda x: fmt.number(x, 3)}
    for name, value in now.items():
        label = next(lbl for lbl in shown if lbl.startswith(name.split(" (")[0]) or lbl == name)
        assert shown[label][0] == formats[name](value), (name, shown[label], value)
        if before[name] and not pd.isna(before[name]) and not pd.isna(value):
            assert shown[label][1] == fmt.signed_pct((value - before[name]) / abs(before[name])), name
            assert shown[label][1].startswith("-" if value < before[name] else "+")  # st.metric's arrow
    assert now["New users"] > 100 and now["Spend"] > 0  # a real comparison, not of empty numbers
    # the movers list names the biggest relative change first
    assert not any(pd.isna(v) for v in now.values())  # every KPI has a value in this range
    changes = {n: abs((now[n] - before[n]) / before[n]) for n in now if before[n] and not pd.isna(before[n])}
    top = max(changes, key=changes.get)
    movers = [m.value for m in at.markdown if m.value.startswith(("🟢", "🔴"))]
    assert 3 <= len(movers) <= 5 and top.split(" (")[0] in movers[0], movers


def test_filter_matching_nothing_shows_info(app):
    at = app()
    at.multiselect(key="flt_campaigns").select("douyin_flash_sale").run()
    at.multiselect(key="flt_channels").select("organic").run()  # organic users have no douyin campaign
    assert at.session_state["filters"].channels == ("organic",)
    assert at.session_state["filters"].campaigns == ("douyin_flash_sale",)
    assert not at.exception, [e.value for e in at.exception]
    assert any("No users match" in i.value for i in at.info), [i.value for i in at.info]
    assert not at.metric
    for page in PAGES:
        at.switch_page(f"app_pages/{page}").run()
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])


EVENTS_CSV = (b"member,action,when,source,amount\n"
              b"m1,signup,2026-03-01 09:00:00,WeChat,\n"
              b"m1,purchase,2026-03-02 10:30:00,WeChat,12.5\n"
              b"m2,signup,2026-03-01 11:00:00,douyin,\n"
              b"m2,purchase,not a time,douyin,3\n")


@pytest.fixture
def empty_app(tmp_path, monkeypatch):
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OPSFUNNEL_DB", str(tmp_path / "empty.duckdb"))
    monkeypatch.setenv("OPSFUNNEL_NO_SAMPLE", "1")
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
    at.run()
    return at, str(tmp_path / "empty.duckdb")


def test_empty_database_offers_sample_data(empty_app):
    at, _ = empty_app
    assert not at.exception
    assert any("database is empty" in i.value for i in at.info)
    at.button(key="overview_load_sample").click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.info or not any("database is empty" in i.value for i in at.info)
    assert len(at.metric) == 10
    new_users = next(m.value for m in at.metric if m.label == "New users")
    assert int(new_users.replace(",", "")) > 1000


SPEND_CSV = (b"date,channel,campaign,spend\n"
             b"2026-03-01,WeChat,spring,100\n"
             b"2026-03-01,baidu,brand,50\n")


def test_upload_with_mapping_fix(empty_app):
    at, path = empty_app
    at.switch_page("app_pages/data.py").run()
    at.file_uploader[0].set_value([("events_march.csv", EVENTS_CSV, "text/csv"),
                                   ("spend_march.csv", SPEND_CSV, "text/csv")]).run()
    assert not at.exception, [e.value for e in at.exception]
    assert [s.value for s in at.selectbox if s.key and s.key.startswith("data_kind_")] == ["events", "spend"]
    # 'member' and 'when' match no alias: the store's message names what is missing, nothing loads.
    assert any("no column for user_id, event_time" in e.value for e in at.error), [e.value for e in at.error]
    assert not [b for b in at.button if b.key == "data_load"] or at.button(key="data_load").label == "Load 1 file(s)"
    # Fix the mapping in the editor: rows follow ALIASES["events"] order (user_id = row 1, event_time = row 3).
    at.session_state["data_map_0_events"] = {
        "edited_rows": {1: {"header": "member"}, 3: {"header": "when"}}, "added_rows": [], "deleted_rows": []}
    at.run()
    assert not at.error, [e.value for e in at.error]
    editors = {"data_map_0_events", "data_map_1_spend"}
    previews = [d.value for d in at.dataframe if d.key not in editors]  # the empty database has no other table
    assert len(previews) == 2
    # four rows parsed; the fourth would be rejected for its time
    assert list(previews[0]["user_id"]) == ["m1", "m1", "m2", "m2"]
    assert previews[0]["reason"].isna().tolist() == [True, True, True, False]
    assert list(previews[1]["spend"]) == [100.0, 50.0]
    assert at.button(key="data_load").label == "Load 2 file(s)"
    at.button(key="data_load").click().run()
    assert not at.exception, [e.value for e in at.exception]
    warn = [w.value.replace("*", "") for w in at.warning]
    assert any("events_march.csv (Events): 4 rows read, 3 loaded" in w and "1 rejected" in w for w in warn), warn
    assert any("spend_march.csv (Ad spend): 2 rows read, 2 loaded" in s.value.replace("*", "") for s in at.success)
    con = store.connect(path)
    assert con.execute("SELECT count(*), count(DISTINCT user_id), sum(revenue) FROM events").fetchone() == (3, 2, 12.5)
    assert con.execute("SELECT line, reason FROM rejected_rows").fetchall() == [
        (5, "event_time 'not a time' is not a date-time")]
    # the sidebar's options follow the new data
    assert at.multiselect(key="flt_channels").options == ["douyin", "wechat"]
    # data health: no user came from campaign wechat/spring or baidu/brand (the events have no campaign)
    assert any("0.0% of ¥150; 2 unmatched spend key(s)" in m.value for m in at.markdown), [m.value for m in at.markdown]

    # The stage map editor: rows by event count (signup 2, purchase 1); make signup an activation event.
    at.session_state["data_stage_map"] = {"edited_rows": {0: {"stage": "activation"}}, "added_rows": [],
                                          "deleted_rows": []}
    at.run()
    at.button(key="data_stage_save").click().run()
    assert not at.exception
    assert any("Saved 1 stage change" in s.value for s in at.success)
    assert dict(con.execute("SELECT event_name, stage FROM stage_map").fetchall()) == {
        "signup": "activation", "purchase": "revenue"}
    con.close()


def test_bad_upload_shows_the_stores_message(empty_app, tmp_path):
    at, path = empty_app
    png = b"\x89PNG\r\n\x1a\n" + bytes(64)  # an image named .csv
    bad = tmp_path / "events_bad.csv"
    bad.write_bytes(png)
    with pytest.raises(store.UserInputError) as refused:
        store.load_events(store.connect(":memory:"), str(bad), name="events_bad.csv")
    at.switch_page("app_pages/data.py").run()
    at.file_uploader[0].upload("events_bad.csv", png, "text/csv").run()
    assert not at.exception
    assert [e.value for e in at.error] == [md_escape(str(refused.value))]  # shown as text, not Markdown
    assert "events_bad.csv" in str(refused.value)


def test_concurrent_reads_and_serialised_writes(tmp_path, monkeypatch):
    """Sessions are threads of one server: reads use their own cursors while loads queue on one lock."""
    import threading

    import pandas as pd

    from ui import context

    monkeypatch.setenv("OPSFUNNEL_DB", str(tmp_path / "concurrent.duckdb"))
    monkeypatch.setenv("OPSFUNNEL_NO_SAMPLE", "1")
    before = context.data_version()
    inside, peak, errors = [0], [0], []

    def load(i: int) -> None:
        # 50 distinct events of user w<i>, one a minute from 10:00
        df = pd.DataFrame({"user_id": f"w{i}", "event_name": "page_view",
                           "event_time": pd.date_range("2026-01-01 10:00", periods=50, freq="min").astype(str)})
        try:
            with context.write() as con:
                inside[0] += 1
                peak[0] = max(peak[0], inside[0])
                store.load_events(con, df)
                inside[0] -= 1
        except Exception as exc:  # collected: a failure in a thread must fail the test
            errors.append(exc)

    def read() -> None:
        try:
            for _ in range(30):
                n = context.db().execute("SELECT count(*) FROM events").fetchone()[0]
                assert n % 50 == 0  # a reader never sees half a load
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=load, args=(i,)) for i in range(4)]
    threads += [threading.Thread(target=read) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert peak[0] == 1  # the lock let one load in at a time
    assert context.db().execute("SELECT count(*), count(DISTINCT user_id) FROM events").fetchone() == (200, 4)
    assert context.data_version() != before


def test_memo_builds_once_per_key_data_version_and_language(tmp_path, monkeypatch):
    """What a page builds from metric results (:func:`ui.context.memo`) is made once, shared as it is, and made
    again after a load changes the data or for the other language, never served stale."""
    import streamlit as st

    from ui import context

    monkeypatch.setenv("OPSFUNNEL_DB", str(tmp_path / "memo.duckdb"))
    monkeypatch.setenv("OPSFUNNEL_NO_SAMPLE", "1")
    had = st.session_state.get("lang")   # outside a script run the session state is shared: leave it as found
    try:
        _memo_checks(st, context)
    finally:
        if had is None:
            st.session_state.pop("lang", None)
        else:
            st.session_state["lang"] = had


def _memo_checks(st, context) -> None:
    import pandas as pd

    st.session_state["lang"] = "en"
    built = []

    def build(rows: int) -> dict:
        built.append((rows, context.lang()))
        return {"rows": rows, "events": context.db().execute("SELECT count(*) FROM events").fetchone()[0]}

    def load(n: int) -> None:
        df = pd.DataFrame({"user_id": "m1", "event_name": "page_view",
                           "event_time": pd.date_range(f"2026-02-0{n} 10:00", periods=3, freq="min").astype(str)})
        with context.write() as con:
            store.load_events(con, df)

    load(1)
    first = context.memo(build, ("a",), 3)
    assert first == {"rows": 3, "events": 3}
    assert context.memo(build, ("a",), 3) is first            # the same object: nothing copied or rebuilt
    assert context.memo(build, ("b",), 4) == {"rows": 4, "events": 3}
    assert built == [(3, "en"), (4, "en")]
    load(2)                                                     # new data: built again, not served stale
    assert context.memo(build, ("a",), 3) == {"rows": 3, "events": 6}
    st.session_state["lang"] = "zh"
    assert context.memo(build, ("a",), 3) == {"rows": 3, "events": 6}
    assert built == [(3, "en"), (4, "en"), (3, "en"), (3, "zh")]


@pytest.mark.parametrize("flt", [
    Filters(), Filters(start=date(2026, 8, 1), end=date(2026, 8, 28)), Filters(channels=("douyin",)),
    Filters(start=date(2020, 1, 1), end=date(2020, 1, 31)),    # nobody acquired: both KPIs are blank
], ids=["all", "august", "douyin", "empty"])
def test_overview_revenue_kpis_equal_revenue_summary(sample_db, monkeypatch, flt):
    """The Overview reads paying rate and ARPU off the AARRR table (one per-user pass for four KPIs); they are
    the revenue summary's numbers."""
    from metrics import stages
    from ui import context, kpis

    monkeypatch.setenv("OPSFUNNEL_DB", sample_db)
    monkeypatch.setenv("OPSFUNNEL_NO_SAMPLE", "1")
    rev = stages.revenue_summary(context.db(), stages.AarrrParams(filters=flt, timezone=flt.timezone)).iloc[0]
    expected = [None if pd.isna(rev[c]) else float(rev[c]) for c in ("paying_rate", "arpu")]
    assert [kpis.paying_rate(flt), kpis.arpu(flt)] == pytest.approx(expected)
    if flt.start is not None and flt.start.year == 2020:
        assert expected == [None, None]
    else:
        assert 0 < expected[0] < 1 and expected[1] > 0
