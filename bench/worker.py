"""Run one engine's tasks in this process and print JSON: set-up time, per-task times and results.

    python -m bench.worker --engine chdb --csv events.csv --db work/chdb --runs 3 --tasks funnel,pv_uv
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
    args = parser.parse_args()
    t = time.perf_counter()
    engine = ENGINES[args.engine](args.db, args.csv)
    out = {"engine": args.engine, "setup_s": time.perf_counter() - t, "tasks": {}}
    for task in args.tasks.split(","):
        times, result = _timed(getattr(engine, task), args.runs)
        out["tasks"][task] = {"times": times, "result": result}
    json.dump(out, sys.stdout)


if __name__ == "__main__":
    main()
