"""The one file-lock helper: two descriptors, two processes, a killed holder."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest

from compression import _locks

HOLD = """
import sys
from compression import _locks
fd = _locks.acquire(sys.argv[1])
print("locked", flush=True)
sys.stdin.read()
"""


def _holder(path):
    """A child process holding the lock on ``path`` until its stdin closes (returned once it holds it)."""
    holder = subprocess.Popen([sys.executable, "-c", HOLD, str(path)], stdin=subprocess.PIPE,
                              stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    return holder


def test_no_lock_file_is_none(tmp_path):
    assert _locks.is_held(tmp_path / "worker.lock") is None


def test_two_descriptors_exclude_each_other(tmp_path):
    path = tmp_path / "worker.lock"
    fd = _locks.acquire(path)
    try:
        assert _locks.is_held(path) is True
        with pytest.raises(BlockingIOError):
            _locks.acquire(path)
        started = time.monotonic()
        with pytest.raises(BlockingIOError):
            _locks.acquire(path, timeout=0.05)
        assert time.monotonic() - started >= 0.05  # it retried until the deadline
    finally:
        _locks.release(fd)
    assert _locks.is_held(path) is False
    _locks.release(_locks.acquire(path))  # free again


def test_a_lock_held_by_another_process_dies_with_it(tmp_path):
    path = tmp_path / "worker.lock"
    holder = _holder(path)
    try:
        assert _locks.is_held(path) is True
        with pytest.raises(BlockingIOError):
            _locks.acquire(path, timeout=0)
    finally:
        holder.kill()
        holder.wait()
    assert _locks.is_held(path) is False
    fd = _locks.acquire(path, timeout=None)
    _locks.release(fd)


def test_waiting_acquire_gets_the_lock_once_released(tmp_path):
    path = tmp_path / "worker.lock"
    holder = _holder(path)
    try:
        holder.stdin.close()  # the holder exits, releasing the lock while we wait
        fd = _locks.acquire(path, timeout=30)
        assert _locks.is_held(path) is True
        _locks.release(fd)
    finally:
        holder.kill()
        holder.wait()
