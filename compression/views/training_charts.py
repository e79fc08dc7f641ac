"""Charts of the fine-tune: the sparsity schedule pruning follows (the Compress page's live preview, the
schedule a variant applied on Inspect) and loss/accuracy curves, drawn from a running job's progress events
(the live monitor) or from a finished variant's per-epoch history turned into rows by :func:`history_frame`
(Inspect). Inputs are NumPy arrays from ``compression.techniques.pruning.sparsity_curve`` and plain frames.

Usage::

    fig = schedule_curve(*sparsity_curve(config, total_steps), schedule)
    fig = training_curves(history_frame(row.history, row.name))
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from .charts import PALETTE, TEMPLATE, _empty

__all__ = ["HISTORY_COLUMNS", "history_frame", "schedule_curve", "training_curves"]


HISTORY_COLUMNS = ["phase", "variant", "epoch", "batch", "loss", "accuracy"]


def history_frame(history: dict[str, dict] | None, variant: str = "") -> pd.DataFrame:
    """A variant's fine-tuning history (``VariantResult.history``: stage → {loss, accuracy}) as epoch rows.

    The frame :func:`training_curves` draws: one row per epoch of each stage that has losses;
    a missing or short accuracy list is padded with None.

    Usage::

        training_curves(history_frame(row.history, row.name))
    """
    frames = []
    for stage, h in (history or {}).items():
        h = h if isinstance(h, dict) else {}
        loss, accuracy = (list(h[key] or ()) if key in h else [] for key in ("loss", "accuracy"))
        if not loss:
            continue
        accuracy = (accuracy + [None] * len(loss))[: len(loss)]
        epochs = range(1, len(loss) + 1)
        frames.append(pd.DataFrame({"phase": stage, "variant": variant, "epoch": epochs, "batch": epochs,
                                    "loss": loss, "accuracy": accuracy}))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(columns=HISTORY_COLUMNS)


def schedule_curve(steps: np.ndarray, sparsity: np.ndarray, schedule: dict | None = None, title: str = "") -> go.Figure:
    """Target sparsity over fine-tune steps; pruning events and the begin/end steps marked.

    Args:
        steps, sparsity: from ``compression.techniques.pruning.sparsity_curve``.
        schedule: the applied schedule dict (``begin_step``, ``end_step``, ``frequency``) for markers.
    """
    steps = np.asarray(steps)
    sparsity = np.asarray(sparsity, dtype=float)
    if steps.size == 0:
        return _empty(title or "Sparsity schedule", "No pruning schedule.")
    fig = go.Figure(
        go.Scatter(
            x=steps,
            y=sparsity,
            mode="lines",
            line={"shape": "hv", "color": PALETTE[0], "width": 3},
            name="target sparsity",
            hovertemplate="step %{x}: %{y:.1%}<extra></extra>",
        )
    )
    if schedule:
        events = np.flatnonzero(np.diff(np.concatenate([[0.0], sparsity])) != 0)
        fig.add_trace(
            go.Scatter(
                x=steps[events],
                y=sparsity[events],
                mode="markers",
                marker={"color": PALETTE[1], "size": 7},
                name=f"mask update (every {schedule.get('frequency')} steps)",
                hovertemplate="step %{x}: %{y:.1%}<extra></extra>",
            )
        )
        for key, label in (("begin_step", "begin"), ("end_step", "end")):
            if schedule.get(key) is not None:
                fig.add_vline(x=schedule[key], line_dash="dot", line_color="grey", annotation_text=label)
    fig.update_layout(
        title=title or "Sparsity schedule",
        template=TEMPLATE,
        xaxis_title="fine-tune step (optimizer step)",
        yaxis={"title": "sparsity", "tickformat": ".0%", "range": [0, 1.02]},
        height=320,
        margin={"t": 50, "b": 40},
        legend={"orientation": "h", "y": -0.3},
    )
    return fig


def training_curves(events: pd.DataFrame, title: str = "Training") -> go.Figure:
    """Loss and accuracy over training batches, from a run's progress events.

    Args:
        events: rows with ``phase, variant, epoch, batch, loss, accuracy`` (the store's events);
            rows without a loss are ignored. Each (phase, variant) is its own line.
    """
    if events is None or events.empty or "loss" not in events:
        return _empty(title, "No training progress yet.")
    data = events[pd.to_numeric(events["loss"], errors="coerce").notna()].copy()
    by_epoch = "epoch" in data and data["epoch"].notna().all()
    if "batch" in data and not by_epoch:
        data = data[data["batch"].notna()]
    if data.empty:
        return _empty(title, "No training progress yet.")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", "accuracy (training batches)"))
    variant = data["variant"].fillna("") if "variant" in data else pd.Series("", index=data.index)
    keys = (data["phase"].astype(str) + " " + variant).str.strip()
    for i, (key, part) in enumerate(data.groupby(keys, sort=False)):
        # x in epochs (the store thins batch events, so their count is not a step count): batch b of epoch e
        # sits at e - 1 + b / (batches per epoch, the largest batch number seen).
        # An epoch-end row (no batch) sits at its epoch; so does a series of one row per epoch.
        if by_epoch:
            epoch = pd.to_numeric(part["epoch"]).to_numpy(dtype=float)
            batch = (pd.to_numeric(part["batch"], errors="coerce").to_numpy(dtype=float) if "batch" in part
                     else np.full(len(part), np.nan))
            if np.isnan(batch).all() or np.unique(epoch).size == len(part):
                x = epoch
            else:
                per_epoch = max(float(np.nanmax(batch)), 1.0)
                x = np.where(np.isnan(batch), epoch, epoch - 1 + batch / per_epoch)
        else:
            x = np.arange(1, len(part) + 1)
        color = PALETTE[i % len(PALETTE)]
        custom = part.reindex(columns=["epoch", "batch"]).to_numpy()
        hover = "%{y:.4f}<br>epoch %{customdata[0]}, batch %{customdata[1]}<extra>" + str(key) + "</extra>"
        has_accuracy = "accuracy" in part and part["accuracy"].notna().any()
        for col, metric in ((1, "loss"), (2, "accuracy")) if has_accuracy else ((1, "loss"),):
            fig.add_trace(
                go.Scatter(
                    x=x,
                    y=part[metric],
                    name=str(key),
                    line={"color": color},
                    customdata=custom,
                    hovertemplate=hover,
                    legendgroup=str(key),
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
    fig.update_xaxes(title_text="epoch" if by_epoch else "logged batch")
    fig.update_yaxes(tickformat=".0%", row=1, col=2)
    fig.update_layout(title=title, template=TEMPLATE, height=340, legend={"orientation": "h", "y": -0.3})
    return fig
