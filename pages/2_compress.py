"""Compress: pick a preset, tune the builder, review the variants, run them in the background."""

from __future__ import annotations

import streamlit as st

from compression.config import CentroidInit, Preserve, ScheduleKind
from compression.errors import CompressionError
from compression.run.executors import describe_setting
from compression.run_folder import RunFolder
from compression.views import training_charts
from ui import builder, state, widgets

state.init(builder.CONTROL_DEFAULTS)
ss = st.session_state
parts = state.recipe_parts()
dataset_name = ss["dataset_name"]


def current_preset():
    """The chosen preset's recipe for the current data and model."""
    model = ss["model_name"] if ss["model_source"] != "Upload" else "seed_cnn"
    return builder.preset_recipe(
        ss["preset"], dataset=dataset_name, model=model, pretrained=parts["baseline"].get("pretrained", False)
    )


def load_preset() -> None:
    """Fill the table and the builder controls from the chosen preset."""
    recipe = current_preset()
    ss["variant_rows"] = builder.rows_from_recipe(recipe)
    ss["variant_title"] = recipe.title
    ss["variant_version"] = ss.get("variant_version", 0) + 1
    # A preset fills the settings; the technique switches stay as the user set them.
    settings = builder.controls_from_recipe(recipe, dataset_name)
    ss.update({k: v for k, v in settings.items() if not k.startswith("b_use_")})


def restore_rows() -> bool:
    """A new session that restored its run (a reload: the URL keeps the session tag) gets that run's table."""
    if not ss.get("restored_run_id"):
        return False
    try:
        recipe = state.store().recipe(ss["restored_run_id"])
    except (CompressionError, ValueError):
        return False
    ss["variant_rows"] = builder.rows_from_recipe(recipe)
    ss["variant_title"] = recipe.title
    ss["variant_version"] = ss.get("variant_version", 0) + 1
    ss["compress_run_id"] = ss["restored_run_id"]
    return True


if "variant_rows" not in ss and not restore_rows():
    load_preset()


def apply_table_edits() -> None:
    edits = ss.get(f"variant_editor_{ss['variant_version']}") or {}
    refused: list[str] = []
    ss["variant_rows"] = builder.apply_edits(ss["variant_rows"], edits.get("edited_rows", {}), refused)
    ss["table_refused"] = refused
    ss["variant_version"] += 1


def controls() -> dict:
    return {k: ss[k] for k in builder.CONTROL_DEFAULTS}


def layer_names() -> list[str]:
    """Weighted layers of the chosen model (from its summary: no TensorFlow in the server)."""
    ds, problem = state.current_dataset_info()
    if ds is None:
        st.warning(problem)
        return []
    path = parts["model"].get("path")
    try:
        summary = state.model_summary(
            ss["model_source"], ss["model_name"], path, tuple(ds.input_shape), ds.num_classes, ds.name
        )
    except CompressionError as exc:
        st.error(str(exc))
        return []
    return state.weighted_layers(summary)


def some_layers(technique: str, help: str) -> list[str] | None:
    """The technique's "Only some layers" switch; when on, its model's layer names (the picked ones kept to them)."""
    st.checkbox("Only some layers", key=f"b_{technique}_some", help=help)
    if not ss[f"b_{technique}_some"]:
        return None
    names = layer_names()
    ss[f"b_{technique}_layers"] = [n for n in ss[f"b_{technique}_layers"] if n in names]
    return names


def student_choices() -> tuple[list[str], dict[str, int], str | None]:
    """Zoo students built for this data's kind and smaller than the baseline (smallest first), or why none."""
    ds, problem = state.current_dataset_info()
    if ds is None:
        return [], {}, problem
    shape, classes = tuple(ds.input_shape), ds.num_classes
    try:
        teacher = state.model_summary(ss["model_source"], ss["model_name"], parts["model"].get("path"), shape,
                                      classes, ds.name)["params"]
        sizes = {m["name"]: state.model_summary("Model zoo", m["name"], None, shape, classes, ds.name)["params"]
                 for m in state.zoo() if m.get("kinds", [ds.kind])[0] == ds.kind}
    except CompressionError as exc:
        return [], {}, str(exc)
    smaller = sorted((n for n, p in sizes.items() if p < teacher), key=sizes.get)
    if not smaller:
        return [], sizes, (f"No {ds.kind} model in the zoo is smaller than this baseline ({teacher:,} parameters): "
                           "a distilled student would make the file bigger, not smaller.")
    return smaller, sizes, None


st.title(f"{state.ICONS['compress']} Compress")
st.markdown(f"**Data · model · baseline:** {parts['label']}")
widgets.page_link("data", "Change data, model or baseline", icon=state.ICONS["data"])
if parts["note"]:
    st.info(parts["note"])

# ---------------------------------------------------------------- preset and run

left, right = st.columns([2, 1])
left.selectbox(
    "Preset",
    list(builder.PRESET_TITLES),
    format_func=builder.PRESET_TITLES.get,
    key="preset",
    on_change=load_preset,
    help="A preset fills the variant table and the builder below; the reference experiments C, D and E are from "
    "the write-ups this lab reproduces.",
)
wanted_model = builder.preset_model(ss["preset"])
if wanted_model and (ss["model_source"] == "Upload" or ss["model_name"] != wanted_model):
    left.caption(f"This preset is written for the `{wanted_model}` model.")
    if left.button(
        f"Use {wanted_model}",
        key="use_preset_model",
        help="Switch the model to the one the preset's write-up uses (trained in the run).",
    ):
        ss["model_source"], ss["model_name"], ss["baseline_mode"] = "Model zoo", wanted_model, "train"
        st.rerun()

left.text_input(
    "Run name",
    key="run_name",
    max_chars=120,
    placeholder="the preset's title (marked when the table is edited)",
    help="How History and the cross-run charts name this run; a name used before gets #2, #3.",
)
n_included = sum(1 for r in ss["variant_rows"] if r.get("include", True))
run_clicked = right.button(
    f"Run {n_included} variant{'s' if n_included != 1 else ''}",
    icon=":material/play_arrow:",
    type="primary",
    key="run",
    width="stretch",
    disabled=not (parts["model"].get("name") or parts["model"].get("path")),  # the note above says why
    help="Runs in a background worker process: you can change pages or settings meanwhile.",
)
right.caption("Results appear below as each variant finishes.")
right.toggle(
    "Recompute",
    key="e_recompute",
    help="Compute every variant afresh. Off: variants (and the baseline) whose settings, data and model are "
    "unchanged since an earlier run are reused from it at once, and their rows say so.",
)
right.caption(f"Executor — {describe_setting()}.", help="Set COMPRESSION_LAB_RAY_ADDRESS before starting the app "
              "to run variants on Ray (see docs/ray.md).")
if run_clicked:
    try:
        base = ss.get("variant_title") or builder.PRESET_TITLES.get(ss["preset"], "Custom")
        preset_rows = None if ss["preset"] == "custom" else builder.rows_from_recipe(current_preset())
        taken = [r["title"] for r in state.store().list_runs(session=state.session_id())]
        title = builder.run_title(ss.get("run_name"), base, ss["variant_rows"], preset_rows, taken)
        recipe = builder.build_recipe(parts, ss["variant_rows"], controls(), title=title)
        ss["run_id"] = ss["compress_run_id"] = state.runner().submit(recipe, session=state.session_id())
    except CompressionError as exc:
        st.error(str(exc))

# The run this page started (or, after a reload, the session's run): not whichever run Compare, Inspect or
# History last showed, whose failure would otherwise appear under this page's Run button.
if ss.get("compress_run_id"):
    widgets.run_monitor(ss["compress_run_id"], key="compress")
    _results = RunFolder(state.store().run_dir(ss["compress_run_id"])).read_results()
    _reused = [v for v in (_results.variants if _results else ()) if v.reused_from]
    if _reused:
        st.caption(
            f"Reused from run {', '.join(sorted({v.reused_from for v in _reused}))} (unchanged settings): "
            f"{', '.join(v.name for v in _reused)}. Switch on Recompute beside Run to compute them afresh."
        )
    widgets.page_link("compare", "Compare the variants: charts, table and downloads", icon=state.ICONS["compare"])

# ---------------------------------------------------------------- the variant table

st.subheader("Variants")
st.caption("Untick a row to leave it out; names, conversion mode, sparse encoding, strip names and fine-tune epochs "
           "are editable.")
for sentence in ss.pop("table_refused", None) or []:
    st.warning(sentence)
st.data_editor(
    builder.table_frame(ss["variant_rows"]),
    key=f"variant_editor_{ss['variant_version']}",
    on_change=apply_table_edits,
    hide_index=True,
    width="stretch",
    height=min(38 + 35 * len(ss["variant_rows"]), 1400),  # every row visible (the default stops at ~10)
    disabled=["techniques"],
    placeholder="—",
    column_config={
        "include": st.column_config.CheckboxColumn("run", help="Include this variant in the run."),
        "name": st.column_config.TextColumn("name", help="Unique; also the .tflite file name.", max_chars=80),
        "techniques": st.column_config.TextColumn(
            "techniques", help="Applied in order: distill → prune → cluster → QAT, then the conversion."
        ),
        "quantization": st.column_config.SelectboxColumn(
            "conversion", options=builder.MODES, help="Post-training conversion mode."
        ),
        "sparse_encoding": st.column_config.CheckboxColumn(
            "sparse", help="Store pruned kernels sparse (EXPERIMENTAL_SPARSITY)."
        ),
        "strip_strings": st.column_config.CheckboxColumn(
            "strip names", help="Drop the file's tensor names and signature: same outputs, about 1 KB less."
        ),
        "fine_tune_epochs": st.column_config.NumberColumn(
            "fine-tune epochs",
            min_value=builder.WIDGET_RANGES["fine_tune_epochs"][0],
            max_value=builder.WIDGET_RANGES["fine_tune_epochs"][1],
            step=1,
        ),
    },
)
try:
    builder.specs_from_rows(ss["variant_rows"])
except CompressionError as exc:
    st.error(str(exc))
c1, c2, _ = st.columns([1, 1, 2])
if c1.button("Remove unticked rows", key="remove_unticked", help="Drop the rows whose 'run' box is empty."):
    ss["variant_rows"] = [r for r in ss["variant_rows"] if r.get("include", True)]
    ss["variant_version"] += 1
    st.rerun()
if c2.button("Reset to the preset", key="reset_preset", help="Reload the preset's variants and builder settings."):
    load_preset()
    st.rerun()
with st.expander("Recipe JSON (what the Run button submits)"):
    try:
        st.code(builder.build_recipe(parts, ss["variant_rows"], controls(), title="preview").to_json(), "json")
    except CompressionError as exc:
        st.error(str(exc))

# ---------------------------------------------------------------- the builder

st.subheader("Builder: add variants")
st.caption(
    "Switch on techniques and pick conversion modes: the builder adds one variant per mode with every switched-on "
    "technique stacked (distill → prune → cluster → QAT)."
)
t_prune, t_cluster, t_qat, t_distill, t_convert, t_eval = st.tabs(
    ["Pruning", "Clustering", "QAT", "Distillation", "Conversion", "Evaluation"]
)

with t_prune:
    widgets.explain(
        "Pruning",
        "While the model fine-tunes, tfmot's `prune_low_magnitude` sets the smallest-magnitude weights of each "
        "kernel to zero, following the schedule below, until the final sparsity is reached; the wrappers are then "
        "stripped. 2:4 structured pruning zeroes two of every four consecutive weights (the pattern some "
        "accelerators run faster).",
        "The raw `.tflite` keeps its size (zeros are still stored) but the **gzip** size shrinks roughly with the "
        "sparsity; sparse encoding makes the raw file smaller too. Accuracy usually holds at 50–80 % and drops at "
        "90 %+. CPU latency does not improve (dense kernels).",
    )
    st.toggle(
        "Add pruning to new variants",
        key="b_use_prune",
        help="Stack magnitude pruning into the variants the builder adds.",
    )
    a, b = st.columns(2)
    a.radio(
        "Schedule",
        [k.value for k in ScheduleKind],
        key="b_prune_schedule",
        horizontal=True,
        help="polynomial: sparsity rises from initial to final (cubic); constant: final sparsity from the begin "
        "step on.",
    )
    a.slider(
        "Initial sparsity",
        *builder.WIDGET_RANGES["b_prune_initial"],
        key="b_prune_initial",
        step=0.05,
        help="Sparsity at the begin step (polynomial schedule only).",
        disabled=ss["b_prune_schedule"] == "constant",
    )
    a.slider(
        "Final sparsity",
        *builder.WIDGET_RANGES["b_prune_final"],
        key="b_prune_final",
        step=0.01,
        help="Fraction of each pruned kernel's weights that end up exactly zero.",
    )
    a.checkbox(
        "2:4 structured",
        key="b_prune_24",
        help="Two zeros in every block of four weights along a kernel's input axis (Conv2D and Dense only): "
        "50 % in those layers. A layer without such blocks (e.g. a conv on a 1-channel image) stays dense, so the "
        "run's overall sparsity can be lower; the variant's notes name such layers.",
    )
    b.number_input(
        "Begin step",
        *builder.WIDGET_RANGES["b_prune_begin"],
        key="b_prune_begin",
        step=10,
        help="Optimizer step at which pruning starts.",
    )
    b.number_input(
        "End step (0 = end of fine-tuning)",
        *builder.WIDGET_RANGES["b_prune_end"],
        key="b_prune_end",
        step=10,
        help="Step at which the final sparsity is reached.",
    )
    b.number_input(
        "Frequency (steps)",
        *builder.WIDGET_RANGES["b_prune_freq"],
        key="b_prune_freq",
        step=10,
        help="Masks are updated every this many steps. Short fine-tunes get a smaller frequency "
        "automatically so the final sparsity is still reached (the preview shows what really happens).",
    )
    ds, problem = state.current_dataset_info()
    if ds is not None:
        from compression.techniques.pruning import applied_schedule, sparsity_curve
        from compression.techniques.train import steps_per_epoch

        total = steps_per_epoch(ds.n_train, int(ss["b_batch"])) * max(1, int(ss["b_epochs"]))
        try:
            config = builder.pruning_config({**controls(), "b_prune_some": False})
            steps, target = sparsity_curve(config, total)
            applied = applied_schedule(config, total)
            st.plotly_chart(
                training_charts.schedule_curve(
                    steps,
                    target,
                    applied,
                    title=f"Sparsity over the {total} fine-tune steps "
                    f"({ss['b_epochs']} epochs × {total // max(1, int(ss['b_epochs']))} steps)",
                ),
                width="stretch",
                key="schedule_preview",
            )
            for note in applied["notes"]:
                st.caption(f":material/info: {note}")
        except CompressionError as exc:
            st.error(str(exc))
    names = some_layers("prune", "Prune chosen layers only (loads the model to list its layers).")
    if names is not None:
        st.radio(
            "These layers are",
            ["include", "exclude"],
            key="b_prune_layer_mode",
            horizontal=True,
            help="include: prune only these; exclude: prune every other prunable layer.",
        )
        st.multiselect("Layers", names, key="b_prune_layers", help="Layers with weights of the chosen model.")

with t_cluster:
    widgets.explain(
        "Weight clustering",
        "tfmot's `cluster_weights` replaces each kernel's weights by the nearest of N shared centroid values "
        "(k-means), fine-tunes the centroids, then strips the wrappers.",
        "Raw size and latency do not change, but gzip compresses the repeated values well (16 clusters: ~3–4× "
        "smaller gzip). Accuracy holds at 16–32 clusters and drops at 4–8. Layers with fewer weights than "
        "clusters are left unclustered and listed in the notes.",
    )
    st.toggle(
        "Add clustering to new variants",
        key="b_use_cluster",
        help="Stack weight clustering into the variants the builder adds.",
    )
    st.slider(
        "Clusters",
        *builder.WIDGET_RANGES["b_clusters"],
        key="b_clusters",
        help="Distinct weight values per clustered kernel.",
    )
    st.selectbox(
        "Centroid initialisation",
        [c.value for c in CentroidInit],
        key="b_cluster_init",
        help="How the first centroids are placed: kmeans++ (robust), linear (evenly spaced), density "
        "(where weights are dense), random.",
    )
    names = some_layers("cluster", "Cluster chosen layers only.")
    if names is not None:
        st.multiselect("Layers to cluster", names, key="b_cluster_layers", help="Layers with weights.")

with t_qat:
    widgets.explain(
        "Quantization-aware training (QAT, PQAT, CQAT, PCQAT)",
        "Fake-quantization ops are inserted so the model fine-tunes while seeing int8 rounding; the result is "
        "converted with the chosen mode (int8 is the natural one). After pruning it becomes PQAT (keeps the "
        "zeros), after clustering CQAT (keeps the centroids), after both PCQAT — chosen automatically.",
        "int8 accuracy close to the float model (often better than post-training int8), 4× smaller than float32. "
        "Layers tfmot cannot quantize (Conv1D, LSTM, standalone BatchNorm…) stay float and are listed.",
    )
    st.toggle(
        "Add QAT to new variants",
        key="b_use_qat",
        help="Stack quantization-aware training; with pruning "
        "or clustering switched on it becomes PQAT / CQAT / PCQAT.",
    )
    scheme = Preserve.for_techniques(ss["b_use_prune"], ss["b_use_cluster"]).scheme_name
    st.caption(f"With the current switches the scheme is **{scheme}**.")
    names = some_layers("qat", "Quantize-annotate chosen layers only; the rest stay float during training.")
    if names is not None:
        st.multiselect("Layers to quantize", names, key="b_qat_layers", help="Layers with weights.")

with t_distill:
    widgets.explain(
        "Knowledge distillation",
        "A smaller zoo model (the student) is trained on the baseline's (the teacher's) softened outputs plus the "
        "true labels; the other techniques then apply to the student.",
        "Far fewer parameters (a smaller file before any quantization), some accuracy lost; combine with int8.",
    )
    def check_students() -> None:
        """Turning distillation on sizes the zoo (imports TensorFlow): refuse it when no student is smaller."""
        if ss["b_use_distill"]:
            no_student = student_choices()[2]
            if no_student:
                ss["b_use_distill"], ss["distill_refused"] = False, no_student

    st.toggle(
        "Add distillation to new variants",
        key="b_use_distill",
        on_change=check_students,
        help="Start the variants from a distilled student instead of the baseline.",
    )
    if ss.get("distill_refused") and not ss["b_use_distill"]:
        st.info(ss["distill_refused"])
    if ss["b_use_distill"]:
        ss["distill_refused"] = None
        students, student_params, _ = student_choices()
        state.ensure_option("b_student", students, students[0] if students else None)
        st.selectbox(
            "Student model",
            students,
            key="b_student",
            format_func=lambda n: f"{n} ({student_params.get(n, 0):,} parameters)",
            help="A zoo architecture for this kind of data, smaller than the baseline, trained to imitate it.",
        )
    st.slider(
        "Temperature",
        *builder.WIDGET_RANGES["b_temperature"],
        key="b_temperature",
        step=0.5,
        help="Softens the teacher's probabilities; higher shows more of how classes resemble each other.",
    )
    st.slider(
        "α (weight of the true labels)",
        *builder.WIDGET_RANGES["b_alpha"],
        key="b_alpha",
        step=0.05,
        help="Loss = α·cross-entropy(labels) + (1−α)·T²·KL(teacher ‖ student).",
    )
    st.number_input(
        "Student epochs",
        *builder.WIDGET_RANGES["b_distill_epochs"],
        key="b_distill_epochs",
        help="Epochs of student training.",
    )

with t_convert:
    widgets.explain(
        "Post-training conversion",
        "`tf.lite.TFLiteConverter` writes the `.tflite`: "
        + "; ".join(f"**{m}**: {h}" for m, h in builder.MODE_HELP.items())
        + ".",
        "int8 and dynamic are ~4× smaller than float32, float16 ~2×. **int16x8 is not delegated to XNNPACK: "
        "expect it 20–40× slower than int8.** Sparse encoding shrinks the raw file of pruned models, but "
        "dynamic-range + sparse cannot use XNNPACK (slower fallback).",
    )
    st.multiselect(
        "Post-training modes", builder.MODES, key="b_modes", help="The builder adds one variant per mode selected here."
    )
    if "int16x8" in ss["b_modes"]:
        st.warning("int16x8 is not delegated to XNNPACK: it runs about 20–40× slower than int8 on this CPU.")
    st.checkbox(
        "Sparse encoding (pruned variants)",
        key="b_sparse",
        help="Convert with EXPERIMENTAL_SPARSITY: pruned kernels stored sparse (needs pruning switched on).",
    )
    widgets.training_inputs(
        "b_",
        "Fine-tune epochs",
        (
            "Epochs of fine-tuning for pruning, clustering and QAT.",
            "Fine-tune batch size (also sets the number of pruning steps).",
            "Adam learning rate of the fine-tune.",
        ),
    )
    st.number_input(
        "Calibration samples (int8 / int16x8)",
        *builder.WIDGET_RANGES["b_rep_samples"],
        key="b_rep_samples",
        help="Training samples fed to the converter to calibrate activation ranges.",
    )

with t_eval:
    st.caption("How every `.tflite` is measured with the LiteRT interpreter.")
    a, b, c, d = st.columns(4)
    a.number_input(
        "Threads",
        *builder.WIDGET_RANGES["e_threads"],
        key="e_threads",
        help="Interpreter threads; reported with every latency.",
    )
    b.number_input(
        "Latency runs",
        *builder.WIDGET_RANGES["e_latency_runs"],
        key="e_latency_runs",
        help="Timed batch-1 invokes after one warm-up; the table shows their median.",
    )
    c.number_input(
        "Throughput batch",
        *builder.WIDGET_RANGES["e_throughput_batch"],
        key="e_throughput_batch",
        help="Batch size of the throughput measurement.",
    )
    d.number_input(
        "Seed",
        *builder.WIDGET_RANGES["e_seed"],
        key="e_seed",
        help="Seeds data subsampling, training and calibration: the same recipe gives the same table.",
    )

try:
    exclude_layers = layer_names() if ss["b_prune_some"] and ss["b_prune_layer_mode"] == "exclude" else None
    proposed = builder.builder_variants(controls(), ss["variant_rows"], exclude_layers)
except CompressionError as exc:
    proposed = []
    st.error(str(exc))
if proposed:
    st.markdown("**The builder would add:** " + ", ".join(f"`{s.name}` ({' + '.join(s.techniques)})" for s in proposed))
else:
    st.caption("Switch on a technique or pick a mode that is not in the table yet to add variants.")
if st.button(
    f"Add {len(proposed)} variant{'s' if len(proposed) != 1 else ''} to the table",
    key="add_variants",
    disabled=not proposed,
    help="Append the variants above to the table.",
):
    ss["variant_rows"] = builder.add_rows(ss["variant_rows"], proposed)
    ss["variant_version"] += 1
    st.rerun()
