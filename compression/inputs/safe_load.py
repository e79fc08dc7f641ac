"""Load a user's Keras model without running code it carries.

A legacy ``.h5`` with a ``Lambda`` layer executes the Lambda's marshalled
Python the moment it is loaded, and any format may name custom classes or
modules. So every upload is treated as untrusted: the model's JSON config is
read without deserializing anything, every object in it (nested models,
wrappers, RNN cells, initializers, …) is checked against tf_keras' built-in
set, and only then does tf_keras load it, with ``compile=False`` and
``safe_mode=True``. Nothing is ever unpickled.

Accepted formats: ``.keras`` (zip with ``config.json``), legacy ``.h5`` /
``.hdf5`` (``model_config`` attribute) and a zipped SavedModel (``.zip``
holding ``saved_model.pb`` and ``keras_metadata.pb``).

Usage::

    model = load_user_model("uploads/model.keras")
"""

from __future__ import annotations

import functools
import json
import tempfile
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..errors import CompressionError, one_line
from . import zipsafe

DEFAULT_MAX_BYTES = 100 * 2**20
# An archive may inflate to at most this many times the file size limit.
EXPANSION_LIMIT = 4
MAX_ZIP_MEMBERS = zipsafe.MAX_MEMBERS
MAX_CONFIG_BYTES = 32 * 2**20

MODEL_CLASSES = frozenset({"Sequential", "Functional", "Model"})
OP_LAYER_CLASSES = frozenset({"TFOpLambda", "SlicingOpLambda"})
# Serialized values that are data, not code (see tf_keras serialization_lib and json_utils).
DATA_CLASSES = frozenset({
    "__tuple__", "__ellipsis__", "__bytes__", "__tensor__", "__numpy__", "__typespec__",
    "TensorShape", "TypeSpec", "CompositeTensor",
})
# Preprocessing layers whose `vocabulary` may be a path they read from the server's disk.
FILE_READING_LAYERS = frozenset({"StringLookup", "IntegerLookup", "TextVectorization"})
# TFOpLambda calls a public TensorFlow function named in the config: only plain tensor
# maths is accepted (tf.io, tf.py_function, tf.print, gfile, raw_ops … are not).
ALLOWED_OP_MODULES = frozenset({
    "array_ops", "gen_array_ops", "array_ops_stack", "math_ops", "gen_math_ops", "nn_ops", "gen_nn_ops",
    "nn_impl", "nn_impl_distribute", "special_math_ops", "clip_ops", "tensor_getitem_override",
    "tensor_math_operator_overrides", "image_ops_impl", "gen_image_ops", "linalg_ops", "gen_linalg_ops",
    "sort_ops", "bitwise_ops", "gen_bitwise_ops", "embedding_ops", "manip_ops", "gen_manip_ops",
    "random_ops", "stateless_random_ops", "gen_spectral_ops", "signal", "linalg", "ragged",
})

_FORMATS = {".keras": "keras", ".h5": "h5", ".hdf5": "h5", ".zip": "savedmodel"}


def load_user_model(path: str | Path, max_bytes: int = DEFAULT_MAX_BYTES):
    """Load an untrusted ``.keras``, ``.h5`` or zipped SavedModel as a tf_keras model.

    The config is checked before anything is deserialized: ``Lambda`` layers,
    custom classes, custom functions, foreign modules and TensorFlow calls
    other than tensor maths are refused.

    Args:
        path: the uploaded file.
        max_bytes: refuse files larger than this (default 100 MB); archives may
            inflate to at most ``EXPANSION_LIMIT`` times this.

    Returns:
        The uncompiled ``tf_keras.Model`` (Sequential or Functional).

    Raises:
        CompressionError: the file is missing, empty, too large, of an unknown
            type, damaged, refers to code, or tf_keras cannot load it.

    Usage::

        model = load_user_model("model.h5", max_bytes=50 * 2**20)
    """
    path = Path(path)
    label = path.name
    if not path.is_file():
        raise CompressionError(f"The model file {label!r} does not exist.")
    fmt = _FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise CompressionError(
            f"{label!r} has an unsupported extension; upload a .keras, .h5 or zipped SavedModel (.zip) file."
        )
    size = path.stat().st_size
    if size == 0:
        raise CompressionError(f"The model file {label!r} is empty.")
    if size > max_bytes:
        raise CompressionError(
            f"The model file {label!r} is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB limit."
        )
    if fmt == "keras":
        return _load_keras_archive(path, label, max_bytes)
    if fmt == "h5":
        return _load_h5(path, label)
    return _load_zipped_savedmodel(path, label, max_bytes)


def model_input_spec(path: str | Path) -> tuple[tuple[int | None, ...], str] | None:
    """A model file's input shape (without the batch axis) and dtype, read from its config without loading it.

    Only parses JSON (``config.json`` of a ``.keras``, the ``model_config`` attribute of an ``.h5``);
    nothing is deserialized. None when the file does not say (a SavedModel, several inputs, a damaged
    file: loading it later reports the problem).

    Usage::

        model_input_spec("lstm.keras")  # ((40, 1), 'float32')
    """
    path = Path(path)
    try:
        if path.suffix.lower() == ".keras":
            with zipfile.ZipFile(path) as zf:
                info = zf.getinfo("config.json")
                if info.file_size > MAX_CONFIG_BYTES:
                    return None
                config = json.loads(zf.read(info))
        elif path.suffix.lower() in (".h5", ".hdf5"):
            import h5py

            with h5py.File(path, "r") as f:
                raw = f.attrs.get("model_config")
            if raw is None or len(raw) > MAX_CONFIG_BYTES:
                return None
            config = json.loads(raw.decode("utf-8", "replace") if isinstance(raw, bytes) else raw)
        else:
            return None
    except (OSError, KeyError, ValueError, zipfile.BadZipFile):
        return None
    layers = (config.get("config") or {}).get("layers") if isinstance(config, dict) else None
    if not isinstance(layers, list):
        return None
    inputs = [x for x in layers if isinstance(x, dict) and x.get("class_name") == "InputLayer"]
    candidates = inputs or [x for x in layers[:1] if isinstance(x, dict)]
    if len(candidates) != 1:
        return None
    layer_config = candidates[0].get("config") or {}
    shape = layer_config.get("batch_input_shape") or layer_config.get("batch_shape")
    if not isinstance(shape, list) or len(shape) < 2:
        return None
    dtype = layer_config.get("dtype")
    dtype = dtype if isinstance(dtype, str) else "float32"
    if not all(d is None or (isinstance(d, int) and d > 0) for d in shape[1:]):
        return None
    return tuple(shape[1:]), dtype


# ---------------------------------------------------------------- config checks


def check_model_config(config: Any) -> None:
    """Refuse a Keras model config that would run code when deserialized.

    Walks every nested object: layers of nested models, wrapped layers, RNN
    cells, initializers, regularizers, constraints, call arguments.

    Args:
        config: the parsed JSON of ``config.json`` / ``model_config`` / one
            ``keras_metadata.pb`` node (``{"class_name": …, "config": …}``).

    Raises:
        CompressionError: naming the first offending layer or object.

    Usage::

        check_model_config(json.loads(zipfile.ZipFile(p).read("config.json")))
    """
    if not isinstance(config, dict) or not isinstance(config.get("class_name"), str):
        raise CompressionError("The model configuration is not a Keras model description.")
    top = config["class_name"]
    if top not in MODEL_CLASSES:
        if top in _builtin_classes() or top == "Lambda":
            _check_object(config, owner=None)  # a bare layer: let the usual messages explain
        raise CompressionError(
            f"The model is a {top!r}, not a Sequential or Functional model; custom (subclassed) models run "
            "their own Python code and are refused."
        )
    stack: list[tuple[Any, str | None]] = [(config, None)]
    while stack:
        obj, owner = stack.pop()
        if isinstance(obj, dict):
            if isinstance(obj.get("class_name"), str):
                _check_object(obj, owner)
                owner = _object_name(obj) or owner
            stack.extend((v, owner) for v in obj.values())
        elif isinstance(obj, list):
            stack.extend((v, owner) for v in obj)


def _object_name(obj: dict) -> str | None:
    inner = obj.get("config")
    name = inner.get("name") if isinstance(inner, dict) else None
    name = name if isinstance(name, str) else obj.get("name")
    return name if isinstance(name, str) else None


def _check_object(obj: dict, owner: str | None) -> None:
    cls = obj["class_name"]
    name = _object_name(obj)
    where = f" ({name!r})" if name else (f" (in layer {owner!r})" if owner else "")
    if cls == "Lambda":
        raise CompressionError(
            f"The model uses a Lambda layer{where}; Lambda layers run arbitrary Python and are refused. "
            "Rebuild the model without it."
        )
    if cls == "__lambda__":
        raise CompressionError(
            f"The model stores a Python lambda function{where}; it would run arbitrary Python and is refused. "
            "Rebuild the model with built-in activations and layers."
        )
    known = cls in DATA_CLASSES or cls in OP_LAYER_CLASSES or cls == "function" or cls in _builtin_classes()
    if not known:
        if name is not None and isinstance(obj.get("config"), dict) and "trainable" in obj["config"]:
            raise CompressionError(
                f"The model uses the layer class {cls!r}{where}, which is not a built-in tf_keras layer; "
                "custom layers can run arbitrary code and are refused. Rebuild the model with built-in layers."
            )
        raise CompressionError(
            f"The model uses {cls!r}{where}, which is not a built-in tf_keras object; custom objects can run "
            "arbitrary code and are refused."
        )
    module = obj.get("module")
    if module is not None and not _allowed_module(module, cls):
        raise CompressionError(
            f"The model refers to code in module {module!r} (class {cls!r}{where}); only tf_keras built-ins "
            "are accepted."
        )
    registered = obj.get("registered_name")
    if registered is not None and registered not in (cls, "function"):
        raise CompressionError(
            f"The model uses the registered custom object {registered!r}{where}; custom objects can run "
            "arbitrary code and are refused."
        )
    if cls in DATA_CLASSES:
        return
    if cls == "function":
        fn = obj.get("config")
        if not (isinstance(fn, str) and fn in _builtin_functions()):
            raise CompressionError(
                f"The model uses the custom function {fn!r}{where}; only tf_keras built-in activations, losses "
                "and metrics are accepted."
            )
        return
    if cls in OP_LAYER_CLASSES:
        _check_tf_op(obj, name)
        return
    inner = obj.get("config")
    if cls in FILE_READING_LAYERS and isinstance(inner, dict) and isinstance(inner.get("vocabulary"), str):
        raise CompressionError(
            f"The {cls} layer{where} reads its vocabulary from a file path on the server; store the vocabulary "
            "in the model instead."
        )


def _allowed_module(module: Any, cls: str) -> bool:
    if not isinstance(module, str):
        return False
    if module in ("keras", "tf_keras", "builtins") or module.startswith(("keras.", "tf_keras.")):
        return True
    # Type specs name their TensorFlow module (e.g. tensorflow.python.framework.tensor_spec).
    return cls == "__typespec__" and module.startswith("tensorflow.")


def _check_tf_op(obj: dict, name: str | None) -> None:
    """TFOpLambda / SlicingOpLambda: the named TF function must be plain tensor maths."""
    from .. import _tf

    _tf.tf()
    from tensorflow.python.util.tf_export import get_symbol_from_name

    inner = obj.get("config")
    symbol = inner.get("function") if isinstance(inner, dict) else None
    if not isinstance(symbol, str):
        raise CompressionError(f"The TensorFlow-op layer {name!r} does not name its function.")
    fn = None if "raw_ops" in symbol.split(".") else get_symbol_from_name(symbol)
    module = getattr(fn, "__module__", "") or ""
    prefix = "tensorflow.python.ops."
    if fn is None or not module.startswith(prefix) or module[len(prefix):].split(".")[0] not in ALLOWED_OP_MODULES:
        raise CompressionError(
            f"The model calls tf.{symbol} (layer {name!r}), which is refused: only TensorFlow maths, array, "
            "neural-network and image operations are accepted."
        )


@functools.cache
def _builtin_classes() -> frozenset[str]:
    """Names of the public classes tf_keras can deserialize, Lambda excluded."""
    import inspect

    from .. import _tf

    k = _tf.keras()
    modules = [
        k.layers, k.layers.experimental, k.layers.experimental.preprocessing, k.initializers, k.regularizers,
        k.constraints, k.optimizers, k.optimizers.schedules, k.optimizers.legacy, k.optimizers.experimental,
        k.losses, k.metrics, k.mixed_precision, k.models,
    ]
    names = {n for m in modules for n in dir(m) if not n.startswith("_") and inspect.isclass(getattr(m, n))}
    return frozenset((names | MODEL_CLASSES) - {"Lambda"})


@functools.cache
def _builtin_functions() -> frozenset[str]:
    """Names of tf_keras' built-in activation, loss and metric functions."""
    import inspect

    from .. import _tf

    k = _tf.keras()
    return frozenset(
        n for m in (k.activations, k.losses, k.metrics) for n in dir(m)
        if not n.startswith("_") and inspect.isfunction(getattr(m, n))
    )


def _parse_json(raw: bytes | str, label: str, what: str) -> Any:
    try:
        return json.loads(raw)
    except (ValueError, RecursionError) as exc:  # JSONDecodeError and bad UTF-8 are ValueErrors
        raise CompressionError(f"The {what} in {label!r} is not valid JSON ({exc}).") from None


# ---------------------------------------------------------------- zip archives


def _open_zip(path: Path, label: str, max_bytes: int, what: str) -> zipfile.ZipFile:
    """Open a zip, refusing unsafe or oversized members (zipsafe's rules) before anything reads them."""
    return zipsafe.open_archive(
        path,
        subject=repr(label),
        not_a_zip=f"{label!r} is not a valid {what} (a zip archive); it may be truncated or not a model file.",
        max_total_bytes=max_bytes * EXPANSION_LIMIT,
        max_members=MAX_ZIP_MEMBERS,
    )


def _read_member(zf: zipfile.ZipFile, member: str, label: str) -> bytes:
    return zipsafe.read_member(zf, member, repr(label), max_bytes=MAX_CONFIG_BYTES)


# ---------------------------------------------------------------- the three formats


def _load_keras_archive(path: Path, label: str, max_bytes: int):
    with _open_zip(path, label, max_bytes, ".keras file") as zf:
        names = set(zf.namelist())
        if "config.json" not in names:
            raise CompressionError(f"{label!r} has no config.json, so it is not a Keras model archive.")
        config = _parse_json(_read_member(zf, "config.json", label), label, "config.json")
        if "metadata.json" in names:
            metadata = _parse_json(_read_member(zf, "metadata.json", label), label, "metadata.json")
            version = str(metadata.get("keras_version", "")) if isinstance(metadata, dict) else ""
            if version.startswith("3."):
                raise _saved_by_keras3(label, version)
    if isinstance(config, dict):
        config = {k: v for k, v in config.items() if k != "compile_config"}  # not read with compile=False
    check_model_config(config)
    return _keras_load(path, label)


def _load_h5(path: Path, label: str):
    import h5py

    try:
        f = h5py.File(path, "r")
    except OSError:
        raise CompressionError(f"{label!r} is not a valid HDF5 (.h5) model file; it may be truncated.") from None
    with f:
        try:
            raw = f.attrs.get("model_config")
            version = f.attrs.get("keras_version")
        except (OSError, RuntimeError, KeyError) as exc:
            raise CompressionError(f"{label!r} is damaged: its model configuration cannot be read ({exc}).") from None
    if isinstance(version, bytes):
        version = version.decode("utf-8", errors="replace")
    if isinstance(version, str) and version.startswith("3."):
        raise _saved_by_keras3(label, version)
    if raw is None:
        raise CompressionError(
            f"{label!r} has no model configuration (it may hold only weights from save_weights); save the whole "
            "model with model.save('model.h5')."
        )
    if isinstance(raw, bytes):
        raw = raw.decode("utf-8", errors="replace")
    if len(raw) > MAX_CONFIG_BYTES:
        raise CompressionError(f"The model configuration in {label!r} is too large.")
    check_model_config(_parse_json(raw, label, "model configuration"))
    return _keras_load(path, label)


def _saved_by_keras3(label: str, version: str) -> CompressionError:
    """The refusal of a file saved by Keras 3 (in either format): say so, and how to save a Keras 2 one."""
    return CompressionError(
        f"{label!r} was saved by Keras {version[:20]}; Compression Lab needs a tf_keras (Keras 2) model, "
        "so build and save it with `import tf_keras as keras` (as .keras or .h5)."
    )


def _load_zipped_savedmodel(path: Path, label: str, max_bytes: int):
    with _open_zip(path, label, max_bytes, "zipped SavedModel") as zf:
        pbs = [n for n in zf.namelist() if PurePosixPath(n).name == "saved_model.pb"]
        if not pbs:
            raise CompressionError(
                f"{label!r} holds no saved_model.pb; zip the folder written by model.save(folder, save_format='tf')."
            )
        if len(pbs) > 1:
            raise CompressionError(f"{label!r} holds {len(pbs)} SavedModels; upload one at a time.")
        root = PurePosixPath(pbs[0]).parent
        metadata_name = str(root / "keras_metadata.pb") if str(root) != "." else "keras_metadata.pb"
        if metadata_name not in zf.namelist():
            raise CompressionError(
                f"{label!r} is a SavedModel without keras_metadata.pb, so it was not saved from a tf_keras model; "
                "save it with model.save(folder, save_format='tf') in tf_keras."
            )
        _check_keras_metadata(_read_member(zf, metadata_name, label), label)
        with tempfile.TemporaryDirectory(prefix="compression-lab-upload-") as tmp:
            zipsafe.extract_all(zf, Path(tmp), repr(label))
            model_dir = Path(tmp) / root
            _check_graph_ops((model_dir / "saved_model.pb").read_bytes(), label)
            return _keras_load(model_dir, label)


def _check_keras_metadata(raw: bytes, label: str) -> None:
    """Check the config of every Keras object recorded in ``keras_metadata.pb``."""
    from .. import _tf

    _tf.keras()
    from tf_keras.protobuf import saved_metadata_pb2

    metadata = _parse_proto(saved_metadata_pb2.SavedMetadata(), raw, "keras_metadata.pb", label)
    if not metadata.nodes:
        raise CompressionError(f"keras_metadata.pb in {label!r} describes no Keras objects.")
    for node in metadata.nodes:
        entry = _parse_json(node.metadata, label, "keras_metadata.pb")
        if not isinstance(entry, dict):
            raise CompressionError(f"keras_metadata.pb in {label!r} is damaged.")
        entry.pop("training_config", None)  # only read when compiling
        if node.node_path == "root":
            check_model_config(entry)
        elif isinstance(entry.get("class_name"), str):
            _check_object(entry, owner=None)
            check_model_config({"class_name": "Model", "config": entry})  # walk what it holds


# Graph ops that touch files or call back into Python have no place in a Keras model.
_REFUSED_GRAPH_OPS = frozenset({
    "PyFunc", "PyFuncStateless", "EagerPyFunc", "WriteFile", "ReadFile", "MatchingFiles", "ImmutableConst",
    "DebugIdentityV2", "DebugIdentityV3",
})


def _parse_proto(message, raw: bytes, file_name: str, label: str):
    """``message`` parsed from ``raw`` (the upload's ``file_name``); a damaged file is a sentence."""
    from google.protobuf.message import DecodeError

    try:
        message.ParseFromString(raw)
    except DecodeError:
        raise CompressionError(f"{file_name} in {label!r} is damaged.") from None
    return message


def _check_graph_ops(raw: bytes, label: str) -> None:
    from .. import _tf

    _tf.tf()
    from tensorflow.core.protobuf import saved_model_pb2

    saved = _parse_proto(saved_model_pb2.SavedModel(), raw, "saved_model.pb", label)
    for graph in saved.meta_graphs:
        nodes = list(graph.graph_def.node)
        for fn in graph.graph_def.library.function:
            nodes.extend(fn.node_def)
        bad = sorted({n.op for n in nodes} & _REFUSED_GRAPH_OPS)
        if bad:
            raise CompressionError(
                f"The SavedModel in {label!r} contains the operation(s) {', '.join(bad)}, which read or write "
                "files or run Python; refused."
            )


def _keras_load(path: Path, label: str):
    """Deserialize with tf_keras once the config has passed the checks."""
    from .. import _tf

    keras = _tf.keras()
    try:
        model = keras.models.load_model(str(path), compile=False, safe_mode=True)
    except Exception as exc:  # noqa: BLE001 - any failure here is a file tf_keras cannot read
        reason = one_line(exc, with_type=False, limit=200)
        raise CompressionError(f"tf_keras could not load {label!r}: {reason}") from None
    if not isinstance(model, keras.Model):
        raise CompressionError(f"{label!r} does not hold a tf_keras model.")
    return model
