"""Microcontroller boards' RAM and flash budgets, and whether a variant fits one.

What is compared (see :mod:`compression.measure.tflm` for how it is measured):

* RAM: the TFLite Micro tensor arena the model needs (``arena_bytes``). The
  application's own RAM (stack, the interpreter object, I/O buffers, the
  rest of the firmware) is not counted.
* Flash: the model's ``.tflite`` bytes as they are linked (``flash_bytes``,
  raw, not gzip). The TFLM runtime's own code is not counted.

So "fits" means the model's share fits in the whole budget; the margin is what
is left for everything else. Pure functions of numbers: no TensorFlow, no TFLM.

Usage::

    board = get_board("nano33")                  # or Board.custom(ram_kb=192, flash_kb=768)
    fit = check_fit(board, runnable=True, arena_bytes=2416, flash_bytes=4192)
    fit.status, fit.ram_margin_bytes, fit.label()
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from ..errors import CompressionError

__all__ = [
    "BOARDS", "CUSTOM", "FIT_COLUMNS", "Board", "Fit", "FitStatus", "check_fit", "fit_of", "fit_table", "format_bytes",
    "get_board",
]

KB = 1024  # datasheets give SRAM and flash in binary kilobytes
MB = 1024 * KB

CUSTOM = "custom"
_MAX_CUSTOM_BYTES = 64 * 1024 * MB  # 64 GB: anything larger is a typo


@dataclass(frozen=True)
class Board:
    """A board's memory budget.

    Attributes:
        key: short name used by the CLI and the app (``nano33``).
        name: the board's name as sold.
        ram_bytes: on-chip SRAM.
        flash_bytes: flash the firmware (and the model) can be linked into.
        note: what the raw figure hides (e.g. RAM split into banks).
    """

    key: str
    name: str
    ram_bytes: int
    flash_bytes: int
    note: str = ""

    @classmethod
    def custom(cls, ram_kb: float, flash_kb: float, name: str = "custom board") -> Board:
        """A board with user-entered budgets in KB (1 KB = 1024 bytes).

        Raises:
            CompressionError: a budget that is not a positive number of KB.
        """
        return cls(
            key=CUSTOM,
            name=str(name or "custom board"),
            ram_bytes=_budget(ram_kb, "RAM"),
            flash_bytes=_budget(flash_kb, "flash"),
            note="user-entered budget",
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "name": self.name,
            "ram_bytes": self.ram_bytes,
            "flash_bytes": self.flash_bytes,
            "note": self.note,
        }


def _budget(value: Any, what: str) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise CompressionError(f"The custom board's {what} must be a number of KB; got {value!r}.") from None
    if not number > 0 or number * KB > _MAX_CUSTOM_BYTES:
        raise CompressionError(f"The custom board's {what} must be between 1 byte and 64 GB (in KB); got {value!r}.")
    return max(1, round(number * KB))


BOARDS: dict[str, Board] = {
    board.key: board
    for board in (
        # Nordic nRF52840: "1 MB flash and 256 KB RAM" (nRF52840 Product Specification, "Key features");
        # the board's tech specs list the same (docs.arduino.cc/hardware/nano-33-ble-sense).
        Board("nano33", "Arduino Nano 33 BLE Sense", 256 * KB, 1 * MB,
              "nRF52840; the Arduino bootloader and Mbed OS take part of the flash."),
        # RP2040: "264 kB on-chip SRAM in six independent banks" (RP2040 Datasheet, section 1);
        # the Pico board carries "2 MB on-board QSPI flash" (Raspberry Pi Pico Datasheet, section 1).
        Board("pico", "Raspberry Pi Pico", 264 * KB, 2 * MB,
              "RP2040; SRAM is striped over banks, one address range."),
        # ESP32: "520 KB SRAM" (ESP32 Series Datasheet, "Internal memory");
        # 4 MB SPI flash on the ESP32-WROOM-32 module of the DevKitC (ESP32-WROOM-32 Datasheet, section 1).
        Board("esp32", "ESP32 (ESP32-WROOM-32)", 520 * KB, 4 * MB,
              "Part of the 520 KB is instruction RAM, cache and radio buffers: an application's heap is much smaller."),
        # STM32F411xE: "up to 512 Kbytes of Flash memory, 128 Kbytes of SRAM"
        # (STM32F411xC/E datasheet DS10314, section 1 "Description"); e.g. the Nucleo-F411RE.
        Board("stm32f411", "STM32F411 (Nucleo-F411RE / Black Pill)", 128 * KB, 512 * KB, "Cortex-M4F."),
        # STM32H743xI: "up to 2 Mbytes of Flash memory", "up to 1 Mbyte of RAM: 192 Kbytes of TCM RAM,
        # 864 Kbytes of user SRAM" (STM32H742xI/G STM32H743xI/G datasheet DS12110, features).
        Board("stm32h743", "STM32H743 (Nucleo-H743ZI)", 1 * MB, 2 * MB,
              "RAM is split into regions: the largest contiguous one (AXI SRAM) is 512 KB."),
    )
}


def get_board(key: str, ram_kb: float | None = None, flash_kb: float | None = None) -> Board:
    """A board of :data:`BOARDS` by key, or ``"custom"`` with ``ram_kb`` and ``flash_kb``.

    Raises:
        CompressionError: an unknown key, or "custom" without both budgets.
    """
    text = str(key or "").strip().lower()
    if text == CUSTOM:
        if ram_kb is None or flash_kb is None:
            raise CompressionError("A custom board needs both its RAM and its flash in KB.")
        return Board.custom(ram_kb, flash_kb)
    if text not in BOARDS:
        raise CompressionError(f"Unknown board {key!r}; choose one of {', '.join([*BOARDS, CUSTOM])}.")
    return BOARDS[text]


class FitStatus(StrEnum):
    """Whether a variant fits a board."""

    FITS = "fits"
    DOES_NOT_FIT = "does not fit"
    CANNOT_RUN = "cannot run under TFLM"
    UNMEASURED = "not measured"


@dataclass(frozen=True)
class Fit:
    """The fit of one variant on one board. Margins are budget − need (negative: over budget)."""

    board: str
    status: FitStatus
    ram_needed: int | None = None
    flash_needed: int | None = None
    ram_margin_bytes: int | None = None
    flash_margin_bytes: int | None = None
    reason: str = ""

    @property
    def fits(self) -> bool:
        return self.status is FitStatus.FITS

    def label(self) -> str:
        """One cell of a table: ``fits (RAM +250 KB, flash +1.0 MB)``, ``does not fit: RAM 12 KB over``."""
        if self.status is FitStatus.FITS:
            return (f"fits (RAM +{format_bytes(self.ram_margin_bytes)}, "
                    f"flash +{format_bytes(self.flash_margin_bytes)})")
        if self.status is FitStatus.DOES_NOT_FIT:
            return f"does not fit: {self.reason}"
        return f"{self.status.value}: {self.reason}" if self.reason else self.status.value


def check_fit(
    board: Board,
    *,
    runnable: bool | None,
    arena_bytes: int | None,
    flash_bytes: int | None,
    reason: str | None = None,
) -> Fit:
    """Does a model with this arena and flash need fit ``board``?

    Args:
        board: the budget.
        runnable: False when TFLite Micro refuses the model, None when it was not measured
            (or the measurement failed).
        arena_bytes: the tensor arena the model needs (RAM).
        flash_bytes: the model's linked bytes (flash).
        reason: why it cannot run or was not measured (shown in the fit).

    Usage::

        check_fit(BOARDS["pico"], runnable=True, arena_bytes=300 * 1024, flash_bytes=40_000).status
    """
    if runnable is False:
        return Fit(board.key, FitStatus.CANNOT_RUN, None, flash_bytes, None, _margin(board.flash_bytes, flash_bytes),
                   reason or "TFLite Micro refuses this model.")
    if runnable is None or arena_bytes is None or flash_bytes is None:
        return Fit(board.key, FitStatus.UNMEASURED, arena_bytes, flash_bytes, _margin(board.ram_bytes, arena_bytes),
                   _margin(board.flash_bytes, flash_bytes), reason or "RAM and flash were not measured.")
    ram_margin = board.ram_bytes - int(arena_bytes)
    flash_margin = board.flash_bytes - int(flash_bytes)
    over = []
    if ram_margin < 0:
        over.append(f"RAM {format_bytes(-ram_margin)} over (arena {format_bytes(arena_bytes)} "
                    f"of {format_bytes(board.ram_bytes)})")
    if flash_margin < 0:
        over.append(f"flash {format_bytes(-flash_margin)} over ({format_bytes(flash_bytes)} "
                    f"of {format_bytes(board.flash_bytes)})")
    status = FitStatus.DOES_NOT_FIT if over else FitStatus.FITS
    return Fit(board.key, status, int(arena_bytes), int(flash_bytes), ram_margin, flash_margin, "; ".join(over))


def fit_of(tflm: Any, board: Board) -> Fit:
    """:func:`check_fit` for a measurement (a :class:`~compression.results.TflmResult`, its dict, or None)."""
    if tflm is None:
        return check_fit(board, runnable=None, arena_bytes=None, flash_bytes=None,
                         reason="TFLite Micro was not measured for this variant.")
    get = tflm.get if isinstance(tflm, dict) else lambda k: getattr(tflm, k, None)
    return check_fit(board, runnable=get("runnable"), arena_bytes=get("arena_bytes"),
                     flash_bytes=get("flash_bytes"), reason=get("reason"))


def _margin(budget: int, need: int | None) -> int | None:
    return None if need is None else budget - int(need)


def format_bytes(value: int | float | None) -> str:
    """``2416`` → ``2.4 KB``, ``3 145 728`` → ``3.0 MB`` (binary units, as the budgets)."""
    if value is None:
        return "–"
    value = float(value)
    sign = "-" if value < 0 else ""
    value = abs(value)
    if value < KB:
        return f"{sign}{value:.0f} B"
    if value < MB:
        return f"{sign}{value / KB:.1f} KB"
    return f"{sign}{value / MB:.2f} MB"


FIT_COLUMNS = ["name", "quantization", "tflm", "arena_bytes", "flash_bytes", "fit", "fit_label", "ram_margin_bytes",
               "flash_margin_bytes", "tflm_accuracy", "tflm_agreement", "tflm_samples", "reason"]


def fit_table(results: Any, board: Board):
    """One row per finished variant of a run: its TFLM measurement and its fit on ``board``.

    Args:
        results: a :class:`~compression.results.RunResults` or its results.json dict.
        board: the budget.

    Returns:
        A DataFrame with :data:`FIT_COLUMNS`: ``tflm`` is "runs" / "refused" / "not measured",
        ``fit`` a :class:`FitStatus` value, ``fit_label`` the sentence of :meth:`Fit.label`.

    Usage::

        fit_table(RunFolder(run_dir).read_results(), get_board("nano33"))
    """
    import pandas as pd

    from ..results import RunResults

    run = RunResults.from_dict(results) if isinstance(results, dict) else results
    rows = []
    for variant in run.ok_variants if run is not None else ():
        tflm = variant.tflm
        fit = fit_of(tflm, board)
        runnable = None if tflm is None else tflm.runnable
        rows.append({
            "name": variant.name, "quantization": variant.quantization,
            "tflm": {True: "runs", False: "refused"}.get(runnable, "not measured"),
            "arena_bytes": None if tflm is None else tflm.arena_bytes,
            "flash_bytes": None if tflm is None else tflm.flash_bytes,
            "fit": fit.status.value, "fit_label": fit.label(),
            "ram_margin_bytes": fit.ram_margin_bytes, "flash_margin_bytes": fit.flash_margin_bytes,
            "tflm_accuracy": None if tflm is None else tflm.accuracy,
            "tflm_agreement": None if tflm is None else tflm.agreement,
            "tflm_samples": None if tflm is None else tflm.samples,
            "reason": fit.reason if fit.status is not FitStatus.FITS else "",
        })
    return pd.DataFrame(rows, columns=FIT_COLUMNS)
