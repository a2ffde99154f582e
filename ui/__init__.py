"""Streamlit UI helpers shared by the pages: connection, caching, language, filters, drawing."""
