"""The global sidebar filters: date range, channels, campaigns and the report time zone.

They build one ``metrics.Filters`` into ``st.session_state["filters"]`` on every rerun. Options
come from the data (first-touch channel / campaign keys of the users) and refresh with the data
version: after a load the date range widens to the new full range if it was at its default, and
chosen channels or campaigns that no longer exist are dropped.
"""
from __future__ import annotations

from datetime import date

import streamlit as st

from .components import choice, chosen, set_choice
from .context import data_facts, data_version, local_date, tr

TIMEZONES = ("UTC", "Asia/Shanghai", "Asia/Hong_Kong", "Asia/Singapore", "Asia/Tokyo", "Europe/London",
             "Europe/Berlin", "America/New_York", "America/Los_Angeles")
TIMEZONE_NAMES = {
    "UTC": ("UTC", "UTC（协调世界时）"), "Asia/Shanghai": ("Shanghai (Asia/Shanghai)", "上海（Asia/Shanghai）"),
    "Asia/Hong_Kong": ("Hong Kong (Asia/Hong_Kong)", "香港（Asia/Hong_Kong）"),
    "Asia/Singapore": ("Singapore (Asia/Singapore)", "新加坡（Asia/Singapore）"),
    "Asia/Tokyo": ("Tokyo (Asia/Tokyo)", "东京（Asia/Tokyo）"),
    "Europe/London": ("London (Europe/London)", "伦敦（Europe/London）"),
    "Europe/Berlin": ("Berlin (Europe/Berlin)", "柏林（Europe/Berlin）"),
    "America/New_York": ("New York (America/New_York)", "纽约（America/New_York）"),
    "America/Los_Angeles": ("Los Angeles (America/Los_Angeles)", "洛杉矶（America/Los_Angeles）"),
}
KEYS = ("flt_dates", "flt_channels", "flt_campaigns", "flt_timezone")  # flt_timezone: a ui.components.choice


def full_range(tz: str) -> tuple[date, date] | None:
    """The data's first and last local dates in ``tz`` (None when there are no events)."""
    facts = data_facts()
    if facts["first"] is None:
        return None
    return local_date(facts["first"], tz), local_date(facts["last"], tz)


def reset_filters() -> None:
    """Back to all data, all channels and campaigns, UTC (an ``on_click`` callback).

    The values are assigned rather than deleted: an assigned value is sent to the browser, while a
    deleted key can come back from the browser's copy of the widget on the next rerun."""
    state = st.session_state
    state["flt_channels"] = []
    state["flt_campaigns"] = []
    set_choice("flt_timezone", "UTC")
    rng = full_range("UTC")
    if rng:
        state["flt_dates"] = rng
    else:
        state.pop("flt_dates", None)
    state["_flt_default"] = tuple(rng) if rng else None


def _sync(version: int, tz: str, rng: tuple[date, date] | None) -> None:
    """Keep the widget state valid for the current data (called before the widgets are drawn)."""
    state = st.session_state
    default = tuple(rng) if rng else None
    if state.get("_flt_default") != default:
        # The data or the time zone moved the full range: follow it unless the user narrowed it.
        if "flt_dates" not in state or tuple(state["flt_dates"]) == state.get("_flt_default"):
            if default:
                state["flt_dates"] = default
            else:
                state.pop("flt_dates", None)
        state["_flt_default"] = default
    if default and "flt_dates" not in state:
        state["flt_dates"] = default
    if default and "flt_dates" in state:
        # Keep a chosen range inside the data (a time-zone change moves the ends by a day).
        picked = tuple(state["flt_dates"])
        clamp = tuple(min(max(d, default[0]), default[1]) for d in picked)
        if clamp != picked:
            state["flt_dates"] = clamp
    if state.get("_flt_version") != version:
        facts = data_facts()
        state["flt_channels"] = [c for c in state.get("flt_channels", []) if c in facts["channels"]]
        known = set(facts["campaigns"]["campaign"])
        state["flt_campaigns"] = [c for c in state.get("flt_campaigns", []) if c in known]
        state["_flt_version"] = version


def sidebar_filters():
    """Draw the filters in the sidebar and return the ``metrics.Filters`` they describe."""
    from metrics import Filters

    st.session_state.setdefault("flt_timezone", "UTC")
    tz = chosen("flt_timezone", "UTC")  # a change made in the widget counts in this run already
    rng = full_range(tz)
    _sync(data_version(), tz, rng)
    facts = data_facts()

    st.subheader(tr("Filters", "筛选"))
    start = end = None
    if rng:
        picked = st.date_input(tr("Date range", "日期范围"), min_value=rng[0], max_value=rng[1], key="flt_dates",
                               help=tr("Local dates in the report time zone, both inclusive.",
                                       "报告时区的本地日期，含首尾两天。"))
        picked = tuple(picked) if isinstance(picked, (tuple, list)) else (picked,)
        start = picked[0] if picked else rng[0]
        end = picked[1] if len(picked) > 1 else start  # a half-picked range means that one day
    else:
        st.caption(tr("No events loaded yet.", "尚未加载事件。"))
    channels = st.multiselect(tr("Channels", "渠道"), facts["channels"], key="flt_channels",
                              placeholder=tr("All channels", "全部渠道"),
                              help=tr("Users' first-touch acquisition channel.", "用户首次触达的获客渠道。"))
    camp = facts["campaigns"]
    if channels:
        camp = camp[camp["channel"].isin(channels)]
    campaign_options = sorted(set(camp["campaign"]) | set(st.session_state.get("flt_campaigns", [])))
    campaigns = st.multiselect(tr("Campaigns", "活动"), campaign_options, key="flt_campaigns",
                               placeholder=tr("All campaigns", "全部活动"),
                               help=tr("Users' first-touch acquisition campaign.", "用户首次触达的获客活动。"))
    choice("selectbox", tr("Report time zone", "报告时区"), TIMEZONE_NAMES, key="flt_timezone", default="UTC",
           help=tr("Days, weeks and months are counted in this time zone.", "日、周、月按此时区划分。"))
    st.button(tr("Reset filters", "重置筛选"), on_click=reset_filters, key="flt_reset")
    result = Filters(start=start, end=end, channels=tuple(channels), campaigns=tuple(campaigns), timezone=tz)
    st.session_state["filters"] = result
    return result
