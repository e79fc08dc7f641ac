"""Charts that compare a run's variants on their numbers, for the Compare and History pages: accuracy against
gzip or raw size, host latency or both at once (:func:`size_vs_accuracy`, :func:`latency_vs_accuracy`,
:func:`tradeoff_bubble`, the Pareto front outlined), raw and gzip sizes and compression ratios as bars, and one
variant's confusion matrix (Inspect's predictions). They draw the frame of :func:`results_frame`: the results
table plus each variant's settings in words (:func:`describe_settings`) and a run label, so the variants of
several runs can share one chart.

Usage::

    df = results_frame(store.results(run_id))
    fig = size_vs_accuracy(df)
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go

from ..config import Preserve
from ..results import TABLE_COLUMNS, RunResults, results_table
from .charts import FRONT_COLOR, LOG_AXIS, PALETTE, TEMPLATE, _empty, _wide, format_latency, latency_unit, pareto_front

__all__ = [
    "confusion_matrix",
    "describe_settings",
    "latency_vs_accuracy",
    "ratio_bars",
    "results_frame",
    "size_bars",
    "size_vs_accuracy",
    "tradeoff_bubble",
]


# ---------------------------------------------------------------- frames


def _layers_suffix(config: dict) -> str:
    """", layers a, b" for a technique config (a recipe dict) restricted to some layers, else ""."""
    names = (config["layers"] if "layers" in config else None) or ()
    return f", layers {', '.join(names)}" if names else ""


def describe_settings(settings: dict[str, Any] | None, schedule: dict | None = None) -> str:
    """A variant's settings (a ``VariantSpec`` dict) as short hover lines joined by ``<br>``.

    With the applied pruning ``schedule`` (a result row's ``schedule``), the steps and frequency are
    the ones that ran, and a frequency the engine changed says so ("every 28 (asked 100)").

    Usage::

        describe_settings(row["settings"], row["schedule"])   # "prune polynomial 50%→80%, steps 0→224, every 28 ..."
    """
    if not settings:
        return ""
    lines = []
    d = settings.get("distillation")
    if d:
        lines.append(f"distill → {d['student']} (T={d['temperature']:g}, α={d['alpha']:g}, {d['epochs']} epochs)")
    p = settings.get("pruning")
    if p:
        if p.get("structured"):
            what = f"prune {p['structured']} structured"
        elif p.get("schedule") == "constant":
            what = f"prune constant {p['final_sparsity']:.0%}"
        else:
            what = f"prune polynomial {p['initial_sparsity']:.0%}→{p['final_sparsity']:.0%}"
        if schedule:
            asked = p.get("frequency")
            every = schedule.get("frequency")
            what += f", steps {schedule.get('begin_step', 0)}→{schedule.get('end_step')}, every {every}"
            if asked is not None and every is not None and asked != every:
                what += f" (asked {asked})"
        else:
            end = "end of fine-tune" if p.get("end_step") is None else p["end_step"]
            what += f", steps {p.get('begin_step', 0)}→{end}, every {p.get('frequency')}"
        what += _layers_suffix(p)
        lines.append(what)
    c = settings.get("clustering")
    if c:
        what = f"cluster {c['clusters']} centroids ({c['init']})"
        what += _layers_suffix(c)
        lines.append(what)
    q = settings.get("qat")
    if q is not None:
        scheme = Preserve.for_techniques(bool(p), bool(c)).scheme_name
        lines.append(scheme + _layers_suffix(q))
    if p or c or q is not None:
        lines.append(
            f"fine-tune {settings.get('fine_tune_epochs')} epochs, lr {settings.get('learning_rate', 0):g}, "
            f"batch {settings.get('batch_size')}"
        )
    mode = settings.get("quantization", "float32")
    lines.append(f"convert {mode}" + (" + sparse encoding" if settings.get("sparse_encoding") else ""))
    return "<br>".join(lines)


def results_frame(results: RunResults | dict | None, run: str | None = None) -> pd.DataFrame:
    """The results table of a run's :class:`RunResults` (or results.json dict), plus columns the charts use.

    Adds ``settings`` (hover text), ``run`` (``run`` or ""), ``label`` (the
    variant name, prefixed by the run when given) and ``latency_ms`` (median).

    Usage::

        df = results_frame(store.results(run_id))
    """
    if results is not None and not isinstance(results, RunResults):
        results = RunResults.from_dict(results)
    if results is None or not results.variants:
        return pd.DataFrame(columns=[*TABLE_COLUMNS, "settings", "run", "label", "latency_ms"])
    df = results_table(results)
    rows = {v.name: v for v in results.variants}
    df["settings"] = [describe_settings(rows[n].settings, rows[n].schedule) if n in rows else "" for n in df["name"]]
    df["run"] = run or ""
    df["label"] = [f"{run} · {n}" if run else n for n in df["name"]]
    df["latency_ms"] = df["latency_median_ms"]
    return df


# ---------------------------------------------------------------- helpers


def _ok(df: pd.DataFrame, columns: Iterable[str]) -> pd.DataFrame:
    """Finished variants with numbers in every column a chart needs."""
    cols = list(columns)
    if df is None or df.empty:
        return pd.DataFrame(columns=df.columns if df is not None else cols)
    mask = pd.Series(True, index=df.index)
    if "status" in df:
        mask &= df["status"] == "ok"
    for c in cols:
        mask &= pd.to_numeric(df[c], errors="coerce").notna()
    return df[mask]


def _axis(title: str, log: bool) -> dict:
    """An axis dict: log with ticks at powers of ten only (no '2 5' minor labels), or linear."""
    return {"title": title, **(LOG_AXIS if log else {"type": "linear"})}


def _color_of(values: Sequence) -> dict:
    keys = list(dict.fromkeys(values))
    return {k: PALETTE[i % len(PALETTE)] for i, k in enumerate(keys)}


def _hover(df: pd.DataFrame) -> list:
    cols = ["label", "settings", "accuracy", "latency_ms", "size_bytes", "gzip_bytes"]
    data = df.reindex(columns=cols).copy()
    data["latency_ms"] = [format_latency(v if v is None else float(v)) for v in data["latency_ms"]]
    return data.to_numpy().tolist()


_HOVER = (
    "<b>%{customdata[0]}</b><br>%{customdata[1]}<br>"
    "accuracy %{customdata[2]:.2%} · host latency %{customdata[3]}<br>"
    "size %{customdata[4]:,} B raw · %{customdata[5]:,} B gzip<extra></extra>"
)


def _scatter(
    df: pd.DataFrame,
    x: str,
    title: str,
    x_title: str,
    minimize: Sequence[str],
    color: str,
    size: str | None = None,
) -> go.Figure:
    data = _ok(df, [x, "accuracy", *minimize, *([size] if size else [])])
    if data.empty:
        return _empty(title)
    front = pareto_front(data, minimize=minimize, maximize=["accuracy"])
    colors = _color_of(data[color].fillna(""))
    fig = go.Figure()
    sizes = None
    if size:
        s = data[size].astype(float)
        sizes = 14 + 36 * np.sqrt(s / s.max())
    for key, part in data.groupby(data[color].fillna(""), sort=False):
        fig.add_trace(
            go.Scatter(
                x=part[x],
                y=part["accuracy"],
                mode="markers+text",
                name=str(key) or "variant",
                text=part["label"],
                textposition="top center",
                cliponaxis=False,  # a label near the plot's edge is drawn whole, not cut ("runed-dynamic")
                textfont={"size": 10},
                marker={
                    "size": sizes.loc[part.index].tolist() if sizes is not None else 12,
                    "color": colors[key],
                    "opacity": 0.85,
                    "line": {
                        "width": [3 if f else 1 for f in front.loc[part.index]],
                        "color": [FRONT_COLOR if f else "white" for f in front.loc[part.index]],
                    },
                },
                customdata=_hover(part),
                hovertemplate=_HOVER,
            )
        )
    on_front = data[front].sort_values(x)
    if len(on_front):  # one size axis: a staircase; size and latency: the front's points (no line joins them)
        style = (
            {"mode": "lines", "name": "Pareto front",
             "line": {"color": FRONT_COLOR, "dash": "dash", "width": 2, "shape": "hv"}}
            if len(minimize) == 1 else
            {"mode": "markers", "name": "Pareto front (size, latency, accuracy)",
             "marker": {"symbol": "circle-open", "size": 8, "color": FRONT_COLOR, "line": {"width": 2}}}
        )
        fig.add_trace(go.Scatter(x=on_front[x], y=on_front["accuracy"], hoverinfo="skip", **style))
    fig.update_layout(
        title=title,
        template=TEMPLATE,
        legend={"orientation": "h", "y": -0.2},
        xaxis=_axis(x_title, _wide(data[x])),
        yaxis={"title": "accuracy (test set)", "tickformat": ".1%"},
        height=460,
        margin={"t": 60, "b": 40},
    )
    return fig


# ---------------------------------------------------------------- comparison charts


def size_vs_accuracy(df: pd.DataFrame, size: str = "gzip_bytes", color: str = "quantization") -> go.Figure:
    """Accuracy against file size; the size/accuracy Pareto front is outlined and joined.

    Args:
        df: a :func:`results_frame`.
        size: "gzip_bytes" (what pruning shrinks) or "size_bytes" (raw flatbuffer).
        color: column that colours the points ("quantization", or "run" across runs).
    """
    kind = "gzip" if size == "gzip_bytes" else "raw"
    return _scatter(df, size, f"Size ({kind}) vs accuracy", f"{kind} .tflite size (bytes)", [size], color)


def latency_vs_accuracy(df: pd.DataFrame, color: str = "quantization") -> go.Figure:
    """Accuracy against median batch-1 host latency (this machine's CPU, not a device's); front outlined.

    The axis is in µs when every latency is below a millisecond (never "680μ" ticks of milliseconds).
    """
    factor, unit = latency_unit(df["latency_ms"] if "latency_ms" in df else [])
    data = df.assign(latency_shown=pd.to_numeric(df["latency_ms"], errors="coerce") * factor) if len(df) else df
    return _scatter(data, "latency_shown", "Host latency vs accuracy",
                    f"median host latency, batch 1 ({unit}, this CPU)", ["latency_shown"], color)


def tradeoff_bubble(df: pd.DataFrame, color: str = "quantization") -> go.Figure:
    """All three at once: latency (x), accuracy (y), gzip size (bubble area); 3-way Pareto front ringed."""
    factor, unit = latency_unit(df["latency_ms"] if "latency_ms" in df else [])
    data = df.assign(latency_shown=pd.to_numeric(df["latency_ms"], errors="coerce") * factor) if len(df) else df
    fig = _scatter(
        data,
        "latency_shown",
        "Host latency, accuracy and size (bubble area = gzip size)",
        f"median host latency, batch 1 ({unit}, this CPU)",
        ["latency_shown", "gzip_bytes"],
        color,
        size="gzip_bytes",
    )
    return fig


def _raw_and_gzip_bars(data: pd.DataFrame, columns: tuple[str, str], text, hover: str, title: str,
                       yaxis: dict) -> go.Figure:
    """Two bars per variant (raw, gzip) with the variant's settings on hover."""
    fig = go.Figure(
        [
            go.Bar(
                x=data["label"],
                y=data[col],
                name=name,
                marker_color=c,
                text=[text(v) for v in data[col]],
                textposition="outside",
                customdata=data[["settings"]].to_numpy(),
                hovertemplate="<b>%{x}</b><br>" + hover + " " + name + "<br>%{customdata[0]}<extra></extra>",
            )
            for col, name, c in ((columns[0], "raw", PALETTE[0]), (columns[1], "gzip", PALETTE[1]))
        ]
    )
    fig.update_layout(title=title, barmode="group", template=TEMPLATE, yaxis=yaxis, height=420,
                      legend={"orientation": "h", "y": 1.08})
    return fig


def size_bars(df: pd.DataFrame) -> go.Figure:
    """Raw and gzip size of every variant side by side (gzip is where pruning's zeros pay off)."""
    data = _ok(df, ["size_bytes", "gzip_bytes"])
    if data.empty:
        return _empty("File size: raw vs gzip")
    wide = _wide(pd.concat([data["size_bytes"], data["gzip_bytes"]]))
    return _raw_and_gzip_bars(data, ("size_bytes", "gzip_bytes"), lambda v: f"{v / 1024:.1f} KiB", "%{y:,} bytes",
                              "File size: raw vs gzip", _axis("bytes", wide))


def ratio_bars(df: pd.DataFrame) -> go.Figure:
    """Compression ratio against the float32 `.tflite` of the baseline (raw and gzip), 1× line marked."""
    data = _ok(df, ["ratio", "gzip_ratio"])
    if data.empty:
        return _empty("Compression ratio vs float32")
    fig = _raw_and_gzip_bars(data, ("ratio", "gzip_ratio"), lambda v: f"{v:.2f}×", "%{y:.2f}×",
                             "Compression ratio vs float32 (higher is smaller)",
                             _axis("× smaller than float32", _wide(data["gzip_ratio"])))
    fig.add_hline(y=1.0, line_dash="dot", line_color="grey", annotation_text="float32", annotation_position="left")
    return fig


# ---------------------------------------------------------------- one variant's predictions


def confusion_matrix(
    labels: np.ndarray, predictions: np.ndarray, class_names: Sequence[str] | None = None
) -> go.Figure:
    """Counts of true class (rows) against predicted class (columns)."""
    labels = np.asarray(labels).astype(int).ravel()
    predictions = np.asarray(predictions).astype(int).ravel()
    if labels.size == 0 or labels.shape != predictions.shape:
        return _empty("Confusion matrix", "No predictions for this variant.")
    n = int(max(labels.max(), predictions.max()) + 1)
    if class_names is not None and len(class_names) >= n:
        n = len(class_names)
        names = [str(c) for c in class_names]
    else:
        names = [str(i) for i in range(n)]
    matrix = np.zeros((n, n), dtype=int)
    np.add.at(matrix, (labels, predictions), 1)
    accuracy = float(np.trace(matrix) / matrix.sum())
    fig = go.Figure(
        go.Heatmap(
            z=matrix,
            x=names,
            y=names,
            colorscale="Blues",
            text=matrix,
            texttemplate="%{text}",
            hovertemplate="true %{y}, predicted %{x}: %{z}<extra></extra>",
        )
    )
    fig.update_layout(
        title=f"Confusion matrix (accuracy {accuracy:.2%})",
        template=TEMPLATE,
        xaxis={"title": "predicted", "type": "category"},
        yaxis={"title": "true", "type": "category", "autorange": "reversed"},
        height=440,
    )
    return fig
