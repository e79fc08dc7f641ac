"""Compare, Inspect and History on a store holding one finished run (made once per module by the real runner)."""

from __future__ import annotations

import io
import zipfile

from apptest_support import app_test, assert_clean, figure, plotly_charts


def test_pages_without_runs_say_what_to_do(lab):
    for page in ("pages/3_compare.py", "pages/4_inspect.py", "pages/5_history.py"):
        at = app_test(page)
        at.run()
        assert_clean(at)
        assert at.info, page


def test_compare_shows_table_charts_and_downloads(with_run):
    run_id, session = with_run
    at = app_test("pages/3_compare.py", sid=session)
    at.run()
    assert_clean(at)
    assert at.session_state["run_id"] == run_id
    charts = plotly_charts(at)
    titles = [figure(c)["layout"]["title"]["text"] for c in charts]
    assert titles[:2] == ["Size (gzip) vs accuracy", "Host latency vs accuracy"]
    assert (
        any("bubble" in t for t in titles)
        and any("ratio" in t for t in titles)
        and any("raw vs gzip" in t for t in titles)
    )
    size_chart = figure(charts[0])
    hover = [row[1] for trace in size_chart["data"] if trace.get("customdata") for row in trace["customdata"]]
    assert any("prune polynomial 50%→80%" in h for h in hover)  # hover shows the settings
    assert any(trace.get("name") == "Pareto front" for trace in size_chart["data"])
    table = next(d.value for d in at.dataframe if "delta_accuracy" in d.value.columns)
    assert list(table["name"]) == ["float32", "int8", "pruned-int8"]
    assert table.loc[0, "ratio"] == 1.0
    keys = {b.key for b in at.download_button}
    assert {
        "dl_float32",
        "dl_int8",
        "dl_pruned-int8",
        "dl_zip",
        "dl_csv",
        "dl_json",
        "dl_recipe",
        "dl_script",
        "dl_c_h",
        "dl_c_cc",
        "dl_baseline",
    } <= keys
    assert at.selectbox(key="export_variant").value == "int8"
    # Fits on my board: the fit column and the RAM-vs-flash chart with the board's budget box.
    assert at.selectbox(key="compare_board").value == "nano33"
    fits = next(d.value for d in at.dataframe if "fit_label" in d.value.columns)
    assert list(fits["name"]) == ["float32", "int8", "pruned-int8"]
    assert all(label.startswith("fits (RAM +") for label in fits["fit_label"])
    board_chart = figure(next(c for c in plotly_charts(at) if c.key == "chart_board"))
    assert board_chart["data"][0]["fill"] == "toself"
    at.selectbox(key="compare_board").set_value("custom").run()
    at.number_input(key="compare_ram_kb").set_value(1.0).run()
    fits = next(d.value for d in at.dataframe if "fit_label" in d.value.columns)
    assert all(label.startswith("does not fit: RAM") for label in fits["fit_label"])
    at.radio(key="compare_size_axis").set_value("size_bytes").run()
    assert figure(plotly_charts(at)[0])["layout"]["title"]["text"] == "Size (raw) vs accuracy"


def test_other_sessions_do_not_see_the_run_until_opened_from_history(with_run):
    run_id, _ = with_run
    at = app_test("pages/3_compare.py", sid="someone-else")
    at.run()
    assert_clean(at)
    assert at.info and not plotly_charts(at)
    history = app_test("pages/5_history.py", sid="someone-else")
    history.run()
    assert_clean(history)
    assert history.selectbox(key="history_run").value == run_id
    history.button(key="open_compare").click().run()
    assert history.session_state["run_id"] == run_id
    compare = app_test("pages/3_compare.py", sid="someone-else", run_id=run_id)
    compare.run()
    assert_clean(compare)
    assert len(plotly_charts(compare)) == 6  # 5 trade-off charts + the board's RAM vs flash


def test_inspect_shows_layers_weights_confusion_and_schedule(with_run):
    run_id, session = with_run
    at = app_test("pages/4_inspect.py", sid=session, run_id=run_id)
    at.run()
    assert_clean(at)
    assert at.selectbox(key="inspect_variant").value == "int8"  # the first non-float variant
    at.selectbox(key="inspect_variant").set_value("pruned-int8").run()
    assert_clean(at)
    assert at.selectbox(key="inspect_layer").options == ["conv", "logits"]
    labels = [m.label for m in at.metric]
    assert "RAM: tensor arena" in labels and "flash: model" in labels and "host latency (median)" in labels
    assert {"inspect_c_h", "inspect_c_cc"} <= {b.key for b in at.download_button}
    titles = [figure(c)["layout"]["title"]["text"] for c in plotly_charts(at)]
    assert "Per-layer sparsity and unique values" in titles
    assert any(t.startswith("Weight histogram conv") for t in titles)
    assert any(t.startswith("Kernel conv") for t in titles)
    assert any(t.startswith("Confusion matrix (accuracy") for t in titles)
    assert "Sparsity schedule" in titles
    hist = figure(next(c for c in plotly_charts(at) if "Weight histogram" in c.proto.spec))
    assert "% zeros" in hist["data"][1]["name"] and not hist["data"][1]["name"].startswith("variant (0% zeros")
    ops = next(d.value for d in at.dataframe if "op" in d.value.columns)
    assert "FULLY_CONNECTED" in list(ops["op"])


def test_history_lists_compares_exports_imports_and_deletes(with_run):
    run_id, session = with_run
    at = app_test("pages/5_history.py", sid=session)
    at.run()
    assert_clean(at)
    listing = next(d.value for d in at.dataframe if "best ratio (≤1 pt lost)" in d.value.columns)
    assert list(listing["id"]) == [run_id] and bool(listing.loc[0, "mine"])
    assert listing.loc[0, "best ratio (≤1 pt lost)"] > 1.5  # int8 keeps accuracy within a point
    # compare across runs: both charts coloured by run
    at.multiselect(key="history_compare_runs").set_value([run_id]).run()
    assert_clean(at)
    assert len(plotly_charts(at)) == 2
    # export → import: refused while the same run is in the store, restored once it is deleted
    from compression.store import Store

    store = Store()
    exported = store.export_run(run_id)
    assert at.download_button(key="export_run") is not None
    at.file_uploader(key="import_upload").upload("run.zip", exported, "application/zip")
    at.button(key="import_run").click().run()
    assert any("already in the store" in e.value for e in at.error)
    assert [r["id"] for r in store.list_runs()] == [run_id]
    before = store.results(run_id)
    store.delete_run(run_id)
    at.button(key="import_run").click().run()
    assert not at.exception
    assert any("Imported as run" in s.value for s in at.success)
    new_id = at.session_state["history_run"]
    assert new_id == run_id and store.results(new_id) == before
    with zipfile.ZipFile(io.BytesIO(store.export_run(new_id))) as z:
        assert "run/int8.tflite" in z.namelist()
    # delete needs the confirmation box
    at.selectbox(key="history_run").set_value(new_id).run()
    assert at.button(key="delete_run").disabled
    at.checkbox(key="confirm_delete").check().run()
    at.button(key="delete_run").click().run()
    assert_clean(at)
    assert any("Deleted run" in s.value for s in at.success)
    assert store.list_runs() == []
    assert not (store.runs_root / new_id).exists()
    # a broken import is refused with a sentence
    at.file_uploader(key="import_upload").clear()
    at.run()
    at.file_uploader(key="import_upload").upload("bad.zip", b"nope", "application/zip")
    at.button(key="import_run").click().run()
    assert any("not a Compression Lab run export" in e.value for e in at.error)
