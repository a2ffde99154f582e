"""Load events, spend and survey files into the store.

Query intuition. A load is two passes inside DuckDB, never a Python loop over rows:

1. **parse** — the file is read by DuckDB's own reader (all columns as text; malformed lines go
   to DuckDB's reject table with their line number) and every cell is parsed by SQL into a typed
   temporary table ``_parsed`` with one extra column, ``reason``: NULL for a usable row, else why
   it cannot be used ("no user_id", "event_time 'abc' is not a date-time", ...).
2. **write** — in one transaction: new rows (not already stored, first copy within the file) are
   inserted, the users table is updated incrementally (first_seen, first touch), rejected rows and
   the load report are recorded. Any error rolls the whole load back, so a failed load leaves the
   database exactly as it was.

Row numbers: ``line`` in a report is the file line where the row starts (header = line 1; line
breaks inside quoted cells of earlier rows are counted); for a DataFrame it is the 1-based row
position. Lines are only needed for rejected rows, so the line breaks inside cells are counted
(in a second read of the file) only when a load rejects rows; a clean file is read once.

Size: the file is never held in Python. ``_parsed`` is the only full copy; duplicates are found as
a (usually empty) list of row numbers to skip, and new rows are read from ``_parsed`` in place.
DuckDB's memory is capped during a load (``OPSFUNNEL_LOAD_MEMORY``, default 2 GB) and it spills
to disk beyond that, so a 10-million-row file loads in well under 3 GB.
"""
from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Callable, Iterable, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace

import duckdb
import pandas as pd

from . import formats
from .errors import LoadRefused, UserInputError
from .mapping import ALIASES, detect_mapping
from .parse import check_timezone, date_sql, number_sql, timestamp_sql
from .schema import bump_data_version, stored_pageview_events
from .sqlutil import key_sql, quote_ident

Source = "str | os.PathLike | pd.DataFrame"
MAX_REJECT_SAMPLES = 100_000


@dataclass
class LoadReport:
    """What a load did. ``rejected_samples`` holds up to the first rejected rows (line, reason, raw)."""

    source: str
    kind: str
    rows_read: int = 0
    loaded: int = 0
    duplicates: int = 0
    replaced: int = 0
    rejected: int = 0
    seconds: float = 0.0
    mapping: dict[str, str] = field(default_factory=dict)
    rejected_samples: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=["line", "reason", "raw"]))
    load_id: int | None = None
    details: dict = field(default_factory=dict)

    def summary(self) -> str:
        parts = [f"{self.source}: {self.rows_read:,} rows read", f"{self.loaded:,} loaded"]
        if self.duplicates:
            parts.append(f"{self.duplicates:,} duplicates skipped")
        if self.replaced:
            parts.append(f"{self.replaced:,} earlier rows replaced")
        parts.append(f"{self.rejected:,} rejected")
        return ", ".join(parts) + f" in {self.seconds:.1f} s"


# --------------------------------------------------------------------------------------------
# Reading a source into a relation of text columns
# --------------------------------------------------------------------------------------------

@dataclass
class _Source:
    relation_sql: str          # a FROM-able SQL text over text columns
    headers: list[str]
    name: str
    reader_rejects: str | None  # temp table of DuckDB CSV rejects, if any
    header_lines: int          # 1 for files with a header line, 0 for DataFrames
    cleanup: Callable[[], None]
    text: bool = False         # a delimited text file (embedded newlines shift line numbers)
    ascii_sample: bool = False  # the sampled start of the file was plain ASCII
    encoding: str = "utf-8"
    reread_sql: str | None = None  # the same rows as ``relation_sql``, without recording reader rejects again


def _register_frame(con, df: pd.DataFrame, name: str) -> _Source:
    df = df.copy()
    df.columns = formats.unique_headers(list(df.columns))
    for col in df.columns:
        if df[col].dtype == object and df[col].map(lambda v: isinstance(v, (dict, list))).any():
            df[col] = df[col].map(lambda v: json.dumps(v, sort_keys=True, ensure_ascii=False)
                                  if isinstance(v, (dict, list)) else v)
    view = "_src_frame"
    con.register(view, df)
    return _Source(view, list(df.columns), name, None, 0, lambda: con.unregister(view))


def _open_source(con, source, name: str | None, kind: str, *, encoding: str | None = None,
                 limit_bytes: int | None = None) -> _Source:
    if isinstance(source, pd.DataFrame):
        return _register_frame(con, source, name or "DataFrame")
    info = formats.inspect(source, name, encoding=encoding, limit_bytes=limit_bytes)
    if info.container == "xlsx":
        if kind == "events":
            raise LoadRefused(f"{info.display_name}: events must be CSV or Parquet; XLSX is accepted for spend and survey sheets.")
        try:
            df = pd.read_excel(info.path, dtype=str)
        except Exception as exc:  # openpyxl raises many types for broken files
            raise LoadRefused(f"{info.display_name}: not a readable XLSX workbook ({exc}).") from exc
        src = _register_frame(con, df, info.display_name)
        src.header_lines = 1
        return src
    if info.container == "parquet":
        path = str(info.path).replace("'", "''")
        try:
            headers = [r[0] for r in con.execute(f"DESCRIBE SELECT * FROM read_parquet('{path}')").fetchall()]
        except duckdb.Error as exc:
            raise LoadRefused(f"{info.display_name}: not a readable Parquet file ({str(exc).splitlines()[0]}).") from exc
        return _Source(f"read_parquet('{path}')", headers, info.display_name, None, 0, info.cleanup)
    if len(info.headers) < 2:
        info.cleanup()
        raise LoadRefused(
            f"{info.display_name}: found only one column ({formats.headers_shown(info.headers)}); "
            f"expected a header line separated by comma, semicolon, tab or pipe."
        )
    path = str(info.path).replace("'", "''")
    columns = "{" + ", ".join("'" + h.replace("'", "''") + "': 'VARCHAR'" for h in info.headers) + "}"
    delim = info.delimiter.replace("'", "''")
    con.execute("DROP TABLE IF EXISTS _reader_rejects; DROP TABLE IF EXISTS _reader_scans")
    options = (f"delim='{delim}', header=true, columns={columns}, "
               f"quote='\"', escape='\"', compression='{'gzip' if info.compression == 'gzip' else 'none'}', "
               f"ignore_errors=true, null_padding=false, max_line_size=8388608, auto_detect=false")
    rel = (f"read_csv('{path}', {options}, store_rejects=true, rejects_table='_reader_rejects', "
           f"rejects_scan='_reader_scans')")
    return _Source(rel, info.headers, info.display_name, "_reader_rejects", 1, info.cleanup, text=True,
                   ascii_sample=info.ascii_sample, encoding=info.encoding,
                   reread_sql=f"read_csv('{path}', {options})")


def _text(header: str | None) -> str:
    """SQL for a trimmed text cell, or NULL when unmapped or blank."""
    if header is None:
        return "NULL"
    # a byte-order mark inside a cell (files concatenated after their BOM) is invisible: drop it.
    # ``contains`` is a cheap byte search, so only the rare cells holding one pay for the copy.
    # ``trim`` copies every cell; among ASCII characters it removes only the space (the others it removes
    # are Unicode spaces), so a cell of ASCII characters (as many bytes as characters) that neither starts
    # nor ends with a space is kept as it is — most cells of most files, at half the cost.
    cell = f"CAST({quote_ident(header)} AS VARCHAR)"
    trimmed = (f"CASE WHEN {cell} LIKE ' %' OR {cell} LIKE '% ' OR strlen({cell}) <> length({cell}) "
               f"THEN trim({cell}) ELSE {cell} END")
    return (f"NULLIF(CASE WHEN contains({cell}, chr(65279)) THEN trim(replace({cell}, chr(65279), '')) "
            f"ELSE {trimmed} END, '')")


def _raw_json(headers: list[str], carried: bool = False) -> str:
    """SQL for the source row as JSON text {header: cell}; ``carried`` reads the ``_cN`` copies of
    the cells (see :func:`_carry_sql`) so the JSON is only built for rejected rows."""
    cells = [f'"_c{i}"' if carried else quote_ident(h) for i, h in enumerate(headers)]
    pairs = ", ".join(f"'{h.replace(chr(39), chr(39) * 2)}', CAST({c} AS VARCHAR)" for h, c in zip(headers, cells))
    return f"CAST(json_object({pairs}) AS VARCHAR)"


def _object_sql(headers: list[str]) -> str:
    """SQL for the JSON object text {header: trimmed cell} of ``headers``' non-blank cells, NULL if none.

    The same text as ``json_merge_patch('{}', json_object(...))`` (which drops NULLs), written as
    key/value pieces joined by ``concat_ws`` (which skips NULLs) at half the cost.
    """
    pieces = []
    for h in headers:
        key = "'" + h.replace("'", "''") + "'"
        pieces.append(f"CAST(to_json({key}) AS VARCHAR) || ':' || CAST(to_json({_text(h)}) AS VARCHAR)")
    return f"NULLIF('{{' || concat_ws(',', {', '.join(pieces)}) || '}}', '{{}}')"


def _carry_sql(headers: list[str]) -> str:
    """The source cells under positional names ``_c0, _c1, ...`` (no clash with canonical names)."""
    return ", ".join(f'{quote_ident(h)} AS "_c{i}"' for i, h in enumerate(headers))


def _newlines_sql(src: _Source) -> str:
    """SQL for the number of line breaks inside a row's quoted cells (0 for non-text sources).

    ``contains`` is a cheap byte search, so the counting only runs on the rare multi-line rows.
    """
    if not src.text:
        return "0"
    terms = [f"CASE WHEN contains({quote_ident(h)}, chr(10)) THEN length({quote_ident(h)}) - "
             f"length(replace({quote_ident(h)}, chr(10), '')) ELSE 0 END" for h in src.headers]
    return _balanced_sum(terms)


def _balanced_sum(terms: list[str]) -> str:
    """``a + b + ...`` as a balanced tree, so a wide file stays within SQL expression-depth limits."""
    if len(terms) == 1:
        return f"({terms[0]})"
    mid = len(terms) // 2
    return f"({_balanced_sum(terms[:mid])} + {_balanced_sum(terms[mid:])})"


# --------------------------------------------------------------------------------------------
# The write transaction
# --------------------------------------------------------------------------------------------

LOAD_MEMORY_LIMIT = os.environ.get("OPSFUNNEL_LOAD_MEMORY", "2GB")


def _checkpoint(stage: str) -> None:
    """A seam for tests that inject a failure part-way through a load."""


def _next_load_id(con) -> int:
    return con.execute("SELECT coalesce(max(load_id), 0) + 1 FROM loads").fetchone()[0]


def _newline_rows(con, src: _Source) -> str | None:
    """The table whose ``_nl`` column counts the line breaks inside each ``_parsed`` row (same rowid).

    Spend and survey sheets carry ``_nl`` in ``_parsed`` itself. Events do not: line numbers are
    only needed for rejected rows, so a load without any skips the count, and one with some reads
    the file a second time for it (``_nl_rows``, one small integer per row, in file order like
    ``_parsed``). ``None`` for a source without line breaks to count (a DataFrame, Parquet).
    """
    if not src.text:
        return None
    names = [r[0] for r in con.execute("SELECT name FROM pragma_table_info('_parsed')").fetchall()]
    if "_nl" in names:
        return "_parsed"
    con.execute("DROP TABLE IF EXISTS _nl_rows")
    con.execute(f"CREATE TEMP TABLE _nl_rows AS SELECT CAST({_newlines_sql(src)} AS INTEGER) AS _nl "
                f"FROM {src.reread_sql or src.relation_sql}")
    return "_nl_rows"


def _line_sql(src: _Source, nl_table: str | None = "_parsed") -> str:
    """SQL for the file line where ``_parsed`` row ``p.rowid`` starts.

    Line = header lines + row position + line breaks inside the quoted cells of earlier rows (from
    ``nl_table``, see :func:`_newline_rows`) + lines DuckDB's reader rejected before it. For a
    DataFrame it is the 1-based row position.
    """
    if src.header_lines == 0:
        return "CAST(p.rowid + 1 AS BIGINT)"
    base = f"CAST((p.rowid + {src.header_lines + 1}"
    if src.text and nl_table is not None:
        base += f" + coalesce((SELECT sum(m._nl) FROM {nl_table} m WHERE m._nl > 0 AND m.rowid < p.rowid), 0)"
    if src.reader_rejects is not None:
        # k = the number of accepted rows before a rejected line; it precedes row p when k <= p.rowid
        base += (" + (SELECT count(*) FROM (SELECT line - 2 - (row_number() OVER (ORDER BY line) - 1) AS k "
                 "FROM (SELECT DISTINCT line FROM _reader_rejects)) r WHERE r.k <= p.rowid)")
    return base + ") AS BIGINT)"


def _reader_reject_rows(con, src: _Source) -> int:
    if src.reader_rejects is None:
        return 0
    return con.execute("SELECT count(DISTINCT line) FROM _reader_rejects").fetchone()[0]


class _EncodingError(Exception):
    """Internal: DuckDB's reader found bytes that are not UTF-8 after the sampled start."""

    def __init__(self, line: int, lines: int):
        super().__init__(line)
        self.line, self.lines = line, lines


def _check_encoding(con, src: _Source) -> None:
    """Raise :class:`_EncodingError` when the reader rejected lines for their encoding."""
    if src.reader_rejects is None:
        return
    first, n = con.execute(
        """SELECT min(line), count(DISTINCT line) FROM _reader_rejects
           WHERE lower(CAST(error_type AS VARCHAR)) LIKE '%encoding%'
              OR lower(error_message) LIKE '%unicode%'""").fetchone()
    if n:
        raise _EncodingError(first, n)


def _record_rejects(con, src: _Source, load_id: int, nl_table: str | None, parse_rejected: int) -> None:
    if parse_rejected:
        con.execute(
            f"""INSERT INTO rejected_rows
                SELECT ?, ?, {_line_sql(src, nl_table)}, p.reason, p.raw
                FROM _parsed p WHERE p.reason IS NOT NULL""",
            [load_id, src.name],
        )
    if src.reader_rejects is not None:
        con.execute(
            """INSERT INTO rejected_rows
               SELECT ?, ?, line, 'malformed line: ' || lower(CAST(any_value(error_type) AS VARCHAR))
                      || ' (' || any_value(error_message) || ')', any_value(csv_line)
               FROM _reader_rejects GROUP BY line""",
            [load_id, src.name],
        )


def _finish(con, report: LoadReport, load_id: int, src: _Source, started: float) -> LoadReport:
    report.seconds = time.perf_counter() - started
    con.execute(
        "INSERT INTO loads VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, now())",
        [load_id, report.kind, src.name, report.rows_read, report.loaded, report.duplicates,
         report.replaced, report.rejected, report.seconds, json.dumps(report.mapping, ensure_ascii=False)],
    )
    bump_data_version(con)
    report.load_id = load_id
    return report


_UNITS = {"": 1, "b": 1, "bytes": 1, "kb": 10**3, "mb": 10**6, "gb": 10**9, "tb": 10**12,
          "kib": 2**10, "mib": 2**20, "gib": 2**30, "tib": 2**40}


def _size_bytes(text: str) -> float | None:
    """Bytes in a DuckDB size setting such as '18.6 GiB' or '2GB' (None when unreadable)."""
    m = re.fullmatch(r"\s*([\d.]+)\s*([a-zA-Z]*)\s*", str(text))
    if not m or m.group(2).lower() not in _UNITS:
        return None
    return float(m.group(1)) * _UNITS[m.group(2).lower()]


@contextmanager
def _load_settings(con):
    """Cap DuckDB's memory for the load (it spills to disk beyond), restoring the setting afterwards.

    Only ever lowers the limit: a connection already set lower keeps its own.
    """
    before = con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0]
    current, wanted = _size_bytes(before), _size_bytes(LOAD_MEMORY_LIMIT)
    if current is not None and wanted is not None and current <= wanted:
        before = None
    else:
        try:
            con.execute(f"SET memory_limit = '{LOAD_MEMORY_LIMIT}'")
        except duckdb.Error:
            before = None
    try:
        yield
    finally:
        if before is not None:
            # the shown value is rounded: RESET gives the default exactly; SET only a non-default value
            con.execute("RESET memory_limit")
            if con.execute("SELECT current_setting('memory_limit')").fetchall()[0][0] != before:
                con.execute(f"SET memory_limit = '{before}'")


def _parse_source(con, source, kind: str, mapping, name, build_parsed, *, limit_bytes: int | None = None,
                  limit_rows: int | None = None):
    """Open ``source`` and build ``_parsed``; return ``(src, cols)``. The caller cleans ``src`` up.

    A file whose start looked like plain ASCII but whose later part is not UTF-8 is read again as
    GB18030 (Excel's Chinese CSV); any other undecodable line refuses the file with its line number.
    """
    encoding, utf8_error = None, None
    while True:
        try:
            src = _open_source(con, source, name, kind, encoding=encoding, limit_bytes=limit_bytes)
        except LoadRefused:
            if utf8_error is None:
                raise
            raise utf8_error from None
        try:
            formats.check_column_count(src.headers, src.name)
            if limit_rows is not None:
                src.relation_sql = f"(SELECT * FROM {src.relation_sql} LIMIT {int(limit_rows)})"
                if src.reread_sql is not None:
                    src.reread_sql = f"(SELECT * FROM {src.reread_sql} LIMIT {int(limit_rows)})"
            cols = detect_mapping(kind, src.headers, mapping, src.name)
            con.execute("DROP TABLE IF EXISTS _parsed")
            try:
                build_parsed(con, src, cols)
            except duckdb.Error as exc:
                raise LoadRefused(
                    f"{src.name}: the file could not be read as {kind} ({str(exc).splitlines()[0]}).") from exc
            _check_encoding(con, src)
            return src, cols
        except _EncodingError as exc:
            src.cleanup()
            refusal = utf8_error or LoadRefused(
                f"{src.name}: line {exc.line:,} is not valid {src.encoding.upper()} text "
                f"({exc.lines:,} line(s) affected); the file mixes encodings. Save it in one encoding, "
                f"preferably UTF-8, and load it again.")
            if encoding is None and src.ascii_sample and not isinstance(source, pd.DataFrame):
                encoding, utf8_error = "gb18030", refusal   # an ASCII start may hide a GBK file
                continue
            raise refusal from None
        except BaseException:
            src.cleanup()
            raise


def _run_load(con, source, kind: str, mapping, name, build_parsed: Callable[..., None],
              write: Callable[[LoadReport, int], None]) -> LoadReport:
    started = time.perf_counter()
    with _load_settings(con):
        src = None
        try:
            src, cols = _parse_source(con, source, kind, mapping, name, build_parsed)
            report = LoadReport(source=src.name, kind=kind, mapping=cols)
            reader_rejected = _reader_reject_rows(con, src)
            parsed_rows, parse_rejected = con.execute(
                "SELECT count(*), count(reason) FROM _parsed").fetchone()
            report.rows_read = parsed_rows + reader_rejected
            report.rejected = parse_rejected + reader_rejected
            if report.rows_read == 0:
                raise LoadRefused(f"{src.name}: the file has a header ({', '.join(src.headers)}) but no rows.")
            # before the transaction: rowids of a table created inside one are not file positions
            nl_table = _newline_rows(con, src) if parse_rejected else None
            con.execute("BEGIN TRANSACTION")
            try:
                load_id = _next_load_id(con)
                write(report, load_id)
                _checkpoint("after_write")
                _record_rejects(con, src, load_id, nl_table, parse_rejected)
                _checkpoint("after_rejects")
                _finish(con, report, load_id, src, started)
                _checkpoint("before_commit")
                con.execute("COMMIT")
            except BaseException:
                con.execute("ROLLBACK")
                raise
            report.rejected_samples = con.execute(
                "SELECT line, reason, raw FROM rejected_rows WHERE load_id = ? ORDER BY line LIMIT ?",
                [load_id, MAX_REJECT_SAMPLES]).df()
            return report
        finally:
            con.execute("DROP VIEW IF EXISTS _new_events; DROP TABLE IF EXISTS _skip; DROP TABLE IF EXISTS _parsed; "
                        "DROP TABLE IF EXISTS _batch_users; DROP TABLE IF EXISTS _batch_user_events; "
                        "DROP TABLE IF EXISTS _batch_by_name; DROP TABLE IF EXISTS _batch_users_touched; "
                        "DROP TABLE IF EXISTS _hours_touched; DROP TABLE IF EXISTS _hours_of_touched; "
                        "DROP TABLE IF EXISTS _touched_sessions; DROP TABLE IF EXISTS _touched_counts; "
                        "DROP TABLE IF EXISTS _part_users; "
                        "DROP TABLE IF EXISTS _reader_rejects; "
                        "DROP TABLE IF EXISTS _reader_scans; DROP TABLE IF EXISTS _nl_rows")
            if src is not None:
                src.cleanup()


# --------------------------------------------------------------------------------------------
# Events
# --------------------------------------------------------------------------------------------

def _build_events(con, src: _Source, cols: dict, tz: str = "UTC") -> None:
    """Create ``_parsed``: one typed row per source row with ``reason`` (NULL = usable).

    Line breaks inside cells are not counted here (see :func:`_newline_rows`)."""
    canon = {c: _text(cols.get(c)) for c in ALIASES["events"]}
    mapped = set(cols.values())
    extra = sorted(h for h in src.headers if h not in mapped and h != "properties")
    prop_pairs = ", ".join(f"'{h.replace(chr(39), chr(39) * 2)}', {_text(h)}" for h in extra)
    # Unmapped columns become properties (NULLs dropped); a 'properties' column is merged in when it
    # holds a JSON object, else kept as the text property "properties" (nothing silently lost).
    has_props = "properties" in src.headers and "properties" not in mapped
    if has_props:
        ptext = _text("properties")
        base_props = (f"(CASE WHEN json_type(TRY_CAST({ptext} AS JSON)) = 'OBJECT' THEN TRY_CAST({ptext} AS JSON) "
                      f"WHEN {ptext} IS NOT NULL THEN json_object('properties', {ptext}) END)")
    if not extra and not has_props:
        props = "CAST(NULL AS VARCHAR)"
    elif not has_props:
        props = _object_sql(extra)
    else:
        extra_props = f"json_object({prop_pairs})" if extra else "'{}'"
        props = (f"NULLIF(CAST(json_merge_patch(coalesce({base_props}, '{{}}'), {extra_props}) AS VARCHAR), '{{}}')")
    t = timestamp_sql("_t", tz)
    con.execute(f"""
        CREATE TEMP TABLE _parsed AS
        WITH raw AS (                                   -- text cells, trimmed; the source row kept aside
            SELECT {canon['event_id']} AS _id, {canon['user_id']} AS user_id,
                   {canon['event_name']} AS event_name, {canon['event_time']} AS _t,
                   {canon['session_id']} AS session_id, {key_sql(canon['channel'])} AS channel,
                   {key_sql(canon['campaign'])} AS campaign, {canon['page']} AS page,
                   {canon['revenue']} AS _rev, {props} AS properties,
                   {_carry_sql(src.headers)}
            FROM {src.relation_sql}
        ),
        typed AS (                                      -- parsed values
            SELECT *, {t} AS event_time, {number_sql('_rev')} AS revenue FROM raw
        ),
        checked AS (                                    -- why a row cannot be used, NULL when it can
            SELECT *, CASE
                WHEN user_id IS NULL THEN 'no user_id'
                WHEN event_name IS NULL THEN 'no event_name'
                WHEN _t IS NULL THEN 'no event_time'
                WHEN event_time IS NULL THEN 'event_time ''' || left(_t, 60) || ''' is not a date-time'
                WHEN event_time < TIMESTAMP '1970-01-01' OR event_time >= TIMESTAMP '2101-01-01'
                    THEN 'event_time ''' || left(_t, 60) || ''' is outside 1970–2100'
                WHEN _rev IS NOT NULL AND revenue IS NULL THEN 'revenue ''' || left(_rev, 60) || ''' is not a finite number'
            END AS reason
            FROM typed
        )
        SELECT
            coalesce(_id, md5(concat_ws(chr(31), user_id, event_name,
                strftime(event_time, '%Y-%m-%dT%H:%M:%S.%f'), coalesce(session_id, ''),
                coalesce(channel, ''), coalesce(campaign, ''), coalesce(page, ''),
                coalesce(CAST(revenue AS VARCHAR), ''), coalesce(properties, '')))) AS event_id,
            user_id, event_name, event_time, session_id, channel, campaign, page, revenue, properties,
            reason, CASE WHEN reason IS NOT NULL THEN {_raw_json(src.headers, carried=True)} END AS raw
        FROM checked
    """)


def load_events(con: duckdb.DuckDBPyConnection, source, mapping: Mapping[str, str | None] | None = None,
                source_timezone: str = "UTC", *, name: str | None = None) -> LoadReport:
    """Load an events file (CSV, .csv.gz, Parquet) or a DataFrame; return its :class:`LoadReport`.

    ``mapping`` is ``{canonical: header}`` and overrides the automatic alias mapping. Naive times are
    read in ``source_timezone`` and stored as UTC. Rows already stored (same ``event_id``) are skipped;
    unusable rows are recorded in ``rejected_rows`` with their line and reason.
    """
    tz = check_timezone(source_timezone)

    def build(con, src: _Source, cols: dict) -> None:
        _build_events(con, src, cols, tz)

    def write(report: LoadReport, load_id: int) -> None:
        # rows to skip: later copies of an event_id within the file, and events already stored.
        # Only these (usually few) row numbers are materialised; the new rows are read from
        # _parsed in place, so a big file is never copied a second time. A first load (no events
        # stored yet) has nothing to match against.
        stored = con.execute("SELECT EXISTS (SELECT 1 FROM events)").fetchone()[0]
        against_stored = """
            UNION
            SELECT p.rowid FROM _parsed p JOIN events e ON e.event_id = p.event_id WHERE p.reason IS NULL
        """ if stored else ""
        con.execute(f"""
            CREATE TEMP TABLE _skip AS
            WITH candidates AS (                            -- 64-bit hashes seen more than once (cheap)
                SELECT hash(event_id) AS h FROM _parsed WHERE reason IS NULL
                GROUP BY hash(event_id) HAVING count(*) > 1
            ),
            repeated AS (                                   -- event_ids occurring more than once (exact)
                SELECT event_id, min(rowid) AS keep FROM _parsed
                WHERE reason IS NULL AND hash(event_id) IN (SELECT h FROM candidates)
                GROUP BY event_id HAVING count(*) > 1
            )
            SELECT p.rowid AS rid FROM _parsed p JOIN repeated r ON r.event_id = p.event_id
            WHERE p.reason IS NULL AND p.rowid <> r.keep
            {against_stored}
        """)
        skipped = con.execute("SELECT count(*) FROM _skip").fetchone()[0]
        not_skipped = "AND p.rowid NOT IN (SELECT rid FROM _skip)" if skipped else ""  # a first load skips none
        con.execute(f"""
            CREATE TEMP VIEW _new_events AS
            SELECT p.* EXCLUDE (reason, raw) FROM _parsed p
            WHERE p.reason IS NULL {not_skipped}
        """)
        report.loaded = report.rows_read - report.rejected - skipped
        report.duplicates = skipped
        _update_users(con)
        _checkpoint("after_users")
        con.execute("SET preserve_insertion_order = false")  # row order in events carries no meaning
        try:
            con.execute("""
                INSERT INTO events
                SELECT n.event_id, u.user_key, n.user_id, n.event_name, n.event_time, n.session_id, n.channel,
                       n.campaign, n.page, n.revenue, n.properties, ?, now()
                FROM _new_events n JOIN users u USING (user_id)
            """, [report.source])
        finally:
            con.execute("RESET preserve_insertion_order")
        _update_rollups(con, first=not stored)
        _checkpoint("after_rollups")
        _guess_stages(con)

    return _run_load(con, source, "events", mapping, name, build, write)


def _update_users(con) -> None:
    """Maintain users incrementally from ``_new_events``: new keys, first_seen, first touch (SPEC §1).

    First touch = the channel and campaign of the user's earliest event that has a channel, ties
    broken by the smaller event_id; a user with no such event is 'direct'. The batch's own first
    touch replaces the stored one only when it is earlier (or equally early with a smaller
    event_id), so the table always equals a recomputation over all loaded events.
    """
    con.execute("""
        CREATE TEMP TABLE _batch_users AS
        SELECT user_id,
               min(event_time) AS first_seen,
               min(event_time) FILTER (WHERE channel IS NOT NULL) AS touch_time,
               -- channel, campaign and id of one and the same event: the earliest with a channel
               arg_min({'channel': channel, 'campaign': campaign, 'event_id': event_id}, (event_time, event_id))
                   FILTER (WHERE channel IS NOT NULL) AS touch
        FROM _new_events GROUP BY user_id
    """)
    con.execute("""
        UPDATE users SET
            first_seen = least(users.first_seen, b.first_seen),
            touch_time = CASE WHEN b.wins THEN b.touch_time ELSE users.touch_time END,
            channel    = CASE WHEN b.wins THEN b.touch.channel ELSE users.channel END,
            campaign   = CASE WHEN b.wins THEN b.touch.campaign ELSE users.campaign END
        FROM (
            -- stored users this batch touches: does the batch's first touch come first?
            WITH pairs AS (SELECT b.*, u.user_key AS stored_key, u.touch_time AS stored_time
                           FROM _batch_users b JOIN users u USING (user_id)),
            tied AS (   -- the id of the stored first touch, for the users whose batch touch is as early: the
                        -- events are only read for those (usually none, and then not at all)
                SELECT e.user_key, min(e.event_id) AS event_id
                FROM events e JOIN pairs p ON e.user_key = p.stored_key AND e.event_time = p.stored_time
                WHERE p.touch_time = p.stored_time AND e.channel IS NOT NULL
                GROUP BY e.user_key)
            SELECT p.* EXCLUDE (stored_key, stored_time), coalesce(
                       p.touch_time < coalesce(p.stored_time, TIMESTAMP 'infinity')
                       OR (p.touch_time = p.stored_time AND p.touch.event_id < t.event_id), false) AS wins
            FROM pairs p LEFT JOIN tied t ON t.user_key = p.stored_key
        ) b
        WHERE users.user_id = b.user_id AND (b.first_seen < users.first_seen OR b.wins)
    """)
    con.execute("""
        INSERT INTO users
        SELECT (SELECT coalesce(max(user_key), 0) FROM users) + row_number() OVER (ORDER BY b.first_seen, b.user_id),
               b.user_id, b.first_seen, b.touch_time, coalesce(b.touch.channel, 'direct'), b.touch.campaign
        FROM _batch_users b
        WHERE NOT EXISTS (SELECT 1 FROM users u WHERE u.user_id = b.user_id)
    """)


def _update_rollups(con, first: bool) -> None:
    """Maintain the ``user_events`` rollup (count, first and last time per user and event name), the
    ``events_by_name`` and ``revenue_events`` copies, each user's hours with an event (``user_hours``), the
    sessions rollups (``traffic_sessions`` / ``traffic_pageviews``) and the days of life (``user_days``) from
    ``_new_events``, so that they always equal a GROUP BY over / a projection of / the distinct hours (each with the
    user's previous and next) of / the sessions of / the distinct days of all loaded events. A first load reads
    the events table it has just filled; a later one merges the batch's own aggregate into the stored rows (its new
    pairs appended sorted by event name), appends the batch's rows sorted by event name to ``events_by_name`` and
    its rows with revenue sorted by user to ``revenue_events``, derives again the hours of the users it brings an
    hour not stored yet (``user_hours``: a new hour is the previous or next one of its neighbours), and the
    sessions and days of the users the batch touches (a new event can merge two stored sessions or change which
    event comes first in one, and an earlier first_seen moves every day of its user)."""
    if first:
        for rollup in ROLLUPS:
            fill_rollup(con, rollup)
        return
    # the batch's rows with their user keys, read once for every rollup below (the new events' join to users)
    con.execute("""
        CREATE TEMP TABLE _batch_by_name AS
        SELECT n.event_name, u.user_key, n.event_time, n.revenue FROM _new_events n JOIN users u USING (user_id)
    """)
    con.execute("""
        CREATE TEMP TABLE _batch_user_events AS
        SELECT user_key, event_name, count(*) AS events, min(event_time) AS first_time, max(event_time) AS last_time
        FROM _batch_by_name
        GROUP BY user_key, event_name
    """)
    con.execute("""
        UPDATE user_events SET
            events = user_events.events + b.events,
            first_time = least(user_events.first_time, b.first_time),
            last_time = greatest(user_events.last_time, b.last_time)
        FROM _batch_user_events b
        WHERE user_events.user_key = b.user_key AND user_events.event_name = b.event_name
    """)
    con.execute("""
        INSERT INTO user_events
        SELECT b.* FROM _batch_user_events b
        WHERE NOT EXISTS (SELECT 1 FROM user_events x WHERE x.user_key = b.user_key AND x.event_name = b.event_name)
        ORDER BY b.event_name, b.user_key
    """)
    con.execute("""
        INSERT INTO events_by_name
        SELECT event_name, user_key, event_time FROM _batch_by_name ORDER BY event_name, user_key, event_time
    """)
    con.execute("""
        INSERT INTO revenue_events
        SELECT user_key, event_time, revenue FROM _batch_by_name WHERE revenue IS NOT NULL ORDER BY user_key, event_time
    """)
    # the users the batch brings a (user, UTC hour) pair not stored yet: a new hour changes its neighbours' previous
    # and next hour, so their hours are derived again (an hour already stored changes nothing)
    con.execute("""
        CREATE TEMP TABLE _hours_touched AS
        SELECT DISTINCT user_key FROM (
            SELECT DISTINCT b.user_key, date_trunc('hour', b.event_time) AS hour_start FROM _batch_by_name b) n
        WHERE NOT EXISTS (SELECT 1 FROM user_hours x WHERE x.user_key = n.user_key AND x.hour_start = n.hour_start)
    """)
    con.execute("""
        CREATE TEMP TABLE _hours_of_touched AS
        SELECT user_key, hour_start FROM user_hours WHERE user_key IN (SELECT user_key FROM _hours_touched)
        UNION
        SELECT user_key, date_trunc('hour', event_time) FROM _batch_by_name
        WHERE user_key IN (SELECT user_key FROM _hours_touched)
    """)
    con.execute("DELETE FROM user_hours WHERE user_key IN (SELECT user_key FROM _hours_touched)")
    con.execute(_hours_sql("_hours_of_touched"))
    # a user's sessions depend on all of their events: those of the users the batch touches are derived again
    con.execute("CREATE TEMP TABLE _batch_users_touched AS SELECT DISTINCT user_key FROM _batch_by_name")
    touched = "user_key IN (SELECT user_key FROM _batch_users_touched)"
    for table in ("traffic_sessions", "traffic_pageviews", "user_days"):
        con.execute(f"DELETE FROM {table} WHERE {touched}")
    # in parts of at most about TOUCHED_EVENTS_PER_PART events: a day's export can touch a third of the users of a
    # big store, whose sessions and page views derived at once outgrow the load's memory cap
    for low, high in _user_key_parts(con, "_batch_users_touched", TOUCHED_EVENTS_PER_PART):
        # the part's users in a table of their own (a range test on the events beside the semi-join costs about a
        # tenth more CPU)
        con.execute(f"CREATE OR REPLACE TEMP TABLE _part_users AS SELECT user_key FROM _batch_users_touched "
                    f"WHERE user_key BETWEEN {int(low)} AND {int(high)}")
        part = "e.user_key IN (SELECT user_key FROM _part_users)"
        fill_traffic_rollups(con, part)
        # and their days of life, counted from a first_seen the batch may have moved earlier
        con.execute(_FILLS["user_days"] + f" WHERE {part}")


# The most events of touched users whose sessions a later load derives again in one statement (see _update_rollups).
# Each part reads the events again (about 2 s a part at 50M events), and a bigger part spills to disk under the load's
# memory cap: a 1M-row load touching 29M of 50M stored events took 60-90 s in parts of 4M to 8M and 78 s in parts of
# 12M; all at once, it ran out of memory. A 100k-row load touching 5.1M events took 2 s longer in two parts than in one
# (single runs each: this host's noise is of that order). Counting the parts takes 0.1-0.6 s at 50M events.
TOUCHED_EVENTS_PER_PART = 6_000_000


def _user_key_parts(con, users: str, events_per_part: int) -> list[tuple[int, int]]:
    """Consecutive ranges ``(low, high)`` of the user keys in table ``users`` (its ``user_key`` column) together
    holding every one of them: as few as hold at most about ``events_per_part`` stored events each (a range ends
    at the first user that reaches its share, so a user with more than the share has a range alone), as counted by
    the ``user_events`` rollup, which the load has already updated."""
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _touched_counts AS
        SELECT t.user_key, coalesce(sum(ue.events), 0) AS events
        FROM {users} t LEFT JOIN user_events ue ON ue.user_key = t.user_key
        GROUP BY t.user_key
    """)
    total = con.execute("SELECT coalesce(sum(events), 0) FROM _touched_counts").fetchone()[0]
    parts = max(1, -(-int(total) // int(events_per_part)))
    share = max(1, -(-int(total) // parts))      # equal shares, rather than full parts and a small last one
    ranges = [tuple(r) for r in con.execute("""
        WITH running AS (SELECT user_key, sum(events) OVER (ORDER BY user_key ROWS UNBOUNDED PRECEDING) - events
                                              AS before
                         FROM _touched_counts)
        SELECT min(user_key), max(user_key) FROM running
        GROUP BY before // ?
        ORDER BY 1
    """, [share]).fetchall()]
    con.execute("DROP TABLE _touched_counts")   # (after a failure, the load's own clean-up drops it)
    return ranges


# An event's day of life: whole days from its user's first_seen (``users u``) to the event (``events e``), from
# its age in seconds as the economics compute it (metrics.economics), so that day d holds exactly the events of
# age in [d, d + 1) days.
USER_DAY_SQL = "CAST(floor(EXTRACT(EPOCH FROM e.event_time - u.first_seen) / 86400) AS INTEGER)"


def _hours_sql(pairs: str) -> str:
    """Insert into ``user_hours`` the distinct (user_key, hour_start) ``pairs`` (a FROM-able SQL text) holding every
    hour of their users, each with the user's previous and next hour, sorted by user and hour."""
    return f"""INSERT INTO user_hours
               SELECT user_key, hour_start, LAG(hour_start) OVER w, LEAD(hour_start) OVER w
               FROM {pairs}
               WINDOW w AS (PARTITION BY user_key ORDER BY hour_start)
               ORDER BY user_key, hour_start"""


# Each rollup as a recomputation over every stored event: what a first load and the migration creating it write.
_FILLS = {
    "user_events": """INSERT INTO user_events
                      SELECT user_key, event_name, count(*), min(event_time), max(event_time)
                      FROM events GROUP BY user_key, event_name ORDER BY event_name, user_key""",
    "events_by_name": """INSERT INTO events_by_name
                         SELECT event_name, user_key, event_time FROM events ORDER BY event_name, user_key, event_time""",
    "revenue_events": """INSERT INTO revenue_events
                         SELECT user_key, event_time, revenue FROM events WHERE revenue IS NOT NULL
                         ORDER BY user_key, event_time""",
    "user_hours": _hours_sql("(SELECT DISTINCT user_key, date_trunc('hour', event_time) AS hour_start FROM events)"),
    "user_days": f"""INSERT INTO user_days
                     SELECT DISTINCT e.user_key, {USER_DAY_SQL}
                     FROM events e JOIN users u ON u.user_key = e.user_key""",
}
ROLLUPS = ("user_events", "events_by_name", "traffic", "user_days", "revenue_events", "user_hours")


def fill_rollup(con, rollup: str) -> None:
    """Fill an empty rollup (one of :data:`ROLLUPS`; ``traffic`` is both session tables) from every stored event."""
    if rollup == "traffic":
        fill_traffic_rollups(con)
    else:
        con.execute(_FILLS[rollup])


def fill_traffic_rollups(con, restrict: str | None = None) -> None:
    """Insert the sessions and page views (``traffic_sessions`` / ``traffic_pageviews``) derived from every
    event — or from the events ``restrict`` (SQL over ``events e``) keeps: all the events of some users, whose
    rows the caller has deleted. The derivation is the traffic metrics' own (``metrics.traffic``), at the
    default session gap and the database's page-view events (:func:`set_pageview_events`), so the tables equal
    what those metrics derive over all events."""
    from metrics.traffic import STORED, stored_pageviews_sql, stored_sessions_sql   # metrics imports store
    names = stored_pageview_events(con)
    sql, params = stored_sessions_sql(restrict, replace(STORED, pageview_events=names))
    sessions = "traffic_sessions"
    if restrict:   # these users' sessions, kept aside for their page views to join rather than every stored one
        sessions = "_touched_sessions"
        con.execute(f"CREATE OR REPLACE TEMP TABLE {sessions} AS {sql}", params)
        con.execute(f"INSERT INTO traffic_sessions SELECT * FROM {sessions}")
    else:
        con.execute(f"INSERT INTO traffic_sessions {sql}", params)
    sql, params = stored_pageviews_sql(restrict, sessions, names=names)
    # sorted by user: every Traffic count of distinct users groups on the user key, and a user's rows side by
    # side collapse in the aggregate's first pass (about a third off counting a page's visitors)
    con.execute(f"INSERT INTO traffic_pageviews SELECT * FROM ({sql}) ORDER BY user_key, event_time", params)
    if restrict:
        con.execute(f"DROP TABLE {sessions}")


def set_pageview_events(con, names: Iterable[str]) -> tuple[str, ...]:
    """Keep the session rollups for the page-view events ``names`` (exact event names; blanks and repeats dropped)
    from now on: the Traffic metrics asked for these names, over the whole data, read the rollups instead of
    deriving every session. When they differ from the stored ones, the rollups are derived again from every
    stored event, in one transaction with the setting: on an error nothing changes. Returns the names stored."""
    if isinstance(names, str):
        names = [names]
    kept: list[str] = []
    for name in names:
        if not isinstance(name, str):
            raise UserInputError(f"A page-view event name must be text, not {name!r}.")
        if name.strip() and name.strip() not in kept:
            kept.append(name.strip())
    if not kept:
        raise UserInputError("Name at least one page-view event (e.g. page_view).")
    with _load_settings(con):
        con.execute("BEGIN TRANSACTION")
        try:
            stored = stored_pageview_events(con)
            if set(kept) != set(stored):   # the same names in another order count the same page views
                con.execute("INSERT OR REPLACE INTO settings VALUES ('pageview_events', ?)", [json.dumps(kept)])
                con.execute("DELETE FROM traffic_sessions")
                con.execute("DELETE FROM traffic_pageviews")
                fill_traffic_rollups(con)
                bump_data_version(con)
                stored = tuple(kept)
            con.execute("COMMIT")
        except BaseException:
            con.execute("ROLLBACK")
            raise
    return stored


def _guess_stages(con) -> None:
    from .stages import guess_stage_sql  # local import: stages imports nothing from here
    con.execute(f"""
        INSERT INTO stage_map
        SELECT event_name, stage FROM (
            SELECT event_name, coalesce({guess_stage_sql("event_name")}, 'none') AS stage
            FROM (SELECT DISTINCT event_name FROM _parsed WHERE reason IS NULL))   -- guess once per name
        WHERE event_name NOT IN (SELECT event_name FROM stage_map)
    """)


# --------------------------------------------------------------------------------------------
# Spend
# --------------------------------------------------------------------------------------------

def base_currency(con) -> str:
    return con.execute("SELECT value FROM settings WHERE key = 'base_currency'").fetchone()[0]


def set_currency_rate(con, currency: str, rate_to_base: float) -> None:
    """Record how many units of the base currency one unit of ``currency`` is worth."""
    if not rate_to_base or rate_to_base <= 0:
        raise UserInputError(f"The exchange rate for {currency} must be a positive number.")
    con.execute("INSERT OR REPLACE INTO currency_rates VALUES (upper(trim(?)), ?)", [currency, rate_to_base])


def load_spend(con: duckdb.DuckDBPyConnection, source, mapping: Mapping[str, str | None] | None = None,
               *, name: str | None = None) -> LoadReport:
    """Load an ad-spend sheet (CSV, XLSX, Parquet, DataFrame); rows replace stored (date, channel, campaign) keys.

    Several rows with one key in a file are summed (exports often split a campaign by ad group).
    A currency other than the base needs a rate (:func:`set_currency_rate`), else the row is rejected.
    """
    base = base_currency(con)

    def build(con, src: _Source, cols: dict) -> None:
        _build_spend(con, src, cols, base)

    def write(report: LoadReport, load_id: int) -> None:
        _write_spend(con, report)

    return _run_load(con, source, "spend", mapping, name, build, write)


def _build_spend(con, src: _Source, cols: dict, base: str) -> None:
    """Create ``_parsed`` for a spend sheet: typed rows in the base currency with ``reason``."""
    c = {k: _text(cols.get(k)) for k in ALIASES["spend"]}
    con.execute(f"""
        CREATE TEMP TABLE _parsed AS
        WITH raw AS (
            SELECT {c['date']} AS _d, {key_sql(c['channel'])} AS channel,
                   coalesce({key_sql(c['campaign'])}, '') AS campaign, {c['spend']} AS _s,
                   {c['impressions']} AS _i, {c['clicks']} AS _c, upper({c['currency']}) AS currency,
                   {_newlines_sql(src)} AS _nl, {_raw_json(src.headers)} AS _raw,
                   row_number() OVER () AS _row          -- file order, kept through the rate join
            FROM {src.relation_sql}
        ),
        typed AS (
            SELECT r.*, {date_sql('_d')} AS date, {number_sql('_s')} AS spend_original,
                   {number_sql('_i')} AS impressions, {number_sql('_c')} AS clicks,
                   CASE WHEN r.currency IS NULL OR r.currency = ? THEN 1.0 ELSE x.rate_to_base END AS rate
            FROM raw r LEFT JOIN currency_rates x ON x.currency = r.currency
        ),
        checked AS (
            SELECT *, CASE
                WHEN _d IS NULL THEN 'no date'
                WHEN date IS NULL THEN 'date ''' || left(_d, 60) || ''' is not a date'
                WHEN channel IS NULL THEN 'no channel'
                WHEN _s IS NULL THEN 'no spend'
                WHEN spend_original IS NULL THEN 'spend ''' || left(_s, 60) || ''' is not a finite number'
                WHEN spend_original < 0 THEN 'spend ' || _s || ' is negative'
                WHEN _i IS NOT NULL AND impressions IS NULL THEN 'impressions ''' || left(_i, 60) || ''' is not a number'
                WHEN _c IS NOT NULL AND clicks IS NULL THEN 'clicks ''' || left(_c, 60) || ''' is not a number'
                WHEN rate IS NULL THEN 'no exchange rate for currency ' || currency || ' (set one for the base currency)'
            END AS reason FROM typed
        )
        SELECT date, channel, campaign, spend_original * rate AS spend, CAST(impressions AS BIGINT) AS impressions,
               CAST(clicks AS BIGINT) AS clicks, currency, spend_original, reason,
               CASE WHEN reason IS NOT NULL THEN _raw END AS raw, CAST(_nl AS INTEGER) AS _nl
        FROM checked
        ORDER BY _row                                 -- so _parsed.rowid follows the file
    """, [base])


def _write_spend(con, report: LoadReport) -> None:
    """Replace stored spend keys by the file's (rows with one key in the file are summed)."""
    con.execute("""
        CREATE TEMP TABLE _new_spend AS
        SELECT date, channel, campaign, sum(spend) AS spend, sum(impressions) AS impressions,
               sum(clicks) AS clicks, CASE WHEN count(DISTINCT currency) = 1 THEN any_value(currency) END AS currency,
               sum(spend_original) AS spend_original
        FROM _parsed WHERE reason IS NULL GROUP BY ALL
    """)
    try:
        keys = con.execute("SELECT count(*) FROM _new_spend").fetchone()[0]
        report.replaced = con.execute("""
            SELECT count(*) FROM spend s JOIN _new_spend n USING (date, channel, campaign)""").fetchone()[0]
        con.execute("DELETE FROM spend WHERE (date, channel, campaign) IN (SELECT (date, channel, campaign) FROM _new_spend)")
        con.execute("INSERT INTO spend SELECT *, ?, now() FROM _new_spend", [report.source])
        report.loaded = keys
        report.duplicates = report.rows_read - report.rejected - keys  # rows summed into one key
        report.details["merged_rows"] = report.duplicates
    finally:
        con.execute("DROP TABLE IF EXISTS _new_spend")


# --------------------------------------------------------------------------------------------
# Survey
# --------------------------------------------------------------------------------------------

KIND_WORDS = {"value": "value", "价值": "value", "收益": "value", "cost": "cost", "成本": "cost", "代价": "cost"}


def load_survey(con: duckdb.DuckDBPyConnection, source, mapping: Mapping[str, str | None] | None = None,
                *, name: str | None = None) -> LoadReport:
    """Load perceived value / cost ratings (CSV, XLSX, Parquet, DataFrame).

    ``kind`` is value or cost (价值 / 成本 accepted); ``score`` must be within 0..10. Reloading the
    same file adds nothing: a rating is identified by its content and its occurrence within the file.
    """
    def build(con, src: _Source, cols: dict) -> None:
        _build_survey(con, src, cols)

    def write(report: LoadReport, load_id: int) -> None:
        n = con.execute("""
            INSERT INTO survey
            SELECT rating_id, segment, product, dimension, kind, score, respondent_id, ?, now()
            FROM _parsed p WHERE reason IS NULL AND NOT EXISTS (SELECT 1 FROM survey s WHERE s.rating_id = p.rating_id)
        """, [report.source]).fetchone()[0]
        report.loaded = n
        report.duplicates = report.rows_read - report.rejected - n

    return _run_load(con, source, "survey", mapping, name, build, write)


def _build_survey(con, src: _Source, cols: dict) -> None:
    """Create ``_parsed`` for survey ratings: typed rows, a content-and-occurrence ``rating_id``, ``reason``."""
    kinds = "CASE lower(_k) " + " ".join(f"WHEN '{k}' THEN '{v}'" for k, v in KIND_WORDS.items()) + " END"
    c = {k: _text(cols.get(k)) for k in ALIASES["survey"]}
    con.execute(f"""
        CREATE TEMP TABLE _parsed AS
        WITH raw AS (
            SELECT {c['segment']} AS segment, lower({c['product']}) AS product, lower({c['dimension']}) AS dimension,
                   {c['kind']} AS _k, {c['score']} AS _s, {c['respondent_id']} AS respondent_id,
                   {_newlines_sql(src)} AS _nl, {_raw_json(src.headers)} AS _raw,
                   row_number() OVER () AS _row          -- file order (the window below reorders rows)
            FROM {src.relation_sql}
        ),
        typed AS (SELECT *, {kinds} AS kind, {number_sql('_s')} AS score FROM raw),
        checked AS (
            SELECT *, CASE
                WHEN segment IS NULL THEN 'no segment'
                WHEN product IS NULL THEN 'no product'
                WHEN dimension IS NULL THEN 'no dimension'
                WHEN kind IS NULL THEN 'kind ''' || coalesce(_k, '') || ''' is not value or cost'
                WHEN score IS NULL THEN 'score ''' || coalesce(_s, '') || ''' is not a number'
                WHEN score < 0 OR score > 10 THEN 'score ' || _s || ' is outside 0..10'
            END AS reason FROM typed
        )
        SELECT md5(concat_ws(chr(31), segment, product, dimension, kind, CAST(score AS VARCHAR),
                             coalesce(respondent_id, ''),
                             CAST(row_number() OVER (PARTITION BY segment, product, dimension, kind, score,
                                                     respondent_id) AS VARCHAR))) AS rating_id,
               segment, product, dimension, kind, score, respondent_id, reason,
               CASE WHEN reason IS NOT NULL THEN _raw END AS raw, CAST(_nl AS INTEGER) AS _nl
        FROM checked
        ORDER BY _row                                 -- so _parsed.rowid follows the file again
    """)

