"""run_recipe end to end on digits: the table, the files, failure isolation, determinism, cancel."""

import json

import numpy as np
import pytest

from compression import Cancelled, CompressionError, Recipe, run_recipe
from compression.run.recipe import load_results

TINY = {
    "dataset": {"name": "digits"},
    "model": {"name": "seed_cnn"},
    "baseline": {"pretrained": True},
    "evaluation": {"latency_runs": 20},
}


def recipe(*variants, **overrides):
    return Recipe.from_dict({**TINY, **overrides, "variants": list(variants)})


@pytest.fixture(scope="module")
def mixed_run(tmp_path_factory):
    """One run with a good variant, a PQAT variant and one that fails at clustering."""
    out = tmp_path_factory.mktemp("mixed")
    r = recipe(
        {"name": "float32"},
        {"name": "int8", "quantization": "int8"},
        {"name": "pqat", "pruning": {"schedule": "constant", "final_sparsity": 0.8}, "qat": {},
         "fine_tune_epochs": 1, "quantization": "int8"},
        {"name": "too-many-clusters", "clustering": {"clusters": 256, "layers": ["conv"]}, "fine_tune_epochs": 1},
    )
    events = []
    table = run_recipe(r, out, progress=events.append)
    return r, out, table, events


def test_results_table_and_files(mixed_run):
    r, out, table, _ = mixed_run
    assert list(table.name) == ["float32", "int8", "pqat", "too-many-clusters"]
    ok = table[table.status == "ok"].set_index("name")
    assert ok.loc["float32", "accuracy"] == pytest.approx(0.9722, abs=1e-4)  # the shipped card's accuracy
    assert ok.loc["float32", "ratio"] == pytest.approx(1.0)
    assert ok.loc["int8", "input_dtype"] == "int8"
    assert ok.loc["int8", "size_bytes"] < ok.loc["float32", "size_bytes"] * 0.7
    assert ok.loc["pqat", "sparsity"] == pytest.approx(0.8, abs=0.01)
    assert ok.loc["pqat", "gzip_bytes"] < ok.loc["int8", "gzip_bytes"]
    for name in ok.index:
        data = (out / ok.loc[name, "tflite"]).read_bytes()
        assert len(data) == ok.loc[name, "size_bytes"]
    results = load_results(out)
    assert Recipe.from_dict(results.recipe) == r
    assert results.versions["tensorflow"].startswith("2.21")
    row = results.variants[2]
    raw = json.loads((out / "results.json").read_text())["variants"][2]  # the file keeps its schema
    assert {"median", "p90", "mean", "std", "runs", "threads"} <= set(raw["latency_ms"])
    assert row.latency.runs == 20 and row.latency.threads == 1
    assert {layer.name for layer in row.layers} == {"conv", "logits"}
    assert set(raw["timings"]) == {"fine_tune", "convert", "measure"}
    assert np.load(out / "predictions" / "pqat.npy").shape == (360,)


def test_one_failing_variant_keeps_the_others(mixed_run):
    _, out, table, events = mixed_run
    failed = table.set_index("name").loc["too-many-clusters"]
    assert failed.status == "failed"
    assert "None of the chosen layers can be clustered" in failed.error
    assert load_results(out).status == "ok"
    done = [e.variant for e in events if e.phase == "variant_done"]
    assert done == ["float32", "int8", "pqat", "too-many-clusters"]
    fractions = [e.fraction for e in events]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_same_recipe_same_seed_same_table(tmp_path):
    r = recipe({"name": "pruned", "pruning": {"final_sparsity": 0.6}, "fine_tune_epochs": 1, "quantization": "int8"},
               {"name": "clustered", "clustering": {"clusters": 8}, "fine_tune_epochs": 1})
    a = run_recipe(r, tmp_path / "a")
    b = run_recipe(r, tmp_path / "b")
    cols = ["accuracy", "size_bytes", "gzip_bytes", "sparsity"]
    assert a[cols].equals(b[cols])
    assert (tmp_path / "a" / "pruned.tflite").read_bytes() == (tmp_path / "b" / "pruned.tflite").read_bytes()


def test_trained_baseline_and_distillation(tmp_path):
    r = recipe({"name": "student-int8", "distillation": {"student": "seed_cnn", "epochs": 3}, "quantization": "int8"},
               model={"name": "mlp"}, baseline={"pretrained": False, "epochs": 2})
    table = run_recipe(r, tmp_path)
    results = load_results(tmp_path)
    assert results.baseline.source == "trained"
    assert len(results.baseline.history["loss"]) == 2
    row = results.variants[0]
    assert row.status == "ok", row.error
    assert row.distillation["params"] == 1210 < row.distillation["teacher_params"]
    assert table.loc[0, "input_dtype"] == "int8"


def test_dataset_and_model_errors_are_raised_as_sentences(tmp_path):
    with pytest.raises(CompressionError, match="Unknown dataset|unknown dataset"):
        run_recipe(recipe({"name": "a"}, dataset={"name": "imagenet"}), tmp_path / "a")
    assert json.loads((tmp_path / "a" / "results.json").read_text())["status"] == "failed"
    with pytest.raises(CompressionError, match="no pretrained 'lstm'"):
        run_recipe(recipe({"name": "a"}, model={"name": "lstm"}), tmp_path / "b")


def test_cancel_keeps_finished_variants(tmp_path):
    # Cancel once the qat fine-tune has finished an epoch: float32's row may still be in the row writer then
    # (it converts beside the fine-tune), and a cancel must let it finish. Waiting for float32's row instead
    # raced the 3-epoch fine-tune, which can end first (the cancel then never fired).
    state = {"qat_epochs": 0}

    def progress(event):
        if event.variant == "qat" and event.data.get("epoch_end"):
            state["qat_epochs"] += 1

    with pytest.raises(Cancelled):
        run_recipe(recipe({"name": "float32"}, {"name": "qat", "qat": {}, "fine_tune_epochs": 3}), tmp_path,
                   progress=progress, cancel=lambda: state["qat_epochs"] >= 1)
    results = load_results(tmp_path)
    assert results.status == "cancelled"
    assert [(v.name, v.status) for v in results.variants] == [("float32", "ok"), ("qat", "cancelled")]


def test_lstm_user_model_converts_and_runs(tmp_path, digits):
    from compression.inputs.models import build_model
    from compression.techniques.train import compile_for_training

    model = build_model("lstm", digits.input_shape, 10)
    compile_for_training(model)
    model.fit(digits.x_train[:300], digits.y_train[:300], epochs=1, verbose=0)
    path = tmp_path / "lstm.keras"
    model.save(path)
    table = run_recipe(recipe({"name": "float32"}, {"name": "dynamic", "quantization": "dynamic"},
                              model={"path": str(path)}, baseline={"pretrained": True}), tmp_path / "out")
    assert list(table.status) == ["ok", "ok"], list(table.error)
    assert table.agreement.min() > 0.95


def test_a_row_says_which_layer_lost_what_a_stage_made(tmp_path):
    """Settings say what was asked; a note says where the final model does not hold it, with both figures."""
    from compression.run.stages import values_per_channel
    from compression.run.variant import lost_notes

    pruned = {"name": "pqat-logits-float", "pruning": {"schedule": "constant", "final_sparsity": 0.8},
              "qat": {"layers": ["conv"]}, "fine_tune_epochs": 1, "quantization": "int8"}
    pcqat = {"name": "pcqat", "pruning": {"schedule": "constant", "final_sparsity": 0.8, "layers": ["logits"]},
             "clustering": {"clusters": 8, "layers": ["logits"]}, "qat": {}, "fine_tune_epochs": 1,
             "quantization": "int8"}
    run_recipe(recipe(pruned, pcqat, evaluation={"tflm": False, "latency_runs": 5}), tmp_path)
    rows = {v.name: v for v in load_results(tmp_path).variants}
    # QAT leaves logits float, so its fine-tune has no pruning mask: the zeros go, and the row says so
    lost = [n for n in rows["pqat-logits-float"].notes if n.startswith("'logits' lost zeros after pruning: 80.0%")]
    assert lost, rows["pqat-logits-float"].notes
    logits = next(x for x in rows["pqat-logits-float"].layers if x.name == "logits")
    assert logits.sparsity < 0.79 and f"{logits.sparsity:.1%} in the final model" in lost[0]
    assert not [n for n in rows["pcqat"].notes if " lost " in n], rows["pcqat"].notes
    # a clustered layer keeps k values per channel (CQAT trains a conv's centroids per channel): not lost
    per_channel = np.repeat(np.arange(10.0)[None, :], 108, axis=0) + np.arange(108)[:, None] % 8
    assert values_per_channel(per_channel) == 8 and len(np.unique(per_channel)) == 17
    assert lost_notes({"values": {"logits": 8}}, {"logits": per_channel}) == []
    scattered = np.arange(1080.0).reshape(108, 10)
    assert lost_notes({"values": {"logits": 8}}, {"logits": scattered}) == [
        "'logits' lost its clusters: at most 8 distinct values per channel after clustering, up to 108 in the "
        "final model"]
