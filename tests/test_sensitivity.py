"""Per-layer sensitivity on digits: a layer built to be fragile ranks above one built to be robust."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compression import _tf
from compression.errors import CompressionError
from compression.explore.sensitivity import SensitivityResult, Technique, analyze, run_sensitivity
from compression.views.search_charts import sensitivity_heatmap, sensitivity_ranking


@pytest.fixture(scope="module")
def fragile_and_robust(digits):
    """An MLP whose first layer is fragile and second robust under magnitude pruning, by construction.

    A small MLP is trained (64 → 32 relu → 10), then widened to 320 hidden units without
    changing its outputs: the 288 extra units get LARGE input weights but a bias of -1e4,
    so ReLU keeps them at 0. Pruning the first layer by magnitude therefore removes the
    small weights that carry the signal first (fragile). The second layer's weights from
    the dead units are TINY, so pruning it up to 90 % removes only those (robust).
    """
    keras = _tf.keras()
    keras.utils.set_random_seed(0)
    small = keras.Sequential([keras.layers.Input(digits.input_shape), keras.layers.Flatten(),
                              keras.layers.Dense(32, activation="relu"), keras.layers.Dense(10)])
    small.compile(optimizer=keras.optimizers.Adam(3e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])
    small.fit(digits.x_train, digits.y_train, epochs=15, batch_size=64, verbose=0)
    w1, b1, w2, b2 = small.get_weights()
    rng = np.random.default_rng(0)
    extra = 288
    big = rng.choice([-1.0, 1.0], size=(w1.shape[0], extra)) * rng.uniform(3, 4, size=(w1.shape[0], extra))
    model = keras.Sequential([keras.layers.Input(digits.input_shape), keras.layers.Flatten(name="flatten"),
                              keras.layers.Dense(32 + extra, activation="relu", name="fragile"),
                              keras.layers.Dense(10, name="robust")])
    model.set_weights([np.concatenate([w1, big], axis=1).astype(np.float32),
                       np.concatenate([b1, np.full(extra, -1e4)]).astype(np.float32),
                       np.concatenate([w2, np.full((extra, 10), 1e-6)], axis=0).astype(np.float32), b2])
    return model


def test_fragile_layer_ranks_above_robust_layer(fragile_and_robust, digits):
    before = [w.copy() for w in fragile_and_robust.get_weights()]
    result = analyze(fragile_and_robust, digits, clusters=(8,), int8=True)
    assert result.baseline_accuracy > 0.85
    ranking = result.ranking()
    assert [r["layer"] for r in ranking] == ["fragile", "robust"]
    assert result.cell("fragile", Technique.PRUNE, 0.5).drop_points > 30
    for s in (0.5, 0.8, 0.9):
        assert abs(result.cell("robust", Technique.PRUNE, s).drop_points) < 1
    assert result.max_safe_sparsity("robust", 1.0) >= 0.9
    assert result.max_safe_sparsity("fragile", 1.0) == 0.0
    assert {x.name: x.params for x in result.layers} == {"fragile": 64 * 320, "robust": 320 * 10}
    # the analysis works on copies: the model is untouched
    assert all(np.array_equal(a, b) for a, b in zip(before, fragile_and_robust.get_weights(), strict=True))
    # int8 of one layer costs little on a well-conditioned layer
    assert result.cell("robust", Technique.INT8).drop_points < 2


def test_result_round_trips_through_json_and_charts(fragile_and_robust, digits):
    result = analyze(fragile_and_robust, digits, sparsities=(0.5, 0.9), clusters=(8,), int8=False)
    back = SensitivityResult.from_dict(json.loads(json.dumps(result.to_dict())))
    assert back == result
    frame = result.frame()
    assert set(frame["label"]) == {"prune 50%", "prune 90%", "cluster 8"}
    assert list(result.matrix().index) == ["fragile", "robust"]
    heat = sensitivity_heatmap(frame)
    assert list(heat.data[0].x) == ["prune 50%", "prune 90%", "cluster 8"]
    assert heat.data[0].y[0].startswith("fragile (20,480 w")
    import pandas as pd

    bars = sensitivity_ranking(pd.DataFrame(result.ranking()))
    assert bars.data[0].y[-1].startswith("fragile")  # most sensitive on top


def test_a_test_subsample_is_measured_when_asked(fragile_and_robust, digits):
    result = analyze(fragile_and_robust, digits, sparsities=(0.5,), clusters=(8,), int8=False, max_test=100)
    assert result.n_test == 100
    assert result.cell("fragile", Technique.PRUNE, 0.5).drop_points > 30


def test_bad_settings_are_refused(fragile_and_robust, digits):
    with pytest.raises(CompressionError, match="sparsities"):
        analyze(fragile_and_robust, digits, sparsities=(1.2,))


def test_sensitivity_run_is_stored_with_its_kind(tmp_path):
    from compression.config import Recipe
    from compression.run_folder import RunFolder

    recipe = Recipe.from_dict({"dataset": {"name": "digits"}, "model": {"name": "seed_cnn"},
                               "baseline": {"pretrained": True}, "variants": [{"name": "float32"}]})
    events = []
    result = run_sensitivity(recipe, tmp_path, progress=events.append)
    stored = RunFolder(tmp_path).read_results()
    assert stored.status.value == "ok"
    assert stored.extra["kind"] == "sensitivity"
    assert SensitivityResult.from_dict(stored.extra["sensitivity"]) == result
    assert {x.name for x in result.layers} == {"conv", "logits"}
    assert (tmp_path / "sensitivity.csv").read_text().startswith("layer,params,technique")
    assert any(e.phase == "sensitivity" for e in events)
    # the 108-weight conv is visible as the small layer it is
    assert result.layer("conv").params == 108


def test_cli_sensitivity(tmp_path, capsys):
    from compression.cli import main

    assert main(["sensitivity", "experiment_e", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ranking (most sensitive first):" in out and "prune 50%" in out
    assert (tmp_path / "results.json").is_file()
