"""What every page needs: the database, cached metric calls, the language, the global filters.

Pages never open connections: :func:`db` hands out a cursor on the one cached connection (a
cursor is a separate DuckDB connection to the same database, so concurrent sessions do not share
temporary tables or transactions). Writes (loads, resets, stage-map edits) go through
:func:`write`, which serialises them with one process-wide lock and bumps the data version.
:func:`run` calls a metric through ``st.cache_data`` keyed by the metric, its arguments and the
data version, so an upload invalidates exactly the results computed on older data.
"""
from __future__ import annotations

import os
import threading
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

import pandas as pd
import streamlit as st

import store


def db_path() -> str | None:
    """The database file ($OPSFUNNEL_DB, else the store's default); part of every cache key."""
    return os.environ.get("OPSFUNNEL_DB")


@st.cache_resource(show_spinner=False)
def _connection(path: str | None):
    con = store.connect(path)
    if os.environ.get("OPSFUNNEL_NO_SAMPLE") != "1":
        store.ensure_sample_data(con)
    return con


@st.cache_resource(show_spinner=False)
def _write_state() -> dict:
    """One lock for every write in this server process, and a counter of writes made through it."""
    return {"lock": threading.Lock(), "writes": 0}


def db():
    """A cursor on the shared connection (one per call: cursors are safe to use from one thread each)."""
    return _connection(db_path()).cursor()


@contextmanager
def write():
    """A cursor for a write, held under the process-wide write lock; the data version moves after it,
    whether the write succeeded or not (a failed load is rolled back, but a reset may be half done)."""
    state = _write_state()
    with state["lock"]:
        cur = db()
        try:
            yield cur
        finally:
            state["writes"] += 1
            cur.close()


def data_version() -> int:
    """A number that changes with every write: the store's own version when it has one, else the
    loads table, combined with the count of writes made through :func:`write` in this process."""
    fn = getattr(store, "data_version", None)
    con = db()
    if fn is not None:
        stored = int(fn(con))
    else:
        stored = int(con.execute("SELECT coalesce(max(load_id), 0) * 1000 + count(*) FROM loads").fetchone()[0])
    return stored * 100_000 + _write_state()["writes"]


@st.cache_data(ttl=3600, max_entries=512, show_spinner=False)
def _cached(name: str, key: str, version: int, path: str | None, _fn: Callable, _args: tuple, _kwargs: dict) -> Any:
    return _fn(db(), *_args, **_kwargs)


def run(fn: Callable, *args, **kwargs) -> Any:
    """``fn(con, *args, **kwargs)``, cached until the data changes. Arguments are keyed by ``repr``
    (frozen params dataclasses have a faithful one)."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    return _cached(name, repr((args, sorted(kwargs.items()))), data_version(), db_path(), fn, args, kwargs)


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _data_facts(version: int, path: str | None) -> dict:
    con = db()
    events, users, spend, survey, first, last = con.execute(
        """SELECT (SELECT count(*) FROM events), (SELECT count(*) FROM users), (SELECT count(*) FROM spend),
                  (SELECT count(*) FROM survey), (SELECT min(event_time) FROM events),
                  (SELECT max(event_time) FROM events)""").fetchone()
    channels = [r[0] for r in con.execute(
        "SELECT DISTINCT channel FROM users WHERE channel IS NOT NULL ORDER BY 1").fetchall()]
    campaigns = con.execute(
        "SELECT DISTINCT channel, campaign FROM users WHERE campaign IS NOT NULL ORDER BY 1, 2").df()
    return {"events": events, "users": users, "spend": spend, "survey": survey, "first": first, "last": last,
            "channels": channels, "campaigns": campaigns}


def data_facts() -> dict:
    """Row counts, the UTC time span of the events and the first-touch channel / campaign keys
    (``campaigns`` is a frame of channel, campaign), refreshed with the data version."""
    return _data_facts(data_version(), db_path())


def local_date(ts: datetime | None, tz: str) -> date | None:
    """The local calendar date in ``tz`` of a naive UTC timestamp."""
    if ts is None or pd.isna(ts):
        return None
    return pd.Timestamp(ts).tz_localize("UTC").tz_convert(ZoneInfo(tz)).date()


def lang() -> str:
    return st.session_state.get("lang", "en")


def tr(en: str, zh: str) -> str:
    """The text in the chosen language."""
    return zh if lang() == "zh" else en


def filters():
    """The global filters chosen in the sidebar (a ``metrics.Filters``)."""
    from metrics import Filters
    return st.session_state.get("filters") or Filters()


def frame_download(df: pd.DataFrame, name: str, key: str) -> None:
    """A CSV download button for ``df``."""
    st.download_button(tr("Download CSV", "下载 CSV"), df.to_csv(index=False).encode("utf-8-sig"),
                       file_name=f"{name}.csv", mime="text/csv", key=key)
