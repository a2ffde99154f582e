"""Safety of the dashboard: CSV downloads that cannot run formulas, user content shown as text, the
password gate, bounded queries, the page boundary, the upload limit, and choices that survive a
language switch.

Each AppTest here runs against its own small DuckDB file (``OPSFUNNEL_NO_SAMPLE=1``), so cached
results of other tests (keyed by the database path) never answer for it.
"""
from __future__ import annotations

import io
import re
import time
from pathlib import Path

import pandas as pd
import pytest
from streamlit.runtime.memory_media_file_storage import MemoryMediaFileStorage
from streamlit.testing.v1 import AppTest

import store
from ui.safe import csv_bytes, md_escape

ROOT = Path(__file__).resolve().parent.parent

LINK = "[click](javascript:alert(1))"
BOLD = "**bold**"
SCRIPT = "<script>alert(1)</script>"
FORMULA_PAGE = '=HYPERLINK("http://x.example","x")'
QUOTE = "x' or '1'='1"


def _events() -> pd.DataFrame:
    """Four users over two days; channel, event and page names are hostile text."""
    rows = [
        ("u1", "page_view", "2026-03-02 09:00:00", LINK, FORMULA_PAGE),
        ("u1", SCRIPT, "2026-03-02 09:05:00", LINK, "/home"),
        ("u2", "page_view", "2026-03-02 10:00:00", BOLD, FORMULA_PAGE),
        ("u3", "page_view", "2026-03-03 11:00:00", "@evil", "-5"),
        ("u4", "page_view", "2026-03-03 12:00:00", "wechat", "/home"),
        ("u5", "page_view", "2026-03-03 13:00:00", QUOTE, "/home"),
    ]
    return pd.DataFrame(rows, columns=["user_id", "event_name", "event_time", "channel", "page"])


@pytest.fixture
def hostile_db(tmp_path):
    path = tmp_path / "hostile.duckdb"
    con = store.connect(str(path))
    store.load_events(con, _events())
    con.close()
    return path


@pytest.fixture
def make_app(monkeypatch, tmp_path):
    """An AppTest factory on a given database with the app's defaults (loopback, no password)."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("OPSFUNNEL_NO_SAMPLE", "1")
    monkeypatch.setenv("OPSFUNNEL_LOG", str(tmp_path / "app.log"))
    monkeypatch.delenv("OPSFUNNEL_PASSWORD", raising=False)
    monkeypatch.delenv("OPSFUNNEL_SERVE_ADDRESS", raising=False)
    monkeypatch.delenv("OPSFUNNEL_QUERY_TIMEOUT", raising=False)

    def make(db: Path, lang: str = "en") -> AppTest:
        monkeypatch.setenv("OPSFUNNEL_DB", str(db))
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=120)
        at.session_state["lang"] = lang
        return at
    return make


def _texts(at) -> list[str]:
    """Every Markdown-rendered body on the page (where a link or emphasis from data would come alive)."""
    out = []
    for kind in ("markdown", "caption", "info", "warning", "error", "success", "title", "header", "subheader"):
        out += [str(e.value) for e in getattr(at, kind)]
    return out


# ---------------------------------------------------------------- CSV formulas
def test_csv_bytes_neutralises_text_formulas_only():
    df = pd.DataFrame({
        "name": ["=1+1", "+SUM(A1)", "-5", "@cmd", "\tx", "\ry", "ok", None, "a=b"],
        "value": [-5.0, 1.0, 2.0, 3.0, 4.0, 5.0, 6.0, float("nan"), -0.5],
    })
    text = csv_bytes(df).decode("utf-8-sig")
    # text cells starting with = + - @ tab CR get a leading '; numbers (even negative) stay numbers;
    # missing stays empty; '=' inside a cell is harmless and kept.
    assert text.split("\r\n") == [
        "name,value",
        "'=1+1,-5.0",
        "'+SUM(A1),1.0",
        "'-5,2.0",
        "'@cmd,3.0",
        "'\tx,4.0",
        '"\'\ry",5.0',  # a cell holding a carriage return is quoted
        "ok,6.0",
        ",",
        "a=b,-0.5",
        "",
    ]
    assert csv_bytes(df).startswith(b"\xef\xbb\xbf")  # the BOM Excel needs for Chinese text
    # column names from data are neutralised too; a frame is never changed in place
    assert csv_bytes(pd.DataFrame({"=x": [1]})).decode("utf-8-sig") == "'=x\r\n1\r\n"
    assert list(df["name"])[0] == "=1+1"


def test_csv_bytes_handles_pandas_string_and_category_free_frames():
    df = pd.DataFrame({"s": pd.array(["=a", "b", pd.NA], dtype="string"), "n": pd.array([-1, 2, None], dtype="Int64")})
    assert csv_bytes(df).decode("utf-8-sig") == "s,n\r\n'=a,-1\r\nb,2\r\n,\r\n"


# ---------------------------------------------------------------- Markdown escaping
@pytest.mark.parametrize("raw, escaped", [
    (SCRIPT, r"\<script\>alert(1)\</script\>"),
    (LINK, r"\[click\](javascript\:alert(1))"),
    (BOLD, r"\*\*bold\*\*"),
    ("_em_ snake_case", r"\_em\_ snake_case"),
    ("# title", r"\# title"),
    ("1. first", r"1\. first"),
    ("see https://x.example :smile: :red[x]", r"see https\://x.example \:smile: \:red\[x\]"),
    ("$x$ `code` ~~s~~ a|b &amp;", r"\$x\$ \`code\` \~\~s\~\~ a\|b \&amp;"),
    ("line\nbreak", "line break"),
    ("user_id, event_time", "user_id, event_time"),
    (None, ""),
])
def test_md_escape(raw, escaped):
    assert md_escape(raw) == escaped


def test_plotly_markup_from_data_is_drawn_literally():
    import numpy as np
    import plotly.graph_objects as go

    from ui.safe import safe_figure

    numbers = np.array([[1, 2], [3, 4]])
    fig = go.Figure([go.Bar(x=["<b>x</b>", "R&D"], y=[1, 2], name='<a href="https://x.example">n</a>',
                            customdata=np.array([["<i>c</i>", 1], ["d", 2]], dtype=object)),
                     go.Scatter(x=[1, 2], y=[3, 4], text=["plain", "a<b"], customdata=numbers)])
    safe_figure(fig)
    assert fig.data[0].x == ("&lt;b&gt;x&lt;/b&gt;", "R&D")  # '&' is only touched where markup was
    assert fig.data[0].name == '&lt;a href="https://x.example"&gt;n&lt;/a&gt;'
    assert [list(r) for r in fig.data[0].customdata] == [["&lt;i&gt;c&lt;/i&gt;", 1], ["d", 2]]
    assert fig.data[1].text == ("plain", "a&lt;b")
    assert fig.data[1].x == (1, 2) and fig.data[1].customdata.tolist() == [[1, 2], [3, 4]]
    # a label a page composed with <br> stays as composed (the page escaped its data part with plot_escape)
    composed = go.Figure([go.Bar(x=["&lt;b&gt;ch<br>¥5.0"], y=[1])])
    assert safe_figure(composed).data[0].x == ("&lt;b&gt;ch<br>¥5.0",)


def test_user_names_are_shown_as_text(hostile_db, make_app):
    at = make_app(hostile_db)
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    # channel keys are trimmed and lower-cased by the store; these are already lower case
    assert set(at.multiselect(key="flt_channels").options) == {LINK, BOLD, "@evil", "wechat", QUOTE}
    at.multiselect(key="flt_channels").set_value([LINK, BOLD]).run()
    assert not at.exception, [e.value for e in at.exception]
    header = next(c.value for c in at.caption if "Filters:" in c.value)
    assert f"channels: {md_escape(LINK)}, {md_escape(BOLD)}" in header, header
    for page in ("app_pages/overview.py", "app_pages/traffic.py", "app_pages/acquisition.py",
                 "app_pages/retention.py", "app_pages/funnel.py", "app_pages/data.py"):
        at.switch_page(page).run()
        assert not at.exception, (page, [e.value for e in at.exception])
        for text in _texts(at):
            # the raw strings never reach Markdown unescaped
            assert LINK not in text and BOLD not in text and SCRIPT not in text, (page, text)
    # the retention page offers the event as a plain option (widget options are not Markdown)
    at.switch_page("app_pages/retention.py").run()
    assert SCRIPT in at.selectbox(key="retention_start_en").options


def test_downloads_neutralise_formulas_end_to_end(hostile_db, make_app, monkeypatch):
    saved: list[tuple[bytes, str | None]] = []
    original = MemoryMediaFileStorage.load_and_get_id

    def spy(self, path_or_data, mimetype, kind, filename=None):
        if mimetype == "text/csv":
            saved.append((path_or_data, filename))
        return original(self, path_or_data, mimetype, kind, filename)

    monkeypatch.setattr(MemoryMediaFileStorage, "load_and_get_id", spy)
    at = make_app(hostile_db)
    at.run()
    at.switch_page("app_pages/traffic.py").run()
    assert not at.exception, [e.value for e in at.exception]
    top = [data for data, name in saved if name == "top_pages.csv"]
    assert top, [name for _, name in saved]
    table = pd.read_csv(io.BytesIO(top[-1]), encoding="utf-8-sig", dtype=str)
    # page views by page: the formula page twice (u1, u2), /home twice (u4, u5), '-5' once (u3)
    assert sorted(table[["page", "pv"]].values.tolist()) == sorted([["'" + FORMULA_PAGE, "2"], ["/home", "2"],
                                                                   ["'-5", "1"]])
    for data, name in saved:  # no CSV the app offers has a cell a spreadsheet would run
        frame = pd.read_csv(io.BytesIO(data), encoding="utf-8-sig", dtype=str, keep_default_na=False)
        for row in frame.itertuples(index=False):
            assert not any(str(v).startswith(("=", "+", "@", "\t", "\r")) for v in row), (name, row)


def test_filter_values_are_bound_not_spliced(hostile_db, make_app):
    """A channel whose name is an SQL fragment filters to exactly its own user (u5), and the data stays."""
    at = make_app(hostile_db).run()
    assert {m.label: m.value for m in at.metric}["New users"] == "5"
    at.multiselect(key="flt_channels").set_value([QUOTE]).run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert {m.label: m.value for m in at.metric}["New users"] == "1"
    at.multiselect(key="flt_channels").set_value([QUOTE, "wechat"]).run()
    assert {m.label: m.value for m in at.metric}["New users"] == "2"


# ---------------------------------------------------------------- password gate
def test_gate_helpers(monkeypatch):
    from ui import guard

    for address, loop in (("127.0.0.1", True), ("127.8.0.1", True), ("::1", True), ("[::1]", True),
                          ("localhost", True), ("0.0.0.0", False), ("", False), ("192.168.1.5", False),
                          ("::", False), ("example.com", False)):
        assert guard.is_loopback(address) is loop, address
    monkeypatch.setenv("OPSFUNNEL_SERVE_ADDRESS", "0.0.0.0")
    assert guard.serve_address() == "0.0.0.0"
    assert guard.password_ok("s3cret", "s3cret") and not guard.password_ok("s3cre", "s3cret")
    assert not guard.password_ok("", "s3cret")


def test_network_address_without_password_is_refused(hostile_db, make_app, monkeypatch):
    monkeypatch.setenv("OPSFUNNEL_SERVE_ADDRESS", "0.0.0.0")
    at = make_app(hostile_db).run()
    assert not at.exception
    assert len(at.error) == 1 and "no password is configured" in at.error[0].value
    assert "OPSFUNNEL\\_PASSWORD" in at.error[0].value
    # nothing of the app: no filters, no page, no data
    assert not at.multiselect and not at.metric and not at.dataframe and not at.text_input
    assert [t.value for t in at.title] == ["opsfunnel"]


def test_password_form_before_any_page(hostile_db, make_app, monkeypatch):
    monkeypatch.setenv("OPSFUNNEL_SERVE_ADDRESS", "0.0.0.0")
    monkeypatch.setenv("OPSFUNNEL_PASSWORD", "correct horse")
    at = make_app(hostile_db).run()
    assert not at.exception
    assert at.text_input(key="auth_password").proto.type == at.text_input(key="auth_password").proto.PASSWORD
    assert not at.multiselect and not at.metric and not at.error
    at.text_input(key="auth_password").input("wrong")
    at.button[0].click().run()
    assert [e.value for e in at.error] == ["Wrong password."]
    assert not at.multiselect and not at.metric
    at.text_input(key="auth_password").input("correct horse")
    at.button[0].click().run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.multiselect(key="flt_channels")  # the app: sidebar filters and the Overview
    at.switch_page("app_pages/data.py").run()  # the session stays signed in
    assert not at.exception and "auth_password" not in [t.key for t in at.text_input]
    assert [t.value for t in at.title][0] == "Data"


def test_password_applies_on_loopback_too(hostile_db, make_app, monkeypatch):
    monkeypatch.setenv("OPSFUNNEL_SERVE_ADDRESS", "127.0.0.1")
    monkeypatch.setenv("OPSFUNNEL_PASSWORD", "pw")
    at = make_app(hostile_db).run()
    assert [t.key for t in at.text_input] == ["auth_password"] and not at.multiselect


# ---------------------------------------------------------------- page boundary
def test_unexpected_error_is_logged_with_a_reference(hostile_db, make_app, monkeypatch, tmp_path):
    import metrics.traffic as tm

    def broken(con, params):
        raise RuntimeError("top pages exploded on purpose")

    monkeypatch.setattr(tm, "top_pages", broken)
    at = make_app(hostile_db).run()
    at.switch_page("app_pages/traffic.py").run()
    assert not at.exception, [e.value for e in at.exception]
    errors = [e.value for e in at.error]
    assert len(errors) == 1, errors
    ref = re.search(r"Reference: ([0-9a-f]{8})\b", errors[0])
    assert ref, errors
    assert "exploded" not in errors[0] and "Traceback" not in errors[0]
    log = (tmp_path / "app.log").read_text(encoding="utf-8")
    entry = log[log.index(f"ref {ref.group(1)}"):]
    assert "Traceback (most recent call last)" in entry and "RuntimeError: top pages exploded on purpose" in entry
    # the rest of the app keeps working: the sidebar and other pages
    assert at.multiselect(key="flt_channels")
    at.switch_page("app_pages/overview.py").run()
    assert not at.exception and not at.error


def test_user_input_error_at_the_boundary_keeps_its_message(hostile_db, make_app, monkeypatch):
    import metrics.traffic as tm
    from store.errors import UserInputError

    def refuse(con, params):
        raise UserInputError("Pick at most 50 [pages](x).")

    monkeypatch.setattr(tm, "top_pages", refuse)
    at = make_app(hostile_db).run()
    at.switch_page("app_pages/traffic.py").run()
    assert [e.value for e in at.error] == [md_escape("Pick at most 50 [pages](x).")]


# ---------------------------------------------------------------- query limits
def _slow(con, *args):
    """A cross join of 10^6 × 10^6 rows: minutes of work, so only an interrupt ends it early."""
    return con.execute("SELECT count(*) FROM range(1000000) a, range(1000000) b WHERE a.range + b.range < 0").df()


def test_slow_query_is_interrupted_and_the_connection_lives_on(tmp_path, monkeypatch):
    import time

    from ui import context

    monkeypatch.setenv("OPSFUNNEL_DB", str(tmp_path / "slow.duckdb"))
    monkeypatch.setenv("OPSFUNNEL_NO_SAMPLE", "1")
    monkeypatch.setenv("OPSFUNNEL_QUERY_TIMEOUT", "0.5")
    started = time.monotonic()
    with pytest.raises(context.QueryLimitError) as stopped:
        context.run(_slow)
    assert time.monotonic() - started < 10
    assert str(stopped.value).startswith("This query took longer than 0.5 s and was stopped; narrow the date range")
    assert context.db().execute("SELECT 42").fetchone() == (42,)
    assert context.run(lambda con: con.execute("SELECT 7").fetchone()[0]) == 7


def test_query_over_the_memory_limit_is_stopped(tmp_path, monkeypatch):
    from ui import context

    monkeypatch.setenv("OPSFUNNEL_DB", str(tmp_path / "oom.duckdb"))
    monkeypatch.setenv("OPSFUNNEL_NO_SAMPLE", "1")
    monkeypatch.setenv("OPSFUNNEL_MEMORY_LIMIT", "64MB")
    assert context.db().execute("SELECT current_setting('memory_limit')").fetchone()[0] in ("64.0 MiB", "61.0 MiB")

    def hungry(con):  # one list of 2·10^7 integers (160 MB) cannot spill to disk
        return con.execute("SELECT list(range) FROM range(20000000)").fetchall()

    with pytest.raises(context.QueryLimitError, match="needed more than the 64MB of memory allowed"):
        context.run(hungry)
    assert context.db().execute("SELECT 1").fetchone() == (1,)


def test_memory_limit_setting_is_validated(monkeypatch):
    from ui import context

    monkeypatch.setenv("OPSFUNNEL_MEMORY_LIMIT", "4GB'; DROP TABLE events; --")
    with pytest.raises(ValueError, match="must look like 4GB"):
        context.memory_limit()
    monkeypatch.setenv("OPSFUNNEL_MEMORY_LIMIT", "2 gb")
    assert context.memory_limit() == "2GB"
    monkeypatch.delenv("OPSFUNNEL_MEMORY_LIMIT")
    assert re.fullmatch(r"\d+MB", context.memory_limit())


def test_slow_page_shows_the_message_and_the_app_stays_responsive(hostile_db, make_app, monkeypatch):
    import metrics.traffic as tm

    monkeypatch.setattr(tm, "top_pages", _slow)
    monkeypatch.setenv("OPSFUNNEL_QUERY_TIMEOUT", "0.5")
    at = make_app(hostile_db).run()
    at.switch_page("app_pages/traffic.py").run()
    assert not at.exception, [e.value for e in at.exception]
    assert [e.value for e in at.error] == [
        "This query took longer than 0.5 s and was stopped; narrow the date range or the filters and try again."]
    assert at.metric  # what came before the slow table is still on the page
    at.switch_page("app_pages/overview.py").run()
    assert not at.exception and not at.error


# ---------------------------------------------------------------- uploads over the limit
def test_upload_over_the_limit_is_refused(tmp_path, make_app, monkeypatch):
    import ui.uploads

    monkeypatch.setattr(ui.uploads, "max_upload_mb", lambda: 0.001)  # 1,048 bytes
    at = make_app(tmp_path / "empty.duckdb").run()
    at.switch_page("app_pages/data.py").run()
    big = b"user_id,event_name,event_time\n" + b"u1,signup,2026-03-01 09:00:00\n" * 60  # 1,830 bytes
    at.file_uploader[0].upload("events_big.csv", big, "text/csv").run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "This file is 0.0 MB, over the 0 MB upload limit, so it was refused. Split it, or raise server.maxUploadSize."]
    assert not [b for b in at.button if b.key == "data_load"]


# ---------------------------------------------------------------- choices across a language switch
def test_choices_survive_a_language_switch(hostile_db, make_app):
    at = make_app(hostile_db).run()
    at.selectbox(key="flt_timezone_en").set_value("Asia/Shanghai").run()
    assert at.session_state["filters"].timezone == "Asia/Shanghai"
    at.switch_page("app_pages/traffic.py").run()
    at.radio(key="traffic_period_en").set_value("month").run()
    assert at.radio(key="traffic_period_en").value == "month"

    at.radio(key="lang").set_value("zh").run()
    assert not at.exception, [e.value for e in at.exception]
    assert at.radio(key="traffic_period_zh").value == "month"
    assert at.radio(key="traffic_period_zh").options == ["日", "周", "月"]
    assert at.selectbox(key="flt_timezone_zh").value == "Asia/Shanghai"
    assert at.session_state["filters"].timezone == "Asia/Shanghai"
    at.radio(key="traffic_period_zh").set_value("day").run()

    at.radio(key="lang").set_value("en").run()
    assert at.radio(key="traffic_period_en").value == "day"
    assert at.selectbox(key="flt_timezone_en").value == "Asia/Shanghai"
    # the reset button puts the time zone back, in whichever language
    at.button(key="flt_reset").click().run()
    assert at.selectbox(key="flt_timezone_en").value == "UTC"
    assert at.session_state["filters"].timezone == "UTC"


def test_staged_uploads_leave_nothing_on_disk(tmp_path, monkeypatch):
    """A file the user takes back out of the uploader, or one that was loaded, is deleted from the server's
    temporary folder, and the folder goes when it is empty."""
    import tempfile
    from types import SimpleNamespace

    from ui import uploads

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    monkeypatch.setattr(uploads, "st", SimpleNamespace(session_state={}))

    def upload(fid, name):
        return SimpleNamespace(file_id=fid, name=name, getvalue=lambda: b"user_id,event_name,event_time\n")

    a, b = upload("a", "events a.csv"), upload("b", "spend.csv")
    pa, pb = uploads.temp_path(a), uploads.temp_path(b)
    folder = Path(pa).parent
    assert folder.parent == tmp_path and sorted(p.name for p in folder.iterdir()) == ["0_events_a.csv", "1_spend.csv"]
    assert uploads.temp_path(a) == pa                    # written once per upload
    uploads.keep_only(["b"])                              # the user removed a from the uploader
    assert not Path(pa).exists() and Path(pb).exists()
    c = upload("c", "spend.csv")                          # another file of b's name keeps b's copy intact
    pc = uploads.temp_path(c)
    assert pc != pb and Path(pc).exists() and Path(pb).exists()
    uploads.forget(["c"])
    uploads.forget(["b"])                                 # b was loaded
    assert not Path(pb).exists() and not folder.exists()
    assert list(tmp_path.iterdir()) == []
    uploads.keep_only([])                                 # nothing staged: nothing to do


def test_upload_folders_of_ended_sessions_are_swept(tmp_path, monkeypatch):
    """A session that ends without loading or removing its files (the tab closed) leaves its folder behind: the
    next session to stage a file deletes the folders untouched for longer than the limit, and only those."""
    import os
    import tempfile
    from types import SimpleNamespace

    from ui import uploads

    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    now = time.time()

    def folder(name, age_s, files=()):
        path = tmp_path / f"{uploads.PREFIX}{name}"
        path.mkdir()
        for fname, file_age in files:
            (path / fname).write_text("user_id,event_name,event_time\n")
            os.utime(path / fname, (now - file_age,) * 2)
        os.utime(path, (now - age_s,) * 2)
        return path

    limit = uploads.ABANDONED_AFTER_S
    old = folder("old", limit + 60, [("0_events.csv", limit + 120)])
    empty_old = folder("empty", limit + 1)
    in_use = folder("live", limit + 60, [("0_a.csv", limit + 60), ("1_b.csv", 30)])   # one file used lately
    fresh = folder("fresh", 10, [("0_a.csv", 10)])
    other = tmp_path / "someone-else"                    # not an upload folder
    other.mkdir()
    os.utime(other, (now - 10 * limit,) * 2)
    assert uploads.sweep_abandoned(now) == 2
    assert not old.exists() and not empty_old.exists()
    assert in_use.exists() and fresh.exists() and other.exists()
    assert uploads.sweep_abandoned(now) == 0

    # staging a file sweeps (once per session), and using a staged file again marks it as in use
    gone = folder("gone", 2 * limit, [("0_x.csv", 2 * limit)])
    monkeypatch.setattr(uploads, "st", SimpleNamespace(session_state={}))
    up = SimpleNamespace(file_id="a", name="a.csv", getvalue=lambda: b"user_id,event_name,event_time\n")
    path = uploads.temp_path(up)
    assert not gone.exists() and Path(path).exists()
    os.utime(path, (now - 2 * limit,) * 2)
    assert uploads.temp_path(up) == path and time.time() - os.stat(path).st_mtime < 60
