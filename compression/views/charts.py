"""What every chart of the dashboard shares: the look (the palette, the Pareto front's colour, the plotly
template, a log axis with ticks at powers of ten and when an axis is wide enough to get one), the figure a chart
shows when it has nothing to draw, latencies written for people, and :func:`pareto_front`, which the comparison
charts, the search's charts and the search itself use to find the best trade-offs. The charts live beside it by
what they draw — ``results_charts`` (Compare, History), ``board_charts``, ``weights_charts``, ``training_charts``,
``search_charts`` and ``data_preview`` — all pure functions of frames and arrays that import neither Streamlit
nor TensorFlow, so tests and notebooks build the same figures the app shows.

Usage::

    front = pareto_front(df, minimize=["gzip_bytes"], maximize=["accuracy"])
    format_latency(0.68)   # "680 µs"
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go

__all__ = [
    "FRONT_COLOR",
    "LOG_AXIS",
    "LOG_RANGE",
    "PALETTE",
    "TEMPLATE",
    "format_latency",
    "latency_unit",
    "pareto_front",
]

# An axis whose positive values span more than this factor gets a log scale.
LOG_RANGE = 20.0
PALETTE = ("#4C78A8", "#F58518", "#54A24B", "#E45756", "#72B7B2", "#B279A2", "#FF9DA6", "#9D755D", "#BAB0AC")
FRONT_COLOR = "#D62728"
TEMPLATE = "plotly_white"

LOG_AXIS = {"type": "log", "dtick": 1}


def _wide(values) -> bool:
    """Whether positive values span enough orders of magnitude for a log axis."""
    v = pd.to_numeric(pd.Series(values), errors="coerce").dropna()
    v = v[v > 0]
    return len(v) >= 2 and v.max() / v.min() > LOG_RANGE


def _empty(title: str, message: str = "No finished variants yet.") -> go.Figure:
    fig = go.Figure()
    fig.add_annotation(text=message, showarrow=False, x=0.5, y=0.5, xref="paper", yref="paper")
    fig.update_layout(title=title, template=TEMPLATE, xaxis_visible=False, yaxis_visible=False, height=320)
    return fig


def latency_unit(values_ms) -> tuple[float, str]:
    """``(factor, unit)`` to show latencies given in ms: µs (×1000) when every value is below 1 ms."""
    v = pd.to_numeric(pd.Series(values_ms, dtype=object), errors="coerce").dropna()
    return (1000.0, "µs") if len(v) and float(v.max()) < 1.0 else (1.0, "ms")


def format_latency(ms: float | None) -> str:
    """One latency for people: '680 µs' below a millisecond, '1.25 ms' above, '—' when unknown."""
    if ms is None or not np.isfinite(ms):
        return "—"
    if ms < 1.0:
        us = ms * 1000
        return f"{us:.0f} µs" if us >= 100 else f"{us:.1f} µs"
    return f"{ms:.2f} ms"


def pareto_front(df: pd.DataFrame, minimize: Sequence[str] = (), maximize: Sequence[str] = ()) -> pd.Series:
    """Which rows are Pareto-optimal: no other row is at least as good everywhere and better somewhere.

    Rows with a missing value in any of the columns are never on the front.

    Args:
        df: one row per variant.
        minimize: columns where smaller is better (size, latency).
        maximize: columns where larger is better (accuracy).

    Returns:
        A boolean Series aligned with ``df.index``.

    Usage::

        front = pareto_front(df, minimize=["gzip_bytes"], maximize=["accuracy"])
    """
    cols = list(minimize) + list(maximize)
    if not cols:
        raise ValueError("pareto_front needs at least one column to minimize or maximize.")
    values = (
        np.column_stack(
            [pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float) for c in minimize]
            + [-pd.to_numeric(df[c], errors="coerce").to_numpy(dtype=float) for c in maximize]
        )
        if len(df)
        else np.empty((0, len(cols)))
    )
    valid = ~np.isnan(values).any(axis=1)
    front = np.zeros(len(df), dtype=bool)
    for i in np.flatnonzero(valid):
        others = values[valid]
        dominated = np.any(np.all(others <= values[i], axis=1) & np.any(others < values[i], axis=1))
        front[i] = not dominated
    return pd.Series(front, index=df.index, name="pareto")


