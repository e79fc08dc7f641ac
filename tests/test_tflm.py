"""TFLite Micro measurement: arena search, refusals with TFLM's reason, crash containment."""

from __future__ import annotations

import numpy as np
import pytest

from compression.errors import CompressionError
from compression.measure.boards import BOARDS, FitStatus, fit_of
from compression.measure.litert import measure_tflite
from compression.measure.tflm import find_arena, invokes_with_arena, measure_tflm, refusal_reason
from compression.results import TflmResult
from compression.tflite.convert import convert_to_tflite


@pytest.fixture(scope="module")
def tflites(seed_cnn, digits):
    """The pretrained digits seed CNN in the modes TFLM runs and refuses."""
    return {mode: convert_to_tflite(seed_cnn, mode, representative=digits.x_train) for mode in ("float32", "int8",
                                                                                                "dynamic")}


def _litert(data, digits):
    return measure_tflite(data, digits.x_test, digits.y_test, latency_runs=2)


@pytest.mark.parametrize("mode", ["float32", "int8"])
def test_arena_is_the_smallest_that_allocates_and_invokes(tflites, digits, mode):
    data = tflites[mode]
    litert = _litert(data, digits)
    result = measure_tflm(data, digits.x_test, digits.y_test, litert_predictions=litert["predictions"])
    assert result.runnable is True and result.reason is None
    assert result.arena_bytes > 0 and result.flash_bytes == len(data)
    sample = digits.x_test[0]
    assert invokes_with_arena(data, result.arena_bytes, sample)
    assert not invokes_with_arena(data, int(result.arena_bytes * 0.9), sample)
    assert not invokes_with_arena(data, result.arena_bytes - 1, sample)  # bisection to the byte
    # The RecordingMicroAllocator's total, captured from fd 2, is at most what the search needs.
    assert 0 < result.allocator_total <= result.arena_bytes
    # Reference kernels on the whole test set: close to LiteRT on the same file.
    assert result.samples == result.test_size == len(digits.y_test)
    assert abs(result.accuracy - litert["accuracy"]) <= 0.02
    assert result.agreement >= 0.97
    assert result.eval_seconds > 0 and result.ms_per_sample > 0
    assert fit_of(result, BOARDS["nano33"]).status is FitStatus.FITS


def test_int8_needs_less_arena_than_float32(tflites):
    assert find_arena(tflites["int8"]) < find_arena(tflites["float32"])


def test_dynamic_range_model_is_refused_with_tflm_reason(tflites, digits):
    result = measure_tflm(tflites["dynamic"], digits.x_test, digits.y_test)
    assert result.runnable is False
    assert "Input type: FLOAT32 with filter type: INT8 not supported" in result.reason
    assert "hybrid" in result.reason and "FULLY_CONNECTED" in result.reason
    assert result.arena_bytes is None and result.accuracy is None
    assert result.flash_bytes == len(tflites["dynamic"])
    fit = fit_of(result, BOARDS["nano33"])
    assert fit.status is FitStatus.CANNOT_RUN and "hybrid" in fit.reason


def test_sparse_encoding_is_refused(seed_cnn, digits):
    from compression import _tf

    keras = _tf.keras()
    pruned = keras.models.clone_model(seed_cnn)
    weights = [np.where(np.abs(w) < np.quantile(np.abs(w), 0.9), 0, w) if w.ndim > 1 else w
               for w in seed_cnn.get_weights()]
    pruned.set_weights(weights)
    data = convert_to_tflite(pruned, "int8", representative=digits.x_train, sparse=True)
    result = measure_tflm(data)
    assert result.runnable is False and "DENSIFY" in result.reason


def _corrupt_operator_input(data: bytes) -> bytes:
    """The same model with its first operator's first input 2e9 tensors past the list (an unmapped address)."""
    import flatbuffers
    from tflite_micro.python.tflite_micro import runtime

    model = runtime.convert_bytearray_to_object(bytearray(data))
    model.subgraphs[0].operators[0].inputs[0] = 2_000_000_000
    builder = flatbuffers.Builder(1024)
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


def test_a_tflm_crash_is_contained(tflites, digits):
    corrupt = _corrupt_operator_input(tflites["int8"])
    result = measure_tflm(corrupt, digits.x_test, digits.y_test)
    assert result.runnable is None
    assert "SIGSEGV" in result.reason and "crashed" in result.reason
    assert result.flash_bytes == len(corrupt)
    assert fit_of(result, BOARDS["pico"]).status is FitStatus.UNMEASURED
    # This process is fine and the next measurement works.
    assert measure_tflm(tflites["int8"]).runnable is True


def test_garbage_bytes_are_refused_not_raised():
    result = measure_tflm(b"hello world" * 10)
    assert result.runnable is False and "cannot load this file" in result.reason


def test_a_measurement_past_its_timeout_is_stopped(tflites):
    result = measure_tflm(tflites["int8"], timeout=0.01)
    assert result.runnable is None and "longer than" in result.reason
    assert result.seconds < 30


def test_a_seeded_sample_when_the_test_set_is_large(tflites, digits):
    first = measure_tflm(tflites["int8"], digits.x_test, digits.y_test, max_samples=100, seed=3)
    again = measure_tflm(tflites["int8"], digits.x_test, digits.y_test, max_samples=100, seed=3)
    assert first.samples == 100 and first.test_size == len(digits.y_test)
    assert any("sample of 100 of the 360" in n for n in first.notes)
    assert first.accuracy == again.accuracy


def test_bad_arguments_are_the_callers_error(tflites, digits):
    with pytest.raises(CompressionError, match="one class per sample"):
        measure_tflm(tflites["int8"], digits.x_test, digits.y_test[:5])
    with pytest.raises(CompressionError, match="max_samples"):
        measure_tflm(tflites["int8"], digits.x_test, digits.y_test, max_samples=0)


def test_the_result_round_trips_through_json_dicts(tflites):
    result = measure_tflm(tflites["int8"])
    assert TflmResult.from_dict(result.to_dict()) == result
    assert TflmResult.from_dict({"runnable": "yes", "arena_bytes": "many"}) == TflmResult()


def test_refusal_reason_sentences():
    assert "no DENSIFY op" in refusal_reason("Didn't find op for builtin opcode 'DENSIFY'\nFailed to get registration")
    assert refusal_reason("Didn't find op for builtin opcode 'RFFT2D'\n") == (
        "TFLite Micro has no RFFT2D op, so this model cannot run under it."
    )
    generic = refusal_reason(
        "tensorflow/lite/micro/kernels/foo.cc:12 input->type == kTfLiteInt8 was not true.\n"
        "Node CONV_2D (number 4) failed to prepare with status 1\n"
    )
    assert generic == (
        'TFLite Micro refuses this model (node CONV_2D number 4): "input->type == kTfLiteInt8 was not true".'
    )
    assert refusal_reason("", RuntimeError("TFLM failed to allocate tensors")).endswith("allocate tensors.")


def test_cli_run_with_a_board_prints_the_fit_column_and_results_carry_tflm(tmp_path):
    import json
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent

    def cli(*args):
        return subprocess.run([sys.executable, "-m", "compression", *args], capture_output=True, text=True,
                              cwd=root, timeout=600)

    listing = cli("boards")
    assert listing.returncode == 0 and "nano33" in listing.stdout and "256.0 KB" in listing.stdout
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({
        "dataset": {"name": "digits"}, "baseline": {"pretrained": True}, "evaluation": {"latency_runs": 5},
        "variants": [{"name": "int8", "quantization": "int8"}, {"name": "dynamic", "quantization": "dynamic"}],
    }))
    bad = cli("run", str(recipe), "--out", str(tmp_path / "o"), "--board", "uno")
    assert bad.returncode == 2 and bad.stderr.strip().startswith("error: Unknown board 'uno'")
    assert not (tmp_path / "o").exists()  # refused before running
    done = cli("run", str(recipe), "--out", str(tmp_path / "out"), "--board", "nano33")
    assert done.returncode == 0, done.stderr[-2000:]
    assert "fit on Arduino Nano 33 BLE Sense" in done.stdout
    fit_lines = {line.split()[0]: line for line in done.stdout.splitlines() if line.startswith("  ")}
    assert "fits (RAM +" in fit_lines["int8"]
    assert "cannot run under TFLM" in fit_lines["dynamic"] and "hybrid" in fit_lines["dynamic"]
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    int8, dynamic = results["variants"]
    assert int8["tflm"]["runnable"] is True and int8["tflm"]["arena_bytes"] > 0
    assert int8["tflm"]["flash_bytes"] == int8["size_bytes"]
    assert int8["tflm"]["samples"] == results["dataset"]["n_test"]
    assert dynamic["tflm"]["runnable"] is False


def test_a_crash_at_too_small_an_arena_counts_as_too_small_and_the_search_goes_on():
    # TFLM's allocator segfaults (unsigned underflow) instead of refusing 2 KB for this LSTM, which runs with
    # a larger arena: the measurement must find that arena, not report the model as crashing TFLM.
    from benchmarks.architectures import _builders

    data = convert_to_tflite(_builders()["lstm"](), "float32", isolate=False)
    result = measure_tflm(data)
    assert result.runnable is True, result.reason
    assert invokes_with_arena(data, result.arena_bytes)
    assert not invokes_with_arena(data, result.arena_bytes - 1)
    crashed = [n for n in result.notes if "crashed (SIGSEGV) instead of refusing too small an arena" in n]
    assert crashed and "2,048" in crashed[0]
