"""The Optuna search on digits (a 300-sample training slice, 1-epoch fine-tunes: seconds per trial)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from compression.config import PruningConfig, Recipe, VariantSpec
from compression.errors import CompressionError
from compression.explore.search import run_search, search
from compression.explore.search_results import SearchResult, TrialState, read_search
from compression.explore.search_space import SearchSpec
from compression.progress import Cancelled
from compression.run_folder import RunFolder

# 95 % of conv's 108 and logits' 1080 weights leave 5 and 54 non-zero: fewer than 64 clusters in both layers,
# so the engine refuses to cluster ("None of the chosen layers can be clustered"): a real failing trial.
FAILING = {"sparsity/conv": 0.95, "sparsity/logits": 0.95, "clusters": 64, "qat": True, "epochs": 1}
DESTRUCTIVE = {"sparsity/conv": 0.95, "sparsity/logits": 0.95, "clusters": 0, "qat": False, "mode": "dynamic",
               "epochs": 1}


@pytest.fixture(scope="module")
def recipe():
    return Recipe.from_dict({"dataset": {"name": "digits", "max_train": 300}, "model": {"name": "seed_cnn"},
                             "baseline": {"pretrained": True}, "variants": [{"name": "float32"}],
                             "evaluation": {"latency_runs": 5, "throughput_batch": 64}, "seed": 0})


def quick(**kw) -> SearchSpec:
    return SearchSpec(**{"budget": 1.0, "minutes": None, "max_epochs": 1, **kw})


def test_same_seed_same_trials_and_every_trial_is_a_stored_variant(recipe, tmp_path):
    a = search(recipe, tmp_path / "a", quick(trials=4, seed=7))
    b = search(recipe, tmp_path / "b", quick(trials=4, seed=7))
    assert [t.source for t in a.trials][:3] == ["int8 anchor", "prior", "prior, bolder"]
    assert [t.source for t in a.trials] == [t.source for t in b.trials]
    assert [t.params for t in a.trials] == [t.params for t in b.trials]
    assert [(t.state, t.gzip_bytes, t.accuracy) for t in a.trials] == [(t.state, t.gzip_bytes, t.accuracy)
                                                                       for t in b.trials]
    stored = RunFolder(tmp_path / "a").read_results()
    assert stored.extra["kind"] == "search" and stored.status.value == "ok"
    assert [v.name for v in stored.variants] == [t.name for t in a.trials]
    for v in stored.ok_variants:
        VariantSpec(**v.settings)  # each trial is a normal recipe variant
        assert RunFolder(tmp_path / "a").tflite(v).is_file()
    assert read_search(stored) == a
    assert (tmp_path / "a" / "trials.csv").read_text().startswith("number,name,state")
    # the budget is respected: the chosen trial is within it, and is the smallest that is
    inside = [t for t in a.trials if t.within_budget]
    assert a.chosen == min(inside, key=lambda t: t.value).name
    assert a.chosen_trial.drop_points <= a.budget_points
    # each trial's objective is its file's gzip bytes (a constraint once overwrote it with -1)
    assert all(t.value == t.gzip_bytes > 0 for t in a.trials if t.state is TrialState.OK)
    assert all(t.drop_points <= a.budget_points for t in inside)
    assert set(a.front) <= {t.name for t in a.trials if t.state is TrialState.OK}
    history = a.history()
    assert list(history["best_size"].dropna()) == sorted(history["best_size"].dropna(), reverse=True)


def test_a_failing_trial_is_recorded_and_the_search_goes_on(recipe, tmp_path):
    result = search(recipe, tmp_path, quick(trials=2, prior=False, enqueue=(FAILING,)))
    first, second = result.trials
    assert first.state is TrialState.FAILED and "clustered" in first.error
    assert second.state is TrialState.OK
    stored = RunFolder(tmp_path).read_results()
    assert [v.status.value for v in stored.variants] == ["failed", "ok"]
    assert stored.status.value == "ok"


def test_a_repeated_proposal_is_answered_from_the_earlier_trial_not_run_again(recipe, tmp_path):
    result = search(recipe, tmp_path, quick(trials=2, prior=False, enqueue=(DESTRUCTIVE, DESTRUCTIVE)))
    first, second = result.trials
    assert first.params == DESTRUCTIVE and second.params != DESTRUCTIVE  # the repeat was not a trial
    assert first.state is TrialState.OK and second.source == "sampled"
    assert "1 proposal(s) repeated settings already tried: answered with their result, not run again" in result.notes
    assert [v.name for v in RunFolder(tmp_path).read_results().variants] == [first.name, second.name]


def test_cancelled_search_keeps_finished_trials_and_the_best_so_far(recipe, tmp_path):
    done = []

    def progress(event):
        if event.phase == "trial_done":
            done.append(event.variant)

    with pytest.raises(Cancelled):
        search(recipe, tmp_path, quick(trials=10), progress=progress, cancel=lambda: len(done) >= 1)
    stored = RunFolder(tmp_path).read_results()
    assert stored.status.value == "cancelled"
    result = read_search(stored)
    assert result.stopped == "cancelled"
    assert result.trials[0].state is TrialState.OK and result.trials[0].name == done[0]
    assert result.chosen == done[0]
    assert RunFolder(tmp_path).tflite(stored.variant(done[0])).is_file()
    assert len(result.trials) < 10


def test_none_within_budget_says_why(recipe, tmp_path):
    result = search(recipe, tmp_path, quick(trials=1, budget=0.5, prior=False, enqueue=(DESTRUCTIVE,)))
    (trial,) = result.trials
    assert trial.state is TrialState.OK and trial.drop_points > 0.5 and not trial.within_budget
    assert result.chosen is None
    assert "none of 1 finished trials is within the budget of 0.50 points" in result.why_none


def test_time_budget_stops_the_search(recipe, tmp_path):
    result = search(recipe, tmp_path, SearchSpec(budget=1.0, minutes=0.01, max_epochs=1))
    assert result.stopped == "minutes"
    assert result.trials and result.trials[-1].finished_s < 0.01 * 60 + 30  # the running trial is stopped


def test_job_reads_its_spec_and_results_round_trip(recipe, tmp_path):
    (tmp_path / "search.json").write_text(json.dumps({"trials": 1, "minutes": None, "max_epochs": 1}))
    result = run_search(recipe, tmp_path)
    assert len(result.trials) == 1
    assert SearchResult.from_dict(json.loads(json.dumps(result.to_dict()))) == result


def test_bad_settings_are_sentences():
    with pytest.raises(CompressionError, match="time budget"):
        SearchSpec(minutes=None, trials=None)
    with pytest.raises(CompressionError, match="budget"):
        SearchSpec(budget=-1)
    with pytest.raises(CompressionError, match="Unknown search setting"):
        SearchSpec.from_dict({"budgett": 1})
    with pytest.raises(CompressionError):
        SearchSpec(board="no-such-board")


def test_per_layer_sparsity(seed_cnn, small_train):
    from compression.measure.weight_stats import layer_kernels
    from compression.techniques.pruning import prune

    pruned, info = prune(seed_cnn, PruningConfig(schedule="constant", final_sparsity=0.9,
                                                 layer_sparsity={"conv": 0.0, "logits": 0.9}), *small_train, epochs=1)
    kernels = layer_kernels(pruned)
    assert info["layers"] == ["logits"]
    assert float(np.mean(kernels["conv"] == 0)) == 0.0
    assert float(np.mean(kernels["logits"] == 0)) == pytest.approx(0.9, abs=0.01)
    with pytest.raises(CompressionError, match="layer_sparsity"):
        PruningConfig(layer_sparsity={"conv": 1.5})


def test_store_keeps_the_search_settings_with_the_run(recipe, tmp_path):
    from compression.store import Store

    store = Store(tmp_path)
    spec = json.dumps(quick(trials=2).to_dict())
    run_id = store.create_run(recipe, job="compression.explore.search:run_search", files={"search.json": spec})
    assert SearchSpec.from_dict(json.loads((store.run_dir(run_id) / "search.json").read_text())) == quick(trials=2)
    with pytest.raises(CompressionError, match="plain .json names"):
        store.create_run(recipe, files={"../evil.json": "{}"})
    with pytest.raises(CompressionError, match="plain .json names"):
        store.create_run(recipe, files={"results.json": "{}"})


def test_board_budget_is_a_constraint(recipe, tmp_path):
    fits = search(recipe, tmp_path / "nano", quick(trials=1, board="nano33"))
    (anchor,) = fits.trials
    assert anchor.arena_bytes and anchor.arena_bytes > 0 and anchor.within_budget
    assert fits.chosen == anchor.name and fits.board["name"] == "nano33"
    tiny = search(recipe, tmp_path / "tiny", quick(trials=1, board="custom", board_ram_kb=1, board_flash_kb=1))
    (trial,) = tiny.trials
    assert not trial.within_budget and tiny.chosen is None
    assert any("arena" in r for r in trial.reasons) and any("flash" in r for r in trial.reasons)


def test_cli_search_prints_the_chosen_variant(recipe, tmp_path, capsys):
    from compression.cli import main

    path = tmp_path / "recipe.json"
    path.write_text(recipe.to_json())
    code = main(["search", str(path), "--trials", "1", "--max-epochs", "1", "--out", str(tmp_path / "out")])
    out = capsys.readouterr().out
    assert code == 0
    assert "chosen: trial-000" in out and "stopped by: trials" in out
    assert re.search(r" settings .*\n.*int8 anchor +int8 ", out), out  # what each trial tried, in words
    assert read_search(RunFolder(tmp_path / "out").read_results()).chosen == "trial-000"
    assert main(["search", str(path), "--budget", "-1", "--trials", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: The accuracy budget")


def test_a_new_best_is_followed_one_sparsity_step_further():
    from compression.explore.search_space import _bolder, _Space

    space = _Space(layers=("conv", "logits"), upper={"conv": 0.95, "logits": 0.95}, cluster_layers=None,
                   max_epochs=2, default_epochs=1, modes=("int8",))
    params = {"sparsity/conv": 0.0, "sparsity/logits": 0.8, "clusters": 8, "qat": True, "epochs": 2}
    assert _bolder(params, space) == {**params, "sparsity/logits": 0.82}  # from 80 %: 2-point steps
    assert _bolder({**params, "sparsity/logits": 0.5}, space) == {**params, "sparsity/logits": 0.55}
    assert _bolder({**params, "sparsity/logits": 0.94}, space) is None  # nothing can go further (0.95 at most)
    assert _bolder({"sparsity/conv": 0.0, "sparsity/logits": 0.0, "qat": False, "mode": "int8"}, space) is None


def test_a_new_best_is_followed_by_more_zeros_and_by_fewer_clusters():
    from compression.explore.search_space import _follow_ups, _Space

    space = _Space(layers=("conv", "logits"), upper={"conv": 0.95, "logits": 0.95}, cluster_layers=None,
                   max_epochs=2, default_epochs=1, modes=("int8",))
    params = {"sparsity/conv": 0.0, "sparsity/logits": 0.8, "clusters": 8, "qat": True, "epochs": 2}
    assert _follow_ups(params, space, "trial-003") == [
        ({**params, "sparsity/logits": 0.82}, "one step past trial-003"),
        ({**params, "clusters": 4}, "fewer clusters than trial-003"),
    ]
    at_the_end = {**params, "sparsity/logits": 0.94, "clusters": 4}  # no step further, no fewer clusters
    assert _follow_ups(at_the_end, space, "trial-009") == []
    unclustered = {**params, "clusters": 0}
    assert [why for _, why in _follow_ups(unclustered, space, "t")] == ["one step past t"]


def test_a_newer_best_drops_the_follow_ups_of_the_best_it_superseded():
    from compression.explore.search_space import _FollowUps, _settings_key, _Space

    space = _Space(layers=("conv", "logits"), upper={"conv": 0.95, "logits": 0.95}, cluster_layers=None,
                   max_epochs=2, default_epochs=1, modes=("int8",))
    old = {"sparsity/conv": 0.0, "sparsity/logits": 0.8, "clusters": 8, "qat": True, "epochs": 2}
    new = {**old, "sparsity/logits": 0.82}
    queue = _FollowUps()
    queue.new_best(old, space, "trial-003")
    assert queue.next(set()) == ({**old, "sparsity/logits": 0.82}, "one step past trial-003")
    queue.new_best(new, space, "trial-005")  # "fewer clusters than trial-003" was not asked yet: dropped
    assert queue.next(set()) == ({**new, "sparsity/logits": 0.84}, "one step past trial-005")
    tried = {_settings_key({**new, "clusters": 4})}  # the sampler already ran it: skipped, not repeated
    assert queue.next(tried) is None


def test_a_step_within_budget_that_is_not_a_new_best_walks_on():
    from compression.explore.search_space import _FollowUps, _Space

    space = _Space(layers=("conv", "logits"), upper={"conv": 0.95, "logits": 0.95}, cluster_layers=None,
                   max_epochs=2, default_epochs=1, modes=("int8",))
    best = {"sparsity/conv": 0.0, "sparsity/logits": 0.8, "clusters": 4, "qat": True, "epochs": 2}
    queue = _FollowUps()
    queue.new_best(best, space, "trial-006")
    step, why = queue.next(set())
    assert why == "one step past trial-006" and step["sparsity/logits"] == 0.82
    queue.walk_on(step, space, "trial-007")  # 82 % stayed within budget but its gzip was larger than 80 %'s
    assert queue.next(set()) == ({**best, "sparsity/logits": 0.84}, "one step past trial-007")
    queue.walk_on({**best, "sparsity/logits": 0.94}, space, "trial-020")  # nothing further: nothing queued
    assert queue.next(set()) is None


def test_a_stripping_search_sizes_and_keeps_the_stripped_file(recipe, tmp_path):
    from compression import _tf
    from compression.tflite.convert import gzip_size

    plain = search(recipe, tmp_path / "plain", quick(trials=1))
    stripped = search(recipe, tmp_path / "stripped", quick(trials=1, strip_strings=True))
    (a,), (b,) = plain.trials, stripped.trials
    assert a.params == b.params and a.accuracy == b.accuracy  # the same int8 anchor, the same outputs
    assert b.gzip_bytes < a.gzip_bytes and b.size_bytes < a.size_bytes
    row = RunFolder(tmp_path / "stripped").read_results().variant(b.name)
    assert row.settings["strip_strings"] is True and any("strings stripped" in n for n in row.notes)
    data = RunFolder(tmp_path / "stripped").tflite(row).read_bytes()
    assert len(data) == b.size_bytes and gzip_size(data) == b.gzip_bytes
    names = [t["name"] for t in _tf.interpreter_module().Interpreter(model_content=data).get_tensor_details()]
    assert set(names) == {""}
    assert SearchSpec.from_dict(stripped.spec.to_dict()).strip_strings is True
    with pytest.raises(CompressionError, match="strip_strings must be true or false"):
        SearchSpec(strip_strings="yes")


def test_a_baseline_at_chance_is_refused_before_any_trial(tmp_path, capsys):
    """Every trial is 'within 1 point' of a baseline at chance: the search and the sensitivity refuse it."""
    from compression.cli import main
    from compression.explore.sensitivity import run_sensitivity
    from tests.flagged_model import save_constant_model

    model = save_constant_model(tmp_path / "constant.keras")
    at_chance = Recipe.from_dict({"dataset": {"name": "digits"}, "model": {"path": str(model)},
                                  "baseline": {"pretrained": True}, "variants": [{"name": "float32"}]})
    with pytest.raises(CompressionError, match=r"The baseline is at chance \(10\.\d% test accuracy"):
        search(at_chance, tmp_path / "s", quick(trials=2))
    stored = RunFolder(tmp_path / "s").read_results()
    assert stored.status.value == "failed" and "would choose a model that learned nothing" in stored.error
    assert not list((tmp_path / "s").glob("trial-*.tflite")) and not stored.variants
    with pytest.raises(CompressionError, match="every layer would look robust"):
        run_sensitivity(at_chance, tmp_path / "sens")
    (tmp_path / "r.json").write_text(json.dumps(at_chance.to_dict()))
    capsys.readouterr()
    assert main(["search", str(tmp_path / "r.json"), "--trials", "2", "--out", str(tmp_path / "cli")]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("error: The baseline is at chance"), err


def test_the_space_holds_layers_with_kernels_only_and_a_tiny_layer_stays_dense(tmp_path, digits):
    """tfmot's prune registry 'supports' BatchNormalization, which has nothing to prune: not a search variable.
    A layer under 1 % of the weights is left out of the space and really stays dense (it once took the trial's
    highest sparsity)."""
    from compression import _tf
    from compression.techniques.train import compile_for_training

    keras = _tf.keras()
    _tf.set_seed(0)
    inputs = keras.Input(digits.input_shape)
    h = keras.layers.Conv2D(4, 3, use_bias=False, name="conv")(inputs)  # 36 of ~9 900 weights
    h = keras.layers.ReLU()(keras.layers.BatchNormalization(name="bn")(h))
    h = keras.layers.Dense(64, activation="relu", name="hidden")(keras.layers.Flatten()(h))
    model = keras.Model(inputs, keras.layers.Dense(10, name="logits")(h))
    compile_for_training(model)
    model.fit(digits.x_train, digits.y_train, epochs=5, verbose=0)
    model.save(tmp_path / "bn.keras")
    recipe = Recipe.from_dict({"dataset": {"name": "digits", "max_train": 300},
                               "model": {"path": str(tmp_path / "bn.keras")}, "baseline": {"pretrained": True},
                               "variants": [{"name": "float32"}], "evaluation": {"latency_runs": 5}})
    result = search(recipe, tmp_path / "s", quick(trials=2))
    assert {k for k in result.trials[0].params if k.startswith("sparsity/")} == {"sparsity/hidden", "sparsity/logits"}
    assert any("tiny layer(s) left dense" in n and "conv (36 weights" in n for n in result.notes), result.notes
    pruned = result.trials[1]
    assert pruned.state is TrialState.OK and pruned.params["sparsity/hidden"] > 0
    layers = {x.name: x for x in RunFolder(tmp_path / "s").read_results().variant(pruned.name).layers}
    assert layers["conv"].sparsity == 0 and layers["hidden"].sparsity > 0.4
