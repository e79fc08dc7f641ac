"""The Compress page's Recompute switch goes into the submitted recipe (evaluation.recompute)."""

from __future__ import annotations

import json

from apptest_support import app_test, assert_clean


def submitted_recipe(at) -> dict:
    return json.loads(next(c.value for c in at.code if '"evaluation"' in c.value))


def test_the_recompute_toggle_sets_evaluation_recompute(lab):
    at = app_test("pages/2_compress.py")
    at.run()
    assert submitted_recipe(at)["evaluation"]["recompute"] is False  # reuse is the default
    at.toggle(key="e_recompute").set_value(True).run()
    assert_clean(at)
    assert submitted_recipe(at)["evaluation"]["recompute"] is True
