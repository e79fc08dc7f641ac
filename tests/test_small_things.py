"""Small things: the pruning note names unprunable layers, Bidirectional stats cover both directions,
the softmax check looks through tfmot wrappers."""

from __future__ import annotations

import numpy as np


def _bilstm(keras):
    inputs = keras.Input((10, 3))
    x = keras.layers.Bidirectional(keras.layers.LSTM(16), name="bi")(inputs)
    x = keras.layers.Dense(8, activation="relu", name="hidden")(x)
    return keras.Model(inputs, keras.layers.Dense(3, name="logits")(x))


def test_layer_stats_cover_both_directions_of_a_bidirectional_layer():
    from compression import _tf
    from compression.measure.weight_stats import layer_weight_stats

    names = [s["name"] for s in layer_weight_stats(_bilstm(_tf.keras()))]
    for direction in ("forward", "backward"):  # e.g. bi/forward_lstm and bi/forward_lstm/recurrent_kernel
        mine = [n for n in names if n.startswith(f"bi/{direction}_lstm")]
        assert len(mine) == 2 and any(n.endswith("/recurrent_kernel") for n in mine), names


def test_the_pruning_note_names_the_bidirectional_layer_and_the_achieved_sparsity():
    from compression import _tf
    from compression.config import PruningConfig
    from compression.techniques.pruning import prune

    rng = np.random.default_rng(0)
    x, y = rng.normal(size=(64, 10, 3)).astype(np.float32), rng.integers(0, 3, 64)
    _, info = prune(_bilstm(_tf.keras()), PruningConfig(final_sparsity=0.8), x, y, epochs=1, batch_size=16)
    note = next(n for n in info["notes"] if n.startswith("could not prune"))
    assert "'bi' (Bidirectional" in note and "tfmot's prune registry does not support it" in note
    assert "the pruned layers reached 80% sparsity" in note
    assert "hidden" in info["layers"] and "bi" not in info["layers"]


def test_the_softmax_check_looks_through_tfmot_wrappers():
    from compression import _tf
    from compression.inputs.models import outputs_logits

    keras = _tf.keras()
    tfmot = _tf.tfmot()
    inputs = keras.Input((6,))
    softmax = keras.Model(inputs, keras.layers.Dense(3, activation="softmax")(keras.layers.Dense(4)(inputs)))
    logits = keras.Model(inputs, keras.layers.Dense(3)(keras.layers.Dense(4)(inputs)))
    assert not outputs_logits(softmax) and outputs_logits(logits)
    assert not outputs_logits(tfmot.quantization.keras.quantize_model(softmax))
    assert not outputs_logits(tfmot.sparsity.keras.prune_low_magnitude(softmax))
    assert outputs_logits(tfmot.quantization.keras.quantize_model(logits))
