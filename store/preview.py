"""Look at a file before loading it: its headers, the detected mapping and the first rows parsed.

Query intuition. A preview runs the very same parse step as a load (``_parsed`` with its
``reason`` column), but on a separate in-memory DuckDB and over the first ``rows`` rows only, so
what the upload page shows is exactly what a load would do with those rows, and nothing is
written to the user's database.
"""
from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from . import formats
from .errors import LoadRefused, UserInputError
from .load import (_build_events, _build_spend, _build_survey, _line_sql, _newline_rows, _open_source,
                   _parse_source, base_currency)
from .parse import check_timezone
from .schema import connect

PREVIEW_BYTES = 4 << 20   # a non-UTF-8 file is transcoded only this far for a preview

COLUMNS = {
    "events": ["event_id", "user_id", "event_name", "event_time", "session_id", "channel", "campaign", "page",
               "revenue", "properties"],
    "spend": ["date", "channel", "campaign", "spend", "impressions", "clicks", "currency", "spend_original"],
    "survey": ["rating_id", "segment", "product", "dimension", "kind", "score", "respondent_id"],
}


def inspect_headers(source, name: str | None = None) -> list[str]:
    """The column headers of a file (CSV, .csv.gz, Parquet, XLSX) or DataFrame, as the loader names them.

    Blank headers become ``column_N`` and repeated ones get ``_2``, ``_3`` ... ; a file that cannot
    be read is refused with :class:`LoadRefused`.
    """
    if isinstance(source, pd.DataFrame):
        return formats.unique_headers(list(source.columns))
    con = connect(":memory:")
    try:
        src = _open_source(con, source, name, "spend", limit_bytes=PREVIEW_BYTES)
        src.cleanup()
        return list(src.headers)
    finally:
        con.close()


def preview(source, kind: str, mapping: Mapping[str, str | None] | None = None, source_timezone: str = "UTC",
            rows: int = 20, name: str | None = None, *, con=None) -> tuple[dict[str, str], pd.DataFrame]:
    """``(mapping, frame)``: the detected ``{canonical: header}`` mapping and the first ``rows`` rows parsed.

    The frame has ``line`` (file line, header = 1), the typed canonical columns of ``kind`` and
    ``reason`` (NULL for a row that would load, else why it would be rejected). Nothing is
    written anywhere: the parse runs on its own in-memory database. ``con`` (optional) supplies
    the base currency and exchange rates a spend preview converts with. Refusals are raised as
    :class:`LoadRefused`, with the same message a load would give.
    """
    if kind not in COLUMNS:
        raise UserInputError(f"Unknown kind '{kind}'; use events, spend or survey.")
    if rows < 1:
        raise UserInputError("A preview needs at least one row.")
    tz = check_timezone(source_timezone)
    scratch = connect(":memory:")
    try:
        if kind == "spend" and con is not None:
            base = base_currency(con)
            scratch.execute("UPDATE settings SET value = ? WHERE key = 'base_currency'", [base])
            rates = con.execute("SELECT currency, rate_to_base FROM currency_rates").fetchall()
            if rates:
                scratch.executemany("INSERT INTO currency_rates VALUES (?, ?)", rates)
        builders = {
            "events": lambda c, s, cols: _build_events(c, s, cols, tz),
            "spend": lambda c, s, cols: _build_spend(c, s, cols, base_currency(c)),
            "survey": _build_survey,
        }
        src, cols = _parse_source(scratch, source, kind, mapping, name, builders[kind],
                                  limit_bytes=PREVIEW_BYTES, limit_rows=rows)
        try:
            columns = ", ".join(COLUMNS[kind])
            malformed = ""
            if src.reader_rejects is not None:  # lines DuckDB's reader could not split into the columns
                nulls = ", ".join(f"NULL AS {c}" for c in COLUMNS[kind])
                malformed = f"""UNION ALL
                    SELECT line, {nulls}, 'malformed line: ' || lower(CAST(any_value(error_type) AS VARCHAR))
                           || ' (' || any_value(error_message) || ')'
                    FROM _reader_rejects GROUP BY line"""
            line = _line_sql(src, _newline_rows(scratch, src))
            frame = scratch.execute(f"""
                SELECT * FROM (SELECT {line} AS line, {columns}, reason FROM _parsed p {malformed})
                ORDER BY line LIMIT {int(rows)}""").df()
            if frame.empty:
                raise LoadRefused(f"{src.name}: the file has a header ({', '.join(src.headers)}) but no rows.")
            return dict(cols), frame
        finally:
            src.cleanup()
    finally:
        scratch.close()


__all__ = ["inspect_headers", "preview"]
