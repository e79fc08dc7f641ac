"""Previews of a dataset's samples, by what the samples are: pure ``arrays -> plotly Figure`` builders.

* :func:`dataset_preview` — picks the preview for a dataset's kind (``image`` / ``sequence`` / ``tokens``).
* :func:`sample_grid` — images ``(N, H, W[, C])``: a grid with one column per class.
* :func:`sequence_preview` — float sequences ``(N, T)`` / ``(N, T, C)``: a few samples per class as lines,
  one panel per channel, one colour per class.
* :func:`token_preview` — integer token ids ``(N, L)``: a table of id rows (class, length, the first ids).
* :func:`class_counts` — samples per class in the train and test splits, whatever the kind.

A sequence drawn as an image is a 1-pixel-wide strip that shows nothing, and token ids drawn as a line plot
suggest an order of magnitude that ids do not have: each kind gets its own preview.

Usage::

    fig = dataset_preview(ds.kind, ds.x_train, ds.y_train, ds.class_names)
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.colors import qualitative
from plotly.subplots import make_subplots

from .charts import PALETTE, TEMPLATE, _empty

__all__ = [
    "CLASS_COLORS",
    "MAX_CHANNELS",
    "class_counts",
    "dataset_preview",
    "sample_grid",
    "sequence_preview",
    "token_preview",
]

CLASS_COLORS = qualitative.T10  # ten distinct colours: one per class of a 10-class set
MAX_CHANNELS = 4  # panels drawn; more channels are named in the title, not drawn


def _classes(y: np.ndarray, n_classes: int, max_classes: int) -> list[int]:
    return [c for c in range(n_classes) if np.any(y == c)][:max_classes]


def sample_grid(
    x: np.ndarray, y: np.ndarray, class_names: Sequence[str], per_class: int = 1, max_classes: int = 10
) -> go.Figure:
    """A grid of sample images: ``per_class`` rows, one column per class (first ``max_classes``)."""
    x = np.asarray(x)
    y = np.asarray(y)
    classes = [c for c in range(len(class_names)) if np.any(y == c)][:max_classes]
    if not classes or x.ndim < 3:
        return _empty("Samples", "No images to show.")
    fig = make_subplots(
        rows=per_class,
        cols=len(classes),
        subplot_titles=[str(class_names[c]) for c in classes] + [""] * (per_class - 1) * len(classes),
        horizontal_spacing=0.01,
        vertical_spacing=0.02,
    )
    for col, c in enumerate(classes, start=1):
        idx = np.flatnonzero(y == c)[:per_class]
        for row, i in enumerate(idx, start=1):
            img = x[i]
            if img.ndim == 3 and img.shape[-1] == 1:
                img = img[..., 0]
            if img.ndim == 3:
                rgb = np.clip(img * 255 if img.max() <= 1.5 else img, 0, 255).astype(np.uint8)
                fig.add_trace(go.Image(z=rgb, hoverinfo="skip"), row=row, col=col)
            else:
                fig.add_trace(
                    go.Heatmap(z=img, colorscale="gray_r", showscale=False, hoverinfo="skip"), row=row, col=col
                )
    fig.update_xaxes(visible=False, constrain="domain")
    fig.update_yaxes(visible=False, autorange="reversed")
    for i in range(1, per_class * len(classes) + 1):  # square pixels: each y axis follows its x axis
        suffix = "" if i == 1 else str(i)
        fig.layout[f"yaxis{suffix}"].scaleanchor = f"x{suffix}"
    fig.update_layout(
        template=TEMPLATE,
        height=110 * per_class + 60,
        margin={"t": 40, "b": 10, "l": 10, "r": 10},
        title="Samples (one column per class)",
    )
    return fig


def sequence_preview(
    x: np.ndarray, y: np.ndarray, class_names: Sequence[str], per_class: int = 2, max_classes: int = 10
) -> go.Figure:
    """The first ``per_class`` samples of each class as lines, one panel per channel (first :data:`MAX_CHANNELS`).

    Args:
        x: ``(N, T)`` or ``(N, T, C)`` float sequences.
        y: integer labels ``(N,)``.
        class_names: a name per class index.
        per_class: samples drawn per class.
        max_classes: classes drawn (the first ones present).

    Returns:
        A figure with one trace per (class, sample, channel): x is the step, y the sample's values; the
        traces of a class share its colour and one legend entry.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim == 2:
        x = x[..., None]
    if x.ndim != 3 or not len(x):
        return _empty("Samples", "No sequences to show.")
    channels = min(x.shape[2], MAX_CHANNELS)
    more = x.shape[2] - channels
    fig = make_subplots(
        rows=channels, cols=1, shared_xaxes=True, vertical_spacing=0.06,
        subplot_titles=[f"channel {c}" for c in range(channels)] if x.shape[2] > 1 else None,
    )
    steps = np.arange(x.shape[1])
    for c in _classes(y, len(class_names), max_classes):
        color = CLASS_COLORS[c % len(CLASS_COLORS)]
        for k, i in enumerate(np.flatnonzero(y == c)[:per_class]):
            for ch in range(channels):
                fig.add_trace(
                    go.Scatter(
                        x=steps, y=x[i, :, ch], mode="lines", name=str(class_names[c]), legendgroup=str(c),
                        showlegend=k == 0 and ch == 0, line={"color": color, "width": 1.5},
                        opacity=1.0 if k == 0 else 0.6,
                        hovertemplate=f"class {class_names[c]} · sample {i}<br>step %{{x}}: %{{y:.3g}}<extra></extra>",
                    ),
                    row=ch + 1, col=1,
                )
    fig.update_xaxes(title_text="step", row=channels, col=1)
    title = f"{per_class} sample{'s' if per_class != 1 else ''} per class"
    if more:
        title += f" (first {channels} of {x.shape[2]} channels)"
    # A legend below the plot, in rows: every class shows (a side legend cuts off classes 7-9).
    fig.update_layout(
        title=title, template=TEMPLATE, height=max(320, 170 * channels + 150),
        legend={"orientation": "h", "y": -0.18, "x": 0, "title": {"text": "class "}},
    )
    return fig


def token_preview(
    x: np.ndarray, y: np.ndarray, class_names: Sequence[str], per_class: int = 1, max_classes: int = 10,
    max_ids: int = 32,
) -> go.Figure:
    """A table of token-id rows: the first ``per_class`` samples of each class, their first ``max_ids`` ids.

    Args:
        x: ``(N, L)`` integer token ids.
        y: integer labels ``(N,)``.
        class_names: a name per class index.
        per_class: samples listed per class.
        max_classes: classes listed.
        max_ids: ids shown per row ("…" marks the rest).

    Returns:
        A figure with one ``go.Table``: columns sample, class, non-zero ids (0 is usually padding), ids.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or not len(x):
        return _empty("Samples", "No token ids to show.")
    rows = [i for c in _classes(y, len(class_names), max_classes) for i in np.flatnonzero(y == c)[:per_class]]
    ids = [" ".join(str(int(t)) for t in x[i, :max_ids]) + (" …" if x.shape[1] > max_ids else "") for i in rows]
    fig = go.Figure(
        go.Table(
            columnwidth=[12, 14, 16, 120],
            header={"values": ["sample", "class", "non-zero ids", f"ids (first {min(max_ids, x.shape[1])} of "
                               f"{x.shape[1]})"], "align": "left"},
            cells={"values": [[int(i) for i in rows], [str(class_names[int(y[i])]) for i in rows],
                              [int(np.count_nonzero(x[i])) for i in rows], ids], "align": "left",
                   "font": {"family": "monospace"}},
        )
    )
    fig.update_layout(
        title=f"Token ids: {per_class} sample{'s' if per_class != 1 else ''} per class "
        f"(ids {int(x.min())}–{int(x.max())})", template=TEMPLATE, height=min(90 + 28 * len(rows), 520),
        margin={"t": 50, "b": 10, "l": 10, "r": 10},
    )
    return fig


def dataset_preview(kind: str, x: np.ndarray, y: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """The preview for a dataset's ``kind``: image grid, sequence lines or token-id table.

    Usage::

        dataset_preview("sequence", x_train, y_train, ["0", "1"])
    """
    if kind == "tokens":
        return token_preview(x, y, class_names)
    if kind == "sequence":
        return sequence_preview(x, y, class_names)
    return sample_grid(x, y, class_names, per_class=2)


def class_counts(y_train: np.ndarray, y_test: np.ndarray, class_names: Sequence[str]) -> go.Figure:
    """Samples per class in the train and test splits."""
    names = [str(c) for c in class_names]
    fig = go.Figure()
    for split, y, color in (("train", y_train, PALETTE[0]), ("test", y_test, PALETTE[1])):
        counts = np.bincount(np.asarray(y).astype(int), minlength=len(names))[: len(names)]
        fig.add_trace(go.Bar(x=names, y=counts, name=split, marker_color=color))
    fig.update_layout(
        title="Samples per class",
        barmode="group",
        template=TEMPLATE,
        xaxis={"type": "category"},
        yaxis_title="samples",
        height=300,
        legend={"orientation": "h", "y": 1.1},
    )
    return fig
