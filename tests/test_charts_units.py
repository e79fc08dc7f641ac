"""Latency in µs below a millisecond, consistently; log axes tick at powers of ten only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compression.views import charts, results_charts, training_charts


@pytest.mark.parametrize(("ms", "text"), [(0.00068, "0.7 µs"), (0.68, "680 µs"), (0.0345, "34.5 µs"),
                                          (1.25, "1.25 ms"), (None, "—"), (float("nan"), "—")])
def test_format_latency(ms, text):
    assert charts.format_latency(ms) == text


def frame(latencies, sizes=(1000, 2000, 90000)):
    n = len(latencies)
    return pd.DataFrame({
        "name": [f"v{i}" for i in range(n)], "label": [f"v{i}" for i in range(n)], "status": ["ok"] * n,
        "accuracy": np.linspace(0.9, 0.95, n), "latency_ms": latencies, "size_bytes": sizes[:n],
        "gzip_bytes": sizes[:n], "quantization": ["int8"] * n, "settings": [""] * n,
    })


def test_sub_millisecond_latencies_are_drawn_in_microseconds():
    fig = results_charts.latency_vs_accuracy(frame([0.0007, 0.0021, 0.05]))
    assert "(µs, this CPU)" in fig.layout.xaxis.title.text
    xs = sorted(float(x) for t in fig.data if t.name != "Pareto front (size, latency, accuracy)" for x in t.x)
    assert xs[0] == pytest.approx(0.7) and xs[-1] == pytest.approx(50.0)
    hover = [row[3] for t in fig.data if t.customdata is not None for row in t.customdata]
    assert "0.7 µs" in hover and "50.0 µs" in hover
    bubble = results_charts.tradeoff_bubble(frame([0.0007, 0.0021, 0.05]))
    assert "(µs, this CPU)" in bubble.layout.xaxis.title.text
    assert "(ms, this CPU)" in results_charts.latency_vs_accuracy(frame([0.7, 2.1, 5.0])).layout.xaxis.title.text


def test_log_axes_tick_at_powers_of_ten_only():
    fig = results_charts.latency_vs_accuracy(frame([0.0007, 0.0021, 0.05]))  # spans > 20×: a log axis
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.dtick == 1
    sizes = results_charts.size_bars(frame([1.0, 1.0, 1.0], sizes=(100, 2000, 90000)))
    assert sizes.layout.yaxis.type == "log" and sizes.layout.yaxis.dtick == 1


def test_training_curves_are_drawn_against_epochs_even_when_batch_events_are_thinned():
    kept = [(e, 23) for e in (1, 3, 5, 8, 10, 12, 15, 17, 20)]  # what thinning left of 20 epochs × 23 batches
    rows = [{"phase": "baseline", "variant": "", "epoch": e, "batch": b, "loss": 1 / e, "accuracy": 0.5}
            for e, b in kept]
    rows += [{"phase": "baseline", "variant": "", "epoch": e, "batch": None, "loss": 1 / e, "accuracy": 0.5}
             for e in range(1, 21)]  # the epoch-end events
    fig = training_charts.training_curves(pd.DataFrame(rows))
    assert fig.layout.xaxis.title.text == "epoch"
    x = np.asarray(fig.data[0].x, dtype=float)
    assert x.max() == 20 and len(x) == 29 and set(range(1, 21)) <= set(x)
    one_per_epoch = pd.DataFrame({"phase": "prune", "variant": "v", "epoch": [1, 2, 3], "batch": [1, 2, 3],
                                  "loss": [0.3, 0.2, 0.1], "accuracy": [0.9, 0.95, 0.97]})
    assert list(training_charts.training_curves(one_per_epoch).data[0].x) == [1, 2, 3]


def test_the_settings_line_shows_the_pruning_frequency_that_ran():
    settings = {"pruning": {"schedule": "polynomial", "initial_sparsity": 0.5, "final_sparsity": 0.8,
                            "begin_step": 0, "end_step": None, "frequency": 100}, "quantization": "float32",
                "fine_tune_epochs": 10, "learning_rate": 0.001, "batch_size": 64}
    applied = {"begin_step": 0, "end_step": 224, "frequency": 28, "total_steps": 230}
    assert "steps 0→224, every 28 (asked 100)" in results_charts.describe_settings(settings, applied)
    assert "every 100" in results_charts.describe_settings(settings)  # without a result: the settings as asked


def test_scatter_labels_are_not_clipped_at_the_plot_edge():
    fig = results_charts.size_vs_accuracy(frame([0.0007, 0.0021, 0.05]))
    assert all(t.cliponaxis is False for t in fig.data if t.mode == "markers+text")
