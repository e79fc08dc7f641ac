"""Progress events that long-running engine functions emit."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field, fields
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

    @classmethod
    def from_dict(cls, data: dict[str, Any] | None) -> Progress:
        """The event of a stored dict (the store's ``run["progress"]``, None before the first event).

        Unknown keys are dropped; missing, null or non-numeric fields take their defaults.

        Usage::

            Progress.from_dict(store.get_run(run_id)["progress"]).bounded_fraction
        """
        data = data if isinstance(data, dict) else {}
        names = {f.name for f in fields(cls)}
        kept = {key: value for key, value in data.items() if key in names and value is not None}
        try:
            fraction = float(kept.get("fraction", 0.0))
        except (TypeError, ValueError):
            fraction = 0.0
        return cls(**{"phase": "", **kept, "fraction": fraction})

    @property
    def bounded_fraction(self) -> float:
        """:attr:`fraction` kept within [0, 1] (what a progress bar takes)."""
        return min(max(self.fraction, 0.0), 1.0)


ProgressFn = Callable[[Progress], None]


class Cancelled(Exception):
    """Raised inside the engine when the caller's cancel check returns True."""


def emit(progress: ProgressFn | None, event: Progress) -> None:
    """Send an event to the callback if there is one."""
    if progress is not None:
        progress(event)
