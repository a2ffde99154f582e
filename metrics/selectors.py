"""Which events a step, a start or a return event matches, as SQL predicates with bound values.

A ``Step`` names an event (``None`` = any event) plus property equality filters: a key is a
canonical events column if one has that name, else a key of ``properties``; values compare as text.
"""
from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from types import MappingProxyType

from store.sqlutil import quote_ident

CANONICAL_COLUMNS = ("event_id", "user_id", "event_name", "session_id", "channel", "campaign", "page", "revenue")
KEY_COLUMNS = ("channel", "campaign")  # compared as trimmed, case-folded keys


@dataclass(frozen=True)
class Step:
    """An event to match: ``event`` name (None = any event) and ``where`` property equalities."""

    event: str | None
    where: Mapping[str, str] = field(default_factory=lambda: MappingProxyType({}))

    def __post_init__(self):
        object.__setattr__(self, "where", MappingProxyType(dict(self.where)))

    def __hash__(self):
        return hash((self.event, tuple(sorted(self.where.items()))))

    @property
    def label(self) -> str:
        name = self.event if self.event is not None else "any event"
        if self.where:
            name += " (" + ", ".join(f"{k}={v}" for k, v in sorted(self.where.items())) + ")"
        return name

    def covers(self, other: "Step") -> bool:
        """True when every event matching ``self`` also matches ``other`` (this filter equals or contains other's)."""
        if other.event is not None and self.event != other.event:
            return False
        return all(self.where.get(k) == v for k, v in other.where.items())


def property_sql(key: str, alias: str = "e") -> tuple[str, list]:
    """SQL (text) for a canonical column or a ``properties`` key, with its bound values."""
    if key in CANONICAL_COLUMNS:
        return f"CAST({alias}.{quote_ident(key)} AS VARCHAR)", []
    path = '$."' + key.replace("\\", "\\\\").replace('"', '\\"') + '"'
    return f"json_extract_string({alias}.properties, ?)", [path]


def equals_sql(key: str, value, alias: str = "e") -> tuple[str, list]:
    """``key = value`` over events, compared as text; channel and campaign as trimmed, case-folded keys."""
    expr, params = property_sql(key, alias)
    rhs = "lower(trim(?))" if key in KEY_COLUMNS else "?"
    return f"{expr} = {rhs}", params + [str(value)]


def step_sql(step: Step | None, alias: str = "e") -> tuple[str, list]:
    """A boolean SQL predicate for ``step`` over events aliased ``alias`` (None = any event)."""
    if step is None:
        return "TRUE", []
    parts, params = [], []
    if step.event is not None:
        parts.append(f"{alias}.event_name = ?")
        params.append(step.event)
    for key, value in sorted(step.where.items()):
        sql, p = equals_sql(key, value, alias)
        parts.append(sql)
        params += p
    return ("(" + " AND ".join(parts) + ")") if parts else "TRUE", params
