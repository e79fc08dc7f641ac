"""Charts of a variant's weights, for the Inspect page and the lessons: what compression did to each kernel.
They read two sources. The float kernels a run saves (``weights/<stem>.npz``) give per-layer sparsity and unique
values (:func:`layer_bars` of a :func:`layer_frame`), one kernel's histograms before and after, and its heat map.
The weights really stored in the converted ``.tflite`` give :func:`file_weight_histogram` (k clusters as k bars,
int8 as its grid), :func:`int8_grid` and :func:`variant_comparison`; the fine-tune's snapshots give
:func:`pruning_over_time` and :func:`centroids_over_time`. Inputs are plain NumPy arrays and result rows.

Usage::

    fig = layer_bars(layer_frame(row.layers, kernel_stats(baseline_kernels)))
    fig = file_weight_histogram(weights["conv"].dequantized(), baseline_kernels["conv"], "conv")
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from ..results import LayerStat
from .charts import FRONT_COLOR, LOG_AXIS, PALETTE, TEMPLATE, _empty, _wide

__all__ = [
    "BASELINE_COLOR",
    "DISTINCT_LIMIT",
    "FILE_COLOR",
    "centroids_over_time",
    "file_weight_histogram",
    "int8_grid",
    "kernel_heatmap",
    "kernel_stats",
    "layer_bars",
    "layer_frame",
    "pruning_over_time",
    "variant_comparison",
    "weight_histograms",
]


# ---------------------------------------------------------------- kernels saved by the run (weights/<stem>.npz)


def kernel_stats(kernels: dict[str, np.ndarray]) -> list[dict]:
    """Per-kernel sparsity, unique values and size from saved arrays (``weights/<stem>.npz``).

    The same numbers as ``compression.measure.weight_stats.layer_weight_stats``, without a model.
    """
    return [
        {
            "name": name,
            "sparsity": float(np.mean(np.asarray(k) == 0)) if np.size(k) else 0.0,
            "unique_values": int(np.unique(k).size),
            "params": int(np.size(k)),
        }
        for name, k in kernels.items()
    ]


def layer_frame(variant_layers: Iterable[LayerStat | dict] | None,
                baseline_layers: Iterable[LayerStat | dict] | None = None) -> pd.DataFrame:
    """Per-layer stats (``VariantResult.layers``, or :func:`kernel_stats` dicts) of a variant and the baseline.

    Returns:
        Columns ``layer, which ("baseline"/"variant"), sparsity, unique_values, params``.
    """
    rows = []
    for which, layers in (("baseline", baseline_layers), ("variant", variant_layers)):
        for layer in map(LayerStat.from_dict, layers or ()):
            rows.append(
                {
                    "layer": layer.name,
                    "which": which,
                    "sparsity": layer.sparsity,
                    "unique_values": layer.unique_values,
                    "params": layer.params,
                }
            )
    return pd.DataFrame(rows, columns=["layer", "which", "sparsity", "unique_values", "params"])


def layer_bars(layers: pd.DataFrame) -> go.Figure:
    """Per-layer sparsity (fraction of zeros) and unique kernel values, baseline vs variant.

    Args:
        layers: a :func:`layer_frame`.
    """
    if layers is None or layers.empty:
        return _empty("Per-layer sparsity and unique values", "No per-layer statistics for this variant.")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("sparsity (fraction of zeros)", "unique kernel values"))
    colors = {"baseline": "#9E9E9E", "variant": PALETTE[0]}
    for which, part in layers.groupby("which", sort=False):
        hover = "<b>%{x}</b> (" + which + ")<br>%{y}<br>%{customdata:,} weights<extra></extra>"
        for col, column in enumerate(("sparsity", "unique_values"), start=1):
            fig.add_trace(
                go.Bar(
                    x=part["layer"],
                    y=part[column],
                    name=which,
                    marker_color=colors.get(which),
                    customdata=part["params"],
                    hovertemplate=hover,
                    legendgroup=which,
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_yaxes(tickformat=".0%", range=[0, 1], row=1, col=1)
    fig.update_yaxes(**(LOG_AXIS if _wide(layers["unique_values"]) else {"type": "linear"}), row=1, col=2)
    fig.update_layout(barmode="group", template=TEMPLATE, height=380, title="Per-layer sparsity and unique values")
    return fig


def weight_histograms(
    before: np.ndarray | None, after: np.ndarray | None, layer: str = "", bins: int = 80
) -> go.Figure:
    """Overlaid histograms of one kernel before (baseline) and after (variant).

    Counts are on a log axis so pruning's spike at zero and clustering's few
    spikes stand out next to the smooth float distribution.
    """
    arrays = [
        (n, np.asarray(a, dtype=float).ravel())
        for n, a in (("baseline", before), ("variant", after))
        if a is not None and np.size(a)
    ]
    if not arrays:
        return _empty(f"Weight histogram {layer}".strip(), "No weights for this layer.")
    lo = min(a.min() for _, a in arrays)
    hi = max(a.max() for _, a in arrays)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    edges = np.linspace(lo, hi, bins + 1)
    fig = go.Figure()
    for (name, a), color in zip(arrays, ("#9E9E9E", PALETTE[1]), strict=False):
        counts, _ = np.histogram(a, bins=edges)
        centers = (edges[:-1] + edges[1:]) / 2
        fig.add_trace(
            go.Bar(
                x=centers,
                y=counts,
                width=(edges[1] - edges[0]),
                name=f"{name} ({np.mean(a == 0):.0%} zeros, {np.unique(a).size} unique)",
                marker_color=color,
                opacity=0.6,
                hovertemplate="value ≈ %{x:.4f}<br>%{y} weights<extra>" + name + "</extra>",
            )
        )
    fig.update_layout(
        title=f"Weight histogram {layer}".strip(),
        barmode="overlay",
        template=TEMPLATE,
        xaxis_title="weight value",
        yaxis={"title": "count (log)", **LOG_AXIS},
        height=380,
        legend={"orientation": "h", "y": -0.25},
    )
    return fig


def kernel_heatmap(kernel: np.ndarray | None, layer: str = "") -> go.Figure:
    """One layer's kernel as a 2-D heat map (all input dimensions flattened × output channels).

    Zeros (pruned weights) show as the white middle of a diverging scale.
    """
    if kernel is None or np.size(kernel) == 0:
        return _empty(f"Kernel {layer}".strip(), "No kernel for this layer.")
    k = np.asarray(kernel, dtype=float)
    grid = k.reshape(-1, k.shape[-1]) if k.ndim > 1 else k.reshape(1, -1)
    if grid.shape[0] > grid.shape[1] * 4:
        grid = grid.T  # keep the picture landscape
        x_title, y_title = "input position (flattened)", "output channel"
    else:
        x_title, y_title = "output channel", "input position (flattened)"
    bound = float(np.abs(grid).max()) or 1.0
    fig = go.Figure(
        go.Heatmap(
            z=grid,
            colorscale="RdBu",
            zmid=0,
            zmin=-bound,
            zmax=bound,
            hovertemplate="row %{y}, col %{x}<br>%{z:.4f}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Kernel {layer} {tuple(k.shape)}".strip(),
        template=TEMPLATE,
        xaxis_title=x_title,
        yaxis_title=y_title,
        height=380,
    )
    return fig


# ---------------------------------------------------------------- weights as stored in the .tflite

# A stored tensor with at most this many distinct values is drawn value by value (clustering's k
# spikes, int8's grid), not binned.
DISTINCT_LIMIT = 256
FILE_COLOR = PALETTE[1]
BASELINE_COLOR = "#9E9E9E"


def _centered_edges(arrays: Sequence[np.ndarray], bins: int) -> np.ndarray:
    """Bin edges over all arrays with one bin centred on zero (pruning's zeros land in one bar)."""
    lo = min(float(a.min()) for a in arrays)
    hi = max(float(a.max()) for a in arrays)
    if lo == hi:
        lo, hi = lo - 0.5, hi + 0.5
    width = (hi - lo) / bins
    first = np.floor((lo + width / 2) / width) * width - width / 2
    return first + width * np.arange(int(np.ceil((hi - first) / width)) + 2)


def _file_trace(values: np.ndarray, edges: np.ndarray, name: str, color: str, legend: bool = True) -> go.Bar:
    """The file's values: one bar per distinct value when few (exact), else the shared bins."""
    distinct, counts = np.unique(values, return_counts=True)
    zeros = float(np.mean(values == 0))
    label = f"{name} ({zeros:.0%} zeros, {distinct.size} distinct)"
    if distinct.size <= DISTINCT_LIMIT:
        x, y = distinct, counts
        width = max((edges[-1] - edges[0]) / 300, np.finfo(float).eps)
        kind = "distinct"
    else:
        y, _ = np.histogram(values, bins=edges)
        x = (edges[:-1] + edges[1:]) / 2
        width = edges[1] - edges[0]
        kind = "binned"
    return go.Bar(
        x=x, y=y, width=width, name=label, marker_color=color, opacity=0.85, showlegend=legend,
        meta={"kind": kind, "total": int(values.size), "zeros": zeros, "distinct": int(distinct.size)},
        hovertemplate="value ≈ %{x:.5f}<br>%{y} weights<extra>" + name + "</extra>",
    )


def _baseline_trace(values: np.ndarray, edges: np.ndarray, legend: bool = True) -> go.Bar:
    counts, _ = np.histogram(values, bins=edges)
    return go.Bar(
        x=(edges[:-1] + edges[1:]) / 2, y=counts, width=edges[1] - edges[0], marker_color=BASELINE_COLOR,
        opacity=0.45, name=f"baseline float32 ({np.unique(values).size} distinct)", showlegend=legend,
        meta={"kind": "baseline", "total": int(values.size)},
        hovertemplate="value ≈ %{x:.5f}<br>%{y} weights<extra>baseline</extra>",
    )


def _flat(values) -> np.ndarray | None:
    return None if values is None or not np.size(values) else np.asarray(values, dtype=float).ravel()


def file_weight_histogram(
    file_values: np.ndarray | None,
    baseline: np.ndarray | None = None,
    layer: str = "",
    label: str = "in the .tflite",
    bins: int = 80,
) -> go.Figure:
    """The weights one layer really has in the converted file, the baseline's on the same axes.

    ``file_values`` are the real (dequantized) values read from the ``.tflite``; a file with at
    most :data:`DISTINCT_LIMIT` distinct values (clustered, int8) is drawn one bar per value, so
    k clusters show as k bars and int8 as its grid. One bin is centred on zero: pruning's zeros
    form one bar. Each trace's ``meta`` holds ``kind``, ``total``, ``zeros`` and ``distinct``.
    """
    title = f"{layer}: weights {label}".strip(": ")
    values, base = _flat(file_values), _flat(baseline)
    if values is None:
        return _empty(title, "No weights for this layer in the file.")
    edges = _centered_edges([a for a in (values, base) if a is not None], bins)
    fig = go.Figure()
    if base is not None:
        fig.add_trace(_baseline_trace(base, edges))
    fig.add_trace(_file_trace(values, edges, label, FILE_COLOR))
    fig.update_layout(
        title=title, barmode="overlay", template=TEMPLATE, xaxis_title="weight value",
        yaxis={"title": "count (log)", **LOG_AXIS}, height=400, legend={"orientation": "h", "y": -0.22},
    )
    return fig


def int8_grid(
    codes: np.ndarray | None,
    scales: np.ndarray,
    zero_points: np.ndarray,
    quantized_dimension: int = 0,
    floats: np.ndarray | None = None,
    layer: str = "",
    channel: int = 0,
) -> go.Figure:
    """An int8 tensor as stored: its integer codes on the 256-level grid, and one channel's rounding.

    Left: how many weights hold each integer code (-128…127) in the whole tensor. Right, for
    ``channel``: each weight's float value before conversion (``floats``, the same layout as
    ``codes``; the dequantized value when absent) against its dequantized value
    ``(q - zero_point) × scale`` — a staircase with steps of the file's scale. The right trace's
    ``customdata`` is ``[q, scale, zero_point]`` per weight and its ``meta`` the channel's scale.
    """
    title = f"{layer}: int8 grid in the .tflite".strip(": ")
    if codes is None or not np.size(codes) or not np.size(scales):
        return _empty(title, "This layer is not int8-quantized in the file.")
    codes = np.asarray(codes)
    scales, zero_points = np.asarray(scales, dtype=float).ravel(), np.asarray(zero_points).ravel()
    per_channel = scales.size > 1
    channel = int(np.clip(channel, 0, scales.size - 1)) if per_channel else 0
    q = np.take(codes, channel, axis=quantized_dimension).ravel() if per_channel else codes.ravel()
    scale, zp = float(scales[channel]), int(zero_points[channel] if zero_points.size > channel else 0)
    real = (q.astype(float) - zp) * scale
    before = real if floats is None else (
        np.take(np.asarray(floats, dtype=float), channel, axis=quantized_dimension).ravel()
        if per_channel else np.asarray(floats, dtype=float).ravel()
    )
    distinct, counts = np.unique(codes, return_counts=True)
    fig = make_subplots(
        rows=1, cols=2, column_widths=[0.55, 0.45], horizontal_spacing=0.12,
        subplot_titles=(
            f"integer codes ({distinct.size} of 256 levels used)",
            f"channel {channel}: scale {scale:.3g}, zero point {zp}",
        ),
    )
    fig.add_trace(
        go.Bar(
            x=distinct.astype(int), y=counts, name="weights per code", marker_color=FILE_COLOR,
            meta={"kind": "codes", "total": int(codes.size)},
            hovertemplate="q = %{x}<br>%{y} weights<extra></extra>",
        ),
        row=1, col=1,
    )
    fig.add_trace(
        go.Scatter(
            x=before, y=real, mode="markers", name=f"channel {channel}: (q − {zp}) × {scale:.3g}",
            marker={"color": PALETTE[0], "size": 7},
            customdata=np.column_stack([q.astype(int), np.full(q.size, scale), np.full(q.size, zp)]),
            meta={"kind": "dequantized", "scale": scale, "zero_point": zp, "channel": channel},
            hovertemplate="float %{x:.5f} → q = %{customdata[0]}<br>(q − zp) × scale = %{y:.5f}<extra></extra>",
        ),
        row=1, col=2,
    )
    fig.update_xaxes(title_text="integer code q", range=[-129, 128], row=1, col=1)
    fig.update_yaxes(title_text="count (log)", **LOG_AXIS, row=1, col=1)
    fig.update_xaxes(title_text="float weight before conversion" if floats is not None else "dequantized",
                     row=1, col=2)
    fig.update_yaxes(title_text="value in the file", row=1, col=2)
    fig.update_layout(title=title + (f" — {scales.size} per-channel scales" if per_channel else ""),
                      template=TEMPLATE, height=420, showlegend=False)
    return fig


def variant_comparison(
    first: np.ndarray | None,
    second: np.ndarray | None,
    names: tuple[str, str] = ("first", "second"),
    layer: str = "",
    baseline: np.ndarray | None = None,
    bins: int = 80,
) -> go.Figure:
    """Two variants' file weights for one layer side by side, on the same x axis and bins.

    Each panel is drawn as :func:`file_weight_histogram` draws one (the baseline grey behind it).
    """
    title = f"{layer}: {names[0]} vs {names[1]} (weights in the .tflite)".strip(": ")
    a, b, base = _flat(first), _flat(second), _flat(baseline)
    present = [v for v in (a, b, base) if v is not None]
    if a is None and b is None:
        return _empty(title, "Neither variant has this layer in its file.")
    edges = _centered_edges(present, bins)
    fig = make_subplots(rows=1, cols=2, shared_xaxes=True, shared_yaxes=True, horizontal_spacing=0.06,
                        subplot_titles=names)
    for col, (values, name, color) in enumerate(((a, names[0], FILE_COLOR), (b, names[1], PALETTE[0])), start=1):
        if base is not None:
            fig.add_trace(_baseline_trace(base, edges, legend=col == 1), row=1, col=col)
        if values is not None:
            fig.add_trace(_file_trace(values, edges, name, color), row=1, col=col)
    fig.update_layout(title=title, barmode="overlay", template=TEMPLATE, height=400,
                      legend={"orientation": "h", "y": -0.22})
    fig.update_yaxes(**LOG_AXIS, title_text="count (log)", col=1)
    fig.update_xaxes(title_text="weight value")
    return fig


def _landscape(kernel: np.ndarray, max_rows: int = 128, max_cols: int = 128) -> np.ndarray:
    """A kernel as a 2-D grid (inputs flattened × outputs, landscape), cropped to a drawable size."""
    k = np.asarray(kernel, dtype=float)
    grid = k.reshape(-1, k.shape[-1]) if k.ndim > 1 else k.reshape(1, -1)
    if grid.shape[0] > grid.shape[1]:
        grid = grid.T
    return grid[:max_rows, :max_cols]


def pruning_over_time(
    steps: np.ndarray,
    kernels: np.ndarray,
    curve_steps: np.ndarray | None = None,
    curve_target: np.ndarray | None = None,
    layer: str = "",
) -> go.Figure:
    """Scrub or play through a layer's kernel at each recorded mask update, the schedule beside it.

    Args:
        steps: the fine-tune step of each snapshot, shape ``(n,)``.
        kernels: the layer's kernel (weights × mask) at each snapshot, shape ``(n, *kernel shape)``.
        curve_steps, curve_target: the schedule's target sparsity per step
            (``compression.techniques.pruning.sparsity_curve``), drawn as a line on the left.
        layer: the layer's name, for the title.

    Left: the schedule line and the measured sparsity of the layer at the shown snapshot (a marker).
    Right: the kernel as a heat map, pruned weights blank. A slider (one position per snapshot) and a
    play button animate it; each frame's name is its step. Trace ``meta`` holds the measured
    ``sparsity`` per snapshot.
    """
    title = f"{layer}: pruning step by step".strip(": ")
    steps = np.asarray(steps)
    kernels = np.asarray(kernels, dtype=float)
    if steps.size < 1 or kernels.shape[0] != steps.size:
        return _empty(title, "No pruning steps were recorded for this variant.")
    sparsity = [float(np.mean(k == 0)) for k in kernels]
    grids = [np.where(g == 0, np.nan, g) for g in (_landscape(k) for k in kernels)]
    bound = float(np.nanmax(np.abs(_landscape(kernels[0])))) or 1.0
    fig = make_subplots(rows=1, cols=2, column_widths=[0.4, 0.6], horizontal_spacing=0.1,
                        subplot_titles=("sparsity over the fine-tune", "kernel (blank = pruned)"))
    if curve_steps is not None and curve_target is not None:
        fig.add_trace(go.Scatter(x=np.asarray(curve_steps), y=np.asarray(curve_target, dtype=float), mode="lines",
                                 line={"shape": "hv", "color": PALETTE[0], "width": 3}, name="target sparsity",
                                 hovertemplate="step %{x}: %{y:.1%}<extra>target</extra>"), row=1, col=1)
    fig.add_trace(go.Scatter(x=steps, y=sparsity, mode="lines+markers", line={"color": "#BBBBBB", "dash": "dot"},
                             marker={"size": 6, "color": "#BBBBBB"}, name="measured at each mask update",
                             meta={"kind": "measured", "sparsity": sparsity},
                             hovertemplate="step %{x}: %{y:.1%} zeros<extra>measured</extra>"), row=1, col=1)
    moving = len(fig.data)
    fig.add_trace(go.Scatter(x=[steps[0]], y=[sparsity[0]], mode="markers", marker={"size": 16, "color": FRONT_COLOR},
                             name="shown", meta={"kind": "current"},
                             hovertemplate="step %{x}: %{y:.1%}<extra>shown</extra>"), row=1, col=1)
    fig.add_trace(go.Heatmap(z=grids[0], colorscale="RdBu", zmid=0, zmin=-bound, zmax=bound, showscale=False,
                             meta={"kind": "kernel"}, hovertemplate="%{z:.4f}<extra></extra>"), row=1, col=2)
    fig.frames = [
        go.Frame(name=str(int(s)), traces=[moving, moving + 1],
                 data=[go.Scatter(x=[s], y=[sp]), go.Heatmap(z=g)],
                 layout={"annotations": [{"text": f"step {int(s)}: {sp:.0%} zeros", "x": 0.5, "y": 1.12,
                                          "xref": "paper", "yref": "paper", "showarrow": False}]})
        for s, sp, g in zip(steps, sparsity, grids, strict=True)
    ]
    fig.update_layout(
        title=title, template=TEMPLATE, height=460, showlegend=False,
        updatemenus=[{"type": "buttons", "direction": "left", "x": 0.0, "y": -0.12, "xanchor": "left",
                      "buttons": [
                          {"label": "▶ play", "method": "animate",
                           "args": [None, {"frame": {"duration": 600, "redraw": True}, "fromcurrent": True,
                                           "transition": {"duration": 0}}]},
                          {"label": "❚❚ pause", "method": "animate",
                           "args": [[None], {"frame": {"duration": 0, "redraw": False}, "mode": "immediate"}]},
                      ]}],
        sliders=[{"active": 0, "x": 0.15, "y": -0.05, "len": 0.85, "currentvalue": {"prefix": "step "},
                  "steps": [{"label": str(int(s)), "method": "animate",
                             "args": [[str(int(s))], {"frame": {"duration": 0, "redraw": True}, "mode": "immediate"}]}
                            for s in steps]}],
    )
    fig.update_yaxes(tickformat=".0%", range=[0, 1.02], title_text="sparsity", row=1, col=1)
    fig.update_xaxes(title_text="fine-tune step", row=1, col=1)
    fig.update_yaxes(autorange="reversed", showticklabels=False, row=1, col=2)
    return fig


def centroids_over_time(steps: np.ndarray, centroids: np.ndarray, layer: str = "") -> go.Figure:
    """Each cluster centroid of one layer across the fine-tune: k lines, one per shared weight value.

    Args:
        steps: the fine-tune step of each snapshot, shape ``(n,)`` (0 = before training).
        centroids: the layer's centroids at each snapshot, shape ``(n, k)``.
    """
    title = f"{layer}: cluster centroids during the fine-tune".strip(": ")
    steps = np.asarray(steps)
    values = np.asarray(centroids, dtype=float)
    if steps.size < 2 or values.ndim != 2 or values.shape[0] != steps.size:
        return _empty(title, "No centroids were recorded for this variant.")
    order = np.argsort(values[0])
    fig = go.Figure()
    for rank, j in enumerate(order):
        fig.add_trace(go.Scatter(
            x=steps, y=values[:, j], mode="lines", name=f"centroid {rank + 1}",
            line={"color": PALETTE[rank % len(PALETTE)], "width": 2}, meta={"kind": "centroid"},
            hovertemplate="step %{x}: %{y:.5f}<extra>centroid " + str(rank + 1) + "</extra>",
        ))
    fig.update_layout(title=title, template=TEMPLATE, height=360, xaxis_title="fine-tune step",
                      yaxis_title="centroid value (a weight shared by its cluster)", showlegend=False)
    return fig
