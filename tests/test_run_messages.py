"""What a cancelled or crashed run says about where it stopped: words a user knows, never internal phase names."""

from __future__ import annotations

import pytest

from compression.store import describe_position


@pytest.mark.parametrize(
    ("event", "expected"),
    [
        ({"phase": "variant_done", "variant": "int8"}, "after variant 'int8' finished"),
        ({"phase": "convert", "variant": "int8"}, "while converting variant 'int8'"),
        ({"phase": "fine_tune", "variant": "pqat"}, "while fine-tuning variant 'pqat'"),
        ({"phase": "baseline"}, "while preparing the baseline"),
        ({"phase": "baseline_done"}, "after the baseline was ready"),
        (None, "before it reported any progress"),
    ],
)
def test_position_in_words(event, expected):
    assert describe_position(event) == expected
    assert "phase" not in describe_position(event) and "_" not in describe_position(event).replace("'", "")
