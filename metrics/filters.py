"""The dashboard's global filters, one object every metric accepts as ``filters``.

Meaning, the same on every page:
- ``channels`` / ``campaigns`` select **users** by their first-touch acquisition channel/campaign
  (SPEC §1), so a campaign's users are followed through every later event, whatever its channel;
- ``segment`` keeps only events whose properties equal the given values (e.g. platform=ios);
- ``start`` / ``end`` are local dates in ``timezone``, both inclusive; each metric says what the
  range selects (funnel entry, retention cohorts, traffic events, acquired users and spend).
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime, time, timedelta
from datetime import timezone as dt_timezone
from functools import lru_cache
from types import MappingProxyType
from zoneinfo import ZoneInfo

from store.parse import check_timezone
from store.sqlutil import normalise_key

from .selectors import equals_sql


@dataclass(frozen=True)
class Filters:
    start: date | None = None
    end: date | None = None
    channels: tuple[str, ...] = ()
    campaigns: tuple[str, ...] = ()
    segment: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))
    timezone: str = "UTC"

    def __post_init__(self):
        object.__setattr__(self, "channels", tuple(k for k in map(normalise_key, self.channels) if k))
        object.__setattr__(self, "campaigns", tuple(k for k in map(normalise_key, self.campaigns) if k))
        object.__setattr__(self, "segment", MappingProxyType(dict(self.segment)))

    def __hash__(self):
        return hash((self.start, self.end, self.channels, self.campaigns, tuple(sorted(self.segment.items())),
                     self.timezone))

    @property
    def has_user_filter(self) -> bool:
        return bool(self.channels or self.campaigns)

    def users_sql(self, alias: str = "u") -> tuple[str, list]:
        """Predicate over the users table: first-touch channel/campaign in the selection."""
        parts, params = [], []
        if self.channels:
            parts.append(f"{alias}.channel IN ({', '.join('?' * len(self.channels))})")
            params += list(self.channels)
        if self.campaigns:
            parts.append(f"{alias}.campaign IN ({', '.join('?' * len(self.campaigns))})")
            params += list(self.campaigns)
        return (" AND ".join(parts) or "TRUE"), params

    def user_keys_sql(self, column: str) -> tuple[str, list]:
        """Predicate keeping the rows whose user key ``column`` belongs to a selected user ('TRUE' without a
        users selection). A selection keeps or drops each user whole, so over a table holding every event of
        each user it keeps every event of the selected users: what the per-user rollups need to stay exact."""
        if not self.has_user_filter:
            return "TRUE", []
        users, params = self.users_sql("fu")
        return f"{column} IN (SELECT fu.user_key FROM users fu WHERE {users})", params

    def events_sql(self, alias: str = "e") -> tuple[str, list]:
        """Predicate over events: the segment's property values and the users selection (no date range)."""
        parts, params = [], []
        for key, value in sorted(self.segment.items()):
            sql, p = equals_sql(key, value, alias)
            parts.append(sql)
            params += p
        if self.has_user_filter:
            users, p = self.user_keys_sql(f"{alias}.user_key")
            parts.append(users)
            params += p
        return (" AND ".join(parts) or "TRUE"), params

    def time_sql(self, column: str) -> tuple[list[str], list]:
        """Conditions (and bound values) keeping the UTC timestamp ``column`` in the date range."""
        return range_sql(column, *self.utc_range())

    def spend_sql(self, alias: str = "s") -> tuple[str, list]:
        """Predicate over spend rows: date in the range (local dates, inclusive), channel/campaign selection."""
        where, params = [], []
        if self.start is not None:
            where.append(f"{alias}.date >= ?")
            params.append(self.start)
        if self.end is not None:
            where.append(f"{alias}.date <= ?")
            params.append(self.end)
        for col, values in (("channel", self.channels), ("campaign", self.campaigns)):
            if values:
                where.append(f"{alias}.{col} IN ({', '.join('?' * len(values))})")
                params += list(values)
        return (" AND ".join(where) or "TRUE"), params

    def utc_range(self) -> tuple[datetime | None, datetime | None]:
        """[start, end) as naive UTC datetimes: local midnight of ``start`` to local midnight after ``end``."""
        return to_utc(self.start, self.timezone), to_utc(self.end + timedelta(days=1) if self.end else None,
                                                        self.timezone)

    def describe(self) -> str:
        bits = []
        if self.start or self.end:
            bits.append(f"{self.start or '…'} – {self.end or '…'} ({self.timezone})")
        if self.channels:
            bits.append("channels: " + ", ".join(self.channels))
        if self.campaigns:
            bits.append("campaigns: " + ", ".join(self.campaigns))
        if self.segment:
            bits.append("segment: " + ", ".join(f"{k}={v}" for k, v in self.segment.items()))
        return "; ".join(bits) or "all data"


def to_utc(value: date | datetime | None, tz: str) -> datetime | None:
    """A local date (midnight) or naive local datetime in ``tz`` as a naive UTC datetime."""
    if value is None:
        return None
    if not isinstance(value, datetime):
        value = datetime.combine(value, time())
    if value.tzinfo is None:
        value = value.replace(tzinfo=ZoneInfo(tz))
    return value.astimezone(ZoneInfo("UTC")).replace(tzinfo=None)


def range_sql(column: str, start, end) -> tuple[list[str], list]:
    """Conditions keeping ``column`` in [start, end) (None = open at that side) and their bound values."""
    conds, values = [], []
    if start is not None:
        conds.append(f"{column} >= ?")
        values.append(start)
    if end is not None:
        conds.append(f"{column} < ?")
        values.append(end)
    return conds, values


FIXED_YEARS = (2000, 2100)     # the years in which a fixed-offset zone's local time is plain arithmetic
CHANGING_YEARS = (2000, 2050)  # ... and those in which a zone with summer time (or other changes) is: each change is
                               # a branch of the SQL, so a shorter span than a fixed zone's keeps the query readable


@lru_cache(maxsize=64)
def fixed_offset_seconds(tz: str) -> int | None:
    """``tz``'s UTC offset in seconds if it is the same at every moment of :data:`FIXED_YEARS`, else None.

    Sampled every six hours: no offset in the time zone database lasts less than that."""
    zone = ZoneInfo(tz)
    moment = datetime(FIXED_YEARS[0], 1, 1, tzinfo=dt_timezone.utc) - timedelta(days=1)
    end = datetime(FIXED_YEARS[1], 1, 1, tzinfo=dt_timezone.utc) + timedelta(days=1)
    first = moment.astimezone(zone).utcoffset()
    while moment < end:
        if moment.astimezone(zone).utcoffset() != first:
            return None
        moment += timedelta(hours=6)
    return int(first.total_seconds())


@dataclass(frozen=True)
class ZoneOffsets:
    """A time zone's UTC offsets over ``[start, end)`` (naive UTC): ``first`` seconds from ``start``, then each
    ``(moment, seconds)`` of ``changes`` from its moment on (summer time begins or ends, the zone moves)."""

    zone: str
    start: datetime
    end: datetime
    first: int
    changes: tuple[tuple[datetime, int], ...]

    @property
    def whole_hours(self) -> bool:
        """Every offset a whole number of hours, and every change at a whole UTC hour: then every moment of a UTC
        hour has the offset of the hour's start (so it falls on that start's local day)."""
        return (self.first % 3600 == 0 and all(s % 3600 == 0 for _, s in self.changes)
                and all(m.minute == m.second == m.microsecond == 0 for m, _ in self.changes))

    def sql(self, column: str) -> str:
        """SQL for the offset in seconds at ``column``, a UTC timestamp in ``[start, end)``: the first offset, or a
        CASE finding the last change at or before it by halving the changes (a few comparisons per row, where the
        zone database's lookup is several times dearer)."""
        def part(lo: int, hi: int, before: int) -> str:   # changes[lo:hi], the offset before them being ``before``
            if lo == hi:
                return str(before)
            mid = (lo + hi) // 2
            moment, seconds = self.changes[mid]
            return (f"CASE WHEN {column} < TIMESTAMP '{moment:%Y-%m-%d %H:%M:%S}' THEN {part(lo, mid, before)} "
                    f"ELSE {part(mid + 1, hi, seconds)} END")

        if not self.changes:
            return str(self.first)
        return (f"/* {self.zone}: {len(self.changes)} offset changes {self.start.year}-{self.end.year - 1} */ "
                + part(0, len(self.changes), self.first))

    def holds(self, column: str) -> str:
        """SQL: ``column`` lies in ``[start, end)``."""
        return (f"{column} >= TIMESTAMP '{self.start:%Y-%m-%d %H:%M:%S}' "
                f"AND {column} < TIMESTAMP '{self.end:%Y-%m-%d %H:%M:%S}'")


@lru_cache(maxsize=64)
def zone_offsets(tz: str) -> ZoneOffsets:
    """``tz``'s offsets through :data:`FIXED_YEARS` when it keeps one, else through :data:`CHANGING_YEARS` with
    every change found to the second: sampled every six hours (no offset in the time zone database lasts less),
    each change then narrowed down between the two samples around it."""
    tz = check_timezone(tz)
    zone = ZoneInfo(tz)
    fixed = fixed_offset_seconds(tz)
    years = FIXED_YEARS if fixed is not None else CHANGING_YEARS
    start = datetime(years[0], 1, 1, tzinfo=dt_timezone.utc)
    end = datetime(years[1], 1, 1, tzinfo=dt_timezone.utc)

    def offset(moment: datetime) -> int:
        return int(moment.astimezone(zone).utcoffset().total_seconds())

    first = current = offset(start)
    changes, moment, step, second = [], start, timedelta(hours=6), timedelta(seconds=1)
    while fixed is None and moment < end:
        later = moment + step
        if offset(later) == current:
            moment = later
            continue
        lo, hi = moment, later   # the offset is ``current`` at lo and another at hi: halve to the changing second
        while hi - lo > second:
            mid = (lo + (hi - lo) // 2).replace(microsecond=0)
            lo, hi = (mid, hi) if offset(mid) == current else (lo, mid)
        if hi < end:
            current = offset(hi)
            changes.append((hi.replace(tzinfo=None), current))
        moment = hi
    return ZoneOffsets(tz, start.replace(tzinfo=None), end.replace(tzinfo=None), first, tuple(changes))


def local_day_sql(column: str, offset_seconds: int | str) -> str:
    """SQL for the local day number (days since 1970-01-01, not yet cast to an integer type) of the stored UTC
    timestamp ``column`` in a zone ``offset_seconds`` ahead of UTC (a number, or SQL for it such as
    :meth:`ZoneOffsets.sql`): integer arithmetic on the epoch seconds, the cheap way to a local day where the
    offset is known (no interval added to every timestamp)."""
    return f"floor((EXTRACT(EPOCH FROM {column}) + ({offset_seconds})) / 86400)"


def local_sql(column: str, tz: str) -> str:
    """SQL for a stored UTC timestamp ``column`` as naive local time in ``tz``.

    ``tz`` is checked against the IANA names before it is inlined (DuckDB's ``timezone`` needs a
    literal here), so an unknown or hostile name raises ``UserInputError`` instead of reaching SQL.

    A time within the years of :func:`zone_offsets` is the UTC time plus the zone's offset then — one number in
    a zone that keeps it through :data:`FIXED_YEARS` (Asia/Shanghai, Asia/Tokyo, Asia/Kolkata …), else a CASE
    over the zone's changes through :data:`CHANGING_YEARS` (Europe/London, America/New_York …): the same value
    as the time-zone lookup, several times cheaper over millions of events. Other times take the lookup.
    ``column`` is then read several times, so an expression holding a ``?`` (bound once by its caller) or a
    subquery (run again at each reading) always takes the lookup.
    """
    tz = check_timezone(tz)
    if tz == "UTC":
        return column
    lookup = f"timezone('{tz}', {column} AT TIME ZONE 'UTC')"
    if "?" in column or "select" in column.lower():
        return lookup
    zone = zone_offsets(tz)
    return (f"(CASE WHEN {zone.holds(column)} THEN {column} + ({zone.sql(column)}) * INTERVAL '1 second' "
            f"ELSE {lookup} END)")
