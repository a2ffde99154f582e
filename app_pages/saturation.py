"""Placeholder: this page is being built."""
import streamlit as st

from ui.components import page_header

page_header("saturation", "saturation")
st.info("Coming soon.")
