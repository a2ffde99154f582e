"""Time a later load — a daily export added to a store that already holds months of events — in this checkout
against an earlier revision, in interleaved runs.

    python bench/later_load.py --db STORE --base REV [--file CSV | --sample CSV --rows 100000 --days 60]
                               [--rounds 2] [--json PATH]

Each run loads the file into a fresh copy of ``--db`` (so every run meets the same store) through
``python -m store load`` in a new process of each tree, the order of the two trees alternating between rounds.
``--file`` is loaded as it is; ``--sample`` makes it first: ``--rows`` rows drawn (seeded) from that CSV — the
log ``bench/run.py`` generated for the store — with ``--time-column`` moved ``--days`` later, so that they are
new events of stored users, as a day's export mostly is. The report gives each tree's median seconds, their ratio
(HEAD / base: below 1.00× is faster) and each tree's peak memory; a load that fails (an earlier revision may run
out of memory) is reported with its error rather than stopping the runs. ``--base-tree DIR`` compares with a
directory instead of a revision.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import run_child  # noqa: E402


def sample_file(csv: str, out: str, rows: int, days: int, time_column: str = "timestamp", seed: int = 7) -> int:
    """Write ``rows`` rows of ``csv`` (a seeded reservoir sample) to ``out`` with ``time_column`` ``days`` later,
    in UTC; return the rows written."""
    import duckdb

    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")   # times without an offset are read as UTC
    con.execute("SET enable_progress_bar = false")
    src = str(csv).replace("'", "''")
    col = '"' + time_column.replace('"', '""') + '"'
    con.execute(f"""
        COPY (SELECT * REPLACE (strftime(timezone('UTC', CAST({col} AS TIMESTAMPTZ)) + INTERVAL {int(days)} DAY,
                                         '%Y-%m-%dT%H:%M:%SZ') AS {col})
              FROM read_csv('{src}', all_varchar = true)
              USING SAMPLE {int(rows)} ROWS (reservoir, {int(seed)}))
        TO '{str(out).replace("'", "''")}' (HEADER)""")
    return con.execute(f"SELECT count(*) FROM read_csv('{str(out).replace(chr(39), chr(39) * 2)}')").fetchone()[0]


def _load(tree: str, db: str, csv: str) -> tuple[float, float, str | None]:
    """Seconds and peak memory (MB) of ``python -m store load`` in ``tree``, and the last line it wrote when it
    failed (else None)."""
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    child = run_child([sys.executable, "-m", "store", "load", csv, "--db", db, "--quiet"], cwd=tree, env=env)
    return child.wall_s, child.peak_mb, child.last_line() if child.returncode != 0 else None


def _events(db: str) -> int:
    import duckdb

    with duckdb.connect(db, read_only=True) as con:
        return con.execute("SELECT count(*) FROM events").fetchone()[0]


def compare(db: str, csv: str, base_tree: str, rounds: int, work: str) -> dict:
    """Each tree's seconds and peak memory (MB) per completed run, the events each added (a load that added nothing
    timed nothing) and the error of each failed run — a failure is a result too (an earlier revision may run out of
    memory)."""
    times, added, failed = {"base": [], "head": []}, {"base": [], "head": []}, {"base": [], "head": []}
    peak = {"base": [], "head": []}
    copy, stored = os.path.join(work, "store.duckdb"), _events(db)
    for r in range(rounds):
        for side in (("base", "head") if r % 2 == 0 else ("head", "base")):
            for f in (copy, copy + ".wal"):
                if os.path.exists(f):
                    os.unlink(f)
            shutil.copyfile(db, copy)
            seconds, peak_mb, error = _load(base_tree if side == "base" else str(ROOT), copy, csv)
            if error is None:
                times[side].append(seconds)
                peak[side].append(peak_mb)
                added[side].append(_events(copy) - stored)
            else:
                failed[side].append(error)
    base = statistics.median(times["base"]) if times["base"] else None
    head = statistics.median(times["head"]) if times["head"] else None
    return {**times, "peak_mb": peak, "added": added, "failed": failed, "base_median": base, "head_median": head,
            "ratio": head / base if base and head else None}


def _runs(result: dict, side: str) -> int:
    return len(result[side]) + len(result["failed"][side])


def _cell(result: dict, side: str) -> str:
    median = result[f"{side}_median"]
    return f"{median:>8.2f}s" if median is not None else f"{'failed':>9}"


def _peak_cell(result: dict, side: str) -> str:
    peaks = result["peak_mb"][side]
    return f"{max(peaks):>7.0f}MB" if peaks else f"{'—':>9}"


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

    from bench.compare import base_checkout

    events = _events(args.db)
    with tempfile.TemporaryDirectory(prefix="opsfunnel-later-") as tmp:
        csv = args.file
        if args.sample:
            csv = os.path.join(tmp, "later.csv")
            rows = sample_file(args.sample, csv, args.rows, args.days, args.time_column)
        else:
            rows = duckdb.execute("SELECT count(*) FROM read_csv(?)", [csv]).fetchone()[0]
        with base_checkout(args.base, args.base_tree, tmp) as (base_tree, label):
            result = compare(os.path.abspath(args.db), os.path.abspath(csv), os.path.abspath(base_tree),
                             args.rounds, tmp)
    print(f"HEAD vs {label} — a later load of {rows:,} rows into a store of {events:,} events, interleaved, medians")
    print(f"{'base':>9}{'HEAD':>9}{'HEAD/base':>11}")
    ratio = f"{result['ratio']:>10.2f}×" if result["ratio"] is not None else f"{'—':>11}"
    print(f"{_cell(result, 'base')}{_cell(result, 'head')}{ratio}   median seconds")
    print(f"{_peak_cell(result, 'base')}{_peak_cell(result, 'head')}{'':>11}   peak memory (the most of any run)")
    for side, label_ in (("base", label), ("head", "HEAD")):
        if result["failed"][side]:
            print(f"{label_} failed {len(result['failed'][side])} of {_runs(result, side)} runs: "
                  f"{result['failed'][side][0]}")
    if args.json:
        Path(args.json).write_text(json.dumps({"base": label, "events": events, "rows": rows, "result": result},
                                              indent=1))


if __name__ == "__main__":
    main()
