"""Output that cannot be turned against the person reading it.

* :func:`csv_bytes` — every CSV the app offers for download. A spreadsheet opening a CSV runs a cell
  that starts with ``=``, ``+``, ``-`` or ``@`` (and some also read a leading tab or carriage return
  as the start of a formula), so a text cell starting with one of those characters gets a leading
  ``'``, which spreadsheets show as "this is text". Only text cells change: numeric, boolean and
  date columns are written as they are, so a real negative number stays a number, while a text cell
  such as ``"-5"`` from user data is neutralised like any other text.
* :func:`md_escape` — user-supplied strings (channel, campaign and event names, file names, cells
  quoted in error messages) shown inside Markdown (``st.markdown``, ``st.caption``, ``st.info`` …)
  are escaped so they appear literally: no links, images, emphasis or HTML from data.
* :func:`safe_figure` / :func:`plot_escape` — plotly reads a small HTML subset in labels (``<b>``,
  ``<span style>``, ``<a href>``); names from data in a chart's traces are turned into entities so they are
  drawn as typed. ``ui.components.chart_block`` applies it to every chart.
"""
from __future__ import annotations

import re

import numpy as np
import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")

# Characters that start Markdown markup anywhere in a line: code, emphasis, strike-through, links and
# images (``[``), HTML and autolinks (``<``), entities (``&``), block quotes, math (``$``) and escapes.
_MD_ALWAYS = re.compile(r"([\\`*~\[\]<>&$|])")
# ``_`` only opens or closes emphasis at a word edge (``user_id`` stays as it is).
_MD_UNDERSCORE = re.compile(r"(?<![0-9A-Za-z])_|_(?![0-9A-Za-z])")
# ``:`` before a letter, digit, ``/`` or ``[`` can start an emoji short code (``:smile:``), a coloured
# span (``:red[x]``) or a bare link (``https://``).
_MD_COLON = re.compile(r":(?=[0-9A-Za-z_/\[])")
# At the start of the text: headings, lists and thematic breaks.
_MD_LINE_START = re.compile(r"^(\s*\d*)([#+\-=.)])")


def neutralise(value):
    """A text value with a leading ``'`` when a spreadsheet would read it as a formula; anything else as is."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def safe_frame(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` with every text cell neutralised (numeric, boolean and time columns untouched)."""
    out = df.copy()
    for col in out.columns:
        series = out[col]
        if isinstance(series.dtype, pd.StringDtype):  # every value text or missing: one vectorised test
            risky = series.str.startswith(FORMULA_START, na=False)
            if risky.any():
                out[col] = series.where(~risky, "'" + series)
        elif pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype):
            out[col] = series.map(neutralise, na_action="ignore")
    # Column names come from user files too (e.g. a pivot over channel names).
    out.columns = [neutralise(c) if isinstance(c, str) else c for c in out.columns]
    return out


def csv_bytes(df: pd.DataFrame) -> bytes:
    """``df`` as UTF-8 CSV with a byte-order mark (Excel reads the Chinese right), CRLF line ends
    (RFC 4180; a cell holding a CR or LF is quoted) and formulas neutralised."""
    return safe_frame(df).to_csv(index=False, lineterminator="\r\n").encode("utf-8-sig")


def md_escape(text) -> str:
    """``text`` escaped so that Markdown (``st.markdown``, ``st.caption``, ``st.error`` …) shows it
    literally — no links, images, emphasis, code, HTML, emoji short codes or headings from data.
    Line breaks become spaces; ``None`` becomes an empty string. Plain words, spaces, ``.``, ``,``,
    ``-`` inside text and ``_`` inside a word are left alone, so ordinary messages read the same."""
    if text is None:
        return ""
    s = str(text).replace("\r", " ").replace("\n", " ")
    s = _MD_ALWAYS.sub(r"\\\1", s)
    s = _MD_UNDERSCORE.sub(r"\\_", s)
    s = _MD_COLON.sub(r"\\:", s)
    return _MD_LINE_START.sub(r"\1\\\2", s)


# ---------------------------------------------------------------- plotly
_PLOT_FIELDS = ("x", "y", "labels", "parents", "ids", "text", "hovertext", "name", "customdata", "legendgroup")
# A label a page composed on purpose with line breaks (``f"{plot_escape(name)}<br>{value}"``) is left alone: the page
# escapes the data inside it with :func:`plot_escape` itself.
_COMPOSED = "<br>"


def plot_escape(value):
    """A string plotly would read as markup (``<b>``, ``<a href>``, ``<span style>``) with ``& < >`` as
    entities, so it is drawn literally; other values as they are."""
    if isinstance(value, str) and ("<" in value or ">" in value):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value


def _plot_data(value):
    """:func:`plot_escape` for a value found in a figure, except a label composed with ``<br>`` by a page."""
    if isinstance(value, str) and ("<" in value or ">" in value) and _COMPOSED not in value:
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    return value


def _escape_array(values):
    if isinstance(values, str):
        return _plot_data(values)
    try:
        items = list(values)
    except TypeError:
        return values
    nested = (list, tuple, np.ndarray)
    if not any(isinstance(v, str) and ("<" in v or ">" in v) or isinstance(v, nested) for v in items):
        return values
    out = [_escape_array(v) if isinstance(v, nested) else _plot_data(v) for v in items]
    return values if all(a is b for a, b in zip(out, items)) else out


def safe_figure(fig):
    """``fig`` with every data-derived string of its traces (categories, names, texts, custom data) escaped
    by :func:`plot_escape`; strings without ``<`` or ``>`` — nearly all — are left exactly as they were, and
    so are labels a page composed with ``<br>`` (it escapes their data parts itself). Hover templates,
    titles and annotations are the page's own text and are not touched."""
    for trace in fig.data:
        for field in _PLOT_FIELDS:
            if field not in trace:  # not a property of this trace type (cheap; indexing it would spell-check the name)
                continue
            try:
                current = trace[field]
            except (KeyError, ValueError, AttributeError):
                continue
            if current is None:
                continue
            escaped = _escape_array(current)
            if escaped is not current:
                trace[field] = escaped
    return fig
