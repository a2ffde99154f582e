"""Time a later load — a daily export added to a store that already holds months of events — in this checkout
against an earlier revision, in interleaved runs.

    python bench/later_load.py --db STORE --base REV [--file CSV | --sample CSV --rows 100000 --days 60]
                               [--rounds 2] [--json PATH]

Each run loads the file into a fresh copy of ``--db`` (so every run meets the same store) through
``python -m store load`` in a new process of each tree, the order of the two trees alternating between rounds.
``--file`` is loaded as it is; ``--sample`` makes it first: ``--rows`` rows drawn (seeded) from that CSV — the
log ``bench/run.py`` generated for the store — with ``--time-column`` moved ``--days`` later, so that they are
new events of stored users, as a day's export mostly is. The report gives each tree's median seconds and their
ratio (HEAD / base: below 1.00× is faster). ``--base-tree DIR`` compares with a directory instead of a revision.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def sample_file(csv: str, out: str, rows: int, days: int, time_column: str = "timestamp", seed: int = 7) -> int:
    """Write ``rows`` rows of ``csv`` (a seeded reservoir sample) to ``out`` with ``time_column`` ``days`` later,
    in UTC; return the rows written."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")   # times without an offset are read as UTC
    src = str(csv).replace("'", "''")
    col = '"' + time_column.replace('"', '""') + '"'
    con.execute(f"""
        COPY (SELECT * REPLACE (strftime(timezone('UTC', CAST({col} AS TIMESTAMPTZ)) + INTERVAL {int(days)} DAY,
                                         '%Y-%m-%dT%H:%M:%SZ') AS {col})
              FROM read_csv('{src}', all_varchar = true)
              USING SAMPLE {int(rows)} ROWS (reservoir, {int(seed)}))
        TO '{str(out).replace("'", "''")}' (HEADER)""")
    return con.execute(f"SELECT count(*) FROM read_csv('{str(out).replace(chr(39), chr(39) * 2)}')").fetchone()[0]


def _load(tree: str, db: str, csv: str) -> float:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    started = time.perf_counter()
    out = subprocess.run([sys.executable, "-m", "store", "load", csv, "--db", db, "--quiet"], cwd=tree, env=env,
                         capture_output=True, text=True)
    seconds = time.perf_counter() - started
    if out.returncode != 0:
        raise RuntimeError(f"the load in {tree} failed:\n{out.stderr[-2000:]}")
    return seconds


def _events(db: str) -> int:
    import duckdb

    with duckdb.connect(db, read_only=True) as con:
        return con.execute("SELECT count(*) FROM events").fetchone()[0]


def compare(db: str, csv: str, base_tree: str, rounds: int, work: str) -> dict:
    """Each tree's seconds per run, and the events each run added (a load that added nothing timed nothing)."""
    times, added = {"base": [], "head": []}, {"base": [], "head": []}
    copy, stored = os.path.join(work, "store.duckdb"), _events(db)
    for r in range(rounds):
        for side in (("base", "head") if r % 2 == 0 else ("head", "base")):
            for f in (copy, copy + ".wal"):
                if os.path.exists(f):
                    os.unlink(f)
            shutil.copyfile(db, copy)
            times[side].append(_load(base_tree if side == "base" else str(ROOT), copy, csv))
            added[side].append(_events(copy) - stored)
    base, head = statistics.median(times["base"]), statistics.median(times["head"])
    return {**times, "added": added, "base_median": base, "head_median": head, "ratio": head / base}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True, help="the store the file is loaded into (copied for each run)")
    group = parser.add_mutually_exclusive_group(required=True)
    group.add_argument("--base", help="a git revision to compare with")
    group.add_argument("--base-tree", help="a directory holding another checkout")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--file", help="the file to load")
    source.add_argument("--sample", help="a CSV to draw the file from")
    parser.add_argument("--rows", type=int, default=100_000)
    parser.add_argument("--days", type=int, default=60)
    parser.add_argument("--time-column", default="timestamp")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json", default=None)
    args = parser.parse_args()
    import duckdb

    events = _events(args.db)
    with tempfile.TemporaryDirectory(prefix="opsfunnel-later-") as tmp:
        csv = args.file
        if args.sample:
            csv = os.path.join(tmp, "later.csv")
            rows = sample_file(args.sample, csv, args.rows, args.days, args.time_column)
        else:
            rows = duckdb.execute("SELECT count(*) FROM read_csv(?)", [csv]).fetchone()[0]
        base_tree, label = args.base_tree, args.base_tree
        if args.base:
            base_tree, label = os.path.join(tmp, "tree"), args.base
            subprocess.run(["git", "worktree", "add", "--detach", base_tree, args.base], cwd=ROOT, check=True,
                           capture_output=True)
        try:
            result = compare(os.path.abspath(args.db), os.path.abspath(csv), os.path.abspath(base_tree),
                             args.rounds, tmp)
        finally:
            if args.base:
                subprocess.run(["git", "worktree", "remove", "--force", base_tree], cwd=ROOT, capture_output=True)
    print(f"HEAD vs {label} — a later load of {rows:,} rows into a store of {events:,} events, interleaved, medians")
    print(f"{'base':>9}{'HEAD':>9}{'HEAD/base':>11}")
    print(f"{result['base_median']:>8.2f}s{result['head_median']:>8.2f}s{result['ratio']:>10.2f}×")
    if args.json:
        Path(args.json).write_text(json.dumps({"base": label, "events": events, "rows": rows, "result": result},
                                              indent=1))


if __name__ == "__main__":
    main()
