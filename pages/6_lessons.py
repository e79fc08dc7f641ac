"""Lessons: one technique's effect on the weights the converted .tflite really holds, with three lines to read."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import streamlit as st

from compression.config import PruningConfig
from compression.errors import CompressionError
from compression.explore.lessons import LESSONS, main_layer
from compression.progress import Progress
from compression.run_folder import RunFolder
from compression.store import FINAL_STATUSES
from compression.techniques.clustering import load_centroids
from compression.techniques.pruning import load_snapshots, sparsity_curve
from compression.tflite.weights import tflite_weights_by_layer
from compression.views import weights_charts
from ui import lessons, state, widgets

state.init()
ss = st.session_state
store = state.store()
present = bool(ss.get("presentation"))
st.title(f"{lessons.ICON} Lessons")


@st.cache_data(show_spinner=False, max_entries=32)
def file_weights(path: str, mtime: float, layer_names: tuple[str, ...]) -> dict:
    return tflite_weights_by_layer(Path(path).read_bytes(), list(layer_names))


@st.cache_data(show_spinner=False, max_entries=32)
def saved_kernels(path: str, mtime: float) -> dict[str, np.ndarray]:
    with np.load(path, allow_pickle=False) as data:
        return {k: data[k] for k in data.files}


def kernels(path: Path) -> dict[str, np.ndarray]:
    return saved_kernels(str(path), path.stat().st_mtime) if path.is_file() else {}


def big(fig):
    """Presentation mode: larger chart text."""
    if present:
        fig.update_layout(font={"size": 20}, height=max(fig.layout.height or 420, 560))
    return fig


key = ss.get("lesson")
if key not in LESSONS:
    st.markdown("Pick a lesson in the sidebar: each runs one small prepared variant on the current data and model "
                "and shows what the technique did to the weights stored in the `.tflite`.")
    st.stop()

lesson = LESSONS[key]
st.header(lesson.title)
st.markdown("\n".join(f"{i}. {line}" for i, line in enumerate(lesson.lines, start=1)))
if ss.get("lesson_error"):
    st.error(ss["lesson_error"])
    st.stop()
run_id = ss.get("lesson_run_id")
try:
    run = store.get_run(run_id) if run_id else None
except CompressionError as exc:
    st.error(str(exc))
    st.stop()
if run is None:
    st.info("Start the lesson with its button in the sidebar.")
    st.stop()

folder = RunFolder(run["dir"])
variant = lesson.variant.name


def lesson_row():
    """This lesson's row once the run has written it (the run goes on with the other lessons after it)."""
    results = folder.read_results()
    return results, (results.variant(variant) if results else None)


results, row = lesson_row()
if row is None and run["status"] not in FINAL_STATUSES:

    @st.fragment(run_every=1.0)
    def wait_for_row() -> None:
        current = store.get_run(run_id)
        if current["status"] in FINAL_STATUSES or lesson_row()[1] is not None:
            st.rerun()
        progress = Progress.from_dict(current.get("progress"))
        st.progress(progress.bounded_fraction,
                    text=progress.message or ("waiting for a free worker" if current["status"] == "queued"
                                              else "starting"))
        st.caption(f"Preparing the lesson on {ss.get('lesson_label') or 'the current data and model'}: "
                   "a few seconds on the pretrained default. The other lessons are prepared after it.")

    wait_for_row()
    st.stop()

if row is None or not row.ok:
    reason = (row.error if row is not None and row.error else None) or run.get("error") or "no reason recorded"
    st.error(f"The lesson's variant {variant} did not finish ({row.status.value if row else run['status']}): "
             f"{reason}")
    st.stop()

names = [layer.name for layer in row.layers]
path = folder.tflite(row)
weights = file_weights(str(path), path.stat().st_mtime, tuple(names))
baseline = kernels(folder.weights("baseline"))
if not weights:
    st.warning("The converted file holds no weight tensor this view can read (no Conv/Dense/LSTM weights).")
    st.stop()
default = main_layer(weights)
layer = default
if not present and len(weights) > 1:
    state.ensure_option("lesson_layer", list(weights), default)
    layer = st.selectbox("Layer", list(weights), key="lesson_layer", help="Where the effect shows best: the largest.")
w = weights[layer]
base = baseline.get(layer)
real = w.dequantized()

if lesson.view == "int8":
    fig = weights_charts.int8_grid(
        w.values, w.scales, w.zero_points, w.quantized_dimension,
        floats=w.file_layout(base) if base is not None and np.size(base) == w.params else None,
        layer=layer, channel=0,
    )
elif lesson.view == "schedule":
    snaps = load_snapshots(folder.pruning_steps(row.stem))
    if snaps and layer in snaps["kernels"] and row.schedule:
        curve_steps, target = sparsity_curve(PruningConfig(**row.settings["pruning"]), int(row.schedule["total_steps"]))
        fig = weights_charts.pruning_over_time(snaps["step"], snaps["kernels"][layer], curve_steps, target, layer)
    else:
        fig = weights_charts.file_weight_histogram(real, base, layer, label=f"{row.name} in the .tflite")
        st.caption("No step-by-step record for this layer (too large to record): the final weights instead.")
else:
    fig = weights_charts.file_weight_histogram(real, base, layer, label=f"{row.name} in the .tflite")
st.plotly_chart(big(fig), width="stretch", key="lesson_chart")
if lesson.view == "histogram" and row.settings.get("clustering"):
    moves = load_centroids(folder.cluster_steps(row.stem))
    if moves and layer in moves["centroids"]:
        st.plotly_chart(big(weights_charts.centroids_over_time(moves["step"], moves["centroids"][layer], layer)),
                        width="stretch", key="lesson_centroids")
        st.caption("The 8 shared values move while the model fine-tunes: every weight of a cluster moves with its "
                   "centroid.")

ref = results.reference
facts = [f"{w.dtype} in the file", f"{np.mean(real == 0):.0%} zeros", f"{np.unique(w.values).size} distinct values"]
if w.quantized:
    facts.append(f"{w.scales.size} scale{'s' if w.scales.size != 1 else ''} "
                 f"({w.scales.min():.3g}–{w.scales.max():.3g})")
delta, ratio = row.delta_accuracy(ref), row.gzip_ratio(ref)
if row.accuracy is not None:
    facts.append(f"accuracy {row.accuracy:.1%}" + (f" ({delta:+.1f} points)" if delta is not None else ""))
if ratio is not None:
    facts.append(f"gzip {ratio:.1f}× smaller than float32")
st.markdown(f"**{layer}** · " + " · ".join(facts))
for note in row.notes:  # e.g. a layer left dense, a schedule the engine adjusted
    st.caption(f"Note: {note}")
if ss.get("lesson_reused"):
    st.caption("Prepared by a run of these lessons already in the store (on the same data, model and baseline).")

if not present:
    if st.button("Open this variant in Inspect", icon=state.ICONS["inspect"], key="lesson_inspect"):
        ss["run_id"], ss["inspect_variant"] = run_id, row.name
        widgets.switch_page("inspect")
