"""Real architectures: the collaborative QAT schemes annotate what they support, never a tfmot traceback.

The full architecture × mode table is ``python -m benchmarks.architectures`` (minutes); here the
pieces that used to crash, in seconds.
"""

from __future__ import annotations

import pytest

from compression.config import Preserve, QATConfig


@pytest.fixture(scope="module")
def weightless_op_models():
    from benchmarks.architectures import _builders

    builders = _builders()
    return {name: builders[name]() for name in ("hard_swish", "squeeze_excite")}


@pytest.mark.parametrize("preserve", [Preserve.SPARSITY, Preserve.CLUSTERS, Preserve.BOTH])
@pytest.mark.parametrize("name", ["hard_swish", "squeeze_excite"])
def test_collaborative_schemes_leave_weightless_tf_op_layers_float(weightless_op_models, name, preserve):
    from compression.techniques.qat import apply_qat

    model = weightless_op_models[name]
    quantized, chosen, float_layers = apply_qat(model, QATConfig(), preserve)
    assert quantized.count_params() >= model.count_params()
    assert any(layer.startswith("conv2d") for layer in chosen)
    float_kinds = {type(model.get_layer(f["name"])).__name__ for f in float_layers}
    assert "TFOpLambda" in float_kinds or "Normalization" in float_kinds or "Multiply" in float_kinds
    assert all(f["reason"] for f in float_layers)


def test_the_architecture_report_names_each_failed_cell_and_its_reason_once():
    from benchmarks.architectures import MODES, SCHEMES, TECHNIQUES, report

    crash = "TFLite's int8 calibration crashed (SIGSEGV) on the GRU layer."
    table = {"gru": {**{c: "ok" for c in (*MODES, *SCHEMES, *TECHNIQUES)}, "int8": crash, "qat": crash},
             "lstm": {c: "ok" for c in (*MODES, *SCHEMES, *TECHNIQUES)}}
    tflm = {"gru": {"float32": "runs", "dynamic": "TFLite Micro has no hybrid kernels."}, "lstm": {}}
    text = report(table, tflm, {"gru": ["pruned: could not prune gru"], "lstm": []}, "python -m x", 90.0)
    gru = next(line for line in text.splitlines() if line.startswith("| gru | ok |"))
    cells = [c.strip() for c in gru.strip("|").split("|")][1:]
    assert cells[MODES.index("int8")] == "failed [1]" and cells[len(MODES)] == "failed [1]"  # qat: same reason
    assert cells.count("ok") == len(cells) - 2
    assert f"[1] {crash}" in text and "[2]" not in text.split("## Runs under")[0]
    assert "| gru | runs | no [1] |" in text and "[1] TFLite Micro has no hybrid kernels." in text
    assert "by `python -m x` in 1.5 min" in text and "- **gru**: pruned: could not prune gru" in text
