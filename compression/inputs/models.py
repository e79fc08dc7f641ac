"""The model zoo: tf_keras builders that adapt to a dataset's input shape and classes.

Every builder ends in a Dense layer named ``logits`` with no activation (the
write-ups' convention), so training uses ``from_logits=True`` and distillation
can soften the outputs with a temperature.

Usage::

    model = build_model("seed_cnn", input_shape=(8, 8, 1), num_classes=10)
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from .. import _tf
from ..errors import CompressionError, one_line


@dataclass(frozen=True)
class ZooEntry:
    name: str
    title: str
    source: str
    kinds: tuple[str, ...]  # data kinds it accepts: "image", "sequence"
    build: Callable


def _as_image(x, input_shape):
    """Give 1-D inputs an image-like (L, 1, C) view so 2-D convs still apply."""
    layers = _tf.keras().layers
    if len(input_shape) == 2:
        return layers.Reshape((input_shape[0], 1, input_shape[1]), name="as_image")(x)
    if len(input_shape) == 1:
        return layers.Reshape((input_shape[0], 1, 1), name="as_image")(x)
    return x


def _as_sequence(x, input_shape):
    """Read images row by row: (H, W, C) becomes a sequence of H steps of W*C features."""
    layers = _tf.keras().layers
    if len(input_shape) == 3:
        return layers.Reshape((input_shape[0], input_shape[1] * input_shape[2]), name="rows_as_sequence")(x)
    if len(input_shape) == 1:
        return layers.Reshape((input_shape[0], 1), name="as_sequence")(x)
    return x


def _seed_cnn(inputs, input_shape, num_classes):
    layers = _tf.keras().layers
    x = _as_image(inputs, input_shape)
    narrow = x.shape[2] < 3  # a 1-D signal viewed as (L, 1, C): convolve along L only
    x = layers.Conv2D(12, (3, 1) if narrow else 3, activation="relu", name="conv")(x)
    x = layers.MaxPooling2D((2, 1) if narrow else 2, name="pool")(x)
    x = layers.Flatten(name="flatten")(x)
    return layers.Dense(num_classes, name="logits")(x)


def _qat_cnn(inputs, input_shape, num_classes):
    layers = _tf.keras().layers
    x = _as_image(inputs, input_shape)
    x = layers.Conv2D(64, 3, padding="same", activation="relu", name="conv64")(x)
    x = layers.Dropout(0.25, name="dropout1")(x)
    x = layers.Conv2D(32, 3, padding="same", activation="relu", name="conv32")(x)
    x = layers.Conv2D(16, 3, padding="same", activation="relu", name="conv16")(x)
    x = layers.Flatten(name="flatten")(x)
    x = layers.Dropout(0.5, name="dropout2")(x)
    return layers.Dense(num_classes, name="logits")(x)


def _mlp(inputs, input_shape, num_classes):
    layers = _tf.keras().layers
    x = layers.Flatten(name="flatten")(inputs)
    x = layers.Dense(128, activation="relu", name="dense1")(x)
    x = layers.Dropout(0.2, name="dropout")(x)
    x = layers.Dense(64, activation="relu", name="dense2")(x)
    return layers.Dense(num_classes, name="logits")(x)


def _bn_relu(x, conv):
    """``conv`` then its BatchNorm and ReLU, named after it (``<conv>_bn``, ``<conv>_relu``)."""
    layers = _tf.keras().layers
    x = conv(x)
    x = layers.BatchNormalization(name=f"{conv.name}_bn")(x)
    return layers.ReLU(name=f"{conv.name}_relu")(x)


def _mobilenet_mini(inputs, input_shape, num_classes):
    layers = _tf.keras().layers
    x = _as_image(inputs, input_shape)
    big = (x.shape[1] or 0) >= 16
    x = _bn_relu(x, layers.Conv2D(16, 3, strides=2 if big else 1, padding="same", use_bias=False, name="stem"))
    for i, (filters, stride) in enumerate([(32, 1), (64, 2 if big else 1)]):
        x = _bn_relu(x, layers.DepthwiseConv2D(3, strides=stride, padding="same", use_bias=False, name=f"dw{i}"))
        x = _bn_relu(x, layers.Conv2D(filters, 1, use_bias=False, name=f"pw{i}"))
    x = layers.GlobalAveragePooling2D(name="gap")(x)
    return layers.Dense(num_classes, name="logits")(x)


def _conv1d(inputs, input_shape, num_classes):
    layers = _tf.keras().layers
    x = _as_sequence(inputs, input_shape)
    x = layers.Conv1D(32, 5, padding="same", activation="relu", name="conv1")(x)
    x = layers.MaxPooling1D(2, name="pool1")(x)
    x = layers.Conv1D(32, 3, padding="same", activation="relu", name="conv2")(x)
    x = layers.GlobalAveragePooling1D(name="gap")(x)
    x = layers.Dense(32, activation="relu", name="dense")(x)
    return layers.Dense(num_classes, name="logits")(x)


def _lstm(inputs, input_shape, num_classes):
    layers = _tf.keras().layers
    x = _as_sequence(inputs, input_shape)
    x = layers.LSTM(32, name="lstm")(x)
    return layers.Dense(num_classes, name="logits")(x)


ZOO: dict[str, ZooEntry] = {
    e.name: e
    for e in [
        ZooEntry("seed_cnn", "Seed CNN (Conv 12@3×3 → MaxPool → Dense)",
                 "Reference experiment E's base CNN (Reshape → Conv2D 12@3×3 ReLU → MaxPool 2 → Flatten → Dense).",
                 ("image", "sequence"), _seed_cnn),
        ZooEntry("qat_cnn", "QAT CNN (Conv 64/32/16 + Dropout)",
                 "Reference experiment C's CNN: Conv2D 64→32→16 (3×3, same, ReLU), Dropout 0.25/0.5, Dense.",
                 ("image", "sequence"), _qat_cnn),
        ZooEntry("mlp", "MLP (128-64)", "A plain multilayer perceptron: Flatten → Dense 128 → Dense 64 → Dense.",
                 ("image", "sequence"), _mlp),
        ZooEntry("mobilenet_mini", "Mini-MobileNet (depthwise-separable)",
                 "Two MobileNet-v1 style depthwise-separable blocks with BatchNorm (survey B's light architectures).",
                 ("image", "sequence"), _mobilenet_mini),
        ZooEntry("conv1d", "Conv1D sequence classifier",
                 "Conv1D 32@5 → MaxPool → Conv1D 32@3 → global average → Dense; images are read row by row.",
                 ("sequence", "image"), _conv1d),
        ZooEntry("lstm", "LSTM sequence classifier",
                 "One LSTM(32) over the sequence (images read row by row), then Dense; in the spirit of write-up A.",
                 ("sequence", "image"), _lstm),
    ]
}


def list_models() -> list[dict]:
    """The zoo's entries: name, title, source (where the architecture comes from), kinds (native data kind first)."""
    return [{"name": e.name, "title": e.title, "source": e.source, "kinds": list(e.kinds)} for e in ZOO.values()]


def build_model(name: str, input_shape, num_classes: int, seed: int = 0):
    """Build an untrained zoo model for a dataset.

    Args:
        name: zoo name (see :func:`list_models`).
        input_shape: one sample's shape, e.g. (8, 8, 1).
        num_classes: number of output classes.
        seed: seeds the weight initialisers.

    Returns:
        A compiled-free ``tf_keras.Model`` whose last layer is ``logits``.

    Raises:
        CompressionError: unknown name, or a shape the architecture cannot take.
    """
    if name not in ZOO:
        raise CompressionError(f"Unknown model {name!r}. Available: {', '.join(ZOO)}.")
    keras = _tf.keras()
    _tf.set_seed(seed)
    input_shape = tuple(int(d) for d in input_shape)
    inputs = keras.Input(shape=input_shape, name="input")
    try:
        outputs = ZOO[name].build(inputs, input_shape, int(num_classes))
    except ValueError as exc:
        raise CompressionError(
            f"Model {name!r} cannot take inputs of shape {input_shape}: {one_line(exc, with_type=False)}"
        ) from None
    return keras.Model(inputs, outputs, name=name)


def outputs_logits(model) -> bool:
    """True when the model's last layer has no softmax (its outputs are logits)."""
    last = model.layers[-1]
    while hasattr(last, "layer") and not hasattr(last, "layers"):  # tfmot wrappers: prune, cluster, quantize
        last = last.layer
    act = getattr(last, "activation", None)
    act = getattr(act, "activation", act)  # QAT wraps the activation in a QuantizeAwareActivation
    name = getattr(act, "__name__", "") or getattr(act, "name", "")
    return not (name == "softmax" or type(last).__name__ == "Softmax")


def clone(model):
    """A fresh, independent copy (tfmot wrappers share layers: never wrap the original)."""
    keras = _tf.keras()
    copy = keras.models.clone_model(model)
    copy.set_weights(model.get_weights())
    return copy


def check_compatible(input_shape: Sequence[int | None], outputs: int, dataset) -> None:
    """Refuse a model whose input shape or output count does not fit the dataset.

    The one check of the engine (the baseline) and the Data & model page.

    Args:
        input_shape: the model's input shape without the batch axis (None: any size).
        outputs: the model's number of outputs (``model.output_shape[-1]``).
        dataset: anything with ``name``, ``input_shape`` and ``num_classes`` (a
            :class:`~compression.inputs.dataset.Dataset`).

    Raises:
        CompressionError: "The model expects inputs of shape (8, 8, 1) but dataset 'mnist1d' gives (40, 1)."

    Usage::

        check_compatible(model.input_shape[1:], model.output_shape[-1], ds)
    """
    want = tuple(input_shape)
    got = tuple(int(d) for d in dataset.input_shape)
    if len(want) != len(got) or any(w is not None and w != g for w, g in zip(want, got, strict=False)):
        did = "; ".join(getattr(dataset, "notes", ()) or ())
        did = f" ({did})" if did else ""
        shown = "(" + ", ".join("any" if w is None else str(w) for w in want) + (",)" if len(want) == 1 else ")")
        fix = (f"; save the arrays as (N, {shown[1:-1].rstrip(',')}) or change the model's Input shape to match"
               if dataset.name == "npz" else "")
        raise CompressionError(
            f"The model expects inputs of shape {want} but dataset {dataset.name!r} gives {got}{did}{fix}.")
    if outputs != dataset.num_classes:
        raise CompressionError(
            f"The model has {outputs} outputs but dataset {dataset.name!r} has {dataset.num_classes} classes."
        )


def check_layer_names(model, named: Iterable[str] | None, what: str) -> None:
    """Refuse a technique's layer list naming layers the model does not have (None or empty: all layers).

    Raises:
        CompressionError: e.g. "pruning.layers names layer(s) the model does not have: conv9."
    """
    missing = sorted(set(named or ()) - {layer.name for layer in model.layers})
    if missing:
        raise CompressionError(f"{what} names layer(s) the model does not have: {', '.join(missing)}.")


def model_summary(model) -> dict:
    """Layers (name, type, output shape, parameters), total parameters and float32 size in bytes."""
    rows = []
    for layer in model.layers:
        try:
            shape = str(layer.output_shape)
        except AttributeError:
            shape = "?"
        rows.append({"name": layer.name, "type": type(layer).__name__, "output_shape": shape,
                     "params": int(layer.count_params())})
    params = int(model.count_params())
    return {"layers": rows, "params": params, "float_bytes": params * 4}
