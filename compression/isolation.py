"""Run a function in a child process, so that a native crash fails that call and not the whole run.

TensorFlow Lite's converter and calibrator are C++: a bug there (e.g. the
int8 calibration of a GRU, which segfaults in ``calibrator.py
_feed_tensors`` with tensorflow 2.21) kills the process that called it. Every
conversion therefore runs in a child process of a
:class:`concurrent.futures.ProcessPoolExecutor` (one worker, the ``spawn``
start method). The pool is kept warm for the life of the calling process
(TensorFlow is imported once in the child), and after ``max_tasks_per_child``
calls the pool replaces the child (counted here: the executor's own option can hang
on Python 3.11, CPython gh-115634), which also bounds
``TFLiteConverter.convert()``'s per-call memory leak (tensorflow #122598).

When the child dies, the call raises :class:`NativeCrash` (a
:class:`~compression.errors.CompressionError`) with one sentence, e.g.
"TFLite's int8 calibration crashed (SIGSEGV).", the pool is rebuilt for the
next call, and the child's last words (``faulthandler``'s Python stack) go to
the log. A Python exception in the child is raised again in the caller: a
``CompressionError`` as itself, anything else as :class:`ChildError` with the
original type name and message.

The child's stdout and stderr (the converter's C++ chatter) go to a
per-call log file, forwarded to this module's logger at DEBUG level.

Usage::

    from compression.isolation import shared_pool
    data = shared_pool().call(convert_exported, export_dir, "int8", what="TFLite's int8 calibration")
"""

from __future__ import annotations

import atexit
import faulthandler
import logging
import multiprocessing
import os
import re
import shutil
import sys
import tempfile
import threading
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

from .errors import CompressionError

log = logging.getLogger("compression.isolation")

DEFAULT_MAX_TASKS_PER_CHILD = 16

# faulthandler's first line names the signal in words; map them back to the signal's name.
_FATAL_SIGNALS = {
    "Segmentation fault": "SIGSEGV",
    "Bus error": "SIGBUS",
    "Aborted": "SIGABRT",
    "Floating point exception": "SIGFPE",
    "Illegal instruction": "SIGILL",
}
_FATAL = re.compile(r"Fatal Python error: ([A-Za-z ]+)")


class NativeCrash(CompressionError):
    """The child process died (a signal, or killed) while running the call."""


class ChildError(Exception):
    """A Python exception raised in the child that is not a CompressionError (type name kept in ``kind``)."""

    def __init__(self, kind: str, message: str):
        super().__init__(message)
        self.kind = kind

    def __reduce__(self):
        return type(self), (self.kind, str(self))


def _exit_with_parent(parent: int, interval: float = 1.0) -> None:
    """End this child when its parent is gone (killed workers must not leave TensorFlow children behind).

    A thread polling ``getppid`` rather than ``PR_SET_PDEATHSIG``: the latter fires when the *thread* that
    spawned the child ends, and the pool spawns from short-lived threads (Streamlit's script threads).
    """
    import time

    while os.getppid() == parent:
        time.sleep(interval)
    os._exit(1)


def _child_initializer(parent: int, preload: tuple[str, ...]) -> None:
    """Runs once in each new child: import (or call, for "module:function") what every call needs.

    ``parent`` is the pid that created the pool, passed in rather than read here: a spawned child imports
    its parent's main module before this runs (seconds, with TensorFlow), and a parent killed meanwhile
    would leave ``getppid()`` already pointing at init, so the watchdog would wait on the wrong pid.
    """
    if os.getppid() != parent:
        os._exit(1)
    threading.Thread(target=_exit_with_parent, args=(parent,), daemon=True,
                     name="exit-with-parent").start()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    import importlib

    for name in preload:
        module_name, _, function = name.partition(":")
        module = importlib.import_module(module_name)
        if function:
            getattr(module, function)()


def _run_logged(log_path: str, fn: Callable[..., Any], args: tuple, kwargs: dict) -> tuple[Any, str]:
    """Run ``fn`` in the child with fd 1/2 and faulthandler writing to ``log_path``; return (result, log text)."""
    sys.stdout.flush()
    sys.stderr.flush()
    with open(log_path, "w+b", buffering=0) as log_file:
        saved = os.dup(1), os.dup(2)
        os.dup2(log_file.fileno(), 1)
        os.dup2(log_file.fileno(), 2)
        faulthandler.enable(file=log_file, all_threads=False)
        try:
            result = fn(*args, **kwargs)
        except CompressionError:
            raise
        except Exception as exc:  # noqa: BLE001 - TF exceptions may not pickle; keep type name and message
            raise ChildError(type(exc).__name__, str(exc)) from None
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            faulthandler.disable()
            for fd, copy in zip((1, 2), saved, strict=True):
                os.dup2(copy, fd)
                os.close(copy)
        log_file.seek(0)
        return result, log_file.read().decode("utf-8", "replace")


def _noop() -> None:
    return None


def _last_lines(text: str, lines: int = 40) -> str:
    """The end of a child's log without faulthandler's list of extension modules."""
    text = text.split("\nExtension modules:", 1)[0]
    return "\n".join(text.rstrip().splitlines()[-lines:])


def crash_reason(log_text: str) -> str:
    """The signal a child died of, from faulthandler's report ("SIGSEGV"), or "" when it left none."""
    match = _FATAL.search(log_text)
    if not match:
        return ""
    words = match.group(1).strip()
    return _FATAL_SIGNALS.get(words, words)


class IsolatedPool:
    """One warm child process that runs calls one at a time and survives their crashes.

    Usage::

        with IsolatedPool(preload=("tensorflow",)) as pool:
            data = pool.call(convert_exported, path, "int8", what="TFLite's int8 calibration")

    Args:
        max_tasks_per_child: calls after which the child is replaced by a fresh one.
        preload: modules the child imports when it starts (so the first call does not pay for them);
            "module:function" also calls that function (e.g. "compression._tf:tf", TensorFlow's quiet import).
    """

    def __init__(self, max_tasks_per_child: int = DEFAULT_MAX_TASKS_PER_CHILD, preload: tuple[str, ...] = ()):
        if isinstance(max_tasks_per_child, bool) or not isinstance(max_tasks_per_child, int) \
                or max_tasks_per_child < 1:
            raise ValueError(f"max_tasks_per_child must be a whole number >= 1. Received: {max_tasks_per_child!r}")
        self.max_tasks_per_child = max_tasks_per_child
        self.preload = tuple(preload)
        self._executor: ProcessPoolExecutor | None = None
        self._lock = threading.Lock()
        self._logs = Path(tempfile.mkdtemp(prefix="compression-isolation-"))
        self.crashes = 0
        self._calls = 0  # calls the current child has run

    def _pool(self) -> ProcessPoolExecutor:
        # The child is replaced by counting calls here, not with ProcessPoolExecutor(max_tasks_per_child=...):
        # on Python 3.11 that executor can stop replacing its exited worker and leave work queued forever
        # (CPython gh-115634, fixed only in later releases); a test's conversion hung 14 minutes on it.
        if self._executor is None:
            self._calls = 0
            self._executor = ProcessPoolExecutor(
                max_workers=1,
                mp_context=multiprocessing.get_context("spawn"),
                initializer=_child_initializer,
                initargs=(os.getpid(), self.preload),
            )
        return self._executor

    def warm(self) -> None:
        """Start the child now (without waiting), so that it imports ``preload`` while the caller works."""
        with self._lock:
            self._pool().submit(_noop)

    def call(self, fn: Callable[..., Any], *args: Any, what: str = "The isolated call", **kwargs: Any) -> Any:
        """Run ``fn(*args, **kwargs)`` in the child and return its result.

        ``fn`` and its arguments must be picklable (a module-level function).

        Args:
            what: how the sentence names the call if the child crashes, e.g. "TFLite's int8 calibration".

        Raises:
            NativeCrash: the child died during the call ("<what> crashed (SIGSEGV).").
            CompressionError: raised by ``fn`` in the child.
            ChildError: any other exception raised by ``fn`` (its type name in ``kind``).
        """
        with self._lock:
            log_path = self._logs / f"call-{os.getpid()}-{threading.get_ident()}.log"
            try:
                future = self._pool().submit(_run_logged, str(log_path), fn, args, kwargs)
                result, text = future.result()
            except BrokenProcessPool:
                self._discard()
                self.crashes += 1
                last_words = log_path.read_text("utf-8", "replace") if log_path.exists() else ""
                signal_name = crash_reason(last_words)
                # Not a warning: the sentence reaches the user through the result; the stack is for the log.
                log.info("%s: the child process died%s; its last output:\n%s", what,
                         f" of {signal_name}" if signal_name else "", _last_lines(last_words))
                how = f"crashed ({signal_name})" if signal_name else \
                    "ended abruptly (the process was killed, e.g. out of memory)"
                raise NativeCrash(f"{what} {how}.") from None
            finally:
                log_path.unlink(missing_ok=True)
                self._calls += 1
                if self._calls >= self.max_tasks_per_child and self._executor is not None:
                    self._executor.shutdown(wait=False)  # the child exits by itself; the next call starts another
                    self._executor = None
        if text.strip():
            log.debug("%s: child output:\n%s", what, text.rstrip())
        return result

    def abandon(self) -> None:
        """For a process about to ``os._exit``: kill the child (idle or not) and remove the log folder, no waiting."""
        executor, self._executor = self._executor, None
        for pid in list(getattr(executor, "_processes", None) or {}):
            try:
                os.kill(pid, 9)
            except (ProcessLookupError, PermissionError):
                pass
        shutil.rmtree(self._logs, ignore_errors=True)

    def _discard(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def close(self) -> None:
        """Stop the child (waits for a running call) and remove the log folder."""
        with self._lock:
            if self._executor is not None:
                self._executor.shutdown(wait=True, cancel_futures=True)
                self._executor = None
        shutil.rmtree(self._logs, ignore_errors=True)

    def __enter__(self) -> IsolatedPool:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()


_shared: IsolatedPool | None = None
_shared_lock = threading.Lock()


def abandon_shared_pool() -> None:
    """:meth:`IsolatedPool.abandon` the process-wide pool, if one was started."""
    if _shared is not None:
        _shared.abandon()


def shared_pool() -> IsolatedPool:
    """The process-wide pool (created on first use, TensorFlow preloaded, closed at exit)."""
    global _shared
    with _shared_lock:
        if _shared is None:
            _shared = IsolatedPool(preload=("compression._tf:tf",))
            atexit.register(_shared.close)
        return _shared
