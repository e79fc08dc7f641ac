"""The Compress page's builder logic (plain functions: no browser, no TensorFlow)."""

from __future__ import annotations

import apptest_support  # noqa: F401  (puts the repository root on sys.path for `ui`)
import pytest

from compression import PRESETS, CompressionError, Recipe
from compression.config import Limits
from ui import builder


def controls(**overrides):
    return {**builder.CONTROL_DEFAULTS, **overrides}


@pytest.mark.parametrize("name", [*PRESETS, "custom"])
def test_every_preset_fills_rows_and_controls(name):
    recipe = builder.preset_recipe(name, dataset="digits", model="seed_cnn", pretrained=True)
    rows = builder.rows_from_recipe(recipe)
    assert [r["name"] for r in rows] == [v.name for v in recipe.variants]
    assert [s.name for s in builder.specs_from_rows(rows)] == [v.name for v in recipe.variants]
    c = builder.controls_from_recipe(recipe, "digits")
    assert set(c) <= set(builder.CONTROL_DEFAULTS)
    assert not c["b_use_prune"] and not c["b_use_qat"]  # presets fill settings, not switches


def test_presets_echo_their_settings_into_the_builder():
    d = builder.controls_from_recipe(builder.preset_recipe("experiment_d"), "digits")
    assert d["b_prune_final"] == 0.9 and d["b_prune_initial"] == 0.5 and d["b_prune_freq"] == 100
    smallest = builder.controls_from_recipe(builder.preset_recipe("smallest"), "digits")
    assert smallest["b_clusters"] == 16
    assert builder.preset_model("experiment_c") == "qat_cnn"
    assert builder.preset_model("experiment_e") is None


def test_builder_stacks_switched_on_techniques_per_mode():
    c = controls(b_use_prune=True, b_use_qat=True, b_modes=["int8", "dynamic"], b_prune_final=0.9, b_epochs=3)
    specs = builder.builder_variants(c, existing=[])
    assert [s.name for s in specs] == ["prune90-pqat-int8", "prune90-pqat-dynamic"]
    assert specs[0].techniques == ["prune 90%", "PQAT", "int8"]
    assert specs[0].fine_tune_epochs == 3 and specs[0].pruning.final_sparsity == 0.9


def test_builder_skips_what_the_table_has_and_renames_clashes():
    rows = builder.rows_from_recipe(Recipe.experiment_e())
    assert builder.builder_variants(controls(b_modes=["int8"]), rows) == []  # "int8" is already there
    clash = [{**rows[1], "name": "float16"}]  # a row named float16 that is really int8
    specs = builder.builder_variants(controls(b_modes=["float16"]), clash)
    assert [s.name for s in specs] == ["float16-2"]


def test_builder_layers_include_and_exclude():
    c = controls(b_use_prune=True, b_prune_some=True, b_prune_layer_mode="exclude", b_prune_layers=["conv"])
    (spec,) = builder.builder_variants(c, [], all_layers=["conv", "logits"])
    assert spec.pruning.layers == ("logits",)
    with pytest.raises(CompressionError, match="at least one layer"):
        builder.builder_variants(controls(b_use_cluster=True, b_cluster_some=True, b_cluster_layers=[]), [])


def test_invalid_builder_values_raise_the_engine_sentence():
    with pytest.raises(CompressionError, match="initial_sparsity must not exceed final_sparsity"):
        builder.builder_variants(controls(b_use_prune=True, b_prune_initial=0.9, b_prune_final=0.5), [])


def test_table_edits_and_validation():
    rows = builder.rows_from_recipe(Recipe.experiment_e())
    frame = builder.table_frame(rows)
    assert list(frame.columns) == [
        "include",
        "name",
        "techniques",
        "quantization",
        "sparse_encoding",
        "strip_strings",
        "fine_tune_epochs",
    ]
    assert frame.loc[5, "techniques"] == "prune 80% + PQAT + int8"
    edited = builder.apply_edits(rows, {"0": {"include": False}, 1: {"name": "int8-ptq", "techniques": "hacked"}})
    assert edited[0]["include"] is False and edited[1]["name"] == "int8-ptq"
    assert rows[0]["include"] is True  # the input is not mutated
    assert [s.name for s in builder.specs_from_rows(edited)][0] == "int8-ptq"
    stripped = builder.apply_edits(rows, {1: {"strip_strings": True}})
    assert builder.specs_from_rows(stripped)[1].strip_strings is True and rows[1]["strip_strings"] is False
    bad = builder.apply_edits(rows, {2: {"fine_tune_epochs": 0}})
    with pytest.raises(CompressionError, match="at least 1 fine-tune epoch"):
        builder.specs_from_rows(bad)
    with pytest.raises(CompressionError, match="Tick at least one variant"):
        builder.specs_from_rows([{**r, "include": False} for r in rows])


def test_build_recipe_uses_the_evaluation_controls():
    parts = {"dataset": {"name": "digits"}, "model": {"name": "seed_cnn"}, "baseline": {"pretrained": True}}
    recipe = builder.build_recipe(
        parts, builder.rows_from_recipe(Recipe.fastest()), controls(e_threads=2, e_latency_runs=50, e_seed=7), title="t"
    )
    assert recipe.evaluation.threads == 2 and recipe.evaluation.latency_runs == 50 and recipe.seed == 7
    assert recipe.baseline.pretrained and recipe.title == "t"


def test_widget_ranges_come_from_the_config_limits():
    """Every widget's (min, max) lies inside the config's own limit, and every default inside its widget."""
    limit_of = {"b_prune_initial": Limits.sparsity, "b_prune_final": Limits.sparsity, "b_prune_begin": Limits.step,
                "b_prune_freq": Limits.frequency, "b_clusters": Limits.clusters, "b_epochs": Limits.epochs,
                "e_seed": Limits.seed, "b_batch": Limits.batch_size, "fine_tune_epochs": Limits.fine_tune_epochs}
    for key, bounds in limit_of.items():
        low, high = builder.WIDGET_RANGES[key]
        assert bounds.check(low, key) == low and bounds.check(high, key) == high, key
    assert builder.WIDGET_RANGES["e_seed"] == (Limits.seed.low, Limits.seed.high)
    assert builder.WIDGET_RANGES["b_epochs"][1] == Limits.epochs.high
    for key, (low, high) in builder.WIDGET_RANGES.items():
        if key in builder.CONTROL_DEFAULTS:
            assert low <= builder.CONTROL_DEFAULTS[key] <= high, key
            assert type(low) is type(builder.CONTROL_DEFAULTS[key]), key  # Streamlit needs matching types
