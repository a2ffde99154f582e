"""The benchmark harness works and its engines agree, on a log small enough for the suite.

No timing is asserted here: speed is measured by ``bench/run.py``, as ratios within one run.
"""
from __future__ import annotations

import pytest

from bench import run as bench_run
from bench import synth


def test_synthetic_log_is_seeded_and_exact(tmp_path):
    a, b, c = tmp_path / "a.csv", tmp_path / "b.csv", tmp_path / "c.csv"
    synth.write_csv(5_000, a, seed=3)
    synth.write_csv(5_000, b, seed=3)
    synth.write_csv(5_000, c, seed=4)
    assert a.read_bytes() == b.read_bytes()
    assert a.read_bytes() != c.read_bytes()
    lines = a.read_text().splitlines()
    assert len(lines) == 5_001
    assert lines[0] == '"' + '","'.join(synth.HEADERS) + '"'


def test_a_measured_child_has_its_own_peak_memory_and_all_its_output(tmp_path):
    """``bench.measure.run_child`` gives a child's own peak memory: a child that writes 300 MB holds at least that,
    one that allocates nothing a small fraction of it, and the size of the process measuring them (the test
    runner's, over 100 MB: a child started directly would have it as its peak) is in neither. Output bigger than a
    pipe's buffer on both streams at once does not block it, and a failure keeps the child's last words."""
    import sys

    from bench.measure import run_child

    here = int(open("/proc/self/status").read().split("VmHWM:")[1].split()[0]) / 1024
    big = run_child([sys.executable, "-c", "b = b'x' * 300_000_000; print(len(b))"])
    small = run_child([sys.executable, "-c", "print(1)"])
    assert big.returncode == small.returncode == 0 and big.out.strip() == "300000000"
    assert 300_000_000 / 2**20 <= big.peak_mb < 300_000_000 / 2**20 + 100
    assert 0 < small.peak_mb < 50 and here > 60      # (were the runner smaller, the last check would prove nothing)
    loud = run_child([sys.executable, "-c", "import sys\nfor i in range(20_000):\n    print('o' * 50)\n"
                      "    print('e' * 50, file=sys.stderr)"], cwd=tmp_path)
    assert loud.out.count("\n") == loud.err.count("\n") == 20_000 and loud.wall_s > 0
    failed = run_child([sys.executable, "-c", "import sys; sys.exit('no such store')"])
    assert failed.returncode == 1 and failed.last_line() == "no such store"
    with pytest.raises(RuntimeError, match="no such store"):
        failed.checked()


@pytest.fixture(scope="module")
def report(tmp_path_factory):
    # pages in one process (not one per page) to keep the suite quick
    return bench_run.run(30_000, runs=1, engines=["ours", "chdb", "polars", "pandas"], seed=11,
                         work=tmp_path_factory.mktemp("bench"), pages_isolated=False)


def test_every_engine_agrees_on_every_task(report):
    assert set(report["engines"]) == {"ours", "chdb", "polars", "pandas"}
    assert {t: a["disagree"] for t, a in report["agreement"].items()} == {"funnel": [], "retention": [], "pv_uv": []}


def test_results_are_not_trivially_equal(report):
    # Agreement would be meaningless on empty answers: the log must exercise every task.
    ours = report["engines"]["ours"]["tasks"]
    funnel = ours["funnel"]["result"]
    assert len(funnel) == 4 and funnel[0] > funnel[1] > funnel[2] > funnel[3] > 0
    assert len(ours["retention"]["result"]) == 12 * 13 // 2          # 12 cohorts, censored triangle
    assert len(ours["pv_uv"]["result"]) >= 100                       # days with page views


def test_report_table_names_ratios_and_ingest(report):
    text = bench_run.table(report)
    assert "ours/ref" in text and "ingest:" in text and "engines agree on every task" in text
    assert "interleaved runs after a warm-up" in text and "funnel 1st" in text


def test_engines_run_interleaved_after_a_warm_up(report):
    """Every engine ran each task once as a warm-up (``first_s``, outside the medians) and ``runs`` times after it,
    and reports its own peak memory."""
    for engine, result in report["engines"].items():
        assert result["peak_mb"] > 50 and result["setup_s"] > 0, engine
        for task, slot in result["tasks"].items():
            assert len(slot["times"]) == report["runs"] and slot["first_s"] > 0, (engine, task)


def test_a_run_disagreeing_with_another_voids_the_task():
    fake = {"engines": {"ours": {"tasks": {"funnel": {"result": [3, 2]}}},
                        "chdb": {"tasks": {"funnel": {"result": None}}},        # its runs disagreed
                        "polars": {"tasks": {"funnel": {"result": [3, 1]}}}}}
    assert bench_run.check_agreement(fake, ["funnel"])["funnel"]["disagree"] == ["chdb", "polars"]


def test_pages_step_times_every_page_of_the_navigation(report):
    from bench import pages

    nav = pages.app_pages()
    assert len(nav) == 11 and {"Overview", "Traffic", "Funnel", "Retention", "Data"} <= {t for _, t in nav}
    timed = report["pages"]["pages"]
    assert [(path, r["title"]) for path, r in timed.items()] == nav
    for path, r in timed.items():
        assert len(r["cold_s"]) == len(r["warm_s"]) == len(r["metric_s"]) == 1, path
        assert all(t > 0 for t in r["cold_s"] + r["warm_s"] + [r["first_s"]]), path
        assert r["peak_mb"] > 0, path
    # the pages that compute metrics made cached metric calls on their cold run
    assert timed["app_pages/traffic.py"]["metric_calls"] >= 1
    assert timed["app_pages/campaign_vs_retention.py"]["metric_calls"] >= 1
    # spend and survey rows were added for the economics pages; the campaign-vs-retention table was timed
    assert report["pages"]["events"] == 30_000 and "spend" in report["pages"]["prepared"]
    assert report["pages"]["campaign_vs_retention"]["rows"] > 0
    text = bench_run.table(report)
    assert "dashboard pages" in text and "campaign vs retention table" in text


def test_pages_step_times_pages_with_channels_picked(report):
    """``--channels``: the pages run with those channels picked in the sidebar (the step refuses to time a page
    whose filters did not take them)."""
    from bench import pages

    picked = pages.run(report["pages"]["db"], runs=1, pages=["traffic", "funnel"], prepare_data=False,
                       isolated=False, channels=("wechat", "douyin"))
    assert picked["channels"] == ["wechat", "douyin"]
    assert set(picked["pages"]) == {"app_pages/traffic.py", "app_pages/funnel.py"}
    assert all(r["metric_calls"] >= 1 for r in picked["pages"].values())
    assert "channels wechat, douyin picked" in pages.table(picked)
    with pytest.raises(RuntimeError, match="did not take the channels"):
        pages.run(report["pages"]["db"], runs=1, pages=["traffic"], prepare_data=False, isolated=False,
                  channels=("no-such-channel",))


def test_pages_step_times_pages_with_the_last_days_picked(report):
    """``--days N``: the pages run with the last N days of the data (UTC) picked in the sidebar's date range; a
    range the sidebar would not take as it is (here one starting before the data, which it clamps) is refused."""
    from datetime import timedelta

    import duckdb

    from bench import pages

    db = report["pages"]["db"]
    with duckdb.connect(db, read_only=True) as con:
        con.execute("SET TimeZone = 'UTC'")
        last = con.execute("SELECT CAST(max(event_time) AS DATE) FROM events").fetchone()[0]
    picked = pages.run(db, runs=1, pages=["traffic", "/retention.py"], prepare_data=False, isolated=False, days=7)
    assert picked["days"] == 7 and set(picked["pages"]) == {"app_pages/traffic.py", "app_pages/retention.py"}
    for r in picked["pages"].values():
        assert r["dates"] == [str(last - timedelta(days=6)), str(last)]
        assert r["metric_calls"] >= 1
    assert "the last 7 days picked" in pages.table(picked)
    with pytest.raises(RuntimeError, match="did not take the dates"):
        pages.run(db, runs=1, pages=["traffic"], prepare_data=False, isolated=False, days=100_000)


def test_compare_times_both_trees_interleaved(report):
    """``bench/compare.py`` runs each function in both trees and reports their medians and ratio (here this
    checkout against itself, through ``--base-tree``: no git needed), in the report time zone asked for."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    from bench import compare

    root = Path(compare.__file__).resolve().parent.parent
    out = Path(report["pages"]["db"]).with_suffix(".compare.json")
    done = subprocess.run([sys.executable, str(root / "bench" / "compare.py"), "--db", report["pages"]["db"],
                           "--base-tree", str(root), "--rounds", "2", "--runs", "1", "--only", "aarrr,active_users",
                           "--timezone", "Asia/Shanghai", "--json", str(out)], capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    written = json.loads(out.read_text())
    result = written["result"]
    assert set(result) == {"stages.aarrr", "retention.active_users"} and written["timezone"] == "Asia/Shanghai"
    for r in result.values():
        assert len(r["base"]) == len(r["head"]) == 2 and all(t > 0 for t in r["base"] + r["head"])
        assert r["ratio"] == r["head_median"] / r["base_median"]
    assert "HEAD/base" in done.stdout and "stages.aarrr" in done.stdout and "30,000 events, report time zone Asia/Shanghai" in done.stdout


def test_later_load_times_both_trees_on_fresh_copies(report, tmp_path):
    """``bench/later_load.py`` draws a day's file from the generated log (seeded, times moved later) and loads it
    into a fresh copy of the store in both trees, alternating (here this checkout against itself)."""
    import json
    import subprocess
    import sys
    from pathlib import Path

    import duckdb

    from bench import later_load

    db = report["pages"]["db"]
    log = next(Path(db).parent.glob("events_30000_*.csv"))
    # the sample: 2,000 rows of the log, each 60 days later (same instant in UTC), nothing else changed
    day = tmp_path / "day.csv"
    assert later_load.sample_file(str(log), str(day), 2_000, 60) == 2_000
    con = duckdb.connect()
    con.execute("SET TimeZone = 'UTC'")
    cols = [c for c in con.execute(f"DESCRIBE SELECT * FROM read_csv('{log}', all_varchar = true)").fetchall()]
    names = [c[0] for c in cols if c[0] != "timestamp"]
    unmatched = con.execute(f"""
        SELECT count(*) FROM read_csv('{day}', all_varchar = true) d
        WHERE NOT EXISTS (SELECT 1 FROM read_csv('{log}', all_varchar = true) l
                          WHERE {' AND '.join(f'l."{n}" IS NOT DISTINCT FROM d."{n}"' for n in names)}
                            AND CAST(l.timestamp AS TIMESTAMPTZ) + INTERVAL 60 DAY = CAST(d.timestamp AS TIMESTAMPTZ))
    """).fetchone()[0]
    assert unmatched == 0
    assert later_load.sample_file(str(log), str(tmp_path / "again.csv"), 2_000, 60) == 2_000
    assert (tmp_path / "again.csv").read_bytes() == day.read_bytes()

    root = Path(later_load.__file__).resolve().parent.parent
    out = tmp_path / "later.json"
    done = subprocess.run([sys.executable, str(root / "bench" / "later_load.py"), "--db", db, "--base-tree", str(root),
                           "--file", str(day), "--rounds", "2", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    written = json.loads(out.read_text())
    r = written["result"]
    assert written["rows"] == 2_000 and written["events"] == report["pages"]["events"]
    assert len(r["base"]) == len(r["head"]) == 2 and all(t > 0 for t in r["base"] + r["head"])
    assert r["added"] == {"base": [2_000, 2_000], "head": [2_000, 2_000]}   # every run met the store as it was
    # each run's peak memory: a Python process with DuckDB loaded holds tens of MB, a 2,000-row load far from a GB
    assert all(30 < mb < 1_000 for mb in r["peak_mb"]["base"] + r["peak_mb"]["head"]), r["peak_mb"]
    assert len(r["peak_mb"]["base"]) == len(r["peak_mb"]["head"]) == 2 and "peak memory" in done.stdout
    assert r["failed"] == {"base": [], "head": []}
    assert r["ratio"] == r["head_median"] / r["base_median"]
    assert "a later load of 2,000 rows into a store of 30,000 events" in done.stdout
    # a base whose load fails (here a directory without the store) is reported, and HEAD still timed
    empty = tmp_path / "empty"
    empty.mkdir()
    done = subprocess.run([sys.executable, str(root / "bench" / "later_load.py"), "--db", db, "--base-tree", str(empty),
                           "--file", str(day), "--rounds", "1", "--json", str(out)],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    r = json.loads(out.read_text())["result"]
    assert r["base"] == [] and len(r["failed"]["base"]) == 1 and "No module named" in r["failed"]["base"][0]
    assert r["peak_mb"]["base"] == [] and len(r["peak_mb"]["head"]) == 1
    assert r["added"]["head"] == [2_000] and r["ratio"] is None and r["base_median"] is None
    assert "failed" in done.stdout and f"{empty} failed 1 of 1 runs: " in done.stdout


def test_the_ingest_floor_reads_every_row_three_ways(tmp_path, monkeypatch):
    """``bench/ingest_floor.py`` times the bare read, the typed read and the typed read with ids over the same
    rows: the typed read parses the time and the amount (found by the load's own header mapping), the ids are one
    MD5 per row, and a variant that loses rows voids the report."""
    import duckdb

    from bench import ingest_floor

    csv = tmp_path / "log.csv"
    synth.write_csv(5_000, csv, seed=5)
    sql = ingest_floor.statements(csv)
    con = duckdb.connect()
    con.execute(sql["typed+ids"])
    types = dict(con.execute("SELECT column_name, column_type FROM (DESCRIBE t)").fetchall())
    assert types["timestamp"] == "TIMESTAMP WITH TIME ZONE" and types["amount"] == "DOUBLE"
    assert types["distinct_id"] == types["event_id"] == "VARCHAR"
    ids, distinct, width = con.execute("SELECT count(*), count(DISTINCT event_id), min(length(event_id)) FROM t").fetchone()
    assert (ids, distinct, width) == (5_000, 5_000, 32)

    report = ingest_floor.run(csv, tmp_path / "work", runs=1)
    assert report["rows"] == 5_000 and list(report["variants"]) == ["bare", "typed", "typed+ids"]
    assert report["variants"]["bare"]["rate_ratio"] == 1.0
    assert all(v["median_s"] > 0 and v["peak_mb"] > 0 for v in report["variants"].values())
    assert "typed+ids" in ingest_floor.table(report)

    short = dict(sql, typed=sql["typed"] + " LIMIT 4999")
    monkeypatch.setattr(ingest_floor, "statements", lambda _csv: short)
    with pytest.raises(RuntimeError, match="different rows"):
        ingest_floor.run(csv, tmp_path / "work", runs=1)
