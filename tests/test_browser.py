"""The dashboard in a real browser, used as a growth lead would, from an empty database.

One Streamlit server (fresh temporary DuckDB, ``OPSFUNNEL_NO_SAMPLE=1``) and one Chromium page
serve the whole module; the tests run in file order and each starts where the previous one left
the app (empty → an upload → the sample data → filters → a download → Chinese). Screenshots of
every page (1440×900) go to ``test-artefacts/screenshots/<page>.png``.

The CSV download is checked through the browser's own download (``page.expect_download``); if a
browser build refused downloads, the test fetches the button's ``/media/...`` URL with the page's
request context instead and says so in its output.
"""
from __future__ import annotations

import csv
import io
import os
import re

import pytest

from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, screenshot, start_server, wait_idle

expect = pytest.importorskip("playwright.sync_api").expect
# A run's last deltas can be painted a moment after Streamlit reports it idle, more so on a loaded machine:
# visibility checks retry for up to 30 s instead of looking once.
expect.set_options(timeout=30_000)

pytestmark = pytest.mark.skipif(
    not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (install Debian's chromium: apt-get install -y chromium)")

# (file stem for the screenshot, English title in the navigation)
PAGES = [("overview", "Overview"), ("traffic", "Traffic"), ("acquisition", "Acquisition"),
         ("campaigns", "Campaigns & ROI"), ("saturation", "Channel saturation"), ("funnel", "Funnel"),
         ("retention", "Retention"), ("revenue_referral", "Revenue & referral"),
         ("campaign_vs_retention", "Campaign vs retention"), ("value_cost", "Value vs cost"), ("data", "Data")]

# 'when' matches no alias in store/mapping.py, so event_time must be mapped by hand.
EXPORT = ("user,action,when,source,amount\n"
          "u1,signup,2026-03-01 09:00:00,WeChat,\n"
          "u1,purchase,2026-03-02 10:30:00,WeChat,12.5\n"
          "u2,signup,2026-03-01 11:00:00,douyin,\n"
          "u2,purchase,bad time,douyin,3\n")


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    folder = tmp_path_factory.mktemp("browser")
    srv = start_server(folder / "fresh.duckdb", folder / "streamlit.log", no_sample=True)
    yield srv
    srv.stop()


@pytest.fixture(scope="module")
def page(server):
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    browser = pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    pg = context.new_page()
    pg.set_default_timeout(60_000)
    pg.goto(server.url)
    pg.wait_for_selector("h1")
    wait_idle(pg)
    yield pg
    context.close()
    browser.close()
    pw.stop()


def go(page, title: str) -> None:
    page.get_by_role("link", name=title, exact=True).click()
    page.wait_for_selector("h1")
    wait_idle(page)


def no_exception(page) -> None:
    errors = page.locator("[data-testid=stException]")
    assert errors.count() == 0, errors.first.inner_text()


def metric_value(page, label: str):
    card = page.locator("[data-testid=stMetric]").filter(has_text=label).first
    return card.locator("[data-testid=stMetricValue]")


def metric(page, label: str) -> str:
    return metric_value(page, label).inner_text()


def test_1_empty_database_then_an_upload_with_a_fixed_mapping(page, tmp_path):
    expect(page.get_by_text("The database is empty")).to_be_visible()
    expect(page.get_by_role("button", name="Load sample data")).to_be_visible()
    screenshot(page, "overview_empty")

    go(page, "Data")
    export = tmp_path / "events_export.csv"
    export.write_text(EXPORT)
    page.locator("input[type=file]").set_input_files(str(export))
    missing = page.get_by_text("no column for event_time")
    missing.wait_for()
    # The mapping editor is the first grid on the page; row 4 is event_time, the last column its header.
    wait_idle(page)
    grid = page.locator("[data-testid=stDataFrame]").first
    grid.scroll_into_view_if_needed()
    for attempt in range(3):  # the grid is a canvas: edit by position, and retry if it was still settling
        page.wait_for_timeout(500)
        box = grid.bounding_box()
        page.mouse.dblclick(box["x"] + box["width"] * 0.85, box["y"] + 35 + 35 * 3 + 17)
        page.wait_for_timeout(300)
        page.keyboard.type("when")
        page.keyboard.press("Enter")
        try:
            missing.wait_for(state="detached", timeout=10_000)
            break
        except Exception:
            page.keyboard.press("Escape")
    else:
        pytest.fail("the mapping editor did not take the edit")
    wait_idle(page)
    expect(page.get_by_text("Parsed preview (first 20 rows)")).to_be_visible()
    screenshot(page, "data_upload_mapping")
    page.get_by_role("button", name="Load 1 file(s)").click()
    report = page.get_by_text(re.compile(r"events_export\.csv \(Events\): 4 rows read, 3 loaded"))
    report.wait_for()
    wait_idle(page)
    assert "1 rejected" in report.inner_text()
    expect(page.get_by_text("Rejected rows of events_export.csv")).to_be_visible()
    expect(page.get_by_text("3 events · 2 users loaded")).to_be_visible()
    report.scroll_into_view_if_needed()
    screenshot(page, "data_load_report")
    no_exception(page)


def test_2_sample_data_and_every_page(page):
    go(page, "Data")
    page.get_by_text("I understand this deletes").click()
    page.get_by_role("button", name="Reset to sample data").click()
    page.get_by_text(re.compile(r"\d{3},\d{3} events · \d{2},\d{3} users loaded")).wait_for(timeout=120_000)
    wait_idle(page)
    for stem, title in PAGES:
        go(page, title)
        page.wait_for_timeout(800)  # let plotly finish drawing before the picture
        no_exception(page)
        assert page.locator("h1").first.inner_text().strip(), stem
        screenshot(page, stem)


def test_3_a_global_filter_changes_a_number(page):
    go(page, "Overview")
    everyone = metric(page, "New users")
    channels = page.locator("[data-testid=stSidebar] [data-testid=stMultiSelect]").filter(has_text="Channels")
    channels.locator("input").click()
    page.keyboard.type("douyin")
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    wait_idle(page)
    expect(page.get_by_text("channels: douyin").first).to_be_visible()
    expect(metric_value(page, "New users")).not_to_have_text(everyone)  # waits for the filtered run to paint
    douyin = metric(page, "New users")
    assert int(douyin.replace(",", "")) < int(everyone.replace(",", "")), (douyin, everyone)
    page.get_by_role("button", name="Reset filters").click()
    wait_idle(page)
    expect(metric_value(page, "New users")).to_have_text(everyone)


def test_4_download_a_chart_table(page):
    go(page, "Overview")
    shown_users = metric(page, "New users")
    button = page.get_by_role("button", name="Download CSV").first
    try:
        with page.expect_download(timeout=20_000) as info:
            button.click()
        text = open(info.value.path(), encoding="utf-8-sig").read()
    except Exception as exc:  # a browser that refuses downloads: fetch what the button links to
        href = page.locator("[data-testid=stDownloadButton] a, a[download]").first.get_attribute("href")
        print(f"browser download failed ({exc!r}); fetching {href} with the page's request context")
        text = page.request.get(href).body().decode("utf-8-sig")
    rows = list(csv.DictReader(io.StringIO(text)))
    assert [r["stage"] for r in rows][:2] == ["awareness", "acquisition"] or \
        [r["stage"].lower() for r in rows][:2] == ["awareness", "acquisition"], rows[:2]
    acquisition = next(r for r in rows if r["stage"].lower() == "acquisition")
    assert int(float(acquisition["users"])) == int(shown_users.replace(",", ""))
    assert {r["owner"] for r in rows} == {"marketing", "operations"}


def test_5_chinese_labels(page):
    page.get_by_text("简体中文").click()
    wait_idle(page)
    expect(page.locator("h1").first).to_have_text("总览")
    expect(page.locator("[data-testid=stMain] [data-testid=stCaptionContainer]").first).to_have_text(
        re.compile(r"^\s*筛选："))
    header = page.locator("[data-testid=stMain] [data-testid=stCaptionContainer]").first.inner_text()
    assert header.startswith("筛选：") and "douyin" not in header, header  # the reset filters stay reset
    sidebar = page.locator("[data-testid=stSidebar]")
    expect(sidebar.get_by_text("渠道", exact=True)).to_be_visible()
    expect(sidebar.get_by_text("报告时区", exact=True)).to_be_visible()
    expect(page.get_by_text("市场", exact=True).first).to_be_visible()
    expect(page.locator("[data-testid=stMetric]").filter(has_text="新用户")).to_have_count(1)
    no_exception(page)
    page.locator("h1").first.scroll_into_view_if_needed()
    screenshot(page, "overview_zh")
    go(page, "数据")
    expect(page.get_by_text("上传文件", exact=True)).to_be_visible()
    screenshot(page, "data_zh")


def test_6_password_gate_and_names_shown_as_text(page, tmp_path):
    """A second server with a password: the sign-in form comes first, a wrong password is refused, the right one
    opens the app; a channel named like a Markdown link and an event named like a script stay text. (A new
    context of the module's Chromium: Playwright's sync API runs one instance per thread.)"""
    import pandas as pd

    import store

    db = tmp_path / "gated.duckdb"
    con = store.connect(str(db))
    store.load_events(con, pd.DataFrame({
        "user_id": ["u1", "u1", "u2"], "event_name": ["signup", "<script>alert(1)</script>", "signup"],
        "event_time": ["2026-03-02 09:00:00", "2026-03-02 09:05:00", "2026-03-02 10:00:00"],
        "channel": ["[click](javascript:alert(1))", "[click](javascript:alert(1))", "**bold**"]}))
    con.close()
    srv = start_server(db, tmp_path / "streamlit.log", no_sample=True,
                       env_extra={"OPSFUNNEL_PASSWORD": "open sesame", "OPSFUNNEL_LOG": str(tmp_path / "app.log")})
    context = page.context.browser.new_context(viewport={"width": 1440, "height": 900})
    try:
        pg = context.new_page()
        pg.set_default_timeout(60_000)
        pg.goto(srv.url)
        box = pg.get_by_label("Password", exact=True)
        box.wait_for()
        wait_idle(pg)
        assert pg.locator("[data-testid=stSidebarNav]").count() == 0  # nothing of the app yet
        assert pg.locator("[data-testid=stMetric]").count() == 0
        screenshot(pg, "signin")
        box.fill("not it")
        pg.get_by_role("button", name="Sign in").click()
        pg.get_by_text("Wrong password.").wait_for()
        wait_idle(pg)
        assert pg.locator("[data-testid=stMetric]").count() == 0
        pg.get_by_label("Password", exact=True).fill("open sesame")
        pg.get_by_role("button", name="Sign in").click()
        pg.locator("h1").filter(has_text="Overview").wait_for()
        wait_idle(pg)
        # choose both hostile channels in the sidebar filter; the page header lists them literally
        sidebar = pg.locator("[data-testid=stSidebar]")
        header = pg.locator("[data-testid=stMain] [data-testid=stCaptionContainer]").first
        for name in ("[click](javascript:alert(1))", "**bold**"):
            box = sidebar.locator("[data-testid=stMultiSelect] input").first
            box.click()
            box.fill(name)  # typing filters the options to this one; Enter picks it
            pg.get_by_role("option", name=name, exact=True).wait_for()
            pg.keyboard.press("Enter")
            pg.keyboard.press("Escape")
            wait_idle(pg)
            pg.wait_for_function("([el, t]) => el.innerText.includes(t)", arg=[header.element_handle(), name],
                                 timeout=30_000)
        assert "channels: [click](javascript:alert(1)), **bold**" in header.inner_text(), header.inner_text()
        assert pg.locator("a[href^='javascript']").count() == 0
        assert header.locator("strong, a").count() == 0
        go(pg, "Retention")  # the script-like event is an option of the start event box, as text
        assert pg.locator("script", has_text="alert(1)").count() == 0
        no_exception(pg)
        screenshot(pg, "hostile_names")
    finally:
        context.close()
        srv.stop()
