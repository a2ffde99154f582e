"""``python -m store load``: exit codes, output, and the database it writes (run as a subprocess)."""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import store

ROOT = Path(__file__).resolve().parent.parent


def run(*args, env_db=None):
    env = dict(os.environ)
    env.pop("OPSFUNNEL_DB", None)
    if env_db:
        env["OPSFUNNEL_DB"] = str(env_db)
    return subprocess.run([sys.executable, "-m", "store", *map(str, args)], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=120)


def test_load_events_with_map_and_timezone(tmp_path):
    db = tmp_path / "x.duckdb"
    csv = tmp_path / "e.csv"
    csv.write_text("member,act,when,channel\nm1,signup,2024-01-01 08:00,Ads\nm2,view,oops,\nm3,view,2024-01-02 08:00,\n",
                   encoding="utf-8")
    p = run("load", csv, "--kind", "events", "--map", "user_id=member", "--map", "event_name=act",
            "--map", "event_time=when", "--timezone", "Asia/Shanghai", "--db", db)
    assert p.returncode == 0, p.stderr
    assert p.stdout.startswith("e.csv: 3 rows read, 2 loaded, 1 rejected in ")
    assert "  line 3: event_time 'oops' is not a date-time" in p.stdout
    assert "Loading " in p.stderr
    con = store.connect(db, read_only=True)
    # 08:00 Shanghai = 00:00 UTC
    assert con.execute("SELECT user_id, event_time::VARCHAR, channel FROM events ORDER BY 1").fetchall() == [
        ("m1", "2024-01-01 00:00:00", "ads"), ("m3", "2024-01-02 00:00:00", None)]
    con.close()


def test_reload_reports_duplicates_and_env_db(tmp_path):
    db = tmp_path / "env.duckdb"
    csv = tmp_path / "e.csv"
    csv.write_text("user_id,event,time\nu1,a,2024-01-01\n", encoding="utf-8")
    assert run("load", csv, env_db=db).returncode == 0
    p = run("load", csv, env_db=db)
    assert p.returncode == 0
    assert p.stdout.startswith("e.csv: 1 rows read, 0 loaded, 1 duplicates skipped, 0 rejected in ")
    assert "rejected rows" not in p.stdout


def test_spend_and_survey_kinds(tmp_path):
    db = tmp_path / "x.duckdb"
    spend = tmp_path / "s.csv"
    spend.write_text("date,channel,spend\n2024-01-01,ads,10\n", encoding="utf-8")
    survey = tmp_path / "v.csv"
    survey.write_text("segment,product,dimension,kind,score\na,ours,trust,cost,3\n", encoding="utf-8")
    assert run("load", spend, "--kind", "spend", "--db", db).stdout.startswith("s.csv: 1 rows read, 1 loaded")
    assert run("load", survey, "--kind", "survey", "--db", db).stdout.startswith("v.csv: 1 rows read, 1 loaded")
    con = store.connect(db, read_only=True)
    assert con.execute("SELECT (SELECT count(*) FROM spend), (SELECT count(*) FROM survey)").fetchone() == (1, 1)
    con.close()


def test_refused_file_exits_2_and_names_file_and_columns(tmp_path):
    db = tmp_path / "x.duckdb"
    csv = tmp_path / "bad.csv"
    csv.write_text("user,page\nu1,/\n", encoding="utf-8")
    p = run("load", csv, "--db", db)
    assert p.returncode == 2
    assert p.stdout == ""
    assert "error: bad.csv: no column for event_name, event_time (required for events). " \
           "Columns found: user, page." in p.stderr
    assert "Traceback" not in p.stderr
    con = store.connect(db, read_only=True)
    assert con.execute("SELECT count(*) FROM loads").fetchone()[0] == 0
    con.close()


def test_bad_arguments_exit_2(tmp_path):
    db = tmp_path / "x.duckdb"
    csv = tmp_path / "e.csv"
    csv.write_text("user_id,event,time\nu1,a,2024-01-01\n", encoding="utf-8")
    p = run("load", csv, "--map", "user_id", "--db", db)
    assert (p.returncode, p.stderr.strip()) == (2, "error: --map takes canonical=header, got 'user_id'.")
    p = run("load", csv, "--timezone", "Nowhere/Land", "--db", db)
    assert p.returncode == 2 and "Unknown time zone 'Nowhere/Land'" in p.stderr
    p = run("load", tmp_path / "missing.csv", "--db", db)
    assert (p.returncode, p.stderr.strip().splitlines()[-1]) == (2, "error: missing.csv: no such file.")
    p = run("load", csv, "--kind", "clicks", "--db", db)   # argparse's own error
    assert p.returncode == 2 and "invalid choice: 'clicks'" in p.stderr


def test_unusable_database_exits_1(tmp_path):
    csv = tmp_path / "e.csv"
    csv.write_text("user_id,event,time\nu1,a,2024-01-01\n", encoding="utf-8")
    not_a_db = tmp_path / "x.duckdb"
    not_a_db.write_bytes(b"this is not a database file" * 100)
    p = run("load", csv, "--db", not_a_db)
    assert p.returncode == 1
    assert p.stderr.strip().splitlines()[-1].startswith("error: the database could not be used (")
    assert "Traceback" not in p.stderr


def test_pageview_events_shows_and_sets_the_names_the_sessions_are_kept_for(tmp_path):
    db = tmp_path / "pv.duckdb"
    csv = tmp_path / "e.csv"
    csv.write_text("user_id,event_name,event_time,page\n"
                   "u1,screen_view,2024-01-01 08:00,/home\nu1,screen_view,2024-01-01 08:10,/a\n"
                   "u1,page_view,2024-01-01 08:20,/b\nu2,screen_view,2024-01-01 09:00,/home\n", encoding="utf-8")
    assert run("load", csv, "--db", db).returncode == 0
    p = run("pageview-events", "--db", db)
    assert (p.returncode, p.stdout) == (0, "page_view, pageview, $pageview\n"), p.stderr
    p = run("pageview-events", "screen_view", "--db", db)
    assert (p.returncode, p.stdout) == (0, "screen_view\n"), p.stderr
    con = store.connect(db, read_only=True)
    # two sessions (one per user, no gap over 30 minutes): u1 enters on /home with 2 page views, u2 bounces
    assert con.execute("SELECT entry_page, pageviews FROM traffic_sessions ORDER BY user_key").fetchall() == [
        ("/home", 2), ("/home", 1)]
    con.close()
    p = run("pageview-events", " ", "--db", db)
    assert p.returncode == 2 and "Name at least one page-view event" in p.stderr
    assert run("pageview-events", "--db", db).stdout == "screen_view\n"
