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
    from compression.qat import apply_qat

    model = weightless_op_models[name]
    quantized, chosen, float_layers = apply_qat(model, QATConfig(), preserve)
    assert quantized.count_params() >= model.count_params()
    assert any(layer.startswith("conv2d") for layer in chosen)
    float_kinds = {type(model.get_layer(f["name"])).__name__ for f in float_layers}
    assert "TFOpLambda" in float_kinds or "Normalization" in float_kinds or "Multiply" in float_kinds
    assert all(f["reason"] for f in float_layers)
