"""Progress events that long-running engine functions emit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    """One progress event.

    Attributes:
        phase: what is happening: "data", "baseline", "fine_tune", "convert",
            "measure", "variant_done", "done".
        variant: the variant's name, or "" for recipe-level phases.
        fraction: overall completion of the whole recipe in [0, 1].
        epoch: current epoch (1-based) when training, else None.
        epochs: total epochs of the current training, else None.
        batch: current batch within the epoch, else None.
        loss: last training loss, else None.
        accuracy: last training accuracy, else None.
        message: a short human line.
        data: extra payload (e.g. a finished variant's result row).
    """

    phase: str
    variant: str = ""
    fraction: float = 0.0
    epoch: int | None = None
    epochs: int | None = None
    batch: int | None = None
    loss: float | None = None
    accuracy: float | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


ProgressFn = Callable[[Progress], None]


class Cancelled(Exception):
    """Raised inside the engine when the caller's cancel check returns True."""


def emit(progress: ProgressFn | None, event: Progress) -> None:
    """Send an event to the callback if there is one."""
    if progress is not None:
        progress(event)
