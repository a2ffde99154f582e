"""Small SQL helpers shared by the store and the metrics: identifier quoting and key normalisation."""
from __future__ import annotations


def quote_ident(name: str) -> str:
    """Quote ``name`` as a DuckDB identifier (doubling embedded quotes)."""
    return '"' + str(name).replace('"', '""') + '"'


def key_sql(expr: str) -> str:
    """SQL for a channel/campaign key: trimmed, case-folded, empty -> NULL (SPEC §1)."""
    return f"NULLIF(lower(trim(CAST({expr} AS VARCHAR))), '')"


def normalise_key(value: str | None) -> str | None:
    """The Python twin of :func:`key_sql`, for filter values typed by a user."""
    if value is None:
        return None
    value = str(value).strip().lower()
    return value or None
