"""Shared fixtures: the digits dataset and tiny tf_keras models trained on it."""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import pytest


@pytest.fixture(scope="session")
def digits():
    from compression.data import load_dataset

    return load_dataset("digits")


@pytest.fixture(scope="session")
def seed_cnn(digits):
    """The shipped pretrained digits × seed CNN (a real trained model, loaded in a second)."""
    from compression.pretrained import load_pretrained

    return load_pretrained("digits", "seed_cnn")


@pytest.fixture(scope="session")
def small_train(digits):
    """A 400-sample slice of digits' training set for fine-tunes that must take seconds."""
    return digits.x_train[:400], digits.y_train[:400]
