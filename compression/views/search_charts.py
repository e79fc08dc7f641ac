"""Charts of the sensitivity analysis and the search: pure ``DataFrame -> plotly Figure`` builders.

* :func:`sensitivity_heatmap` — layers × settings, accuracy drop in points.
* :func:`sensitivity_ranking` — layers from most to least sensitive, with their weight count.
* :func:`trials_front` — every finished trial, size × accuracy, the Pareto front and the chosen trial.
* :func:`search_history` — best size within budget so far, against time.

Usage::

    fig = sensitivity_heatmap(result.frame())
    fig = trials_front(search_result.frame(), budget_accuracy=0.97)
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from .charts import FRONT_COLOR, PALETTE, TEMPLATE, _empty, pareto_front

__all__ = ["search_history", "sensitivity_heatmap", "sensitivity_ranking", "trials_front"]


def sensitivity_heatmap(cells: pd.DataFrame, layers: pd.DataFrame | None = None) -> go.Figure:
    """Heatmap of accuracy drop (points) per layer (rows, model order) × setting (columns).

    Args:
        cells: :meth:`SensitivityResult.frame` (layer, params, label, drop_points, error).
        layers: optional (name, params) to label rows with their weight count.
    """
    title = "Accuracy drop when one layer alone is compressed (points, no fine-tune)"
    if cells is None or cells.empty:
        return _empty(title, "No sensitivity measured yet.")
    order = list(dict.fromkeys(cells["layer"]))
    labels = list(dict.fromkeys(cells["label"]))
    wide = cells.pivot_table(index="layer", columns="label", values="drop_points", aggfunc="first")
    wide = wide.reindex(index=order, columns=labels)
    params = cells.groupby("layer", sort=False)["params"].first().reindex(order)
    rows = [f"{name} ({int(p):,} w)" if pd.notna(p) else name for name, p in params.items()]
    z = wide.to_numpy(dtype=float)
    text = [["n/a" if np.isnan(v) else f"{v:.1f}" for v in row] for row in z]
    fig = go.Figure(go.Heatmap(
        z=z, x=labels, y=rows, text=text, texttemplate="%{text}", colorscale="Reds", zmin=0,
        zmax=max(1.0, float(np.nanmax(z)) if np.isfinite(z).any() else 1.0),
        colorbar={"title": "drop (points)"},
        hovertemplate="%{y}<br>%{x}: %{z:.2f} points<extra></extra>"))
    fig.update_layout(title=title, template=TEMPLATE, height=max(260, 90 + 40 * len(rows)),
                      yaxis={"autorange": "reversed"}, margin={"t": 60})
    return fig


def sensitivity_ranking(ranking: pd.DataFrame) -> go.Figure:
    """Horizontal bars of each layer's mean drop, most sensitive on top; tiny layers marked.

    Args:
        ranking: :meth:`SensitivityResult.ranking` as a frame (layer, params, tiny, mean_drop_points,
            worst_drop_points).
    """
    title = "Layers ranked by sensitivity (mean drop over the tested settings)"
    if ranking is None or ranking.empty:
        return _empty(title, "No sensitivity measured yet.")
    data = ranking.sort_values("mean_drop_points", ascending=True)
    names = [f"{r.layer} ({int(r.params):,} w{', tiny' if r.tiny else ''})" for r in data.itertuples()]
    fig = go.Figure(go.Bar(
        x=data["mean_drop_points"], y=names, orientation="h",
        marker={"color": [PALETTE[7] if t else PALETTE[3] for t in data["tiny"]]},
        text=[f"mean {m:.1f} · worst {w:.1f}" for m, w in zip(data["mean_drop_points"], data["worst_drop_points"],
                                                              strict=True)],
        textposition="auto",
        hovertemplate="%{y}<br>mean drop %{x:.2f} points<extra></extra>"))
    fig.update_layout(title=title, template=TEMPLATE, xaxis={"title": "accuracy drop (points)"},
                      height=max(240, 90 + 36 * len(names)), margin={"t": 60})
    return fig


def trials_front(trials: pd.DataFrame, size: str = "gzip_bytes", budget_accuracy: float | None = None,
                 chosen: str | None = None) -> go.Figure:
    """Every finished trial as size × accuracy; the Pareto front joined; the chosen trial starred.

    Args:
        trials: one row per trial (name, state, accuracy, ``size`` column, within_budget).
        size: "gzip_bytes" or "size_bytes".
        budget_accuracy: the lowest accepted accuracy, drawn as a line.
        chosen: the chosen trial's name.
    """
    title = f"Search trials: {'gzip' if size == 'gzip_bytes' else 'raw'} size × accuracy"
    if trials is None or trials.empty or size not in trials:
        return _empty(title, "No finished trial yet.")
    data = trials[(trials["state"] == "ok") & trials[size].notna() & trials["accuracy"].notna()]
    if data.empty:
        return _empty(title, "No finished trial yet.")
    front = pareto_front(data, minimize=[size], maximize=["accuracy"])
    inside = data.get("within_budget", pd.Series(True, index=data.index)).fillna(False).astype(bool)
    fig = go.Figure()
    for flag, name, color in ((True, "within budget", PALETTE[2]), (False, "over budget", PALETTE[7])):
        part = data[inside == flag]
        if part.empty:
            continue
        fig.add_trace(go.Scatter(
            x=part[size], y=part["accuracy"], mode="markers", name=name, text=part["name"],
            marker={"size": 11, "color": color, "line": {"width": [3 if f else 1 for f in front.loc[part.index]],
                                                         "color": [FRONT_COLOR if f else "white"
                                                                   for f in front.loc[part.index]]}},
            hovertemplate="<b>%{text}</b><br>%{x:,} B · accuracy %{y:.2%}<extra></extra>"))
    on_front = data[front].sort_values(size)
    fig.add_trace(go.Scatter(x=on_front[size], y=on_front["accuracy"], mode="lines", name="Pareto front",
                             line={"color": FRONT_COLOR, "dash": "dash", "shape": "hv"}, hoverinfo="skip"))
    if chosen is not None and chosen in set(data["name"]):
        row = data[data["name"] == chosen].iloc[0]
        fig.add_trace(go.Scatter(x=[row[size]], y=[row["accuracy"]], mode="markers+text", name="chosen",
                                 text=[chosen], textposition="top center",
                                 marker={"symbol": "star", "size": 20, "color": "gold",
                                         "line": {"width": 1, "color": "black"}}))
    if budget_accuracy is not None:
        fig.add_hline(y=budget_accuracy, line={"dash": "dot", "color": "gray"},
                      annotation_text="accuracy budget", annotation_position="bottom right")
    fig.update_layout(title=title, template=TEMPLATE, legend={"orientation": "h", "y": -0.2}, height=440,
                      xaxis={"title": f"{size} (bytes)", "type": "log"},
                      yaxis={"title": "accuracy (test set)", "tickformat": ".1%"}, margin={"t": 60})
    return fig


def search_history(history: pd.DataFrame, reference_bytes: int | None = None) -> go.Figure:
    """Best size within budget so far against elapsed time (a step line), every trial as a dot.

    Args:
        history: one row per finished trial (seconds, size, best_size, within_budget).
        reference_bytes: the float32 reference size: the right axis then reads as ratio.
    """
    title = "Search history: smallest within budget so far"
    if history is None or history.empty:
        return _empty(title, "No finished trial yet.")
    fig = go.Figure()
    fig.add_trace(go.Scatter(x=history["seconds"], y=history["size"], mode="markers", name="trial",
                             marker={"color": [PALETTE[2] if w else PALETTE[7] for w in history["within_budget"]]},
                             hovertemplate="%{x:.0f} s: %{y:,} B<extra></extra>"))
    best = history.dropna(subset=["best_size"])
    if not best.empty:
        ratio = [f"{reference_bytes / b:.1f}×" if reference_bytes else "" for b in best["best_size"]]
        fig.add_trace(go.Scatter(x=best["seconds"], y=best["best_size"], mode="lines+markers", name="best so far",
                                 line={"shape": "hv", "color": FRONT_COLOR}, text=ratio,
                                 hovertemplate="%{x:.0f} s: best %{y:,} B %{text}<extra></extra>"))
    fig.update_layout(title=title, template=TEMPLATE, height=360, legend={"orientation": "h", "y": -0.25},
                      xaxis={"title": "elapsed (s)"}, yaxis={"title": "bytes", "type": "log"}, margin={"t": 60})
    return fig
