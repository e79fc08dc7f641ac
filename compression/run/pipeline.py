"""A recipe run's two threads: the main thread fine-tunes variant i+1 while a row writer converts, measures
and writes variant i; ``TrainingGate`` parks the fine-tune while the row writer takes timings."""


import contextlib
import dataclasses
import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..config import VariantSpec
from ..errors import CompressionError, one_line
from ..progress import Progress, ProgressFn, emit
from ..results import (
    RunStatus,
    VariantResult,
)
from .variant import _Built, _variant_row, _with_tflm
from .writers import ResultsWriter

__all__ = [
    "TrainingGate",
]

log = logging.getLogger("compression")


class _Monotonic:
    """A progress callback whose fractions never go back (the row writer reports variant i after the main
    thread started variant i+1); thread-safe."""

    def __init__(self, progress: ProgressFn):
        self.progress, self.highest, self._lock = progress, 0.0, threading.Lock()

    def __call__(self, event: Progress) -> None:
        with self._lock:
            if event.fraction < self.highest:
                event = dataclasses.replace(event, fraction=self.highest)
            self.highest = event.fraction
            self.progress(event)


class TrainingGate:
    """Pauses a run's fine-tune while its row writer takes a timing (host latency and throughput).

    On 2 cores a timing taken beside a fine-tune measures the fine-tune: the seed CNN's 8 µs float32 invoke
    was timed at 210 µs. The main thread polls :meth:`checkpoint` after every training batch (with the
    run's cancel poll) and counts as training only inside :meth:`working`; the row writer's
    ``with gate.quiet():`` waits until the trainer is parked at a checkpoint (or done), runs its block
    alone, then lets the training go on. Usage::

        with gate.working():            # main thread
            fit(..., cancel=lambda: gate.checkpoint() or cancelled())
        with gate.quiet():              # row writer
            time_the_interpreter()
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._requests = 0
        self._parked = False
        self._working = False

    @contextlib.contextmanager
    def working(self):
        with self._cond:
            self._working = True
        try:
            yield self
        finally:
            self.finish()

    def finish(self) -> None:
        """The trainer is done (or about to wait for the row writer): no pause is waited for any more."""
        with self._cond:
            self._working = False
            self._cond.notify_all()

    def checkpoint(self) -> None:
        """Called by the trainer between batches: parks while a timing runs."""
        with self._cond:
            if not self._requests:
                return
            self._parked = True
            self._cond.notify_all()
            while self._requests:
                self._cond.wait()
            self._parked = False

    @contextlib.contextmanager
    def quiet(self):
        with self._cond:
            self._requests += 1
            while self._working and not self._parked:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._requests -= 1
                self._cond.notify_all()


class _Pipeline:
    """A run's rows written in order by one thread, while this (the main) thread fine-tunes the next variant.

    The main thread trains a variant (the fine-tunes) and hands it over; this pipeline's thread exports its
    SavedModel, converts it (in the isolation child), measures it with LiteRT (its timings while the
    fine-tune pauses: :class:`TrainingGate`), writes its files and
    its row as soon as accuracy and size are known (``measuring=("tflm",)``), then measures it under
    TensorFlow Lite Micro (another child) and rewrites the row complete, recording it in the result cache.
    On 2 cores the conversion and measurements of one variant overlap the next variant's training (what a
    sequential script pays one after the other). Rows go through the same queue in recipe order: restored
    and failed rows too. Only this thread writes ``run`` until :meth:`close`.
    """

    def __init__(self, run: ResultsWriter, reuse, progress: ProgressFn | None, total: float):
        from concurrent.futures import ThreadPoolExecutor

        self.run, self.reuse, self.progress, self.total = run, reuse, progress, total
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compression-rows")
        self._futures: list[Any] = []
        self.failure: Exception | None = None  # a failed :meth:`first` job: the run fails with it
        self.gate = TrainingGate()  # the main thread's fine-tunes pause while this thread times a model

    def first(self, call: Callable[[], None]) -> None:
        """A job ahead of the rows (the baseline's deferred reference conversion). If it raises, the
        exception is kept in :attr:`failure` (the main thread fails the run with it) instead of raised here."""
        self._futures.append(self._pool.submit(self._guarded, call))

    def _guarded(self, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - handed to the main thread, which fails the run with it
            self.failure = exc

    def check(self, run: ResultsWriter) -> None:
        """Fail the run (results.json says why) if a :meth:`first` job failed."""
        if self.failure is not None:
            self.drain()
            with run.recording():
                raise self.failure

    def row(self, spec: VariantSpec, row: VariantResult, fraction: float, record: bool = False) -> None:
        """Write a finished row (restored from the cache, or failed) in its turn."""
        self._futures.append(self._pool.submit(self._write, spec, row, fraction, None, record))

    def measure(self, built: _Built, started: float, measure: Callable[[], tuple]) -> None:
        """Convert and measure a built variant in its turn; ``measure()`` gives (row, deferred TFLM call)."""
        self._futures.append(self._pool.submit(self._measure, built, started, measure))

    def _measure(self, built: _Built, started: float, measure) -> None:
        spec = built.spec
        try:
            row, deferred = measure()
        except CompressionError as exc:
            row, deferred = _variant_row(spec, RunStatus.FAILED, str(exc)), None
        except Exception as exc:  # noqa: BLE001 - one variant's bug must not lose the others
            log.exception("variant %s failed", spec.name)
            row, deferred = _variant_row(spec, RunStatus.FAILED, one_line(exc)), None
        self._write(spec, row.replace(seconds=round(time.perf_counter() - started, 3)), built.span[1], deferred,
                    row.ok)

    def _write(self, spec, row: VariantResult, fraction: float, deferred, record: bool) -> None:
        self.run.add(row)
        self.run.save()
        emit(self.progress, Progress(phase="variant_done", variant=spec.name, fraction=fraction,
                                     message=f"{spec.name}: {row.status.value}", data={"row": row.to_dict()}))
        if deferred is not None:
            row = _with_tflm(row, deferred)
            self.run.add(row)
            self.run.save()
        if record and self.reuse is not None:
            self.reuse.record_variant(spec, row)

    def drain(self) -> None:
        """Wait until every handed-over variant's row is written (re-raises a writer's own failure).

        The caller's training is over from here (a timing must not wait for a checkpoint that never comes).
        """
        self.gate.finish()
        futures, self._futures = self._futures, []
        for future in futures:
            future.result()

    def close(self) -> None:
        try:
            self.drain()
        finally:
            self._pool.shutdown(wait=True)


# ---------------------------------------------------------------- the whole recipe
