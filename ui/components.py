"""Blocks every page uses: header with active filters, charts and tables with their definition,
SQL and CSV download, and empty states."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from .context import filters, frame_download, lang, tr
from .safe import md_escape, safe_figure

# What a table shows in a cell with no value (a CAC without spend, a payback not reached yet): blank, as the
# captions say. Streamlit would print "None".
MISSING = ""

OWNER_BADGE = {"marketing": ("Marketing", "市场"), "operations": ("Operations", "运营")}
PLOTLY_CONFIG = {"displaylogo": False, "toImageButtonOptions": {"format": "png", "scale": 2}}


def page_header(title_en: str, title_zh: str, owner: str | None = None) -> None:
    """The page title, its owner (marketing / operations) and the active global filters."""
    st.title(tr(title_en, title_zh))
    bits = []
    if owner:
        en, zh = OWNER_BADGE[owner]
        bits.append(tr(f"Owner: {en}", f"负责方：{zh}"))
    bits.append(tr("Filters: ", "筛选：") + describe_filters(filters()))
    st.caption(" · ".join(bits))


def describe_filters(f) -> str:
    """The active global filters in words, in the chosen language (values escaped for Markdown)."""
    from .format import date as fmt_date

    bits = []
    if f.start or f.end:
        bits.append(f"{fmt_date(f.start) if f.start else '…'} – {fmt_date(f.end) if f.end else '…'} ({f.timezone})")
    if f.channels:
        bits.append(tr("channels: ", "渠道：") + ", ".join(md_escape(c) for c in f.channels))
    if f.campaigns:
        bits.append(tr("campaigns: ", "活动：") + ", ".join(md_escape(c) for c in f.campaigns))
    if f.segment:
        bits.append(tr("segment: ", "细分：") + ", ".join(f"{md_escape(k)}={md_escape(v)}" for k, v in f.segment.items()))
    return "; ".join(bits) or tr("all data", "全部数据")


def label(labels: dict, key: str) -> str:
    """A metric's label from a metrics module's ``LABELS`` in the chosen language."""
    entry = labels.get(key)
    if not entry:
        return key
    return entry.get(lang(), entry.get("en", key))


def show_sql(sql: str | None, key: str) -> None:
    if sql:
        with st.expander(tr("Show SQL", "查看 SQL")):
            st.code(sql.strip(), language="sql")


def data_table(data: pd.DataFrame, *, key: str | None = None, column_config: dict | None = None) -> None:
    """A read-only table at the page's width, without the index, a missing value shown as a blank cell."""
    st.dataframe(data, width="stretch", hide_index=True, column_config=column_config, placeholder=MISSING, key=key)


def card_columns(count: int, per_row: int = 3) -> list:
    """``count`` columns for metric cards, in rows of ``per_row`` of equal width (the last row's spare slots left
    empty): more cards in a row cut their labels short on a laptop screen."""
    slots: list = []
    while len(slots) < count:
        slots += st.columns(per_row)
    return slots[:count]


def download_and_sql(data, name: str, key: str, sql: str | None) -> None:
    """The CSV download button at its own width and the SQL expander beside it, filling the rest of the row: in
    a narrow block (half the page on a laptop screen) fixed column shares cut the button's label short."""
    with st.container(horizontal=True, vertical_alignment="top"):
        frame_download(data, name, key=f"{key}_csv")
        show_sql(sql, key)


def chart_block(fig, df: pd.DataFrame | bytes, *, caption: str, name: str, key: str, sql: str | None = None
                ) -> None:
    """A plotly chart with its caption (definition and active options), SQL and CSV of its table (a frame, or
    its :func:`ui.safe.csv_bytes`). Names from the data are drawn as text (:func:`ui.safe.safe_figure`), never
    as plotly markup; a figure from :func:`prepared_chart` is escaped already."""
    if not getattr(fig, "_opsfunnel_safe", False):
        fig = _drawable(fig)
    st.plotly_chart(fig, width="stretch", config=PLOTLY_CONFIG, key=f"{key}_chart")
    st.caption(caption)
    download_and_sql(df, name, key, sql)


def prepared_chart(fig, df: pd.DataFrame) -> tuple:
    """``(fig, csv)`` for :func:`chart_block`, made once inside a :func:`ui.context.memo` builder: the figure
    escaped (and marked so) and the table's CSV bytes, so a rerun neither walks the traces nor writes the
    CSV again."""
    from .safe import csv_bytes

    fig = _drawable(fig)
    fig._opsfunnel_safe = True
    return fig, csv_bytes(df)


def _drawable(fig):
    """``fig`` as every chart is drawn: names from the data escaped (:func:`ui.safe.safe_figure`), and an axis
    drawn over another given ticks of its own (:func:`_own_ticks`)."""
    fig.for_each_xaxis(_own_ticks)
    fig.for_each_yaxis(_own_ticks)
    return safe_figure(fig)


def _own_ticks(axis) -> None:
    """Round ticks for an axis drawn over another (a rate beside counts), unless the chart chose its own.

    plotly.js puts such an axis's ticks where the other's gridlines are ("sync"), which reads as 2 %, 7 %, 13 %,
    19 % beside 0, 10k, 20k; "auto" gives 0 %, 10 %, 20 %. Its own gridlines are left out: the other axis's stay.
    """
    if axis.overlaying and axis.tickmode is None:
        axis.update(tickmode="auto", showgrid=False if axis.showgrid is None else axis.showgrid)


def _without_attrs(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` without its ``attrs`` (the query a metric recorded, bound datetimes included), which the browser
    never needs and Arrow cannot write as JSON: Streamlit would warn on every draw."""
    if not df.attrs:
        return df
    out = df.copy(deep=False)
    out.attrs = {}
    return out


def table_block(df: pd.DataFrame, *, caption: str, name: str, key: str, sql: str | None = None,
                column_config: dict | None = None, csv: bytes | None = None) -> None:
    """A table with its caption, SQL and CSV download (``csv``: its :func:`ui.safe.csv_bytes`, made once)."""
    data_table(_without_attrs(df), column_config=column_config, key=f"{key}_table")
    st.caption(caption)
    download_and_sql(df if csv is None else csv, name, key, sql)


def _widget_key(key: str, language: str | None = None) -> str:
    return f"{key}_{language or lang()}"


def chosen(key: str, default=None):
    """The value of the :func:`choice` ``key`` as the user left it, readable before the widget is drawn
    in this run (the current language's widget holds a change the user just made)."""
    state = st.session_state
    wkey = _widget_key(key)
    if wkey in state:
        return state[wkey]
    return state.get(key, default)


def set_choice(key: str, value) -> None:
    """Set the :func:`choice` ``key`` from code (e.g. an ``on_click`` callback resetting it)."""
    st.session_state[key] = value
    st.session_state[_widget_key(key)] = value
    for language in ("en", "zh"):
        if language != lang():
            st.session_state.pop(_widget_key(key, language), None)


def choice(kind: str, label: str, options, *, key: str, default=None, container=None, index: int | None = None,
           format_func=None, **kwargs):
    """A radio (``kind="radio"``) or selectbox (``"selectbox"``) whose choice survives a language switch.

    ``options`` is a dict ``{value: (en, zh)}`` (or ``{value: text}``), or a list of values shown through
    ``format_func`` (``str`` by default). Streamlit keeps a keyed widget's choice by its shown label, so a
    widget whose labels change with the language would lose it: the widget is keyed per language
    (``{key}_en`` / ``{key}_zh``) and the chosen *value* lives under the language-independent ``key`` in
    ``st.session_state``, seeding the other language's widget. The first choice is ``default`` (a value;
    or the option at ``index``; else the first option). Returns the chosen value."""
    names = None
    if isinstance(options, dict):
        pick = 1 if lang() == "zh" else 0  # fixed for this run: labels must not change while Streamlit re-reads them
        names = {v: (n[pick] if isinstance(n, (tuple, list)) else str(n)) for v, n in options.items()}
        values = list(options)
    else:
        values = list(options)
    if format_func is None:
        format_func = names.__getitem__ if names is not None else str
    if not values:
        raise ValueError(f"choice {key!r} has no options")
    wkey = _widget_key(key)
    state = st.session_state
    if default not in values:
        default = values[index] if index is not None and 0 <= index < len(values) else values[0]
    remembered = state.get(key)
    start = values.index(remembered) if remembered in values else values.index(default)
    if wkey in state:
        # The widget's own state wins; index 0 is Streamlit's "no default", which never clashes with it.
        start = 0 if state[wkey] in values else start
        if state[wkey] not in values:
            state.pop(wkey)
    box = container if container is not None else st
    value = getattr(box, kind)(label, values, index=start, key=wkey, format_func=format_func, **kwargs)
    state[key] = value
    return value


def empty_state(en: str, zh: str) -> None:
    """A helpful sentence instead of an empty chart."""
    st.info(tr(en, zh))


PALETTE = ("#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22",
           "#17becf")


def sql_text(sql_and_values: tuple[str, list]) -> str:
    """A metric's SQL for the "Show SQL" expander, with its bound values listed underneath."""
    sql, values = sql_and_values
    return f"{sql.strip()}\n-- bound values: {values!r}"


def metric_sql(fn, *args) -> str | None:
    """The SQL behind metric ``fn`` from its ``<name>_sql`` builder called with ``args`` (None if it has none)."""
    import sys
    builder = getattr(sys.modules[fn.__module__], f"{fn.__name__}_sql", None)
    return None if builder is None else sql_text(builder(*args))


def help_text(labels: dict, key: str) -> str:
    """A metric's one-line definition from a metrics module's ``LABELS`` in the chosen language."""
    entry = labels.get(key, {})
    return tr(entry.get("help_en", ""), entry.get("help_zh", ""))


# Users without a campaign share the campaign key '' with channel-level spend rows (docs/metrics.md, Economics).
NO_CAMPAIGN = ("(channel level / no campaign)", "（渠道层级/无活动）")


def campaign_label(campaign: pd.Series) -> pd.Series:
    """Campaign keys for display, the empty key named as channel level / no campaign."""
    camp = campaign.fillna("").astype(str)
    return camp.where(camp != "", tr(*NO_CAMPAIGN))


def row_names(frame: pd.DataFrame, level: str) -> pd.Series:
    """A readable name per economics row: the channel, or the campaign (the empty key as '<channel> (channel level / …)')."""
    if level == "channel":
        return frame["channel"].astype(str)
    camp = frame["campaign"].fillna("").astype(str)
    return camp.where(camp != "", frame["channel"].astype(str) + " " + tr(*NO_CAMPAIGN))
