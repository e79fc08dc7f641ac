"""Shared fixtures: the digits dataset and tiny tf_keras models trained on it."""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np
import pytest


@pytest.fixture(scope="session")
def digits():
    from compression.inputs.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def hostile(tmp_path_factory):
    """The hostile models and datasets of tests/hostile_files.py (the CLI's and the browser's tests feed them),
    built once per test session: the build imports TensorFlow in a subprocess (tests/session_cache.py)."""
    from tests.hostile_files import hostile_files_in, make_hostile_files
    from tests.session_cache import shared_folder

    return hostile_files_in(shared_folder(tmp_path_factory, "hostile", make_hostile_files))


@pytest.fixture(scope="session")
def seed_cnn(digits):
    """The shipped pretrained digits × seed CNN (a real trained model, loaded in a second)."""
    from compression.inputs.pretrained import load_pretrained

    return load_pretrained("digits", "seed_cnn")


@pytest.fixture(scope="session")
def small_train(digits):
    """A 400-sample slice of digits' training set for fine-tunes that must take seconds."""
    return digits.x_train[:400], digits.y_train[:400]


@pytest.fixture(scope="session")
def digits_split():
    """(x_train, y_train, x_test, y_test): 8x8x1 images in [0, 1], a fixed split independent of
    compression.inputs.data."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = (data.images / 16.0).astype(np.float32)[..., np.newaxis]
    y = data.target.astype(np.int64)
    return x[:1400], y[:1400], x[1400:], y[1400:]


@pytest.fixture(scope="session")
def cnn(digits_split):
    """A small CNN whose weights dominate the file (so size ratios show), trained 5 epochs."""
    from compression import _tf

    keras = _tf.keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential(
        [
            keras.layers.Input((8, 8, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.Flatten(),
            keras.layers.Dense(64, activation="relu"),
            keras.layers.Dense(10),
        ]
    )
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    model.fit(digits_split[0], digits_split[1], epochs=5, batch_size=32, verbose=0)
    return model
