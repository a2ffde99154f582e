"""Placeholder: this page is being built."""
import streamlit as st

from ui.components import page_header

page_header("revenue_referral", "revenue_referral")
st.info("Coming soon.")
