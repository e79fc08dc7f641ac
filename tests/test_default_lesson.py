"""The default preset tells the true lesson on digits: pruned + QAT ≈ baseline at several × smaller gzip."""

from __future__ import annotations

import dataclasses

import pytest

from compression.config import PRESETS, PruningConfig, Recipe
from compression.results import RunResults
from compression.run.recipe import run_recipe
from compression.techniques.pruning import prune


def test_default_preset_leaves_the_small_conv_dense_and_the_writeup_prunes_everything():
    default, writeup = Recipe.experiment_e(), Recipe.experiment_e_writeup()
    assert PRESETS["experiment_e_writeup"]() == writeup
    pruned = [v for v in default.variants if v.pruning]
    assert pruned and all(v.pruning.layers == ("logits",) for v in pruned)
    assert all(v.pruning.layers is None for v in writeup.variants if v.pruning)
    assert [v.name for v in default.variants] == [v.name for v in writeup.variants]
    # A model the preset knows nothing about is pruned everywhere (no layer names it may not have).
    assert all(v.pruning.layers is None for v in Recipe.experiment_e(model="mlp").variants if v.pruning)


def test_a_layer_left_dense_is_named_with_its_size_and_why(seed_cnn, small_train):
    _, info = prune(seed_cnn, PruningConfig(schedule="constant", final_sparsity=0.8, layers=("logits",)),
                    *small_train, epochs=1)
    assert len(info["notes"]) == 1
    assert info["notes"][0].startswith("'conv' left dense (108 weights, 9% of the prunable ones)")
    assert "pruning guide" in info["notes"][0]
    _, everything = prune(seed_cnn, PruningConfig(schedule="constant", final_sparsity=0.8), *small_train, epochs=1)
    assert everything["notes"] == []


def test_default_pruned_qat_variant_keeps_baseline_accuracy_at_several_times_smaller_gzip(tmp_path):
    recipe = Recipe.experiment_e()
    keep = [v for v in recipe.variants if v.name == "pqat-int8"]
    recipe = dataclasses.replace(recipe, variants=tuple(keep),
                                 evaluation=dataclasses.replace(recipe.evaluation, latency_runs=5))
    run_recipe(recipe, tmp_path)
    results = RunResults.from_json((tmp_path / "results.json").read_text())
    row = results.variant("pqat-int8")
    assert row.ok, row.error
    assert row.delta_accuracy(results.reference) >= -1.5
    assert row.gzip_ratio(results.reference) >= 2.5
    assert any("'conv' left dense" in note for note in row.notes)
    assert row.sparsity == pytest.approx(0.8 * 1080 / 1188, abs=0.01)


def test_a_layer_that_cannot_take_2_4_is_named_in_the_notes(seed_cnn, small_train):
    _, info = prune(seed_cnn, PruningConfig(schedule="constant", final_sparsity=0.5, structured="2:4"),
                    *small_train, epochs=1)
    assert info["notes"] == ["'conv' stayed 0% sparse under 2:4: its kernel (3, 3, 1, 12) has no blocks of 4 "
                             "along its input axis (only 1 input channel); the other 2:4 layers are 50 % sparse"]
