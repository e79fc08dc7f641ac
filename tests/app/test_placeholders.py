"""Empty cells read as a dash, never a literal "None" (History's best ratio of a run that has none)."""

from __future__ import annotations

from apptest_support import app_test, assert_clean

from compression import Recipe


def test_history_shows_a_dash_for_a_missing_best_ratio(lab):
    from compression.store import Store

    store = Store()
    run_id = store.create_run(Recipe.from_dict({"title": "Pending", "variants": [{"name": "float32"}]}))
    at = app_test("pages/5_history.py")
    at.run()
    assert_clean(at)
    table = next(d for d in at.dataframe if "best ratio (≤1 pt lost)" in d.value.columns)
    assert table.value["best ratio (≤1 pt lost)"].isna().all()  # there is none yet…
    assert table.proto.placeholder == "—"  # …and it is drawn as a dash
    assert store.get_run(run_id)["best_ratio"] is None

