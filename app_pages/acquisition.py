"""Placeholder: this page is being built."""
import streamlit as st

from ui.components import page_header

page_header("acquisition", "acquisition")
st.info("Coming soon.")
