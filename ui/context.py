"""What every page needs: the database, cached metric calls, the language, the global filters.

Pages never open connections: :func:`db` hands out a cursor on the one cached connection.
:func:`run` calls a metric through ``st.cache_data`` keyed by the metric, its arguments and the
store's data version, so an upload invalidates exactly the results computed on older data.
"""
from __future__ import annotations

import os
from typing import Any, Callable

import pandas as pd
import streamlit as st

import store


@st.cache_resource(show_spinner=False)
def _connection():
    con = store.connect(os.environ.get("OPSFUNNEL_DB"))
    if os.environ.get("OPSFUNNEL_NO_SAMPLE") != "1":
        store.ensure_sample_data(con)
    return con


def db():
    """A cursor on the shared connection (one per call: cursors are safe to use from one thread each)."""
    return _connection().cursor()


def data_version() -> int:
    fn = getattr(store, "data_version", None)
    con = db()
    if fn is not None:
        return int(fn(con))
    return int(con.execute("SELECT coalesce(max(load_id), 0) FROM loads").fetchone()[0])


@st.cache_data(ttl=3600, max_entries=512, show_spinner=False)
def _cached(name: str, key: str, version: int, _fn: Callable, _args: tuple, _kwargs: dict) -> Any:
    return _fn(db(), *_args, **_kwargs)


def run(fn: Callable, *args, **kwargs) -> Any:
    """``fn(con, *args, **kwargs)``, cached until the data changes. Arguments are keyed by ``repr``
    (frozen params dataclasses have a faithful one)."""
    name = f"{fn.__module__}.{fn.__qualname__}"
    return _cached(name, repr((args, sorted(kwargs.items()))), data_version(), fn, args, kwargs)


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
