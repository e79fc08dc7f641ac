"""Tests of compression.tflite.convert on tiny tf_keras models trained on sklearn's 8x8 digits."""

from __future__ import annotations

import gzip
import subprocess
import sys

import numpy as np
import pytest

from compression import _tf
from compression.config import QuantizationMode
from compression.errors import CompressionError
from compression.tflite.convert import _converter_reason, convert_to_tflite, gzip_size, tflite_io_details, tflite_ops

MODES = [m.value for m in QuantizationMode]


@pytest.fixture(scope="module")
def converted(cnn, digits_split):
    """The CNN in every mode."""
    return {mode: convert_to_tflite(cnn, mode, representative=digits_split[0]) for mode in MODES}


def _keras_accuracy(model, x, y) -> float:
    return float(np.mean(model.predict(x, verbose=0).argmax(axis=1) == y))


def _tflite_outputs(tflite_bytes: bytes, x: np.ndarray) -> np.ndarray:
    """Run a converted model on x (batched when its batch is dynamic), quantizing int inputs.

    Without XNNPACK (it refuses sparse dynamic-range models; measure.py deals with that), and with the
    LSTM state reset before each invoke (it lives in variable tensors that persist between invokes).
    """
    module = _tf.interpreter_module()
    interpreter = module.Interpreter(
        model_content=tflite_bytes,
        experimental_op_resolver_type=module.OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES,
    )
    detail = interpreter.get_input_details()[0]
    batch = len(x) if detail["shape_signature"][0] == -1 else int(detail["shape"][0])
    if detail["shape_signature"][0] == -1:
        interpreter.resize_tensor_input(detail["index"], [batch, *x.shape[1:]])
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    out = interpreter.get_output_details()[0]
    results = []
    for start in range(0, len(x), batch):
        chunk = x[start : start + batch]
        if np.issubdtype(detail["dtype"], np.integer):
            scale, zero_point = detail["quantization"]
            info = np.iinfo(detail["dtype"])
            chunk = np.clip(np.round(chunk / scale + zero_point), info.min, info.max).astype(detail["dtype"])
        interpreter.set_tensor(detail["index"], chunk)
        interpreter.reset_all_variables()
        interpreter.invoke()
        results.append(interpreter.get_tensor(out["index"]))
    return np.concatenate(results)


def test_import_does_not_load_tensorflow():
    code = "import sys, compression.tflite.convert; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_converts_and_runs(mode, converted, cnn, digits_split):
    data = converted[mode]
    assert data[4:8] == b"TFL3"
    predictions = _tflite_outputs(data, digits_split[2]).argmax(axis=1)
    accuracy = float(np.mean(predictions == digits_split[3]))
    assert accuracy >= _keras_accuracy(cnn, digits_split[2], digits_split[3]) - 0.05
    assert "FULLY_CONNECTED" in tflite_ops(data)


def test_mode_accepts_enum_and_string(cnn):
    assert convert_to_tflite(cnn, QuantizationMode.FLOAT32) == convert_to_tflite(cnn, "float32")


def test_int8_is_full_integer(converted):
    io = tflite_io_details(converted["int8"])
    for tensor in io["inputs"] + io["outputs"]:
        assert tensor["dtype"] == "int8"
        assert tensor["quantization"]["scale"] > 0
    assert io["inputs"][0]["shape_signature"] == [-1, 8, 8, 1]
    float_io = tflite_io_details(converted["int16x8"])
    assert float_io["inputs"][0]["dtype"] == "float32"
    assert float_io["inputs"][0]["quantization"] is None


def test_sizes_follow_the_weight_precision(converted):
    float32 = len(converted["float32"])
    assert 0.45 < len(converted["float16"]) / float32 < 0.6
    assert len(converted["dynamic"]) / float32 < 0.35
    assert len(converted["int8"]) / float32 < 0.35


def test_sparse_encoding_shrinks_a_mostly_zero_model(cnn):
    keras = _tf.keras()
    sparse_model = keras.models.clone_model(cnn)
    weights = []
    for w in cnn.get_weights():
        if w.ndim > 1:  # kernels: zero the 80 % smallest magnitudes
            w = w.copy()
            w.ravel()[np.argsort(np.abs(w).ravel())[: int(0.8 * w.size)]] = 0.0
        weights.append(w)
    sparse_model.set_weights(weights)

    for mode in ("float32", "dynamic"):
        dense = convert_to_tflite(sparse_model, mode)
        sparse = convert_to_tflite(sparse_model, mode, sparse=True)
        assert len(sparse) < len(dense), mode
        assert "DENSIFY" in tflite_ops(sparse)
        assert "DENSIFY" not in tflite_ops(dense)
        np.testing.assert_allclose(
            _tflite_outputs(sparse, np.zeros((2, 8, 8, 1), np.float32)),
            _tflite_outputs(dense, np.zeros((2, 8, 8, 1), np.float32)),
            atol=1e-3,
        )


def test_representative_data_is_required_and_checked(cnn):
    for mode in ("int8", "int16x8"):
        with pytest.raises(CompressionError, match=f"^{mode} quantization needs representative data"):
            convert_to_tflite(cnn, mode)
    with pytest.raises(CompressionError, match=r"shape \(8, 7\) but the model expects \(8, 8, 1\)"):
        convert_to_tflite(cnn, "int8", representative=np.zeros((10, 8, 7), np.float32))
    with pytest.raises(CompressionError, match="representative_samples"):
        convert_to_tflite(cnn, "int8", representative=np.zeros((10, 8, 8, 1), np.float32), representative_samples=0)


def test_bad_mode_names_the_choices(cnn):
    with pytest.raises(CompressionError, match="'int8'.*Received: 'int4'"):
        convert_to_tflite(cnn, "int4")


def test_qat_model_converts_to_int8(cnn, digits_split):
    keras = _tf.keras()
    tfmot = _tf.tfmot()
    base = keras.models.clone_model(cnn)
    base.set_weights(cnn.get_weights())
    qat = tfmot.quantization.keras.quantize_model(base)
    qat.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True), ["accuracy"])
    qat.fit(digits_split[0], digits_split[1], epochs=1, batch_size=32, verbose=0)

    data = convert_to_tflite(qat, "int8", representative=digits_split[0])
    assert tflite_io_details(data)["inputs"][0]["dtype"] == "int8"
    accuracy = float(np.mean(_tflite_outputs(data, digits_split[2]).argmax(axis=1) == digits_split[3]))
    assert accuracy >= _keras_accuracy(qat, digits_split[2], digits_split[3]) - 0.05


def test_lstm_converts_with_a_static_batch(digits_split):
    keras = _tf.keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((8, 8)), keras.layers.LSTM(8), keras.layers.Dense(10)])
    x = digits_split[2][:20, ..., 0]  # 8 time steps of 8 features

    data = convert_to_tflite(model, "float32")
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in tflite_ops(data)
    assert tflite_io_details(data)["inputs"][0]["shape_signature"] == [1, 8, 8]
    np.testing.assert_allclose(_tflite_outputs(data, x), model.predict(x, verbose=0), atol=1e-4)

    int8 = convert_to_tflite(model, "int8", representative=digits_split[0][..., 0], representative_samples=50)
    assert tflite_io_details(int8)["inputs"][0]["dtype"] == "int8"
    assert _tflite_outputs(int8, x).shape == (20, 10)


def test_converter_failure_is_one_readable_line():
    tf = _tf.tf()
    keras = _tf.keras()
    inputs = keras.layers.Input((4, 4))
    # tf.linalg.svd has no TFLite builtin: the converter refuses it.
    outputs = keras.layers.Lambda(lambda t: tf.linalg.svd(t, compute_uv=False))(inputs)
    model = keras.Model(inputs, outputs)
    with pytest.raises(CompressionError) as info:
        convert_to_tflite(model, "float32")
    message = str(info.value)
    assert message.startswith("Conversion to float32 failed: ")
    assert "Svd" in message
    assert "\n" not in message
    assert "/" not in message  # no file paths


def test_converter_reason_extraction():
    text = (
        "/home/u/app.py:9:1: error: 'tf.TensorListReserve' op requires element_shape to be static\n"
        "    converter.convert()\n^\n/home/u/app.py:9:1: note: called from\n"
        "<unknown>:0: error: Lowering tensor list ops is failed.\n"
    )
    assert _converter_reason(text) == "'tf.TensorListReserve' op requires element_shape to be static"
    assert _converter_reason("Could not translate./x/y.py:3:1: error: 'tf.Svd' op is bad") == "'tf.Svd' op is bad"
    assert _converter_reason("first line\n\nValueError: bad model at /tmp/a/b.py\n  ") == "ValueError: bad model at"
    assert _converter_reason("x" * 1000).endswith("…")
    assert len(_converter_reason("x" * 1000)) <= 300


def test_tflite_ops_and_io_refuse_junk():
    for junk in (b"", b"junk", b"x" * 100):
        with pytest.raises(CompressionError, match="not a"):
            tflite_ops(junk)
        with pytest.raises(CompressionError, match="not a"):
            tflite_io_details(junk)


def test_gzip_size():
    data = b"abc" * 10_000
    assert gzip_size(data) == len(gzip.compress(data, compresslevel=9, mtime=0))
    assert gzip_size(data) < 200
    assert gzip_size(data) == gzip_size(data)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_strip_strings_drops_the_names_and_keeps_the_outputs(mode, converted, digits_split):
    from compression.measure.tflm import measure_tflm
    from compression.tflite.convert import strip_strings

    full = converted[mode]
    stripped = strip_strings(full)
    assert len(stripped) < len(full) and gzip_size(stripped) < gzip_size(full)
    module = _tf.interpreter_module()
    names = [t["name"] for t in module.Interpreter(model_content=full).get_tensor_details()]
    assert any("conv" in n for n in names)  # the layer names were there
    interpreter = module.Interpreter(model_content=stripped)
    assert all(t["name"] == "" for t in interpreter.get_tensor_details())
    assert interpreter.get_signature_list() == {}
    assert tflite_ops(stripped) == tflite_ops(full)
    x = digits_split[2][:64]
    np.testing.assert_array_equal(_tflite_outputs(stripped, x), _tflite_outputs(full, x))
    # what a board runs: TFLite Micro still loads it, with the same arena
    y = digits_split[3][:20]
    assert measure_tflm(stripped, x[:20], y).arena_bytes == measure_tflm(full, x[:20], y).arena_bytes


def test_strip_strings_refuses_bytes_that_are_not_a_model():
    from compression.tflite.convert import strip_strings

    with pytest.raises(CompressionError, match="not a TFLite model"):
        strip_strings(b"PK\x03\x04 not a flatbuffer")
