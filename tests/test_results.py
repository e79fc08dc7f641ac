"""Typed results: a results.json of the current format round-trips through RunResults."""

import json
from pathlib import Path

import pytest

from compression.errors import CompressionError
from compression.results import FINAL_STATUSES, LayerStat, RunResults, RunStatus, VariantResult, best_ratio, file_stem
from compression.run_folder import RunFolder

FIXTURE = Path(__file__).parent / "data" / "results_v1.json"


def test_reads_a_results_file_of_the_current_format():
    raw = json.loads(FIXTURE.read_text())
    results = RunResults.from_dict(raw)
    assert results.status is RunStatus.OK
    assert results.dataset.name == "digits" and results.dataset.num_classes == 10
    assert results.reference.size_bytes == raw["reference"]["size_bytes"]
    int8 = results.variant("int8")
    assert int8.ok and int8.input_dtype == "int8"
    assert int8.latency.median == raw["variants"][0]["latency_ms"]["median"]
    assert isinstance(int8.layers[0], LayerStat)
    assert int8.timings.convert == raw["variants"][0]["timings"]["convert"]
    assert results.variant("bad").status is RunStatus.FAILED
    assert results.variant("late").status is RunStatus.CANCELLED
    assert [v.name for v in results.ok_variants] == ["int8", "pruned"]


def test_to_dict_gives_back_the_same_schema():
    raw = json.loads(FIXTURE.read_text())
    again = RunResults.from_dict(raw).to_dict()
    for key in raw:
        assert key in again
    for before, after in zip(raw["variants"], again["variants"], strict=True):
        for key, value in before.items():
            assert after[key] == value, key
    # and it round-trips once more unchanged
    assert RunResults.from_dict(again).to_dict() == again


def test_unknown_fields_survive_a_round_trip():
    row = VariantResult.from_dict({"name": "a", "status": "ok", "from_the_future": {"x": 1}})
    assert row.extra == {"from_the_future": {"x": 1}}
    assert row.to_dict()["from_the_future"] == {"x": 1}


def test_tolerant_of_missing_and_wrong_values():
    results = RunResults.from_dict({"status": "bogus", "variants": [{"name": "x", "latency_ms": None,
                                                                    "size_bytes": "12", "accuracy": float("nan")}]})
    v = results.variants[0]
    assert results.status is RunStatus.RUNNING
    assert v.latency.median is None and v.size_bytes is None and v.accuracy is None
    assert results.reference is None and results.best_ratio() is None


def test_ratios_and_best_ratio_against_hand_made_numbers():
    results = RunResults.from_dict({
        "reference": {"size_bytes": 1000, "gzip_bytes": 800, "accuracy": 0.90},
        "variants": [
            {"name": "a", "status": "ok", "size_bytes": 250, "gzip_bytes": 200, "accuracy": 0.895},  # 4x, within
            {"name": "b", "status": "ok", "size_bytes": 100, "gzip_bytes": 80, "accuracy": 0.85},    # 10x, too lossy
            {"name": "c", "status": "failed", "gzip_bytes": 10, "accuracy": 0.99},
        ]})
    a = results.variant("a")
    assert a.ratio(results.reference) == 4.0 and a.gzip_ratio(results.reference) == 4.0
    assert a.delta_accuracy(results.reference) == pytest.approx(-0.5)
    assert results.best_ratio() == 4.0
    assert best_ratio(results.to_dict(), tolerance=0.06) == 10.0
    assert best_ratio(None) is None


def test_with_variant_replaces_by_name_in_place():
    results = RunResults.from_dict({"variants": [{"name": "a"}, {"name": "b"}]})
    results = results.with_variant(VariantResult(name="a", status=RunStatus.OK))
    results = results.with_variant(VariantResult(name="c", status=RunStatus.FAILED))
    assert [(v.name, v.status.value) for v in results.variants] == [("a", "ok"), ("b", "running"), ("c", "failed")]


def test_status_enum_values_and_finals():
    assert [s.value for s in RunStatus] == ["queued", "running", "ok", "failed", "cancelled", "interrupted"]
    assert RunStatus.OK == "ok" and RunStatus.OK.final and not RunStatus.RUNNING.final
    assert "interrupted" in FINAL_STATUSES


def test_run_folder_owns_the_paths(tmp_path):
    folder = RunFolder(tmp_path / "r1")
    assert folder.read_results() is None
    row = VariantResult(name="pruned int8!", tflite=file_stem("pruned int8!") + ".tflite")
    assert folder.tflite(row) == tmp_path / "r1" / "pruned_int8.tflite"
    assert folder.weights(row.stem) == tmp_path / "r1" / "weights" / "pruned_int8.npz"
    assert folder.predictions("baseline").name == "baseline.npy"
    with pytest.raises(CompressionError):
        folder.tflite(VariantResult(name="x"))
    results = RunResults.from_dict(json.loads(FIXTURE.read_text()))
    folder.write_results(results)
    assert folder.read_results() == results
    folder.results_file.write_text("{not json")
    with pytest.raises(CompressionError, match="not valid JSON"):
        folder.read_results()


def test_run_folder_writes_and_reads_the_run_files(tmp_path):
    import numpy as np

    folder = RunFolder(tmp_path / "r2")
    folder.path.mkdir()
    folder.save_weights("baseline", {"conv": np.arange(6.0).reshape(2, 3)})
    folder.save_weights("pruned", {"conv": np.zeros((2, 3))})
    assert folder.load_weights("pruned")["conv"].sum() == 0
    assert folder.load_weights("int8")["conv"].sum() == 15  # no own kernels: the baseline's (post-training)
    assert folder.kernels("int8") == folder.weights("baseline")
    folder.save_predictions("labels", [3, 1, 2])
    got = folder.load_predictions("labels")
    assert got.dtype == np.int16 and got.tolist() == [3, 1, 2]
    assert folder.load_predictions("nothing") is None
    assert folder.read_recipe_text() is None
    folder.write_recipe_text('{"title": "t"}')
    assert json.loads(folder.recipe_file.read_text()) == {"title": "t"}
    assert folder.file("search.json") == folder.path / "search.json"
    for bad in ("../x.json", "sub/x.json", ".hidden", ""):
        with pytest.raises(CompressionError, match="plain name"):
            folder.file(bad)
    (folder.path / "a.tflite").write_bytes(b"x")
    (folder.path / ".a.tflite.tmp.tflite").write_bytes(b"x")
    assert folder.tflite_files() == [folder.path / "a.tflite"]


def test_results_table_columns_and_ratios_from_typed_results():
    from compression.results import TABLE_COLUMNS, results_table

    results = RunResults.from_dict({
        "reference": {"size_bytes": 1000, "gzip_bytes": 800, "accuracy": 0.9},
        "variants": [{"name": "int8", "status": "ok", "size_bytes": 250, "gzip_bytes": 200, "accuracy": 0.88,
                      "latency_ms": {"median": 0.1, "p90": 0.2}, "flags": [{"code": "near_chance", "message": "m"}]},
                     {"name": "bad", "status": "failed", "error": "why"}],
    })
    table = results.table()
    assert list(table.columns) == TABLE_COLUMNS
    int8 = table.set_index("name").loc["int8"]
    assert int8["ratio"] == 4.0 and int8["gzip_ratio"] == 4.0
    assert int8["delta_accuracy"] == pytest.approx(-2.0) and int8["latency_p90_ms"] == 0.2
    assert int8["flags"] == "near_chance"
    assert table.set_index("name").loc["bad", "error"] == "why"
    assert results_table(results.to_dict()).equals(table)  # a raw dict reads the same
