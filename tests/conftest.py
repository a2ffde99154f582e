"""Shared fixtures: an in-memory store and a declarative journey builder.

    def test_x(con, journeys):
        journeys({"u1": [("signup", "2024-01-01 10:00"), ("purchase", "2024-01-02 09:00", {"revenue": 5})],
                  "u2": [("page_view", "2024-01-01 11:00", {"channel": "wechat", "page": "/"})]})

Each event is ``(event_name, local time text[, {column or property: value}])``; times are UTC unless
``journeys(..., timezone=...)`` says otherwise. Canonical columns in the dict (session_id, channel,
campaign, page, revenue, event_id) fill those columns; anything else becomes a property.
"""
from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

import store  # noqa: E402

CANONICAL = ("event_id", "session_id", "channel", "campaign", "page", "revenue")


def journeys_frame(spec: dict) -> pd.DataFrame:
    rows = []
    for user, events in spec.items():
        for ev in events:
            name, when = ev[0], ev[1]
            extra = dict(ev[2]) if len(ev) > 2 else {}
            row = {"user_id": user, "event_name": name, "event_time": when}
            props = {k: v for k, v in extra.items() if k not in CANONICAL}
            row.update({k: v for k, v in extra.items() if k in CANONICAL})
            row["properties"] = props or None
            rows.append(row)
    df = pd.DataFrame(rows)
    for col in CANONICAL:
        if col not in df.columns:
            df[col] = None
    return df.astype({c: object for c in df.columns})


@pytest.fixture
def con():
    connection = store.connect(":memory:")
    yield connection
    connection.close()


def reads_hours(con, frame, same=None) -> bool:
    """Whether the query a metric recorded on ``frame`` (``metrics.derive.query_of``) read the hours with an event
    (else the events only). That query runs on its own and gives as many rows as the frame, and ``same(again,
    frame)`` checks more where the frame is the query's rows as they are."""
    from metrics.derive import query_of
    sql, params = query_of(frame)
    again = con.execute(sql, params).df()
    assert len(again) == len(frame) > 0
    if same is not None:
        same(again, frame)
    return "FROM user_hours h" in sql


def as_older_schema(con, version: int, tables: tuple[str, ...]) -> None:
    """Turn the database into one made at schema ``version``: drop the ``tables`` later migrations created and
    forget those migrations, so the next ``store.connect`` applies them again."""
    for table in tables:
        con.execute(f"DROP TABLE {table}")
    con.execute("DELETE FROM schema_version WHERE version > ?", [version])


@pytest.fixture
def journeys(con):
    def build(spec: dict, timezone: str = "UTC"):
        report = store.load_events(con, journeys_frame(spec), source_timezone=timezone)
        assert report.rejected == 0, report.rejected_samples
        return report
    return build


def generated_store(tmp_path_factory, name: str, seed: int, survey: bool = False):
    """An in-memory store holding a generated log in the sample's shape (3 % of its size: about 23,000 events,
    1,100 users) with its spend sheet, and its survey when asked: for comparing two ways of computing a metric."""
    from sample_data.generate import generate

    out = tmp_path_factory.mktemp(name)
    generate(seed=seed, out_dir=out, scale=0.03)
    con = store.connect(":memory:")
    store.load_events(con, out / "events.csv.gz")
    store.load_spend(con, out / "spend.csv")
    if survey:
        store.load_survey(con, out / "survey.csv")
    return con
