"""Functions the isolation tests run in the child process (module-level, so they pickle by reference)."""

from __future__ import annotations

import os
import signal

from compression.errors import CompressionError


def pid_and_double(x: int) -> tuple[int, int]:
    return os.getpid(), 2 * x


def segfault() -> None:
    """Die of a real SIGSEGV, as TFLite's calibrator does."""
    os.kill(os.getpid(), signal.SIGSEGV)


def sigkill() -> None:
    os.kill(os.getpid(), signal.SIGKILL)


def refuse() -> None:
    raise CompressionError("The child refused: one sentence.")


def bug() -> None:
    raise KeyError("missing thing")


def noisy(text: str) -> str:
    """Write to the C-level stdout and stderr, as TensorFlow's C++ logging does."""
    os.write(1, f"fd1 {text}\n".encode())
    os.write(2, f"fd2 {text}\n".encode())
    return text
