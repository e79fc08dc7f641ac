"""Reloading the page mid-run keeps the run and the variant table it was started with."""

from __future__ import annotations

from apptest_support import app_test, assert_clean

from compression import Recipe


def test_a_reload_restores_the_running_runs_table(lab):
    from compression.store import Store

    recipe = Recipe.from_dict({
        "title": "My edited table",
        "dataset": {"name": "digits"}, "model": {"name": "seed_cnn"}, "baseline": {"pretrained": True},
        "variants": [{"name": "float32"}, {"name": "my-int8", "quantization": "int8"},
                     {"name": "my-clustered", "clustering": {"clusters": 4}, "fine_tune_epochs": 3}],
    })
    session = "0123456789ab"
    run_id = Store().create_run(recipe, session=session)  # queued: the run is still on its way
    at = app_test("pages/2_compress.py")
    at.query_params["sid"] = session  # what a reload of the page's URL brings back
    at.run()
    assert_clean(at)
    assert at.session_state["run_id"] == run_id
    assert [r["name"] for r in at.session_state["variant_rows"]] == ["float32", "my-int8", "my-clustered"]
    assert at.session_state["variant_rows"][2]["fine_tune_epochs"] == 3
    assert at.session_state["variant_title"] == "My edited table"
