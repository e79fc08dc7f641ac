"""Compare and Inspect on a run that failed say so, with the reason, instead of 'fills in as they finish'."""

from __future__ import annotations

import pytest
from apptest_support import app_test

from compression import Recipe


@pytest.mark.parametrize("page", ["pages/3_compare.py", "pages/4_inspect.py"])
def test_a_failed_run_shows_its_failure_and_reason(lab, page):
    from compression.store import Store

    store = Store()
    recipe = Recipe.from_dict({"title": "Doomed", "dataset": {"name": "digits"}, "model": {"name": "seed_cnn"},
                               "variants": [{"name": "float32"}]})
    run_id = store.create_run(recipe, session="0123456789ab")
    store.set_status(run_id, "failed", error="The baseline could not be loaded: the file is damaged.")
    at = app_test(page, sid="0123456789ab", run_id=run_id)
    at.query_params["sid"] = "0123456789ab"
    at.run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any("This run failed before any variant finished: The baseline could not be loaded" in e for e in errors)
    assert not any("fills in as they do" in i.value for i in at.info)
