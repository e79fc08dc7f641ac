"""A row is written as soon as its accuracy and size are known; TFLite Micro fills it in beside the next variant."""

from __future__ import annotations

import json

from compression import Recipe, run_recipe
from compression.results import RunResults
from compression.run_folder import RunFolder
from compression.store import Store
from compression.views.tables import variant_status_rows

RECIPE = {
    "dataset": {"name": "digits"},
    "model": {"name": "seed_cnn"},
    "baseline": {"pretrained": True},
    "evaluation": {"latency_runs": 5, "tflm": True, "tflm_max_samples": 50},
    "variants": [{"name": "int8", "quantization": "int8", "representative_samples": 50},
                 {"name": "float32"}],
}


def test_the_first_row_is_written_before_its_tflm_measurement_and_completed_after(tmp_path):
    store = Store(tmp_path / "lab")
    recipe = Recipe.from_dict(RECIPE)
    run_id = store.create_run(recipe)
    folder = RunFolder(store.run_dir(run_id))
    seen = {}

    def progress(event):
        if event.phase == "variant_done":  # what a reader of results.json sees right then
            seen[event.variant] = json.loads(folder.results_file.read_text())["variants"]

    run_recipe(recipe, folder.path, progress=progress)
    first = {v["name"]: v for v in seen["int8"]}["int8"]
    assert first["status"] == "ok" and first["accuracy"] > 0.5 and first["size_bytes"] > 0
    assert first["measuring"] == ["tflm"] and first["tflm"] is None
    running = {"status": "running", "progress": {"variant": "float32", "phase": "convert"}}
    live = variant_status_rows(["int8", "float32"], running, RunResults.from_dict({"variants": seen["int8"]}))
    assert list(live["status"]) == ["ok, measuring TFLite Micro", "converting"]

    done = folder.read_results()
    assert done.status.value == "ok"
    for v in done.variants:
        assert v.measuring == () and v.tflm is not None and v.tflm.runnable is True, v.name
        assert v.tflm.arena_bytes > 0 and v.tflm.samples == 50
    assert list(done.table()["measuring"]) == ["", ""]

    again_id = store.create_run(recipe)  # the cache holds the completed rows, TFLM included
    run_recipe(recipe, store.run_dir(again_id))
    again = RunFolder(store.run_dir(again_id)).read_results()
    assert [v.reused_from for v in again.variants] == [run_id, run_id]
    assert [v.tflm for v in again.variants] == [v.tflm for v in done.variants]
