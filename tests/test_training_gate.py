"""A run's row writer times a model only while the fine-tune is paused; the reference conversion runs
in the row writer, and its failure fails the run with its sentence."""

from __future__ import annotations

import threading
import time

import pytest

from compression.errors import CompressionError
from compression.results import RunResults, RunStatus
from compression.run.pipeline import TrainingGate, _Pipeline
from compression.run.writers import ResultsWriter
from compression.run_folder import RunFolder


def test_a_timing_waits_for_the_fine_tune_to_park_and_the_fine_tune_loses_no_batch(seed_cnn, digits):
    from compression import _tf
    from compression.inputs.models import clone
    from compression.techniques.train import compile_for_training, fit, steps_per_epoch

    keras = _tf.keras()
    model = clone(seed_cnn)
    compile_for_training(model)
    gate = TrainingGate()
    batches = []

    class Count(keras.callbacks.Callback):
        def on_train_batch_end(self, batch, logs=None):
            batches.append(time.monotonic())

    def train():
        with gate.working():
            fit(model, digits.x_train, digits.y_train, epochs=3, batch_size=16, callbacks=[Count()],
                cancel=lambda: gate.checkpoint() or False)

    trainer = threading.Thread(target=train)
    trainer.start()
    while len(batches) < 5:
        time.sleep(0.01)
    with gate.quiet():
        during = len(batches)
        time.sleep(0.5)  # ~0.5 s of batches would have run had the fine-tune gone on
        assert len(batches) == during
        assert trainer.is_alive()
    trainer.join(60)
    assert len(batches) == 3 * steps_per_epoch(len(digits.x_train), 16)
    gaps = [b - a for a, b in zip(batches, batches[1:], strict=False)]
    assert max(gaps) >= 0.5  # the pause is in the training's own timeline

    with gate.quiet():  # nobody training: no wait
        pass


def test_a_timing_does_not_wait_once_the_trainer_waits_for_the_row_writer():
    gate = TrainingGate()
    entered = threading.Event()

    def time_a_model():
        with gate.quiet():
            entered.set()

    with gate.working():
        writer = threading.Thread(target=time_a_model)
        writer.start()
        assert not entered.wait(0.3)  # working, never at a checkpoint: the timing waits
        gate.finish()  # what _Pipeline.drain does before it waits for the row writer
        assert entered.wait(5)
        writer.join(5)


def test_a_failed_first_job_fails_the_run_with_its_sentence(tmp_path):
    folder = RunFolder(tmp_path / "run")
    folder.path.mkdir()
    run = ResultsWriter(folder, RunResults(recipe={}, status=RunStatus.RUNNING))

    def reference():
        raise CompressionError("The model could not be exported for conversion: no.")

    pipeline = _Pipeline(run, None, None, 1.0)
    try:
        pipeline.first(reference)
        pipeline.drain()
        with pytest.raises(CompressionError, match="could not be exported"):
            pipeline.check(run)
    finally:
        pipeline.close()
    saved = folder.read_results()
    assert saved.status is RunStatus.FAILED and saved.error == "The model could not be exported for conversion: no."


def test_a_run_fills_its_reference_from_the_row_writer_and_times_each_row(tmp_path):
    from compression import run_recipe

    recipe = {"dataset": {"name": "digits"}, "model": {"name": "seed_cnn"}, "baseline": {"pretrained": True},
              "evaluation": {"latency_runs": 20, "tflm": False},
              "variants": [{"name": "float32"},
                           {"name": "pruned", "pruning": {"final_sparsity": 0.5}, "fine_tune_epochs": 2}]}
    run_recipe(recipe, tmp_path / "run", cache=False)
    done = RunFolder(tmp_path / "run").read_results()
    assert done.status is RunStatus.OK
    assert done.reference is not None and done.reference.size_bytes > 0
    float32 = done.variants[0]
    assert float32.size_bytes == done.reference.size_bytes  # the reference conversion, shared
    for v in done.variants:
        assert v.latency.median is not None and v.latency.median > 0 and v.latency.runs == 20, v.name
        assert v.throughput_sps and v.throughput_sps > 0, v.name


def test_the_baseline_is_exported_once_in_the_main_thread_even_when_its_int8_comes_after_a_fine_tune(tmp_path):
    """The row writer converts the int8 (the baseline's) while the main thread distils from the baseline: the
    baseline's export must be the main thread's, made before (an export traced beside the teacher's predict
    captured its half-made function and failed)."""
    from compression import run_recipe

    recipe = {"dataset": {"name": "digits"}, "model": {"name": "seed_cnn"}, "baseline": {"pretrained": True},
              "evaluation": {"latency_runs": 5, "tflm": False},
              "variants": [{"name": "pruned", "pruning": {"final_sparsity": 0.5}, "fine_tune_epochs": 1},
                           {"name": "int8", "quantization": "int8", "representative_samples": 50},
                           {"name": "student", "distillation": {"student": "seed_cnn", "epochs": 2}}]}
    run_recipe(recipe, tmp_path / "run", cache=False)
    done = RunFolder(tmp_path / "run").read_results()
    assert [(v.name, v.status) for v in done.variants] == [(n, RunStatus.OK) for n in ("pruned", "int8", "student")]
    assert done.variants[1].input_dtype == "int8"
