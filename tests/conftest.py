"""Shared fixtures: tiny tf_keras models and the digits dataset."""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"

import pytest


@pytest.fixture(scope="session")
def digits():
    from compression.data import load_dataset

    return load_dataset("digits")
