"""What the one-pass page functions share (:func:`metrics.traffic.traffic_page`,
:func:`metrics.referral.referral_page`, :func:`metrics.economics.economics_levels`): they compute the expensive
part of several metric queries once into temporary tables, then run the rest of each query over those.

* :func:`split_at` cuts a generated query before one of its CTEs, found by the comment that introduces it;
* :func:`temp_tables` names the tables of one computation and drops them afterwards, whatever happens.

And what the metrics that read the load's rollups share (:mod:`metrics.funnel`, :mod:`metrics.traffic`):
:func:`over_every_event` runs a query without its date range when that range holds every stored event
(:func:`range_holds`); :func:`hours_ok` says when the hours with an event stand for the events, and
:func:`with_hours` runs a query over them when they do (:mod:`metrics.retention`, :mod:`metrics.referral`).
Since such a metric's query depends on the stored data as well as on its parameters, its frame carries the query
that made it (:func:`ran`, :func:`query_of`), and a page shows that one instead of choosing again.
"""
from __future__ import annotations

from contextlib import contextmanager
from typing import Callable, Iterator, TypeVar

import pandas as pd

from store.parse import check_timezone

from .filters import Filters, ZoneOffsets, zone_offsets

T = TypeVar("T")


def split_at(sql: str, marker: str) -> tuple[str, str]:
    """``sql`` cut before ``marker`` (the comment or header of a CTE): what comes before it, without the
    trailing comma that separated the CTEs, and the rest from ``marker`` on."""
    at = sql.index(marker)
    return sql[:at].rstrip().rstrip(","), sql[at:]


@contextmanager
def temp_tables(con, *names: str) -> Iterator[tuple[str, ...]]:
    """``names`` for temporary tables of ``con`` that live for the ``with`` block: dropped when it ends,
    also on an error or a stopped query (a table that was never created is no error)."""
    try:
        yield names
    finally:
        for name in names:
            con.execute(f"DROP TABLE IF EXISTS {name}")


@contextmanager
def one_snapshot(con) -> Iterator[None]:
    """A transaction around the block, so that its statements read the same loads (a load committing meanwhile is
    not seen) — or, when ``con`` is within a transaction of its caller already, that one (a failed ``BEGIN``
    would abort it). Rolled back on an error or a stopped query; it only reads, and writes temporary tables."""
    first = con.execute("SELECT current_transaction_id()").fetchone()[0]
    if con.execute("SELECT current_transaction_id()").fetchone()[0] == first:
        # the same transaction for two statements: the caller's (in auto-commit each statement has its own)
        yield
        return
    con.execute("BEGIN TRANSACTION")
    try:
        yield
    except BaseException:
        con.execute("ROLLBACK")
        raise
    con.execute("COMMIT")


def event_span(con) -> tuple:
    """The first and last stored event time (``(None, None)`` without events), from column statistics."""
    return con.execute("SELECT min(event_time), max(event_time) FROM events").fetchone()


def range_holds(start, end, span: tuple) -> bool:
    """Whether the UTC range ``[start, end)`` (``None``: open on that side) holds ``span``, the first and last
    stored event time (:func:`event_span`)."""
    lo, hi = span
    return (start is None or start <= lo) and (end is None or hi < end)


def over_every_event(con, holds: Callable[[tuple], bool], whole: Callable[[], T], ranged: Callable[[], T]) -> T:
    """``whole()`` — the query built without its date range, which may read the rollups every load keeps — when
    ``holds(span)`` says the range holds every stored event (``span`` = :func:`event_span`, never empty here);
    else ``ranged()``, the query as asked. Should a load commit between the check and the query, ``ranged()``
    after all."""
    span = event_span(con)
    if span[0] is None or not holds(span):
        return ranged()
    out = whole()
    return out if event_span(con) == span else ranged()


def hours_ok(con, filters: Filters | None, timezone: str) -> bool:
    """Whether the active users per local day, week or month can come from ``user_hours`` (each user's UTC
    hours with an event, kept by every load) instead of the events: every event of a UTC hour falls on the local
    day of the hour's start when the zone is UTC, or when every offset it has within the years of
    :func:`metrics.filters.zone_offsets` is a whole number of hours, every change of it (summer time) falls on a
    whole UTC hour, and every stored event is in those years. Not with a segment (a condition on event
    properties)."""
    if filters is not None and filters.segment:
        return False
    if check_timezone(timezone) == "UTC":
        return True
    zone = zone_offsets(timezone)
    if not zone.whole_hours:
        return False
    first, last = event_span(con)
    return first is None or (first >= zone.start and last < zone.end)


def hours_zone(timezone: str) -> ZoneOffsets | None:
    """The offsets by which a query made where :func:`hours_ok` holds reads local times (None in UTC); a zone whose
    offsets or changes are not whole hours raises ``ValueError``."""
    if check_timezone(timezone) == "UTC":
        return None
    zone = zone_offsets(timezone)
    if not zone.whole_hours:
        raise ValueError(f"{timezone} has an offset or a change that is not a whole hour: its local times are not "
                         "read over the hours")
    return zone


def hours_local_sql(column: str, timezone: str) -> str:
    """SQL for the local time in ``timezone`` of ``column``, a UTC time within the stored events' span, in a query
    made where :func:`hours_ok` holds: the UTC time plus the zone's offset then (:func:`hours_zone`), every stored
    event being in the years of :func:`metrics.filters.zone_offsets` (:func:`metrics.filters.local_sql` also
    converts times outside them, at a cost per row; :func:`with_hours` keeps such a query's result only if the
    check still holds after it)."""
    zone = hours_zone(timezone)
    return column if zone is None else f"({column} + ({zone.sql(column)}) * INTERVAL '1 second')"


def with_hours(con, filters: Filters | None, timezone: str, run: Callable[[bool], T]) -> T:
    """``run(hours)`` with ``hours`` = :func:`hours_ok`. Should a load commit between the check and the query
    and bring events from outside the zone's years (:func:`metrics.filters.zone_offsets`), for which the hours no
    longer stand, ``run(False)`` after all: the check is made again after the query, as :func:`over_every_event`
    does for the date range."""
    hours = hours_ok(con, filters, timezone)
    out = run(hours)
    return run(False) if hours and not hours_ok(con, filters, timezone) else out


def ran(frame: pd.DataFrame, query: tuple[str, list]) -> pd.DataFrame:
    """``frame``, recording ``query`` — the ``(SQL, bound values)`` it was computed by — in ``frame.attrs``
    (kept through copies and pickling, so also through the dashboard's cache)."""
    frame.attrs["query"] = query
    return frame


def query_of(frame: pd.DataFrame) -> tuple[str, list]:
    """The ``(SQL, bound values)`` :func:`ran` recorded on ``frame``."""
    return frame.attrs["query"]
