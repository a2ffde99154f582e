"""Placeholder: this page is being built."""
import streamlit as st

from ui.components import page_header

page_header("retention", "retention")
st.info("Coming soon.")
