"""Pure metric computations over an opsfunnel DuckDB connection.

Every metric is ``name(con, params) -> pandas.DataFrame`` with documented columns; the heavy work
is portable SQL run inside DuckDB. This package never imports streamlit or plotly.
"""
from store.errors import UserInputError

from .filters import Filters
from .selectors import Step

__all__ = ["Filters", "Step", "UserInputError"]
