"""Run one engine's tasks in this process and print JSON: set-up time, per-task times and results.

    python -m bench.worker --engine chdb --csv events.csv --db work/chdb --runs 3 --tasks funnel,pv_uv
    python -m bench.worker --engine chdb --csv events.csv --db work/chdb --serve

``--serve``: set the engine up, print one JSON line (``engine``, ``setup_s``), then for every task name read
from standard input run it once and print one JSON line (``task``, ``time``, ``result``) — so that
``bench/run.py`` can keep every engine loaded and interleave their runs. At the end of its input it prints one
last line, its peak memory (``peak_mb``), and ends.
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.engines import ENGINES, TASKS, _timed  # noqa: E402


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--engine", choices=sorted(ENGINES), required=True)
    parser.add_argument("--csv", required=True)
    parser.add_argument("--db", required=True)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tasks", default=",".join(TASKS))
    parser.add_argument("--serve", action="store_true", help="run the tasks named on standard input, one per line")
    args = parser.parse_args()
    t = time.perf_counter()
    engine = ENGINES[args.engine](args.db, args.csv)
    if args.serve:
        serve(engine, args.engine, time.perf_counter() - t)
        return
    out = {"engine": args.engine, "setup_s": time.perf_counter() - t, "tasks": {}}
    for task in args.tasks.split(","):
        times, result = _timed(getattr(engine, task), args.runs)
        out["tasks"][task] = {"times": times, "result": result}
    json.dump(out, sys.stdout)


def serve(engine, name: str, setup_s: float) -> None:
    print(json.dumps({"engine": name, "setup_s": setup_s}), flush=True)
    for line in sys.stdin:
        task = line.strip()
        if task not in TASKS:
            raise SystemExit(f"unknown task {task!r}")
        times, result = _timed(getattr(engine, task), 1)
        print(json.dumps({"task": task, "time": times[0], "result": result}), flush=True)
    print(json.dumps({"peak_mb": peak_mb()}), flush=True)


def peak_mb() -> float:
    """This process's peak resident memory (VmHWM: its own, not a parent's as wait4's ru_maxrss can be)."""
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024
    raise RuntimeError("no VmHWM in /proc/self/status")


if __name__ == "__main__":
    main()
