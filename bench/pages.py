"""Time every dashboard page the way a visitor meets it: cold, warm, and the metrics behind it.

    python bench/pages.py --db PATH [--runs 3] [--pages overview,funnel] [--channels wechat,douyin] [--days 30]
                          [--state funnel_order=strict] [--json out.json]

Each page of the app's navigation (read from ``app.py``: both the marketing and the operations
sections, all pages, default filters, English) runs in its own process under
``streamlit.testing.v1.AppTest`` against the database (the app reads ``$OPSFUNNEL_DB``), so the
process's peak RSS is that page's. ``--channels`` picks those channels in the sidebar first (the users a
marketing team most often narrows a page to); ``--days N`` picks the last N days of the data (UTC) in its date
range (the period a report most often looks at); ``--state KEY=VALUE`` (repeatable) sets a page's own widget by its
key before the run, e.g. ``--state funnel_order=strict`` (a value that reads as JSON is taken as JSON, else as text).
In that process:

* **first** — the page's first run after the process started: opens the DuckDB connection (a
  ``st.cache_resource``, paid once per server, not per visitor) and meets DuckDB's cold buffers;
* **cold** — ``st.cache_data`` cleared (every cached metric result and the sidebar's data facts gone)
  with the connection kept open: what the first visitor after a data load pays; median of ``--runs``;
* **warm** — a rerun of the same page with the caches filled (what every later click costs);
  median of ``--runs``. The runs share one compiled copy of the scripts, as a server's runs do (AppTest
  alone would compile them again for every run);
* **cold CPU** — the process's CPU time (Python and every DuckDB thread) during the cold run: on a busy
  machine wall times swing with the other load, CPU time much less;
* **metric** — the part of the cold run spent inside the metric functions (``ui.context.run``,
  timed around the call on the cursor), with the slowest call named: a page whose cold time is
  mostly script time is slow in Python/plotly, not in SQL.

Before timing, a database without spend or survey rows gets them (spend drawn per day for every
first-touch channel/campaign in the events, seeded; the sample's survey), so the economics pages have
work to do on a synthetic log. ``--no-prepare`` leaves the database as it is.

The campaign-vs-retention table (``metrics.economics.campaign_vs_retention``, default parameters) is
timed alone as well, without Streamlit (``campaign_task``).
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import sys
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import run_child  # noqa: E402

PY = sys.executable
# the targets: up to 10M events cold <= 2 s and warm <= 100 ms; above, cold <= 10 s and <= 8 GB;
# the sample data warm <= 300 ms
TARGETS = {"cold_s": 2.0, "warm_s": 0.1, "sample_warm_s": 0.3, "large_cold_s": 10.0, "large_peak_mb": 8192}


def app_pages() -> list[tuple[str, str]]:
    """(script path, English title) of every page in the app's navigation, in menu order."""
    text = (ROOT / "app.py").read_text(encoding="utf-8")
    return re.findall(r'P\("(app_pages/[a-z_]+\.py)", title=tr\("([^"]+)"', text)


# --- data preparation -------------------------------------------------------------------------------

def prepare(db: str, seed: int = 7) -> dict:
    """Give a synthetic database spend and survey rows when it has none (idempotent)."""
    import numpy as np
    import pandas as pd

    import store
    from store.load import load_spend, load_survey

    con = store.connect(db)
    try:
        done = {}
        spend, survey = con.execute("SELECT (SELECT count(*) FROM spend), (SELECT count(*) FROM survey)").fetchone()
        if spend == 0:
            keys = con.execute("""SELECT channel, coalesce(campaign, '') AS campaign, count(*) AS users,
                                         min(first_seen)::DATE AS d0, max(first_seen)::DATE AS d1
                                  FROM users WHERE channel IS NOT NULL
                                    AND channel NOT IN ('organic', 'referral', 'direct', '(direct)', '')
                                  GROUP BY ALL ORDER BY 1, 2""").df()
            rng = np.random.default_rng(seed)
            rows = []
            for k in keys.itertuples():
                days = pd.date_range(k.d0, k.d1, freq="D")
                per_user = rng.uniform(8, 40)               # CNY per acquired user, a cost level per campaign
                daily = k.users / max(len(days), 1) * per_user
                noise = rng.lognormal(0, 0.25, len(days))
                cpm = rng.uniform(8, 30)
                ctr = rng.uniform(0.008, 0.03)
                for d, x in zip(days, noise):
                    s = round(daily * x, 2)
                    imp = int(s / cpm * 1000)
                    rows.append((d.date().isoformat(), k.channel, k.campaign or None, s, imp, int(imp * ctr), "CNY"))
            if rows:
                path = Path(db).with_suffix(".spend.csv")
                pd.DataFrame(rows, columns=["date", "channel", "campaign", "spend", "impressions", "clicks",
                                            "currency"]).to_csv(path, index=False)
                done["spend"] = load_spend(con, path).summary()
        if survey == 0:
            done["survey"] = load_survey(con, ROOT / "sample_data" / "survey.csv").summary()
        return done
    finally:
        con.close()


# --- one page, in its own process --------------------------------------------------------------------

_CALLS: list = []


def _instrument() -> list:
    """Wrap ``ui.context.call_with_timeout`` (what every cached metric call runs) to record its time (once
    per process; returns the list the calls go to)."""
    import ui.context as ctx

    calls = _CALLS
    inner = ctx.call_with_timeout
    if getattr(inner, "_bench_timed", False):
        return calls

    def timed(fn, timeout, *args, **kwargs):
        t = time.perf_counter()
        try:
            return inner(fn, timeout, *args, **kwargs)
        finally:
            calls.append((f"{fn.__module__}.{fn.__qualname__}", time.perf_counter() - t))

    timed._bench_timed = True
    ctx.call_with_timeout = timed
    return calls


def _share_script_cache() -> None:
    """Give every AppTest run in this process one ``ScriptCache``, as a server has: AppTest makes a new one
    per run, so each run would compile ``app.py`` and the page again (with Streamlit's magic rewrite of the
    syntax tree) — 10-30 ms a served rerun never pays, as the server compiles a script once per process."""
    from streamlit.runtime.scriptrunner.script_cache import ScriptCache
    from streamlit.testing.v1 import app_test, local_script_runner

    shared = ScriptCache()
    app_test.ScriptCache = local_script_runner.ScriptCache = lambda: shared


def measure_page(page: str, runs: int, channels: tuple[str, ...] = (), dates: tuple | None = None,
                 state: dict | None = None) -> dict:
    """Time ``page`` in this process (see the module docstring); ``$OPSFUNNEL_DB`` names the database;
    ``channels`` are picked in the sidebar's channel filter, ``dates`` (first, last) in its date range, and
    ``state`` (``{widget key: value}``) set in the session before the run."""
    import logging

    import streamlit as st
    from streamlit.testing.v1 import AppTest

    from ui.context import clear_memo

    logging.getLogger("streamlit").setLevel(logging.ERROR)
    os.chdir(ROOT)  # AppTest reads .streamlit/config.toml from the working directory
    calls = _instrument()
    _share_script_cache()

    def one_cold() -> tuple[float, float, list, AppTest]:
        st.cache_data.clear()
        clear_memo()  # what pages build from metric results (figures, CSVs) is rebuilt too
        calls.clear()
        at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=600)
        at.session_state["lang"] = "en"
        if channels:
            at.session_state["flt_channels"] = list(channels)
        if dates:
            at.session_state["flt_dates"] = dates
        for key, value in (state or {}).items():
            at.session_state[key] = value
        at.switch_page(page)
        t, cpu = time.perf_counter(), time.process_time()
        at.run()
        wall = time.perf_counter() - t
        cold_cpu.append(time.process_time() - cpu)
        if at.exception:
            raise RuntimeError(f"{page}: {[e.value for e in at.exception]}")
        if channels and set(at.session_state["filters"].channels) != set(channels):
            raise RuntimeError(f"{page}: the sidebar did not take the channels {channels}")
        if dates and (at.session_state["filters"].start, at.session_state["filters"].end) != dates:
            raise RuntimeError(f"{page}: the sidebar did not take the dates {dates}")
        for key, value in (state or {}).items():
            if at.session_state[key] != value:
                raise RuntimeError(f"{page}: the page did not keep {key} = {value!r}")
        return wall, sum(c for _, c in calls), list(calls), at

    cold_cpu: list[float] = []
    first, _, _, _ = one_cold()
    cold_cpu.clear()
    cold, metric, warm, slowest, misses = [], [], [], [], []
    for _ in range(runs):
        wall, m, made, at = one_cold()
        cold.append(wall)
        metric.append(m)
        slowest.append(max(made, key=lambda c: c[1]) if made else ("", 0.0))
        calls.clear()
        t = time.perf_counter()
        at.run()
        warm.append(time.perf_counter() - t)
        misses += [n for n, _ in calls]  # a cache key that missed on the rerun: the warm time includes a query
    worst = max(slowest, key=lambda c: c[1])
    return {"page": page, "first_s": first, "cold_s": cold, "cold_cpu_s": cold_cpu, "warm_s": warm,
            "metric_s": metric, "metric_calls": len(made), "slowest_metric": list(worst),
            "calls": [[n, round(c, 4)] for n, c in made],  # the last cold run's metric calls, in order
            "warm_misses": sorted(set(misses)), "dates": [str(d) for d in dates] if dates else None,
            "state": state or {}}


def campaign_task(runs: int) -> dict:
    """The campaign-vs-retention table on its own (no Streamlit), fresh cursor per run."""
    import store
    from metrics import economics

    con = store.connect(os.environ["OPSFUNNEL_DB"])
    times, rows = [], 0
    for _ in range(runs):
        t = time.perf_counter()
        df = economics.campaign_vs_retention(con, economics.EconomicsParams())
        times.append(time.perf_counter() - t)
        rows = len(df)
    return {"times": times, "rows": rows}


def _run_child(cmd_args: list[str], db: str) -> tuple[dict, float]:
    child = run_child([PY, str(Path(__file__).resolve()), *cmd_args],
                      env=dict(os.environ, OPSFUNNEL_DB=str(db))).checked()
    return json.loads(child.out.strip().splitlines()[-1]), child.peak_mb


def run(db: str, runs: int = 3, pages: list[str] | None = None, prepare_data: bool = True,
        isolated: bool = True, channels: tuple[str, ...] = (), days: int | None = None,
        state: dict | None = None) -> dict:
    """Every page (or those whose file name contains one of ``pages``), each in its own process — or, with
    ``isolated=False`` (quick checks on tiny logs), all in one process: then "first" is only the first page's
    true first run and the peak memory is the whole process's. ``channels`` and the last ``days`` days: picked
    in the sidebar; ``state``: the pages' widgets set by key."""
    import duckdb

    prepared = prepare(db) if prepare_data else {}
    con = duckdb.connect(db, read_only=True)
    events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    con.execute("SET TimeZone = 'UTC'")
    dates = con.execute("SELECT CAST(max(event_time) AS DATE) - ?, CAST(max(event_time) AS DATE) FROM events",
                        [int(days) - 1]).fetchone() if days else None   # the last days of the data, both inclusive
    con.close()
    report = {"db": str(db), "events": events, "runs": runs, "prepared": prepared, "pages": {},
              "channels": list(channels), "days": days, "state": state or {}}
    chosen = [(path, title) for path, title in app_pages() if not pages or any(p in path for p in pages)]
    groups = [[c] for c in chosen] if isolated else [chosen]
    for group in groups:
        results, peak = _run_child(["--one", ",".join(path for path, _ in group), "--runs", str(runs),
                                    "--channels", ",".join(channels),
                                    "--dates", ",".join(str(d) for d in dates) if dates else "",
                                    "--state-json", json.dumps(state or {})], db)
        for (path, title), result in zip(group, results):
            result.update(title=title, peak_mb=peak)
            report["pages"][path] = result
    report["isolated"] = isolated
    task, peak = _run_child(["--task", "campaign_vs_retention", "--runs", str(runs)], db)
    task["peak_mb"] = peak
    report["campaign_vs_retention"] = task
    return report


def table(report: dict) -> str:
    med = statistics.median
    sample = report["events"] < 2_000_000
    large = report["events"] > 10_000_000
    picked = f", channels {', '.join(report['channels'])} picked" if report.get("channels") else ""
    picked += f", the last {report['days']} days picked" if report.get("days") else ""
    picked += "".join(f", {k} = {v}" for k, v in (report.get("state") or {}).items())
    lines = [f"dashboard pages — {report['events']:,} events{picked}, median of {report['runs']} runs "
             f"(cold: cache_data cleared, connection open; first: new process; warm: rerun with caches filled)",
             f"{'page':<24}{'first':>8}{'cold':>8}{'cpu':>8}{'metric':>8}{'warm':>8}{'peak MB':>9}  slowest metric (cold)"]
    for r in report["pages"].values():
        cold, warm = med(r["cold_s"]), med(r["warm_s"])
        flag = ""
        if sample and warm > TARGETS["sample_warm_s"]:
            flag = "  ← over 300 ms warm"
        elif large and (cold > TARGETS["large_cold_s"] or r["peak_mb"] > TARGETS["large_peak_mb"]):
            flag = "  ← over 10 s cold or 8 GB"
        elif not sample and not large and (cold > TARGETS["cold_s"] or warm > TARGETS["warm_s"]):
            flag = "  ← over target"
        name, secs = r["slowest_metric"][:2]
        if r.get("warm_misses"):
            flag += f"  (warm rerun recomputed {', '.join(r['warm_misses'])})"
        cpu = med(r["cold_cpu_s"]) if r.get("cold_cpu_s") else float("nan")
        lines.append(f"{r['title'][:23]:<24}{r['first_s']:>7.2f}s{cold:>7.2f}s{cpu:>7.2f}s{med(r['metric_s']):>7.2f}s"
                     f"{warm * 1000:>6.0f}ms{r['peak_mb']:>9.0f}  {name.removeprefix('metrics.')} {secs:.2f}s{flag}")
    t = report.get("campaign_vs_retention")
    if t:
        lines.append(f"campaign vs retention table (metric alone): {med(t['times']):.3f} s, {t['rows']} rows, "
                     f"{t['peak_mb']:.0f} MB peak")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="time every dashboard page")
    parser.add_argument("--db", default=os.environ.get("OPSFUNNEL_DB"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--pages", default="", help="comma-separated parts of page file names to time")
    parser.add_argument("--json", default=None, help="also write the report here")
    parser.add_argument("--no-prepare", action="store_true", help="do not add spend/survey rows")
    parser.add_argument("--channels", default="", help="comma-separated channels to pick in the sidebar first")
    parser.add_argument("--days", type=int, default=0, help="pick the last N days of the data in the sidebar first")
    parser.add_argument("--state", action="append", default=[], metavar="KEY=VALUE",
                        help="set a page widget by its key first, e.g. funnel_order=strict (repeatable)")
    parser.add_argument("--dates", default="", help=argparse.SUPPRESS)
    parser.add_argument("--state-json", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--one", default=None, help=argparse.SUPPRESS)
    parser.add_argument("--task", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    channels = tuple(c for c in args.channels.split(",") if c)
    if args.one:
        dates = tuple(date.fromisoformat(d) for d in args.dates.split(",")) if args.dates else None
        state = json.loads(args.state_json)
        print(json.dumps([measure_page(page, args.runs, channels, dates, state) for page in args.one.split(",")]))
        return 0
    if args.task:
        print(json.dumps(campaign_task(args.runs)))
        return 0
    if not args.db:
        parser.error("--db (or $OPSFUNNEL_DB) is required")
    state = {}
    for item in args.state:
        key, sep, value = item.partition("=")
        if not sep or not key:
            parser.error(f"--state {item!r}: expected KEY=VALUE")
        try:
            state[key] = json.loads(value)
        except ValueError:
            state[key] = value
    report = run(args.db, args.runs, [p for p in args.pages.split(",") if p], not args.no_prepare,
                 channels=channels, days=args.days or None, state=state)
    text = table(report)
    print(text)
    if args.json:
        report["table"] = text
        Path(args.json).write_text(json.dumps(report, indent=1, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
