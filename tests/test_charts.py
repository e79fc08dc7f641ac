"""Chart builders on small hand-made frames: no browser, no TensorFlow."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest

from compression.views import charts, data_preview, results_charts, training_charts, weights_charts


def _frame() -> pd.DataFrame:
    rows = [
        # name, gzip, raw, accuracy, latency ms
        ("a", 1000, 4000, 0.90, 0.010),
        ("b", 2000, 8000, 0.95, 0.020),
        ("c", 3000, 9000, 0.93, 0.030),  # dominated by b (bigger, slower, less accurate)
        ("d", 500, 3000, 0.80, 0.005),
        ("e", 1000, 4000, 0.90, 0.040),  # ties a on size/accuracy: neither dominates the other
        ("f", None, None, None, None),  # failed: never on the front
    ]
    df = pd.DataFrame(rows, columns=["name", "gzip_bytes", "size_bytes", "accuracy", "latency_ms"])
    df["status"] = ["ok"] * 5 + ["failed"]
    df["quantization"] = ["int8", "float32", "float32", "int8", "dynamic", "int8"]
    df["label"] = df["name"]
    df["settings"] = [f"settings of {n}" for n in df["name"]]
    df["ratio"] = 8000 / df["size_bytes"]
    df["gzip_ratio"] = 2000 / df["gzip_bytes"]
    df["run"] = ""
    return df


def test_pareto_front_size_accuracy_by_hand():
    df = _frame()
    front = charts.pareto_front(df, minimize=["gzip_bytes"], maximize=["accuracy"])
    assert front.dtype == bool
    assert list(front.index) == list(df.index)
    assert front.tolist() == [True, True, False, True, True, False]


def test_pareto_front_three_objectives_by_hand():
    df = _frame()
    front = charts.pareto_front(df, minimize=["gzip_bytes", "latency_ms"], maximize=["accuracy"])
    # e now loses to a (same size and accuracy, slower); c still loses to b.
    assert front.tolist() == [True, True, False, True, False, False]


def test_pareto_front_edge_cases():
    assert charts.pareto_front(_frame().iloc[:0], minimize=["gzip_bytes"]).tolist() == []
    one = _frame().iloc[[2]]
    assert charts.pareto_front(one, minimize=["gzip_bytes"], maximize=["accuracy"]).tolist() == [True]
    with pytest.raises(ValueError):
        charts.pareto_front(_frame())


def _trace_names(fig: go.Figure) -> list[str]:
    return [t.name for t in fig.data]


def test_size_vs_accuracy_marks_front_and_hover_settings():
    fig = results_charts.size_vs_accuracy(_frame())
    assert "Pareto front" in _trace_names(fig)
    front = next(t for t in fig.data if t.name == "Pareto front")
    assert sorted(front.x) == [500, 1000, 1000, 2000]
    points = [t for t in fig.data if t.name != "Pareto front"]
    assert {t.name for t in points} == {"int8", "float32", "dynamic"}
    assert sum(len(t.x) for t in points) == 5  # the failed row is not drawn
    hover = [row[1] for t in points for row in t.customdata]
    assert "settings of b" in hover
    assert fig.layout.yaxis.tickformat == ".1%"
    assert fig.layout.xaxis.type == "linear"  # 500..3000 is not wide


def test_log_axis_when_range_is_wide():
    df = _frame()
    df.loc[1, "gzip_bytes"] = 2_000_000
    assert results_charts.size_vs_accuracy(df).layout.xaxis.type == "log"
    assert results_charts.size_bars(df).layout.yaxis.type == "log"


def test_latency_and_bubble_charts():
    fig = results_charts.latency_vs_accuracy(_frame())
    assert "Pareto front" in _trace_names(fig)
    bubble = results_charts.tradeoff_bubble(_frame())
    sizes = [s for t in bubble.data if t.marker is not None and isinstance(t.marker.size, tuple) for s in t.marker.size]
    assert len(sizes) == 5 and max(sizes) > min(sizes)
    assert any("Pareto" in (t.name or "") for t in bubble.data)


def test_color_by_run_for_cross_run_comparisons():
    df = _frame()
    df["run"] = ["r1", "r1", "r2", "r2", "r2", "r2"]
    fig = results_charts.size_vs_accuracy(df, color="run")
    assert {"r1", "r2"} <= set(_trace_names(fig))


def test_bars():
    raw_gzip = results_charts.size_bars(_frame())
    assert _trace_names(raw_gzip) == ["raw", "gzip"]
    assert list(raw_gzip.data[1].y) == [1000, 2000, 3000, 500, 1000]
    ratio = results_charts.ratio_bars(_frame())
    assert ratio.data[1].y[0] == pytest.approx(2.0)


def test_empty_frames_give_a_message_not_an_error():
    empty = _frame().iloc[:0]
    for fn in (
        results_charts.size_vs_accuracy,
        results_charts.latency_vs_accuracy,
        results_charts.tradeoff_bubble,
        results_charts.size_bars,
        results_charts.ratio_bars,
    ):
        fig = fn(empty)
        assert fig.layout.annotations and "No finished" in fig.layout.annotations[0].text


def test_describe_settings():
    text = results_charts.describe_settings(
        {
            "name": "x",
            "pruning": {
                "schedule": "polynomial",
                "initial_sparsity": 0.5,
                "final_sparsity": 0.8,
                "begin_step": 0,
                "end_step": None,
                "frequency": 100,
                "layers": None,
                "structured": None,
            },
            "clustering": {"clusters": 8, "init": "kmeans++", "layers": ["logits"]},
            "qat": {"preserve": None, "layers": None},
            "distillation": None,
            "fine_tune_epochs": 2,
            "quantization": "int8",
            "sparse_encoding": True,
            "learning_rate": 0.001,
            "batch_size": 64,
        }
    )
    assert "prune polynomial 50%→80%" in text
    assert "cluster 8 centroids (kmeans++), layers logits" in text
    assert "PCQAT" in text
    assert "convert int8 + sparse encoding" in text
    assert results_charts.describe_settings({"quantization": "float16"}) == "convert float16"


def test_results_frame_from_results_dict():
    results = {
        "reference": {"size_bytes": 8000, "gzip_bytes": 4000, "accuracy": 0.9},
        "variants": [
            {
                "name": "int8",
                "status": "ok",
                "settings": {"quantization": "int8"},
                "techniques": ["int8"],
                "quantization": "int8",
                "size_bytes": 2000,
                "gzip_bytes": 1000,
                "accuracy": 0.89,
                "latency_ms": {"median": 0.01},
            },
            {"name": "bad", "status": "failed", "error": "boom", "settings": {"quantization": "int8"}},
        ],
    }
    df = results_charts.results_frame(results, run="run-1")
    assert list(df["label"]) == ["run-1 · int8", "run-1 · bad"]
    assert df.loc[0, "ratio"] == 4 and df.loc[0, "gzip_ratio"] == 4
    assert df.loc[0, "delta_accuracy"] == pytest.approx(-1.0)
    assert df.loc[0, "latency_ms"] == 0.01
    assert df.loc[0, "settings"] == "convert int8"
    assert results_charts.results_frame(None).empty


def test_layer_bars():
    lf = weights_charts.layer_frame(
        [{"name": "conv", "sparsity": 0.8, "unique_values": 20, "params": 108}],
        [{"name": "conv", "sparsity": 0.0, "unique_values": 108, "params": 108}],
    )
    assert list(lf["which"]) == ["baseline", "variant"]
    fig = weights_charts.layer_bars(lf)
    assert len(fig.data) == 4
    assert weights_charts.layer_bars(weights_charts.layer_frame(None)).layout.annotations


def test_weight_histograms_show_the_spike_at_zero():
    rng = np.random.default_rng(0)
    before = rng.normal(size=1000)
    after = before.copy()
    after[np.abs(after) < 1.0] = 0.0
    fig = weights_charts.weight_histograms(before, after, "conv")
    assert fig.layout.yaxis.type == "log"
    variant = fig.data[1]
    assert "zeros" in variant.name
    zero_bin = int(np.argmin(np.abs(np.asarray(variant.x))))
    assert variant.y[zero_bin] == int(np.sum(after == 0))  # every zero lands in one tall bin


def test_kernel_heatmap_and_confusion_matrix():
    kernel = np.arange(3 * 3 * 1 * 12, dtype=float).reshape(3, 3, 1, 12) - 50
    heat = weights_charts.kernel_heatmap(kernel, "conv")
    assert np.asarray(heat.data[0].z).shape == (9, 12)
    assert heat.data[0].zmid == 0
    cm = results_charts.confusion_matrix(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), ["a", "b", "c"])
    z = np.asarray(cm.data[0].z)
    assert z.sum() == 4 and z[1, 2] == 1 and np.trace(z) == 3
    assert "75.00%" in cm.layout.title.text


def test_schedule_and_training_curves():
    from compression.config import PruningConfig
    from compression.techniques.pruning import applied_schedule, sparsity_curve

    config = PruningConfig(initial_sparsity=0.5, final_sparsity=0.8, frequency=100)
    steps, target = sparsity_curve(config, 46)
    fig = training_charts.schedule_curve(steps, target, applied_schedule(config, 46))
    assert fig.data[0].y[-1] == pytest.approx(0.8)
    assert len(fig.data) == 2  # the curve and the mask-update markers
    events = pd.DataFrame(
        [
            {"phase": "baseline", "variant": "", "epoch": 1, "batch": b, "loss": 2.0 - b / 10, "accuracy": b / 10}
            for b in range(1, 6)
        ]
        + [{"phase": "convert", "variant": "int8", "epoch": None, "batch": None, "loss": None, "accuracy": None}]
    )
    curves = training_charts.training_curves(events)
    assert len(curves.data) == 2 and list(curves.data[0].y) == [1.9, 1.8, 1.7, 1.6, 1.5]
    assert training_charts.training_curves(pd.DataFrame()).layout.annotations


def test_dataset_previews():
    x = np.random.default_rng(0).random((20, 8, 8, 1)).astype(np.float32)
    y = np.arange(20) % 10
    grid = data_preview.sample_grid(x, y, [str(i) for i in range(10)])
    assert len(grid.data) == 10
    counts = data_preview.class_counts(y, y[:10], [str(i) for i in range(10)])
    assert list(counts.data[0].y) == [2] * 10


def test_charts_import_neither_streamlit_nor_tensorflow():
    import subprocess

    code = (
        "import sys, compression.views.charts, compression.views.board_charts, compression.views.data_preview, "
        "compression.views.results_charts, compression.views.weights_charts, compression.views.training_charts, "
        "compression.tflite.export; "
        "bad = [m for m in ('streamlit', 'tensorflow') if m in sys.modules]; print(bad); sys.exit(bool(bad))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stdout + out.stderr
