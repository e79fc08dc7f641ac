"""Shared number validators: every error names the setting, the allowed range and the bad value.

Like Keras's ``argument_validation``: one module, so "final_sparsity must be in
[0, 1). Received: 1.2" reads the same everywhere (config, data, measure, the
runner), and the UI's widgets take their bounds from the same :class:`Bounds`
the config validates with (see ``config.Limits``).

Usage::

    SPARSITY = Bounds(0, 1, high_open=True)
    final = SPARSITY.check(value, "pruning.final_sparsity")      # 0.8, or CompressionError
    n = whole_number(value, "max_train")                           # a positive int
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from .errors import CompressionError


def number(
    value: Any,
    what: str,
    low: float,
    high: float,
    *,
    integer: bool = False,
    low_open: bool = False,
    high_open: bool = False,
) -> int | float:
    """A number inside a range, as ``int`` (``integer``) or ``float``.

    Args:
        value: the value to check (bools are refused; numpy scalars are fine).
        what: the setting's name as the user wrote it, e.g. ``"pruning.final_sparsity"``.
        low, high: the range; closed unless ``low_open`` / ``high_open``.
        integer: the value must be whole (2.0 passes as 2, 2.5 does not).

    Raises:
        CompressionError: "… must be a number / a whole number / finite / in [low, high). Received: …".
    """
    if isinstance(value, bool) or not isinstance(value, Real):
        raise CompressionError(f"{what} must be a number. Received: {value!r}")
    if integer and not float(value).is_integer():
        raise CompressionError(f"{what} must be a whole number. Received: {value!r}")
    if not math.isfinite(float(value)):
        raise CompressionError(f"{what} must be finite. Received: {value!r}")
    too_low = value <= low if low_open else value < low
    too_high = value >= high if high_open else value > high
    if too_low or too_high:
        raise CompressionError(
            f"{what} must be in {Bounds(low, high, integer, low_open, high_open)}. Received: {value!r}"
        )
    return int(value) if integer else float(value)


def whole_number(value: Any, what: str, minimum: int = 1) -> int:
    """A whole number (an ``int`` or numpy integer, not a float or bool) of at least ``minimum``.

    Raises:
        CompressionError: "max_train must be a positive whole number. Received: 2.5".
    """
    if isinstance(value, bool) or not isinstance(value, Integral) or value < minimum:
        kind = "a positive whole number" if minimum == 1 else f"a whole number >= {minimum}"
        raise CompressionError(f"{what} must be {kind}. Received: {value!r}")
    return int(value)


def _bound(value: float) -> str:
    """A range bound as written: whole numbers in full (2147483647, not 2.14748e+09)."""
    return str(int(value)) if float(value).is_integer() else f"{value:g}"


@dataclass(frozen=True)
class Bounds:
    """A setting's allowed range, used by the config to validate and by the UI to bound its widgets.

    Attributes:
        low, high: the ends of the range.
        integer: whole numbers only.
        low_open, high_open: the end itself is excluded.
    """

    low: float
    high: float
    integer: bool = False
    low_open: bool = False
    high_open: bool = False

    def check(self, value: Any, what: str) -> int | float:
        """The value as int/float if inside the range; CompressionError naming it otherwise."""
        return number(
            value, what, self.low, self.high, integer=self.integer, low_open=self.low_open, high_open=self.high_open
        )

    def __str__(self) -> str:
        return f"{'(' if self.low_open else '['}{_bound(self.low)}, {_bound(self.high)}{')' if self.high_open else ']'}"
