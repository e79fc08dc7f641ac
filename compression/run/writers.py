"""Writing a run's results while it runs: the typed writer of a recipe run (``ResultsWriter``), the
``results.json`` dict of a sensitivity or search run (``JobResults``), and how both record a cancel or a
failure (one sentence) before re-raising."""


import contextlib
import datetime as _dt
import logging
import time
from pathlib import Path
from typing import Any

from .. import _tf
from ..config import Recipe
from ..errors import CompressionError, one_line
from ..progress import Cancelled
from ..results import (
    RunKind,
    RunResults,
    RunStatus,
    VariantResult,
)
from ..run_folder import RunFolder

__all__ = [
    "JobResults",
    "ResultsWriter",
]

log = logging.getLogger("compression")


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------- baseline


class _Recording:
    """``with run.recording():`` writes a cancel or a failure inside the block to results.json, then re-raises it."""

    def save(self) -> None:
        raise NotImplementedError

    def _mark(self, status: RunStatus, error: str | None = None) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def recording(self):
        try:
            yield self
        except Cancelled:
            self._mark(RunStatus.CANCELLED)
            self.save()
            raise
        except Exception as exc:
            self._mark(RunStatus.FAILED, str(exc) if isinstance(exc, CompressionError) else one_line(exc))
            self.save()
            raise


class ResultsWriter(_Recording):
    """A run's :class:`RunResults` while it runs, rewritten atomically through its :class:`RunFolder`.

    Usage::

        run = ResultsWriter(RunFolder(out), RunResults(recipe=recipe.to_dict()))
        run.update(status=RunStatus.OK); run.save()
    """

    def __init__(self, folder: RunFolder, results: RunResults):
        self.folder, self.results = folder, results
        self.started = time.perf_counter()

    def _mark(self, status: RunStatus, error: str | None = None) -> None:
        self.update(status=status, **({"error": error} if error is not None else {}))

    def update(self, **changes) -> None:
        self.results = self.results.replace(**changes)

    def add(self, row: VariantResult) -> None:
        self.results = self.results.with_variant(row)

    def save(self) -> None:
        self.update(elapsed_seconds=round(time.perf_counter() - self.started, 3))
        self.folder.write_results(self.results)


class JobResults(_Recording):
    """results.json of a job's run (sensitivity, search) as its plain dict, rewritten atomically.

    The usual recipe/versions/dataset/baseline/reference parts, the run's ``kind``, and the job's own
    parts (``"sensitivity"``, ``"search"``) that the job puts into :attr:`results` itself.

    Usage::

        job = JobResults(recipe, out_dir, RunKind.SENSITIVITY)
        job.save()
        with job.recording():
            ds = load_recipe_dataset(recipe, job.results, progress)
    """

    def __init__(self, recipe: Recipe, out_dir: str | Path, kind: RunKind):
        self.folder = RunFolder(out_dir)
        self.folder.path.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        self.results: dict[str, Any] = {
            "kind": kind.value, "recipe": recipe.to_dict(), "versions": _tf.library_versions(), "created": _now(),
            "status": RunStatus.RUNNING.value, "dataset": None, "baseline": None, "reference": None, "variants": []}

    def _mark(self, status: RunStatus, error: str | None = None) -> None:
        self.results["status"] = status.value
        if error is not None:
            self.results["error"] = error

    def save(self) -> None:
        from .._io import atomic_write_json

        self.results["elapsed_seconds"] = round(time.perf_counter() - self.started, 3)
        atomic_write_json(self.folder.results_file, self.results)


def _record(results: ResultsWriter | dict[str, Any], **parts) -> None:
    """Put typed parts into the run's results (a :class:`ResultsWriter`, or a plain results.json dict)."""
    if isinstance(results, ResultsWriter):
        results.update(**parts)
    else:
        results.update({key: part.to_dict() for key, part in parts.items()})


def _parts(results: ResultsWriter | dict[str, Any]) -> dict[str, Any]:
    """The run's dataset, baseline and reference so far (what the result cache keeps of a baseline)."""
    if isinstance(results, ResultsWriter):
        return {key: getattr(results.results, key) for key in ("dataset", "baseline", "reference")}
    return results
