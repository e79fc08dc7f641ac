"""Lessons: one recipe holding every lesson (the asked one first), reuse of its run, pruning recorded step by step."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from compression.config import PruningConfig
from compression.errors import CompressionError
from compression.explore.lessons import LESSONS, LESSONS_TITLE, find_reusable_run, lesson_recipe, main_layer
from compression.results import RunResults
from compression.run.recipe import run_recipe
from compression.run_folder import RunFolder
from compression.store import Store
from compression.techniques.pruning import load_snapshots, prune, sparsity_curve
from compression.tflite.weights import tflite_weights_by_layer
from compression.views import weights_charts

DIGITS = {"name": "digits"}
SEED_CNN = {"name": "seed_cnn"}


def only_its_own(recipe):
    """The lesson's own variant (the first) alone: what these tests check, without the other lessons' fine-tunes."""
    return dataclasses.replace(recipe, variants=recipe.variants[:1])


@pytest.mark.parametrize("key", list(LESSONS))
def test_every_lesson_runs_its_own_small_variant_first_then_the_others(key):
    recipe = lesson_recipe(key, {"name": "mnist1d"}, {"name": "conv1d"})
    assert recipe.dataset.name == "mnist1d" and recipe.model.name == "conv1d"
    assert recipe.title == LESSONS_TITLE
    assert recipe.variants[0] == LESSONS[key].variant
    assert sorted(v.name for v in recipe.variants) == sorted(lesson.variant.name for lesson in LESSONS.values())
    assert len(LESSONS[key].lines) == 3
    assert all(v.fine_tune_epochs <= 8 for v in recipe.variants)  # a few hundred steps at most on these sets


def test_the_seed_cnns_small_conv_stays_dense_and_large_data_fine_tunes_one_epoch():
    cnn = lesson_recipe("pruning", DIGITS, SEED_CNN)
    assert all(v.pruning.layers == ("logits",) for v in cnn.variants if v.pruning)
    mlp = lesson_recipe("pruning", DIGITS, {"name": "mlp"})
    assert all(v.pruning.layers is None for v in mlp.variants if v.pruning)
    big = lesson_recipe("pruning", {"name": "fashion_mnist"}, SEED_CNN)
    assert all(v.fine_tune_epochs == 1 for v in big.variants if v.pruning or v.clustering)


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
    # Another lesson asked first: the same variants in another order, the same run.
    assert find_reusable_run(store, lesson_recipe("schedule", DIGITS, SEED_CNN)) == done
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
    fig = weights_charts.pruning_over_time(steps, kernels, curve_steps, target, "logits")
    assert [f.name for f in fig.frames] == [str(s) for s in steps]
    assert len(fig.layout.sliders[0].steps) == len(steps)
    measured = next(t for t in fig.data if (t.meta or {}).get("kind") == "measured")
    assert measured.meta["sparsity"] == pytest.approx(list(zeros))


def test_schedule_lesson_run_stores_its_steps_in_the_run_folder_and_pruning_keeps_the_accuracy(tmp_path):
    recipe = lesson_recipe("schedule", DIGITS, SEED_CNN)
    pruning = LESSONS["pruning"].variant.name
    run_recipe(dataclasses.replace(recipe, variants=tuple(v for v in recipe.variants
                                                          if v.name in (recipe.variants[0].name, pruning))), tmp_path)
    folder = RunFolder(tmp_path)
    results = folder.read_results()
    # What the lines promise: accuracy barely moves at 80 % (the small conv left dense, a short fine-tune),
    # and survives 90 % reached gradually.
    assert results.variant(pruning).delta_accuracy(results.reference) > -2.0
    assert results.variant(recipe.variants[0].name).delta_accuracy(results.reference) > -6.0
    row = folder.read_results().variants[0]
    assert row.ok, row.error
    snaps = load_snapshots(folder.pruning_steps(row.stem))
    assert snaps is not None and set(snaps["kernels"]) == {"logits"}  # the small conv left dense
    final = snaps["kernels"]["logits"][-1]
    np.testing.assert_array_equal(final == 0, np.load(folder.weights(row.stem))["logits"] == 0)
    weights = tflite_weights_by_layer(folder.tflite(row).read_bytes(), ["conv", "logits"])
    assert main_layer(weights) == "logits"
    assert np.mean(weights["logits"].dequantized() == 0) == pytest.approx(0.9, abs=0.01)
    assert isinstance(RunResults.from_json(folder.results_file.read_text()), RunResults)


def test_clustering_lesson_records_its_centroids_and_the_file_holds_the_last_ones(tmp_path):
    from compression.techniques.clustering import load_centroids

    run_recipe(only_its_own(lesson_recipe("clustering", DIGITS, SEED_CNN)), tmp_path)
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
    fig = weights_charts.centroids_over_time(moves["step"], logits, "logits")
    assert len([t for t in fig.data if t.meta["kind"] == "centroid"]) == 8
