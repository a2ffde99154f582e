"""The chart preparation every page shares (ui.components.prepared_chart): second axes get round ticks."""
from __future__ import annotations

import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ui.components import prepared_chart


def test_an_axis_over_another_gets_ticks_of_its_own_and_no_second_grid():
    fig = make_subplots(specs=[[{"secondary_y": True}]])
    fig.add_trace(go.Bar(x=[1, 2], y=[10_000, 50_000]), secondary_y=False)
    fig.add_trace(go.Scatter(x=[1, 2], y=[0.02, 0.31]), secondary_y=True)
    # plotly.js would default yaxis2 (overlaying y) to "sync": ticks at y's gridlines, 2 %, 7 %, 13 % ...
    assert fig.layout.yaxis2.overlaying == "y" and fig.layout.yaxis2.tickmode is None
    out, csv = prepared_chart(fig, pd.DataFrame({"a": [1]}))
    assert out.layout.yaxis2.tickmode == "auto" and out.layout.yaxis2.showgrid is False
    assert out.layout.yaxis.tickmode is None and out.layout.yaxis.showgrid is None     # the first axis as it was
    assert csv == "\ufeffa\r\n1\r\n".encode()   # the table's CSV (with the byte-order mark spreadsheets need)


def test_a_second_axis_keeps_the_ticks_and_grid_a_chart_chose():
    fig = go.Figure(go.Scatter(x=[0, 1], y=[0, 1]))
    fig.add_trace(go.Scatter(x=[0.1, 0.9], y=[0, 1], xaxis="x2"))
    fig.update_layout(xaxis2={"overlaying": "x", "side": "top", "tickmode": "array", "tickvals": [0, 0.5, 1],
                              "showgrid": True})
    out, _ = prepared_chart(fig, pd.DataFrame({"a": [1]}))
    assert out.layout.xaxis2.tickmode == "array" and out.layout.xaxis2.showgrid is True
