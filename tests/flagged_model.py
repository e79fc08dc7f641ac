"""A real model whose predictions collapse to one class: what the flags are for, built in a second.

A Dense layer with zero kernel and a bias that favours one class answers that class for every input: its
baseline is at chance (flag ``baseline_at_chance``) and every variant converted from it predicts one class
(``one_class``) and agrees with the baseline perfectly for no reason (``agreement_meaningless``). The
engine computes those flags itself from the predictions; nothing here writes them.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np


def save_constant_model(path: Path, input_shape=(8, 8, 1), classes: int = 10, answer: int = 3) -> Path:
    """Save a ``.keras`` model that always predicts ``answer``; returns ``path``."""
    from compression import _tf

    keras = _tf.keras()
    inputs = keras.Input(input_shape)
    logits = keras.layers.Dense(classes, name="logits")(keras.layers.Flatten()(inputs))
    model = keras.Model(inputs, logits)
    kernel, bias = model.get_layer("logits").get_weights()
    bias = np.zeros_like(bias)
    bias[answer] = 5.0
    model.get_layer("logits").set_weights([np.zeros_like(kernel), bias])
    model.save(path)
    return path
