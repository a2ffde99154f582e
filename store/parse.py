"""SQL expressions that turn raw text cells into typed values, or NULL when they cannot.

Each parser returns a SQL expression over a VARCHAR expression; a companion check in the
loaders turns "non-empty input but NULL output" into a rejected row with a reason.
"""
from __future__ import annotations

from datetime import datetime, timedelta, timezone
from functools import lru_cache
from zoneinfo import ZoneInfo, available_timezones

from .errors import UserInputError

# Naive formats beyond what CAST(... AS TIMESTAMP) already reads (ISO with space or 'T').
NAIVE_FORMATS = [
    "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y/%m/%d",
    "%Y/%m/%dT%H:%M:%S", "%d/%m/%Y %H:%M:%S", "%Y.%m.%d %H:%M:%S",
]
OFFSET_RE = r"\d{4}-\d{2}-\d{2}[T ]\d{1,2}:\d{2}(:\d{2}(\.\d+)?)?\s*([Zz]|[+-]\d{2}(:?\d{2})?)"
EPOCH_S_RE = r"\d{9,11}(\.\d+)?"
EPOCH_MS_RE = r"\d{12,14}"


def check_timezone(tz: str) -> str:
    """Return ``tz`` if it is an IANA time zone name, else raise a :class:`UserInputError`."""
    if tz in ("UTC", "Etc/UTC"):
        return "UTC"
    if tz not in available_timezones():
        raise UserInputError(f"Unknown time zone '{tz}'; use an IANA name such as 'Asia/Shanghai' or 'UTC'.")
    ZoneInfo(tz)
    return tz


def timestamp_sql(raw: str, tz: str) -> str:
    """UTC TIMESTAMP from text: epoch s/ms, ISO-8601 with offset, or naive time read in ``tz``.

    ``tz`` must have passed :func:`check_timezone` (it is inlined as a literal).
    """
    formats = "[" + ", ".join(f"'{f}'" for f in NAIVE_FORMATS) + "]"
    naive = f"coalesce(TRY_CAST({raw} AS TIMESTAMP), try_strptime({raw}, {formats}))"
    local = naive if tz == "UTC" else local_to_utc_sql(naive, tz)
    # Cheap tests first: an epoch has no '-' (a byte search skips both epoch patterns for dates), and
    # an instant with an offset becomes UTC through its epoch microseconds, not a time-zone lookup.
    return f"""(CASE
        WHEN NOT contains({raw}, '-') AND regexp_full_match({raw}, '{EPOCH_S_RE}')
            THEN TRY_CAST(to_timestamp(TRY_CAST({raw} AS DOUBLE)) AT TIME ZONE 'UTC' AS TIMESTAMP)
        WHEN NOT contains({raw}, '-') AND regexp_full_match({raw}, '{EPOCH_MS_RE}')
            THEN epoch_ms(TRY_CAST({raw} AS BIGINT))
        WHEN regexp_full_match({raw}, '{OFFSET_RE}')
            THEN make_timestamp(epoch_us(TRY_CAST({raw} AS TIMESTAMPTZ)))
        ELSE {local}
    END)"""


@lru_cache(maxsize=64)
def fall_back_dates(tz: str) -> tuple[str, ...]:
    """Local dates (1970–2100) around each moment ``tz`` turns its clocks back, as 'YYYY-MM-DD'.

    Found by comparing the UTC offset at noon UTC of consecutive days, so a call costs ~50 ms once
    per zone. A window of one day either side covers transitions near midnight.
    """
    zone = ZoneInfo(tz)
    day = datetime(1970, 1, 1, 12, tzinfo=timezone.utc)
    prev = day.astimezone(zone).utcoffset()
    out: set[str] = set()
    while day.year <= 2100:
        day += timedelta(days=1)
        off = day.astimezone(zone).utcoffset()
        if off < prev:
            for k in (-2, -1, 0, 1):
                out.add((day + timedelta(days=k)).date().isoformat())
        prev = off
    return tuple(sorted(out))


def local_to_utc_sql(naive: str, tz: str) -> str:
    """UTC TIMESTAMP for the naive local time ``naive`` in ``tz``, with the daylight-saving edges fixed:

    - a time that does not exist (spring-forward gap, 02:30 on 2024-03-31 in Europe/Berlin) is
      shifted forward by the gap (read with the offset before it: 01:30 UTC = 03:30 CEST), as ICU
      and Python's zoneinfo do;
    - a time that exists twice (fall-back, 02:30 on 2024-10-27 in Europe/Berlin) is the first
      occurrence (00:30 UTC, still summer time), like zoneinfo's ``fold=0``. ICU picks the second,
      so on the few dates around a fall-back, when the offset six hours earlier also maps back to
      the same local time, that earlier instant is taken. Other dates take ICU's answer as is.
    """
    u = f"(timezone('{tz}', {naive}) AT TIME ZONE 'UTC')"
    dates = fall_back_dates(tz)
    if not dates:
        return u
    before = f"({u} - INTERVAL 6 HOUR)"
    earlier = f"({naive} - (timezone('{tz}', CAST({before} AS TIMESTAMPTZ)) - {before}))"
    listed = ", ".join(f"DATE '{d}'" for d in dates)
    return (f"(CASE WHEN CAST({naive} AS DATE) IN ({listed}) AND {earlier} < {u} "
            f"AND timezone('{tz}', CAST({earlier} AS TIMESTAMPTZ)) = {naive} THEN {earlier} ELSE {u} END)")


def number_sql(raw: str) -> str:
    """DOUBLE from text, or NULL (also for NaN and infinities).

    Currency signs and spaces are dropped; "1,234.5" reads as 1234.5 (thousands separators) and
    "1,5" as 1.5 (a decimal comma).
    """
    c = f"regexp_replace({raw}, '[\\s¥$€£￥]|CNY|RMB|USD|EUR', '', 'g')"
    # "1,234.5" -> thousands separators; "1,5" -> decimal comma; anything else as written.
    cleaned = (f"(CASE WHEN regexp_full_match({c}, '[-+]?\\d{{1,3}}(,\\d{{3}})+(\\.\\d+)?') THEN replace({c}, ',', '') "
               f"WHEN regexp_full_match({c}, '[-+]?\\d+,\\d+') THEN replace({c}, ',', '.') ELSE {c} END)")
    value = f"TRY_CAST({cleaned} AS DOUBLE)"
    # a plain number reads as itself (cleaning could only drop leading or trailing spaces from it)
    plain = f"TRY_CAST({raw} AS DOUBLE)"
    return f"(CASE WHEN isfinite({plain}) THEN {plain} WHEN isfinite({value}) THEN {value} END)"


def date_sql(raw: str) -> str:
    """DATE from text: ISO, slashed or dotted dates, or a date-time (its date part)."""
    return (f"coalesce(TRY_CAST({raw} AS DATE), TRY_CAST(TRY_CAST({raw} AS TIMESTAMP) AS DATE), "
            f"TRY_CAST(try_strptime({raw}, ['%Y/%m/%d', '%Y.%m.%d', '%Y/%m/%d %H:%M:%S', '%Y%m%d']) AS DATE))")
