"""A run whose variants collapse to one class: every page says so beside its figures, none reads plain "ok".

The model always answers class 3 (tests/flagged_model.py); the engine computes the flags from its
predictions (baseline at chance, one class, meaningless agreement). Run once per module through the
Compress page itself, then read by Compare, Inspect and History.
"""

from __future__ import annotations

import pytest
from apptest_support import app_test, assert_clean, wait_for_run

SESSION = "flag-session"


@pytest.fixture(scope="module")
def flagged_run(tmp_path_factory):
    """(AppTest of the Compress page after its run finished, run id): float32 and int8 of the constant model."""
    from compression.config import Recipe
    from compression.run import runner as runner_module
    from tests.flagged_model import save_constant_model
    from ui import builder

    root = tmp_path_factory.mktemp("lab")
    mp = pytest.MonkeyPatch()
    mp.setenv("COMPRESSION_LAB_DATA", str(root))
    mp.setenv("COMPRESSION_LAB_WARM_WORKER", "0")
    model = save_constant_model(tmp_path_factory.mktemp("model") / "constant.keras")
    rows = builder.rows_from_recipe(Recipe.from_dict({
        "model": {"path": str(model)},
        "variants": [{"name": "float32"}, {"name": "int8", "quantization": "int8", "representative_samples": 50}]}))
    at = app_test("pages/2_compress.py", sid=SESSION, model_source="Upload", model_upload_path=str(model),
                  model_upload_label="constant.keras", baseline_mode="pretrained", variant_rows=rows,
                  variant_title="Constant model", variant_version=0, e_latency_runs=5)
    at.run()
    assert_clean(at)
    at.button(key="run").click().run()
    run_id = at.session_state["compress_run_id"]
    run = wait_for_run(at, run_id)
    assert run["status"] == "ok", run["error"]
    yield at, run_id
    runner = runner_module._RUNNERS.pop(root.resolve(), None)
    if runner is not None and runner.alive:
        runner.shutdown(cancel=True, timeout=30)
    mp.undo()


def warnings(at) -> list[str]:
    return [w.value for w in at.warning]


def test_compress_monitor_marks_the_collapsed_variants_and_says_why(flagged_run):
    at, _ = flagged_run
    assert not at.exception
    rows = next(d.value for d in at.dataframe if "variant" in d.value.columns).set_index("variant")
    assert list(rows["status"]) == ["ok, flagged", "ok, flagged"]
    assert rows.loc["int8", "flags"] == "one class, agreement meaningless"
    shown = warnings(at)
    assert any(w.startswith("Baseline: The baseline's accuracy") and "about chance" in w for w in shown)
    for name in ("float32", "int8"):
        assert any(w.startswith(f"{name}: predicts class 3 for 100% of the test set") for w in shown), shown
        assert any(w.startswith(f"{name}: agreement 100.0% means nothing here") for w in shown), shown


def test_compare_table_and_warnings_show_the_flags(flagged_run):
    _, run_id = flagged_run
    at = app_test("pages/3_compare.py", sid=SESSION)
    at.run()
    assert_clean(at)
    table = next(d.value for d in at.dataframe if "delta_accuracy" in d.value.columns).set_index("name")
    assert list(table["status"]) == ["ok, flagged", "ok, flagged"]
    assert table.loc["float32", "flags"] == "one class, agreement meaningless"
    assert any(w.startswith("int8: predicts class 3") for w in warnings(at))


def test_inspect_warns_about_the_chosen_variant_only(flagged_run):
    at = app_test("pages/4_inspect.py", sid=SESSION)
    at.run()
    assert not at.exception
    assert at.selectbox(key="inspect_variant").value == "int8"
    shown = warnings(at)
    assert any(w.startswith("int8: predicts class 3") for w in shown)
    assert any(w.startswith("Baseline: ") for w in shown)
    assert not any(w.startswith("float32:") for w in shown)


def test_history_warns_for_the_picked_run(flagged_run):
    at = app_test("pages/5_history.py", sid=SESSION)
    at.run()
    assert_clean(at)
    assert any(w.startswith("float32: predicts class 3") for w in warnings(at))
