"""What every page needs: the database, cached metric calls, the language, the global filters.

Pages never open connections: :func:`db` hands out a cursor on the one cached connection (a
cursor is a separate DuckDB connection to the same database, so concurrent sessions do not share
temporary tables or transactions). Writes (loads, resets, stage-map edits) go through
:func:`write`, which serialises them with one process-wide lock and bumps the data version.
:func:`run` calls a metric through ``st.cache_data`` keyed by the metric, its arguments and the
data version, so an upload invalidates exactly the results computed on older data.

Queries are bounded: the connection has a DuckDB ``memory_limit`` ($OPSFUNNEL_MEMORY_LIMIT, default
half the machine's memory), and :func:`run` interrupts a metric still running after
$OPSFUNNEL_QUERY_TIMEOUT seconds (default 60). Either way the caller gets a :class:`QueryLimitError`
(a ``UserInputError``) with a sentence saying what to narrow; the connection stays usable.
"""
from __future__ import annotations

import os
import re
import threading
from contextlib import contextmanager
from datetime import date, datetime
from typing import Any, Callable
from zoneinfo import ZoneInfo

import duckdb
import pandas as pd
import streamlit as st

import store
from store.errors import UserInputError


class QueryLimitError(UserInputError):
    """A query stopped for taking too long or needing too much memory (the message says which)."""


_MEMORY_RE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KIB|MIB|GIB|TIB)\s*$", re.IGNORECASE)


def memory_limit() -> str:
    """DuckDB's ``memory_limit`` for the app: $OPSFUNNEL_MEMORY_LIMIT (e.g. ``4GB``), else half the RAM."""
    env = os.environ.get("OPSFUNNEL_MEMORY_LIMIT", "").strip()
    if env:
        if not _MEMORY_RE.match(env):
            raise ValueError(f"OPSFUNNEL_MEMORY_LIMIT must look like 4GB or 512MB, not {env!r}")
        return env.replace(" ", "").upper()
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return "4GB"
    return f"{max(total // 2 // 2**20, 256)}MB"


def query_timeout() -> float:
    """Seconds a metric may run before it is interrupted ($OPSFUNNEL_QUERY_TIMEOUT, default 60)."""
    try:
        value = float(os.environ.get("OPSFUNNEL_QUERY_TIMEOUT", "60"))
    except ValueError:
        return 60.0
    return value if value > 0 else 60.0


def db_path() -> str | None:
    """The database file ($OPSFUNNEL_DB, else the store's default); part of every cache key."""
    return os.environ.get("OPSFUNNEL_DB")


# Shown before a language is chosen, so in both: a first start loads the sample data (~10 s).
_OPENING = "Opening the database; a first start loads the sample data … · 正在打开数据库，首次启动会载入示例数据……"


@st.cache_resource(show_spinner=_OPENING)
def _connection(path: str | None):
    con = store.connect(path)
    con.execute(f"SET memory_limit = '{memory_limit()}'")  # validated by memory_limit(): digits and a unit
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
    loads table, combined with the count of writes made through :func:`write` in this process.

    Read once per script run (every cached call on a page keys on it; a page makes dozens): the value is
    kept on the run's context, keyed by the run (its fresh ``cursors`` dict) and by the count of writes,
    so a write during the run is seen by the calls after it."""
    from streamlit.runtime.scriptrunner_utils.script_run_context import get_script_run_ctx

    ctx = get_script_run_ctx(suppress_warning=True)
    writes = _write_state()["writes"]
    memo = getattr(ctx, "_opsfunnel_data_version", None) if ctx is not None else None
    if memo is not None and memo[0] is getattr(ctx, "cursors", None) and memo[1] == writes:
        return memo[2]
    version = _read_data_version()
    if ctx is not None and _write_state()["writes"] == writes:
        ctx._opsfunnel_data_version = (getattr(ctx, "cursors", None), writes, version)
    return version


def _read_data_version() -> int:
    fn = getattr(store, "data_version", None)
    con = db()
    if fn is not None:
        stored = int(fn(con))
    else:
        stored = int(con.execute("SELECT coalesce(max(load_id), 0) * 1000 + count(*) FROM loads").fetchone()[0])
    return stored * 100_000 + _write_state()["writes"]


def call_with_timeout(fn: Callable, timeout: float, *args, **kwargs) -> Any:
    """``fn(cursor, *args, **kwargs)`` on a fresh cursor that is interrupted once ``timeout`` seconds
    have passed (and again every 0.2 s until ``fn`` gives up, in case the first interrupt fell between
    two of its queries). Raises ``duckdb.InterruptException`` when it was stopped."""
    cur = db()
    done = threading.Event()

    def watchdog() -> None:
        if done.wait(timeout):
            return
        while not done.is_set():
            cur.interrupt()
            done.wait(0.2)

    threading.Thread(target=watchdog, name="opsfunnel-query-timeout", daemon=True).start()
    try:
        return fn(cur, *args, **kwargs)
    finally:
        done.set()
        cur.close()


@st.cache_data(ttl=3600, max_entries=512, show_spinner=False)
def _cached(name: str, key: str, version: int, path: str | None, timeout: float, _fn: Callable, _args: tuple,
            _kwargs: dict) -> Any:
    return call_with_timeout(_fn, timeout, *_args, **_kwargs)


@st.cache_data(ttl=3600, max_entries=64, show_spinner=False)
def _cached_listing(name: str, key: str, version: int, path: str | None, timeout: float, preview: int, _fn: Callable,
                    _args: tuple) -> tuple[int, pd.DataFrame, bytes]:
    from .safe import csv_bytes

    df = call_with_timeout(_fn, timeout, *_args)
    return len(df), df.head(preview), csv_bytes(df)


def run_listing(fn: Callable, *args, preview: int = 100) -> tuple[int, pd.DataFrame, bytes]:
    """For a long result meant for export (a user list): ``(rows, first preview rows, CSV bytes)`` of
    ``fn(con, *args)``, cached until the data changes like :func:`run` — so a rerun neither copies the
    whole frame out of the cache nor writes its CSV again."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    timeout = query_timeout()
    with _query_limits(timeout):
        return _cached_listing(name, repr(args), data_version(), db_path(), timeout, preview, fn, args)


def run(fn: Callable, *args, **kwargs) -> Any:
    """``fn(con, *args, **kwargs)``, cached until the data changes. Arguments are keyed by ``repr``
    (frozen params dataclasses have a faithful one). A call that runs past :func:`query_timeout` or
    over the memory limit raises :class:`QueryLimitError` (nothing is cached for it)."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    timeout = query_timeout()
    with _query_limits(timeout):
        return _cached(name, repr((args, sorted(kwargs.items()))), data_version(), db_path(), timeout, fn, args,
                       kwargs)


def memo(build: Callable, key: tuple, *inputs) -> Any:
    """``build(*inputs)``, kept in this server until the data changes: for what a page makes out of metric
    results on every rerun — a figure, a table's CSV bytes, a SQL text — so a warm rerun only sends it.
    ``key`` (compared by ``repr``) must determine ``inputs`` together with the data version and the language:
    the parameters of the metric calls they came from. The value is shared by every session, not copied, so
    nothing may change it after ``build`` returns."""
    name = f"{build.__code__.co_filename}:{build.__qualname__}"
    return _memo(name, repr(key), data_version(), db_path(), lang(), build, inputs)


def clear_memo() -> None:
    """Forget everything :func:`memo` kept (a cold-cache measurement clears it with ``st.cache_data``)."""
    _memo.clear()


@st.cache_resource(ttl=3600, max_entries=128, show_spinner=False)
def _memo(name: str, key: str, version: int, path: str | None, language: str, _build: Callable,
          _inputs: tuple) -> Any:
    return _build(*_inputs)


@contextmanager
def _query_limits(timeout: float):
    """Turn a stopped query into a :class:`QueryLimitError` with a sentence for the user."""
    try:
        yield
    except duckdb.InterruptException:
        raise QueryLimitError(tr(
            f"This query took longer than {timeout:g} s and was stopped; narrow the date range or the filters "
            "and try again.",
            f"此查询超过 {timeout:g} 秒，已被停止；请缩小日期范围或筛选条件后重试。")) from None
    except duckdb.OutOfMemoryException:
        raise QueryLimitError(tr(
            f"This query needed more than the {memory_limit()} of memory allowed and was stopped; narrow the "
            "date range or the filters and try again.",
            f"此查询所需内存超过允许的 {memory_limit()}，已被停止；请缩小日期范围或筛选条件后重试。")) from None


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


@st.cache_data(ttl=3600, max_entries=16, show_spinner=False)
def _event_names(version: int, path: str | None) -> list[str]:
    rows = db().execute("SELECT event_name FROM events GROUP BY event_name "
                        "ORDER BY count(*) DESC, event_name").fetchall()
    return [r[0] for r in rows]


def event_names() -> list[str]:
    """Event names in the data, most frequent first (for widget options), refreshed with the data version."""
    return _event_names(data_version(), db_path())


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


def frame_download(df: pd.DataFrame | bytes, name: str, key: str) -> None:
    """A CSV download button for ``df`` (or CSV bytes already made by :func:`ui.safe.csv_bytes`):
    spreadsheet formulas in text cells neutralised, the file name reduced to safe characters."""
    from .safe import csv_bytes

    safe_name = "".join(ch if ch.isalnum() or ch in "._-" else "_" for ch in str(name))[:120] or "table"
    data = df if isinstance(df, bytes) else csv_bytes(df)
    st.download_button(tr("Download CSV", "下载 CSV"), data, file_name=f"{safe_name}.csv", mime="text/csv", key=key)
