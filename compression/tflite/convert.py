"""Convert a tf_keras model to a TFLite flatbuffer in one of the quantization modes.

The five modes of :class:`~compression.config.QuantizationMode` map onto
``tf.lite.TFLiteConverter`` settings as follows:

=========  ==================================================================
float32    no optimization
dynamic    ``Optimize.DEFAULT`` (int8 weights, float activations)
float16    ``Optimize.DEFAULT`` + ``supported_types=[tf.float16]``
int8       full integer: ``Optimize.DEFAULT``, a representative set,
           ``TFLITE_BUILTINS_INT8`` and int8 input/output
int16x8    int16 activations, int8 weights, a representative set, float io
=========  ==================================================================

``sparse=True`` adds ``Optimize.EXPERIMENTAL_SPARSITY``, which stores pruned
kernels as sparse tensors (decoded by DENSIFY ops at load time).

Recurrent models (LSTM/GRU/RNN) do not convert with a dynamic batch; they are
converted from a concrete function with a static batch of 1 instead, so that
they become builtin ops (e.g. ``UNIDIRECTIONAL_SEQUENCE_LSTM``) the LiteRT
Python interpreter can run. Such an op keeps its state in variable tensors
that persist between invokes: call ``reset_all_variables()`` before each new
sequence (measure.py does).

The model is first exported as a SavedModel (what ``from_keras_model`` does
internally anyway) and converted from it in a child process
(:mod:`compression.isolation`): a crash of TFLite's C++ converter or
calibrator (e.g. a GRU's int8 calibration segfaults with tensorflow 2.21)
then fails that conversion with one sentence instead of killing the run.
``isolate=False`` converts the same export in this process (same bytes).

Usage::

    tflite_bytes = convert_to_tflite(model, "int8", representative=dataset.x_train)
"""

from __future__ import annotations

import gzip
import logging
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import _tf
from ..config import QuantizationMode, _enum
from ..errors import CompressionError, one_line
from ..isolation import NativeCrash, shared_pool
from ..validation import whole_number

log = logging.getLogger("compression.tflite.convert")

_NEEDS_REPRESENTATIVE = (QuantizationMode.INT8, QuantizationMode.INT16X8)
_MAX_REASON_CHARS = 300


def convert_to_tflite(
    model: Any,
    mode: QuantizationMode | str,
    representative: np.ndarray | None = None,
    sparse: bool = False,
    representative_samples: int = 200,
    seed: int = 0,
    isolate: bool = True,
    export_dir: str | Path | None = None,
) -> bytes:
    """Convert a tf_keras model to TFLite bytes in the given quantization mode.

    Usage::

        data = convert_to_tflite(model, QuantizationMode.INT8, representative=x_train)

    Args:
        model: a built tf_keras Sequential or Functional model; tfmot
            quantization-aware models (``quantize_apply`` output) are accepted.
            Pruned or clustered models must be stripped first.
        mode: a :class:`QuantizationMode` or its value ("float32", "dynamic",
            "float16", "int8", "int16x8").
        representative: training inputs shaped ``(N, *input_shape[1:])``; a
            seeded sample of them calibrates the activation ranges. Required
            for "int8" and "int16x8", ignored by the other modes.
        sparse: also apply ``Optimize.EXPERIMENTAL_SPARSITY`` so that pruned
            kernels are stored sparse.
        representative_samples: how many rows of ``representative`` to use
            (all of them when fewer), fed one at a time with batch 1.
        seed: seed of the representative sample.
        isolate: convert in the shared child process (a native crash fails
            this call only); False converts in this process.
        export_dir: a folder (kept by the caller) for the model's SavedModel
            export; a later conversion of the SAME, unchanged model with the
            same folder (another mode) reuses the export instead of saving it
            again. None exports into a temporary folder.

    Returns:
        The ``.tflite`` flatbuffer.

    Raises:
        CompressionError: on an unknown mode, missing or badly shaped
            representative data, when the converter refuses the model (its
            reason in one line, e.g. "Conversion to int8 failed: ...") or
            crashes (:class:`~compression.isolation.NativeCrash`, e.g.
            "TFLite's int8 calibration crashed (SIGSEGV) ...").
    """
    mode = _enum(QuantizationMode, mode, "quantization")
    if not isinstance(sparse, bool):
        raise CompressionError(f"sparse must be true or false. Received: {sparse!r}")
    if sparse and mode is QuantizationMode.INT16X8:
        from ..config import INT16X8_SPARSE_REFUSAL

        raise CompressionError(INT16X8_SPARSE_REFUSAL)
    rows = None
    if mode in _NEEDS_REPRESENTATIVE:
        rows = _representative_rows(model, mode, representative, representative_samples, seed)

    static = _has_recurrent_layer(model)
    folder = Path(tempfile.mkdtemp(prefix="compression-convert-"))
    try:
        if rows is not None:
            np.save(folder / "representative.npy", rows, allow_pickle=False)
        try:
            return _convert_in(folder, model, mode, sparse, static, isolate, export_dir)
        except CompressionError:
            raise
        except Exception as exc:  # noqa: BLE001 - every converter failure becomes one readable line
            if static or "TensorList" not in str(exc):
                raise _conversion_error(mode, exc) from exc
        # A recurrent layer the layer scan missed (e.g. inside a custom layer): retry with a static batch.
        try:
            return _convert_in(folder, model, mode, sparse, True, isolate, export_dir)
        except CompressionError:
            raise
        except Exception as exc:  # noqa: BLE001
            raise _conversion_error(mode, exc) from exc
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def export_for_conversion(model: Any, export_dir: str | Path) -> None:
    """Save the SavedModel that :func:`convert_to_tflite` converts, into ``export_dir`` (kept by the caller).

    A later ``convert_to_tflite(model, mode, export_dir=export_dir)`` of the same, unchanged model then
    converts without exporting (so the export can happen in one thread and the conversion in another).

    Raises:
        CompressionError: the model cannot be exported (one line).
    """
    static = _has_recurrent_layer(model)
    saved = Path(export_dir) / ("static" if static else "dynamic")
    if not (saved / "saved_model.pb").is_file():
        shutil.rmtree(saved, ignore_errors=True)
        _export(model, saved, static)


def strip_strings(tflite_bytes: bytes) -> bytes:
    """The ``.tflite`` without its nonessential strings: TFLite's own ``flatbuffer_utils.strip_strings``.

    Removes the model description, subgraph and tensor names and the signature defs; keeps every op,
    weight, quantization parameter and metadata entry, so the model computes the same outputs. A board's
    flash (and the download) holds fewer bytes; what is lost: tensor names (weight inspectors fall back
    to ``<op>_<n>``) and the signature runner (invoke by input index, as TFLite Micro does).

    Usage::

        small = strip_strings(data)  # same predictions, ~1 KB less for a small CNN

    Raises:
        CompressionError: the bytes are not a TFLite model.
    """
    from tensorflow.lite.tools import flatbuffer_utils

    try:
        model = flatbuffer_utils.convert_bytearray_to_object(bytearray(tflite_bytes))
    except Exception as exc:  # noqa: BLE001 - not a flatbuffer: one sentence
        raise CompressionError(f"These bytes are not a TFLite model, so their strings cannot be stripped: "
                               f"{one_line(exc)}") from exc
    flatbuffer_utils.strip_strings(model)
    return bytes(flatbuffer_utils.convert_object_to_bytearray(model))


def tflite_ops(tflite_bytes: bytes) -> list[str]:
    """Names of the operators in a TFLite model, across all its subgraphs.

    Usage::

        tflite_ops(data)  # ['CONV_2D', 'RESHAPE', 'FULLY_CONNECTED']

    Args:
        tflite_bytes: a ``.tflite`` flatbuffer.

    Returns:
        Each distinct op name once, in order of first appearance (custom ops
        under their custom name).

    Raises:
        CompressionError: if the bytes are not a TFLite model.
    """
    from ai_edge_litert import schema_py_generated as schema

    buffer = bytearray(tflite_bytes)
    if len(buffer) < 8 or not schema.Model.ModelBufferHasIdentifier(buffer, 0):
        raise CompressionError("The data is not a TFLite model (no TFL3 identifier).")
    try:
        model = schema.Model.GetRootAs(buffer, 0)
        names_by_code = {v: k for k, v in vars(schema.BuiltinOperator).items() if not k.startswith("_")}
        codes = []
        for i in range(model.OperatorCodesLength()):
            op_code = model.OperatorCodes(i)
            # Codes above 127 only live in BuiltinCode; older files only fill DeprecatedBuiltinCode.
            code = max(op_code.BuiltinCode(), op_code.DeprecatedBuiltinCode())
            if code == schema.BuiltinOperator.CUSTOM and op_code.CustomCode():
                codes.append(op_code.CustomCode().decode("utf-8", "replace"))
            else:
                codes.append(names_by_code.get(code, f"BUILTIN_{code}"))
        names: list[str] = []
        for s in range(model.SubgraphsLength()):
            subgraph = model.Subgraphs(s)
            for o in range(subgraph.OperatorsLength()):
                name = codes[subgraph.Operators(o).OpcodeIndex()]
                if name not in names:
                    names.append(name)
    except Exception as exc:  # noqa: BLE001 - a corrupt flatbuffer fails anywhere inside the parser
        raise CompressionError(f"The data is not a readable TFLite model ({type(exc).__name__}).") from exc
    return names


def tflite_io_details(tflite_bytes: bytes) -> dict[str, list[dict[str, Any]]]:
    """Dtype, shape and quantization of a TFLite model's inputs and outputs.

    Usage::

        tflite_io_details(data)["inputs"][0]["dtype"]  # 'int8'

    Args:
        tflite_bytes: a ``.tflite`` flatbuffer.

    Returns:
        ``{"inputs": [...], "outputs": [...]}``, one JSON-ready dict per
        tensor: ``name``, ``dtype`` (e.g. "int8"), ``shape`` (as stored, batch
        usually 1), ``shape_signature`` (-1 marks a dynamic dimension) and
        ``quantization`` (``{"scale", "zero_point"}``, or None for a float
        tensor).

    Raises:
        CompressionError: if the bytes are not a TFLite model.
    """
    interpreter = _load_interpreter(tflite_bytes)

    def describe(detail: dict) -> dict[str, Any]:
        scale, zero_point = detail["quantization"]
        return {
            "name": detail["name"],
            "dtype": np.dtype(detail["dtype"]).name,
            "shape": [int(d) for d in detail["shape"]],
            "shape_signature": [int(d) for d in detail["shape_signature"]],
            "quantization": {"scale": float(scale), "zero_point": int(zero_point)} if scale else None,
        }

    return {
        "inputs": [describe(d) for d in interpreter.get_input_details()],
        "outputs": [describe(d) for d in interpreter.get_output_details()],
    }


def gzip_size(data: bytes) -> int:
    """Size in bytes of ``data`` gzip-compressed at level 9 (how pruning's gain shows without sparse encoding).

    Usage::

        gzip_size(tflite_bytes)
    """
    return len(gzip.compress(data, compresslevel=9, mtime=0))


# ---------------------------------------------------------------- internals


def _convert_in(folder: Path, model, mode: QuantizationMode, sparse: bool, static_batch: bool,
                isolate: bool, export_dir: str | Path | None = None) -> bytes:
    """Export the model into ``folder`` (or reuse its export in ``export_dir``) and convert the export (in the
    child process if ``isolate``)."""
    saved = Path(export_dir or folder) / ("static" if static_batch else "dynamic")
    started = time.perf_counter()
    if not (export_dir is not None and (saved / "saved_model.pb").is_file()):
        shutil.rmtree(saved, ignore_errors=True)  # a half-written export of a failed attempt
        _export(model, saved, static_batch)
    exported = time.perf_counter()
    rows = folder / "representative.npy"
    args = (str(saved), mode.value, sparse, str(rows) if rows.exists() else None)
    if not isolate:
        data = convert_exported(*args)
    else:
        try:
            data = shared_pool().call(convert_exported, *args, what=_stage_name(mode))
        except NativeCrash as crash:
            raise NativeCrash(f"{str(crash).rstrip('.')} on this model{_recurrent_context(model)}; it is a bug "
                              "in TensorFlow Lite's native code, so try another quantization mode.") from None
    log.debug("export %.3f s, conversion %.3f s (%s)", exported - started, time.perf_counter() - exported,
              "child process" if isolate else "in process")
    return data


def _stage_name(mode: QuantizationMode) -> str:
    if mode in _NEEDS_REPRESENTATIVE:
        return f"TFLite's {mode.value} calibration"
    return f"TFLite's {mode.value} conversion"


def _recurrent_context(model) -> str:
    """" (it has GRU layer 'gru')" for a model with recurrent layers, else ""."""
    keras = _tf.keras()
    found = []
    for layer in getattr(model, "layers", []):
        if isinstance(layer, keras.layers.Bidirectional):
            found.append(f"Bidirectional {type(layer.forward_layer).__name__} layer '{layer.name}'")
        elif isinstance(layer, keras.layers.RNN):
            found.append(f"{type(layer).__name__} layer '{layer.name}'")
    return f" (it has {', '.join(found[:3])})" if found else ""


def _export(model, folder: Path, static_batch: bool) -> None:
    """Save the model as the SavedModel the converter reads (static batch 1 for recurrent models).

    ``TFLiteConverter.from_keras_model`` and ``from_concrete_functions`` save exactly
    this (with ``save_debug_info``) and convert from it; doing it here lets the
    conversion run in another process.
    """
    tf = _tf.tf()
    options = tf.saved_model.SaveOptions(save_debug_info=True)
    try:
        if static_batch:
            if not model.inputs:
                raise CompressionError("The model has no defined input shape; give it an Input layer before "
                                       "converting.")
            specs = [tf.TensorSpec([1, *inp.shape[1:]], inp.dtype) for inp in model.inputs]
            function = tf.function(model).get_concrete_function(specs[0] if len(specs) == 1 else specs)
            tf.saved_model.save(model, str(folder), signatures={"serving_default": function}, options=options)
        else:
            tf.saved_model.save(model, str(folder), options=options)
    except CompressionError:
        raise
    except Exception as exc:  # noqa: BLE001 - an export failure is a conversion failure, said in one line
        reason = _converter_reason(str(exc)) or type(exc).__name__
        raise CompressionError(f"The model could not be exported for conversion: {reason}") from exc


def convert_exported(saved_model_dir: str, mode: str, sparse: bool, representative_path: str | None) -> bytes:
    """Convert a SavedModel written by :func:`_export` (runs in the isolation child; module-level so it pickles).

    Raises:
        Exception: whatever the converter raises (the caller turns it into one line).
    """
    tf = _tf.tf()
    mode = QuantizationMode(mode)
    converter = tf.lite.TFLiteConverter.from_saved_model(saved_model_dir)
    optimizations = [] if mode is QuantizationMode.FLOAT32 else [tf.lite.Optimize.DEFAULT]
    if sparse:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    converter.optimizations = optimizations
    rep_fn = None
    if representative_path is not None:
        rows = np.load(representative_path, allow_pickle=False)

        def rep_fn() -> Iterator[list[np.ndarray]]:
            for row in rows:
                yield [row[np.newaxis, ...]]

    if mode is QuantizationMode.FLOAT16:
        converter.target_spec.supported_types = [tf.float16]
    elif mode is QuantizationMode.INT8:
        converter.representative_dataset = rep_fn
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif mode is QuantizationMode.INT16X8:
        converter.representative_dataset = rep_fn
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    return converter.convert()


def _representative_rows(model, mode: QuantizationMode, representative, samples: int, seed: int) -> np.ndarray:
    """Validate the representative data and return the seeded sample of rows (model input dtype)."""
    if representative is None:
        raise CompressionError(
            f"{mode.value} quantization needs representative data (a sample of the training inputs) "
            "to calibrate activation ranges."
        )
    whole_number(samples, "representative_samples")
    if len(model.inputs) != 1:
        raise CompressionError(
            f"{mode.value} quantization supports models with one input; this model has {len(model.inputs)}."
        )
    data = np.asarray(representative)
    if not np.issubdtype(data.dtype, np.number) or data.ndim < 1 or len(data) == 0:
        raise CompressionError("The representative data must be a non-empty numeric array of model inputs.")
    expected = tuple(model.inputs[0].shape[1:])
    if data.ndim != len(expected) + 1 or any(
        e is not None and e != d for e, d in zip(expected, data.shape[1:], strict=True)
    ):
        shown = "(" + ", ".join("any" if e is None else str(e) for e in expected) + ")"
        raise CompressionError(
            f"The representative samples have shape {tuple(data.shape[1:])} but the model expects {shown}."
        )
    rng = np.random.default_rng(seed)
    index = rng.choice(len(data), size=min(samples, len(data)), replace=False)
    return np.ascontiguousarray(data[index].astype(model.inputs[0].dtype.as_numpy_dtype))


def _has_recurrent_layer(model) -> bool:
    """Whether the model contains an RNN layer (LSTM, GRU, SimpleRNN, or one wrapped in Bidirectional)."""
    keras = _tf.keras()
    recurrent = (keras.layers.RNN, keras.layers.Bidirectional)
    try:
        modules = [model, *model.submodules]
    except AttributeError:
        modules = list(getattr(model, "layers", []))
    return any(isinstance(m, recurrent) for m in modules)


_LOCATION = re.compile(r"(?:<unknown>|(?:[A-Za-z]:)?(?:[\\/][\w.\-]+)+)(?::\d+)+:?\s*")
_PATH = re.compile(r"(?:[A-Za-z]:)?(?:[\\/][\w.\-]+){2,}")
_ERROR = re.compile(r"\berror:\s*(.+)")


def _converter_reason(text: str) -> str:
    """The converter's reason in one line: the first ``error:`` line, else the last non-empty line, without paths."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    reason = ""
    for line in lines:
        match = _ERROR.search(line)
        if match:
            reason = match.group(1)
            break
    else:
        if lines:
            reason = lines[-1]
    reason = _PATH.sub("", _LOCATION.sub("", reason))
    reason = re.sub(r"\s+", " ", reason).strip(" :")
    if len(reason) > _MAX_REASON_CHARS:
        reason = reason[: _MAX_REASON_CHARS - 1].rstrip() + "…"
    return reason


def _conversion_error(mode: QuantizationMode, exc: Exception) -> CompressionError:
    """A CompressionError naming the mode and the converter's one-line reason."""
    reason = _converter_reason(str(exc)) or type(exc).__name__
    if reason[-1] not in ".!?…":
        reason += "."
    return CompressionError(f"Conversion to {mode.value} failed: {reason}")


def _load_interpreter(tflite_bytes: bytes):
    """A LiteRT interpreter on the bytes, without default delegates (only for reading metadata)."""
    module = _tf.interpreter_module()
    try:
        return module.Interpreter(
            model_content=bytes(tflite_bytes),
            experimental_op_resolver_type=module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
        )
    except (ValueError, RuntimeError, TypeError) as exc:
        raise CompressionError(f"The data is not a loadable TFLite model: {_converter_reason(str(exc))}.") from exc
