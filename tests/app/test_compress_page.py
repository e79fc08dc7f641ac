"""The Compress page: presets fill the builder, the schedule preview follows the sliders, errors are sentences."""

from __future__ import annotations

import subprocess
import sys

from apptest_support import ROOT, app_test, assert_clean, figure, plotly_charts


def compress(lab):
    return app_test("pages/2_compress.py").run()


def test_default_page_has_the_preset_the_table_and_the_run_button(lab):
    at = compress(lab)
    assert_clean(at)
    assert at.selectbox(key="preset").value == "experiment_e"
    assert at.button(key="run").label.startswith("Run 6 variants")
    names = [r["name"] for r in at.session_state["variant_rows"]]
    assert names == ["float32", "int8", "pruned", "pruned-dynamic", "qat-int8", "pqat-int8"]
    for key in ("b_prune_final", "b_prune_initial", "b_clusters", "b_temperature", "b_alpha"):
        assert at.slider(key=key) is not None
    for key in ("b_use_prune", "b_use_cluster", "b_use_qat", "b_use_distill"):
        assert at.toggle(key=key) is not None
    assert at.multiselect(key="b_modes").value == ["int8"]
    assert at.button(key="add_variants").disabled  # nothing new to add yet
    assert len(plotly_charts(at)) == 1  # the sparsity schedule preview
    assert "pretrained sample" in at.markdown[0].value


def test_schedule_preview_follows_the_sliders(lab):
    at = compress(lab)
    curve = figure(plotly_charts(at)[0])["data"][0]
    assert max(curve["y"]) == 0.8 and len(curve["x"]) == 230  # experiment E: 10 epochs x 23 steps of digits
    at.slider(key="b_prune_final").set_value(0.95).run()
    assert_clean(at)
    assert max(figure(plotly_charts(at)[0])["data"][0]["y"]) == 0.95
    at.number_input(key="b_epochs").set_value(2).run()
    assert len(figure(plotly_charts(at)[0])["data"][0]["x"]) == 46


def test_presets_fill_the_builder_and_the_table(lab):
    at = compress(lab)
    at.selectbox(key="preset").set_value("experiment_d").run()
    assert_clean(at)
    assert [r["name"] for r in at.session_state["variant_rows"]] == [
        "float32",
        "pruned-90",
        "pruned-90-int8",
        "pruned-90-sparse",
    ]
    assert at.slider(key="b_prune_final").value == 0.9
    at.selectbox(key="preset").set_value("experiment_c").run()
    assert at.button(key="use_preset_model") is not None  # C is written for the QAT CNN
    at.button(key="use_preset_model").click().run()
    assert at.session_state["model_name"] == "qat_cnn" and at.session_state["baseline_mode"] == "train"


def test_builder_adds_variants_to_the_table(lab):
    at = compress(lab)
    at.toggle(key="b_use_prune").set_value(True)
    at.toggle(key="b_use_cluster").set_value(True)
    at.toggle(key="b_use_qat").set_value(True).run()
    at.multiselect(key="b_modes").set_value(["int8", "float16"]).run()
    assert_clean(at)
    assert "prune80-cluster16-pcqat-int8" in " ".join(m.value for m in at.markdown)
    assert not at.button(key="add_variants").disabled
    at.button(key="add_variants").click().run()
    names = [r["name"] for r in at.session_state["variant_rows"]]
    assert names[-2:] == ["prune80-cluster16-pcqat-int8", "prune80-cluster16-pcqat-float16"]
    assert at.button(key="run").label.startswith("Run 8 variants")


def test_invalid_values_show_the_sentence_and_keep_the_rest(lab):
    at = compress(lab)
    at.toggle(key="b_use_prune").set_value(True).run()
    at.slider(key="b_prune_initial").set_value(0.9)
    at.slider(key="b_prune_final").set_value(0.5).run()
    assert not at.exception
    assert any("initial_sparsity must not exceed final_sparsity" in e.value for e in at.error)
    assert len(at.session_state["variant_rows"]) == 6  # the table is untouched
    at.session_state["variant_rows"] = [{**r, "include": False} for r in at.session_state["variant_rows"]]
    at.run()
    at.button(key="run").click().run()
    assert any("Tick at least one variant" in e.value for e in at.error)
    assert at.session_state["run_id"] is None  # nothing was submitted


def test_only_some_layers_lists_the_models_layers(lab):
    at = compress(lab)
    at.checkbox(key="b_prune_some").check().run()
    assert_clean(at)
    assert at.multiselect(key="b_prune_layers").options == ["conv", "logits"]


def test_first_page_load_does_not_import_tensorflow(lab):
    code = (
        "import sys; from streamlit.testing.v1 import AppTest; "
        "at = AppTest.from_file('app.py', default_timeout=120); at.run(); "
        "assert not at.exception, [e.value for e in at.exception]; "
        "print('TF' if 'tensorflow' in sys.modules else 'no TF')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip().endswith("no TF")


def test_a_run_survives_reruns_and_can_be_cancelled(lab):
    import time

    from compression.store import Store

    at = compress(lab)
    at.selectbox(key="preset").set_value("smallest").run()
    at.button(key="run").click().run()
    assert not at.exception
    run_id = at.session_state["run_id"]
    store = Store()
    deadline = time.monotonic() + 240
    while store.get_run(run_id)["status"] != "running" or not store.events(run_id):
        assert time.monotonic() < deadline, store.get_run(run_id)
        at.slider(key="b_prune_final").set_value(0.7).run()  # touching widgets reruns the page, not the run
        time.sleep(0.2)
    assert at.button(key=f"compress_cancel_{run_id}") is not None
    at.button(key=f"compress_cancel_{run_id}").click().run()
    assert not at.exception
    while store.get_run(run_id)["status"] not in ("cancelled", "ok", "failed"):
        assert time.monotonic() < deadline, store.get_run(run_id)
        at.run()
        time.sleep(0.2)
    assert store.get_run(run_id)["status"] == "cancelled"
    at.run()
    assert not at.exception
    assert "cancelled" in " ".join(m.value for m in at.markdown)


def test_the_page_says_which_executor_runs_the_variants(lab, monkeypatch):
    monkeypatch.setenv("COMPRESSION_LAB_RAY_ADDRESS", "ray://head:10001")
    at = compress(lab)
    assert_clean(at)
    assert any("Ray cluster at ray://head:10001" in c.value for c in at.caption)
    monkeypatch.delenv("COMPRESSION_LAB_RAY_ADDRESS")
    at.run()
    assert any(c.value.startswith("Executor — local:") for c in at.caption)
