"""Crash safety: the command-line loader killed with SIGKILL at random moments of a large load.

A load is one DuckDB transaction (see ``store/load.py``), and DuckDB's write-ahead log only
replays committed transactions, so after a kill at any moment the database must open and hold
exactly the rows it held before the load, or exactly the rows of a finished load — never a part.

The test builds a 600,000-row log with ``bench.synth.write_csv``, loads a 2,000-row log as the
"before" state, measures one uninterrupted load of the big file into a copy (the "after" state),
then 20 times copies the before database, starts ``python -m store load big.csv --db COPY --quiet``,
kills it after a seeded random delay (14 times between 0.2 s and the measured load time, 6 times
around its end, where the commit is), and compares
``(events, users, loads, rejected_rows, stage_map, data_version)`` and a checksum of the events with
the two states. It also checks that enough kills landed while the loader was still running, so the
test can fail (a kill that finds the load finished lowers the estimate of its duration, so a
first measurement slowed by a busy machine does not send the later kills past the end).
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
from metrics import traffic
from store.load import USER_DAY_SQL

REPO = Path(__file__).resolve().parents[1]
BIG_ROWS = 600_000
KILLS = 20
SCHEMA_TABLES = ("currency_rates", "events", "events_by_name", "loads", "rejected_rows", "revenue_events",
                 "schema_version", "settings", "spend", "stage_map", "survey", "traffic_pageviews", "traffic_sessions",
                 "user_days", "user_events", "user_hours", "users")

# the days of life recomputed from the events (the user_days rollup must equal it)
DAYS = f"SELECT DISTINCT e.user_key, {USER_DAY_SQL} FROM events e JOIN users u ON u.user_key = e.user_key"

# the events with a revenue value (the revenue_events rollup must equal it)
REVENUE = "SELECT user_key, event_time, revenue FROM events WHERE revenue IS NOT NULL"

# the hours with an event of each user, with the user's previous and next (the user_hours rollup must equal it)
HOURS = """SELECT user_key, hour_start, LAG(hour_start) OVER w, LEAD(hour_start) OVER w
           FROM (SELECT DISTINCT user_key, date_trunc('hour', event_time) AS hour_start FROM events)
           WINDOW w AS (PARTITION BY user_key ORDER BY hour_start)"""

pytestmark = pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="needs POSIX SIGKILL")


def state(db: Path) -> tuple:
    """The facts a partial load would break: row counts of every written table, the data version,
    an order-independent checksum of the events' ids and users and of the per-user event rollup, how
    many rows of the rollups (user_events, events_by_name, user_days, revenue_events, user_hours) disagree
    with the events, and how many rows of the session rollups (traffic_sessions, traffic_pageviews) disagree
    with the sessions derived from the events."""
    con = store.connect(db)
    sessions, s_params = traffic.stored_sessions_sql()
    with_sql, w_params = traffic._with_sql(traffic.STORED)
    try:
        sessions_off = con.execute(f"""
            WITH r AS (SELECT * FROM traffic_sessions), a AS ({sessions})
            SELECT (SELECT count(*) FROM (SELECT * FROM r EXCEPT ALL SELECT * FROM a))
                 + (SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM r))""", s_params).fetchone()[0]
        pageviews_off = con.execute(f"""{with_sql},
            a AS (SELECT user_key, event_time, page, s_channel, s_campaign FROM sev WHERE is_pv = 1),
            r AS (SELECT * FROM traffic_pageviews)
            SELECT (SELECT count(*) FROM (SELECT * FROM r EXCEPT ALL SELECT * FROM a))
                 + (SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM r))""", w_params).fetchone()[0]
        row = con.execute("""
            SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM users), (SELECT count(*) FROM loads),
                   (SELECT count(*) FROM rejected_rows), (SELECT count(*) FROM stage_map),
                   (SELECT coalesce(sum(hash(event_id, user_key)), 0) FROM events),
                   (SELECT count(*) FROM events e LEFT JOIN users u USING (user_key) WHERE u.user_id IS NULL),
                   (SELECT coalesce(sum(hash(user_key, event_name, events, first_time, last_time)), 0)
                    FROM user_events),
                   (WITH r AS (SELECT user_key, event_name, events, first_time, last_time FROM user_events),
                         a AS (SELECT user_key, event_name, count(*), min(event_time), max(event_time)
                               FROM events GROUP BY user_key, event_name)
                    SELECT (SELECT count(*) FROM (SELECT * FROM r EXCEPT ALL SELECT * FROM a))
                         + (SELECT count(*) FROM (SELECT * FROM a EXCEPT ALL SELECT * FROM r))
                         + (SELECT count(*) FROM (SELECT event_name, user_key, event_time FROM events_by_name
                                                  EXCEPT ALL SELECT event_name, user_key, event_time FROM events))
                         + (SELECT count(*) FROM (SELECT event_name, user_key, event_time FROM events
                                                  EXCEPT ALL SELECT event_name, user_key, event_time FROM events_by_name))
                         + (SELECT count(*) FROM (SELECT user_key, day FROM user_days EXCEPT ALL """ + DAYS + """))
                         + (SELECT count(*) FROM (""" + DAYS + """ EXCEPT ALL SELECT user_key, day FROM user_days))
                         + (SELECT count(*) FROM (SELECT user_key, event_time, revenue FROM revenue_events
                                                  EXCEPT ALL """ + REVENUE + """))
                         + (SELECT count(*) FROM (""" + REVENUE + """
                                                  EXCEPT ALL SELECT user_key, event_time, revenue FROM revenue_events))
                         + (SELECT count(*) FROM (SELECT user_key, hour_start, prev_hour, next_hour FROM user_hours
                                                  EXCEPT ALL """ + HOURS + """))
                         + (SELECT count(*) FROM (""" + HOURS + """
                                                  EXCEPT ALL SELECT user_key, hour_start, prev_hour, next_hour FROM user_hours)))
        """).fetchone()
        # no staging table survives: the tables are exactly the schema's, none temporary
        tables = tuple(r[0] for r in con.execute(
            "SELECT table_name || CASE WHEN temporary THEN ' (temp)' ELSE '' END FROM duckdb_tables() ORDER BY 1"
        ).fetchall())
        return (*row, store.data_version(con), tables, sessions_off + pageviews_off,
                con.execute("SELECT count(*) FROM traffic_sessions").fetchone()[0])
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
    assert before[6] == after[6] == 0                                  # no event without its user
    assert before[8] == after[8] == 0                                  # the rollups agree with the events
    assert before[10] == after[10] == SCHEMA_TABLES
    assert before[11] == after[11] == 0                                # the session rollups agree with the events
    assert 0 < before[12] < after[12]

    rnd = random.Random(20261122)
    outcomes, mid_load = [], 0
    for i in range(KILLS):
        db = tmp_path / f"kill{i}.duckdb"
        shutil.copy(before_db, db)
        # 14 kills anywhere in the load, 6 around its end (the commit and the checkpoint after it)
        delay = rnd.uniform(0.2, full) if i < 14 else rnd.uniform(0.85 * full, 1.05 * full)
        proc = loader(big, db)
        started = time.perf_counter()
        while (elapsed := time.perf_counter() - started) < delay and proc.poll() is None:
            time.sleep(0.01)
        running = proc.poll() is None
        if running:
            os.kill(proc.pid, signal.SIGKILL)
        else:
            full = min(full, elapsed)     # it finished sooner than measured: aim the next kills earlier
        proc.wait(timeout=60)
        got = state(db)
        assert got in (before, after), f"kill {i} after {delay:.2f} s left a partial state {got}"
        outcomes.append(got == after)
        mid_load += running and got == before
        for leftover in tmp_path.glob(f"kill{i}.duckdb*"):   # keep the disk use flat
            leftover.unlink() if leftover.is_file() else shutil.rmtree(leftover)
    print(f"load {full:.1f} s; {mid_load} of {KILLS} kills mid-load, {sum(outcomes)} found the finished load")
    # the kills must have hit the load while it was running, or the test proves nothing
    assert mid_load >= 5, (mid_load, outcomes, full)
