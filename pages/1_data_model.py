"""Data & model: choose the dataset and the model, look at both, and decide how the float baseline is made."""

from __future__ import annotations

import streamlit as st

from compression.errors import CompressionError
from compression.inputs.models import check_compatible
from compression.inputs.pretrained import has_pretrained
from compression.results import RunKind
from compression.views import data_preview
from ui import builder, state, widgets

state.init()
ss = st.session_state
st.title(f"{state.ICONS['data']} Data & model")

# ---------------------------------------------------------------- 1. dataset

st.subheader("1 · Dataset")
infos = state.datasets()
names = [d["name"] for d in infos] + ["npz"]
labels = {
    d["name"]: f"{d['name']} — {d['description']}" + ("" if d["offline"] else " (not on this machine)") for d in infos
}
labels["npz"] = "npz — your own .npz file (x_train, y_train, x_test, y_test)"
state.ensure_option("dataset_name", names, "digits")
st.selectbox(
    "Dataset",
    names,
    format_func=labels.get,
    key="dataset_name",
    help="Built-in sets load offline where marked; or upload an .npz with x_train, y_train, x_test, y_test.",
)
info = next((d for d in infos if d["name"] == ss["dataset_name"]), None)
if info is not None and not info["offline"]:
    st.warning(f"{ss['dataset_name']} is not on this machine: {info['source']}")

if ss["dataset_name"] == "npz":
    upload = st.file_uploader(
        "Your .npz file",
        type=["npz"],
        key="npz_upload",
        help="numpy.savez(path, x_train=…, y_train=…, x_test=…, y_test=…): images (N, H, W[, C]) "
        "or sequences (N, L); integer labels from 0. Pickled objects are refused.",
    )
    if upload is not None and upload.file_id != ss.get("npz_file_id"):
        from compression.inputs.user_npz import load_npz

        state.accept_upload(upload, load_npz, "npz")
    if ss["npz_path"]:
        st.caption(f"Using **{ss['npz_label']}**.")
        st.radio(
            "Read the arrays as",
            ["inferred", "image", "sequence", "tokens"],
            key="npz_layout",
            horizontal=True,
            help="Inferred: integer (N, L) arrays are token ids, float (N, L) and (N, T, C) with few channels are "
            "sequences, the rest images (only 8-bit images are divided by 255). A chosen model's input then "
            "decides the axes.",
        )

st.number_input(
    "Use at most this many training samples (0 = all)",
    *builder.WIDGET_RANGES["max_train"],
    key="max_train",
    step=1000,
    help="A seeded random subset for faster fine-tuning on big sets; the test set stays whole.",
)

ds, problem = state.current_dataset()
if ds is None:
    no_upload = ss["dataset_name"] == "npz" and not ss["npz_path"]
    st.info("Upload a .npz file above (arrays x_train, y_train, x_test, y_test)." if no_upload else problem)
else:
    st.caption(ds.description)
    if ds.notes:
        changes = [n for n in ds.notes if not n.startswith("read as")]
        st.caption(f"Read as **{ds.kind}**" + (": " + "; ".join(changes) if changes else "; values kept as they are")
                   + ".")
    m = st.columns(4)
    m[0].metric("training samples", f"{len(ds.x_train):,}")
    m[1].metric("test samples", f"{len(ds.x_test):,}")
    m[2].metric("classes", ds.num_classes)
    m[3].metric("input shape", "×".join(str(d) for d in ds.input_shape))
    preview = data_preview.dataset_preview(ds.kind, ds.x_train, ds.y_train, ds.class_names)
    a, b = st.columns([3, 2])
    a.plotly_chart(preview, width="stretch", key="dataset_preview")
    b.plotly_chart(data_preview.class_counts(ds.y_train, ds.y_test, ds.class_names), width="stretch",
                   key="class_counts")

# ---------------------------------------------------------------- 2. model

st.subheader("2 · Model")


def use_uploaded_weights() -> None:
    """An uploaded model brings its own weights: they are the default baseline (not training it afresh)."""
    if ss["model_source"] == "Upload" and ss.get("model_upload_path"):
        ss["baseline_mode"] = "pretrained"


st.radio(
    "Source",
    state.MODEL_SOURCES,
    key="model_source",
    on_change=use_uploaded_weights,
    horizontal=True,
    help="A zoo architecture (trained here), a pretrained sample shipped with the app, or your own Keras file.",
)
source = ss["model_source"]
zoo = state.zoo()
if source == "Model zoo":
    zoo_names = [m["name"] for m in zoo]
    state.ensure_option("model_name", zoo_names, "seed_cnn")
    titles = {m["name"]: m["title"] for m in zoo}
    st.selectbox(
        "Architecture",
        zoo_names,
        format_func=titles.get,
        key="model_name",
        help="Every zoo model adapts to the dataset's input shape and classes and ends in a 'logits' layer.",
    )
    st.caption(next(m["source"] for m in zoo if m["name"] == ss["model_name"]))
elif source == "Pretrained sample":
    cards = [c for c in state.pretrained_cards() if c["dataset"] == ss["dataset_name"]]
    if not cards:
        shipped = ", ".join(f"{c['dataset']} × {c['model']}" for c in state.pretrained_cards()) or "none"
        st.info(f"No pretrained sample for {ss['dataset_name']} (shipped: {shipped}). Pick a zoo model and train it.")
    else:
        card_of = {c["model"]: c for c in cards}
        state.ensure_option("model_name", list(card_of), "seed_cnn")
        st.selectbox(
            "Sample",
            list(card_of),
            key="model_name",
            format_func=lambda n: (
                f"{n} — test accuracy {card_of[n]['test_accuracy']:.1%}, {card_of[n]['params']:,} parameters"
            ),
            help="Trained once with `python -m compression.techniques.samples` and shipped in sample_models/.",
        )
        card = card_of[ss["model_name"]]
        t = card.get("training", {})
        st.caption(
            f"Trained {t.get('epochs')} epochs, batch {t.get('batch_size')}, {t.get('optimizer')}, seed "
            f"{t.get('seed')}; architecture: {' → '.join(card.get('architecture', []))}."
        )
else:
    upload = st.file_uploader(
        "Keras model (.keras, .h5, or a zipped SavedModel)",
        type=["keras", "h5", "hdf5", "zip"],
        key="model_upload",
        help="Checked before loading: Lambda layers and custom code are refused, nothing is unpickled.",
    )
    if upload is not None and upload.file_id != ss.get("model_file_id"):
        from compression.inputs.model_cards import check_model_file

        with st.spinner("Checking and loading the model…"):
            state.accept_upload(upload, check_model_file, "model")
        use_uploaded_weights()  # also after npz + a weightless zoo model had switched the baseline to training
    if ss["model_upload_path"]:
        st.caption(f"Using **{ss['model_upload_label']}**.")

model_path = ss["model_upload_path"] if source == "Upload" else None
model_ready = source != "Upload" or bool(model_path)
if (
    ds is not None
    and model_ready
    and not (source == "Pretrained sample" and not has_pretrained(ss["dataset_name"], ss["model_name"]))
):
    try:
        summary = state.model_summary(
            source, ss["model_name"], model_path, tuple(ds.input_shape), ds.num_classes, ds.name
        )
    except CompressionError as exc:
        st.error(str(exc))
    else:
        m = st.columns(3)
        m[0].metric("layers", len(summary["layers"]))
        m[1].metric("parameters", f"{summary['params']:,}")
        m[2].metric("float32 size", f"{summary['float_bytes'] / 1024:.1f} KiB", help="Parameters × 4 bytes.")
        st.dataframe(
            summary["layers"],
            hide_index=True,
            width="stretch",
            key="model_layers",
            column_config={"params": st.column_config.NumberColumn("parameters", format="%d")},
        )
        from compression.inputs.layout import fit_to_model
        from compression.inputs.safe_load import model_input_spec

        try:
            # An uploaded model decides the layout (axes, integer ids), as the run will.
            spec = model_input_spec(model_path) if model_path else None
            fitted = fit_to_model(ds, *spec) if spec else ds
            if fitted is not ds:
                st.caption("For this model the data is " + "; ".join(fitted.notes[len(ds.notes):]) + ".")
            check_compatible(summary["input_shape"], summary["outputs"], fitted)
        except CompressionError as exc:
            st.error(str(exc))
        else:
            if model_path and ss["baseline_mode"] == "pretrained":
                for flag in state.uploaded_baseline_flags(model_path):
                    st.warning(flag["message"])

# ---------------------------------------------------------------- 3. baseline

st.subheader("3 · Float baseline")
can_use_weights = source == "Upload" or has_pretrained(ss["dataset_name"], ss["model_name"])
mode_labels = {
    "pretrained": "Use the uploaded weights as they are" if source == "Upload" else "Use the pretrained weights",
    "train": "Train it (now, or in the Compress run)",
}
# Without weights to use, "use the pretrained weights" is not a choice: only training is offered.
modes = list(state.BASELINE_MODES) if can_use_weights else ["train"]
if ss["baseline_mode"] not in modes:
    ss["baseline_mode"] = "train"
st.radio(
    "Baseline",
    modes,
    format_func=mode_labels.get,
    key="baseline_mode",
    horizontal=True,
    help="Every variant starts from this float model. Training happens in a background worker, like runs.",
)
if not can_use_weights:
    st.caption(
        "There are no pretrained weights for this dataset and model: train the baseline now, or the Compress run "
        "trains it first with these settings."
    )
if ss["baseline_mode"] == "train" or not can_use_weights:
    widgets.training_inputs(
        "baseline_", "Epochs", ("Training epochs of the float baseline.", "Training batch size.", "Adam learning rate.")
    )
    if st.button(
        "Train now",
        key="train_now",
        type="primary",
        disabled=ds is None or not model_ready,
        help="Train the baseline in a background worker with a live loss/accuracy curve; the Compress page "
        "then starts from it.",
    ):
        from compression.config import Recipe

        key = {"data": state.data_key(), "model": state.model_key()}
        try:
            recipe = Recipe.baseline_only(
                key["data"],
                key["model"],
                epochs=int(ss["baseline_epochs"]),
                batch_size=int(ss["baseline_batch"]),
                learning_rate=float(ss["baseline_lr"]),
            )
            ss["train_run_id"] = state.runner().submit(recipe, session=state.session_id(), kind=RunKind.BASELINE)
            ss["train_key"] = key
        except CompressionError as exc:
            st.error(str(exc))

if ss.get("train_run_id"):
    widgets.run_monitor(ss["train_run_id"], curve=True, key="train")
    trained = state.trained_baseline()
    if trained is not None:
        acc = f" (test accuracy {trained['accuracy']:.1%})" if trained["accuracy"] is not None else ""
        st.success(f"Baseline trained{acc}: the Compress page starts from it.")
    elif ss.get("train_key") != {"data": state.data_key(), "model": state.model_key()}:
        st.caption("That training run was for another dataset or model; the Compress page does not use it.")

st.divider()
if ds is None:
    st.markdown("**The Compress page will use:** no dataset yet — " + (
        "upload a .npz file above." if ss["dataset_name"] == "npz" and not ss["npz_path"] else problem))
elif not model_ready:
    st.markdown("**The Compress page will use:** no model yet — upload an accepted Keras model above, "
                "or pick one from the zoo.")
else:
    st.markdown(f"**The Compress page will use:** {state.recipe_parts()['label']}")
widgets.page_link("compress", "Next: build and run variants", icon=state.ICONS["compress"])
