"""The runner: executes queued runs in worker processes, off the web server's process.

Each run gets its own OS process (``python -m compression.run.worker``) in a
session of its own, so a segfault in TensorFlow or the converter, or a
SIGKILL, only ends that run: a supervisor thread notices the exit and marks
the run "failed" with the reason ("The worker process crashed (signal
SIGSEGV) while running variant 'int8' (phase convert).") and starts the next
queued run.

The queue lives in the store, so runs survive the server: a new runner picks
up queued runs, workers keep running (and record their own result) if the
server stops, and on start-up runs whose worker is gone are marked
"interrupted". At most ``max_concurrent`` runs are running in the whole store
at a time.

Usage::

    runner = get_runner()                       # one per process and data directory
    run_id = runner.submit(Recipe.experiment_e(), session="tab-1")
    runner.cancel(run_id)
"""

from __future__ import annotations

import logging
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .. import _locks
from ..config import Recipe
from ..errors import CompressionError
from ..results import RunKind, RunStatus
from ..run_folder import RunFolder
from ..store import DEFAULT_JOB, FINAL_STATUSES, Store, default_root, describe_position

__all__ = ["JOBS_ENV", "Runner", "get_runner"]

log = logging.getLogger("compression.run.runner")

JOBS_ENV = "COMPRESSION_LAB_JOBS"
_PACKAGE_PARENT = str(Path(__file__).resolve().parents[2])


WARM_ENV = "COMPRESSION_LAB_WARM_WORKER"
SPARE_LOG = "spare-worker.log"
MAX_SPARE_FAILURES = 3  # spares that died before any run: stop warming (cold starts still work)


@dataclass
class _Spare:
    """A worker process started ahead of time: TensorFlow imported, waiting on ``sock`` for a run id."""

    process: subprocess.Popen
    sock: socket.socket


@dataclass
class _Worker:
    """A worker process this runner started (or a cancelled one it escalates)."""

    run_id: str
    process: subprocess.Popen | None
    pid: int
    terminated_at: float | None = None  # monotonic time of our SIGTERM
    killed: bool = False


class Runner:
    """Starts queued runs in worker processes and supervises them from a daemon thread.

    Args:
        store: the store whose queue to run.
        max_concurrent: most runs running at once in the whole store.
        poll_interval: seconds between checks while workers are running.
        idle_interval: seconds between checks for queued runs while idle.
        cancel_grace: seconds a running worker has to honour a cancel before SIGTERM.
        kill_grace: seconds after SIGTERM before SIGKILL.
        orphan_check_interval: seconds between sweeps for runs whose worker died
            while no runner was watching (:meth:`Store.mark_interrupted`).
        warm: keep one spare worker process ready (TensorFlow imported, waiting for a run id on a
            socket) whenever no run is going, and hand the next run to it: still one run per process,
            so crash isolation is unchanged; the next spare starts after the run ends.

    Raises:
        CompressionError: ``max_concurrent`` is not a whole number ≥ 1.

    Usage::

        with Runner(Store()) as runner:
            status = runner.wait(runner.submit(recipe), timeout=600)["status"]
    """

    def __init__(
        self,
        store: Store,
        max_concurrent: int = 1,
        *,
        poll_interval: float = 0.2,
        idle_interval: float = 1.0,
        cancel_grace: float = 10.0,
        kill_grace: float = 5.0,
        orphan_check_interval: float = 5.0,
        warm: bool = False,
    ):
        if isinstance(max_concurrent, bool) or not isinstance(max_concurrent, int) or max_concurrent < 1:
            raise CompressionError(f"max_concurrent must be a whole number of at least 1. Received: {max_concurrent!r}")
        self.store = store
        self.max_concurrent = max_concurrent
        self.poll_interval = poll_interval
        self.idle_interval = idle_interval
        self.cancel_grace = cancel_grace
        self.kill_grace = kill_grace
        self.orphan_check_interval = orphan_check_interval
        self.warm = warm
        self._spare: _Spare | None = None  # changed only by the supervisor thread
        self._spare_failures = 0
        self._workers: dict[str, _Worker] = {}  # changed only by the supervisor thread
        self._adopted: dict[str, _Worker] = {}  # cancelled workers of an earlier runner
        self._wake = threading.Event()
        self._draining = threading.Event()  # shutting down: start nothing new
        self._stop = threading.Event()
        self.interrupted_at_start = store.mark_interrupted()
        self._thread = threading.Thread(target=self._loop, name="compression-runner", daemon=True)
        self._thread.start()

    def __repr__(self) -> str:
        return f"Runner({self.store!r}, max_concurrent={self.max_concurrent})"

    def __enter__(self) -> Runner:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.shutdown(cancel=True)

    @property
    def alive(self) -> bool:
        """True while the supervisor thread runs."""
        return self._thread.is_alive() and not self._draining.is_set()

    # ------------------------------------------------------------ public API

    def submit(self, recipe: Recipe, job: str = DEFAULT_JOB, session: str | None = None,
               files: dict[str, str] | None = None, kind: RunKind | str | None = None) -> str:
        """Queue a recipe; it starts as soon as a slot is free.

        Args:
            recipe: a :class:`Recipe` (or a dict for ``Recipe.from_dict``).
            job: ``"module:function"`` to call; the recipe engine by default.
            session: an opaque tag (browser session) stored with the run.
            files: the job's own settings files (name -> text), see :meth:`Store.create_run`.
            kind: what the run is for (:class:`RunKind`); by default inferred from the job.

        Returns:
            The run id.

        Raises:
            CompressionError: invalid recipe or job.
        """
        run_id = self.store.create_run(recipe, job=job, session=session, files=files, kind=kind)
        self._wake.set()
        return run_id

    def cancel(self, run_id: str) -> str:
        """Cancel a run: a queued one at once; a running one is asked to stop, then terminated.

        The worker's job sees the cancel flag at its next check and stops; if it
        does not exit within ``cancel_grace`` seconds it gets SIGTERM, then SIGKILL.

        Returns:
            The status right after the call: "cancelled" for a queued run,
            "running" while a running one winds down, else its final status.

        Raises:
            CompressionError: no such run.
        """
        status = self.store.request_cancel(run_id)
        self._wake.set()
        return status

    def wait(self, run_id: str, timeout: float | None = None, poll: float = 0.05) -> dict[str, Any]:
        """Block until the run reaches a final status (for tests and the CLI).

        Returns:
            The run's :meth:`Store.get_run` dict.

        Raises:
            TimeoutError: still not finished after ``timeout`` seconds.
            CompressionError: no such run.
        """
        deadline = None if timeout is None else time.monotonic() + timeout
        while True:
            run = self.store.get_run(run_id)
            if run["status"] in FINAL_STATUSES:
                return run
            if deadline is not None and time.monotonic() >= deadline:
                raise TimeoutError(f"Run {run_id} is still {run['status']} after {timeout:g} s.")
            time.sleep(poll)

    def shutdown(self, cancel: bool = False, timeout: float = 30.0) -> None:
        """Stop supervising.

        Args:
            cancel: also cancel this runner's running workers and wait (up to
                ``timeout``, then SIGKILL) until they exit. Without it they keep
                running detached and record their own result; queued runs stay
                queued for the next runner either way.
            timeout: seconds to wait for cancelled workers.
        """
        self._draining.set()
        if cancel and self._thread.is_alive():
            for run_id in list(self._workers):
                try:
                    self.store.request_cancel(run_id)
                except CompressionError:
                    pass
            deadline = time.monotonic() + timeout
            while self._workers and time.monotonic() < deadline:
                self._wake.set()
                time.sleep(0.05)
        self._stop.set()
        self._wake.set()
        self._thread.join()
        self._drop_spare()
        if cancel:
            for worker in list(self._workers.values()):
                self._signal(worker, signal.SIGKILL)
                worker.process.wait()
            self._reap()

    # ------------------------------------------------------------ supervisor

    def _loop(self) -> None:
        next_orphan_check = time.monotonic() + self.orphan_check_interval
        while not self._stop.is_set():
            try:
                self._reap()
                self._enforce_cancels()
                if time.monotonic() >= next_orphan_check:
                    next_orphan_check = time.monotonic() + self.orphan_check_interval
                    self.store.mark_interrupted(exclude=list(self._workers))
                self._start_queued()
                self._keep_spare()
            except Exception:  # the supervisor must outlive a bad tick (e.g. a locked disk)
                log.exception("runner supervisor tick failed")
            self._wake.wait(self.poll_interval if self._workers or self._adopted else self.idle_interval)
            self._wake.clear()

    def _start_queued(self) -> None:
        while not self._draining.is_set() and len(self._workers) < self.max_concurrent:
            run_id = self.store.claim_next(self.max_concurrent)
            if run_id is None:
                return
            self._spawn(run_id)

    def _worker_env(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(p for p in (_PACKAGE_PARENT, env.get("PYTHONPATH")) if p)
        env["PYTHONUNBUFFERED"] = "1"
        return env

    def _keep_spare(self) -> None:
        """Start a spare when none is ready and no run is going in the store (so it never competes with a run
        for CPU: not this runner's, nor another process's, e.g. a CLI run or a second server)."""
        if self._spare is not None and self._spare.process.poll() is not None:
            log.warning("the spare worker exited (code %s) before any run; see %s",
                        self._spare.process.returncode, self.store.root / SPARE_LOG)
            self._spare_failures += 1
            self._drop_spare()
        if (not self.warm or self._spare is not None or self._workers or self._draining.is_set()
                or self._spare_failures >= MAX_SPARE_FAILURES or self.store.running_runs()):
            return
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            with open(self.store.root / SPARE_LOG, "wb") as log_file:
                process = subprocess.Popen(
                    [sys.executable, "-m", "compression.run.worker", str(self.store.root),
                     "--spare-fd", str(theirs.fileno())],
                    stdin=subprocess.DEVNULL, stdout=log_file, stderr=subprocess.STDOUT,
                    pass_fds=(theirs.fileno(),), start_new_session=True, env=self._worker_env(),
                )
        except Exception:
            ours.close()
            self._spare_failures += 1
            log.exception("could not start a spare worker")
            return
        finally:
            theirs.close()
        self._spare = _Spare(process, ours)
        log.info("spare worker pid %d started", process.pid)

    def _drop_spare(self) -> None:
        spare, self._spare = self._spare, None
        if spare is None:
            return
        spare.sock.close()  # an idle spare sees end of file and exits
        if spare.process.poll() is None:
            self._signal(_Worker("", spare.process, spare.process.pid), signal.SIGKILL)
        spare.process.wait()

    def _hand_to_spare(self, run_id: str, lock_fd: int) -> subprocess.Popen | None:
        """Give the run (and its held lock) to the ready spare; None when there is no live spare."""
        spare, self._spare = self._spare, None
        if spare is None:
            return None
        try:
            if spare.process.poll() is not None:
                raise OSError("the spare exited")
            socket.send_fds(spare.sock, [run_id.encode()], [lock_fd])
        except OSError:
            self._spare = spare
            self._drop_spare()
            return None
        spare.sock.close()
        return spare.process

    def _spawn(self, run_id: str) -> None:
        folder = self.store.folder(run_id)
        lock_fd = None
        try:
            # Held before the worker exists and inherited by it: while this lock is held
            # the run has a live worker (Store.worker_alive), whatever happens to this process.
            # A liveness probe may hold the lock for an instant: retry briefly.
            lock_fd = _locks.acquire(folder.lock_file, timeout=5.0)
            process = self._hand_to_spare(run_id, lock_fd)
            if process is not None:
                log.info("run %s: handed to the warm spare", run_id)
            else:
                process = self._cold_start(run_id, folder, lock_fd)
        except Exception as exc:
            log.exception("could not start the worker of run %s", run_id)
            self.store.set_status(
                run_id,
                RunStatus.FAILED,
                error=f"The worker process could not be started: {exc}.",
                expected=(RunStatus.RUNNING,),
            )
            return
        finally:
            if lock_fd is not None:
                _locks.release(lock_fd)
        self.store.set_pid(run_id, process.pid)
        self._workers[run_id] = _Worker(run_id, process, process.pid)
        log.info("run %s: worker pid %d", run_id, process.pid)

    def _cold_start(self, run_id: str, folder: RunFolder, lock_fd: int) -> subprocess.Popen:
        with open(folder.log_file, "ab") as log_file:
            return subprocess.Popen(
                [sys.executable, "-m", "compression.run.worker", str(self.store.root), run_id,
                 "--lock-fd", str(lock_fd)],
                stdin=subprocess.DEVNULL,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                pass_fds=(lock_fd,),
                start_new_session=True,
                env=self._worker_env(),
            )

    def _reap(self) -> None:
        for run_id, worker in list(self._workers.items()):
            code = worker.process.poll()
            if code is None:
                continue
            del self._workers[run_id]
            try:
                self._record_exit(worker, code)
            except CompressionError:  # the run was deleted meanwhile
                pass

    def _record_exit(self, worker: _Worker, code: int) -> None:
        run = self.store.get_run(worker.run_id)
        if run["status"] is not RunStatus.RUNNING:
            return  # the worker recorded its own result
        where = describe_position(run["progress"])
        if worker.terminated_at is not None:
            how = "SIGKILL" if worker.killed else "SIGTERM"
            status = RunStatus.CANCELLED
            error = (
                f"Cancelled {where}; the worker did not stop within {self.cancel_grace:g} s and was ended with {how}."
            )
        elif code < 0:
            status, name = RunStatus.FAILED, _signal_name(-code)
            if -code == signal.SIGKILL:
                error = f"The worker process was killed (signal {name}) {where}; it may have run out of memory."
            else:
                error = f"The worker process crashed (signal {name}) {where}."
        else:
            status = RunStatus.FAILED
            error = f"The worker process exited with code {code} {where} without reporting a result; see worker.log."
        if run["cancel_requested"] and status is RunStatus.FAILED:
            status = RunStatus.CANCELLED
        self.store.set_status(worker.run_id, status, error=error, expected=(RunStatus.RUNNING,))
        log.info("run %s: worker exited with %s: %s", worker.run_id, code, error)

    def _enforce_cancels(self) -> None:
        now = time.time()
        pending = [r for r in self.store.running_runs() if r["cancel_requested_at"] is not None]
        for run in pending:
            if now - run["cancel_requested_at"] < self.cancel_grace:
                continue
            worker = self._workers.get(run["id"]) or self._adopted.get(run["id"])
            if worker is None:
                # A worker started by an earlier runner: signal it only while its lock proves it alive.
                # A run without the lock (a CLI running in its own process) is not ours to kill.
                if not run["pid"] or not self.store.worker_lock_held(run["id"]):
                    continue
                worker = self._adopted[run["id"]] = _Worker(run["id"], None, run["pid"])
            if worker.terminated_at is None:
                log.info("run %s: cancel not honoured in %g s, sending SIGTERM", run["id"], self.cancel_grace)
                self._signal(worker, signal.SIGTERM)
                worker.terminated_at = time.monotonic()
            elif not worker.killed and time.monotonic() - worker.terminated_at >= self.kill_grace:
                log.info("run %s: still alive after SIGTERM, sending SIGKILL", run["id"])
                self._signal(worker, signal.SIGKILL)
                worker.killed = True
        running = {r["id"] for r in pending}
        for run_id in list(self._adopted):
            if run_id not in running:
                del self._adopted[run_id]

    @staticmethod
    def _signal(worker: _Worker, sig: signal.Signals) -> None:
        """Signal the worker's whole process group (it leads its own session)."""
        try:
            os.killpg(worker.pid, sig)
        except ProcessLookupError:
            pass
        except PermissionError:
            log.warning("not allowed to signal worker pid %d", worker.pid)


def _signal_name(number: int) -> str:
    try:
        return signal.Signals(number).name
    except ValueError:
        return str(number)


# ---------------------------------------------------------------- process-wide runner

_RUNNERS: dict[Path, Runner] = {}
_RUNNERS_LOCK = threading.Lock()


def get_runner(root: str | Path | None = None, max_concurrent: int | None = None) -> Runner:
    """The process's runner for a data directory, created on first use (thread-safe).

    Args:
        root: the data directory; None means ``$COMPRESSION_LAB_DATA`` or ``~/.compression-lab``.
        max_concurrent: used when the runner is created; None means
            ``$COMPRESSION_LAB_JOBS``, else 1.

    Raises:
        CompressionError: the store cannot be opened, or a bad job count.

    Usage::

        runner = get_runner()      # e.g. behind st.cache_resource
    """
    key = Path(root).expanduser().resolve() if root is not None else default_root().resolve()
    with _RUNNERS_LOCK:
        runner = _RUNNERS.get(key)
        if runner is None or not runner.alive:
            if max_concurrent is None:
                text = os.environ.get(JOBS_ENV, "1")
                try:
                    max_concurrent = int(text)
                except ValueError:
                    raise CompressionError(f"{JOBS_ENV} must be a whole number. Received: {text!r}") from None
            warm = os.environ.get(WARM_ENV, "1") not in ("", "0")
            runner = _RUNNERS[key] = Runner(Store(key), max_concurrent=max_concurrent, warm=warm)
        return runner
