"""Latency in µs below a millisecond, consistently; log axes tick at powers of ten only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from compression import charts


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
    fig = charts.latency_vs_accuracy(frame([0.0007, 0.0021, 0.05]))
    assert "(µs, this CPU)" in fig.layout.xaxis.title.text
    xs = sorted(float(x) for t in fig.data if t.name != "Pareto front (size, latency, accuracy)" for x in t.x)
    assert xs[0] == pytest.approx(0.7) and xs[-1] == pytest.approx(50.0)
    hover = [row[3] for t in fig.data if t.customdata is not None for row in t.customdata]
    assert "0.7 µs" in hover and "50.0 µs" in hover
    bubble = charts.tradeoff_bubble(frame([0.0007, 0.0021, 0.05]))
    assert "(µs, this CPU)" in bubble.layout.xaxis.title.text
    assert "(ms, this CPU)" in charts.latency_vs_accuracy(frame([0.7, 2.1, 5.0])).layout.xaxis.title.text


def test_log_axes_tick_at_powers_of_ten_only():
    fig = charts.latency_vs_accuracy(frame([0.0007, 0.0021, 0.05]))  # spans > 20×: a log axis
    assert fig.layout.xaxis.type == "log" and fig.layout.xaxis.dtick == 1
    sizes = charts.size_bars(frame([1.0, 1.0, 1.0], sizes=(100, 2000, 90000)))
    assert sizes.layout.yaxis.type == "log" and sizes.layout.yaxis.dtick == 1
