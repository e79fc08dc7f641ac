"""Downloads of a run: its `.tflite` files (and C++ pairs) as a zip, a C++ header/source pair, results, a script.

Pure functions of bytes, dicts and run folders: no Streamlit, no TensorFlow.

Usage::

    pair = c_source(Path(run_dir, "int8.tflite").read_bytes(), "int8_tflite")   # pair.header, pair.source
    script = reproduce_script(results["recipe"], "pqat-int8")
"""

from __future__ import annotations

import io
import json
import keyword
import pprint
import re
import zipfile
from dataclasses import dataclass
from pathlib import Path

from .config import Recipe
from .errors import CompressionError

__all__ = [
    "C_KEYWORDS",
    "CSource",
    "c_identifier",
    "c_source",
    "recipe_json",
    "reproduce_script",
    "results_csv",
    "results_json",
    "tflite_zip",
]

C_KEYWORDS = frozenset(
    """auto break case char const continue default do double else enum extern float for goto if inline int long
    register restrict return short signed sizeof static struct switch typedef union unsigned void volatile while
    _Alignas _Alignof _Atomic _Bool _Complex _Generic _Imaginary _Noreturn _Static_assert _Thread_local
    alignas alignof bool class constexpr delete explicit false friend mutable namespace new nullptr operator private
    protected public template this throw true try typename using virtual""".split()
)


# ---------------------------------------------------------------- zip of .tflite files


def tflite_zip(run_dir: str | Path, results: dict | None = None, c_pairs: bool = True) -> bytes:
    """A zip of the run's `.tflite` files (the finished variants' when ``results`` is given).

    With ``c_pairs``, each model also comes as the C++ pair TFLite Micro builds compile
    (``c/<stem>_tflite.h`` + ``c/<stem>_tflite.cc``, see :func:`c_source`).

    Raises:
        CompressionError: the run has no `.tflite` file yet.

    Usage::

        st.download_button("All .tflite (zip)", tflite_zip(run["dir"], results), "run.zip")
    """
    folder = Path(run_dir)
    if results is not None:
        names = [v["tflite"] for v in results.get("variants", []) if v.get("status") == "ok" and v.get("tflite")]
        files = [folder / n for n in names if (folder / n).is_file() and "/" not in n and "\\" not in n]
    else:
        files = sorted(p for p in folder.glob("*.tflite") if p.is_file() and not p.name.startswith("."))
    if not files:
        raise CompressionError("This run has no .tflite file yet.")
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
        for path in files:
            data = path.read_bytes()
            entries = [(path.name, data)]
            if c_pairs:
                pair = c_source(data, path.name)
                entries += [(f"c/{pair.header_file}", pair.header.encode()), (f"c/{pair.source_file}",
                                                                              pair.source.encode())]
            for entry, content in entries:
                info = zipfile.ZipInfo(entry, date_time=(2020, 1, 1, 0, 0, 0))
                info.compress_type = zipfile.ZIP_DEFLATED
                info.external_attr = 0o644 << 16
                archive.writestr(info, content)
    return buffer.getvalue()


# ---------------------------------------------------------------- C source pair


def c_identifier(name: str) -> str:
    """A valid C (and C++) identifier made from a file or variant name.

    Letters, digits and underscores are kept, everything else becomes ``_``; a
    leading digit or an empty result gets a ``model_`` prefix; keywords get a
    ``_model`` suffix.

    Usage::

        c_identifier("pqat-int8.tflite")   # "pqat_int8_tflite"
    """
    ident = re.sub(r"[^A-Za-z0-9_]", "_", str(name))
    ident = re.sub(r"_+", "_", ident).strip("_")
    if not ident or ident[0].isdigit():
        ident = f"model_{ident}".rstrip("_")
    if ident in C_KEYWORDS or keyword.iskeyword(ident):
        ident = f"{ident}_model"
    return ident


@dataclass(frozen=True)
class CSource:
    """A model as the C++ pair TFLite Micro projects compile: ``<name>.h`` declares, ``<name>.cc`` defines.

    Attributes:
        name: the C identifier of the array (``<name>_len`` is its length).
        header: ``extern const unsigned char <name>[]; extern const unsigned int <name>_len;``.
        source: the array, ``alignas(16) const``, so it is linked into flash (read-only data),
            not copied into RAM, and defined once however many files include the header.
    """

    name: str
    header: str
    source: str

    @property
    def header_file(self) -> str:
        return f"{self.name}.h"

    @property
    def source_file(self) -> str:
        return f"{self.name}.cc"


def c_source(data: bytes, name: str, line_bytes: int = 12) -> CSource:
    """The bytes as a header + ``.cc`` pair, the shape of TensorFlow's ``convert_bytes_to_c_source``.

    The header only declares (``extern``), so any number of translation units may
    include it; the ``.cc`` includes the header (which gives the ``const`` array
    external linkage in C++) and defines the 16-byte-aligned array: TFLite Micro
    reads the model's tensors in place.

    Args:
        data: the `.tflite` bytes.
        name: any name; it is made a C identifier with :func:`c_identifier`.
        line_bytes: bytes per source line.

    Usage::

        pair = c_source(tflite_bytes, "int8.tflite")
        Path(pair.header_file).write_text(pair.header); Path(pair.source_file).write_text(pair.source)
    """
    ident = c_identifier(name)
    guard = f"{ident.upper()}_H_"
    lines = []
    for start in range(0, len(data), line_bytes):
        chunk = data[start : start + line_bytes]
        lines.append("    " + ", ".join(f"0x{b:02x}" for b in chunk) + ",")
    body = "\n".join(lines)
    generated = f"// {ident}: a {len(data)}-byte TFLite model for TensorFlow Lite Micro (made by Compression Lab).\n"
    header = (
        generated
        + f"// Compile {ident}.cc into the firmware; include this header wherever the model is used.\n"
        f"#ifndef {guard}\n"
        f"#define {guard}\n"
        "\n"
        f"extern const unsigned char {ident}[];\n"
        f"extern const unsigned int {ident}_len;\n"
        "\n"
        f"#endif  // {guard}\n"
    )
    source = (
        generated
        + f'#include "{ident}.h"\n'
        "\n"
        "// const: linked into flash (read-only data), not RAM. alignas(16): TFLite Micro reads tensors in place.\n"
        f"alignas(16) const unsigned char {ident}[] = {{\n{body}\n}};\n"
        f"const unsigned int {ident}_len = {len(data)};\n"
    )
    return CSource(ident, header, source)


# ---------------------------------------------------------------- results


def results_csv(results: dict) -> bytes:
    """The results table (one row per variant, the reference-experiment columns) as CSV."""
    from .recipes import results_table

    return results_table(results).to_csv(index=False).encode("utf-8")


def results_json(results: dict) -> bytes:
    """The whole results.json, pretty-printed."""
    return json.dumps(results, indent=2, default=str).encode("utf-8")


def recipe_json(recipe: Recipe | dict) -> bytes:
    """The recipe as JSON that ``Recipe.from_json`` (and the CLI) read back."""
    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_dict(recipe)
    return recipe.to_json().encode("utf-8")


# ---------------------------------------------------------------- reproduce script


def reproduce_script(recipe: Recipe | dict, variant: str, run_id: str = "") -> str:
    """A standalone Python script that rebuilds one variant with tfmot and ``tf.lite.TFLiteConverter``.

    The script loads the run's float baseline (``baseline.keras``, downloadable
    next to it), loads the same data split, applies the variant's techniques in
    the engine's order (distill → prune → cluster → QAT, each stage seeded from
    the recipe seed), converts, writes the `.tflite` and prints its accuracy
    measured with the LiteRT interpreter. It needs only TensorFlow, tf-keras,
    tfmot, ai-edge-litert and NumPy (plus scikit-learn for digits); a
    distillation variant also needs this project's ``compression.models`` for
    the student architecture.

    Args:
        recipe: the run's recipe.
        variant: the variant's name.
        run_id: shown in the script's docstring.

    Raises:
        CompressionError: the recipe has no such variant.
    """
    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_dict(recipe)
    spec = next((v for v in recipe.variants if v.name == variant), None)
    if spec is None:
        raise CompressionError(
            f"The recipe has no variant {variant!r}; it has {', '.join(v.name for v in recipe.variants)}."
        )
    from .recipes import file_stem

    values = {
        "TITLE": f"variant {spec.name!r} of {run_id or 'a Compression Lab run'}".replace('"', "'"),
        "TECHNIQUES": " + ".join(spec.techniques).replace('"', "'"),
        "STEM": file_stem(spec.name),
        "VARIANT": pprint.pformat(spec.to_dict(), sort_dicts=False, width=100),
        "DATASET": pprint.pformat(recipe.to_dict()["dataset"], sort_dicts=False, width=100),
        "SEED": str(recipe.seed),
        "BASELINE_LR": repr(recipe.baseline.learning_rate),
    }
    # One pass, so a value that happens to contain a placeholder is never substituted again.
    return re.sub(r"__([A-Z][A-Z_]*?)__", lambda m: values.get(m.group(1), m.group(0)), _TEMPLATE)


_TEMPLATE = r'''#!/usr/bin/env python3
"""Reproduce __TITLE__ (__TECHNIQUES__).

Generated by Compression Lab. It rebuilds the variant from the run's float
baseline with tensorflow-model-optimization (tfmot) and tf.lite.TFLiteConverter,
then measures it with the LiteRT interpreter.

Needs: tensorflow==2.21.*, tf-keras==2.21.*, tensorflow-model-optimization==0.8.1,
ai-edge-litert, numpy (and scikit-learn for the digits dataset).

Usage:
    python reproduce___STEM__.py --baseline baseline.keras --out __STEM__.tflite
"""

import os

# tfmot needs Keras 2 (tf_keras): this must be set before TensorFlow is imported.
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import argparse
import gzip
import math
import random
import struct
from pathlib import Path

import numpy as np

VARIANT = __VARIANT__
DATASET = __DATASET__
SEED = __SEED__
BASELINE_LEARNING_RATE = __BASELINE_LR__


# ----------------------------------------------------------------- data (the split the run used)


def _digits():
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return x_train, y_train, x_test, y_test


def _mnist1d():
    from mnist1d.data import get_dataset_args, make_dataset

    raw = make_dataset(get_dataset_args())
    return (raw["x"].astype(np.float32)[..., None], raw["y"].astype(np.int64),
            raw["x_test"].astype(np.float32)[..., None], raw["y_test"].astype(np.int64))


def _read_idx(path):
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "rb") as fh:
        data = fh.read()
    ndim = data[3]
    dims = struct.unpack(">" + "I" * ndim, data[4:4 + 4 * ndim])
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def _idx(name, folder):
    env = {"fashion_mnist": "COMPRESSION_LAB_FASHION_MNIST_DIR", "mnist": "COMPRESSION_LAB_MNIST_DIR"}[name]
    candidates = [folder, os.environ.get(env), "/usr/share/datasets/fashion-mnist" if name == "fashion_mnist" else None,
                  str(Path.home() / ".keras" / "datasets" / name)]
    stems = ("train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte")
    for c in filter(None, candidates):
        files = [next((p for p in (Path(c) / s, Path(c) / f"{s}.gz") if p.is_file()), None) for s in stems]
        if all(files):
            xs, ys, xt, yt = (_read_idx(f) for f in files)
            return xs, ys, xt, yt
    import tf_keras

    return tuple(a for pair in getattr(tf_keras.datasets, name).load_data() for a in pair)


def _npz(path):
    with np.load(path, allow_pickle=False) as f:
        a = {k: f[k] for k in ("x_train", "y_train", "x_test", "y_test")}
    for k in ("y_train", "y_test"):
        a[k] = a[k].reshape(len(a[k]), -1)[:, 0].astype(np.int64)
    x_train, x_test = a["x_train"], a["x_test"]
    image = x_train.ndim > 2
    scale = x_train.dtype == np.uint8 or (image and max(float(x_train.max()), float(x_test.max())) > 1.5)
    x_train, x_test = x_train.astype(np.float32), x_test.astype(np.float32)
    if scale:
        x_train, x_test = x_train / np.float32(255), x_test / np.float32(255)
    if x_train.ndim in (2, 3):
        x_train, x_test = x_train[..., None], x_test[..., None]
    return x_train, a["y_train"], x_test, a["y_test"]


def load_data():
    name, path = DATASET["name"], DATASET.get("path")
    if name == "digits":
        x_train, y_train, x_test, y_test = _digits()
    elif name == "mnist1d":
        x_train, y_train, x_test, y_test = _mnist1d()
    elif name == "npz":
        x_train, y_train, x_test, y_test = _npz(path)
    elif name in ("fashion_mnist", "mnist", "cifar10"):
        if name == "cifar10":
            import tf_keras

            (x_train, y_train), (x_test, y_test) = tf_keras.datasets.cifar10.load_data()
        else:
            x_train, y_train, x_test, y_test = _idx(name, path)
        x_train = x_train.astype(np.float32) / 255.0
        x_test = x_test.astype(np.float32) / 255.0
        if x_train.ndim == 3:
            x_train, x_test = x_train[..., None], x_test[..., None]
        y_train, y_test = y_train.reshape(-1).astype(np.int64), y_test.reshape(-1).astype(np.int64)
    else:
        raise SystemExit(f"unknown dataset {name!r}")
    # The engine's seeded subsample (sorted, so the order is kept).
    rng = np.random.default_rng(SEED)
    for limit_key, (x, y) in (("max_train", (x_train, y_train)), ("max_test", (x_test, y_test))):
        limit = DATASET.get(limit_key)
        if limit is not None and limit < len(y):
            keep = np.sort(rng.choice(len(y), size=limit, replace=False))
            if limit_key == "max_train":
                x_train, y_train = x[keep], y[keep]
            else:
                x_test, y_test = x[keep], y[keep]
    return (np.ascontiguousarray(x_train, np.float32), y_train, np.ascontiguousarray(x_test, np.float32), y_test)


# ----------------------------------------------------------------- training helpers


def set_seed(seed):
    import tensorflow as tf

    random.seed(seed)
    np.random.seed(seed)
    tf.keras.utils.set_random_seed(seed)
    tf.random.set_seed(seed)
    try:
        tf.config.experimental.enable_op_determinism()
    except Exception:
        pass


def outputs_logits(model):
    last = model.layers[-1]
    name = getattr(getattr(last, "activation", None), "__name__", "")
    return not (name == "softmax" or type(last).__name__ == "Softmax")


def compile_for_training(model, learning_rate):
    import tf_keras as keras

    loss = keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])


def fit(model, x, y, epochs, callbacks=()):
    model.fit(x, y, epochs=epochs, batch_size=VARIANT["batch_size"], callbacks=list(callbacks), verbose=2, shuffle=True)


def fresh_copy(model):
    """tfmot wrappers share layers with the model they wrap: always wrap a copy."""
    import tf_keras as keras

    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


# ----------------------------------------------------------------- techniques (wrap → fine-tune → strip)


def distill(teacher, x, y):
    import tensorflow as tf
    import tf_keras as keras

    d = VARIANT["distillation"]
    try:
        from compression.models import build_model  # the student's zoo architecture
    except ImportError:
        raise SystemExit("Distillation needs Compression Lab's compression.models for the student architecture.")
    student = build_model(d["student"], x.shape[1:], int(teacher.output_shape[-1]), seed=SEED)
    out = teacher.predict(x, batch_size=512, verbose=0).astype(np.float64)
    logits = out if outputs_logits(teacher) else np.log(np.clip(out, 1e-12, 1.0))
    z = logits / d["temperature"]
    z -= z.max(axis=1, keepdims=True)
    soft = np.exp(z) / np.exp(z).sum(axis=1, keepdims=True)
    packed = np.concatenate([y.reshape(-1, 1).astype(np.float32), soft.astype(np.float32)], axis=1)
    t, alpha = d["temperature"], d["alpha"]

    def loss(packed_true, student_logits):
        labels = tf.cast(packed_true[:, 0], tf.int32)
        teacher_p = packed_true[:, 1:]
        hard = tf.keras.losses.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)
        kl = tf.reduce_sum(teacher_p * (tf.math.log(tf.clip_by_value(teacher_p, 1e-12, 1.0))
                                        - tf.nn.log_softmax(student_logits / t)), axis=-1)
        return alpha * hard + (1.0 - alpha) * t**2 * kl

    student.compile(optimizer=keras.optimizers.Adam(VARIANT["learning_rate"]), loss=loss)
    student.fit(x, packed, epochs=d["epochs"], batch_size=VARIANT["batch_size"], verbose=2, shuffle=True)
    return student


def applied_schedule(p, total_steps):
    """The engine's schedule: short fine-tunes get a shorter frequency so the final sparsity is reached."""
    last = max(1, total_steps - 1)
    begin = min(p["begin_step"], last - 1) if last > 1 else 0
    end = p["end_step"] if p["end_step"] is not None else last
    end = max(begin + 1, min(end, last))
    span = end - begin
    frequency = p["frequency"] if span >= 4 * p["frequency"] else max(1, span // 8)
    end = begin + (span // frequency) * frequency
    return begin, end, frequency


def prune(model, x, y):
    import tf_keras as keras
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    p = VARIANT["pruning"]
    epochs = VARIANT["fine_tune_epochs"]
    total = max(1, math.ceil(len(x) / VARIANT["batch_size"])) * epochs
    begin, end, frequency = applied_schedule(p, total)
    sparsity = tfmot.sparsity.keras

    def schedule(final):
        if p["schedule"] == "constant":
            return sparsity.ConstantSparsity(final, begin_step=begin, end_step=end, frequency=frequency)
        return sparsity.PolynomialDecay(initial_sparsity=min(p["initial_sparsity"], final), final_sparsity=final,
                                        begin_step=begin, end_step=end, frequency=frequency)

    overrides = p.get("layer_sparsity") or {}

    def wrap(layer):
        chosen = p["layers"] is None or layer.name in p["layers"]
        if chosen and layer.weights and PruneRegistry.supports(layer):
            if p["structured"] and type(layer).__name__ not in ("Conv2D", "Dense"):
                return layer
            final = overrides.get(layer.name, p["final_sparsity"])
            if final <= 0 and not p["structured"]:
                return layer
            kwargs = {"pruning_schedule": schedule(final)}
            if p["structured"] == "2:4":
                kwargs["sparsity_m_by_n"] = (2, 4)
            return sparsity.prune_low_magnitude(layer, **kwargs)
        return layer

    wrapped = keras.models.clone_model(fresh_copy(model), clone_function=wrap)
    compile_for_training(wrapped, VARIANT["learning_rate"])
    fit(wrapped, x, y, epochs, callbacks=[sparsity.UpdatePruningStep()])
    return sparsity.strip_pruning(wrapped)


def cluster(model, x, y, preserve_sparsity):
    import tf_keras as keras
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry
    from tensorflow_model_optimization.python.core.clustering.keras.experimental import cluster as exp_cluster

    c = VARIANT["clustering"]
    ci = tfmot.clustering.keras.CentroidInitialization
    init = {"kmeans++": ci.KMEANS_PLUS_PLUS, "linear": ci.LINEAR, "density": ci.DENSITY_BASED,
            "random": ci.RANDOM}[c["init"]]

    def kernel_of(layer):
        if not layer.weights or not ClusteringRegistry.supports(layer):
            return None
        for w in layer.weights:
            if w.name.split("/")[-1].split(":")[0] in ("kernel", "depthwise_kernel"):
                return np.asarray(w.numpy())
        return None

    def wrap(layer):
        if c["layers"] is not None and layer.name not in c["layers"]:
            return layer
        kernel = kernel_of(layer)
        if kernel is None:
            return layer
        # k-means++ needs more (non-zero) weights than clusters.
        if (int(np.count_nonzero(kernel)) if preserve_sparsity else kernel.size) <= c["clusters"]:
            print(f"layer {layer.name!r} left unclustered: too few weights for {c['clusters']} clusters")
            return layer
        if preserve_sparsity:
            return exp_cluster.cluster_weights(layer, number_of_clusters=c["clusters"], cluster_centroids_init=init,
                                               preserve_sparsity=True)
        return tfmot.clustering.keras.cluster_weights(layer, number_of_clusters=c["clusters"],
                                                      cluster_centroids_init=init)

    wrapped = keras.models.clone_model(fresh_copy(model), clone_function=wrap)
    compile_for_training(wrapped, VARIANT["learning_rate"])
    fit(wrapped, x, y, VARIANT["fine_tune_epochs"])
    return tfmot.clustering.keras.strip_clustering(wrapped)


def quantize_aware(model, x, y):
    import tf_keras as keras
    import tensorflow_model_optimization as tfmot
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_registry as quantize_registry,
    )

    qk = tfmot.quantization.keras
    combine = tfmot.experimental.combine
    pruned, clustered = VARIANT["pruning"] is not None, VARIANT["clustering"] is not None
    if pruned and clustered:  # PCQAT
        scheme = combine.Default8BitClusterPreserveQuantizeScheme(preserve_sparsity=True)
    elif pruned:  # PQAT
        scheme = combine.Default8BitPrunePreserveQuantizeScheme()
    elif clustered:  # CQAT
        scheme = combine.Default8BitClusterPreserveQuantizeScheme()
    else:
        scheme = qk.default_8bit.Default8BitQuantizeScheme()
    registry = quantize_registry.Default8BitQuantizeRegistry()
    wanted = VARIANT["qat"]["layers"]
    chosen = []
    for layer in model.layers:
        kind = type(layer).__name__
        if kind == "InputLayer" or (wanted is not None and layer.name not in wanted):
            continue
        if registry.supports(layer):
            chosen.append(layer.name)
        elif kind == "BatchNormalization":  # folded into a preceding quantized Conv/Dense
            inbound = [n.inbound_layers for n in layer._inbound_nodes]
            prev = inbound[0] if inbound else None
            prev = prev[0] if isinstance(prev, list) and prev else prev
            if prev is not None and prev.name in chosen:
                chosen.append(layer.name)
        else:
            print(f"layer {layer.name!r} ({kind}) stays float: tfmot's 8-bit QAT has no config for it")

    def annotate(layer):
        return qk.quantize_annotate_layer(layer) if layer.name in chosen else layer

    annotated = keras.models.clone_model(fresh_copy(model), clone_function=annotate)
    with qk.quantize_scope():
        quantized = qk.quantize_apply(annotated, scheme)
    compile_for_training(quantized, VARIANT["learning_rate"])
    fit(quantized, x, y, VARIANT["fine_tune_epochs"])
    return quantized


# ----------------------------------------------------------------- conversion and measurement


def convert(model, x_train):
    import tensorflow as tf

    mode = VARIANT["quantization"]
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    optimizations = [] if mode == "float32" else [tf.lite.Optimize.DEFAULT]
    if VARIANT["sparse_encoding"]:
        optimizations.append(tf.lite.Optimize.EXPERIMENTAL_SPARSITY)
    converter.optimizations = optimizations
    if mode in ("int8", "int16x8"):
        rng = np.random.default_rng(SEED)
        index = rng.choice(len(x_train), size=min(VARIANT["representative_samples"], len(x_train)), replace=False)
        rows = x_train[index].astype(np.float32)

        def representative():
            for row in rows:
                yield [row[np.newaxis, ...]]

        converter.representative_dataset = representative
    if mode == "float16":
        converter.target_spec.supported_types = [tf.float16]
    elif mode == "int8":
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    elif mode == "int16x8":
        converter.target_spec.supported_ops = [
            tf.lite.OpsSet.EXPERIMENTAL_TFLITE_BUILTINS_ACTIVATIONS_INT16_WEIGHTS_INT8
        ]
    return converter.convert()


def accuracy(tflite_bytes, x_test, y_test, batch=256):
    from ai_edge_litert.interpreter import Interpreter, OpResolverType

    try:
        interpreter = Interpreter(model_content=tflite_bytes, num_threads=1)
        interpreter.allocate_tensors()
    except (RuntimeError, ValueError):  # e.g. sparse dynamic-range models XNNPACK refuses
        interpreter = Interpreter(model_content=tflite_bytes, num_threads=1,
                                  experimental_op_resolver_type=OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES)
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    if inp["shape_signature"][0] != -1:
        batch = int(inp["shape"][0])
    predictions = []
    for start in range(0, len(x_test), batch):
        x = x_test[start:start + batch]
        n = len(x)
        if n < batch and inp["shape_signature"][0] != -1:
            x = np.concatenate([x, np.zeros((batch - n, *x.shape[1:]), x.dtype)])
        scale, zero = inp["quantization"]
        if np.issubdtype(inp["dtype"], np.integer) and scale:
            info = np.iinfo(inp["dtype"])
            x = np.clip(np.round(x / scale + zero), info.min, info.max)
        interpreter.resize_tensor_input(inp["index"], [len(x), *x.shape[1:]])
        interpreter.allocate_tensors()
        interpreter.set_tensor(inp["index"], x.astype(inp["dtype"]))
        interpreter.invoke()
        predictions.append(np.argmax(interpreter.get_tensor(out["index"]), axis=-1)[:n])
    return float(np.mean(np.concatenate(predictions) == y_test)), np.dtype(inp["dtype"]).name


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--baseline", default="baseline.keras", help="the run's float baseline (baseline.keras)")
    parser.add_argument("--out", default="__STEM__.tflite", help="where to write the .tflite")
    args = parser.parse_args()

    import tf_keras as keras

    x_train, y_train, x_test, y_test = load_data()
    model = keras.models.load_model(args.baseline, compile=False, safe_mode=True)
    compile_for_training(model, BASELINE_LEARNING_RATE)
    # Each stage starts from the recipe seed, as in the engine.
    if VARIANT["distillation"]:
        set_seed(SEED)
        model = distill(model, x_train, y_train)
    if VARIANT["pruning"]:
        set_seed(SEED)
        model = prune(model, x_train, y_train)
    if VARIANT["clustering"]:
        set_seed(SEED)
        model = cluster(model, x_train, y_train, preserve_sparsity=VARIANT["pruning"] is not None)
    if VARIANT["qat"] is not None:
        set_seed(SEED)
        model = quantize_aware(model, x_train, y_train)
    data = convert(model, x_train)
    Path(args.out).write_bytes(data)
    acc, dtype = accuracy(data, x_test, y_test)
    print(f"wrote {args.out}: {len(data)} bytes ({len(gzip.compress(data, 9))} gzipped), "
          f"{VARIANT['quantization']}, input {dtype}, test accuracy {acc:.4f}")


if __name__ == "__main__":
    main()
'''
