"""Lessons: prepared one-variant recipes, reuse of a finished run, and pruning recorded step by step."""

from __future__ import annotations

import numpy as np
import pytest

from compression import charts
from compression.config import PruningConfig
from compression.errors import CompressionError
from compression.lessons import LESSONS, find_reusable_run, lesson_recipe, main_layer
from compression.pruning import load_snapshots, prune, sparsity_curve
from compression.recipes import run_recipe
from compression.results import RunFolder, RunResults
from compression.store import Store
from compression.tflite_weights import tflite_weights_by_layer

DIGITS = {"name": "digits"}
SEED_CNN = {"name": "seed_cnn"}


@pytest.mark.parametrize("key", list(LESSONS))
def test_every_lesson_is_one_small_variant_on_the_given_data_and_model(key):
    recipe = lesson_recipe(key, {"name": "mnist1d"}, {"name": "conv1d"})
    assert recipe.dataset.name == "mnist1d" and recipe.model.name == "conv1d"
    assert len(recipe.variants) == 1 and recipe.title.startswith("Lesson: ")
    assert len(LESSONS[key].lines) == 3
    assert recipe.variants[0].fine_tune_epochs <= 2


def test_unknown_lesson_is_refused():
    with pytest.raises(CompressionError, match="Unknown lesson 'nope'"):
        lesson_recipe("nope", DIGITS, SEED_CNN)


def test_a_finished_run_of_the_same_recipe_is_reused_and_others_are_not(tmp_path):
    store = Store(tmp_path / "lab")
    recipe = lesson_recipe("pruning", DIGITS, SEED_CNN)
    assert find_reusable_run(store, recipe) is None
    failed = store.create_run(recipe)
    store.set_status(failed, "failed", error="boom")
    assert find_reusable_run(store, recipe) is None  # a failed run is not a lesson
    queued = store.create_run(recipe)
    assert find_reusable_run(store, recipe) == queued  # one already on its way is not submitted twice
    done = store.create_run(recipe)
    store.set_status(done, "ok")
    assert find_reusable_run(store, recipe) == done  # finished first
    other = lesson_recipe("pruning", {"name": "mnist1d"}, {"name": "conv1d"})
    assert find_reusable_run(store, other) is None


def test_pruning_is_recorded_at_each_mask_update(seed_cnn, small_train):
    config = PruningConfig(schedule="polynomial", initial_sparsity=0.0, final_sparsity=0.9, frequency=1)
    _, info = prune(seed_cnn, config, *small_train, epochs=2)
    snaps = info["snapshots"]
    steps, kernels = snaps["step"], snaps["kernels"]["logits"]
    assert steps[0] == 0 and np.all(np.diff(steps) > 0) and len(steps) >= 4
    zeros = np.array([np.mean(k == 0) for k in kernels])
    assert zeros[0] == 0.0  # the dense kernel before the first update
    assert np.all(np.diff(zeros) >= 0)  # the polynomial schedule only adds zeros
    assert zeros[-1] == pytest.approx(0.9, abs=0.01)
    curve_steps, target = sparsity_curve(config, info["schedule"]["total_steps"])
    fig = charts.pruning_over_time(steps, kernels, curve_steps, target, "logits")
    assert [f.name for f in fig.frames] == [str(s) for s in steps]
    assert len(fig.layout.sliders[0].steps) == len(steps)
    measured = next(t for t in fig.data if (t.meta or {}).get("kind") == "measured")
    assert measured.meta["sparsity"] == pytest.approx(list(zeros))


def test_schedule_lesson_run_stores_its_steps_in_the_run_folder(tmp_path):
    recipe = lesson_recipe("schedule", DIGITS, SEED_CNN)
    run_recipe(recipe, tmp_path)
    folder = RunFolder(tmp_path)
    row = folder.read_results().variants[0]
    assert row.ok, row.error
    snaps = load_snapshots(folder.pruning_steps(row.stem))
    assert snaps is not None and set(snaps["kernels"]) == {"conv", "logits"}
    final = snaps["kernels"]["logits"][-1]
    np.testing.assert_array_equal(final == 0, np.load(folder.weights(row.stem))["logits"] == 0)
    weights = tflite_weights_by_layer(folder.tflite(row).read_bytes(), ["conv", "logits"])
    assert main_layer(weights) == "logits"
    assert np.mean(weights["logits"].dequantized() == 0) == pytest.approx(0.9, abs=0.01)
    assert isinstance(RunResults.from_json(folder.results_file.read_text()), RunResults)


def test_clustering_lesson_records_its_centroids_and_the_file_holds_the_last_ones(tmp_path):
    from compression.clustering import load_centroids

    run_recipe(lesson_recipe("clustering", DIGITS, SEED_CNN), tmp_path)
    folder = RunFolder(tmp_path)
    row = folder.read_results().variants[0]
    assert row.ok, row.error
    moves = load_centroids(folder.cluster_steps(row.stem))
    assert moves is not None and set(moves["centroids"]) == {"conv", "logits"}
    logits = moves["centroids"]["logits"]
    assert logits.shape == (len(moves["step"]), 8) and moves["step"][0] == 0
    assert not np.allclose(logits[0], logits[-1])  # the fine-tune moved them
    stored = np.unique(tflite_weights_by_layer(folder.tflite(row).read_bytes(), ["conv", "logits"])["logits"].values)
    assert np.all(np.min(np.abs(stored[:, None] - logits[-1][None, :]), axis=1) < 1e-6)
    fig = charts.centroids_over_time(moves["step"], logits, "logits")
    assert len([t for t in fig.data if t.meta["kind"] == "centroid"]) == 8
