"""validation: the shared number checks name the setting, the range and the bad value."""

from __future__ import annotations

import numpy as np
import pytest

from compression import CompressionError
from compression.config import Limits
from compression.validation import Bounds, number, whole_number


@pytest.mark.parametrize(
    ("value", "message"),
    [
        (1.2, "final_sparsity must be in [0, 1). Received: 1.2"),
        (1.0, "final_sparsity must be in [0, 1). Received: 1.0"),
        (-0.1, "final_sparsity must be in [0, 1). Received: -0.1"),
        ("lots", "final_sparsity must be a number. Received: 'lots'"),
        (True, "final_sparsity must be a number. Received: True"),
        (float("inf"), "final_sparsity must be finite. Received: inf"),
    ],
)
def test_out_of_range_values_are_named(value, message):
    with pytest.raises(CompressionError) as err:
        Limits.sparsity.check(value, "final_sparsity")
    assert str(err.value) == message


def test_in_range_values_come_back_typed():
    assert Limits.sparsity.check(0, "s") == 0.0 and isinstance(Limits.sparsity.check(0, "s"), float)
    assert Limits.clusters.check(16.0, "c") == 16 and isinstance(Limits.clusters.check(16.0, "c"), int)
    assert Limits.seed.check(np.int64(7), "seed") == 7
    with pytest.raises(CompressionError, match=r"^c must be a whole number\. Received: 2\.5$"):
        Limits.clusters.check(2.5, "c")
    with pytest.raises(CompressionError, match=r"^seed must be in \[0, 2147483647\]\. Received: -1$"):
        Limits.seed.check(-1, "seed")


def test_open_ends_are_printed_and_enforced():
    assert str(Bounds(0, 100, low_open=True)) == "(0, 100]"
    assert str(Bounds(0, 0.5)) == "[0, 0.5]"
    with pytest.raises(CompressionError, match=r"must be in \(0, 1\]"):
        number(0, "learning_rate", 0, 1, low_open=True)
    assert number(1, "learning_rate", 0, 1, low_open=True) == 1.0


def test_whole_number():
    assert whole_number(np.int32(3), "max_train") == 3
    for bad in (0, 2.5, "3", False):
        with pytest.raises(CompressionError, match=rf"^max_train must be a positive whole number\. Received: {bad!r}$"):
            whole_number(bad, "max_train")
    with pytest.raises(CompressionError, match=r"^runs must be a whole number >= 2\. Received: 1$"):
        whole_number(1, "runs", minimum=2)
