"""A bounded load test on loopback: several browser sessions at once, two of them uploading a file at
the same moment while the others browse every page.

One real server (``streamlit run app.py`` on 127.0.0.1, every eighth user of the sample data plus
its spend and survey pre-loaded into a fresh DuckDB file) and one Chromium with ``BROWSERS`` + ``UPLOADERS``
contexts, driven by Playwright's async API so the sessions really overlap. Each browsing session clicks
through the pages in the sidebar (each in its own order). Once every browsing session has finished its first
visit, two other sessions, already on the Data page with a file chosen, press Load in the same instant (an
``asyncio.Barrier``) and then browse ``AFTER_LOAD_VISITS`` pages too. The browsing sessions go on until they
have made ``VISITS`` visits and at least one visit that began after both loads finished. The run is driven by
these counts, never by the clock, so a slow machine makes it longer, not different. Asserted:

* no page visited shows a Streamlit exception, an error box, "database is locked" or "Traceback",
  and the app's error log stays empty;
* both uploads load, each exactly once: after the server stops, the database holds each file's
  rows once (no lost and no doubled load);
* every visit finished (a page that never became idle fails the test);
* the loads really overlapped the browsing: some page visit was under way while the files were loading.

Page latencies (click to the run finished) are printed as p50 / p95 per page and overall, and
written to ``test-artefacts/concurrency.json``. Select with ``pytest tests/test_concurrency.py``
(or ``-k concurrency``); it is also marked ``browser``.
"""
from __future__ import annotations

import asyncio
import json
import os
import statistics
import time

import pytest

import store
from tests.browser_support import CHROMIUM, CHROMIUM_ARGS, ROOT, start_server

pytestmark = [
    pytest.mark.browser,
    pytest.mark.skipif(not os.path.exists(CHROMIUM), reason=f"{CHROMIUM} is missing (apt-get install -y chromium)"),
]

# Sessions browsing pages (2 cores: more sessions only queue behind each other) and the page visits each
# makes at least; OPSFUNNEL_LOAD_BROWSERS / OPSFUNNEL_LOAD_VISITS raise them on a bigger machine.
BROWSERS = int(os.environ.get("OPSFUNNEL_LOAD_BROWSERS", "4"))
VISITS = int(os.environ.get("OPSFUNNEL_LOAD_VISITS", "5"))
UPLOADERS = 2         # sessions uploading at the same moment
AFTER_LOAD_VISITS = 2  # pages each uploader visits after its load
VISIT_TIMEOUT = 120_000  # ms for one visit: a page never finishing is a failure, a slow one is only reported
PAGES = ["Overview", "Traffic", "Acquisition", "Campaigns & ROI", "Channel saturation", "Funnel", "Retention",
         "Revenue & referral", "Campaign vs retention", "Value vs cost", "Data"]
ROWS_PER_UPLOAD = 120

IDLE = ("() => { const a = document.querySelector('[data-testid=stApp]');"
        " return a && a.getAttribute('data-test-script-state') === 'notRunning'"
        " && !document.querySelector('[data-testid=stStatusWidget] [data-testid=stStatusWidgetRunningIcon]'); }")
PROBLEMS = """() => {
  const text = document.body.innerText;
  return {
    exceptions: [...document.querySelectorAll('[data-testid=stException]')].map(e => e.innerText.slice(0, 300)),
    errors: [...document.querySelectorAll('[data-testid=stAlertContentError]')].map(e => e.innerText.slice(0, 300)),
    locked: text.includes('database is locked'),
    traceback: text.includes('Traceback'),
  };
}"""


def _upload_csv(tag: str) -> str:
    """``ROWS_PER_UPLOAD`` events of 40 users ``<tag>_<n>``: signup, page_view, purchase, one minute apart."""
    lines = ["user_id,event_name,event_time,channel,revenue"]
    for n in range(ROWS_PER_UPLOAD // 3):
        lines += [f"{tag}_{n},signup,2026-03-20 09:{n % 60:02d}:00,{tag}_channel,",
                  f"{tag}_{n},page_view,2026-03-20 10:{n % 60:02d}:00,{tag}_channel,",
                  f"{tag}_{n},purchase,2026-03-20 11:{n % 60:02d}:00,{tag}_channel,9.5"]
    return "\n".join(lines) + "\n"


async def _idle(page) -> None:
    await page.wait_for_function(IDLE, timeout=VISIT_TIMEOUT)
    await page.wait_for_timeout(200)
    await page.wait_for_function(IDLE, timeout=VISIT_TIMEOUT)


async def _visit(page, title: str) -> float:
    """Click ``title`` in the sidebar and wait for that page's run to finish; returns the seconds taken."""
    started = time.monotonic()
    await page.get_by_role("link", name=title, exact=True).click()
    await page.wait_for_function(
        "t => { const h = document.querySelector('h1'); return h && h.innerText.trim().startsWith(t); }",
        arg=title, timeout=VISIT_TIMEOUT)
    await _idle(page)
    return time.monotonic() - started


async def _check(page, where: str, problems: list) -> None:
    found = await page.evaluate(PROBLEMS)
    if found["exceptions"] or found["errors"] or found["locked"] or found["traceback"]:
        problems.append((where, found))


async def _open(browser, url: str):
    context = await browser.new_context(viewport={"width": 1280, "height": 800})
    page = await context.new_page()
    page.set_default_timeout(VISIT_TIMEOUT)
    await page.goto(url)
    await page.wait_for_selector("h1", timeout=VISIT_TIMEOUT)
    await _idle(page)
    return context, page


class _Run:
    """What the sessions share: visit intervals, and the two moments that order them."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {}
        self.problems: list = []
        self.visits: list[tuple[str, float, float]] = []   # (session, started, finished)
        self.first_visits = 0
        self.browsing = asyncio.Event()     # every browsing session has finished (or failed) its first visit
        self.loads_started: list[float] = []
        self.loads_finished = 0
        self.loaded = asyncio.Event()        # both loads have finished (or failed)
        self.loaded_at: float | None = None

    def first_visit_done(self) -> None:
        self.first_visits += 1
        if self.first_visits == BROWSERS:
            self.browsing.set()

    def load_done(self) -> None:
        self.loads_finished += 1
        if self.loads_finished == UPLOADERS:
            self.loaded_at = time.monotonic()
            self.loaded.set()

    async def visit(self, page, who: str, title: str) -> float:
        started = time.monotonic()
        seconds = await _visit(page, title)
        self.visits.append((who, started, started + seconds))
        self.latencies.setdefault(title, []).append(seconds)
        await _check(page, f"{who} on {title}", self.problems)
        return started


async def _browser_session(browser, url: str, n: int, run: _Run) -> tuple[int, int]:
    """Browse until ``VISITS`` visits are made and one began after both loads; returns (visits, after loads)."""
    order = PAGES[n % len(PAGES):] + PAGES[:n % len(PAGES)]
    visits = after = 0
    counted = False
    try:
        context, page = await _open(browser, url)
        try:
            while visits < VISITS or not run.loaded.is_set() or after == 0:
                started = await run.visit(page, f"session {n}", order[visits % len(order)])
                visits += 1
                after += run.loaded_at is not None and started >= run.loaded_at
                if not counted:
                    counted = True
                    run.first_visit_done()
        finally:
            await context.close()
    finally:
        if not counted:   # a session that failed must not hold the uploaders back
            run.first_visit_done()
    return visits, after


async def _uploader_session(browser, url: str, n: int, path: str, gate: asyncio.Barrier, run: _Run) -> str:
    signalled = False
    try:
        context, page = await _open(browser, url)
        try:
            await _visit(page, "Data")
            await page.locator("input[type=file]").set_input_files(path)
            load = page.get_by_role("button", name="Load 1 file(s)")
            await load.wait_for(timeout=VISIT_TIMEOUT)
            await _idle(page)
            await run.browsing.wait()
            await gate.wait()  # both uploaders reach this point, then both press Load in the same instant
            started = time.monotonic()
            run.loads_started.append(started)
            await load.click()
            report = page.get_by_text("rows read", exact=False).first
            await report.wait_for(timeout=VISIT_TIMEOUT)
            await _idle(page)
            run.latencies.setdefault("Data: load", []).append(time.monotonic() - started)
            signalled = True
            run.load_done()
            await _check(page, f"uploader {n} after loading", run.problems)
            text = await report.inner_text()
            for i in range(AFTER_LOAD_VISITS):  # then browse like everyone else
                await run.visit(page, f"uploader {n}", PAGES[(n + i) % len(PAGES)])
            return text
        finally:
            await context.close()
    finally:
        if not signalled:  # a failed upload must not keep the browsing sessions waiting for it
            run.load_done()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _load_test(url: str, paths: list[str]) -> tuple[_Run, list, list]:
    from playwright.async_api import async_playwright

    run = _Run()
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            gate = asyncio.Barrier(UPLOADERS)
            tasks = [_browser_session(browser, url, n, run) for n in range(BROWSERS)]
            tasks += [_uploader_session(browser, url, n, p, gate, run) for n, p in enumerate(paths)]
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await browser.close()
    failures = [r for r in results if isinstance(r, BaseException)]
    return run, results, failures


def _sample_slice(tmp_path) -> str:
    """Every eighth user of the sample events (about 100,000 events): the same shapes, a tenth of the work."""
    import pandas as pd

    events = pd.read_csv(ROOT / "sample_data" / "events.csv.gz", dtype=str, keep_default_na=False)
    keep = events[events["distinct_id"].str[1:].astype(int) % 8 == 0]
    path = tmp_path / "events_slice.csv.gz"
    keep.to_csv(path, index=False, compression="gzip")
    return str(path)


def test_concurrent_sessions_with_two_simultaneous_uploads(tmp_path, monkeypatch):
    db = tmp_path / "load.duckdb"
    con = store.connect(str(db))
    store.load_events(con, _sample_slice(tmp_path))
    store.load_spend(con, str(ROOT / "sample_data" / "spend.csv"))
    store.load_survey(con, str(ROOT / "sample_data" / "survey.csv"))
    before = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.close()
    paths = []
    for n in range(UPLOADERS):
        p = tmp_path / f"events_upload{n}.csv"
        p.write_text(_upload_csv(f"cc{n}"))
        paths.append(str(p))

    log = tmp_path / "opsfunnel.log"
    monkeypatch.setenv("OPSFUNNEL_LOG", str(log))
    server = start_server(db, tmp_path / "streamlit.log", no_sample=True)
    started = time.monotonic()
    try:
        run, results, failures = asyncio.run(_load_test(server.url, paths))
    finally:
        server.stop()
    elapsed = time.monotonic() - started

    # --- report
    latencies = run.latencies
    visits = sum(len(v) for k, v in latencies.items() if k != "Data: load")
    everything = [s for k, v in latencies.items() if k != "Data: load" for s in v]
    report = {"sessions": BROWSERS + UPLOADERS, "seconds": round(elapsed, 1), "page_visits": visits,
              "overall": {"p50": round(_pct(everything, 0.5), 2) if everything else None,
                          "p95": round(_pct(everything, 0.95), 2) if everything else None},
              "pages": {k: {"visits": len(v), "p50": round(_pct(v, 0.5), 2), "p95": round(_pct(v, 0.95), 2),
                            "mean": round(statistics.fmean(v), 2)} for k, v in sorted(latencies.items())}}
    out = ROOT / "test-artefacts" / "concurrency.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2, ensure_ascii=False))
    print(f"\n{BROWSERS + UPLOADERS} sessions, {visits} page visits in {elapsed:.0f} s; "
          f"latency p50 {report['overall']['p50']} s, p95 {report['overall']['p95']} s")
    for k, v in report["pages"].items():
        print(f"  {k:<24} {v['visits']:>3} visits  p50 {v['p50']:>5.2f} s  p95 {v['p95']:>5.2f} s")

    # --- assertions
    assert not failures, [repr(f) for f in failures]
    assert not run.problems, run.problems[:5]
    # every browsing session browsed before the loads and again after both had finished ...
    assert results[:BROWSERS] == [(v, a) for v, a in results[:BROWSERS] if v >= VISITS and a >= 1], results
    # ... and the loads ran while pages were being computed for other sessions
    assert len(run.loads_started) == UPLOADERS and run.loaded_at is not None
    window = (min(run.loads_started), run.loaded_at)
    during = [v for v in run.visits if v[0].startswith("session") and v[1] < window[1] and v[2] > window[0]]
    assert during, (window, run.visits)
    assert not log.exists() or log.read_text(encoding="utf-8") == "", log.read_text(encoding="utf-8")[-3000:]
    server_log = (tmp_path / "streamlit.log").read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in server_log and "database is locked" not in server_log, server_log[-3000:]
    reports = results[BROWSERS:]
    assert all(f"{ROWS_PER_UPLOAD} rows read, {ROWS_PER_UPLOAD} loaded" in r for r in reports), reports

    con = store.connect(str(db), read_only=True)
    try:
        for n in range(UPLOADERS):
            rows, users, revenue = con.execute(
                "SELECT count(*), count(DISTINCT user_id), sum(revenue) FROM events WHERE left(user_id, 4) = ?",
                [f"cc{n}_"]).fetchone()
            # 40 users × (signup, page_view, purchase of 9.5) = 120 rows, revenue 40 × 9.5 = 380
            assert (rows, users, revenue) == (ROWS_PER_UPLOAD, ROWS_PER_UPLOAD // 3, 380.0), n
        total = con.execute("SELECT count(*) FROM events").fetchone()[0]
        assert total == before + UPLOADERS * ROWS_PER_UPLOAD
        loads = con.execute("SELECT count(*) FROM loads WHERE source_file LIKE '%events_upload%'").fetchone()[0]
        assert loads == UPLOADERS
    finally:
        con.close()
