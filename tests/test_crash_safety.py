"""Crash safety: the command-line loader killed with SIGKILL at random moments of a large load.

A load is one DuckDB transaction (see ``store/load.py``), and DuckDB's write-ahead log only
replays committed transactions, so after a kill at any moment the database must open and hold
exactly the rows it held before the load, or exactly the rows of a finished load — never a part.

The test builds a 1-million-row log with ``bench.synth.write_csv``, loads a 2,000-row log as the
"before" state, measures one uninterrupted load of the big file into a copy (the "after" state),
then 20 times copies the before database, starts ``python -m store load big.csv --db COPY --quiet``,
kills it after a seeded random delay between 0.2 s and the measured load time, and compares
``(events, users, loads, rejected_rows, stage_map, data_version)`` and a checksum of the events with
the two states. It also checks that enough kills landed while the loader was still running, so the
test can fail.
"""
from __future__ import annotations

import os
import random
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import store
from bench.synth import write_csv

REPO = Path(__file__).resolve().parents[1]
BIG_ROWS = 1_000_000
KILLS = 20

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def state(db: Path) -> tuple:
    """The facts a partial load would break: row counts of every written table, the data version,
    and an order-independent checksum of the events' ids and users."""
    con = store.connect(db)
    try:
        row = con.execute("""
            SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM users), (SELECT count(*) FROM loads),
                   (SELECT count(*) FROM rejected_rows), (SELECT count(*) FROM stage_map),
                   (SELECT coalesce(sum(hash(event_id, user_key)), 0) FROM events),
                   (SELECT count(*) FROM events e LEFT JOIN users u USING (user_key) WHERE u.user_id IS NULL)
        """).fetchone()
        temp = con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0]
        return (*row, store.data_version(con), temp)
    finally:
        con.close()


def loader(big: Path, db: Path) -> subprocess.Popen:
    env = dict(os.environ, PYTHONPATH=str(REPO))
    return subprocess.Popen([sys.executable, "-m", "store", "load", str(big), "--db", str(db), "--quiet"],
                            cwd=REPO, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def test_sigkill_during_a_large_load_leaves_before_or_after(tmp_path):
    small, big = tmp_path / "small.csv", tmp_path / "big.csv"
    write_csv(2_000, small, seed=3)
    write_csv(BIG_ROWS, big, seed=11)

    before_db = tmp_path / "before.duckdb"
    con = store.connect(before_db)
    report = store.load_events(con, str(small))
    con.close()
    assert report.loaded == 2_000
    before = state(before_db)

    after_db = tmp_path / "after.duckdb"
    shutil.copy(before_db, after_db)
    started = time.perf_counter()
    proc = loader(big, after_db)
    assert proc.wait(timeout=300) == 0
    full = time.perf_counter() - started
    after = state(after_db)
    # the big log's users are u0000000... like the small one's, so the counts only tell the
    # states apart through events and loads: 2,000 + 1,000,000 events (ids differ by seed), 2 loads
    assert before[0] == 2_000 and after[0] == 2_000 + BIG_ROWS
    assert (before[2], after[2]) == (1, 2)
    assert before[6] == after[6] == 0 and before[8] == after[8] == 0   # no orphan events, no temp tables

    rnd = random.Random(20261122)
    outcomes, mid_load = [], 0
    for i in range(KILLS):
        db = tmp_path / f"kill{i}.duckdb"
        shutil.copy(before_db, db)
        delay = rnd.uniform(0.2, full)
        proc = loader(big, db)
        time.sleep(delay)
        running = proc.poll() is None
        if running:
            os.kill(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        got = state(db)
        assert got in (before, after), f"kill {i} after {delay:.2f} s left a partial state {got}"
        outcomes.append(got == after)
        mid_load += running and got == before
        for leftover in tmp_path.glob(f"kill{i}.duckdb*"):   # keep the disk use flat
            leftover.unlink() if leftover.is_file() else shutil.rmtree(leftover)
    print(f"load {full:.1f} s; {mid_load} of {KILLS} kills mid-load, {sum(outcomes)} found the finished load")
    # the kills must have hit the load while it was running, or the test proves nothing
    assert mid_load >= KILLS // 4, (mid_load, outcomes, full)
