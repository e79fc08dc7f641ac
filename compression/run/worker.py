"""The worker process: runs one run of the store and records how it ended.

The :class:`~compression.run.runner.Runner` starts it as::

    python -m compression.run.worker ROOT RUN_ID --lock-fd N

in a session of its own, with stdout and stderr (TensorFlow's noise, and a
traceback from :mod:`faulthandler` if it crashes) going to the run's
``worker.log``. It loads the recipe from the store, calls the run's job
(``"module:function"``, by default :func:`compression.run.recipe.run_recipe`),
writes the job's progress events to the store, answers the job's cancel
checks from the store's cancel flag, and sets the final status: "ok",
"failed" with the error's sentence, or "cancelled". If the process dies
before that (a segfault, SIGKILL), the runner reports it.

:func:`execute` runs a run in the calling process instead (for a CLI that
wants no subprocess).
"""

from __future__ import annotations

import argparse
import faulthandler
import importlib
import logging
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import Any

from .. import _locks
from ..errors import CompressionError, one_line
from ..progress import Cancelled
from ..results import RunResults, RunStatus
from ..store import FINAL_STATUSES, Store, describe_position

log = logging.getLogger("compression.run.worker")

BATCH_EVENT_INTERVAL_S = 0.2  # batch-level progress events: at most 5 per second reach the store
CANCEL_CHECK_INTERVAL_S = 0.2  # the job may ask every batch; the store is read at most this often


def load_job(spec: str) -> Callable[..., Any]:
    """Import the job function named ``"package.module:function"``.

    Raises:
        CompressionError: the module or function cannot be found.
    """
    from ..store.schema import LEGACY_JOBS

    module_name, _, function_name = LEGACY_JOBS.get(spec, spec).partition(":")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise CompressionError(f"The job {spec!r} cannot be loaded: {exc}.") from None
    function = getattr(module, function_name, None)
    if not callable(function):
        raise CompressionError(f"The job {spec!r} cannot be loaded: {module_name} has no function {function_name}.")
    return function


class ProgressWriter:
    """The job's ``progress`` callback: forwards events to the store, batch-level ones throttled."""

    def __init__(self, store: Store, run_id: str, batch_interval: float = BATCH_EVENT_INTERVAL_S):
        self.store, self.run_id, self.batch_interval = store, run_id, batch_interval
        self._last_batch = float("-inf")
        self.last: dict[str, Any] | None = None

    def __call__(self, event: Any) -> None:
        data = event.to_dict() if hasattr(event, "to_dict") else dict(event)
        if data.get("batch") is not None:
            now = time.monotonic()
            if now - self._last_batch < self.batch_interval:
                return
            self._last_batch = now
        self.last = data
        try:
            self.store.add_event(self.run_id, data)
        except Exception:  # a progress write must never fail the job; the log keeps it
            log.exception("could not store a progress event for run %s", self.run_id)


class CancelCheck:
    """The job's ``cancel`` callback: True once the run's cancel flag is set; reads the store at most 5×/s."""

    def __init__(self, store: Store, run_id: str, interval: float = CANCEL_CHECK_INTERVAL_S):
        self.store, self.run_id, self.interval = store, run_id, interval
        self._last_check = float("-inf")
        self._cancelled = False

    def __call__(self) -> bool:
        if not self._cancelled:
            now = time.monotonic()
            if now - self._last_check >= self.interval:
                self._last_check = now
                try:
                    self._cancelled = self.store.cancel_requested(self.run_id)
                except Exception:
                    log.exception("could not read the cancel flag of run %s", self.run_id)
        return self._cancelled


def _take_lock(store: Store, run_id: str) -> int:
    """Hold the run's worker lock (retrying for an instant: a liveness probe may hold it that long)."""
    try:
        return _locks.acquire(store.folder(run_id).lock_file, timeout=0.5)
    except OSError:
        raise CompressionError(f"Run {run_id} is already being run by another process.") from None


def execute(store: Store, run_id: str, *, take_lock: bool = True) -> str:
    """Run one run in this process and record its final status.

    A queued run is claimed first; a run that already ended is left alone.

    Args:
        store: the store holding the run.
        run_id: the run.
        take_lock: hold the run's worker lock while running (False when the
            runner already passed this process the lock).

    Returns:
        The run's final status.

    Raises:
        CompressionError: no such run, or another process is running it.

    Usage::

        status = execute(Store(), store.create_run(recipe))
    """
    run = store.get_run(run_id)
    if run["status"] in FINAL_STATUSES:
        return run["status"]
    lock_fd = _take_lock(store, run_id) if take_lock else None
    try:
        queued = run["status"] is RunStatus.QUEUED
        if queued and not store.set_status(run_id, RunStatus.RUNNING, expected=(RunStatus.QUEUED,)):
            return store.get_run(run_id)["status"]
        store.set_pid(run_id, os.getpid())
        log.info("run %s: job %s in %s", run_id, run["job"], store.run_dir(run_id))
        progress = ProgressWriter(store, run_id)
        cancel = CancelCheck(store, run_id)
        status, error = _call_job(store, run_id, run["job"], progress, cancel)
        store.set_status(run_id, status, error=error, expected=(RunStatus.RUNNING,))
        log.info("run %s: %s%s", run_id, status, f" ({error})" if error else "")
        return status
    finally:
        if lock_fd is not None:
            _locks.release(lock_fd)


def _call_job(
    store: Store, run_id: str, job: str, progress: ProgressWriter, cancel: CancelCheck
) -> tuple[str, str | None]:
    """Call the job; map how it ended to (status, error sentence)."""
    if store.cancel_requested(run_id):
        return RunStatus.CANCELLED, "Cancelled before it started."
    try:
        recipe = store.recipe(run_id)
        function = load_job(job)
        function(recipe, store.run_dir(run_id), progress=progress, cancel=cancel)
        results = store.results(run_id)
    except Cancelled:
        return RunStatus.CANCELLED, f"Cancelled {describe_position(progress.last)}."
    except CompressionError as exc:
        return RunStatus.FAILED, str(exc)
    except Exception as exc:
        log.exception("run %s: the job raised", run_id)
        detail = one_line(exc, limit=300)
        where = describe_position(progress.last)
        return RunStatus.FAILED, f"Internal error ({detail}) {where}; details are in worker.log."
    except BaseException as exc:  # SystemExit / KeyboardInterrupt from inside the job
        log.exception("run %s: the job exited", run_id)
        return RunStatus.FAILED, f"The job stopped early ({type(exc).__name__}) {describe_position(progress.last)}."
    if isinstance(results, RunResults) and results.status is RunStatus.FAILED:
        # run_recipe records failing variants instead of raising; all of them failing fails the run.
        return RunStatus.FAILED, str(results.error or "Every variant failed.")
    return RunStatus.OK, None


def preload() -> None:
    """Import what a recipe run needs (TensorFlow, tf_keras, tfmot, LiteRT, the engine) and start the
    conversion child (:func:`compression.isolation.shared_pool`), so a run handed to this process starts at once."""
    from .. import _tf

    _tf.tf()
    _tf.keras()
    _tf.tfmot()
    _tf.interpreter_module()
    importlib.import_module("compression.run.recipe")
    from ..isolation import shared_pool

    shared_pool().warm()


def warm_up() -> None:
    """Pay the first call's one-time costs (scikit-learn's import, Keras' first predict, the first SavedModel
    export of a conversion) on the default data and pretrained model, before any run is waiting for them."""
    from ..inputs.data import load_dataset
    from ..inputs.pretrained import has_pretrained, load_pretrained
    from ..techniques.train import predict_classes
    from ..tflite.convert import convert_to_tflite

    ds = load_dataset("digits")
    if has_pretrained("digits", "seed_cnn"):
        model = load_pretrained("digits", "seed_cnn")
        predict_classes(model, ds.x_test[:32])
        convert_to_tflite(model, "float32")


def _run_waiting(sock_fd: int) -> bool:
    import select

    return bool(select.select([sock_fd], [], [], 0)[0])


def wait_for_run(sock_fd: int) -> tuple[str, int] | None:
    """Block until the runner hands this spare a run: (run id, the run's worker lock fd, already held).

    The runner sends the run id with the lock's file descriptor over a Unix socket (SCM_RIGHTS); None when
    the runner went away (end of file) instead.
    """
    import socket

    with socket.socket(fileno=sock_fd) as sock:
        try:
            message, fds, _, _ = socket.recv_fds(sock, 1024, 1)
        except OSError:
            return None
    if not message or not fds:
        return None
    return message.decode(), fds[0]


def _log_to(path) -> None:
    """Point this process's stdout and stderr (Python's and native code's) at the run's log."""
    sys.stdout.flush()
    sys.stderr.flush()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    os.dup2(fd, 1)
    os.dup2(fd, 2)
    os.close(fd)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m compression.run.worker ROOT RUN_ID [--lock-fd N]`` or ``ROOT --spare-fd N``."""
    parser = argparse.ArgumentParser(prog="python -m compression.run.worker", description=__doc__.splitlines()[0])
    parser.add_argument("root", help="the store's data directory")
    parser.add_argument("run_id", nargs="?", default=None)
    parser.add_argument(
        "--lock-fd",
        type=int,
        default=None,
        help="file descriptor of the run's worker lock, already held (passed by the runner)",
    )
    parser.add_argument(
        "--spare-fd",
        type=int,
        default=None,
        help="a warm spare: preload TensorFlow, then wait on this Unix socket for the run to execute",
    )
    args = parser.parse_args(argv)
    faulthandler.enable()  # a segfault leaves the Python stack in worker.log
    logging.basicConfig(
        stream=sys.stderr, level=logging.INFO, format="%(asctime)s %(name)s[%(process)d] %(levelname)s %(message)s"
    )
    if args.spare_fd is not None:
        started = time.perf_counter()
        try:
            preload()
            if not _run_waiting(args.spare_fd):  # a run already waiting is not kept waiting for the warm-up
                warm_up()
            log.info("spare worker ready (TensorFlow imported) in %.1f s", time.perf_counter() - started)
        except Exception:  # a run handed over still runs (and reports the same failure with its sentence)
            log.exception("spare worker: preloading failed")
        handed = wait_for_run(args.spare_fd)
        if handed is None:
            return 0
        args.run_id, args.lock_fd = handed
        store = Store(args.root)
        _log_to(store.folder(args.run_id).log_file)
        log.info("run %s: handed to the warm worker pid %d", args.run_id, os.getpid())
    elif args.run_id is None:
        parser.error("a run id (or --spare-fd) is needed")
    try:
        execute(Store(args.root), args.run_id, take_lock=args.lock_fd is None)
    except CompressionError as exc:
        log.error("%s", exc)
        return 2
    return 0


if __name__ == "__main__":
    code = main()
    sys.stdout.flush()
    sys.stderr.flush()
    # Skip interpreter teardown: TensorFlow's atexit/thread teardown can hang or crash
    # after the run's status is safely recorded.
    os._exit(code)
