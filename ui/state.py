"""Session state shared by the pages, and the process-wide store and runner.

Every page calls :func:`init` first. It fills missing keys with the defaults
(digits + seed CNN + pretrained baseline + the experiment-E preset) and
re-saves the persistent keys, which stops Streamlit from dropping a widget's
value while the user is on another page.

The engine parts that need TensorFlow (building a model to list its layers,
loading an uploaded model) are imported inside the cached functions, so the
first page load never waits for TensorFlow.
"""

from __future__ import annotations

import re
import uuid
from pathlib import Path
from typing import Any

import streamlit as st

from compression.results import RunKind, file_stem
from compression.store import Store, default_root

# Registered in app.py with st.navigation; pages link to each other through these paths.
PAGES = {
    "data": "pages/1_data_model.py",
    "compress": "pages/2_compress.py",
    "compare": "pages/3_compare.py",
    "inspect": "pages/4_inspect.py",
    "history": "pages/5_history.py",
    "find_smallest": "pages/6_find_smallest.py",
}

# Material icons ship with Streamlit's fonts, so they render everywhere (emoji need a system font).
ICONS = {
    "data": ":material/dataset:",
    "compress": ":material/compress:",
    "compare": ":material/monitoring:",
    "inspect": ":material/biotech:",
    "history": ":material/history:",
    "find_smallest": ":material/search:",
}

MODEL_SOURCES = ("Model zoo", "Pretrained sample", "Upload")
BASELINE_MODES = ("pretrained", "train")

DEFAULTS: dict[str, Any] = {
    # data
    "dataset_name": "digits",
    "npz_path": None,  # the saved upload when dataset_name == "npz"
    "npz_label": None,
    "npz_layout": "inferred",  # or image / sequence / tokens: the user's correction of the inferred layout
    "max_train": 0,  # 0 = every training sample
    # model
    "model_source": "Pretrained sample",
    "model_name": "seed_cnn",
    "model_upload_path": None,
    "model_upload_label": None,
    # baseline
    "baseline_mode": "pretrained",
    "baseline_epochs": 20,
    "baseline_batch": 64,
    "baseline_lr": 0.001,
    # runs
    "run_id": None,  # the run the Compress / Compare / Inspect pages show
    "train_run_id": None,  # the latest "train now" run of the Data & model page
    "train_key": None,  # what that run trained (dataset + model), to know if it still applies
}


def leave_legacy_pages_mode() -> None:
    """Make a page script that Streamlit ran directly hand over to app.py's st.navigation.

    The project layout keeps page scripts in ``pages/``. Until some session has run
    ``st.navigation``, Streamlit treats that folder as its legacy multipage app and
    runs a deep-linked page (``/history`` on a freshly started server) without
    ``app.py``: no routing, no layout, a wrong sidebar. Streamlit offers no setting
    for this, so clear its class-level flag (what ``st.navigation`` itself does) and
    rerun: the rerun executes app.py, which routes to the same page.
    """
    from streamlit.runtime.pages_manager import PagesManager

    # Only on a session's first run, where a rerun loses no widget interaction. (AppTest resets
    # the flag before every run and then runs pages directly; its later runs must not be rerun.)
    if PagesManager.uses_pages_directory and "sid" not in st.session_state:
        PagesManager.uses_pages_directory = False
        st.rerun()


def init(extra_defaults: dict[str, Any] | None = None, *, router: bool = False) -> None:
    """Fill missing keys with defaults and keep every persistent key alive across pages.

    Pages call it first; ``app.py`` passes ``router=True`` (it calls st.navigation itself).
    """
    from .builder import CONTROL_DEFAULTS

    if not router:
        leave_legacy_pages_mode()
    ss = st.session_state
    _restore_session_id()
    for key, value in {**DEFAULTS, **CONTROL_DEFAULTS, **(extra_defaults or {})}.items():
        if key in ss:
            ss[key] = ss[key]  # re-save: a widget key not drawn on this page would otherwise be dropped
        else:
            ss[key] = list(value) if isinstance(value, list) else value


def keep(keys) -> None:
    """Re-save keys defined by other modules (e.g. the builder's), if present."""
    ss = st.session_state
    for key in keys:
        if key in ss:
            ss[key] = ss[key]


# Runs with results to compare: all but the baseline-only "train now" runs of the Data & model page.
RESULT_KINDS = tuple(k for k in RunKind if k is not RunKind.BASELINE)


def _restore_session_id() -> None:
    """Keep the session tag in the URL (``?sid=…``) so a reload still shows this session's runs."""
    ss = st.session_state
    if "sid" not in ss:
        from_url = st.query_params.get("sid", "")
        valid = len(from_url) == 12 and all(c in "0123456789abcdef" for c in from_url)
        ss["sid"] = from_url if valid else uuid.uuid4().hex[:12]
        if valid and ss.get("run_id") is None:  # a reload: show this session's latest run again
            mine = store().list_runs(session=from_url, kind=RESULT_KINDS)
            if mine:
                ss["run_id"] = ss["restored_run_id"] = mine[0]["id"]
    if st.query_params.get("sid") != ss["sid"]:
        st.query_params["sid"] = ss["sid"]


def session_id() -> str:
    """This browser session's tag: runs submitted with it are 'my runs'."""
    if "sid" not in st.session_state:
        _restore_session_id()
    return st.session_state["sid"]


def ensure_option(key: str, options, fallback=None) -> None:
    """Reset a select widget's state when its value is no longer among the options."""
    options = list(options)
    if st.session_state.get(key) not in options and options:
        st.session_state[key] = fallback if fallback in options else options[0]


# ---------------------------------------------------------------- store and runner


@st.cache_resource(show_spinner=False)
def _store(root: str) -> Store:
    return Store(root)


def store() -> Store:
    """The experiment store under ``$COMPRESSION_LAB_DATA`` (or ``~/.compression-lab``)."""
    return _store(str(default_root().resolve()))


def runner():
    """The process-wide runner (its worker processes outlive reruns and page changes)."""
    from compression.run.runner import get_runner

    return get_runner()


def start_runner() -> None:
    """Start the process-wide runner (and its warm spare worker) if it is not running yet; app.py calls it
    after every page so the spare is ready before the first Run. A store that cannot be opened is left to
    the page that submits a run to report (with its sentence)."""
    from compression.errors import CompressionError

    try:
        runner()
    except CompressionError:
        pass


def uploads_dir() -> Path:
    """Where uploaded datasets and models are kept (under the store root)."""
    folder = store().root / "uploads"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def accept_upload(upload, check, kind: str) -> None:
    """Store an uploaded file, run the engine's ``check(path)`` on it, and remember it only if accepted.

    ``kind`` is "npz" or "model": it names the session keys (``npz_path``/``npz_label``/``npz_file_id``,
    ``model_upload_path``/…). A refused file is deleted and its sentence shown with ``st.error``.
    """
    from compression.errors import CompressionError

    ss = st.session_state
    prefix = "npz" if kind == "npz" else "model_upload"
    path = save_upload(upload.name, upload.getvalue(), session_id())
    try:
        check(path)
    except CompressionError as exc:
        st.error(str(exc))
        path.unlink(missing_ok=True)
        ss[f"{prefix}_path"], ss[f"{prefix}_label"] = None, None
    else:
        ss[f"{prefix}_path"], ss[f"{prefix}_label"] = str(path), path.name
    ss[f"{kind}_file_id"] = upload.file_id


def save_upload(name: str, data: bytes, session: str) -> Path:
    """Write an uploaded file under the store with a sanitized name; return its path."""
    stem = Path(name).name
    safe = file_stem(stem, fallback="upload")
    folder = uploads_dir() / re.sub(r"[^A-Za-z0-9]", "", session)[:32]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / safe[-100:]
    tmp = path.with_name(f".tmp-{path.name}")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


# ---------------------------------------------------------------- cached engine calls


def _stamp(path: str | None) -> tuple | None:
    """Size and modification time: a re-uploaded file under the same name is a new cache entry."""
    if not path:
        return None
    try:
        st_ = Path(path).stat()
    except OSError:
        return None
    return (st_.st_size, st_.st_mtime_ns)


@st.cache_resource(show_spinner="Loading the dataset…", max_entries=4)
def _dataset(name: str, path: str | None, max_train: int | None, stamp: tuple | None, layout: str | None = None):
    from compression.inputs.data import load_dataset

    return load_dataset(name, path=path, max_train=max_train or None, layout=layout)


def dataset(name: str, path: str | None = None, max_train: int | None = None, layout: str | None = None):
    """The Dataset (shared object: never mutate its arrays)."""
    return _dataset(name, path, max_train, _stamp(path), layout)


@st.cache_data(show_spinner="Checking the uploaded model on the test set…", max_entries=8)
def _uploaded_flags(path: str, stamp: tuple | None, data: str) -> tuple[list[dict], str | None]:
    import json

    from compression.errors import CompressionError
    from compression.isolation import ChildError, shared_pool
    from compression.techniques.train import uploaded_baseline_check

    try:  # in the engine's child process: the server never imports TensorFlow
        return shared_pool().call(uploaded_baseline_check, path, json.loads(data),
                                  what="Checking the uploaded model"), None
    except (CompressionError, ChildError) as exc:
        return [], str(exc)


def uploaded_baseline_flags(path: str) -> list[dict]:
    """Warnings about an uploaded model used as it is on the current data (e.g. at chance), cached per file."""
    import json

    return _uploaded_flags(path, _stamp(path), json.dumps(data_key(), sort_keys=True))[0]


@st.cache_data(show_spinner=False)
def datasets() -> list[dict]:
    from compression.inputs.builtin_datasets import list_datasets

    return list_datasets()


@st.cache_data(show_spinner=False)
def zoo() -> list[dict]:
    from compression.inputs.models import list_models

    return list_models()


@st.cache_data(show_spinner=False)
def pretrained_cards() -> list[dict]:
    from compression.inputs.pretrained import list_pretrained

    return list_pretrained()


def model_summary(
    source: str, name: str | None, path: str | None, input_shape: tuple, num_classes: int, dataset_name: str = ""
) -> dict:
    """Layers, parameters and float size of the chosen model (a precomputed card, or a child process).

    Raises:
        CompressionError: the model cannot be built for this data or the upload is refused.
    """
    return _model_summary(source, name, path, tuple(input_shape), int(num_classes), dataset_name, _stamp(path))


@st.cache_data(show_spinner="Summarising the model…", max_entries=16)
def _model_summary(
    source: str,
    name: str | None,
    path: str | None,
    input_shape: tuple,
    num_classes: int,
    dataset_name: str,
    stamp: tuple | None,
) -> dict:
    # Never TensorFlow in the server: a precomputed card, else a child process (compression.inputs.model_cards).
    from compression.inputs.model_cards import model_summary as summarize

    kind = "pretrained" if not path and source == "Pretrained sample" and _has_pretrained(dataset_name, name) \
        else "zoo"
    return summarize(kind, name, path, input_shape, num_classes, dataset_name)


def _has_pretrained(dataset_name: str, name: str | None) -> bool:
    from compression.inputs.pretrained import has_pretrained

    return bool(name) and has_pretrained(dataset_name, name)


def weighted_layers(summary: dict) -> list[str]:
    """Names of the layers that hold weights (what pruning, clustering and QAT can target)."""
    return [layer["name"] for layer in summary["layers"] if layer["params"] > 0]


# ---------------------------------------------------------------- the chosen data, model and baseline


def data_key() -> dict:
    ss = st.session_state
    return {
        "name": ss["dataset_name"],
        "path": ss["npz_path"] if ss["dataset_name"] == "npz" else None,
        "max_train": int(ss["max_train"]) or None,
        "layout": ss["npz_layout"] if ss["dataset_name"] == "npz" and ss["npz_layout"] != "inferred" else None,
    }


def model_key() -> dict:
    ss = st.session_state
    if ss["model_source"] == "Upload":
        return {"path": ss["model_upload_path"]}
    return {"name": ss["model_name"]}


def current_dataset():
    """The chosen Dataset, or None (with the reason) when it cannot be loaded."""
    from compression.errors import CompressionError

    d = data_key()
    if d["name"] == "npz" and not d["path"]:
        return None, "Upload a .npz file on the Data & model page first."
    try:
        return dataset(d["name"], d["path"], d["max_train"], d["layout"]), None
    except CompressionError as exc:
        return None, str(exc)


def current_dataset_info():
    """The chosen dataset's shape, classes and split sizes (a ``DatasetInfo``), or None with the reason.

    From the built-in dataset's card when it has one (the default digits: no scikit-learn import in the
    server for the first page), else from the loaded dataset.
    """
    from compression.inputs.dataset_cards import dataset_card, describe_dataset

    d = data_key()
    card = dataset_card(d["name"], d["path"], d["max_train"], layout=d["layout"])
    if card is not None:
        return card, None
    ds, problem = current_dataset()
    return (describe_dataset(ds) if ds is not None else None), problem


def trained_baseline() -> dict | None:
    """The finished "train now" run for the current data and model, if any.

    Returns:
        ``{"run_id", "path", "accuracy"}`` or None.
    """
    from compression.errors import CompressionError

    ss = st.session_state
    run_id = ss.get("train_run_id")
    if not run_id or ss.get("train_key") != {"data": data_key(), "model": model_key()}:
        return None
    try:
        run = store().get_run(run_id)
    except CompressionError:
        return None
    path = store().folder(run_id).baseline_model
    if run["status"] != "ok" or not path.exists():
        return None
    results = store().results(run_id)
    baseline = results.baseline if results else None
    return {"run_id": run_id, "path": str(path), "accuracy": baseline.accuracy if baseline else None}


def recipe_parts() -> dict:
    """Dataset, model and baseline specs (dicts) for the Compress page's recipe, plus a one-line label.

    Returns:
        ``{"dataset", "model", "baseline", "label", "note"}``; ``note`` explains a fallback.
    """
    from compression.inputs.pretrained import has_pretrained

    ss = st.session_state
    d = data_key()
    dataset_spec = {"name": d["name"], "path": d["path"], "max_train": d["max_train"], "layout": d["layout"]}
    model = model_key()
    epochs, batch, lr = int(ss["baseline_epochs"]), int(ss["baseline_batch"]), float(ss["baseline_lr"])
    train = {"pretrained": False, "epochs": epochs, "batch_size": batch, "learning_rate": lr}
    data_label = ss["npz_label"] if d["name"] == "npz" else d["name"]
    note = None
    if "path" in model:
        model_label = ss["model_upload_label"] or "uploaded model"
        if not model["path"]:
            note = "Upload a model on the Data & model page, or pick one from the zoo."
    else:
        model_label = model["name"]
    trained = trained_baseline()
    if trained is not None:
        acc = f", accuracy {trained['accuracy']:.1%}" if trained["accuracy"] is not None else ""
        return {
            "dataset": dataset_spec,
            "model": {"name": None, "path": trained["path"]},
            "baseline": {"pretrained": True},
            "label": f"{data_label} · {model_label} · baseline trained on the Data & model page{acc}",
            "note": note,
        }
    if ss["baseline_mode"] == "pretrained":
        if "path" in model:
            baseline, how = {"pretrained": True}, "uploaded weights as they are"
        elif d["name"] != "npz" and has_pretrained(d["name"], model["name"]):
            card = next(
                (c for c in pretrained_cards() if c["dataset"] == d["name"] and c["model"] == model["name"]), {}
            )
            acc = f" (test accuracy {card['test_accuracy']:.1%})" if card.get("test_accuracy") is not None else ""
            baseline, how = {"pretrained": True}, f"pretrained sample{acc}"
        else:
            baseline, how = train, f"trained in the run ({epochs} epochs)"
            note = f"There is no pretrained {model_label} for {data_label}: the run trains the baseline first."
    else:
        baseline, how = train, f"trained in the run ({epochs} epochs)"
    model_spec = {"name": None, "path": model["path"]} if "path" in model else {"name": model["name"], "path": None}
    return {
        "dataset": dataset_spec,
        "model": model_spec,
        "baseline": baseline,
        "label": f"{data_label} · {model_label} · baseline: {how}",
        "note": note,
    }
