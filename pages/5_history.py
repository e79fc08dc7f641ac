"""History: every run in the store — open one, compare variants across runs, delete, export and import."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from compression.errors import CompressionError
from compression.results import FINAL_STATUSES
from compression.views import results_charts
from compression.views.tables import history_table
from ui import state, widgets

state.init()
ss = st.session_state
store = state.store()
st.title(f"{state.ICONS['history']} History")
st.caption(f"Every run in the store ({store.root}), from every browser session, newest first.")


def delete_run(run_id: str) -> None:
    try:
        store.delete_run(run_id)
    except CompressionError as exc:
        ss["history_message"] = ("error", str(exc))
    else:
        ss["history_message"] = ("success", f"Deleted run {run_id} and its files.")
        for key in ("run_id", "train_run_id"):
            if ss.get(key) == run_id:
                ss[key] = None
    ss["confirm_delete"] = False


def import_run() -> None:
    upload = ss.get("import_upload")
    if upload is None:
        ss["history_message"] = ("error", "Choose an exported run (.zip) first.")
        return
    try:
        new_id = store.import_run(upload.getvalue())
    except CompressionError as exc:
        ss["history_message"] = ("error", str(exc))
    else:
        ss["history_message"] = ("success", f"Imported as run {new_id}.")
        ss["history_run"] = new_id


message = ss.pop("history_message", None)
if message:
    (st.error if message[0] == "error" else st.success)(message[1])

runs = store.list_runs()
mine = state.session_id()
if runs:
    table = history_table(runs, session=mine, sizes={r["id"]: store.folder(r["id"]).size_bytes() for r in runs})
    st.dataframe(
        table,
        hide_index=True,
        width="stretch",
        key="history_table",
        placeholder="—",  # no best ratio (yet): a dash, not "None"
        column_config={
            "best ratio (≤1 pt lost)": st.column_config.NumberColumn(
                format="%.2f×", help="float32 gzip size / the smallest variant's that lost at most one accuracy point."
            ),
            "size (MB)": st.column_config.NumberColumn(format="%.1f", help="Disk space of the run's folder."),
            "mine": st.column_config.CheckboxColumn(help="Started from this browser session."),
        },
    )
else:
    st.info("The store holds no run yet.")

# ---------------------------------------------------------------- one run

if runs:
    st.subheader("One run")
    run_id = widgets.pick_run("history_run", runs)
    run = next(r for r in runs if r["id"] == run_id)
    a, b, c = st.columns(3)
    if a.button(
        "Open in Compare",
        key="open_compare",
        icon=state.ICONS["compare"],
        help="Show this run on the Compare and Inspect pages.",
    ):
        ss["run_id"] = run_id
        widgets.switch_page("compare")
    if run["status"] in FINAL_STATUSES:
        widgets.download(b, "Export run (zip)", lambda: store.export_run(run_id), f"compression-lab-{run_id}.zip",
                         "application/zip", "export_run",
                         help="The recipe, results, .tflite files and progress log in one zip; import it here on "
                         "any machine.")
    else:
        b.caption("Export and delete once the run has finished (or cancel it).")
    with c:
        confirm = st.checkbox(
            "Yes, delete this run and its files", key="confirm_delete", disabled=run["status"] not in FINAL_STATUSES
        )
        st.button(
            "Delete run",
            icon=":material/delete:",
            key="delete_run",
            disabled=not confirm,
            on_click=delete_run,
            args=(run_id,),
            help="Removes the run's row, progress events and folder.",
        )
    if run.get("error"):
        st.caption(f"{run['status']}: {run['error']}")
    if run["status"] in FINAL_STATUSES:
        try:
            widgets.flag_warnings(store.results(run_id))
        except CompressionError as exc:
            st.caption(str(exc))

# ---------------------------------------------------------------- import

st.subheader("Import a run")
st.file_uploader(
    "An exported run (.zip)",
    type=["zip"],
    key="import_upload",
    help="A zip from 'Export run'; checked (names, sizes, checksums) before anything is written.",
)
st.button("Import", key="import_run", on_click=import_run)

# ---------------------------------------------------------------- across runs

finished = [r for r in runs if r["status"] in FINAL_STATUSES]
if finished:
    st.subheader("Compare variants across runs")
    labels = {r["id"]: widgets.run_label(r) for r in finished}
    ss["history_compare_runs"] = [i for i in ss.get("history_compare_runs", []) if i in labels]
    chosen_runs = st.multiselect(
        "Runs",
        list(labels),
        format_func=labels.get,
        key="history_compare_runs",
        help="Their variants go on the same charts, coloured by run.",
    )
    frames = []
    for i, rid in enumerate(chosen_runs, start=1):
        try:
            results = store.results(rid)
        except CompressionError as exc:
            st.error(str(exc))
            continue
        frame = results_charts.results_frame(
            results, run=f"#{i} {(next(r for r in finished if r['id'] == rid)['title'] or rid)[:40]}"
        )
        # Points carry a short label ("#1 · int8"); the legend (colour = run) names the run in full.
        frames.append(frame.assign(label=[f"#{i} · {n}" for n in frame["name"]]))
    if frames:
        df = pd.concat(frames, ignore_index=True)
        options = list(df.loc[df["status"] == "ok", "label"])
        ss["history_compare_variants"] = [v for v in ss.get("history_compare_variants", []) if v in options]
        picked = st.multiselect(
            "Variants (all when empty)",
            options,
            key="history_compare_variants",
            help="Pick the variants to put side by side.",
        )
        view = df[df["label"].isin(picked)] if picked else df
        a, b = st.columns(2)
        a.plotly_chart(results_charts.size_vs_accuracy(view, color="run"), width="stretch", key="history_size")
        b.plotly_chart(results_charts.latency_vs_accuracy(view, color="run"), width="stretch", key="history_latency")
        widgets.results_table(view.assign(name=view["label"]), key="history_compare_table")
