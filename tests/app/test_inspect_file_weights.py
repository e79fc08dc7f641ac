"""Inspect draws the weights the .tflite holds: int8 codes with the file's scales, pruning's zeros, two variants."""

from __future__ import annotations

import numpy as np
from apptest_support import app_test, assert_clean, figure, plotly_charts

from compression.run_folder import RunFolder
from compression.store import Store
from compression.tflite.weights import tflite_weights_by_layer


def charts_by_title(at) -> dict[str, dict]:
    out = {}
    for c in plotly_charts(at):
        f = figure(c)
        out[f["layout"]["title"]["text"]] = f
    return out


def file_of(run_id: str, variant: str):
    store = Store()
    folder = RunFolder(store.get_run(run_id)["dir"])
    row = folder.read_results().variant(variant)
    return tflite_weights_by_layer(folder.tflite(row).read_bytes(), [layer.name for layer in row.layers])


def test_int8_variant_shows_integer_codes_on_the_files_grid(with_run):
    run_id, session = with_run
    at = app_test("pages/4_inspect.py", sid=session, run_id=run_id, inspect_variant="int8")
    at.run()
    assert_clean(at)
    assert at.selectbox(key="inspect_file_layer").value == "logits"  # the largest layer first
    figs = charts_by_title(at)
    grid = figs["logits: int8 grid in the .tflite — 10 per-channel scales"]
    codes = next(t for t in grid["data"] if t["meta"]["kind"] == "codes")
    x = np.asarray(codes["x"], dtype=float)
    assert np.array_equal(x, np.round(x)) and x.min() >= -128 and x.max() <= 127
    deq = next(t for t in grid["data"] if t["meta"]["kind"] == "dequantized")
    assert deq["meta"]["scale"] == float(file_of(run_id, "int8")["logits"].scales[0])
    assert not at.dataframe[-1].value.empty  # the per-layer table of the file


def test_pruned_variant_shows_its_zeros_step_by_step_and_against_another_variant(with_run):
    run_id, session = with_run
    at = app_test("pages/4_inspect.py", sid=session, run_id=run_id, inspect_variant="pruned-int8")
    at.run()
    assert_clean(at)
    figs = charts_by_title(at)
    hist = next(f for t, f in figs.items() if t.startswith("logits: weights pruned-int8 in the .tflite"))
    bars = next(t for t in hist["data"] if t["meta"]["kind"] in ("distinct", "binned"))
    x, y = np.asarray(bars["x"], dtype=float), np.asarray(bars["y"], dtype=float)
    assert y[np.argmin(np.abs(x))] / bars["meta"]["total"] >= 0.8 - 0.01
    steps = figs["logits: pruning step by step"]
    assert len(steps["frames"]) >= 2
    at.selectbox(key="inspect_cmp_a").set_value("float32").run()
    at.selectbox(key="inspect_cmp_b").set_value("pruned-int8").run()
    assert_clean(at)
    cmp = charts_by_title(at)["logits: float32 vs pruned-int8 (weights in the .tflite)"]
    files = [t for t in cmp["data"] if t["meta"]["kind"] != "baseline"]
    assert files[0]["meta"]["zeros"] == 0.0 and files[1]["meta"]["zeros"] >= 0.79
