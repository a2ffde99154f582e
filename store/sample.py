"""The bundled sample data: loaded by itself into an empty database so a new user sees a full dashboard."""
from __future__ import annotations

from pathlib import Path

from .load import LoadReport, load_events, load_spend, load_survey
from .schema import bump_data_version

SAMPLE_DIR = Path(__file__).resolve().parent.parent / "sample_data"
SAMPLE_FILES = (("events", "events.csv.gz"), ("spend", "spend.csv"), ("survey", "survey.csv"))
DATA_TABLES = ("events", "users", "user_events", "events_by_name", "traffic_sessions", "traffic_pageviews",
               "user_days", "revenue_events", "user_hours", "spend", "survey", "stage_map", "loads", "rejected_rows")


def load_sample_data(con, directory: Path = SAMPLE_DIR) -> list[LoadReport]:
    """Load the sample events, spend and survey files; return their reports."""
    loaders = {"events": load_events, "spend": load_spend, "survey": load_survey}
    return [loaders[kind](con, directory / filename) for kind, filename in SAMPLE_FILES
            if (directory / filename).exists()]


def ensure_sample_data(con, directory: Path = SAMPLE_DIR) -> list[LoadReport]:
    """Load the sample data if the database holds no events, spend or survey rows yet."""
    empty = con.execute(
        "SELECT (SELECT count(*) FROM events) + (SELECT count(*) FROM spend) + (SELECT count(*) FROM survey)"
    ).fetchone()[0] == 0
    return load_sample_data(con, directory) if empty else []


def reset_to_sample_data(con, directory: Path = SAMPLE_DIR) -> list[LoadReport]:
    """Empty every data table, forget the stored page-view events, and load the sample data again (one
    transaction for the emptying)."""
    con.execute("BEGIN TRANSACTION")
    try:
        for table in DATA_TABLES:
            con.execute(f"DELETE FROM {table}")
        con.execute("DELETE FROM settings WHERE key = 'pageview_events'")   # the sample's are the default names
        bump_data_version(con)
        con.execute("COMMIT")
    except BaseException:
        con.execute("ROLLBACK")
        raise
    return load_sample_data(con, directory)
