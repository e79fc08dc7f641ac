"""A quiet terminal: the CLI's stderr holds the user's sentence alone; -v shows TensorFlow's native lines."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, env=None):
    return subprocess.run([sys.executable, "-m", "compression", *args], capture_output=True, text=True, cwd=ROOT,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def mismatched_recipe(tmp_path_factory):
    """A recipe whose uploaded model wants 5 features while digits gives 8×8×1 images (refused after TF loads)."""
    from compression import _tf

    keras = _tf.keras()
    folder = tmp_path_factory.mktemp("quiet")
    inputs = keras.Input((5,))
    keras.Model(inputs, keras.layers.Dense(10)(inputs)).save(folder / "five.keras")
    recipe = folder / "recipe.json"
    recipe.write_text(json.dumps({"model": {"name": "uploaded", "path": str(folder / "five.keras")},
                                  "baseline": {"epochs": 0}, "variants": [{"name": "float32"}]}))
    return recipe


def test_a_refusal_after_tensorflow_loaded_prints_exactly_one_line(mismatched_recipe, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "COMPRESSION_VERBOSE")}
    done = cli("run", str(mismatched_recipe), "--out", str(tmp_path / "out"), env=env)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: The model expects inputs of shape (5,)")


def test_verbose_shows_tensorflows_native_lines_before_the_error(mismatched_recipe, tmp_path):
    env = {k: v for k, v in os.environ.items() if k not in ("TF_CPP_MIN_LOG_LEVEL", "COMPRESSION_VERBOSE")}
    done = cli("-v", "run", str(mismatched_recipe), "--out", str(tmp_path / "out"), env=env)
    assert done.returncode == 2
    lines = done.stderr.splitlines()
    assert lines[-1].startswith("error: The model expects inputs of shape (5,)")
    assert any("absl::InitializeLog" in line or "oneDNN" in line or "cuda" in line for line in lines[:-1]), lines


def test_a_keras3_h5_is_refused_as_saved_by_keras3(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "TF_USE_LEGACY_KERAS"}
    env["TF_CPP_MIN_LOG_LEVEL"] = "3"
    path = tmp_path / "k3.h5"
    made = subprocess.run(
        [sys.executable, "-c", "import sys, keras; assert keras.__version__.startswith('3');"
         "m = keras.Sequential([keras.Input((64,)), keras.layers.Dense(10)]); m.save(sys.argv[1])", str(path)],
        capture_output=True, text=True, env=env, timeout=300)
    assert made.returncode == 0, made.stderr[-2000:]
    from compression.errors import CompressionError
    from compression.inputs.safe_load import load_user_model

    with pytest.raises(CompressionError, match=r"^'k3\.h5' was saved by Keras 3\.\d+"):
        load_user_model(path)


def test_kerass_slow_callback_warning_goes_to_the_log_not_the_terminal(capfd, caplog):
    """A progress function slower than a batch (the CLI's first printed line, a stored row) trips Keras's timing
    check in every fit; the warning is logged at DEBUG, and nothing reaches stderr."""
    import logging
    import time

    import numpy as np

    from compression import _tf
    from compression.techniques.train import fit

    keras = _tf.keras()
    model = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3)])
    model.compile("adam", keras.losses.SparseCategoricalCrossentropy(from_logits=True))
    x, y = np.random.default_rng(0).normal(size=(64, 4)).astype("float32"), np.arange(64) % 3
    capfd.readouterr()
    with caplog.at_level(logging.DEBUG, logger="compression.tf"):
        fit(model, x, y, epochs=1, batch_size=8, progress=lambda event: time.sleep(0.06))
    assert any("is slow compared to the batch time" in r.getMessage() for r in caplog.records
               if r.name == "compression.tf")
    assert "is slow compared" not in capfd.readouterr().err


def test_a_pcqat_run_prints_progress_not_tfmots_or_tensorflows_warnings(tmp_path):
    """tfmot's "apply CQAT instead" (root logger) and "No clustering performed" (warnings.warn) and TensorFlow's
    "Gradients do not exist" (every CQAT step) go to the log; the terminal keeps the progress lines."""
    recipe = tmp_path / "pcqat.json"
    recipe.write_text(json.dumps({
        "dataset": {"name": "digits", "max_train": 300}, "model": {"name": "seed_cnn"},
        "baseline": {"pretrained": True}, "evaluation": {"tflm": False, "latency_runs": 5},
        "variants": [{"name": "pcqat", "pruning": {"schedule": "constant", "final_sparsity": 0.8,
                                                   "layers": ["logits"]},
                      "clustering": {"clusters": 8, "layers": ["logits"]}, "qat": {}, "fine_tune_epochs": 1,
                      "quantization": "int8"}]}))
    env = {k: v for k, v in os.environ.items() if k != "COMPRESSION_VERBOSE"}
    done = cli("run", str(recipe), "--out", str(tmp_path / "out"), env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "pcqat: ok" in done.stderr
    for noise in ("zero weights", "apply CQAT", "No clustering performed", "Gradients do not exist", "WARNING",
                  "UserWarning"):
        assert noise not in done.stderr, done.stderr[-3000:]
    verbose = cli("-v", "run", str(recipe), "--out", str(tmp_path / "v"), env=env)
    assert "apply CQAT instead" in verbose.stderr  # -v shows the log, tfmot's notice included
