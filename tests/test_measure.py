"""Tests of compression.measure.litert on tiny tf_keras models trained on sklearn's 8x8 digits."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from compression import _tf
from compression.errors import CompressionError
from compression.measure.litert import measure_tflite, quantize_input
from compression.tflite.convert import convert_to_tflite

RESULT_KEYS = {
    "accuracy",
    "agreement",
    "flags",
    "top_class_share",
    "predictions",
    "latency_ms",
    "throughput_sps",
    "throughput_batch",
    "input_dtype",
    "output_dtype",
    "delegate",
    "delegate_note",
    "ops",
    "eval_seconds",
    "batch_size_used",
}


@pytest.fixture(scope="module")
def keras_predictions(cnn, digits_split):
    return cnn.predict(digits_split[2], verbose=0).argmax(axis=1)


@pytest.fixture(scope="module")
def float32_result(cnn, digits_split, keras_predictions):
    data = convert_to_tflite(cnn, "float32")
    return measure_tflite(
        data, digits_split[2], digits_split[3], reference_predictions=keras_predictions, latency_runs=30
    )


def test_import_does_not_load_tensorflow():
    code = "import sys, compression.measure.litert; sys.exit('tensorflow' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0


def test_batched_accuracy_equals_keras(float32_result, keras_predictions, digits_split):
    keras_accuracy = float(np.mean(keras_predictions == digits_split[3]))
    assert float32_result["agreement"] >= 0.99
    assert abs(float32_result["accuracy"] - keras_accuracy) <= 0.01
    predictions = float32_result["predictions"]
    assert predictions.shape == digits_split[3].shape
    assert np.issubdtype(predictions.dtype, np.integer)
    assert float32_result["batch_size_used"] == len(digits_split[2])  # 397 samples: one batched invoke


def test_result_keys_and_latency(float32_result):
    assert set(float32_result) == RESULT_KEYS
    latency = float32_result["latency_ms"]
    assert set(latency) == {"median", "p90", "mean", "std", "runs", "threads"}
    assert latency["runs"] == 30
    assert latency["threads"] == 1
    assert latency["median"] > 0 and latency["mean"] > 0 and latency["std"] >= 0
    assert latency["p90"] >= latency["median"]
    assert float32_result["throughput_sps"] > 0
    assert float32_result["throughput_batch"] == 256
    assert float32_result["eval_seconds"] > 0
    assert float32_result["input_dtype"] == float32_result["output_dtype"] == "float32"
    assert float32_result["ops"] == ["CONV_2D", "RESHAPE", "FULLY_CONNECTED"]
    # Conv and Dense in float32 are all XNNPACK ops.
    assert float32_result["delegate"] == "XNNPACK"
    assert float32_result["delegate_note"] == ""


def test_settings_are_reported(cnn, digits_split):
    data = convert_to_tflite(cnn, "float32")
    result = measure_tflite(
        data, digits_split[2], digits_split[3], threads=2, latency_runs=7, throughput_batch=1000, warmup=0
    )
    assert result["latency_ms"]["threads"] == 2
    assert result["latency_ms"]["runs"] == 7
    assert result["throughput_batch"] == 1000  # larger than the test set: samples repeat
    assert result["agreement"] is None


def test_int8_inputs_are_quantized(cnn, digits_split, float32_result):
    data = convert_to_tflite(cnn, "int8", representative=digits_split[0])
    result = measure_tflite(data, digits_split[2], digits_split[3], reference_predictions=float32_result["predictions"])
    assert result["input_dtype"] == result["output_dtype"] == "int8"
    assert result["accuracy"] >= float32_result["accuracy"] - 0.05
    assert result["agreement"] >= 0.9
    assert result["delegate"] == "XNNPACK"


def test_int16x8_runs_without_xnnpack(cnn, digits_split):
    data = convert_to_tflite(cnn, "int16x8", representative=digits_split[0], representative_samples=50)
    result = measure_tflite(data, digits_split[2], digits_split[3], latency_runs=5)
    assert result["input_dtype"] == "float32"
    assert result["delegate"] == "none"
    assert "XNNPACK" in result["delegate_note"]


def test_sparse_dynamic_model_reports_its_delegate_consistently(cnn, digits_split):
    keras = _tf.keras()
    model = keras.models.clone_model(cnn)
    weights = []
    for w in cnn.get_weights():
        if w.ndim > 1:
            w = w.copy()
            w.ravel()[np.argsort(np.abs(w).ravel())[: int(0.8 * w.size)]] = 0.0
        weights.append(w)
    model.set_weights(weights)
    data = convert_to_tflite(model, "dynamic", sparse=True)

    # What does XNNPACK itself say about this model?
    interpreter = _tf.interpreter_module().Interpreter(model_content=data)
    try:
        interpreter.allocate_tensors()
        interpreter.invoke()
        refused = False
    except RuntimeError:
        refused = True
    del interpreter

    result = measure_tflite(data, digits_split[2], digits_split[3], latency_runs=10)
    assert "DENSIFY" in result["ops"]
    assert result["accuracy"] > 0.3  # 80 % of the weights zeroed without fine-tuning still classifies
    if refused:
        assert result["delegate"] == "none"
        assert result["delegate_note"].startswith("XNNPACK could not prepare this model (")
        assert "\n" not in result["delegate_note"]
    if result["delegate"] == "none":
        assert result["delegate_note"]


def test_static_batch_lstm_is_evaluated_sample_by_sample(digits_split):
    keras = _tf.keras()
    keras.utils.set_random_seed(0)
    model = keras.Sequential([keras.layers.Input((8, 8)), keras.layers.LSTM(8), keras.layers.Dense(10)])
    x, y = digits_split[2][:100, ..., 0], digits_split[3][:100]
    reference = model.predict(x, verbose=0).argmax(axis=1)
    data = convert_to_tflite(model, "float32")

    result = measure_tflite(data, x, y, reference_predictions=reference, latency_runs=10, throughput_batch=64)
    assert result["batch_size_used"] == 1
    assert result["throughput_batch"] == 1
    assert result["agreement"] >= 0.99
    assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in result["ops"]
    if result["delegate"] == "XNNPACK":  # XNNPACK takes the Dense layer, not the LSTM
        assert "UNIDIRECTIONAL_SEQUENCE_LSTM" in result["delegate_note"]


def test_quantize_input():
    detail = {"dtype": np.int8, "quantization": (0.5, -3)}
    out = quantize_input(np.array([0.0, 1.0, 1000.0, -1000.0]), detail)
    assert out.dtype == np.int8
    assert out.tolist() == [-3, -1, 127, -128]
    assert quantize_input(np.array([1, 2]), {"dtype": np.float32, "quantization": (0.0, 0)}).dtype == np.float32


def test_bad_arguments_are_refused(cnn, digits_split):
    data = convert_to_tflite(cnn, "float32")
    x, y = digits_split[2], digits_split[3]
    with pytest.raises(CompressionError, match="y_test must hold one class label per sample"):
        measure_tflite(data, x, y[:-1])
    with pytest.raises(CompressionError, match="reference_predictions"):
        measure_tflite(data, x, y, reference_predictions=y[:5])
    with pytest.raises(CompressionError, match=r"shape \(8, 8\) but the model expects \(8, 8, 1\)"):
        measure_tflite(data, x[..., 0], y)
    with pytest.raises(CompressionError, match="latency_runs"):
        measure_tflite(data, x, y, latency_runs=0)
    with pytest.raises(CompressionError, match="threads"):
        measure_tflite(data, x, y, threads=True)
    with pytest.raises(CompressionError, match="not a loadable TFLite model"):
        measure_tflite(b"junk" * 10, x, y)
