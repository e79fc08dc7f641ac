"""The result cache: identical re-runs reuse rows and files, changes recompute only what changed."""

from __future__ import annotations

import pytest

from compression import Recipe, run_recipe
from compression.run.cache import ResultCache
from compression.run_folder import RunFolder
from compression.store import Store

BASE = {
    "dataset": {"name": "digits"},
    "model": {"name": "seed_cnn"},
    "baseline": {"pretrained": True},
    "evaluation": {"latency_runs": 5, "tflm": False},
}
FLOAT = {"name": "float32"}
INT8 = {"name": "int8", "quantization": "int8", "representative_samples": 50}


def recipe(*variants, **overrides) -> Recipe:
    return Recipe.from_dict({**BASE, **overrides, "variants": list(variants)})


def run(store: Store, r: Recipe):
    run_id = store.create_run(r)
    run_recipe(r, store.run_dir(run_id))
    return run_id, RunFolder(store.run_dir(run_id)).read_results()


def same_row(a, b) -> None:
    """Every figure equal; only where it came from and how long this run took differ."""
    da, db = a.to_dict(), b.to_dict()
    for key in ("reused_from", "seconds"):
        da.pop(key), db.pop(key)
    assert da == db


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    return Store(tmp_path_factory.mktemp("lab"))


@pytest.fixture(scope="module")
def first(store):
    return run(store, recipe(FLOAT, INT8))


def test_an_unchanged_rerun_reuses_every_row_with_identical_figures_and_files(store, first):
    first_id, one = first
    second_id, two = run(store, recipe(FLOAT, INT8))
    assert [v.reused_from for v in one.variants] == [None, None]
    assert [v.reused_from for v in two.variants] == [first_id, first_id]
    assert two.baseline.reused_from == first_id and two.reference == one.reference
    assert two.status.value == "ok"
    a, b = RunFolder(store.run_dir(first_id)), RunFolder(store.run_dir(second_id))
    for v1, v2 in zip(one.variants, two.variants, strict=True):
        same_row(v1, v2)
        assert a.tflite(v1).read_bytes() == b.tflite(v2).read_bytes()
        assert a.predictions(v1.stem).read_bytes() == b.predictions(v2.stem).read_bytes()
    assert a.baseline_model.read_bytes() == b.baseline_model.read_bytes()


def test_a_changed_variant_is_recomputed_and_the_others_reused(store, first):
    first_id, one = first
    changed = {**INT8, "representative_samples": 60}
    _, three = run(store, recipe(FLOAT, changed, {"name": "renamed-int8", **{k: v for k, v in INT8.items()
                                                                            if k != "name"}}))
    float_row, int8_row, renamed = three.variants
    assert float_row.reused_from == first_id
    assert int8_row.reused_from is None and int8_row.ok  # its settings changed: computed afresh
    assert renamed.reused_from == first_id and renamed.name == "renamed-int8"  # a name is not part of the key
    same_row(renamed.replace(name="int8", settings=one.variants[1].settings, tflite="int8.tflite"), one.variants[1])


def test_deleting_the_run_that_computed_a_row_breaks_no_run_that_reused_it(store):
    r = recipe({"name": "dyn", "quantization": "dynamic"})
    origin_id, origin = run(store, r)
    reuser_id, reuser = run(store, r)
    assert reuser.variants[0].reused_from == origin_id
    expected = RunFolder(store.run_dir(origin_id)).tflite(origin.variants[0]).read_bytes()
    store.delete_run(origin_id)
    kept = RunFolder(store.run_dir(reuser_id))
    assert kept.tflite(reuser.variants[0]).read_bytes() == expected
    assert kept.baseline_model.is_file() and kept.predictions("dyn").is_file()
    later_id, later = run(store, r)  # the cache holds its own copies: still reused, same bytes
    assert later.variants[0].reused_from == origin_id
    assert RunFolder(store.run_dir(later_id)).tflite(later.variants[0]).read_bytes() == expected


def test_recompute_forces_fresh_work_with_the_same_results(store, first):
    first_id, one = first
    forced = recipe(FLOAT, INT8, evaluation={**BASE["evaluation"], "recompute": True})
    forced_id, two = run(store, forced)
    assert two.baseline.reused_from is None
    assert [v.reused_from for v in two.variants] == [None, None]
    a, b = RunFolder(store.run_dir(first_id)), RunFolder(store.run_dir(forced_id))
    for v1, v2 in zip(one.variants, two.variants, strict=True):
        assert (v1.size_bytes, v1.accuracy, v1.agreement) == (v2.size_bytes, v2.accuracy, v2.agreement)
        assert a.tflite(v1).read_bytes() == b.tflite(v2).read_bytes()


def test_a_trained_baseline_is_reused_and_new_variants_fine_tune_from_it(store):
    trained = {"dataset": {"name": "digits", "max_train": 300}, "baseline": {"pretrained": False, "epochs": 1}}
    first_id, one = run(store, recipe(FLOAT, **trained))
    second_id, two = run(store, recipe(FLOAT, {"name": "pruned", "pruning": {"final_sparsity": 0.5},
                                               "fine_tune_epochs": 1}, **trained))
    assert one.baseline.source == "trained" and two.baseline.reused_from == first_id
    assert two.baseline.accuracy == one.baseline.accuracy
    assert two.variants[0].reused_from == first_id
    pruned = two.variants[1]
    assert pruned.ok and pruned.reused_from is None and pruned.sparsity > 0.4


def test_the_cache_is_bounded_least_recently_used_first(tmp_path):
    cache = ResultCache(tmp_path / "cache", max_bytes=2500)
    files = {}
    for name in "abc":
        files[name] = tmp_path / f"{name}.bin"
        files[name].write_bytes(name.encode() * 1000)
    cache.put("a", "variant", "run-a", {"name": "a"}, {"tflite": files["a"]})
    cache.put("b", "variant", "run-b", {"name": "b"}, {"tflite": files["b"]})
    assert cache.get("a") is not None  # a is now the most recently used
    cache.put("c", "variant", "run-c", {"name": "c"}, {"tflite": files["c"]})
    assert cache.get("b") is None and cache.get("a") is not None and cache.get("c") is not None
    assert cache.total_bytes() == 2000
    assert sum(1 for p in (tmp_path / "cache" / "objects").rglob("*") if p.is_file()) == 2
    again = ResultCache(tmp_path / "cache", max_bytes=2500)  # survives a restart
    assert again.get("c").payload == {"name": "c"} and again.get("c").run_id == "run-c"


def test_the_cli_says_what_it_reused_and_recompute_computes_afresh(tmp_path):
    import json
    import os
    import subprocess
    import sys

    path = tmp_path / "r.json"
    path.write_text(json.dumps({**BASE, "variants": [FLOAT]}))
    env = {**os.environ, "COMPRESSION_LAB_DATA": str(tmp_path / "lab")}

    def cli(*extra):
        done = subprocess.run([sys.executable, "-m", "compression", "run", str(path), "--store", *extra],
                              capture_output=True, text=True, env=env, timeout=600)
        assert done.returncode == 0, done.stderr[-2000:]
        return done.stdout

    assert "reused from run" not in cli()
    assert "reused from run" in cli()
    assert "reused from run" not in cli("--recompute")
    runs = Store(tmp_path / "lab").list_runs()
    assert len(runs) == 3 and all(r["status"] == "ok" for r in runs)
