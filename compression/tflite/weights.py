"""The weights as stored in a converted ``.tflite``: what the file really holds after conversion.

The Keras kernels saved next to a run are the weights *before* conversion; for int8 they are still
floats. This module reads each layer's weight tensor out of the flatbuffer itself with the LiteRT
interpreter (``get_tensor_details`` + ``get_tensor`` on constant tensors, following DEQUANTIZE and
DENSIFY back to the stored tensor), so Inspect can show the 256-level int8 grid with the file's
per-channel scales, float16 values, the k distinct values of a clustered layer and pruning's zeros.

Usage::

    for w in tflite_weights(Path("int8.tflite").read_bytes(), layer_names=["conv", "logits"]):
        print(w.layer, w.dtype, w.values.min(), w.scales[:3], w.dequantized().std())

No hand-written flatbuffer parsing: the interpreter is the library that reads the schema. Tensors
produced by DENSIFY (``sparse_encoding``) are read after one invoke on a zero input with
``experimental_preserve_all_tensors`` (never used for timing).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterable, Sequence

import numpy as np

from .. import _tf
from ..errors import CompressionError, one_line

# Which op inputs are weights, per builtin op (index into the op's inputs).
_WEIGHT_INPUTS: dict[str, tuple[int, ...]] = {
    "CONV_2D": (1,),
    "DEPTHWISE_CONV_2D": (1,),
    "FULLY_CONNECTED": (1,),
    "TRANSPOSE_CONV": (1,),
    "CONV_3D": (1,),
    "EMBEDDING_LOOKUP": (1,),
    "UNIDIRECTIONAL_SEQUENCE_LSTM": tuple(range(1, 9)),
}
_LSTM_PARTS = (
    "input_to_input", "input_to_forget", "input_to_cell", "input_to_output",
    "recurrent_to_input", "recurrent_to_forget", "recurrent_to_cell", "recurrent_to_output",
)
_PASS_THROUGH = ("DEQUANTIZE", "DENSIFY")
_QAT_PREFIX = "quant_"


@dataclasses.dataclass(frozen=True, eq=False)
class TfliteWeights:
    """One layer's weight tensor as the ``.tflite`` stores it.

    Attributes:
        layer: the Keras layer it came from (or ``<op>_<n>`` when the file does not name it).
        tensor: the stored tensor's name in the file.
        op: the builtin op that uses it (``CONV_2D``, ``FULLY_CONNECTED``, ...).
        dtype: the stored dtype: ``int8`` (quantized), ``float16`` or ``float32`` (or ``int16``...).
        values: the stored values in the file's layout (e.g. ``(out, in)`` for FULLY_CONNECTED):
            integers for int8, float16 for float16 files.
        scales: per-channel (or per-tensor, length 1) scales for quantized tensors, else empty.
        zero_points: matching zero points, else empty.
        quantized_dimension: the channel axis of ``scales`` in ``values``.
        sparse: the file stores this tensor sparse (DENSIFY at load time).
    """

    layer: str
    tensor: str
    op: str
    dtype: str
    values: np.ndarray
    scales: np.ndarray
    zero_points: np.ndarray
    quantized_dimension: int = 0
    sparse: bool = False

    @property
    def quantized(self) -> bool:
        return self.scales.size > 0 and np.issubdtype(self.values.dtype, np.integer)

    @property
    def params(self) -> int:
        return int(self.values.size)

    def _broadcast(self, per_channel: np.ndarray) -> np.ndarray:
        if per_channel.size == 1:
            return per_channel.reshape(())
        shape = [1] * self.values.ndim
        shape[self.quantized_dimension] = per_channel.size
        return per_channel.reshape(shape)

    def dequantized(self) -> np.ndarray:
        """Real values: ``(q - zero_point) * scale`` per channel for quantized tensors, else float32."""
        if not self.quantized:
            return self.values.astype(np.float32)
        q = self.values.astype(np.float64)
        return ((q - self._broadcast(self.zero_points)) * self._broadcast(self.scales)).astype(np.float32)

    def keras_layout(self, values: np.ndarray | None = None) -> np.ndarray:
        """``values`` (default: dequantized) rearranged to the Keras kernel's layout, where known.

        FULLY_CONNECTED ``(out, in)`` → ``(in, out)``; CONV_2D ``(out, h, w, in)`` → ``(h, w, in, out)``;
        other ops are returned as stored.
        """
        v = self.dequantized() if values is None else np.asarray(values)
        if self.op == "FULLY_CONNECTED" and v.ndim == 2:
            return v.T
        if self.op == "CONV_2D" and v.ndim == 4:
            return np.transpose(v, (1, 2, 3, 0))
        return v

    def file_layout(self, keras_values: np.ndarray) -> np.ndarray:
        """The inverse of :meth:`keras_layout`: a Keras-layout kernel rearranged like the stored tensor."""
        v = np.asarray(keras_values)
        if self.op == "FULLY_CONNECTED" and v.ndim == 2:
            return v.T
        if self.op == "CONV_2D" and v.ndim == 4:
            return np.transpose(v, (3, 0, 1, 2))
        return v

    def channel(self, index: int, values: np.ndarray | None = None) -> np.ndarray:
        """The values (default: stored) of one channel along ``quantized_dimension``."""
        v = self.values if values is None else values
        return np.take(v, index, axis=self.quantized_dimension).ravel()

    @property
    def channels(self) -> int:
        return int(self.values.shape[self.quantized_dimension]) if self.values.ndim else 1

    def summary(self) -> dict:
        """Plain numbers for a table: zeros, distinct values, the dtype and scale range."""
        real = self.dequantized()
        return {
            "layer": self.layer,
            "op": self.op,
            "dtype": self.dtype,
            "shape": "×".join(str(d) for d in self.values.shape),
            "params": self.params,
            "zeros": float(np.mean(real == 0)) if real.size else 0.0,
            "unique_values": int(np.unique(self.values).size),
            "scales": int(self.scales.size),
            "scale_min": float(self.scales.min()) if self.scales.size else None,
            "scale_max": float(self.scales.max()) if self.scales.size else None,
            "sparse": self.sparse,
        }


def _interpreter(tflite_bytes: bytes, preserve: bool):
    module = _tf.interpreter_module()
    try:
        interpreter = module.Interpreter(
            model_content=bytes(tflite_bytes),
            experimental_op_resolver_type=module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
            experimental_preserve_all_tensors=preserve,
        )
        interpreter.allocate_tensors()
    except (ValueError, RuntimeError, TypeError) as exc:
        first = one_line(exc, with_type=False)
        raise CompressionError(f"The file is not a loadable TFLite model: {first}") from exc
    return interpreter


def _components(name: str) -> list[str]:
    return [part for piece in name.split(";") for part in piece.split("/") if part]


def _layer_of(names: Iterable[str], layer_names: Sequence[str] | None) -> str | None:
    """The first Keras layer named in the tensor names (a QAT ``quant_<layer>`` counts as ``<layer>``)."""
    names = [n for n in names if n]
    if layer_names:
        known = set(layer_names)
        for name in names:
            for part in _components(name):
                bare = part[len(_QAT_PREFIX):] if part.startswith(_QAT_PREFIX) else part
                if part in known:
                    return part
                if bare in known:
                    return bare
        return None
    for name in names:  # "model/layer/Op..." → "layer"
        parts = name.split(";")[0].split("/")
        if len(parts) >= 3:
            part = parts[1]
            return part[len(_QAT_PREFIX):] if part.startswith(_QAT_PREFIX) else part
    return None


def tflite_weights(tflite_bytes: bytes, layer_names: Sequence[str] | None = None) -> list[TfliteWeights]:
    """Every weight tensor of a ``.tflite``, in graph order, named after its Keras layer where possible.

    Args:
        tflite_bytes: the flatbuffer.
        layer_names: the Keras layer names to look for in the file's tensor names (e.g. the names
            in a variant's ``layers``); without them the ``model/<layer>/...`` part of a name is used.

    Returns:
        One :class:`TfliteWeights` per weight input of a CONV_2D, DEPTHWISE_CONV_2D,
        FULLY_CONNECTED, TRANSPOSE_CONV, CONV_3D, EMBEDDING_LOOKUP or LSTM op whose weights are
        constant in the file. Biases are left out.

    Raises:
        CompressionError: the bytes are not a loadable TFLite model.
    """
    interpreter = _interpreter(tflite_bytes, preserve=False)
    ops = interpreter._get_ops_details()  # noqa: SLF001 - the interpreter's public-in-practice graph view
    if any(op["op_name"] == "DENSIFY" for op in ops):
        # A densified tensor only holds its values after the DENSIFY op ran once.
        interpreter = _interpreter(tflite_bytes, preserve=True)
        for detail in interpreter.get_input_details():
            interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], dtype=detail["dtype"]))
        interpreter.invoke()
    details = {d["index"]: d for d in interpreter.get_tensor_details()}
    producer = {int(out): op for op in ops for out in op["outputs"]}
    inputs = {d["index"] for d in interpreter.get_input_details()}

    out: list[TfliteWeights] = []
    seen: set[str] = set()
    counters: dict[str, int] = {}
    for op in ops:
        positions = _WEIGHT_INPUTS.get(op["op_name"])
        if not positions:
            continue
        counters[op["op_name"]] = counters.get(op["op_name"], 0) + 1
        for part, position in enumerate(positions):
            if position >= len(op["inputs"]) or int(op["inputs"][position]) < 0:
                continue
            index = int(op["inputs"][position])
            names = [details[index]["name"]]
            sparse = False
            stored = index
            # Follow DEQUANTIZE (float16 files) and DENSIFY (sparse files) back to what is stored.
            while stored in producer and producer[stored]["op_name"] in _PASS_THROUGH:
                sparse = sparse or producer[stored]["op_name"] == "DENSIFY"
                value_index = stored
                stored = int(producer[stored]["inputs"][0])
                names.append(details[stored]["name"])
            if stored in producer or stored in inputs:
                continue  # not a constant of the file (an activation, e.g. BATCH_MATMUL of two inputs)
            names += [details[int(i)]["name"] for i in op["inputs"] if int(i) >= 0]
            names += [details[int(i)]["name"] for i in op["outputs"]]
            layer = _layer_of(names, layer_names) or f"{op['op_name'].lower()}_{counters[op['op_name']]}"
            if len(positions) > 1:
                layer = f"{layer}/{_LSTM_PARTS[part]}" if part < len(_LSTM_PARTS) else f"{layer}/{part}"
            read_from = value_index if sparse else stored
            values = np.array(interpreter.get_tensor(read_from))
            if sparse and values.dtype == np.float32 and details[stored]["dtype"] == np.float16:
                values = values.astype(np.float16)
            quant = details[stored]["quantization_parameters"]
            unique = layer
            n = 2
            while unique in seen:  # a layer used by two ops (shared weights): keep both, named apart
                unique = f"{layer}#{n}"
                n += 1
            seen.add(unique)
            out.append(
                TfliteWeights(
                    layer=unique,
                    tensor=details[stored]["name"],
                    op=op["op_name"],
                    dtype=np.dtype(details[stored]["dtype"]).name,
                    values=values,
                    scales=np.asarray(quant["scales"], dtype=np.float64),
                    zero_points=np.asarray(quant["zero_points"], dtype=np.int64),
                    quantized_dimension=int(quant["quantized_dimension"]),
                    sparse=sparse,
                )
            )
    return out


def tflite_weights_by_layer(tflite_bytes: bytes, layer_names: Sequence[str] | None = None) -> dict[str, TfliteWeights]:
    """:func:`tflite_weights` keyed by layer name."""
    return {w.layer: w for w in tflite_weights(tflite_bytes, layer_names)}
