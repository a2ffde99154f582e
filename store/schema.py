"""The one place that opens DuckDB and creates or migrates the schema.

Migrations are numbered and applied in order inside a transaction; ``schema_version``
records the highest applied one, so ``connect`` is idempotent on an existing file.

Tables (SPEC §1):

events        one row per event; ``user_key`` is a compact integer per user assigned at load
users         one row per user: first_seen and first-touch acquisition, maintained by every load
user_events   one row per (user, event name): count, first and last time — a rollup of events maintained
              by every load, read by queries over all events in place of a scan and GROUP BY of them; stored
              sorted by name (each load's new rows too), so a query for a few names reads only their row groups
events_by_name  every event's name, user and time, each load's rows stored sorted by name: a query for a few
              event names reads only their row groups (the min/max of each skips the rest)
traffic_sessions   every session (SPEC §5) at the default 30-minute gap and the stored page-view events (settings),
              over all events
traffic_pageviews  every page view with its session's channel and campaign — both kept by every load for the
              users it touches, read by traffic queries over all events in place of deriving the sessions
user_days     one row per (user, day of life) with an event: day = whole days from the user's first_seen to the
              event (0 = the first 24 hours) — kept by every load for the users it touches, read by the
              economics in place of a join of the acquired users to all their events
revenue_events  every event with a revenue value: its user, time and revenue, each load's rows stored sorted by
              user — read by the revenue, LTV and ROAS queries in place of a scan of all events for the few
              that carry money
user_hours    one row per (user, UTC hour) with an event, with the user's previous and next such hour — kept
              by every load for the users it brings a new hour, stored sorted by user — read by the counts of
              active users per local day, week or month in a time zone with a whole-hour offset (every event of
              an hour falls on the local day of the hour's start)
spend         one row per (date, channel, campaign); campaign '' is channel level
survey        perceived value / cost ratings, one row per rating
stage_map     event_name -> AARRR stage
loads         one row per load attempt that wrote something (the load report)
rejected_rows rows of a file that could not be used, with line and reason
currency_rates  rate to the base currency, for spend files with a currency column
settings      key/value (base_currency; data_version, bumped by every successful write; pageview_events, the
              page-view event names the session rollups are kept for, a JSON list — absent: the default names)

Channel and campaign values are stored as keys: trimmed and case-folded, '' -> NULL
(spend uses '' for channel-level rows so it can be part of the key).
"""
from __future__ import annotations

import json
import os
from pathlib import Path

import duckdb

DEFAULT_PATH = Path("data") / "opsfunnel.duckdb"

_USER_HOURS = """
    CREATE TABLE user_hours (
        user_key    INTEGER NOT NULL,
        hour_start  TIMESTAMP NOT NULL,      -- date_trunc('hour', event_time), UTC
        prev_hour   TIMESTAMP,               -- the user's previous hour_start (NULL: this is their first)
        next_hour   TIMESTAMP                -- the user's next hour_start (NULL: this is their last)
    );
    """

MIGRATIONS: list[str] = [
    # 1: initial schema
    """
    CREATE TABLE events (
        event_id    VARCHAR NOT NULL,
        user_key    INTEGER NOT NULL,
        user_id     VARCHAR NOT NULL,
        event_name  VARCHAR NOT NULL,
        event_time  TIMESTAMP NOT NULL,      -- UTC, microseconds
        session_id  VARCHAR,
        channel     VARCHAR,                 -- key: trimmed, case-folded
        campaign    VARCHAR,                 -- key: trimmed, case-folded
        page        VARCHAR,
        revenue     DOUBLE,
        properties  JSON,
        source_file VARCHAR,
        loaded_at   TIMESTAMP
    );
    CREATE TABLE users (
        user_key    INTEGER PRIMARY KEY,
        user_id     VARCHAR NOT NULL UNIQUE,
        first_seen  TIMESTAMP NOT NULL,      -- earliest event over all loaded data (UTC)
        touch_time  TIMESTAMP,               -- time of the first-touch event, NULL = direct
        channel     VARCHAR NOT NULL,        -- first-touch channel key, 'direct' when none
        campaign    VARCHAR                  -- first-touch campaign key, NULL when none
    );
    CREATE TABLE spend (
        date        DATE NOT NULL,
        channel     VARCHAR NOT NULL,
        campaign    VARCHAR NOT NULL,        -- '' = channel level
        spend       DOUBLE NOT NULL,         -- base currency
        impressions BIGINT,
        clicks      BIGINT,
        currency    VARCHAR,                 -- the file's currency, NULL = base
        spend_original DOUBLE,
        source_file VARCHAR,
        loaded_at   TIMESTAMP,
        PRIMARY KEY (date, channel, campaign)
    );
    CREATE TABLE survey (
        rating_id     VARCHAR NOT NULL,      -- content hash + occurrence: reloading a file adds nothing
        segment       VARCHAR NOT NULL,
        product       VARCHAR NOT NULL,      -- 'ours' or a competitor's name
        dimension     VARCHAR NOT NULL,
        kind          VARCHAR NOT NULL,      -- 'value' | 'cost'
        score         DOUBLE NOT NULL,       -- 0..10
        respondent_id VARCHAR,
        source_file   VARCHAR,
        loaded_at     TIMESTAMP
    );
    CREATE TABLE stage_map (
        event_name VARCHAR PRIMARY KEY,
        stage      VARCHAR NOT NULL
    );
    CREATE TABLE loads (
        load_id     INTEGER PRIMARY KEY,
        kind        VARCHAR NOT NULL,
        source_file VARCHAR NOT NULL,
        rows_read   BIGINT NOT NULL,
        loaded      BIGINT NOT NULL,
        duplicates  BIGINT NOT NULL,
        replaced    BIGINT NOT NULL,
        rejected    BIGINT NOT NULL,
        seconds     DOUBLE NOT NULL,
        mapping     JSON,
        loaded_at   TIMESTAMP NOT NULL
    );
    CREATE TABLE rejected_rows (
        load_id     INTEGER NOT NULL,
        source_file VARCHAR NOT NULL,
        line        BIGINT,
        reason      VARCHAR NOT NULL,
        raw         VARCHAR
    );
    CREATE TABLE currency_rates (
        currency VARCHAR PRIMARY KEY,
        rate_to_base DOUBLE NOT NULL
    );
    CREATE TABLE settings (
        key   VARCHAR PRIMARY KEY,
        value VARCHAR
    );
    INSERT INTO settings VALUES ('base_currency', 'CNY');
    """,
    # 2: a data version, bumped in the transaction of every write, for caches keyed on the data
    """
    INSERT INTO settings SELECT 'data_version', '0'
    WHERE NOT EXISTS (SELECT 1 FROM settings WHERE key = 'data_version');
    """,
    # 3: per user and event name, how many and when first and last (filled from the events already stored)
    """
    CREATE TABLE user_events (
        user_key    INTEGER NOT NULL,
        event_name  VARCHAR NOT NULL,
        events      BIGINT NOT NULL,
        first_time  TIMESTAMP NOT NULL,
        last_time   TIMESTAMP NOT NULL
    );
    """,
    # 4: a narrow copy of the events clustered by event name (filled from the events already stored)
    """
    CREATE TABLE events_by_name (
        event_name  VARCHAR NOT NULL,
        user_key    INTEGER NOT NULL,
        event_time  TIMESTAMP NOT NULL
    );
    """,
    # 5: the sessions and page views of every event (filled from the events already stored)
    """
    CREATE TABLE traffic_sessions (
        user_key      INTEGER NOT NULL,
        session_id    VARCHAR,               -- the file's session id, or NULL for a derived session
        session_no    BIGINT,                -- a derived session's number within its user, else NULL
        session_start TIMESTAMP NOT NULL,
        session_end   TIMESTAMP NOT NULL,
        channel       VARCHAR NOT NULL,      -- of the session's first event, 'direct' when none
        campaign      VARCHAR NOT NULL,      -- of the session's first event, '(not set)' when none
        entry_page    VARCHAR NOT NULL,      -- page of the first page view, '(no page view)' when none
        events        BIGINT NOT NULL,
        pageviews     BIGINT NOT NULL,
        duration_s    DOUBLE NOT NULL
    );
    CREATE TABLE traffic_pageviews (
        user_key    INTEGER NOT NULL,
        event_time  TIMESTAMP NOT NULL,
        page        VARCHAR,
        channel     VARCHAR NOT NULL,        -- the session's channel and campaign
        campaign    VARCHAR NOT NULL
    );
    """,
    # 6: the days of each user's life with an event (filled from the events already stored)
    """
    CREATE TABLE user_days (
        user_key    INTEGER NOT NULL,
        day         INTEGER NOT NULL         -- floor(seconds from users.first_seen to the event / 86400)
    );
    """,
    # 7: user_events rewritten sorted by event name, as loads now write it: a query for a few names (every
    # funnel, AARRR and retention query) skips the row groups of the others by their min/max
    """
    CREATE TABLE _user_events_sorted (
        user_key    INTEGER NOT NULL,
        event_name  VARCHAR NOT NULL,
        events      BIGINT NOT NULL,
        first_time  TIMESTAMP NOT NULL,
        last_time   TIMESTAMP NOT NULL
    );
    INSERT INTO _user_events_sorted SELECT * FROM user_events ORDER BY event_name, user_key;
    DROP TABLE user_events;
    ALTER TABLE _user_events_sorted RENAME TO user_events;
    """,
    # 8: traffic_pageviews rewritten sorted by user and time, as loads now write it: the Traffic page's counts
    # of distinct users aggregate a user's rows side by side
    """
    CREATE TABLE _traffic_pageviews_sorted (
        user_key    INTEGER NOT NULL,
        event_time  TIMESTAMP NOT NULL,
        page        VARCHAR,
        channel     VARCHAR NOT NULL,        -- the session's channel and campaign
        campaign    VARCHAR NOT NULL
    );
    INSERT INTO _traffic_pageviews_sorted SELECT * FROM traffic_pageviews ORDER BY user_key, event_time;
    DROP TABLE traffic_pageviews;
    ALTER TABLE _traffic_pageviews_sorted RENAME TO traffic_pageviews;
    """,
    # 9: a narrow copy of the events with a revenue value, by user (filled from the events already stored)
    """
    CREATE TABLE revenue_events (
        user_key    INTEGER NOT NULL,
        event_time  TIMESTAMP NOT NULL,
        revenue     DOUBLE NOT NULL
    );
    """,
    # 10: the UTC hours of each user with an event (filled from the events already stored). Created as migration 11
    # left it, since the fill that follows is today's: a database made at 10 has the two first columns alone.
    _USER_HOURS,
    # 11: each hour with the user's previous and next one (so a count of distinct users per local day or period
    # needs no grouping or window over the hours); derived again from the events already stored
    "DROP TABLE user_hours;" + _USER_HOURS,
]


# The rollup a migration creates, filled from the events already stored after its SQL, in its transaction.
_FILLS = {3: "user_events", 4: "events_by_name", 5: "traffic", 6: "user_days", 9: "revenue_events", 10: "user_hours",
          11: "user_hours"}


def _apply_migrations(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("CREATE TABLE IF NOT EXISTS schema_version (version INTEGER NOT NULL)")
    row = con.execute("SELECT max(version) FROM schema_version").fetchone()
    current = row[0] or 0
    for number, sql in enumerate(MIGRATIONS, start=1):
        if number <= current:
            continue
        con.execute("BEGIN TRANSACTION")
        try:
            con.execute(sql)
            # a rollup that a later migration, pending too, creates again and fills is not filled twice
            if number in _FILLS and not any(n > number and r == _FILLS[number] for n, r in _FILLS.items()):
                from .load import fill_rollup   # load imports this module
                fill_rollup(con, _FILLS[number])
            con.execute("INSERT INTO schema_version VALUES (?)", [number])
            con.execute("COMMIT")
        except Exception:
            con.execute("ROLLBACK")
            raise


def data_version(con: duckdb.DuckDBPyConnection) -> int:
    """A number that changes with every successful load, reset or stage-map edit (a cache key)."""
    row = con.execute("SELECT TRY_CAST(value AS BIGINT) FROM settings WHERE key = 'data_version'").fetchone()
    return int(row[0] or 0) if row else 0


# The event names that count as page views unless a database stores its own (``settings`` key ``pageview_events``).
DEFAULT_PAGEVIEW_EVENTS: tuple[str, ...] = ("page_view", "pageview", "$pageview")


def stored_pageview_events(con: duckdb.DuckDBPyConnection) -> tuple[str, ...]:
    """The page-view event names the session rollups (``traffic_sessions`` / ``traffic_pageviews``) are kept for:
    the database's own (``store.set_pageview_events``), else :data:`DEFAULT_PAGEVIEW_EVENTS`."""
    row = con.execute("SELECT value FROM settings WHERE key = 'pageview_events'").fetchone()
    return tuple(json.loads(row[0])) if row else DEFAULT_PAGEVIEW_EVENTS


def bump_data_version(con: duckdb.DuckDBPyConnection) -> int:
    """Increment the data version; call it inside the transaction of any write to the data tables.

    Returns the new version. Run inside the writer's transaction, the bump commits or rolls back
    with the write, so a failed write leaves the version as it was.
    """
    con.execute("""
        INSERT OR REPLACE INTO settings
        SELECT 'data_version', CAST(coalesce((SELECT TRY_CAST(value AS BIGINT) FROM settings
                                              WHERE key = 'data_version'), 0) + 1 AS VARCHAR)
    """)
    return data_version(con)


def resolve_path(path: str | os.PathLike | None = None) -> str:
    """The database location: ``path``, else ``$OPSFUNNEL_DB``, else ``data/opsfunnel.duckdb``."""
    if path is None:
        path = os.environ.get("OPSFUNNEL_DB") or DEFAULT_PATH
    path = str(path)
    if path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    return path


def connect(path: str | os.PathLike | None = None, *, read_only: bool = False) -> duckdb.DuckDBPyConnection:
    """Open (creating or migrating) the opsfunnel database and return the connection.

    ``path`` defaults to ``$OPSFUNNEL_DB`` or ``data/opsfunnel.duckdb``; ``":memory:"`` gives a
    throw-away database. The session time zone is UTC: every stored timestamp is UTC.
    """
    resolved = resolve_path(path)
    con = duckdb.connect(resolved, read_only=read_only)
    con.execute("SET TimeZone = 'UTC'")
    con.execute("SET enable_progress_bar = false")  # the command line turns it on for its own display
    if not read_only:
        _apply_migrations(con)
    return con
