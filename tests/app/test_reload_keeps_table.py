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


def test_the_run_monitor_shows_this_pages_run_not_the_one_another_page_showed(lab):
    from compression.store import Store

    store = Store()
    recipe = Recipe.from_dict({"title": "An old failed run", "dataset": {"name": "mnist1d"},
                               "model": {"name": "conv1d"}, "variants": [{"name": "float32"}]})
    failed = store.create_run(recipe, session="0123456789ab")
    store.set_status(failed, "failed", error="The old run's own failure.")
    # Compare or Inspect showed the old run; the Compress page of this session never started one.
    at = app_test("pages/2_compress.py", run_id=failed)
    at.run()
    assert not any("old run's own failure" in e.value for e in at.error)
    # The run this page started does show its failure under the Run button.
    at.session_state["compress_run_id"] = failed
    at.run()
    assert any("old run's own failure" in e.value for e in at.error)
