"""opsfunnel benchmark: our engine against ClickHouse (chdb), polars and pandas on the same log.

    python bench/run.py --events 10000000 [--runs 3] [--engines ours,chdb,polars,pandas] [--seed 7]

1. generates (or reuses) a seeded synthetic log of that size (``bench/synth.py``);
2. ingest: ``python -m store load`` against a bare DuckDB ``CREATE TABLE … AS SELECT * FROM read_csv``;
3. runs the funnel, retention and PV/UV tasks (``bench/engines.py``) on every engine, each engine in
   its own process so its peak memory is its own. Every engine stays loaded and the runs are interleaved:
   round by round, task by task, each engine runs the task once (the engines' order rotating each round),
   so a slow spell of a shared host falls on every engine alike instead of on whichever ran then. Round 0
   is a warm-up for every engine (first reads of its data: kept in the JSON as ``first_s``, not in the
   medians);
4. checks that every engine returned the same numbers, in every run — a benchmark of a wrong answer is
   void, so any disagreement stops the report;
5. prints medians over the runs and ratios to the reference (the fastest of chdb and polars on each
   task) and writes everything to ``bench/results/<events>.json``;
6. pages (unless ``--no-pages``): gives ``ours.duckdb`` spend and survey rows and times every dashboard
   page on it — cold, warm, metric time, peak memory — and the campaign-vs-retention table alone
   (``bench/pages.py``; ours only, there is no reference engine for a page).
pandas runs only up to 10M events.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench import pages as bench_pages  # noqa: E402
from bench import synth  # noqa: E402
from bench.engines import TASKS  # noqa: E402
from bench.measure import run_child  # noqa: E402

PY = sys.executable


def ensure_log(events: int, seed: int, work: Path) -> Path:
    path = work / f"events_{events}_{seed}.csv"
    if not path.exists():
        t = time.perf_counter()
        synth.write_csv(events, path, seed)
        print(f"generated {events:,} events in {time.perf_counter() - t:.1f} s → {path}", file=sys.stderr)
    return path


def ingest(csv: Path, work: Path, runs: int) -> dict:
    ours, bare = [], []
    for _ in range(runs):
        for f in work.glob("ingest_*.duckdb*"):
            f.unlink()
        child = run_child([PY, "-c", (
            "import duckdb, sys; c = duckdb.connect(sys.argv[1]); "
            "c.execute('CREATE TABLE t AS SELECT * FROM read_csv(?)', [sys.argv[2]])"),
            str(work / "ingest_bare.duckdb"), str(csv)]).checked()
        bare.append((child.wall_s, child.peak_mb))
        child = run_child([PY, "-m", "store", "load", str(csv), "--kind", "events", "--quiet",
                           "--db", str(work / "ingest_ours.duckdb")]).checked()
        ours.append((child.wall_s, child.peak_mb))
    return {"ours_s": [w for w, _ in ours], "bare_s": [w for w, _ in bare],
            "ours_peak_mb": max(m for _, m in ours), "bare_peak_mb": max(m for _, m in bare)}


def run(events: int, runs: int, engines: list[str], seed: int, work: Path, tasks=TASKS, pages: bool = True,
        pages_isolated: bool = True) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    csv = ensure_log(events, seed, work)
    report = {"events": events, "runs": runs, "seed": seed, "machine": machine(), "engines": {}}
    if "ours" in engines:
        report["ingest"] = ingest(csv, work, runs)
        shutil.copy(work / "ingest_ours.duckdb", work / "ours.duckdb")
    chosen = [e for e in engines if not (e == "pandas" and events > 10_000_000)]
    report["engines"] = interleaved(chosen, csv, work, runs, tasks)
    report["agreement"] = check_agreement(report, tasks)
    if pages and "ours" in engines:
        report["pages"] = bench_pages.run(str(work / "ours.duckdb"), runs, isolated=pages_isolated)
    return report


class _Engine:
    """One engine loaded in a ``bench.worker --serve`` process, running one task per request."""

    def __init__(self, engine: str, csv: Path, work: Path):
        db = work / f"{engine}.db" if engine != "ours" else work / "ours.duckdb"
        if engine == "chdb" and db.exists():
            shutil.rmtree(db)
        self.name, self.err = engine, open(work / f"{engine}.stderr", "w+")
        self.proc = subprocess.Popen([PY, "-m", "bench.worker", "--engine", engine, "--csv", str(csv), "--db",
                                      str(db), "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                     stderr=self.err, cwd=ROOT, text=True)
        self.result = {"engine": engine, "setup_s": self._reply()["setup_s"], "tasks": {}}

    def _reply(self) -> dict:
        line = self.proc.stdout.readline()
        if not line:
            self.proc.wait()
            self.err.seek(0)
            raise RuntimeError(f"the {self.name} worker stopped ({self.proc.returncode}):\n{self.err.read()[-3000:]}")
        return json.loads(line)

    def run(self, task: str, warmup: bool) -> None:
        self.proc.stdin.write(task + "\n")
        self.proc.stdin.flush()
        reply = self._reply()
        slot = self.result["tasks"].setdefault(task, {"times": [], "results": []})
        if warmup:
            slot["first_s"] = reply["time"]
        else:
            slot["times"].append(reply["time"])
        slot["results"].append(reply["result"])

    def close(self) -> dict:
        """End the process; its result with ``peak_mb`` (the process's own peak RSS) and each task's ``result``
        — the one every run returned, or ``None`` when two runs disagreed."""
        self.proc.stdin.close()
        self.result["peak_mb"] = self._reply()["peak_mb"]
        self.proc.wait()
        self.err.close()
        for slot in self.result["tasks"].values():
            results = slot.pop("results")
            slot["result"] = results[0] if all(r == results[0] for r in results) else None
        return self.result


def interleaved(engines: list[str], csv: Path, work: Path, runs: int, tasks=TASKS) -> dict:
    """Every engine's tasks timed in interleaved rounds (see the module docstring): {engine: result}."""
    loaded: list[_Engine] = []
    try:
        for engine in engines:                     # set up one after another: set-up is not timed
            loaded.append(_Engine(engine, csv, work))
        for rnd in range(runs + 1):                 # round 0: the warm-up
            order = loaded[rnd % len(loaded):] + loaded[:rnd % len(loaded)]
            for task in tasks:
                for eng in order:
                    eng.run(task, warmup=rnd == 0)
        return {eng.name: eng.close() for eng in loaded}
    finally:
        for eng in loaded:
            if eng.proc.poll() is None:
                eng.proc.kill()
                eng.proc.wait()


def check_agreement(report: dict, tasks) -> dict:
    """Per task: the engines whose result differs from the first engine's, or between two of their own runs
    (``None``). Empty lists = all agree."""
    out = {}
    for task in tasks:
        results = {e: r["tasks"][task]["result"] for e, r in report["engines"].items()}
        if not results:
            continue
        first_engine, first = next(iter(results.items()))
        out[task] = {"reference_engine": first_engine,
                     "disagree": [e for e, r in results.items() if r is None or r != first]}
    return out


def machine() -> dict:
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {"cpus": os.cpu_count(), "memory_gb": round(mem, 1), "python": platform.python_version(),
            "platform": platform.platform()}


def table(report: dict, tasks=TASKS) -> str:
    lines = [f"opsfunnel benchmark — {report['events']:,} events, median of {report['runs']} interleaved runs "
             f"after a warm-up, {report['machine']['cpus']} CPUs / {report['machine']['memory_gb']} GB"]
    if "ingest" in report:
        ing = report["ingest"]
        o, b = statistics.median(ing["ours_s"]), statistics.median(ing["bare_s"])
        lines.append(f"ingest: ours {o:.2f} s ({ing['ours_peak_mb']:.0f} MB peak) vs bare DuckDB read_csv "
                     f"{b:.2f} s ({ing['bare_peak_mb']:.0f} MB) → rate ratio {b / o:.2f}× (target ≥ 0.70×)")
    engines = list(report["engines"])
    lines.append("")
    lines.append(f"{'task':<14}" + "".join(f"{e:>12}" for e in engines) + f"{'reference':>12}{'ours/ref':>10}")
    for task in tasks:
        med = {e: statistics.median(report["engines"][e]["tasks"][task]["times"]) for e in engines}
        refs = [med[e] for e in ("chdb", "polars") if e in med]
        ref = min(refs) if refs else None
        row = f"{task:<14}" + "".join(f"{med[e]:>11.3f}s" for e in engines)
        if ref is not None and "ours" in med:
            row += f"{ref:>11.3f}s{med['ours'] / ref:>9.2f}×"
        lines.append(row)
    for task in tasks:
        if all("first_s" in report["engines"][e]["tasks"][task] for e in engines):
            lines.append(f"{task + ' 1st':<14}" + "".join(f"{report['engines'][e]['tasks'][task]['first_s']:>11.3f}s"
                                                         for e in engines) + "   (warm-up run, not in the medians)")
    lines.append(f"{'peak MB':<14}" + "".join(f"{report['engines'][e]['peak_mb']:>12.0f}" for e in engines))
    lines.append(f"{'setup s':<14}" + "".join(f"{report['engines'][e]['setup_s']:>11.1f}s" for e in engines))
    bad = {t: a["disagree"] for t, a in report["agreement"].items() if a["disagree"]}
    lines.append("")
    lines.append("engines agree on every task" if not bad else f"DISAGREEMENT (times void): {bad}")
    if report.get("pages"):
        lines.append("")
        lines.append(bench_pages.table(report["pages"]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="opsfunnel benchmark")
    parser.add_argument("--events", type=int, default=1_000_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--engines", default="ours,chdb,polars,pandas")
    parser.add_argument("--work", default=str(ROOT / "bench" / "results"))
    parser.add_argument("--no-pages", action="store_true", help="skip timing the dashboard pages")
    args = parser.parse_args()
    work = Path(args.work)
    report = run(args.events, args.runs, args.engines.split(","), args.seed, work, pages=not args.no_pages)
    text = table(report)
    print(text)
    out = work / f"{args.events}.json"
    report["table"] = text
    out.write_text(json.dumps(report, indent=1, default=str))
    print(f"\nwritten to {out}")
    return 1 if any(a["disagree"] for a in report["agreement"].values()) else 0


if __name__ == "__main__":
    raise SystemExit(main())
