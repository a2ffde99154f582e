"""Numbers and dates formatted for the chosen language."""
from __future__ import annotations

import math

from .context import lang


def _missing(x) -> bool:
    return x is None or (isinstance(x, float) and math.isnan(x)) or str(x) in ("<NA>", "NaT", "nan")


def number(x, digits: int = 0) -> str:
    if _missing(x):
        return "–"
    if lang() == "zh" and abs(x) >= 10_000 and digits == 0:
        return f"{x / 10_000:,.2f} 万" if abs(x) < 100_000_000 else f"{x / 100_000_000:,.2f} 亿"
    return f"{x:,.{digits}f}"


def pct(x, digits: int = 1) -> str:
    return "–" if _missing(x) else f"{x * 100:.{digits}f}%"


def money(x, currency: str = "CNY", digits: int = 0) -> str:
    if _missing(x):
        return "–"
    symbol = "¥" if currency in ("CNY", "RMB") else ""
    return f"{symbol}{x:,.{digits}f}" if symbol else f"{x:,.{digits}f} {currency}"


def ratio(x, digits: int = 2) -> str:
    return "–" if _missing(x) else f"{x:.{digits}f}×"


def date(d) -> str:
    if _missing(d):
        return "–"
    return f"{d.year}年{d.month}月{d.day}日" if lang() == "zh" else d.strftime("%Y-%m-%d")


def signed_pct(x, digits: int = 1) -> str:
    """A relative change such as +12.3% / -4.0% (an ASCII minus: ``st.metric`` reads it as a fall)."""
    if _missing(x) or (isinstance(x, float) and math.isinf(x)):
        return "–"
    return f"{'+' if x >= 0 else '-'}{abs(x) * 100:.{digits}f}%"


def seconds(x) -> str:
    """A duration in seconds as s / min / h (or 秒 / 分钟 / 小时)."""
    if _missing(x):
        return "–"
    zh = lang() == "zh"
    if x < 60:
        return f"{x:.0f} 秒" if zh else f"{x:.0f} s"
    if x < 3600:
        return f"{x / 60:.1f} 分钟" if zh else f"{x / 60:.1f} min"
    return f"{x / 3600:.1f} 小时" if zh else f"{x / 3600:.1f} h"
