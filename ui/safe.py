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
"""
from __future__ import annotations

import re

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
        if pd.api.types.is_object_dtype(series.dtype) or pd.api.types.is_string_dtype(series.dtype):
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
