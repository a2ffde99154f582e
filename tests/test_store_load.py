"""Load semantics: the canonical DataFrame, duplicates and reloads, one transaction per load (a
failure injected part-way leaves every table unchanged), the users table kept incrementally equal
to a from-scratch recomputation, the data version, and previews that write nothing."""
from __future__ import annotations

import datetime as dt
import json

import pandas as pd
import pytest

import store
from store import load as load_module
from tests.conftest import as_older_schema

# every table of the schema, so that a table a later change adds is compared too
TABLES_SQL = "SELECT table_name FROM duckdb_tables() WHERE NOT temporary ORDER BY table_name"


def dump(con) -> dict[str, list[tuple]]:
    """Every row of every table of the schema, sorted, as plain tuples (loaded_at columns included)."""
    return {t: sorted(con.execute(f"SELECT * FROM {t}").fetchall(), key=repr)
            for (t,) in con.execute(TABLES_SQL).fetchall()}


def write(tmp_path, name: str, text: str) -> str:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return str(path)


def frame(rows) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "event_name", "event_time", "channel", "campaign"])


# --------------------------------------------------------------------------------------------
# The canonical DataFrame
# --------------------------------------------------------------------------------------------

def test_canonical_dataframe_loads_without_mapping(con):
    df = pd.DataFrame({
        "user_id": ["u1", "u1", "u2"],
        "event_name": ["signup", "purchase", "view"],
        "event_time": ["2024-01-01 10:00", "2024-01-02 10:00", "2024-01-01 12:00"],
        "session_id": ["s1", "s2", None],
        "channel": [" WeChat", None, "Douyin"],
        "campaign": ["Spring", None, ""],
        "page": ["/", "/pay", None],
        "revenue": [None, 19.9, None],
        "properties": [{"plan": "pro", "seats": 3}, '{"sku": "A"}', None],
    })
    report = store.load_events(con, df)
    assert (report.rows_read, report.loaded, report.rejected, report.duplicates) == (3, 3, 0, 0)
    assert report.mapping == {c: c for c in ["user_id", "event_name", "event_time", "session_id", "channel",
                                            "campaign", "page", "revenue"]}
    got = con.execute("""SELECT user_key, user_id, event_name, event_time, session_id, channel, campaign, page,
                                revenue, properties, source_file FROM events ORDER BY event_time""").fetchall()
    # user keys are assigned in first_seen order: u1 (Jan 1 10:00) = 1, u2 (Jan 1 12:00) = 2
    assert got == [
        (1, "u1", "signup", dt.datetime(2024, 1, 1, 10), "s1", "wechat", "spring", "/", None,
         '{"plan":"pro","seats":3}', "DataFrame"),
        (2, "u2", "view", dt.datetime(2024, 1, 1, 12), None, "douyin", None, None, None, None, "DataFrame"),
        (1, "u1", "purchase", dt.datetime(2024, 1, 2, 10), "s2", None, None, "/pay", 19.9, '{"sku":"A"}', "DataFrame"),
    ]
    assert con.execute("SELECT user_key, user_id, first_seen, touch_time, channel, campaign FROM users ORDER BY 1"
                       ).fetchall() == [
        (1, "u1", dt.datetime(2024, 1, 1, 10), dt.datetime(2024, 1, 1, 10), "wechat", "spring"),
        (2, "u2", dt.datetime(2024, 1, 1, 12), dt.datetime(2024, 1, 1, 12), "douyin", None),
    ]
    # new event names get a guessed stage (SPEC §3)
    assert con.execute("SELECT * FROM stage_map ORDER BY 1").fetchall() == [
        ("purchase", "revenue"), ("signup", "acquisition"), ("view", "none")]


def test_dataframe_rejects_report_row_position(con):
    df = pd.DataFrame({"user_id": ["u1", None, "u3"], "event_name": ["a", "b", "c"],
                       "event_time": ["2024-01-01", "2024-01-01", "2024-13-45"]})
    report = store.load_events(con, df)
    assert (report.rows_read, report.loaded, report.rejected) == (3, 1, 2)
    assert con.execute("SELECT source_file, line, reason FROM rejected_rows ORDER BY line").fetchall() == [
        ("DataFrame", 2, "no user_id"), ("DataFrame", 3, "event_time '2024-13-45' is not a date-time")]


# --------------------------------------------------------------------------------------------
# Duplicates
# --------------------------------------------------------------------------------------------

CSV_A = ("user_id,event,time,channel\n"
         "u1,view,2024-01-01 10:00,ads\n"
         "u1,view,2024-01-01 10:00,ads\n"       # an exact repeat within the file
         "u2,view,2024-01-01 11:00,\n")


def test_reloading_a_file_adds_nothing(con, tmp_path):
    path = write(tmp_path, "a.csv", CSV_A)
    first = store.load_events(con, path)
    assert (first.rows_read, first.loaded, first.duplicates) == (3, 2, 1)
    before = con.execute("SELECT * FROM events ORDER BY event_id").fetchall()
    users_before = con.execute("SELECT * FROM users ORDER BY user_key").fetchall()
    second = store.load_events(con, path)
    assert (second.rows_read, second.loaded, second.duplicates, second.rejected) == (3, 0, 3, 0)
    assert con.execute("SELECT * FROM events ORDER BY event_id").fetchall() == before
    assert con.execute("SELECT * FROM users ORDER BY user_key").fetchall() == users_before
    # both loads are recorded
    assert con.execute("SELECT load_id, rows_read, loaded, duplicates FROM loads ORDER BY 1").fetchall() == [
        (1, 3, 2, 1), (2, 3, 0, 3)]


def test_overlapping_files_add_only_new_events(con, tmp_path):
    store.load_events(con, write(tmp_path, "a.csv", CSV_A))
    # b overlaps a on u2's event and adds one event of u3
    b = write(tmp_path, "b.csv", "uid,event_name,timestamp,utm_source\nu2,view,2024-01-01T11:00:00Z,\n"
                                 "u3,view,2024-01-03 00:00,\n")
    report = store.load_events(con, b)
    assert (report.loaded, report.duplicates) == (1, 1)
    assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (3, 3)


def test_file_event_id_is_used_and_first_copy_wins(con, tmp_path):
    path = write(tmp_path, "e.csv", "event_id,user_id,event,time\n"
                                    "e1,u1,a,2024-01-02 00:00\n"
                                    "e1,u1,b,2024-01-01 00:00\n"   # same id: a later copy, skipped
                                    "e2,u1,c,2024-01-03 00:00\n")
    report = store.load_events(con, path)
    assert (report.loaded, report.duplicates) == (2, 1)
    assert con.execute("SELECT event_id, event_name FROM events ORDER BY 1").fetchall() == [("e1", "a"), ("e2", "c")]
    # the skipped copy's earlier time does not leak into users
    assert con.execute("SELECT first_seen FROM users").fetchone()[0] == dt.datetime(2024, 1, 2)


def test_event_id_is_stable_across_formats(con, tmp_path):
    # the same event written two ways hashes to one id: the time is compared after parsing
    store.load_events(con, write(tmp_path, "a.csv", "user_id,event,time\nu1,a,2024-01-01T18:00:00+08:00\n"))
    report = store.load_events(con, write(tmp_path, "b.csv", "user_id,event,time\nu1,a,2024/01/01 10:00:00\n"))
    assert (report.loaded, report.duplicates) == (0, 1)


# --------------------------------------------------------------------------------------------
# One transaction: a failure part-way leaves the database exactly as it was
# --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("stage", ["after_users", "after_rollups", "after_write", "after_rejects", "before_commit"])
def test_failure_injected_mid_load_leaves_database_unchanged(con, tmp_path, monkeypatch, stage):
    store.load_events(con, write(tmp_path, "a.csv", CSV_A))
    store.load_spend(con, write(tmp_path, "s.csv", "date,channel,spend\n2024-01-01,ads,10\n"))
    before = dump(con)
    version = store.data_version(con)

    def boom(at):
        if at == stage:
            raise RuntimeError(f"injected at {at}")

    monkeypatch.setattr(load_module, "_checkpoint", boom)
    # b has an earlier event for u1 (users would change), a new user, and a rejected row
    b = write(tmp_path, "b.csv", "user_id,event,time,channel\nu1,signup,2023-12-31 09:00,seo\n"
                                 "u9,view,2024-01-05 00:00,x\nu10,view,never,\n")
    with pytest.raises(RuntimeError, match=f"injected at {stage}"):
        store.load_events(con, b)
    assert dump(con) == before
    assert store.data_version(con) == version
    assert con.execute("SELECT count(*) FROM duckdb_tables() WHERE temporary").fetchone()[0] == 0
    # spend goes through the same transaction machinery
    if stage not in ("after_users", "after_rollups"):   # events-only stages
        with pytest.raises(RuntimeError, match=f"injected at {stage}"):
            store.load_spend(con, write(tmp_path, "s2.csv", "date,channel,spend\n2024-01-01,ads,99\n"))
        assert dump(con) == before
    # and the same load succeeds once the failure is gone
    monkeypatch.setattr(load_module, "_checkpoint", lambda at: None)
    report = store.load_events(con, b)
    assert (report.loaded, report.rejected) == (2, 1)


def test_refused_file_leaves_database_unchanged(con, tmp_path):
    store.load_events(con, write(tmp_path, "a.csv", CSV_A))
    before = dump(con)
    with pytest.raises(store.LoadRefused):
        store.load_events(con, write(tmp_path, "b.csv", "user,page\nu1,/\n"))
    assert dump(con) == before


# --------------------------------------------------------------------------------------------
# Users: incremental maintenance equals a from-scratch recomputation
# --------------------------------------------------------------------------------------------

RECOMPUTE = """
    -- SPEC §1 over all stored events: first_seen = earliest event; first touch = the channel and
    -- campaign of the earliest event with a channel (ties by event_id); none -> 'direct'
    WITH touches AS (
        SELECT user_id, event_time, channel, campaign,
               row_number() OVER (PARTITION BY user_id ORDER BY event_time, event_id) AS k
        FROM events WHERE channel IS NOT NULL
    )
    SELECT e.user_id, min(e.event_time) AS first_seen, any_value(t.event_time) AS touch_time,
           coalesce(any_value(t.channel), 'direct') AS channel, any_value(t.campaign) AS campaign
    FROM events e LEFT JOIN touches t ON t.user_id = e.user_id AND t.k = 1
    GROUP BY e.user_id ORDER BY e.user_id
"""


def users(con):
    return con.execute("SELECT user_id, first_seen, touch_time, channel, campaign FROM users ORDER BY user_id"
                       ).fetchall()


def test_earlier_event_moves_first_seen_and_first_touch(con):
    # A: u1 first seen Jan 5 via ads/a1; u2 only direct visits; u3 via seo
    store.load_events(con, frame([("u1", "view", "2024-01-05 00:00", "ads", "a1"),
                                  ("u1", "view", "2024-01-06 00:00", "seo", None),
                                  ("u2", "view", "2024-01-05 00:00", None, None),
                                  ("u3", "view", "2024-01-02 00:00", "seo", None)]))
    assert users(con) == [
        ("u1", dt.datetime(2024, 1, 5), dt.datetime(2024, 1, 5), "ads", "a1"),
        ("u2", dt.datetime(2024, 1, 5), None, "direct", None),
        ("u3", dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 2), "seo", None)]
    keys = dict(con.execute("SELECT user_id, user_key FROM users").fetchall())
    # B: u1 has an earlier touch (Jan 1, wechat/w1); u2 an earlier direct event (first_seen moves,
    # touch stays none) and a later touch (becomes its first touch); u3 a later touch (no change);
    # u4 is new
    store.load_events(con, frame([("u1", "view", "2024-01-01 00:00", "WeChat", "W1"),
                                  ("u2", "view", "2024-01-03 00:00", None, None),
                                  ("u2", "view", "2024-01-07 00:00", "kol", "k"),
                                  ("u3", "view", "2024-01-09 00:00", "ads", "a9"),
                                  ("u4", "view", "2024-01-08 00:00", None, None)]))
    assert users(con) == [
        ("u1", dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 1), "wechat", "w1"),
        ("u2", dt.datetime(2024, 1, 3), dt.datetime(2024, 1, 7), "kol", "k"),
        ("u3", dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 2), "seo", None),
        ("u4", dt.datetime(2024, 1, 8), None, "direct", None)]
    assert users(con) == con.execute(RECOMPUTE).fetchall()
    # existing users keep their keys; the new user gets the next one
    assert {u: k for u, k in con.execute("SELECT user_id, user_key FROM users").fetchall() if u != "u4"} == keys
    assert con.execute("SELECT user_key FROM users WHERE user_id = 'u4'").fetchone()[0] == 4
    # every event carries its user's key
    assert con.execute("SELECT count(*) FROM events e JOIN users u USING (user_key) WHERE e.user_id <> u.user_id"
                       ).fetchone()[0] == 0


def test_first_touch_tie_across_loads_goes_to_the_smaller_event_id(con):
    # stored: u1 and u2 first touched at 10:00 by event "m"; u3 has no touch. A later load brings events at the
    # same 10:00 with a channel: a smaller id ("a") takes u1's first touch, a larger one ("z") leaves u2's; u3's
    # first touch at 10:00 is simply its first. u4 (stored touch at 09:00) is not tied and keeps it.
    def rows(spec):
        return frame([r[:5] for r in spec]).assign(event_id=[r[5] for r in spec])

    store.load_events(con, rows([("u1", "view", "2024-01-05 10:00", "ads", "a1", "m"),
                                 ("u2", "view", "2024-01-05 10:00", "ads", "a1", "m2"),
                                 ("u3", "view", "2024-01-05 10:00", None, None, "m3"),
                                 ("u4", "view", "2024-01-05 09:00", "ads", "a1", "m4")]))
    store.load_events(con, rows([("u1", "view", "2024-01-05 10:00", "seo", "s1", "a"),
                                 ("u2", "view", "2024-01-05 10:00", "seo", "s1", "z"),
                                 ("u3", "view", "2024-01-05 10:00", "kol", "k1", "b"),
                                 ("u4", "view", "2024-01-05 10:00", "seo", "s1", "a4")]))
    ten, nine = dt.datetime(2024, 1, 5, 10), dt.datetime(2024, 1, 5, 9)
    assert users(con) == [("u1", ten, ten, "seo", "s1"), ("u2", ten, ten, "ads", "a1"),
                          ("u3", ten, ten, "kol", "k1"), ("u4", nine, nine, "ads", "a1")]
    assert users(con) == con.execute(RECOMPUTE).fetchall()


USER_EVENTS = "SELECT user_key, event_name, events, first_time, last_time FROM user_events ORDER BY 1, 2"
USER_EVENTS_RECOMPUTED = """SELECT user_key, event_name, count(*), min(event_time), max(event_time) FROM events
                            GROUP BY user_key, event_name ORDER BY 1, 2"""
BY_NAME = "SELECT event_name, user_key, event_time FROM events_by_name ORDER BY ALL"
BY_NAME_RECOMPUTED = "SELECT event_name, user_key, event_time FROM events ORDER BY ALL"
REVENUE = "SELECT user_key, event_time, revenue FROM revenue_events ORDER BY ALL"
REVENUE_RECOMPUTED = "SELECT user_key, event_time, revenue FROM events WHERE revenue IS NOT NULL ORDER BY ALL"
HOURS = "SELECT user_key, hour_start, prev_hour, next_hour FROM user_hours ORDER BY ALL"
# each user's distinct hours with an event, with the user's previous and next one (a correlated form, not the fill's)
HOURS_RECOMPUTED = """
    WITH h AS (SELECT DISTINCT user_key, date_trunc('hour', event_time) AS hour_start FROM events)
    SELECT user_key, hour_start,
           (SELECT max(p.hour_start) FROM h p WHERE p.user_key = h.user_key AND p.hour_start < h.hour_start),
           (SELECT min(n.hour_start) FROM h n WHERE n.user_key = h.user_key AND n.hour_start > h.hour_start)
    FROM h ORDER BY ALL"""
USER_DAYS = "SELECT user_key, day FROM user_days ORDER BY ALL"
# the days of life from the definition: whole days from first_seen (min event time over all events) to the event
USER_DAYS_RECOMPUTED = """SELECT DISTINCT e.user_key,
                                 CAST(floor(epoch(e.event_time - f.first) / 86400) AS INTEGER)
                          FROM events e JOIN (SELECT user_key, min(event_time) AS first FROM events GROUP BY 1) f
                               USING (user_key)
                          ORDER BY ALL"""


def test_incremental_users_equal_recomputation_over_random_batches(con):
    import random
    rng = random.Random(7)
    channels = [None, None, "ads", "seo", "kol"]
    duplicates = moved = 0
    for batch in range(6):
        first_seen = dict(con.execute("SELECT user_key, first_seen FROM users").fetchall())
        rows = []
        for _ in range(300):
            day, hour = rng.randrange(1, 28), rng.randrange(24)
            ch = rng.choice(channels)
            rows.append((f"u{rng.randrange(60)}", rng.choice(["view", "buy"]), f"2024-02-{day:02d} {hour:02d}:00",
                         ch, rng.choice([None, "c1", "c2"]) if ch else None))
        money = [rng.choice([None, None, 0.0, 12.5, -3.0]) for _ in rows]   # none, zero, a sale, a refund
        duplicates += store.load_events(con, frame(rows).assign(revenue=money)).duplicates
        assert users(con) == con.execute(RECOMPUTE).fetchall(), f"after batch {batch}"
        # the per-user, per-event rollup too: batches add to stored rows, bring new pairs, skip duplicates
        assert con.execute(USER_EVENTS).fetchall() == con.execute(USER_EVENTS_RECOMPUTED).fetchall(), batch
        assert con.execute(BY_NAME).fetchall() == con.execute(BY_NAME_RECOMPUTED).fetchall(), batch
        # the days of life: every day of a user whose first_seen a batch moved earlier moves with it
        assert con.execute(USER_DAYS).fetchall() == con.execute(USER_DAYS_RECOMPUTED).fetchall(), batch
        # every stored event with a revenue value, once (a repeated row's revenue is not copied again)
        assert con.execute(REVENUE).fetchall() == con.execute(REVENUE_RECOMPUTED).fetchall(), batch
        # the hours with an event, each with the user's previous and next: a batch's new hours fall before, between
        # and after stored ones
        assert con.execute(HOURS).fetchall() == con.execute(HOURS_RECOMPUTED).fetchall(), batch
        moved += sum(first_seen[k] > t for k, t in con.execute("SELECT user_key, first_seen FROM users").fetchall()
                     if k in first_seen)
    assert con.execute("SELECT count(*), count(DISTINCT user_key), max(user_key) FROM users").fetchone() == (60, 60, 60)
    assert duplicates > 0   # repeated rows were offered and must not have been counted twice
    assert moved > 20, moved   # later batches moved stored users' first_seen, or the days test proves little
    assert con.execute("SELECT count(*), sum(events) FROM user_events").fetchone() == (
        120, con.execute("SELECT count(*) FROM events").fetchone()[0])


def test_user_days_rollup_by_hand(con):
    store.load_events(con, frame([("u1", "view", "2024-01-03 00:00:00", None, None),
                                  ("u1", "buy", "2024-01-04 12:00:00", None, None),      # 1.5 days: day 1
                                  ("u1", "view", "2024-01-10 00:00:00", None, None),     # exactly 7 days: day 7
                                  ("u1", "view", "2024-01-09 23:59:59", None, None),     # 1 s short: day 6
                                  ("u2", "view", "2024-01-02 08:00:00", None, None)]))
    days = "SELECT u.user_id, d.day FROM user_days d JOIN users u USING (user_key) ORDER BY 1, 2"
    assert con.execute(days).fetchall() == [("u1", 0), ("u1", 1), ("u1", 6), ("u1", 7), ("u2", 0)]
    # an earlier event of u1 moves its first_seen to 2024-01-01 06:00, and so every one of its days:
    # 01-03 00:00 is 1.75 days later, 01-04 12:00 3.25, 01-09 23:59:59 8.74, 01-10 00:00 8.75; u2 keeps its own
    store.load_events(con, frame([("u1", "view", "2024-01-01 06:00:00", None, None),
                                  ("u2", "buy", "2024-01-02 09:00:00", None, None)]))
    assert con.execute(days).fetchall() == [("u1", 0), ("u1", 1), ("u1", 3), ("u1", 8), ("u2", 0)]
    assert con.execute(USER_DAYS).fetchall() == con.execute(USER_DAYS_RECOMPUTED).fetchall()


def test_user_events_rollup_by_hand(con):
    store.load_events(con, frame([("u1", "view", "2024-01-05 00:00", None, None),
                                  ("u1", "view", "2024-01-03 00:00", None, None),
                                  ("u1", "buy", "2024-01-04 00:00", None, None)]))
    # a later batch: an earlier view and a later buy for u1, a repeat of a stored row, a new user
    report = store.load_events(con, frame([("u1", "view", "2024-01-01 00:00", None, None),
                                           ("u1", "buy", "2024-01-09 00:00", None, None),
                                           ("u1", "view", "2024-01-05 00:00", None, None),
                                           ("u2", "view", "2024-01-02 00:00", None, None)]))
    assert report.duplicates == 1
    got = con.execute("SELECT u.user_id, r.event_name, r.events, r.first_time, r.last_time "
                      "FROM user_events r JOIN users u USING (user_key) ORDER BY 1, 2").fetchall()
    assert got == [("u1", "buy", 2, dt.datetime(2024, 1, 4), dt.datetime(2024, 1, 9)),
                   ("u1", "view", 3, dt.datetime(2024, 1, 1), dt.datetime(2024, 1, 5)),
                   ("u2", "view", 1, dt.datetime(2024, 1, 2), dt.datetime(2024, 1, 2))]
    # the narrow copy: every stored event once (the repeated row not again), each load's rows sorted by name
    rows = con.execute("SELECT event_name, user_key, event_time FROM events_by_name").fetchall()
    assert [r[0] for r in rows] == ["buy", "view", "view", "buy", "view", "view"]
    assert sorted(rows) == con.execute(BY_NAME_RECOMPUTED).fetchall()


def test_revenue_events_rollup_by_hand(con):
    store.load_events(con, frame([("u2", "buy", "2024-01-05 00:00", None, None),
                                  ("u1", "view", "2024-01-01 00:00", None, None),
                                  ("u1", "buy", "2024-01-04 00:00", None, None),
                                  ("u1", "refund", "2024-01-03 00:00", None, None),
                                  ("u1", "free", "2024-01-02 00:00", None, None)]).assign(revenue=[9, None, 20, -5, 0]))
    # a later batch: a repeat of a stored sale, a new sale of u2 and one of a new user u3
    report = store.load_events(con, frame([("u2", "buy", "2024-01-05 00:00", None, None),
                                           ("u3", "buy", "2024-01-06 00:00", None, None),
                                           ("u2", "buy", "2024-01-02 00:00", None, None)]).assign(revenue=[9, 7, 4]))
    assert report.duplicates == 1
    # the events with a value (a refund and a zero too; the view without none), each load's rows sorted by user
    # and time (user keys follow first_seen: u1, u2, u3)
    stored = con.execute("SELECT u.user_id, r.event_time, r.revenue FROM revenue_events r JOIN users u "
                         "USING (user_key) ORDER BY r.rowid").fetchall()
    day = lambda d: dt.datetime(2024, 1, d)   # noqa: E731
    assert stored == [("u1", day(2), 0.0), ("u1", day(3), -5.0), ("u1", day(4), 20.0), ("u2", day(5), 9.0),
                      ("u2", day(2), 4.0), ("u3", day(6), 7.0)]
    assert con.execute(REVENUE).fetchall() == con.execute(REVENUE_RECOMPUTED).fetchall()


def test_user_hours_rollup_by_hand(con):
    store.load_events(con, frame([("u2", "view", "2024-01-05 10:59:59", None, None),
                                  ("u1", "view", "2024-01-01 10:00:00", None, None),
                                  ("u1", "buy", "2024-01-01 10:59:59", None, None),     # the same hour
                                  ("u1", "view", "2024-01-01 11:00:00", None, None)]))  # the next one
    # a later batch: u1 again in a stored hour (nothing new) and in an earlier one, u2 in a new hour
    store.load_events(con, frame([("u1", "view", "2024-01-01 10:30:00", None, None),
                                  ("u2", "view", "2024-01-05 09:00:00", None, None),
                                  ("u1", "view", "2023-12-31 23:15:00", None, None)]))
    # the hours of the users a load brings a new hour, derived again sorted by user and hour, each with the user's
    # previous and next hour (user keys follow first_seen: u1, u2)
    stored = con.execute("SELECT u.user_id, h.hour_start, h.prev_hour, h.next_hour FROM user_hours h "
                         "JOIN users u USING (user_key) ORDER BY h.rowid").fetchall()
    hour = lambda *a: dt.datetime(*a)   # noqa: E731
    assert stored == [("u1", hour(2023, 12, 31, 23), None, hour(2024, 1, 1, 10)),
                      ("u1", hour(2024, 1, 1, 10), hour(2023, 12, 31, 23), hour(2024, 1, 1, 11)),
                      ("u1", hour(2024, 1, 1, 11), hour(2024, 1, 1, 10), None),
                      ("u2", hour(2024, 1, 5, 9), None, hour(2024, 1, 5, 10)),
                      ("u2", hour(2024, 1, 5, 10), hour(2024, 1, 5, 9), None)]
    assert con.execute(HOURS).fetchall() == con.execute(HOURS_RECOMPUTED).fetchall()
    # a batch bringing no new hour leaves every row where it was
    store.load_events(con, frame([("u1", "buy", "2024-01-01 11:30:00", None, None),
                                  ("u2", "buy", "2024-01-05 09:45:00", None, None)]))
    assert con.execute("SELECT u.user_id, h.hour_start, h.prev_hour, h.next_hour FROM user_hours h "
                       "JOIN users u USING (user_key) ORDER BY h.rowid").fetchall() == stored


STORED_ORDER = "SELECT u.user_id, r.event_name FROM user_events r JOIN users u USING (user_key) ORDER BY r.rowid"


def test_user_events_are_stored_sorted_by_name_and_user(con):
    # 3 users x 3 names: a GROUP BY's hash order is sorted by name and user with odds of 1 in 9!
    store.load_events(con, frame([(u, e, f"2024-01-0{d} 00:00", None, None)
                                  for d, u in enumerate(("u3", "u1", "u2"), start=1) for e in ("view", "ask", "buy")]))
    # (user keys follow first_seen: u3, u1, u2)
    assert con.execute(STORED_ORDER).fetchall() == [(u, e) for e in ("ask", "buy", "view") for u in ("u3", "u1", "u2")]
    # a later batch: a pair already stored is updated in place, the new pairs are appended sorted by name
    store.load_events(con, frame([("u9", "view", "2024-02-01 00:00", None, None),
                                  ("u1", "zoom", "2024-02-01 00:00", None, None),
                                  ("u2", "buy", "2024-02-02 00:00", None, None),
                                  ("u9", "ask", "2024-02-03 00:00", None, None)]))
    assert con.execute(STORED_ORDER).fetchall()[9:] == [("u9", "ask"), ("u9", "view"), ("u1", "zoom")]
    assert con.execute(USER_EVENTS).fetchall() == con.execute(USER_EVENTS_RECOMPUTED).fetchall()


def test_migration_sorts_the_user_events_of_an_older_database(tmp_path):
    db = tmp_path / "v6.duckdb"
    c = store.connect(db)
    store.load_events(c, frame([(u, e, "2024-01-01 00:00", None, None) for u in ("u1", "u2") for e in ("b", "a")]))
    # as a schema-6 database stored it: in no particular order (here the reverse)
    c.execute("CREATE TEMP TABLE t AS SELECT * FROM user_events ORDER BY event_name DESC, user_key DESC")
    c.execute("DELETE FROM user_events")
    c.execute("INSERT INTO user_events SELECT * FROM t")
    as_older_schema(c, 6, ("revenue_events", "user_hours"))
    assert c.execute(STORED_ORDER).fetchall() == [("u2", "b"), ("u1", "b"), ("u2", "a"), ("u1", "a")]
    c.close()
    c = store.connect(db)
    assert c.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 11
    assert c.execute(STORED_ORDER).fetchall() == [("u1", "a"), ("u2", "a"), ("u1", "b"), ("u2", "b")]
    assert c.execute(USER_EVENTS).fetchall() == c.execute(USER_EVENTS_RECOMPUTED).fetchall()
    assert c.execute("SELECT column_name, is_nullable FROM information_schema.columns WHERE table_name = 'user_events' "
                     "ORDER BY ordinal_position").fetchall() == [
        ("user_key", "NO"), ("event_name", "NO"), ("events", "NO"), ("first_time", "NO"), ("last_time", "NO")]
    c.close()


def test_migration_gives_the_hours_of_a_version_10_database_their_neighbours(tmp_path):
    db = tmp_path / "v10.duckdb"
    c = store.connect(db)
    store.load_events(c, frame([("u1", "view", "2024-01-05 00:10", None, None),
                                ("u1", "view", "2024-01-03 00:00", None, None),
                                ("u2", "buy", "2024-01-04 00:00", None, None)]))
    # as a schema-10 database stored them: each user's hours alone
    c.execute("DROP TABLE user_hours")
    c.execute("CREATE TABLE user_hours (user_key INTEGER NOT NULL, hour_start TIMESTAMP NOT NULL)")
    c.execute("INSERT INTO user_hours VALUES (1, '2024-01-03 00:00'), (1, '2024-01-05 00:00'), (2, '2024-01-04 00:00')")
    as_older_schema(c, 10, ())
    c.close()
    c = store.connect(db)
    assert c.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 11
    assert c.execute("SELECT column_name FROM information_schema.columns WHERE table_name = 'user_hours' "
                     "ORDER BY ordinal_position").fetchall() == [
        ("user_key",), ("hour_start",), ("prev_hour",), ("next_hour",)]
    day = lambda d: dt.datetime(2024, 1, d)   # noqa: E731
    assert c.execute(HOURS).fetchall() == [(1, day(3), None, day(5)), (1, day(5), day(3), None), (2, day(4), None, None)]
    c.close()


# --------------------------------------------------------------------------------------------
# data_version
# --------------------------------------------------------------------------------------------

def test_data_version_changes_with_every_successful_write(con, tmp_path):
    v0 = store.data_version(con)
    assert v0 == 0
    store.load_events(con, write(tmp_path, "a.csv", CSV_A))
    assert store.data_version(con) == 1
    store.load_events(con, write(tmp_path, "a.csv", CSV_A))   # a load that adds nothing still is a load
    assert store.data_version(con) == 2
    with pytest.raises(store.LoadRefused):
        store.load_events(con, write(tmp_path, "x.csv", "a,b\n1,2\n"))
    assert store.data_version(con) == 2
    con.execute("BEGIN TRANSACTION")
    assert store.bump_data_version(con) == 3
    con.execute("ROLLBACK")
    assert store.data_version(con) == 2   # rolled back with its transaction


def test_reset_to_sample_data_bumps_version(con, tmp_path):
    sample = tmp_path / "sample"
    sample.mkdir()
    (sample / "spend.csv").write_text("date,channel,spend\n2024-01-01,ads,5\n")
    store.load_events(con, write(tmp_path, "a.csv", CSV_A))
    store.load_events(con, frame([("u1", "buy", "2024-01-02 00:00", None, None)]).assign(revenue=[5.0]))
    assert con.execute("SELECT count(*) FROM revenue_events").fetchone()[0] == 1
    store.set_pageview_events(con, ["buy"])
    v = store.data_version(con)
    reports = store.reset_to_sample_data(con, sample)
    assert [r.kind for r in reports] == ["spend"]
    # +1 for the emptying, +1 for the spend load
    assert store.data_version(con) == v + 2
    # the page-view events kept for the data are forgotten with it: the sample's are the default names
    assert store.stored_pageview_events(con) == ("page_view", "pageview", "$pageview")
    assert con.execute("SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM spend)").fetchone() == (0, 1)
    # the emptying covers every table that holds loaded data or is derived from it: all but the settings, the
    # exchange rates and the schema version (a rollup left out would keep the old data's rows)
    from store.sample import DATA_TABLES
    assert sorted(DATA_TABLES) == sorted({t for (t,) in con.execute(TABLES_SQL).fetchall()}
                                         - {"settings", "currency_rates", "schema_version"})
    assert con.execute("SELECT count(*) FROM revenue_events").fetchone()[0] == 0


def test_connect_is_idempotent_and_migrates(tmp_path, monkeypatch):
    db = tmp_path / "x.duckdb"
    monkeypatch.setenv("OPSFUNNEL_DB", str(db))
    assert store.resolve_path() == str(db)
    c1 = store.connect()
    store.load_events(c1, frame([("u1", "a", "2024-01-01", None, None)]))
    c1.close()
    c2 = store.connect(db)
    assert c2.execute("SELECT list(version ORDER BY version) FROM schema_version").fetchone()[0] == [1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11]
    assert c2.execute("SELECT count(*) FROM events").fetchone()[0] == 1
    assert store.data_version(c2) == 1
    c2.close()


def test_migration_fills_the_user_events_rollup_from_stored_events(tmp_path):
    db = tmp_path / "old.duckdb"
    c = store.connect(db)
    store.load_events(c, frame([("u1", "view", "2024-01-05 00:00", None, None),
                                ("u1", "view", "2024-01-03 00:00", None, None),
                                ("u2", "buy", "2024-01-04 00:00", None, None)]).assign(revenue=[None, None, 30.0]))
    # a database made before the rollups existed: schema version 2, no user_events or events_by_name table
    as_older_schema(c, 2, ("user_events", "events_by_name", "traffic_sessions", "traffic_pageviews", "user_days",
                           "revenue_events", "user_hours"))
    c.close()
    c = store.connect(db)
    assert c.execute("SELECT max(version) FROM schema_version").fetchone()[0] == 11
    assert c.execute(REVENUE).fetchall() == c.execute(REVENUE_RECOMPUTED).fetchall() == [
        (2, dt.datetime(2024, 1, 4), 30.0)]
    assert c.execute(HOURS).fetchall() == c.execute(HOURS_RECOMPUTED).fetchall() == [
        (1, dt.datetime(2024, 1, 3), None, dt.datetime(2024, 1, 5)), (1, dt.datetime(2024, 1, 5), dt.datetime(2024, 1, 3), None),
        (2, dt.datetime(2024, 1, 4), None, None)]
    assert c.execute(USER_EVENTS).fetchall() == c.execute(USER_EVENTS_RECOMPUTED).fetchall()
    assert c.execute("SELECT count(*), sum(events) FROM user_events").fetchone() == (2, 3)
    assert c.execute(BY_NAME).fetchall() == c.execute(BY_NAME_RECOMPUTED).fetchall()
    assert c.execute("SELECT count(*) FROM events_by_name").fetchone()[0] == 3
    # u1: 01-03 and 01-05 (days 0 and 2); u2: 01-04 (day 0)
    assert c.execute(USER_DAYS).fetchall() == c.execute(USER_DAYS_RECOMPUTED).fetchall()
    assert c.execute("SELECT u.user_id, d.day FROM user_days d JOIN users u USING (user_key) ORDER BY 1, 2"
                     ).fetchall() == [("u1", 0), ("u1", 2), ("u2", 0)]
    c.close()


# --------------------------------------------------------------------------------------------
# Preview and headers: nothing written
# --------------------------------------------------------------------------------------------

def test_preview_parses_first_rows_without_writing(con, tmp_path):
    path = write(tmp_path, "p.csv", "uid,event,time,amount,city\n"
                                    "u1,buy,2024-01-01 18:00,9.5,sh\n"
                                    "u2,buy,later,,bj\n"
                                    "u3,view,2024-01-02 08:00,,gz\n"
                                    "u4,view,2024-01-03 08:00,,sz\n")
    before = dump(con)
    mapping, df = store.preview(path, "events", source_timezone="Asia/Shanghai", rows=3)
    assert dump(con) == before
    assert mapping == {"user_id": "uid", "event_name": "event", "event_time": "time", "revenue": "amount"}
    assert list(df.columns) == ["line", "event_id", "user_id", "event_name", "event_time", "session_id", "channel",
                                "campaign", "page", "revenue", "properties", "reason"]
    got = df[["line", "user_id", "event_time", "revenue", "properties", "reason"]]
    expected = pd.DataFrame({
        "line": [2, 3, 4],
        "user_id": ["u1", "u2", "u3"],
        # 18:00 Shanghai = 10:00 UTC; 'later' cannot be parsed
        "event_time": pd.to_datetime(["2024-01-01 10:00", None, "2024-01-02 00:00"]).astype("datetime64[us]"),
        "revenue": [9.5, None, None],
        "properties": ['{"city":"sh"}', '{"city":"bj"}', '{"city":"gz"}'],
        "reason": [None, "event_time 'later' is not a date-time", None],
    })
    pd.testing.assert_frame_equal(got.reset_index(drop=True), expected, check_dtype=False)


def test_preview_refuses_like_a_load(tmp_path):
    with pytest.raises(store.LoadRefused, match=r"q\.csv: no column for event_name, event_time"):
        store.preview(write(tmp_path, "q.csv", "user_id,page\nu1,/\n"), "events")


def test_preview_spend_uses_the_databases_rates(con, tmp_path):
    store.set_currency_rate(con, "usd", 7.0)
    path = write(tmp_path, "s.csv", "date,channel,spend,currency\n2024-01-01,ads,10,USD\n2024-01-01,seo,3,EUR\n")
    _, df = store.preview(path, "spend", con=con)
    assert list(df["spend"].fillna(-1)) == [70.0, -1]
    assert list(df["reason"].fillna("")) == ["", "no exchange rate for currency EUR (set one for the base currency)"]
    _, df = store.preview(path, "spend")   # without the database: no rates known
    assert list(df["reason"].notna()) == [True, True]


def test_inspect_headers_of_each_container(tmp_path):
    assert store.inspect_headers(write(tmp_path, "a.csv", "用户ID;事件;时间\nu;e;t\n")) == ["用户ID", "事件", "时间"]
    pq = tmp_path / "a.parquet"
    pd.DataFrame({"x": [1], "y": ["a"]}).to_parquet(pq)
    assert store.inspect_headers(str(pq)) == ["x", "y"]
    xl = tmp_path / "a.xlsx"
    pd.DataFrame({"日期": ["2024-01-01"], "花费": [1]}).to_excel(xl, index=False)
    assert store.inspect_headers(str(xl)) == ["日期", "花费"]
    assert store.inspect_headers(pd.DataFrame(columns=["a", "a", " "])) == ["a", "a_2", "column_3"]


def test_report_summary_and_json_mapping(con, tmp_path):
    report = store.load_events(con, write(tmp_path, "a.csv", CSV_A))
    assert report.summary().startswith("a.csv: 3 rows read, 2 loaded, 1 duplicates skipped, 0 rejected in ")
    assert json.loads(con.execute("SELECT mapping FROM loads").fetchone()[0]) == report.mapping


def test_load_caps_memory_only_downwards_and_restores_it(con):
    df = frame([("u1", "a", "2024-01-01", None, None)])
    con.execute("SET memory_limit = '500MB'")
    store.load_events(con, df)
    assert con.execute("SELECT current_setting('memory_limit')").fetchall() == [("476.8 MiB",)]
    con.execute("RESET memory_limit")
    default = con.execute("SELECT current_setting('memory_limit')").fetchall()
    for _ in range(3):   # no drift from the rounded display value
        store.load_events(con, df)
        assert con.execute("SELECT current_setting('memory_limit')").fetchall() == default


def test_dataframe_with_typed_columns(con):
    # pandas types, not text: tz-aware times keep their instant, naive ones follow source_timezone,
    # integer epoch milliseconds are UTC, numeric ids become text, NaN revenue is no revenue
    aware = pd.DataFrame({"user_id": [1, 2], "event_name": ["a", "b"],
                          "event_time": pd.to_datetime(["2024-01-01 18:00", "2024-01-01 19:00"]).tz_localize(
                              "Asia/Shanghai"),
                          "revenue": [1.5, float("nan")]})
    naive = pd.DataFrame({"user_id": ["x"], "event_name": ["a"], "event_time": [pd.Timestamp("2024-01-01 18:00")]})
    epoch = pd.DataFrame({"user_id": ["y"], "event_name": ["a"], "event_time": [1704103200000]})
    assert store.load_events(con, aware).loaded == 2
    assert store.load_events(con, naive, source_timezone="Asia/Shanghai").loaded == 1
    assert store.load_events(con, epoch).loaded == 1
    assert con.execute("SELECT user_id, event_time, revenue FROM events ORDER BY user_id").fetchall() == [
        ("1", dt.datetime(2024, 1, 1, 10), 1.5), ("2", dt.datetime(2024, 1, 1, 11), None),
        ("x", dt.datetime(2024, 1, 1, 10), None), ("y", dt.datetime(2024, 1, 1, 10), None)]
