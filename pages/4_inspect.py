"""Inspect: one variant against the baseline — layers, weights, kernel, confusion matrix, ops, schedule, notes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from compression.config import PruningConfig
from compression.errors import CompressionError
from compression.measure.boards import format_bytes
from compression.results import BaselineInfo, Reference
from compression.run_folder import RunFolder
from compression.techniques.pruning import sparsity_curve
from compression.views import charts, results_charts, training_charts, weights_charts
from compression.views.tables import format_points
from ui import file_weights, state, widgets

state.init()
ss = st.session_state
store = state.store()
st.title(f"{state.ICONS['inspect']} Inspect")


@st.cache_data(show_spinner=False, max_entries=64)
def kernels(run_dir: str, stem: str, mtime: float) -> dict[str, np.ndarray]:
    """The saved kernels of a model (``weights/<stem>.npz``); never unpickles."""
    return RunFolder(run_dir).load_weights(stem)


def load_kernels(folder: RunFolder, stem: str) -> dict[str, np.ndarray]:
    path = folder.kernels(stem)  # a post-training variant's are the baseline's
    return kernels(str(folder.path), stem, path.stat().st_mtime) if path.is_file() else {}


runs = widgets.my_runs()
if ss.get("run_id") and ss["run_id"] not in {r["id"] for r in runs}:
    try:
        runs.insert(0, store.get_run(ss["run_id"]))
    except CompressionError:
        ss["run_id"] = None
if not runs:
    st.info("No runs yet in this session: run some variants on the Compress page first.")
    widgets.page_link("compress", "Go to Compress", icon=state.ICONS["compress"])
    st.stop()

run_id = widgets.pick_run("inspect_run", runs, default=ss.get("run_id"))
ss["run_id"] = run_id
run = store.get_run(run_id)
results = widgets.results_of(run_id)
rows = results.ok_variants if results else ()
if not rows:
    widgets.no_finished_variant(run, results)
    st.stop()

names = [v.name for v in rows]
state.ensure_option("inspect_variant", names, next((n for n in names if n != "float32"), None))
chosen = st.selectbox("Variant", names, key="inspect_variant", help="Compared with the float baseline it started from.")
row = results.variant(chosen)
folder = store.folder(run_id)
stem = row.stem
baseline = results.baseline or BaselineInfo()
reference = results.reference or Reference()

widgets.flag_warnings(results, variant=chosen)  # before the figures they qualify
m = st.columns(5)
acc, base_acc = row.accuracy, baseline.accuracy
m[0].metric("accuracy", f"{acc:.2%}", delta=format_points((acc - base_acc) * 100) if base_acc is not None else None)
gz, gzip_ratio = row.gzip_bytes, row.gzip_ratio(reference)
m[1].metric(
    "gzip size",
    f"{gz:,} B",
    delta=f"{gzip_ratio:.2f}× smaller" if gzip_ratio else None,
    delta_color="off",
)
m[2].metric("sparsity", f"{row.sparsity or 0:.1%}")
latency = row.latency.median if row.latency.median is not None else float("nan")
m[3].metric(
    "host latency (median)",
    charts.format_latency(row.latency.median),
    help="Batch 1 on this machine's CPU (LiteRT, XNNPACK when it takes the model): not a microcontroller's latency.",
)
m[4].metric(
    "delegate",
    row.delegate or "—",
    help=f"Input {row.input_dtype}, output "
    f"{row.output_dtype}. 'none' means the builtin kernels ran it (no XNNPACK).",
)
st.caption(
    "Techniques: "
    + " + ".join(row.techniques)
    + " — "
    + results_charts.describe_settings(row.settings, row.schedule).replace("<br>", "; ")
)

# ---------------------------------------------------------------- on a microcontroller

st.subheader("On a microcontroller (TensorFlow Lite Micro)")
tflm = row.tflm
if tflm is None:
    st.info("This run did not measure the variant under TensorFlow Lite Micro.")
elif tflm.runnable:
    t = st.columns(4)
    t[0].metric("RAM: tensor arena", format_bytes(tflm.arena_bytes), help=f"{tflm.arena_bytes:,} B: the smallest "
                "arena with which TFLM allocates and invokes the model. The firmware's own RAM is not included.")
    t[1].metric("flash: model", format_bytes(tflm.flash_bytes), help=f"{tflm.flash_bytes:,} B: the .tflite as "
                "linked (the C array below). TFLM's runtime code is not included.")
    t[2].metric("TFLM accuracy", "—" if tflm.accuracy is None else f"{tflm.accuracy:.2%}",
                help=f"Reference kernels, {tflm.samples or 0:,} of {tflm.test_size or 0:,} test samples.")
    t[3].metric("agrees with LiteRT", "—" if tflm.agreement is None else f"{tflm.agreement:.1%}",
                help="Same .tflite, same samples: TFLM's class equals LiteRT's.")
    for note in tflm.notes:
        st.caption(note)
else:
    how = "cannot run under TFLite Micro" if tflm.runnable is False else "was not measured"
    st.warning(f"{chosen} {how}: {tflm.reason}")
if row.tflite:
    widgets.c_pair_buttons(st.columns(2), folder.tflite(row), key="inspect_c")

# ---------------------------------------------------------------- layers and weights

before = load_kernels(folder, "baseline")
after = load_kernels(folder, stem)
st.subheader("Layers")
st.plotly_chart(
    weights_charts.layer_bars(weights_charts.layer_frame(row.layers, weights_charts.kernel_stats(before))),
    width="stretch",
    key="inspect_layers",
)

st.subheader("Weights before and after")
layers = list(after) or list(before)
if layers:
    state.ensure_option("inspect_layer", layers)
    layer = st.selectbox("Layer", layers, key="inspect_layer", help="A kernel of the variant (biases excluded).")
    a, b = st.columns(2)
    a.plotly_chart(
        weights_charts.weight_histograms(before.get(layer), after.get(layer), layer),
        width="stretch",
        key="inspect_hist",
    )
    b.plotly_chart(
        weights_charts.kernel_heatmap(after.get(layer), f"{layer} ({chosen})"), width="stretch", key="inspect_heatmap"
    )
    st.caption("Pruning shows as a tall bar at zero and white cells in the heat map; clustering as a few spikes.")
else:
    st.info("This run saved no weights for the variant.")

file_weights.section(folder, results, chosen)

# ---------------------------------------------------------------- predictions

st.subheader("Predictions")
labels = folder.load_predictions("labels")
predictions = folder.load_predictions(stem)
class_names = list(results.dataset.class_names) if results.dataset and results.dataset.class_names else None
if labels is not None and predictions is not None:
    st.plotly_chart(
        results_charts.confusion_matrix(labels, predictions, class_names), width="stretch", key="inspect_confusion"
    )
    if row.agreement is not None:
        st.caption(f"Agrees with the float baseline on {row.agreement:.1%} of the test samples.")
else:
    st.info("No saved predictions for this variant.")

# ---------------------------------------------------------------- graph, schedule, notes

a, b = st.columns(2)
with a:
    st.subheader("Ops in the .tflite")
    if row.ops:
        st.dataframe(pd.DataFrame({"op": list(row.ops)}), hide_index=True, width="stretch", key="inspect_ops")
    st.caption(
        f"Input {row.input_dtype}, output {row.output_dtype}; {row.params or 0:,} parameters; "
        f"delegate {row.delegate}."
    )
    if row.delegate_note:
        st.caption(f"Delegate note: {row.delegate_note}")
with b:
    st.subheader("Sparsity schedule applied")
    schedule = row.schedule
    pruning = row.settings.get("pruning")
    if schedule and pruning:
        steps, target = sparsity_curve(PruningConfig(**pruning), int(schedule["total_steps"]))
        st.plotly_chart(
            training_charts.schedule_curve(steps, target, schedule), width="stretch", key="inspect_schedule"
        )
        for note in schedule.get("notes") or []:
            st.caption(f":material/info: {note}")
    else:
        st.caption("This variant was not pruned.")

epochs = training_charts.history_frame(row.history, variant=chosen)
if row.history:
    st.subheader("Fine-tuning")
    if len(epochs):
        fig = training_charts.training_curves(epochs, title="Loss and accuracy per epoch")
        fig.update_xaxes(title_text="epoch")
        st.plotly_chart(fig, width="stretch", key="inspect_history")

st.subheader("Notes")
if row.float_layers:
    st.markdown("**Layers left float by QAT**")
    st.dataframe(pd.DataFrame(list(row.float_layers)), hide_index=True, width="stretch", key="inspect_float_layers")
for note in row.notes:
    st.markdown(f"- {note}")
if not row.float_layers and not row.notes:
    st.caption("Nothing to report for this variant.")
