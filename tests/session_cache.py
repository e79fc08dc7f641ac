"""Things the tests make once per test session, also under pytest-xdist (``make test`` runs two workers).

The workers of one session share the parent of their base temporary folders; the first worker to need a
thing makes it there under an flock (stdlib ``fcntl``: the suite runs on Linux) and the others wait for it
and read it. Only for things tests read and never change.
"""

from __future__ import annotations

import fcntl
import os
from collections.abc import Callable
from pathlib import Path


def shared_folder(tmp_path_factory, name: str, fill: Callable[[Path], None]) -> Path:
    """A folder ``fill(folder)`` filled once in this test session (once per process without xdist)."""
    if not os.environ.get("PYTEST_XDIST_WORKER"):
        folder = tmp_path_factory.mktemp(name)
        fill(folder)
        return folder
    folder = tmp_path_factory.getbasetemp().parent / name
    folder.mkdir(exist_ok=True)
    done = folder / ".filled"
    with open(folder / ".lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # released when the file closes
        if not done.exists():
            fill(folder)
            done.touch()
    return folder
