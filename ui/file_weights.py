"""Inspect's view of the weights the converted .tflite really holds, and a two-variant comparison.

The Keras kernels saved with a run are the weights before conversion (still float for int8 and QAT
variants); this section reads the file itself (``compression.tflite.weights``).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from compression.config import PruningConfig
from compression.errors import CompressionError
from compression.results import RunResults, VariantResult
from compression.run_folder import RunFolder
from compression.techniques.clustering import load_centroids
from compression.techniques.pruning import load_snapshots, sparsity_curve
from compression.tflite.weights import TfliteWeights, tflite_weights_by_layer
from compression.views import weights_charts

from . import state


@st.cache_data(show_spinner=False, max_entries=64)
def _read(path: str, mtime: float, layer_names: tuple[str, ...]) -> dict[str, TfliteWeights]:
    return tflite_weights_by_layer(Path(path).read_bytes(), list(layer_names))


def file_weights(folder: RunFolder, row: VariantResult) -> dict[str, TfliteWeights]:
    """The variant's weight tensors as its ``.tflite`` stores them, by layer ({} without a file)."""
    try:
        path = folder.tflite(row)
    except CompressionError:
        return {}
    if not path.is_file():
        return {}
    return _read(str(path), path.stat().st_mtime, tuple(layer.name for layer in row.layers))


@st.cache_data(show_spinner=False, max_entries=64)
def _kernels(path: str, mtime: float) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def baseline_kernels(folder: RunFolder) -> dict[str, np.ndarray]:
    path = folder.weights("baseline")
    return _kernels(str(path), path.stat().st_mtime) if path.is_file() else {}


def section(folder: RunFolder | str | Path, results: RunResults | dict, chosen: str, key: str = "inspect") -> None:
    """Draw the file's weights of variant ``chosen`` (baseline on the same axes), its pruning step by step
    when recorded, and a two-variant comparison."""
    folder = folder if isinstance(folder, RunFolder) else RunFolder(folder)
    results = results if isinstance(results, RunResults) else RunResults.from_dict(results)
    row = results.variant(chosen)
    st.subheader("Weights in the .tflite")
    if row is None or not row.ok:
        st.info("This variant has no converted file.")
        return
    weights = file_weights(folder, row)
    if not weights:
        st.info("No weight tensor could be read from this variant's .tflite.")
        return
    baseline = baseline_kernels(folder)
    st.caption(
        "Read out of the converted file itself: int8 files hold integer codes with per-channel scales, "
        "float16 files half-precision values, clustered layers k distinct values, pruned layers exact zeros. "
        "Grey: the baseline's float weights on the same axes."
    )
    layers = list(weights)
    default = max(layers, key=lambda name: weights[name].params)
    state.ensure_option(f"{key}_file_layer", layers, default)
    layer = st.selectbox("Layer in the file", layers, key=f"{key}_file_layer",
                         help="A weight tensor of the .tflite (biases excluded), named after its Keras layer.")
    w = weights[layer]
    real = w.dequantized()
    label = f"{chosen} in the .tflite ({w.dtype}{', dequantized' if w.quantized else ''})"
    if w.quantized:
        left, right = st.columns(2)
        left.plotly_chart(weights_charts.file_weight_histogram(real, baseline.get(layer), layer, label=label),
                          width="stretch", key=f"{key}_file_hist")
        with right:
            channel = 0
            if w.scales.size > 1:
                channel = int(st.number_input("Channel", 0, w.scales.size - 1, 0, key=f"{key}_file_channel",
                                              help="The output channel whose scale and rounding are drawn."))
            st.plotly_chart(weights_charts.int8_grid(w.values, w.scales, w.zero_points, w.quantized_dimension,
                                                     layer=layer, channel=channel),
                            width="stretch", key=f"{key}_file_grid")
    else:
        st.plotly_chart(weights_charts.file_weight_histogram(real, baseline.get(layer), layer, label=label),
                        width="stretch", key=f"{key}_file_hist")
    st.dataframe(
        pd.DataFrame([weights[name].summary() for name in layers]),
        hide_index=True, width="stretch", key=f"{key}_file_table",
        column_config={"zeros": st.column_config.NumberColumn("zeros", format="percent"),
                       "unique_values": st.column_config.NumberColumn("distinct values"),
                       "scales": st.column_config.NumberColumn("scales", help="Per-channel scales in the file.")},
    )

    pruning_steps(folder, row, layer, key)
    centroid_steps(folder, row, layer, key)

    names = [v.name for v in results.ok_variants]
    if len(names) < 2:
        return
    st.subheader("Compare two variants")
    other = next((n for n in names if n != chosen), names[0])
    state.ensure_option(f"{key}_cmp_a", names, chosen)
    state.ensure_option(f"{key}_cmp_b", names, other)
    a, b = st.columns(2)
    first = a.selectbox("First variant", names, key=f"{key}_cmp_a")
    second = b.selectbox("Second variant", names, key=f"{key}_cmp_b")
    wa, wb = file_weights(folder, results.variant(first)), file_weights(folder, results.variant(second))
    shared = [name for name in wa if name in wb] or list(wa) or list(wb)
    if not shared:
        st.info("Neither file has a readable weight tensor.")
        return
    state.ensure_option(f"{key}_cmp_layer", shared, layer if layer in shared else shared[0])
    cmp_layer = st.selectbox("Layer", shared, key=f"{key}_cmp_layer")
    fa, fb = wa.get(cmp_layer), wb.get(cmp_layer)
    st.plotly_chart(
        weights_charts.variant_comparison(fa.dequantized() if fa else None, fb.dequantized() if fb else None,
                                          (first, second), cmp_layer, baseline=baseline.get(cmp_layer)),
        width="stretch", key=f"{key}_compare",
    )


def centroid_steps(folder: RunFolder, row: VariantResult, layer: str, key: str = "inspect") -> None:
    """The clustered layer's centroids across the fine-tune, when the run recorded them."""
    moves = load_centroids(folder.cluster_steps(row.stem))
    if not moves or not moves["centroids"]:
        return
    shown = layer if layer in moves["centroids"] else next(iter(moves["centroids"]))
    st.subheader("Cluster centroids over the fine-tune")
    st.plotly_chart(weights_charts.centroids_over_time(moves["step"], moves["centroids"][shown], shown),
                    width="stretch", key=f"{key}_centroids")


def pruning_steps(folder: RunFolder, row: VariantResult, layer: str, key: str = "inspect") -> None:
    """The recorded kernels at each mask update of the variant's fine-tune, with the schedule beside them."""
    snaps = load_snapshots(folder.pruning_steps(row.stem))
    if not snaps or not snaps["kernels"] or not row.schedule or not (row.settings or {}).get("pruning"):
        return
    st.subheader("Pruning step by step")
    layers = list(snaps["kernels"])
    shown = layer if layer in layers else max(layers, key=lambda n: snaps["kernels"][n][0].size)
    if len(layers) > 1:
        state.ensure_option(f"{key}_steps_layer", layers, shown)
        shown = st.selectbox("Layer", layers, key=f"{key}_steps_layer", help="A pruned layer's kernel over time.")
    try:
        curve_steps, target = sparsity_curve(PruningConfig(**row.settings["pruning"]), int(row.schedule["total_steps"]))
    except (CompressionError, TypeError, KeyError, ValueError):
        curve_steps = target = None
    st.plotly_chart(
        weights_charts.pruning_over_time(snaps["step"], snaps["kernels"][shown], curve_steps, target, shown),
        width="stretch", key=f"{key}_steps",
    )
    st.caption(f"{len(snaps['step'])} snapshots: the kernel before pruning, after each mask update that changed it "
               "and at the end. Drag the slider or press play; blank cells are pruned weights.")
