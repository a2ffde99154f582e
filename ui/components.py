"""Blocks every page uses: header with active filters, charts and tables with their definition,
SQL and CSV download, and empty states."""
from __future__ import annotations

import pandas as pd
import streamlit as st

from .context import filters, frame_download, lang, tr

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
    """The active global filters in words, in the chosen language."""
    from .format import date as fmt_date

    bits = []
    if f.start or f.end:
        bits.append(f"{fmt_date(f.start) if f.start else '…'} – {fmt_date(f.end) if f.end else '…'} ({f.timezone})")
    if f.channels:
        bits.append(tr("channels: ", "渠道：") + ", ".join(f.channels))
    if f.campaigns:
        bits.append(tr("campaigns: ", "活动：") + ", ".join(f.campaigns))
    if f.segment:
        bits.append(tr("segment: ", "细分：") + ", ".join(f"{k}={v}" for k, v in f.segment.items()))
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


def chart_block(fig, df: pd.DataFrame, *, caption: str, name: str, key: str, sql: str | None = None) -> None:
    """A plotly chart with its caption (definition and active options), SQL and CSV of its table."""
    st.plotly_chart(fig, width="stretch", config=PLOTLY_CONFIG, key=f"{key}_chart")
    st.caption(caption)
    cols = st.columns([1, 3])
    with cols[0]:
        frame_download(df, name, key=f"{key}_csv")
    with cols[1]:
        show_sql(sql, key)


def table_block(df: pd.DataFrame, *, caption: str, name: str, key: str, sql: str | None = None,
                column_config: dict | None = None) -> None:
    st.dataframe(df, width="stretch", hide_index=True, column_config=column_config, key=f"{key}_table")
    st.caption(caption)
    cols = st.columns([1, 3])
    with cols[0]:
        frame_download(df, name, key=f"{key}_csv")
    with cols[1]:
        show_sql(sql, key)


def empty_state(en: str, zh: str) -> None:
    """A helpful sentence instead of an empty chart."""
    st.info(tr(en, zh))
