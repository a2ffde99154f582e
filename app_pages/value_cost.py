"""Placeholder: this page is being built."""
import streamlit as st

from ui.components import page_header

page_header("value_cost", "value_cost")
st.info("Coming soon.")
