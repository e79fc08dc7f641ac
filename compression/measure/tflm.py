"""Measure a `.tflite` under TensorFlow Lite Micro: does it run, how much arena (RAM) and flash it needs.

Uses the ``tflite-micro`` package's Python interpreter (TFLM's C++ runtime with
its reference kernels, built for this 64-bit host):

* **runnable** — TFLM allocates and invokes the model, or the one-sentence
  reason it refuses it (hybrid dynamic-range kernels, float16 weights, sparse
  tensors, an op TFLM lacks), taken from what TFLM prints on the C-level
  stderr (fd 2).
* **arena_bytes** — the smallest ``arena_size`` with which the interpreter
  allocates AND invokes: doubling from 1 KB, then bisection to the byte.
  Cross-checked against the total TFLM's RecordingMicroAllocator reports
  after an invoke (``print_allocations()``, captured from fd 2): the search
  figure is larger when prepare needs temporary memory that is freed again.
  Caveats: on a 32-bit microcontroller TFLM's own structs (pointers) are
  smaller, and optimized kernels (CMSIS-NN, ESP-NN) may ask for other scratch
  buffers than the reference kernels, so a device's arena differs by a little.
* **flash_bytes** — the `.tflite` length, the bytes linked as a C array. The
  TFLM runtime's own code is not included.
* **accuracy** on the test set (or a seeded sample of ``max_samples``) with
  the reference kernels, one invoke per sample, and **agreement** with the
  LiteRT predictions of the same file: a disagreement is a finding.

TFLM is C++ that trusts the flatbuffer: a malformed model can crash the
process (an operator input index out of range segfaults). Every measurement
therefore runs in a fresh ``spawn``-ed child process; a crash, a hang past
``timeout`` or any error there gives a result with ``runnable=None`` and the
reason (e.g. "the TFLM process was killed by SIGSEGV"), never an exception
for the variant or the run. (:func:`_run_in_child` is the one place that
starts the child: it can be swapped for a shared isolation helper.)

Usage::

    result = measure_tflm(tflite_bytes, x_test, y_test, litert_predictions=preds)
    result.runnable, result.arena_bytes, result.flash_bytes, result.accuracy
"""

from __future__ import annotations

import math
import multiprocessing
import os
import pickle
import re
import signal
import tempfile
import time
import traceback
from collections.abc import Callable
from typing import Any

import numpy as np

from ..errors import CompressionError
from ..results import TflmResult

__all__ = [
    "DEFAULT_MAX_SAMPLES",
    "DEFAULT_TIMEOUT_SECONDS",
    "MAX_ARENA_BYTES",
    "find_arena",
    "invokes_with_arena",
    "measure_tflm",
    "refusal_reason",
]

MAX_ARENA_BYTES = 256 * 1024 * 1024
"""The arena search stops here: 256 MB is far beyond any microcontroller (and is reserved, not touched)."""

DEFAULT_MAX_SAMPLES = 2000
"""Test samples run through TFLM per variant (a seeded sample when the test set is larger)."""

DEFAULT_TIMEOUT_SECONDS = 600.0
"""A TFLM measurement that takes longer is stopped (and reported as failed)."""

_FIRST_ARENA = 1024


# ---------------------------------------------------------------- public


def measure_tflm(
    tflite_bytes: bytes,
    x_test: np.ndarray | None = None,
    y_test: np.ndarray | None = None,
    litert_predictions: np.ndarray | None = None,
    *,
    max_samples: int | None = DEFAULT_MAX_SAMPLES,
    seed: int = 0,
    timeout: float = DEFAULT_TIMEOUT_SECONDS,
) -> TflmResult:
    """Measure a `.tflite` under TensorFlow Lite Micro, in a child process.

    Usage::

        r = measure_tflm(data, ds.x_test, ds.y_test, litert_predictions=m["predictions"])

    Args:
        tflite_bytes: the flatbuffer.
        x_test: float test inputs ``(N, *input_shape[1:])`` (quantized with the input
            tensor's scale and zero point for an integer model); None measures arena and
            flash only (the arena search then invokes on zeros).
        y_test: class labels ``(N,)``.
        litert_predictions: the classes LiteRT predicted for the same ``x_test``, for
            ``agreement``.
        max_samples: at most this many test samples are run (a seeded sample, sorted);
            None runs them all.
        seed: seed of that sample.
        timeout: seconds after which the child is stopped.

    Returns:
        A :class:`~compression.results.TflmResult`. It never raises for what TFLM does
        with the model: a refusal gives ``runnable=False``, a crash or timeout
        ``runnable=None``, each with ``reason``.

    Raises:
        CompressionError: mismatched test arrays or bad settings (the caller's error).
    """
    data = bytes(tflite_bytes)
    x, y, litert, indices = _sample(x_test, y_test, litert_predictions, max_samples, seed)
    if not (isinstance(timeout, (int, float)) and timeout > 0):
        raise CompressionError(f"timeout must be a positive number of seconds. Received: {timeout!r}")
    start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tflm-probes-") as folder:
        payload = {"tflite": data, "x": x, "y": y, "litert": litert, "probe_log": os.path.join(folder, "probes")}
        out = _measure_with_retries(payload, float(timeout))
    out.update(
        flash_bytes=len(data),
        test_size=None if x_test is None else len(np.asarray(x_test)),
        samples=out.get("samples"),
        seconds=time.perf_counter() - start,
    )
    if indices is not None and out.get("samples"):
        out.setdefault("notes", []).append(
            f"TFLM accuracy is over a seeded sample of {len(indices)} of the {out['test_size']} test samples "
            f"(max_samples={max_samples})."
        )
    return TflmResult.from_dict(out)


def invokes_with_arena(tflite_bytes: bytes, arena_size: int, sample: np.ndarray | None = None) -> bool:
    """True when TFLM allocates the model in ``arena_size`` bytes and invokes it, in THIS process.

    For bytes you trust (a crash here is this process's crash); :func:`measure_tflm`
    isolates. ``sample`` is one float input (zeros when None). TFLM's messages on
    fd 2 are swallowed.

    Usage::

        invokes_with_arena(data, result.arena_bytes)           # True
        invokes_with_arena(data, int(result.arena_bytes * 0.9)) # False
    """
    with _Fd2Log():
        return _try_arena(bytes(tflite_bytes), int(arena_size), sample)[0]


def find_arena(tflite_bytes: bytes, sample: np.ndarray | None = None, limit: int = MAX_ARENA_BYTES) -> int | None:
    """The smallest arena (bytes) that allocates and invokes, in THIS process; None if none up to ``limit``.

    Doubling from 1 KB until it works, then bisection to the byte (success is monotonic
    in the arena size: a larger arena only adds free space). For trusted bytes, as
    :func:`invokes_with_arena`.
    """
    with _Fd2Log():
        return _search_arena(bytes(tflite_bytes), sample, limit)


def refusal_reason(log: str, exc: BaseException | None = None) -> str:
    """One sentence saying why TFLM refused a model, from what it printed (and the exception).

    Usage::

        refusal_reason("Didn't find op for builtin opcode 'DENSIFY'\\n...")
        # "TFLite Micro has no DENSIFY op: sparse-encoded tensors (EXPERIMENTAL_SPARSITY) ..."
    """
    lines = [ln.strip() for ln in (log or "").splitlines() if ln.strip()]
    lines = [ln for ln in lines if not ln.startswith("[RecordingMicroAllocator]")]
    node = next((m for ln in lines if (m := re.match(r"Node (\w+) \(number (\d+)\) failed to (prepare|invoke)", ln))),
                None)
    where = f" (node {node.group(1)} number {node.group(2)})" if node else ""
    missing = next((m.group(1) for ln in lines if (m := re.search(r"Didn't find op for builtin opcode '(\w+)'", ln))),
                   None)
    detail = next((ln for ln in lines if not re.match(r"(Node \w+ \(number|Failed to get registration)", ln)), "")
    detail = re.sub(r"^tensorflow/lite/micro/\S+:\d+ ", "", detail).rstrip(".")
    if missing == "DENSIFY":
        return ("TFLite Micro has no DENSIFY op: sparse-encoded tensors (EXPERIMENTAL_SPARSITY) cannot run; "
                "convert without sparse encoding.")
    if missing:
        return f"TFLite Micro has no {missing} op, so this model cannot run under it."
    if re.search(r"Input type: FLOAT32 with filter type: INT8", detail):
        return (f"TFLite Micro has no hybrid dynamic-range kernels (float activations with int8 weights): "
                f"\"{detail}\"{where}; use full-integer int8 or float32.")
    if node and node.group(1) == "DEQUANTIZE" and "kTfLiteInt8" in detail:
        return ("TFLite Micro cannot dequantize float16 weights (DEQUANTIZE takes int8/int16/uint8 only); "
                "use float32 or full-integer int8.")
    if detail:
        return f"TFLite Micro refuses this model{where}: \"{detail}\"."
    text = _one_line(exc) if exc is not None else "no message"
    return f"TFLite Micro refuses this model{where}: {text}."


# ---------------------------------------------------------------- the measurement (in the child)


def _measure_here(payload: dict) -> dict:
    """The whole measurement in this process (the child's body); returns a plain dict."""
    from tflite_micro.python.tflite_micro import runtime

    data, x, y, litert = payload["tflite"], payload["x"], payload["y"], payload["litert"]
    notes: list[str] = []
    with _Fd2Log() as log:
        first = None if x is None else x[0]
        mark = log.mark()
        try:
            ok, exc = _try_arena(data, MAX_ARENA_BYTES, first)
        except _BadInput as bad:
            return {"runnable": None, "reason": str(bad)}
        if not ok:
            if isinstance(exc, RuntimeError):
                return {"runnable": False, "reason": refusal_reason(log.since(mark), exc)}
            return {"runnable": False, "reason": f"TFLite Micro cannot load this file: {_one_line(exc)}."}
        arena = _search_arena(data, first, MAX_ARENA_BYTES, low=payload.get("fails_at") or 0,
                              high=payload.get("works_at"), probe_log=payload.get("probe_log"))
        if arena is None:  # not monotonic after all: keep the figure that worked
            arena = MAX_ARENA_BYTES
            notes.append("The arena search did not converge; the arena figure is the search limit.")

        interpreter = runtime.Interpreter.from_bytes(data, arena_size=arena)
        total = _allocator_total(interpreter, first, log)
        if total is not None and total != arena:
            notes.append(
                f"TFLM's RecordingMicroAllocator reports {total} B in use after an invoke; the smallest arena "
                f"that allocates and invokes is {arena} B"
                + (" (prepare needs temporary memory that is released again)." if arena > total else ".")
            )
        out: dict[str, Any] = {"runnable": True, "reason": None, "arena_bytes": arena, "allocator_total": total}
        if x is not None and len(x):
            start = time.perf_counter()
            predictions = _predict(interpreter, x)
            out["eval_seconds"] = time.perf_counter() - start
            out["samples"] = len(predictions)
            if y is not None:
                out["accuracy"] = float(np.mean(predictions == y))
            if litert is not None:
                same = predictions == litert
                out["agreement"] = float(np.mean(same))
                if not same.all():
                    notes.append(
                        f"TFLM and LiteRT predict different classes for {int((~same).sum())} of {len(same)} "
                        "samples of the same .tflite (different kernels and rounding)."
                    )
        out["notes"] = notes
        return out


# TFLM's allocator can crash (SIGSEGV: "available 4294967292", an unsigned underflow) instead of refusing an
# arena that is too small, on models it runs fine with a larger one (a tiny MobileNetV2 block at 2 KB, an LSTM
# at 2 KB). A crash during the arena search therefore counts as "too small" and the search resumes in a new
# child from what the probes logged, at most this many times.
_SEARCH_CRASHES = 8


def _measure_with_retries(payload: dict, timeout: float) -> dict:
    """:func:`_measure_here` in children; a crash in the middle of an arena-search probe resumes the search."""
    crashed: list[int] = []
    while True:
        try:
            out = _run_in_child(_measure_here, payload, timeout=timeout)
            break
        except _ChildFailed as exc:
            fails, works, pending = _read_probes(payload["probe_log"])
            if not exc.crashed or pending is None or len(crashed) >= _SEARCH_CRASHES:
                return {"runnable": None, "reason": f"The TFLite Micro measurement failed: {exc}."}
            crashed.append(pending)
            payload = {**payload, "fails_at": max([pending, *fails]), "works_at": min(works, default=None)}
    if crashed:
        sizes = ", ".join(f"{n:,}" for n in sorted(crashed))
        out.setdefault("notes", []).append(
            f"TFLite Micro crashed (SIGSEGV) instead of refusing too small an arena ({sizes} B) during the arena "
            "search; those sizes count as too small (the model runs with the arena reported)."
        )
    return out


def _log_probe(path: str | None, text: str) -> None:
    if path:
        with open(path, "a", encoding="ascii") as fh:  # closed at once: the text survives a crash that follows
            fh.write(text)


def _read_probes(path: str) -> tuple[list[int], list[int], int | None]:
    """(sizes that failed, sizes that worked, the size being probed when the child died or None)."""
    fails, works, pending = [], [], None
    try:
        with open(path, encoding="ascii") as fh:
            text = fh.read()
    except OSError:
        return fails, works, None
    for entry in text.split(";"):
        size, _, verdict = entry.strip().partition(" ")
        if not size.isdigit():
            continue
        if verdict == "ok":
            works.append(int(size))
        elif verdict == "fail":
            fails.append(int(size))
        else:
            pending = int(size)
    return fails, works, pending


class _BadInput(Exception):
    """The test samples do not fit the model's input."""


def _input_array(interpreter, sample: np.ndarray | None) -> np.ndarray:
    """One invoke's input: the float sample reshaped to the input tensor, quantized if integer."""
    detail = interpreter.get_input_details(0)
    shape = [int(d) for d in detail["shape"]]
    dtype = np.dtype(detail["dtype"])
    if sample is None:
        return np.zeros(shape, dtype)
    per_sample = math.prod(shape[1:]) if len(shape) > 1 else 1
    flat = np.asarray(sample, np.float32).reshape(-1)
    if flat.size != per_sample * shape[0]:
        if flat.size != per_sample:
            raise _BadInput(f"The test samples have {flat.size} values but the TFLM input takes {shape}.")
        flat = np.tile(flat, shape[0])  # a fixed batch > 1: repeat the sample
    if np.issubdtype(dtype, np.integer):
        scales = detail["quantization_parameters"]["scales"]
        zeros = detail["quantization_parameters"]["zero_points"]
        if len(scales):
            info = np.iinfo(dtype)
            flat = np.clip(np.round(flat / float(scales[0]) + int(zeros[0])), info.min, info.max)
    return flat.astype(dtype).reshape(shape)


def _try_arena(data: bytes, arena: int, sample) -> tuple[bool, BaseException | None]:
    """Construct (allocate) with ``arena`` bytes and invoke once; (worked, the exception)."""
    from tflite_micro.python.tflite_micro import runtime

    try:
        interpreter = runtime.Interpreter.from_bytes(data, arena_size=int(arena))
    except Exception as exc:  # RuntimeError from TFLM; struct.error / IndexError from the Python-side parse
        return False, exc
    inputs = _input_array(interpreter, sample)
    try:
        interpreter.set_input(inputs, 0)
        interpreter.invoke()
    except RuntimeError as exc:
        return False, exc
    return True, None


def _search_arena(data: bytes, sample, limit: int, low: int = 0, high: int | None = None,
                  probe_log: str | None = None) -> int | None:
    """Doubling then bisection: the smallest arena that works, or None up to ``limit``.

    ``low`` is known to fail and ``high`` (when given) to work, from an earlier child that crashed; each probe
    is logged to ``probe_log`` ("size" before, "ok"/"fail" after) so that a crash can be resumed.
    """

    def works(size: int) -> bool:
        _log_probe(probe_log, f"{size}")
        ok = _try_arena(data, size, sample)[0]
        _log_probe(probe_log, f" {'ok' if ok else 'fail'};")
        return ok

    if high is None:
        high = min(low * 2, limit) if low else _FIRST_ARENA  # low: known to fail (0 trivially); high: candidate
        while not works(high):
            if high >= limit:
                return None
            low, high = high, min(high * 2, limit)
    while high - low > 1:
        middle = (low + high) // 2
        if works(middle):
            high = middle
        else:
            low = middle
    return high


def _allocator_total(interpreter, sample, log: _Fd2Log) -> int | None:
    """The RecordingMicroAllocator's "Arena allocation total" after one invoke, read from fd 2."""
    try:
        interpreter.set_input(_input_array(interpreter, sample), 0)
        interpreter.invoke()
        mark = log.mark()
        interpreter.print_allocations()
    except RuntimeError:
        return None
    found = re.search(r"Arena allocation total (\d+) bytes", log.since(mark))
    return int(found.group(1)) if found else None


def _predict(interpreter, x: np.ndarray) -> np.ndarray:
    """Class per sample, one invoke each, state reset before each (recurrent models keep state)."""
    predictions = np.empty(len(x), dtype=np.int64)
    for i in range(len(x)):
        interpreter.reset()
        interpreter.set_input(_input_array(interpreter, x[i]), 0)
        interpreter.invoke()
        # argmax is unaffected by a positive-scale dequantization: int8 scores work as they are.
        predictions[i] = int(np.asarray(interpreter.get_output(0)).reshape(-1).argmax())
    return predictions


class _Fd2Log:
    """Sends fd 1 and fd 2 (where TFLM's C++ prints) to a temporary file while open; read back by offset."""

    def __enter__(self) -> _Fd2Log:
        self._file = tempfile.TemporaryFile()
        self._fd = self._file.fileno()
        self._saved = [os.dup(1), os.dup(2)]
        for target in (1, 2):
            os.dup2(self._fd, target)
        return self

    def __exit__(self, *exc) -> None:
        for target, saved in zip((1, 2), self._saved, strict=True):
            os.dup2(saved, target)
            os.close(saved)
        self._file.close()

    def mark(self) -> int:
        return os.lseek(self._fd, 0, os.SEEK_END)

    def since(self, mark: int) -> str:
        end = os.lseek(self._fd, 0, os.SEEK_END)
        return os.pread(self._fd, max(0, end - mark), mark).decode("utf-8", "replace")


# ---------------------------------------------------------------- the child process


class _ChildFailed(Exception):
    """The child crashed, hung or raised: the message is the reason (no trailing period)."""

    def __init__(self, message: str, crashed: bool = False) -> None:
        super().__init__(message)
        self.crashed = crashed  # killed by a signal (a native crash), not a timeout or a Python exception


def _run_in_child(function: Callable[[Any], Any], payload: Any, *, timeout: float) -> Any:
    """``function(payload)`` in a fresh spawned process; its return value, or :class:`_ChildFailed`.

    ``spawn`` (not fork): the parent may hold TensorFlow's threads. The payload goes
    through a temporary file, not the spawn pipe: multiprocessing writes a process's
    arguments while still holding the pipe's read end, so a child that dies before
    reading a large payload would block the parent for ever. The child is killed after
    ``timeout`` seconds. This is the one place to swap for a shared isolation helper.
    """
    context = multiprocessing.get_context("spawn")
    with tempfile.TemporaryDirectory(prefix="tflm-") as folder:
        path = os.path.join(folder, "payload.pickle")
        with open(path, "wb") as fh:  # our own data for our own child (never a user's file)
            pickle.dump((function, payload), fh, protocol=pickle.HIGHEST_PROTOCOL)
        receiver, sender = context.Pipe(duplex=False)
        process = context.Process(target=_child_main, args=(sender, path), name="tflm-measure", daemon=True)
        try:
            process.start()
        except (AssertionError, OSError) as exc:  # e.g. called from a daemonic process, or out of processes
            raise _ChildFailed(f"the TFLM process could not start ({_one_line(exc)})") from exc
        finally:
            sender.close()
        try:
            if not receiver.poll(timeout):
                process.kill()
                raise _ChildFailed(f"it took longer than {timeout:.0f} s and was stopped")
            try:
                ok, value = receiver.recv()
            except EOFError:  # the child died before it answered
                process.join(30)
                code = process.exitcode
                raise _ChildFailed(_exit_reason(code), crashed=code is not None and code < 0) from None
        finally:
            receiver.close()
            process.join(30)
            if process.is_alive():
                process.kill()
                process.join(5)
    if not ok:
        raise _ChildFailed(value)
    return value


def _child_main(sender, path: str) -> None:
    try:
        with open(path, "rb") as fh:
            function, payload = pickle.load(fh)  # noqa: S301 - written by our parent a moment ago
        result = (True, function(payload))
    except BaseException as exc:  # the parent gets one line; the traceback stays in this child's log
        traceback.print_exc()
        result = (False, f"{type(exc).__name__}: {_one_line(exc)}")
    sender.send(result)
    sender.close()


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            name = signal.Signals(-code).name
        except ValueError:
            name = f"signal {-code}"
        return f"the TFLM process was killed by {name} (TFLite Micro crashed on this model)"
    return f"the TFLM process exited with code {code} without an answer"


# ---------------------------------------------------------------- helpers


def _sample(x_test, y_test, litert_predictions, max_samples, seed):
    """Validated arrays, cut to a seeded sorted sample of ``max_samples``; (x, y, litert, indices or None)."""
    if max_samples is not None and (isinstance(max_samples, bool) or not isinstance(max_samples, (int, np.integer))
                                    or max_samples < 1):
        raise CompressionError(f"max_samples must be a whole number >= 1 or None. Received: {max_samples!r}")
    if x_test is None:
        return None, None, None, None
    x = np.ascontiguousarray(x_test, dtype=np.float32)
    if x.ndim < 2 or len(x) == 0:
        raise CompressionError(f"x_test must be a non-empty array of samples. Received shape {x.shape}.")
    arrays = []
    for what, values in (("y_test", y_test), ("litert_predictions", litert_predictions)):
        if values is None:
            arrays.append(None)
            continue
        values = np.asarray(values).reshape(-1).astype(np.int64)
        if len(values) != len(x):
            raise CompressionError(f"{what} must hold one class per sample: {len(x)} samples, got {len(values)}.")
        arrays.append(values)
    y, litert = arrays
    indices = None
    if max_samples is not None and len(x) > max_samples:
        indices = np.sort(np.random.default_rng(seed).choice(len(x), size=int(max_samples), replace=False))
        x = x[indices]
        y = None if y is None else y[indices]
        litert = None if litert is None else litert[indices]
    return x, y, litert, indices


def _one_line(exc: BaseException) -> str:
    text = re.sub(r"\s+", " ", str(exc)).strip().rstrip(".")
    return text or type(exc).__name__
