"""Inspect: one variant against the baseline — layers, weights, kernel, confusion matrix, ops, schedule, notes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import streamlit as st

from compression import charts
from compression.boards import format_bytes
from compression.config import PruningConfig
from compression.errors import CompressionError
from compression.pruning import sparsity_curve
from compression.recipes import file_stem
from compression.results import RunFolder, VariantResult
from ui import file_weights, state, widgets

state.init()
ss = st.session_state
store = state.store()
st.title(f"{state.ICONS['inspect']} Inspect")


@st.cache_data(show_spinner=False, max_entries=64)
def kernels(path: str, mtime: float) -> dict[str, np.ndarray]:
    """The saved kernels of a model (``weights/<stem>.npz``); never unpickles."""
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def load_kernels(path: Path) -> dict[str, np.ndarray]:
    return kernels(str(path), path.stat().st_mtime) if path.is_file() else {}


def load_array(path: Path) -> np.ndarray | None:
    return np.load(path, allow_pickle=False) if path.is_file() else None


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
rows = [v for v in (results or {}).get("variants", []) if v["status"] == "ok"]
if not rows:
    widgets.no_finished_variant(run, results)
    st.stop()

names = [v["name"] for v in rows]
state.ensure_option("inspect_variant", names, next((n for n in names if n != "float32"), None))
chosen = st.selectbox("Variant", names, key="inspect_variant", help="Compared with the float baseline it started from.")
row = next(v for v in rows if v["name"] == chosen)
folder = Path(run["dir"])
stem = file_stem(chosen)
baseline = results.get("baseline") or {}
reference = results.get("reference") or {}

m = st.columns(5)
acc, base_acc = row.get("accuracy"), baseline.get("accuracy")
m[0].metric("accuracy", f"{acc:.2%}", delta=f"{(acc - base_acc) * 100:+.2f} points" if base_acc is not None else None)
gz = row.get("gzip_bytes")
m[1].metric(
    "gzip size",
    f"{gz:,} B",
    delta=f"{reference['gzip_bytes'] / gz:.2f}× smaller" if reference.get("gzip_bytes") and gz else None,
    delta_color="off",
)
m[2].metric("sparsity", f"{row.get('sparsity') or 0:.1%}")
m[3].metric(
    "host latency (median)",
    charts.format_latency((row.get("latency_ms") or {}).get("median")),
    help="Batch 1 on this machine's CPU (LiteRT, XNNPACK when it takes the model): not a microcontroller's latency.",
)
m[4].metric(
    "delegate",
    row.get("delegate") or "—",
    help=f"Input {row.get('input_dtype')}, output "
    f"{row.get('output_dtype')}. 'none' means the builtin kernels ran it (no XNNPACK).",
)
st.caption(
    "Techniques: "
    + " + ".join(row.get("techniques", []))
    + " — "
    + charts.describe_settings(row.get("settings"), row.get("schedule")).replace("<br>", "; ")
)

# ---------------------------------------------------------------- on a microcontroller

st.subheader("On a microcontroller (TensorFlow Lite Micro)")
tflm = VariantResult.from_dict(row).tflm
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
if row.get("tflite"):
    widgets.c_pair_buttons(st.columns(2), folder / row["tflite"], key="inspect_c")

# ---------------------------------------------------------------- layers and weights

before = load_kernels(RunFolder(folder).kernels("baseline"))
after = load_kernels(RunFolder(folder).kernels(stem))
st.subheader("Layers")
st.plotly_chart(
    charts.layer_bars(charts.layer_frame(row.get("layers"), charts.kernel_stats(before))),
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
        charts.weight_histograms(before.get(layer), after.get(layer), layer), width="stretch", key="inspect_hist"
    )
    b.plotly_chart(
        charts.kernel_heatmap(after.get(layer), f"{layer} ({chosen})"), width="stretch", key="inspect_heatmap"
    )
    st.caption("Pruning shows as a tall bar at zero and white cells in the heat map; clustering as a few spikes.")
else:
    st.info("This run saved no weights for the variant.")

file_weights.section(run["dir"], results, chosen)

# ---------------------------------------------------------------- predictions

st.subheader("Predictions")
labels = load_array(folder / "predictions" / "labels.npy")
predictions = load_array(folder / "predictions" / f"{stem}.npy")
class_names = (results.get("dataset") or {}).get("class_names")
if labels is not None and predictions is not None:
    st.plotly_chart(charts.confusion_matrix(labels, predictions, class_names), width="stretch", key="inspect_confusion")
    if row.get("agreement") is not None:
        st.caption(f"Agrees with the float baseline on {row['agreement']:.1%} of the test samples.")
else:
    st.info("No saved predictions for this variant.")

# ---------------------------------------------------------------- graph, schedule, notes

a, b = st.columns(2)
with a:
    st.subheader("Ops in the .tflite")
    ops = row.get("ops") or []
    if ops:
        st.dataframe(pd.DataFrame({"op": ops}), hide_index=True, width="stretch", key="inspect_ops")
    st.caption(
        f"Input {row.get('input_dtype')}, output {row.get('output_dtype')}; {row.get('params', 0):,} parameters; "
        f"delegate {row.get('delegate')}."
    )
    if row.get("delegate_note"):
        st.caption(f"Delegate note: {row['delegate_note']}")
with b:
    st.subheader("Sparsity schedule applied")
    schedule = row.get("schedule")
    pruning = (row.get("settings") or {}).get("pruning")
    if schedule and pruning:
        steps, target = sparsity_curve(PruningConfig(**pruning), int(schedule["total_steps"]))
        st.plotly_chart(charts.schedule_curve(steps, target, schedule), width="stretch", key="inspect_schedule")
        for note in schedule.get("notes") or []:
            st.caption(f":material/info: {note}")
    else:
        st.caption("This variant was not pruned.")

history = row.get("history") or {}
if history:
    st.subheader("Fine-tuning")
    frames = [
        pd.DataFrame(
            {
                "phase": stage,
                "variant": chosen,
                "epoch": range(1, len(h.get("loss", [])) + 1),
                "batch": range(1, len(h.get("loss", [])) + 1),
                "loss": h.get("loss", []),
                "accuracy": (h.get("accuracy") or [None] * len(h.get("loss", [])))[: len(h.get("loss", []))],
            }
        )
        for stage, h in history.items()
        if h.get("loss")
    ]
    if frames:
        fig = charts.training_curves(pd.concat(frames, ignore_index=True), title="Loss and accuracy per epoch")
        fig.update_xaxes(title_text="epoch")
        st.plotly_chart(fig, width="stretch", key="inspect_history")

st.subheader("Notes")
if row.get("float_layers"):
    st.markdown("**Layers left float by QAT**")
    st.dataframe(pd.DataFrame(row["float_layers"]), hide_index=True, width="stretch", key="inspect_float_layers")
for note in row.get("notes") or []:
    st.markdown(f"- {note}")
if not row.get("float_layers") and not row.get("notes"):
    st.caption("Nothing to report for this variant.")
