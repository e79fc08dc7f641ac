"""Measure a TFLite model in the LiteRT interpreter: accuracy, agreement, latency, throughput.

Accuracy is computed over the whole test set in a few batched invokes (the
input is resized to a batch); only a model whose batch is fixed in the file
(recurrent models, converted with a static batch of 1) is evaluated in
invokes of that fixed size. The accuracy pass uses every usable core
(``eval_threads``; the predictions do not depend on it). Latency and
throughput use the configured ``threads``; latency is timed on a separate
interpreter with a batch-1 real test sample: one warm-up invoke, then ``time.perf_counter()``
around each ``invoke()`` only.

Recurrent ops (e.g. UNIDIRECTIONAL_SEQUENCE_LSTM) keep their state in
variable tensors that carry over from one invoke to the next; every invoke
here starts from reset variables (``reset_all_variables()``, outside the
timed region), as the Keras model starts each sequence from zeros.

XNNPACK is LiteRT's default CPU delegate. Whether it took the model is read
from the interpreter after ``allocate_tensors()``: a delegated model gains
DELEGATE nodes (one per partition of ops it runs), and the ops outside every
partition are named in the note. When XNNPACK refuses a model (e.g.
dynamic-range + sparse-encoded kernels), the interpreter is rebuilt without
default delegates and the reason is recorded.

Usage::

    result = measure_tflite(tflite_bytes, dataset.x_test, dataset.y_test, threads=1)
    result["accuracy"], result["latency_ms"]["median"], result["delegate"]
"""

from __future__ import annotations

import contextlib
import os
import re
import time
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

import numpy as np

from .. import _tf
from ..errors import CompressionError, one_line
from ..tflite.convert import tflite_ops
from ..validation import whole_number

EVAL_BATCH = 512
"""Largest batch the accuracy pass resizes a dynamic-batch input to."""

THROUGHPUT_MIN_SECONDS = 0.1
"""Throughput keeps invoking until this much time is measured (and at least 3 invokes). Measured on digits, 5
repeats: 0.1 s spreads 1.9 % (float32) and 5.0 % (int8), 0.25 s 5.1 % and 3.5 %; the run pauses its fine-tune
meanwhile (recipes.TrainingGate), so a shorter timing costs the run less."""

_THROUGHPUT_MIN_RUNS = 3
_THROUGHPUT_MAX_RUNS = 1000
_NO_OPS_DELEGATED = "XNNPACK delegated none of this model's operators, so it runs on LiteRT's builtin kernels."


def measure_tflite(
    tflite_bytes: bytes,
    x_test: np.ndarray,
    y_test: np.ndarray,
    reference_predictions: np.ndarray | None = None,
    threads: int = 1,
    latency_runs: int = 200,
    throughput_batch: int = 256,
    warmup: int = 1,
    eval_threads: int | None = None,
    quiet: Callable[[], AbstractContextManager] | None = None,
) -> dict[str, Any]:
    """Run a TFLite classifier on a test set and time it.

    Usage::

        m = measure_tflite(data, x_test, y_test, reference_predictions=float_preds, threads=1)

    Args:
        tflite_bytes: a ``.tflite`` flatbuffer with one input and a
            ``(batch, classes)`` output (logits or probabilities).
        x_test: float test inputs ``(N, *input_shape[1:])``; quantized with
            the input tensor's scale and zero point when the model takes
            integers.
        y_test: integer class labels ``(N,)``.
        reference_predictions: predicted classes of a reference model (e.g.
            the float baseline) on the same samples, for ``agreement``.
        threads: interpreter threads (reported with the latency).
        latency_runs: timed batch-1 invokes (after ``warmup`` untimed ones).
        throughput_batch: batch size of the throughput measurement.
        warmup: untimed invokes before the latency runs.
        eval_threads: interpreter threads of the accuracy pass; None uses
            every core this process may run on. The predictions do not depend
            on it; latency and throughput always run with ``threads``.

    Returns:
        A dict with ``accuracy``; ``agreement`` (fraction of samples whose
        class equals ``reference_predictions``, None without them);
        ``predictions`` (int64 class per sample); ``latency_ms``
        (``median, p90, mean, std, runs, threads``); ``throughput_sps``
        (samples/s in batches of ``throughput_batch``); ``throughput_batch``
        (the batch actually used: a fixed-batch model keeps its own);
        ``input_dtype``, ``output_dtype`` (e.g. "int8"); ``delegate``
        ("XNNPACK" or "none"); ``delegate_note`` (why "none"; for a partly
        delegated model, the ops left on the builtin kernels; else "");
        ``ops``; ``flags`` (:func:`prediction_flags`: near chance, one class,
        meaningless agreement); ``top_class_share`` (share of the most
        predicted class); ``eval_seconds`` (the accuracy pass, with ``eval_threads``); ``batch_size_used``
        (batch of the accuracy pass; 1 for a static batch-1 model evaluated
        sample by sample).
        quiet: makes the timings (throughput, latency) inside ``with quiet():``, e.g. a run's
            :class:`~compression.run.recipe.TrainingGate` pausing its fine-tune meanwhile: a timing taken while
            training shares the CPU is the training's, not the model's.

    Raises:
        CompressionError: on mismatched or badly shaped inputs, bad settings,
            or bytes LiteRT cannot load or run.
    """
    x, y, reference = _check_arrays(x_test, y_test, reference_predictions)
    threads = _positive_int(threads, "threads")
    latency_runs = _positive_int(latency_runs, "latency_runs")
    throughput_batch = _positive_int(throughput_batch, "throughput_batch")
    warmup = _positive_int(warmup, "warmup", minimum=0)
    eval_threads = _usable_cores() if eval_threads is None else _positive_int(eval_threads, "eval_threads")
    n = len(x)

    probe = _create(tflite_bytes, threads, delegates=False)
    inputs = probe.get_input_details()
    if len(inputs) != 1:
        raise CompressionError(f"The model must have one input to be measured; it has {len(inputs)}.")
    signature = [int(d) for d in inputs[0]["shape_signature"]]
    _check_sample_shape(x, signature)
    dynamic = signature[0] == -1
    fixed_batch = None if dynamic else signature[0]
    del probe

    # The accuracy pass: also decides whether XNNPACK can run this model. It is not a timing the user
    # configures, so it may use every core (pinned to `threads`, it lost to Keras' multi-threaded predict).
    eval_batch = min(EVAL_BATCH, n) if dynamic else fixed_batch
    interpreter, delegated, note = _open(tflite_bytes, eval_threads, x, eval_batch)
    delegate = "XNNPACK" if delegated else "none"
    in_detail = interpreter.get_input_details()[0]
    out_detail = interpreter.get_output_details()[0]

    start = time.perf_counter()
    predictions = _predict(interpreter, x, eval_batch)
    eval_seconds = time.perf_counter() - start

    used_throughput_batch = throughput_batch if dynamic else fixed_batch
    if eval_threads != threads:
        del interpreter
        interpreter = _create(tflite_bytes, threads, delegates=delegated)
        _allocate(interpreter, x, used_throughput_batch)
    elif dynamic and used_throughput_batch != eval_batch:
        _allocate(interpreter, x, used_throughput_batch)
    latency_interpreter = _create(tflite_bytes, threads, delegates=delegated)
    latency_batch = 1 if dynamic else fixed_batch
    _allocate(latency_interpreter, x, latency_batch)
    with (quiet or contextlib.nullcontext)():
        throughput = _throughput(interpreter, x, used_throughput_batch)
        latency = _latency(latency_interpreter, x, latency_batch, latency_runs, warmup)
    latency["threads"] = threads
    del interpreter, latency_interpreter

    return {
        "accuracy": float(np.mean(predictions == y)),
        "agreement": None if reference is None else float(np.mean(predictions == reference)),
        "flags": prediction_flags(predictions, y, reference),
        "top_class_share": top_class_share(predictions),
        "predictions": predictions,
        "latency_ms": latency,
        "throughput_sps": throughput,
        "throughput_batch": int(used_throughput_batch),
        "input_dtype": np.dtype(in_detail["dtype"]).name,
        "output_dtype": np.dtype(out_detail["dtype"]).name,
        "delegate": delegate,
        "delegate_note": note,
        "ops": tflite_ops(tflite_bytes),
        "eval_seconds": eval_seconds,
        "batch_size_used": int(eval_batch),
    }


CHANCE_MARGIN = 0.1
"""Accuracy within this fraction of the way from chance to 1.0 counts as "near chance"."""

COLLAPSE_SHARE = 0.9
"""A classifier giving one class to at least this share of the test set has collapsed to it."""


def chance_accuracy(y_true: np.ndarray) -> float:
    """Accuracy of always answering the test set's most common class (the level a useless model reaches)."""
    y = np.asarray(y_true)
    return float(np.bincount(y).max() / len(y)) if len(y) else 0.0


def top_class_share(predictions: np.ndarray) -> float:
    """Share of the samples given the most often predicted class (1.0: one class for everything)."""
    p = np.asarray(predictions)
    return float(np.bincount(p).max() / len(p)) if len(p) else 0.0


def near_chance(accuracy: float, y_true: np.ndarray) -> bool:
    """Whether an accuracy is no better than a useless model on this test set (within :data:`CHANCE_MARGIN`)."""
    chance = chance_accuracy(y_true)
    return accuracy <= chance + CHANCE_MARGIN * (1.0 - chance)


def prediction_flags(predictions: np.ndarray, y_true: np.ndarray,
                     reference: np.ndarray | None = None) -> list[dict[str, str]]:
    """Warnings about a classifier's predictions that a plain accuracy figure hides.

    Usage::

        prediction_flags(variant_predictions, y_test, baseline_predictions)
        # [{"code": "one_class", "message": "predicts class 3 for 100% of the test set ..."}]

    Args:
        predictions: predicted class per test sample.
        y_true: true labels.
        reference: the float baseline's predictions on the same samples (None: no baseline comparison).

    Returns:
        ``{"code", "message"}`` dicts; codes: ``near_chance`` (accuracy about
        what always answering the most common class gives, while the
        baseline is fine), ``one_class`` (one class for at least
        :data:`COLLAPSE_SHARE` of the samples, more than the labels justify),
        ``agreement_meaningless`` (baseline and variant both answer one class:
        their agreement says nothing). Empty when nothing is wrong.
    """
    p, y = np.asarray(predictions), np.asarray(y_true)
    if len(p) == 0:
        return []
    flags = []
    accuracy = float(np.mean(p == y))
    chance = chance_accuracy(y)
    baseline_fine = reference is None or not near_chance(float(np.mean(np.asarray(reference) == y)), y)
    if baseline_fine and near_chance(accuracy, y):
        versus = "" if reference is None else \
            f" while the float baseline reaches {float(np.mean(np.asarray(reference) == y)):.1%}"
        flags.append({"code": "near_chance", "message": (
            f"accuracy {accuracy:.1%} is near chance (always answering the most common class gives "
            f"{chance:.1%}){versus}: this variant is broken, not just less accurate")})
    share, label_share = top_class_share(p), chance
    if share >= COLLAPSE_SHARE and share > label_share + CHANCE_MARGIN:
        top = int(np.bincount(p).argmax())
        flags.append({"code": "one_class", "message": (
            f"predicts class {top} for {share:.0%} of the test set (the labels' most common class is "
            f"{label_share:.0%}): its outputs collapsed to one class")})
    if reference is not None:
        ref = np.asarray(reference)
        if top_class_share(ref) >= COLLAPSE_SHARE and share >= COLLAPSE_SHARE:
            flags.append({"code": "agreement_meaningless", "message": (
                f"agreement {float(np.mean(p == ref)):.1%} means nothing here: the baseline and this variant "
                "both answer (almost) one class")})
    return flags


def baseline_flags(predictions: np.ndarray, y_true: np.ndarray) -> list[dict[str, str]]:
    """Warnings about the float baseline itself, with the likely cause (shown before any variant runs).

    Usage::

        baseline_flags(predict_classes(model, x_test), y_test)
    """
    p, y = np.asarray(predictions), np.asarray(y_true)
    if len(p) == 0:
        return []
    accuracy, chance = float(np.mean(p == y)), chance_accuracy(y)
    if not near_chance(accuracy, y):
        return []
    share = top_class_share(p)
    collapsed = f", and it gives one class to {share:.0%} of the samples" if share >= COLLAPSE_SHARE else ""
    return [{"code": "baseline_at_chance", "message": (
        f"The baseline's accuracy on this test set is {accuracy:.1%}, about chance ({chance:.1%}){collapsed}. "
        "Likely causes: the model is untrained or was trained on other data or preprocessing, or its "
        "BatchNormalization statistics were never settled (a model built with weights=None). "
        "Every variant will look as bad, and their agreement says nothing.")}]


def quantize_input(x: np.ndarray, detail: dict) -> np.ndarray:
    """Cast float inputs to an input tensor's dtype, quantizing with its (scale, zero_point) if integer.

    Usage::

        interpreter.set_tensor(d["index"], quantize_input(x_batch, d))
    """
    dtype = np.dtype(detail["dtype"])
    if not np.issubdtype(dtype, np.integer):
        return np.asarray(x, dtype=dtype)
    scale, zero_point = detail["quantization"]
    if not scale:  # integer input without quantization parameters (e.g. token ids)
        return np.asarray(x).astype(dtype)
    info = np.iinfo(dtype)
    return np.clip(np.round(np.asarray(x, np.float32) / scale + zero_point), info.min, info.max).astype(dtype)


# ---------------------------------------------------------------- internals


def _create(tflite_bytes: bytes, threads: int, delegates: bool):
    """A LiteRT interpreter; ``delegates=False`` leaves out the default delegates (XNNPACK)."""
    module = _tf.interpreter_module()
    options = (
        {} if delegates else {"experimental_op_resolver_type": module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES}
    )
    try:
        # LiteRT prints "INFO: Created TensorFlow Lite XNNPACK delegate" to fd 2: keep it in the log.
        with _tf.quiet_native_stderr("creating a LiteRT interpreter"):
            return module.Interpreter(model_content=bytes(tflite_bytes), num_threads=threads, **options)
    except (ValueError, RuntimeError, TypeError) as exc:
        raise CompressionError(f"The data is not a loadable TFLite model: {_one_line(exc)}.") from exc


def _open(tflite_bytes: bytes, threads: int, x: np.ndarray, batch: int):
    """An allocated interpreter that has run once, with XNNPACK if it takes the model.

    Returns:
        ``(interpreter, delegated, note)``: ``note`` says why XNNPACK is not in use, else "".
    """
    interpreter = _create(tflite_bytes, threads, delegates=True)
    try:
        _allocate(interpreter, x, batch)
        interpreter.invoke()
    except (RuntimeError, ValueError) as exc:
        note = f"XNNPACK could not prepare this model ({_one_line(exc)}), so it runs on LiteRT's builtin kernels."
    else:
        ops = interpreter._get_ops_details()
        if not any(op["op_name"] == "DELEGATE" for op in ops):
            return interpreter, False, _NO_OPS_DELEGATED
        left = _undelegated_ops(ops)
        note = f"XNNPACK runs part of the model; on LiteRT's builtin kernels: {', '.join(left)}." if left else ""
        return interpreter, True, note

    del interpreter
    interpreter = _create(tflite_bytes, threads, delegates=False)
    try:
        _allocate(interpreter, x, batch)
        interpreter.invoke()
    except (RuntimeError, ValueError) as exc:
        raise CompressionError(f"LiteRT could not run this model: {_one_line(exc)}.") from exc
    return interpreter, False, note


def _undelegated_ops(ops: list[dict]) -> list[str]:
    """Names of the main graph's ops that no DELEGATE node took over, each once.

    LiteRT keeps the replaced nodes in its node list and appends one DELEGATE
    node per partition, whose inputs and outputs are the partition's boundary
    tensors; a node belongs to a partition when it is reached walking back
    from the partition's outputs without crossing its inputs.
    """
    producer = {int(t): op["index"] for op in ops if op["op_name"] != "DELEGATE" for t in op["outputs"]}
    inside: set[int] = set()
    for partition in (op for op in ops if op["op_name"] == "DELEGATE"):
        boundary = {int(t) for t in partition["inputs"]}
        pending = [int(t) for t in partition["outputs"]]
        while pending:
            tensor = pending.pop()
            node = producer.get(tensor)
            if tensor in boundary or node is None or node in inside:
                continue
            inside.add(node)
            pending.extend(int(t) for t in ops[node]["inputs"] if t >= 0)
    names: list[str] = []
    for op in ops:
        if op["op_name"] != "DELEGATE" and op["index"] not in inside and op["op_name"] not in names:
            names.append(op["op_name"])
    return names


def _allocate(interpreter, x: np.ndarray, batch: int) -> None:
    """Resize a dynamic input to ``batch`` (other dynamic dims from the data), allocate, and load real samples."""
    detail = interpreter.get_input_details()[0]
    if -1 in detail["shape_signature"]:
        interpreter.resize_tensor_input(detail["index"], [batch, *x.shape[1:]], strict=True)
    with _tf.quiet_native_stderr("preparing a LiteRT interpreter"):  # XNNPACK announces itself here
        interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], quantize_input(_real_batch(x, batch), detail))


def _real_batch(x: np.ndarray, batch: int) -> np.ndarray:
    """``batch`` real test samples, repeating the set if it is smaller."""
    return x[np.arange(batch) % len(x)]


def _predict(interpreter, x: np.ndarray, batch: int) -> np.ndarray:
    """Class index per sample from invokes of ``batch`` samples (the last one padded with zeros)."""
    in_detail = interpreter.get_input_details()[0]
    out_index = interpreter.get_output_details()[0]["index"]
    predictions = np.empty(len(x), dtype=np.int64)
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        count = len(chunk)
        if count < batch:
            chunk = np.concatenate([chunk, np.zeros((batch - count, *x.shape[1:]), dtype=x.dtype)])
        interpreter.set_tensor(in_detail["index"], quantize_input(chunk, in_detail))
        interpreter.reset_all_variables()
        interpreter.invoke()
        # argmax is unaffected by a positive-scale dequantization, so int8 logits work as they are.
        scores = interpreter.get_tensor(out_index)
        predictions[start : start + count] = scores.reshape(batch, -1)[:count].argmax(axis=1)
    return predictions


def _throughput(interpreter, x: np.ndarray, batch: int) -> float:
    """Samples per second over repeated invokes of one batch of real samples (after one warm-up)."""
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], quantize_input(_real_batch(x, batch), detail))
    interpreter.invoke()
    total, runs = 0.0, 0
    while runs < _THROUGHPUT_MAX_RUNS and (runs < _THROUGHPUT_MIN_RUNS or total < THROUGHPUT_MIN_SECONDS):
        interpreter.reset_all_variables()
        start = time.perf_counter()
        interpreter.invoke()
        total += time.perf_counter() - start
        runs += 1
    return batch * runs / total


def _latency(interpreter, x: np.ndarray, batch: int, runs: int, warmup: int) -> dict[str, float | int]:
    """Milliseconds per invoke of a real ``batch``-sample input: ``warmup`` untimed, then ``runs`` timed."""
    for _ in range(warmup):
        interpreter.invoke()
    times = np.empty(runs)
    for i in range(runs):
        interpreter.reset_all_variables()
        start = time.perf_counter()
        interpreter.invoke()
        times[i] = time.perf_counter() - start
    times *= 1000.0
    return {
        "median": float(np.median(times)),
        "p90": float(np.percentile(times, 90)),
        "mean": float(times.mean()),
        "std": float(times.std()),
        "runs": runs,
    }


def _check_arrays(x_test, y_test, reference_predictions):
    """Validate the test arrays and return them as numpy arrays."""
    x = np.asarray(x_test)
    y = np.asarray(y_test)
    if x.ndim < 2 or len(x) == 0 or not np.issubdtype(x.dtype, np.number):
        raise CompressionError(f"x_test must be a non-empty numeric array of samples. Received shape {x.shape}.")
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or len(y) != len(x):
        raise CompressionError(f"y_test must hold one class label per sample: {len(x)} samples, got shape {y.shape}.")
    reference = None
    if reference_predictions is not None:
        reference = np.asarray(reference_predictions).reshape(-1)
        if len(reference) != len(x):
            raise CompressionError(
                f"reference_predictions must hold one class per sample: {len(x)} samples, got {len(reference)}."
            )
    return x, y, reference


def _check_sample_shape(x: np.ndarray, signature: list[int]) -> None:
    """Refuse test samples whose shape does not fit the model's input."""
    expected = signature[1:]
    if len(expected) != x.ndim - 1 or any(e not in (-1, d) for e, d in zip(expected, x.shape[1:], strict=True)):
        shown = "(" + ", ".join("any" if e == -1 else str(e) for e in expected) + ")"
        raise CompressionError(f"The test samples have shape {tuple(x.shape[1:])} but the model expects {shown}.")


def _usable_cores() -> int:
    """Cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


def _positive_int(value, what: str, minimum: int = 1) -> int:
    """Validate a whole-number setting."""
    return whole_number(value, what, minimum)


def _one_line(exc: BaseException) -> str:
    """An interpreter error in one line (LiteRT glues its messages together without separators)."""
    text = re.sub(r"(#\d+)(?=[A-Z])", r"\1; ", str(exc))
    return one_line(text, first_line=False).rstrip(".") or type(exc).__name__
