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



def test_cross_run_charts_label_points_short_and_name_runs_in_the_legend(with_run):
    from apptest_support import figure, plotly_charts

    run_id, session = with_run
    at = app_test("pages/5_history.py", sid=session)
    at.run()
    at.multiselect(key="history_compare_runs").set_value([run_id]).run()
    assert_clean(at)
    size = figure(plotly_charts(at)[0])
    labels = [t for trace in size["data"] if trace.get("mode") == "markers+text" for t in trace["text"]]
    assert "#1 · int8" in labels and all(len(t) <= 24 for t in labels)
    assert any(trace["name"].startswith("#1 Page test run") for trace in size["data"])
