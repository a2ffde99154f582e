"""A bounded load test on loopback: several browser sessions at once, two of them uploading a file at
the same moment while the others browse every page.

One real server (``streamlit run app.py`` on 127.0.0.1, every eighth user of the sample data plus
its spend and survey pre-loaded into a fresh DuckDB file) and one Chromium with ``BROWSERS`` + ``UPLOADERS``
contexts, driven by Playwright's async API so the sessions really overlap. For ``DURATION`` seconds each
browsing session clicks through the pages in the sidebar (each in its own order); at ``UPLOAD_AT`` seconds
two other sessions, already on the Data page with a file chosen, press Load in the same instant (an
``asyncio.Barrier``) and then browse too. Asserted:

* no page visited shows a Streamlit exception, an error box, "database is locked" or "Traceback",
  and the app's error log stays empty;
* both uploads load, each exactly once: after the server stops, the database holds each file's
  rows once (no lost and no doubled load);
* every visit finished (a page that never became idle fails the test).

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

# Sessions browsing pages (2 cores: more sessions only queue behind each other) and seconds of browsing;
# OPSFUNNEL_LOAD_BROWSERS / OPSFUNNEL_LOAD_SECONDS raise them on a bigger machine.
BROWSERS = int(os.environ.get("OPSFUNNEL_LOAD_BROWSERS", "4"))
UPLOADERS = 2         # sessions uploading at the same moment
DURATION = float(os.environ.get("OPSFUNNEL_LOAD_SECONDS", "40"))
UPLOAD_AT = 8.0       # seconds into the run when both uploads start
VISIT_TIMEOUT = 60_000
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


async def _browser_session(browser, url: str, n: int, deadline: float, latencies: dict, problems: list) -> int:
    context, page = await _open(browser, url)
    order = PAGES[n % len(PAGES):] + PAGES[:n % len(PAGES)]
    visits, i = 0, 0
    try:
        while time.monotonic() < deadline:
            title = order[i % len(order)]
            i += 1
            seconds = await _visit(page, title)
            latencies.setdefault(title, []).append(seconds)
            await _check(page, f"session {n} on {title}", problems)
            visits += 1
    finally:
        await context.close()
    return visits


async def _uploader_session(browser, url: str, n: int, path: str, gate: asyncio.Barrier, deadline: float,
                            latencies: dict, problems: list) -> str:
    context, page = await _open(browser, url)
    try:
        await _visit(page, "Data")
        await page.locator("input[type=file]").set_input_files(path)
        load = page.get_by_role("button", name="Load 1 file(s)")
        await load.wait_for(timeout=VISIT_TIMEOUT)
        await _idle(page)
        await gate.wait()  # both uploaders reach this point, then both press Load in the same instant
        started = time.monotonic()
        await load.click()
        report = page.get_by_text("rows read", exact=False).first
        await report.wait_for(timeout=VISIT_TIMEOUT)
        await _idle(page)
        latencies.setdefault("Data: load", []).append(time.monotonic() - started)
        await _check(page, f"uploader {n} after loading", problems)
        text = await report.inner_text()
        # then browse like everyone else until the end
        i = n
        while time.monotonic() < deadline:
            title = PAGES[i % len(PAGES)]
            i += 1
            latencies.setdefault(title, []).append(await _visit(page, title))
            await _check(page, f"uploader {n} on {title}", problems)
        return text
    finally:
        await context.close()


def _pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


async def _load_test(url: str, paths: list[str]) -> tuple[dict, list, list, list]:
    from playwright.async_api import async_playwright

    latencies: dict[str, list[float]] = {}
    problems: list = []
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            start = time.monotonic()
            deadline = start + DURATION
            gate = asyncio.Barrier(UPLOADERS)

            async def delayed_uploader(n: int, path: str):
                await asyncio.sleep(max(0.0, start + UPLOAD_AT - time.monotonic()))
                return await _uploader_session(browser, url, n, path, gate, deadline, latencies, problems)

            tasks = [_browser_session(browser, url, n, deadline, latencies, problems) for n in range(BROWSERS)]
            tasks += [delayed_uploader(n, p) for n, p in enumerate(paths)]
            results = await asyncio.gather(*tasks, return_exceptions=True)
        finally:
            await browser.close()
    failures = [r for r in results if isinstance(r, BaseException)]
    return latencies, problems, results, failures


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
        latencies, problems, results, failures = asyncio.run(_load_test(server.url, paths))
    finally:
        server.stop()
    elapsed = time.monotonic() - started

    # --- report
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
    assert not problems, problems[:5]
    assert visits >= 2 * BROWSERS, report  # the sessions really browsed, before and after the uploads
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
