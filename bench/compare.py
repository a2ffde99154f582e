"""Time the page-level metric functions of this checkout against those of an earlier revision, on the same
database, in interleaved runs: a speed-up claimed for a change is a ratio measured in one sitting.

    python bench/compare.py --db PATH --base REV [--base-db PATH] [--rounds 3] [--runs 2] [--only aarrr,levels]
                            [--timezone TZ]

``--base`` is any git revision; it is checked out into a temporary worktree (removed afterwards). Round by
round, each function runs in a fresh process of each tree — the order of the two trees alternates between
rounds, so a slow spell of a shared host falls on both alike — once untimed (its first reads of the data),
then ``--runs`` times. The report gives, per function, the median of each tree and their ratio (HEAD / base:
below 1.00× is faster). Both trees open the database read-only; a database written by this checkout carries
tables an older revision does not know, which it ignores. ``--base-tree DIR`` compares with a directory
instead of a revision (the tests compare this checkout with itself). ``--timezone`` sets the report time zone
of every function that takes one (default UTC, the dashboard's default; value − cost has none). ``--base-db``
gives the base tree its own database: for a change to what a load stores, the same events as that revision
stored them (``--base-tree .`` with it compares two layouts under one code).
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def _calls(con, tz: str = "UTC") -> dict:
    """The functions timed: what the dashboard's pages call, through APIs every revision of this series has,
    in report time zone ``tz``."""
    from datetime import timedelta

    from bench.engines import STEPS, WINDOW_S
    from metrics import economics, funnel, referral, retention, stages, traffic, value_cost

    ep = economics.EconomicsParams(timezone=tz)
    fp = funnel.FunnelParams(steps=tuple(funnel.Step(s) for s in STEPS), window=timedelta(seconds=WINDOW_S),
                             timezone=tz)
    return {
        "funnel.funnel": lambda: funnel.funnel(con, fp),
        "stages.aarrr": lambda: stages.aarrr(con, stages.AarrrParams(timezone=tz)),
        "stages.revenue_page": lambda: stages.revenue_page(con, stages.AarrrParams(timezone=tz)),
        "economics.campaign_economics": lambda: economics.campaign_economics(con, ep),
        "economics.ltv_curves": lambda: economics.ltv_curves(con, ep),
        "economics.economics_levels": lambda: economics.economics_levels(con, ep),
        "economics.campaign_vs_retention_page": lambda: economics.campaign_vs_retention_page(con, ep),
        "value_cost.score": lambda: value_cost.score(con, value_cost.default_model(con)),
        "referral.referral_page": lambda: referral.referral_page(con, referral.ReferralParams(timezone=tz)),
        "retention.retention": lambda: retention.retention(con, retention.RetentionParams(timezone=tz)),
        "retention.active_users": lambda: retention.active_users(con, None, None, tz),
        "retention.lifecycle": lambda: retention.lifecycle(con, "week", None, tz),
        "traffic.traffic_page": lambda: traffic.traffic_page(con, traffic.TrafficParams(period="week", timezone=tz)),
        "traffic.pv_uv": lambda: traffic.pv_uv(con, traffic.TrafficParams(period="day", timezone=tz)),  # the task
    }


def _worker(tree: str, db: str, name: str, runs: int, tz: str) -> None:
    """In a fresh process: import the metrics of ``tree``, call ``name`` once untimed and ``runs`` times timed;
    print the seconds as one JSON line."""
    sys.path.insert(0, tree)
    import store

    con = store.connect(db, read_only=True)
    call = _calls(con, tz)[name]
    call()
    seconds = []
    for _ in range(runs):
        t = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - t)
    print(json.dumps({"seconds": seconds}))


def _time(tree: str, db: str, name: str, runs: int, tz: str) -> list[float]:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    out = subprocess.run([sys.executable, __file__, "--worker", tree, "--db", db, "--only", name, "--runs", str(runs),
                          "--timezone", tz],
                         cwd=tree, env=env, capture_output=True, text=True)
    if out.returncode != 0:
        raise RuntimeError(f"{name} in {tree} failed:\n{out.stderr[-2000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])["seconds"]


def compare(db: str, base_tree: str, names: list[str], rounds: int, runs: int, tz: str = "UTC",
            base_db: str | None = None) -> dict:
    times = {n: {"base": [], "head": []} for n in names}
    for r in range(rounds):
        for name in names:
            for side in (("base", "head") if r % 2 == 0 else ("head", "base")):
                tree, tree_db = (base_tree, base_db or db) if side == "base" else (str(ROOT), db)
                times[name][side] += _time(tree, tree_db, name, runs, tz)
    return {n: {**t, "base_median": statistics.median(t["base"]), "head_median": statistics.median(t["head"]),
                "ratio": statistics.median(t["head"]) / statistics.median(t["base"])} for n, t in times.items()}


@contextmanager
def base_checkout(base: str | None, base_tree: str | None, tmp: str):
    """Yield ``(tree, label)`` for the base side: ``base_tree`` as it is, or revision ``base`` checked out into a
    git worktree under ``tmp``, removed on exit."""
    if not base:
        yield base_tree, base_tree
        return
    tree = os.path.join(tmp, "tree")
    subprocess.run(["git", "worktree", "add", "--detach", tree, base], cwd=ROOT, check=True, capture_output=True)
    try:
        yield tree, base
    finally:
        subprocess.run(["git", "worktree", "remove", "--force", tree], cwd=ROOT, capture_output=True)


def report(result: dict, base: str, events: int, tz: str = "UTC") -> str:
    zone = "" if tz == "UTC" else f", report time zone {tz}"
    lines = [f"HEAD vs {base} — {events:,} events{zone}, interleaved, medians", f"{'function':<40}{'base':>9}{'HEAD':>9}"
             f"{'HEAD/base':>11}"]
    for name, r in result.items():
        lines.append(f"{name:<40}{r['base_median']:>8.3f}s{r['head_median']:>8.3f}s{r['ratio']:>10.2f}×")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", required=True)
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--base", help="a git revision to compare with")
    group.add_argument("--base-tree", help="a directory holding another checkout")
    parser.add_argument("--base-db", default=None, help="the database the base tree reads (default: --db)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--runs", type=int, default=2)
    parser.add_argument("--only", default="", help="comma-separated function names (or parts of them)")
    parser.add_argument("--timezone", default="UTC", help="the report time zone of the timed functions")
    parser.add_argument("--json", default=None)
    parser.add_argument("--worker", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return _worker(args.worker, args.db, args.only, args.runs, args.timezone)
    if not (args.base or args.base_tree):
        parser.error("give --base REV or --base-tree DIR")
    sys.path.insert(0, str(ROOT))
    import store

    con = store.connect(args.db, read_only=True)
    events = con.execute("SELECT count(*) FROM events").fetchone()[0]
    names = [n for n in _calls(con) if not args.only or any(p.strip() and p.strip() in n for p in args.only.split(","))]
    con.close()
    with tempfile.TemporaryDirectory(prefix="opsfunnel-base-") as tmp, \
            base_checkout(args.base, args.base_tree, tmp) as (base_tree, label):
        result = compare(os.path.abspath(args.db), os.path.abspath(base_tree), names, args.rounds, args.runs,
                         args.timezone, os.path.abspath(args.base_db) if args.base_db else None)
    if args.base_db:
        label += f" on {args.base_db}"
    print(report(result, label, events, args.timezone))
    if args.json:
        Path(args.json).write_text(json.dumps({"base": label, "base_db": args.base_db, "events": events,
                                               "timezone": args.timezone, "result": result}, indent=1))


if __name__ == "__main__":
    main()
