"""The board-fit chart of the Compare page: would each variant run on a chosen microcontroller. It draws a
:func:`compression.measure.boards.fit_table` frame — each variant's TFLM tensor arena (RAM) against its
``.tflite`` bytes (flash) — with the board's budget as a box, so a point inside the box fits; the frame and the
board come in as arguments, so this module needs nothing from ``measure/``.

Usage::

    fig = ram_vs_flash(fit_table(results, BOARDS["nano33"]), BOARDS["nano33"])
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .charts import LOG_AXIS, PALETTE, TEMPLATE, _empty

__all__ = ["FIT_COLORS", "ram_vs_flash"]

FIT_COLORS = {"fits": "#54A24B", "does not fit": "#E45756", "not measured": "#BAB0AC"}


def ram_vs_flash(fits: pd.DataFrame, board: Any) -> go.Figure:
    """Each variant's TFLM arena (RAM) against its flash bytes, with the board's budget drawn as a box.

    A point inside the box fits the board. Both axes are logarithmic (models are KB,
    budgets MB); the box starts at the axes' lower corner. Variants TFLM refuses have
    no arena: they are named under the chart, not plotted.

    Args:
        fits: a :func:`compression.measure.boards.fit_table` frame.
        board: a :class:`compression.measure.boards.Board` (``name``, ``ram_bytes``, ``flash_bytes``).

    Usage::

        ram_vs_flash(fit_table(results, BOARDS["nano33"]), BOARDS["nano33"])
    """
    title = f"RAM (TFLM arena) vs flash on {board.name}"
    data = fits.dropna(subset=["arena_bytes", "flash_bytes"]) if len(fits) else fits
    data = data[(data["arena_bytes"] > 0) & (data["flash_bytes"] > 0)] if len(data) else data
    refused = [] if not len(fits) else list(fits.loc[fits["tflm"] == "refused", "name"])
    if data.empty:
        message = "No variant has a TFLM arena measurement."
        if refused:
            message += f" Cannot run under TFLM: {', '.join(refused)}."
        return _empty(title, message)
    low = 0.5 * min(float(data["arena_bytes"].min()), float(data["flash_bytes"].min()))
    x_high = 1.6 * max(float(data["flash_bytes"].max()), board.flash_bytes)
    y_high = 1.6 * max(float(data["arena_bytes"].max()), board.ram_bytes)
    fig = go.Figure()
    fig.add_trace(
        go.Scatter(
            x=[low, board.flash_bytes, board.flash_bytes, low, low],
            y=[low, low, board.ram_bytes, board.ram_bytes, low],
            mode="lines",
            fill="toself",
            fillcolor="rgba(84, 162, 75, 0.10)",
            line={"color": "#54A24B", "width": 2},
            name=f"{board.name}: {board.ram_bytes / 1024:,.0f} KB RAM × {board.flash_bytes / 1024:,.0f} KB flash",
            hoverinfo="name",
        )
    )
    for status, part in data.groupby("fit", sort=False):
        fig.add_trace(
            go.Scatter(
                # Plain lists (not base64 typed arrays): the browser's figure holds the bytes as numbers.
                x=[int(v) for v in part["flash_bytes"]],
                y=[int(v) for v in part["arena_bytes"]],
                mode="markers+text",
                name=str(status),
                text=list(part["name"]),
                textposition="top center",
                textfont={"size": 10},
                marker={"size": 12, "color": FIT_COLORS.get(status, PALETTE[0]), "line": {"width": 1,
                                                                                           "color": "white"}},
                customdata=part[["name", "fit_label"]].to_numpy().tolist(),
                hovertemplate="<b>%{customdata[0]}</b><br>arena %{y:,} B · flash %{x:,} B<br>"
                "%{customdata[1]}<extra></extra>",
            )
        )
    fig.update_layout(
        title=title,
        template=TEMPLATE,
        legend={"orientation": "h", "y": -0.25},
        xaxis={"title": "flash: .tflite bytes (log)", **LOG_AXIS, "range": [np.log10(low), np.log10(x_high)]},
        yaxis={"title": "RAM: TFLM tensor arena bytes (log)", **LOG_AXIS,
               "range": [np.log10(low), np.log10(y_high)]},
        height=460,
        margin={"t": 60, "b": 40},
    )
    if refused:
        fig.add_annotation(text=f"Cannot run under TFLM (not plotted): {', '.join(refused)}", showarrow=False,
                           x=0, y=1.02, xref="paper", yref="paper", xanchor="left", font={"size": 11})
    return fig
