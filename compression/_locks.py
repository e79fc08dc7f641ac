"""The one file-lock helper: an exclusive ``flock`` on a lock file.

The runner takes a run's lock and hands the descriptor to its worker process
(``pass_fds``), the CLI and the worker take it themselves, and the store asks
whether anyone holds it to tell a live run from an interrupted one. The lock
belongs to the open file description, so it lives exactly as long as some
process keeps the descriptor open, and dies with a killed worker.

Hand-written on ``fcntl`` rather than a library (``filelock``): the callers
need the raw descriptor to pass to a child process and a non-blocking
"is it held?" probe, which ``filelock`` does not expose.

Usage::

    fd = acquire(RunFolder(path).lock_file, timeout=5)
    try:
        ...
    finally:
        release(fd)
"""

from __future__ import annotations

import errno
import fcntl
import os
import time
from pathlib import Path

_BUSY = (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES)
_RETRY_SECONDS = 0.01


def acquire(path: str | Path, *, timeout: float | None = 0.0) -> int:
    """Take an exclusive lock on ``path`` (created if missing) and return its descriptor.

    Args:
        path: the lock file.
        timeout: seconds to keep retrying while another holder has it; 0 tries
            once, None waits as long as it takes.

    Returns:
        An open descriptor holding the lock; give it to :func:`release`.

    Raises:
        BlockingIOError: someone else still holds the lock when ``timeout`` ends.
        OSError: the lock file cannot be opened.
    """
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    if timeout is None:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
        except BaseException:
            os.close(fd)
            raise
        return fd
    deadline = time.monotonic() + timeout
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return fd
        except OSError as exc:
            if exc.errno not in _BUSY or time.monotonic() >= deadline:
                os.close(fd)
                if exc.errno in _BUSY:
                    raise BlockingIOError(exc.errno, f"{path} is locked by another process") from None
                raise
            time.sleep(_RETRY_SECONDS)


def release(fd: int) -> None:
    """Give up a lock taken by :func:`acquire` (closing the descriptor releases it)."""
    os.close(fd)


def is_held(path: str | Path) -> bool | None:
    """Whether some open descriptor holds the lock on ``path``; None if there is no lock file.

    A probe takes the lock for an instant when it is free, which is why
    :func:`acquire` callers that race a probe should pass a small ``timeout``.
    """
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in _BUSY:
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)
