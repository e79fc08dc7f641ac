"""The built-in datasets' cards say what loading them gives (the Compress page draws from the card)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from compression.inputs.data import load_dataset
from compression.inputs.dataset_cards import dataset_card, describe_dataset


@pytest.mark.parametrize("max_train, max_test", [(None, None), (500, 100), (100_000, None)])
def test_the_digits_card_matches_the_loaded_dataset(max_train, max_test):
    loaded = describe_dataset(load_dataset("digits", max_train=max_train, max_test=max_test))
    assert dataset_card("digits", max_train=max_train, max_test=max_test) == loaded


def test_datasets_without_a_card_or_with_a_file_are_loaded():
    assert dataset_card("fashion_mnist") is None
    assert dataset_card("npz", path="x.npz") is None
    assert dataset_card("digits", layout="sequence") is None


def test_a_card_needs_no_scikit_learn():
    code = ("import sys; from compression.inputs.dataset_cards import dataset_card; "
            "dataset_card('digits', max_train=10); "
            "print('sklearn' in sys.modules, 'tensorflow' in sys.modules)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split() == ["False", "False"]
