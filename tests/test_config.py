import json

import pytest

from compression import CompressionError, Recipe
from compression.config import PRESETS, Preserve, VariantSpec

ISSUE_RECIPE = {
    "dataset": {"name": "digits"},
    "model": {"name": "seed_cnn"},
    "baseline": {"pretrained": True},
    "variants": [
        {"name": "float32"},
        {"name": "int8", "quantization": "int8"},
        {"name": "pruned-int8", "pruning": {"schedule": "polynomial", "initial_sparsity": 0.5,
                                            "final_sparsity": 0.8, "frequency": 100},
         "fine_tune_epochs": 2, "quantization": "int8"},
        {"name": "pqat", "pruning": {"schedule": "constant", "final_sparsity": 0.8}, "qat": {"preserve": "sparsity"},
         "fine_tune_epochs": 2, "quantization": "int8"},
        {"name": "clustered", "clustering": {"clusters": 16, "init": "kmeans++"}, "fine_tune_epochs": 1,
         "quantization": "dynamic"},
    ],
    "evaluation": {"threads": 1, "latency_runs": 200},
}


def test_issue_recipe_round_trips_through_json():
    recipe = Recipe.from_dict(ISSUE_RECIPE)
    again = Recipe.from_json(json.dumps(recipe.to_dict()))
    assert again == recipe
    assert recipe.variants[3].expected_preserve is Preserve.SPARSITY
    assert recipe.variants[2].techniques == ["prune 80%", "int8"]


@pytest.mark.parametrize("name", list(PRESETS))
def test_presets_are_valid_and_round_trip(name):
    recipe = PRESETS[name]()
    assert Recipe.from_dict(json.loads(recipe.to_json())) == recipe
    assert len(recipe.variants) >= 3


@pytest.mark.parametrize(
    ("variant", "message"),
    [
        ({"name": "a", "pruning": {"final_sparsity": 1.0}}, "final_sparsity must be in [0, 1). Received: 1.0"),
        ({"name": "a", "pruning": {"initial_sparsity": 0.9, "final_sparsity": 0.5}}, "must not exceed"),
        ({"name": "a", "clustering": {"clusters": 0}}, "clusters must be in [2, 256]. Received: 0"),
        ({"name": "a", "fine_tune_epochs": -1}, "fine_tune_epochs must be in [0, 500]. Received: -1"),
        ({"name": "a", "quantization": "int4"}, "quantization must be one of"),
        ({"name": "a", "pruning": {"frequency": 0}}, "frequency must be in"),
        ({"name": "a", "pruning": {"final_sparsity": "lots"}}, "must be a number"),
        ({"name": "a", "pruning": {"final_sparsity": float("nan")}}, "must be finite"),
        ({"name": "a", "qat": {"preserve": "clusters"}}, "does not match"),
        ({"name": "a", "pruning": {"final_sparsity": 0.5}, "fine_tune_epochs": 0}, "at least 1 fine-tune epoch"),
        ({"name": "../evil"}, "no slashes"),
        ({"name": ""}, "non-empty name"),
        ({"name": "a", "clustering": {"clusters": 8, "colour": "red"}}, "unknown key(s) colour"),
    ],
)
def test_bad_values_are_refused_with_a_sentence_naming_them(variant, message):
    with pytest.raises(CompressionError) as err:
        Recipe.from_dict({"variants": [variant]})
    assert message in str(err.value)
    assert "\n" not in str(err.value)


def test_recipe_level_errors():
    with pytest.raises(CompressionError, match="at least one variant"):
        Recipe.from_dict({"variants": []})
    with pytest.raises(CompressionError, match="repeated: a"):
        Recipe.from_dict({"variants": [{"name": "a"}, {"name": "a"}]})
    with pytest.raises(CompressionError, match="not valid JSON"):
        Recipe.from_json("{nope")
    with pytest.raises(CompressionError, match="baseline.epochs"):
        Recipe.from_dict({"baseline": {"epochs": -3}, "variants": [{"name": "a"}]})
    with pytest.raises(CompressionError, match="unknown key"):
        Recipe.from_dict({"variants": [{"name": "a"}], "colour": 1})


@pytest.mark.parametrize(
    ("pruning", "clustering", "preserve", "scheme"),
    [(False, False, Preserve.NONE, "QAT"), (True, False, Preserve.SPARSITY, "PQAT"),
     (False, True, Preserve.CLUSTERS, "CQAT"), (True, True, Preserve.BOTH, "PCQAT")],
)
def test_the_qat_scheme_is_derived_in_one_place(pruning, clustering, preserve, scheme):
    assert Preserve.for_techniques(pruning, clustering) is preserve
    assert preserve.scheme_name == scheme
    spec = VariantSpec(name="v", pruning={} if pruning else None, clustering={} if clustering else None, qat={})
    assert spec.expected_preserve is preserve
    assert spec.qat_scheme == scheme
    assert scheme in spec.techniques
    assert VariantSpec(name="v", pruning={} if pruning else None).qat_scheme is None


def test_variant_specs_are_frozen():
    spec = VariantSpec(name="x")
    with pytest.raises(AttributeError):
        spec.name = "y"


def test_baseline_only_is_the_train_now_recipe():
    recipe = Recipe.baseline_only({"name": "digits", "max_train": 500}, {"name": "seed_cnn"}, epochs=3,
                                  batch_size=32, learning_rate=0.01)
    assert recipe.title == "Baseline: seed_cnn on digits"
    assert recipe.dataset.max_train == 500 and recipe.model.name == "seed_cnn"
    assert recipe.baseline.pretrained is False
    assert (recipe.baseline.epochs, recipe.baseline.batch_size, recipe.baseline.learning_rate) == (3, 32, 0.01)
    assert [v.name for v in recipe.variants] == ["float32"] and not recipe.variants[0].techniques[:-1]
    assert Recipe.from_json(recipe.to_json()) == recipe
    upload = Recipe.baseline_only({"name": "npz", "path": "/u/s/data.npz"}, {"path": "/u/s/net.keras"})
    assert upload.title == "Baseline: net.keras on data.npz" and upload.model.path == "/u/s/net.keras"
    with pytest.raises(CompressionError, match=r"baseline.epochs must be in \[0, 500\]. Received: 501"):
        Recipe.baseline_only({"name": "digits"}, {"name": "seed_cnn"}, epochs=501)
