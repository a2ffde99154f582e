"""The floor under a load: how fast a load could be that checked nothing, keyed nothing and built no rollup.

    python bench/ingest_floor.py --events 10000000 [--runs 3] [--seed 7] [--work DIR]
    python bench/ingest_floor.py --csv PATH [--runs 3]

Times, each in a new process writing a new database file, round by round in turn (medians over ``--runs``):

- ``bare``: the benchmark's reference, ``CREATE TABLE t AS SELECT * FROM read_csv(…)`` (``bench/run.py``);
- ``typed``: the same file read with its columns typed (the event time as a timestamp, the revenue as a number,
  the rest as text; the lines the reader cannot read kept in its rejects table, as the load keeps them);
- ``typed+ids``: that read plus an MD5 event id made of every column of the row. The load's own id is the MD5
  of the parsed event with its properties as JSON (``docs/metrics.md``, "event_id"): the text joined here is
  cheaper to make, so this is a lower bound.

Each variant must hold every row of the file (the synthetic log has no bad line), or the report stops: a time of a
read that lost rows is void. The ratios are the bare rate over each variant's, as the ingest target reads them
(``docs/performance.md``, "Ingest").
"""
from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.measure import run_child  # noqa: E402
from bench.run import ensure_log  # noqa: E402
from store.mapping import detect_mapping  # noqa: E402
from store.sqlutil import quote_ident  # noqa: E402

PY = sys.executable
VARIANTS = ("bare", "typed", "typed+ids")

# A child: run one statement into a new database file, print the table's row count (the time is measured outside).
_CHILD = ("import duckdb, sys; c = duckdb.connect(sys.argv[1]); c.execute(\"SET TimeZone = 'UTC'\"); "
          "c.execute(sys.argv[2]); print(c.execute('SELECT count(*) FROM t').fetchone()[0]); c.close()")


def _quote(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def headers_of(csv: Path) -> list[str]:
    import duckdb
    return [r[0] for r in duckdb.connect().execute(f"DESCRIBE SELECT * FROM read_csv({_quote(str(csv))})").fetchall()]


def statements(csv: Path) -> dict[str, str]:
    """Each variant's ``CREATE TABLE t AS …`` over ``csv`` (its columns found by the load's own header mapping)."""
    headers = headers_of(csv)
    cols = detect_mapping("events", headers, None, csv.name)
    types = {h: "VARCHAR" for h in headers}
    types[cols["event_time"]] = "TIMESTAMPTZ"
    if cols.get("revenue"):
        types[cols["revenue"]] = "DOUBLE"
    columns = "{" + ", ".join(f"{_quote(h)}: {_quote(t)}" for h, t in types.items()) + "}"
    path = _quote(str(csv))
    typed = (f"read_csv({path}, header = true, columns = {columns}, auto_detect = false, ignore_errors = true, "
             f"store_rejects = true)")
    joined = ", ".join(f"CAST({quote_ident(h)} AS VARCHAR)" if t != "VARCHAR" else quote_ident(h)
                       for h, t in types.items())
    return {
        "bare": f"CREATE TABLE t AS SELECT * FROM read_csv({path})",
        "typed": f"CREATE TABLE t AS SELECT * FROM {typed}",
        "typed+ids": f"CREATE TABLE t AS SELECT md5(concat_ws(chr(31), {joined})) AS event_id, * FROM {typed}",
    }


def run(csv: Path, work: Path, runs: int) -> dict:
    work.mkdir(parents=True, exist_ok=True)
    sql = statements(csv)
    times: dict[str, list[float]] = {v: [] for v in VARIANTS}
    peaks: dict[str, float] = {v: 0.0 for v in VARIANTS}
    rows: dict[str, set[int]] = {v: set() for v in VARIANTS}
    for _ in range(runs):
        for variant in VARIANTS:
            db = work / f"floor_{variant.replace('+', '_')}.duckdb"
            for f in (db, db.with_name(db.name + ".wal")):
                f.unlink(missing_ok=True)
            child = run_child([PY, "-c", _CHILD, str(db), sql[variant]]).checked()
            times[variant].append(child.wall_s)
            peaks[variant] = max(peaks[variant], child.peak_mb)
            rows[variant].add(int(child.out.split()[-1]))
            db.unlink(missing_ok=True)
    if len({frozenset(r) for r in rows.values()}) != 1 or len(rows["bare"]) != 1:
        raise RuntimeError(f"the variants read different rows: {rows}")
    bare = statistics.median(times["bare"])
    return {"csv": str(csv), "rows": rows["bare"].pop(), "runs": runs,
            "variants": {v: {"s": times[v], "median_s": statistics.median(times[v]), "peak_mb": peaks[v],
                             "rate_ratio": bare / statistics.median(times[v])} for v in VARIANTS}}


def table(report: dict) -> str:
    lines = [f"ingest floor — {report['rows']:,} rows, median of {report['runs']} runs in turn "
             f"(rate ratio: bare over the variant; the ingest target is ≥ 0.70×)",
             f"{'variant':12s} {'median':>8s} {'peak MB':>8s} {'ratio':>7s}   runs"]
    for v, r in report["variants"].items():
        lines.append(f"{v:12s} {r['median_s']:7.2f}s {r['peak_mb']:8.0f} {r['rate_ratio']:6.2f}×   "
                     + " ".join(f"{s:.2f}" for s in r["s"]))
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description="the floor under a load (see the module's docstring)")
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--events", type=int, help="generate (or reuse) the benchmark's seeded log of this size")
    source.add_argument("--csv", type=Path, help="an events CSV to read instead")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--work", default=str(ROOT / "bench" / "results"))
    args = parser.parse_args()
    work = Path(args.work)
    csv = args.csv if args.csv else ensure_log(args.events, args.seed, work)
    report = run(csv.resolve(), work, args.runs)
    text = report["table"] = table(report)
    print(text)
    out = work / f"ingest_floor_{report['rows']}.json"
    out.write_text(json.dumps(report, indent=1))
    print(f"\nwritten to {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
