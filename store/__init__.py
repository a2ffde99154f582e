"""opsfunnel's event store: the one package that opens DuckDB, owns the schema and loads files.

Public API::

    con = store.connect()                        # data/opsfunnel.duckdb, or $OPSFUNNEL_DB, or ":memory:"
    report = store.load_events(con, "events.csv", mapping={"user_id": "member"}, source_timezone="Asia/Shanghai")
    store.load_spend(con, "spend.xlsx");  store.load_survey(con, "survey.csv")
    store.ensure_sample_data(con)                # loads sample_data/ into an empty database
    mapping, frame = store.preview("events.csv", "events")   # parsed first rows, nothing written
    store.inspect_headers("spend.xlsx")          # the headers as the loader names them
    store.data_version(con)                      # changes with every load / reset / stage-map edit
    store.set_pageview_events(con, ["screen_view"])   # the page-view events the session rollups are kept for
"""
from .errors import LoadRefused, UserInputError
from .load import (LoadReport, base_currency, load_events, load_spend, load_survey, set_currency_rate,
                   set_pageview_events)
from .mapping import ALIASES, REQUIRED, detect_mapping
from .sample import SAMPLE_DIR, ensure_sample_data, load_sample_data, reset_to_sample_data
from .preview import inspect_headers, preview
from .schema import (DEFAULT_PAGEVIEW_EVENTS, bump_data_version, connect, data_version, resolve_path,
                     stored_pageview_events)
from .sqlutil import normalise_key, quote_ident

__all__ = [
    "ALIASES", "DEFAULT_PAGEVIEW_EVENTS", "REQUIRED", "SAMPLE_DIR", "LoadRefused", "LoadReport", "UserInputError",
    "base_currency", "bump_data_version", "connect", "data_version", "detect_mapping", "ensure_sample_data",
    "inspect_headers", "load_events", "load_sample_data", "load_spend", "load_survey", "normalise_key", "preview",
    "quote_ident", "reset_to_sample_data", "resolve_path", "set_currency_rate", "set_pageview_events",
    "stored_pageview_events",
]
