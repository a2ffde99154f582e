"""Placeholder: this page is being built."""
import streamlit as st

from ui.components import page_header

page_header("campaign_vs_retention", "campaign_vs_retention")
st.info("Coming soon.")
