"""Weights read out of real converted .tflite files of the pretrained digits seed CNN."""

from __future__ import annotations

import numpy as np
import pytest

from compression.config import ClusteringConfig, PruningConfig
from compression.errors import CompressionError
from compression.measure.weight_stats import layer_kernels
from compression.techniques.clustering import cluster
from compression.techniques.pruning import prune
from compression.tflite.convert import convert_to_tflite
from compression.tflite.weights import tflite_weights, tflite_weights_by_layer
from compression.views import weights_charts

LAYERS = ["conv", "logits"]


def zero_bar_fraction(fig, kind=("distinct", "binned")) -> float:
    """The fraction of the file's weights in the figure's bar at zero (read from the figure data)."""
    trace = next(t for t in fig.data if (t.meta or {}).get("kind") in kind)
    x, y = np.asarray(trace.x, dtype=float), np.asarray(trace.y, dtype=float)
    at = int(np.argmin(np.abs(x)))
    assert abs(x[at]) <= float(np.max(trace.width)) / 2 + 1e-12
    return float(y[at] / trace.meta["total"])


@pytest.fixture(scope="module")
def pruned(seed_cnn, small_train):
    model, _ = prune(seed_cnn, PruningConfig(schedule="constant", final_sparsity=0.8), *small_train, epochs=1)
    return model


def test_float32_file_holds_the_keras_kernels_named_after_their_layers(seed_cnn):
    weights = tflite_weights(convert_to_tflite(seed_cnn, "float32"), LAYERS)
    kernels = layer_kernels(seed_cnn)
    assert [w.layer for w in weights] == LAYERS
    for w in weights:
        assert w.dtype == "float32" and not w.quantized
        np.testing.assert_array_equal(w.keras_layout(), kernels[w.layer])
    # Without layer names the model/<layer>/... part of the tensor names is used.
    assert [w.layer for w in tflite_weights(convert_to_tflite(seed_cnn, "float32"))] == LAYERS


def test_pruned_file_has_its_zero_bin_at_least_the_pruned_fraction(pruned):
    weights = tflite_weights_by_layer(convert_to_tflite(pruned, "float32"), LAYERS)
    for layer in LAYERS:
        values = weights[layer].dequantized()
        assert np.mean(values == 0) == pytest.approx(0.8, abs=0.01)
        fig = weights_charts.file_weight_histogram(values, layer_kernels(pruned)[layer], layer)
        assert zero_bar_fraction(fig) >= 0.8 - 0.01


def test_sparse_encoded_file_is_read_after_densify(pruned):
    data = convert_to_tflite(pruned, "float32", sparse=True)
    weights = tflite_weights_by_layer(data, LAYERS)
    assert any(w.sparse for w in weights.values())
    dense = tflite_weights_by_layer(convert_to_tflite(pruned, "float32"), LAYERS)
    for layer in LAYERS:
        np.testing.assert_array_equal(weights[layer].dequantized(), dense[layer].dequantized())


def test_clustered_file_has_at_most_k_distinct_values_per_kernel(seed_cnn, small_train):
    clustered, _ = cluster(seed_cnn, ClusteringConfig(clusters=8), *small_train, epochs=1)
    weights = tflite_weights_by_layer(convert_to_tflite(clustered, "float32"), LAYERS)
    for layer in LAYERS:
        assert np.unique(weights[layer].values).size <= 8
        fig = weights_charts.file_weight_histogram(weights[layer].dequantized(), layer_kernels(seed_cnn)[layer], layer)
        spikes = next(t for t in fig.data if t.meta["kind"] == "distinct")
        assert len(spikes.x) <= 8
    baseline = tflite_weights_by_layer(convert_to_tflite(seed_cnn, "float32"), LAYERS)
    assert np.unique(baseline["logits"].values).size > 8  # the baseline file is not clustered


def test_int8_file_holds_integers_on_the_grid_of_its_per_channel_scales(seed_cnn, digits):
    weights = tflite_weights_by_layer(convert_to_tflite(seed_cnn, "int8", representative=digits.x_train), LAYERS)
    kernels = layer_kernels(seed_cnn)
    for layer in LAYERS:
        w = weights[layer]
        assert w.dtype == "int8" and w.quantized
        assert w.scales.size == w.channels > 1  # per-channel
        assert w.values.min() >= -128 and w.values.max() <= 127
        scale = w.scales.reshape([-1] + [1] * (w.values.ndim - 1))
        np.testing.assert_allclose(w.dequantized(), (w.values - w.zero_points.reshape(scale.shape)) * scale, rtol=1e-6)
        # The file's grid is the float kernel rounded to steps of the scale (layout mapped back to Keras').
        error = np.abs(w.keras_layout() - kernels[layer])
        step = w.keras_layout(np.broadcast_to(scale, w.values.shape))
        assert np.all(error <= step / 2 + 1e-7)

        fig = weights_charts.int8_grid(w.values, w.scales, w.zero_points, w.quantized_dimension,
                                       layer=layer, channel=1)
        codes = next(t for t in fig.data if t.meta["kind"] == "codes")
        assert np.array_equal(np.asarray(codes.x), np.round(codes.x)) and min(codes.x) >= -128
        deq = next(t for t in fig.data if t.meta["kind"] == "dequantized")
        q, s, zp = np.asarray(deq.customdata).T
        assert deq.meta["scale"] == pytest.approx(w.scales[1])
        np.testing.assert_allclose(deq.y, (q - zp) * s, rtol=1e-9)


def test_float16_file_stores_half_precision(seed_cnn):
    weights = tflite_weights_by_layer(convert_to_tflite(seed_cnn, "float16"), LAYERS)
    kernels = layer_kernels(seed_cnn)
    for layer in LAYERS:
        assert weights[layer].values.dtype == np.float16
        half = kernels[layer].astype(np.float16).astype(np.float32)
        np.testing.assert_array_equal(weights[layer].keras_layout(), half)


def test_two_variants_side_by_side_share_the_bins(seed_cnn, pruned):
    a = tflite_weights_by_layer(convert_to_tflite(seed_cnn, "float32"), LAYERS)["logits"].dequantized()
    b = tflite_weights_by_layer(convert_to_tflite(pruned, "float32"), LAYERS)["logits"].dequantized()
    fig = weights_charts.variant_comparison(a, b, ("float32", "pruned"), "logits", baseline=a)
    files = [t for t in fig.data if t.meta["kind"] != "baseline"]
    assert [t.xaxis for t in files] == ["x", "x2"]
    assert files[0].meta["zeros"] == 0.0 and files[1].meta["zeros"] == pytest.approx(0.8, abs=0.01)


def test_garbage_is_refused_in_one_sentence():
    with pytest.raises(CompressionError, match="not a loadable TFLite model"):
        tflite_weights(b"not a flatbuffer at all")
