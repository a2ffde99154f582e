"""opsfunnel — the Streamlit entrypoint: page config, session defaults, the password gate, sidebar,
navigation, and the page boundary (``ui.guard``: unexpected errors are logged, not shown)."""
from __future__ import annotations

import streamlit as st

from ui.context import data_facts, tr
from ui.filters import sidebar_filters
from ui.format import number
from ui.guard import gate, report_error, run_page

st.set_page_config(page_title="opsfunnel", page_icon="📊", layout="wide")
st.session_state.setdefault("lang", "en")
st.html("<style>[data-testid='stMetricValue'] {font-size: 1.7rem;} "
        "[data-testid='stMetricLabel'] p {font-size: 0.85rem;}</style>")

with st.sidebar:
    st.radio("Language / 语言", ["en", "zh"], format_func=lambda v: {"en": "English", "zh": "简体中文"}[v],
             key="lang", horizontal=True)
if not gate():
    st.stop()

with st.sidebar:
    try:
        sidebar_filters()
        facts = data_facts()
        st.caption(tr(f"{number(facts['events'])} events · {number(facts['users'])} users loaded",
                      f"已加载 {number(facts['events'])} 个事件 · {number(facts['users'])} 位用户"))
    except Exception as exc:  # noqa: BLE001 — same boundary as the pages
        report_error(exc, "the sidebar")

P = st.Page
pages = {
    tr("Overview", "总览"): [P("app_pages/overview.py", title=tr("Overview", "总览"), icon="🏠", default=True)],
    tr("Marketing", "市场"): [
        P("app_pages/traffic.py", title=tr("Traffic", "流量"), icon="🌐"),
        P("app_pages/acquisition.py", title=tr("Acquisition", "拉新"), icon="🧲"),
        P("app_pages/campaigns.py", title=tr("Campaigns & ROI", "活动与 ROI"), icon="💰"),
        P("app_pages/saturation.py", title=tr("Channel saturation", "渠道饱和度"), icon="📉"),
    ],
    tr("Operations", "运营"): [
        P("app_pages/funnel.py", title=tr("Funnel", "漏斗"), icon="🔻"),
        P("app_pages/retention.py", title=tr("Retention", "留存"), icon="🔁"),
        P("app_pages/revenue_referral.py", title=tr("Revenue & referral", "转化与自传播"), icon="🤝"),
    ],
    tr("Insights", "洞察"): [
        P("app_pages/campaign_vs_retention.py", title=tr("Campaign vs retention", "活动 vs 留存"), icon="🎯"),
        P("app_pages/value_cost.py", title=tr("Value vs cost", "价值 vs 成本"), icon="⚖️"),
    ],
    tr("Data", "数据"): [P("app_pages/data.py", title=tr("Data", "数据"), icon="🗂️")],
}
run_page(st.navigation(pages))
