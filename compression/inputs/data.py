"""Datasets: the registry of built-in sets and a validated loader for users' `.npz` files.

Every loader returns a :class:`Dataset` with float32 inputs carrying a channel
axis (images scaled to [0, 1]) and int64 labels, so models, training and
conversion never care where the data came from. Nothing here downloads unless
a set is missing locally and the network is reachable; when it is not, the
error says where to put the files.

Usage::

    ds = load_dataset("digits")
    ds = load_dataset("fashion_mnist", max_train=5000)
    ds = load_npz("my_data.npz")
"""

from __future__ import annotations

import contextlib
import functools
import gzip
import math
import os
import random
import struct
import sys
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..errors import CompressionError, one_line
from ..validation import whole_number
from . import zipsafe

DEFAULT_NPZ_MAX_BYTES = 200 * 2**20
# A compressed .npz can expand far beyond its file size; bound what np.load may inflate.
NPZ_EXPANSION_LIMIT = 8
MAX_CLASSES = 10_000
# Largest single IDX payload we agree to read (Fashion-MNIST train images are 47 MB).
MAX_IDX_BYTES = 2**30

FASHION_MNIST_CLASSES = (
    "T-shirt/top",
    "Trouser",
    "Pullover",
    "Dress",
    "Coat",
    "Sandal",
    "Shirt",
    "Sneaker",
    "Bag",
    "Ankle boot",
)
CIFAR10_CLASSES = (
    "airplane",
    "automobile",
    "bird",
    "cat",
    "deer",
    "dog",
    "frog",
    "horse",
    "ship",
    "truck",
)
DIGIT_CLASSES = tuple(str(i) for i in range(10))

FASHION_MNIST_ENV = "COMPRESSION_LAB_FASHION_MNIST_DIR"
MNIST_ENV = "COMPRESSION_LAB_MNIST_DIR"
DEBIAN_FASHION_MNIST_DIR = "/usr/share/datasets/fashion-mnist"
DEBIAN_FASHION_MNIST_PACKAGE = "dataset-fashion-mnist"

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}
CIFAR10_BATCHES = ("data_batch_1", "data_batch_2", "data_batch_3", "data_batch_4", "data_batch_5", "test_batch")

# IDX type codes (third byte of the magic number) and their big-endian dtypes.
_IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}
_IDX_CODES = {np.dtype(v).newbyteorder("=").str: k for k, v in _IDX_DTYPES.items()}


@dataclass(frozen=True, eq=False)
class Dataset:
    """A classification dataset ready for training and evaluation.

    Attributes:
        name: registry name, or "npz" for a user's file.
        x_train: float32 inputs, shape ``(N, *input_shape)``.
        y_train: int64 class indices, shape ``(N,)``.
        x_test: float32 inputs of the held-out split.
        y_test: int64 class indices of the held-out split.
        class_names: one human name per class, index = label.
        input_shape: shape of one sample, channel axis included.
        description: one line for the UI.
        kind: "image", "sequence" or "tokens" (integer ids, kept as int32).
        notes: what reading the data did to it (axes added, scaling), for the UI and CLI.
    """

    name: str
    x_train: np.ndarray
    y_train: np.ndarray
    x_test: np.ndarray
    y_test: np.ndarray
    class_names: tuple[str, ...]
    input_shape: tuple[int, ...]
    description: str
    kind: str
    notes: tuple[str, ...] = ()

    @property
    def num_classes(self) -> int:
        """Number of classes (the model's output width)."""
        return len(self.class_names)

    def __repr__(self) -> str:
        return (
            f"Dataset(name={self.name!r}, kind={self.kind!r}, input_shape={self.input_shape}, "
            f"num_classes={self.num_classes}, n_train={len(self.y_train)}, n_test={len(self.y_test)})"
        )


# ---------------------------------------------------------------- registry


@dataclass(frozen=True)
class _Entry:
    description: str
    input_shape: tuple[int, ...]


_REGISTRY: dict[str, _Entry] = {
    "digits": _Entry("8×8 handwritten digits from scikit-learn (1,797 images, 10 classes)", (8, 8, 1)),
    "mnist1d": _Entry(
        "MNIST-1D: 40-step 1-D signals of 10 digit templates, generated offline (5,000 samples)", (40, 1)
    ),
    "fashion_mnist": _Entry(
        "Fashion-MNIST: 28×28 greyscale clothing images (60,000 + 10,000, 10 classes)", (28, 28, 1)
    ),
    "mnist": _Entry("MNIST: 28×28 greyscale handwritten digits (60,000 + 10,000, 10 classes)", (28, 28, 1)),
    "cifar10": _Entry("CIFAR-10: 32×32 colour images (50,000 + 10,000, 10 classes)", (32, 32, 3)),
}


def list_datasets() -> list[dict[str, Any]]:
    """Describe the built-in datasets and whether each can be loaded right now.

    Returns:
        One dict per dataset with ``name``, ``description``, ``offline`` (True
        when it loads without network access), ``input_shape`` (list) and
        ``source`` (where it comes from, or how to get it).

    Usage::

        [d["name"] for d in list_datasets() if d["offline"]]
    """
    out = []
    for name, entry in _REGISTRY.items():
        try:
            offline, source = _availability(name)
        except CompressionError as exc:  # e.g. a misconfigured $COMPRESSION_LAB_MNIST_DIR
            offline, source = False, str(exc)
        out.append(
            {
                "name": name,
                "description": entry.description,
                "offline": offline,
                "input_shape": list(entry.input_shape),
                "source": source,
            }
        )
    return out


def _availability(name: str) -> tuple[bool, str]:
    if name == "digits":
        return True, "bundled with scikit-learn"
    if name == "mnist1d":
        return True, "generated by the mnist1d package"
    if name in ("fashion_mnist", "mnist"):
        found = _find_idx_dir(name, None)
        if found is not None:
            return True, str(found)
        if name == "mnist" and _keras_mnist_npz() is not None:
            return True, str(_keras_mnist_npz())
        return False, _missing_hint(name)
    if name == "cifar10":
        cached = _keras_cifar10_dir()
        if cached is not None:
            return True, str(cached)
        return False, _missing_hint(name)
    raise ValueError(f"no availability rule for {name}")  # a registry entry without a rule is a bug


# ---------------------------------------------------------------- entry point


def load_dataset(
    name: str,
    path: str | None = None,
    max_train: int | None = None,
    max_test: int | None = None,
    seed: int = 0,
    layout: str | None = None,
) -> Dataset:
    """Load a dataset by registry name, or a user's file with ``name="npz"``.

    Args:
        name: "digits", "mnist1d", "fashion_mnist", "mnist", "cifar10" or "npz".
        path: the `.npz` file for "npz"; for "fashion_mnist"/"mnist" a folder of
            IDX files (``train-images-idx3-ubyte.gz`` …) used instead of the
            usual search.
        max_train: keep at most this many training samples (seeded subsample).
        max_test: keep at most this many test samples (seeded subsample).
        seed: seed of the subsampling.
        layout: for "npz": "image", "sequence" or "tokens" instead of the inferred layout.

    Returns:
        The :class:`Dataset`.

    Raises:
        CompressionError: unknown name, missing or corrupt files, invalid `.npz`.

    Usage::

        ds = load_dataset("digits", max_train=500)
    """
    if name == "npz":
        if not path:
            raise CompressionError("The 'npz' dataset needs a path to a .npz file.")
        dataset = load_npz(path, layout=layout)
    elif name == "digits":
        dataset = _load_digits()
    elif name == "mnist1d":
        dataset = _load_mnist1d()
    elif name in ("fashion_mnist", "mnist"):
        dataset = _load_idx_dataset(name, path)
    elif name == "cifar10":
        dataset = _load_cifar10()
    else:
        names = ", ".join([*_REGISTRY, "npz"])
        raise CompressionError(f"Unknown dataset {name!r}; choose one of {names}.")
    return _subsample(dataset, max_train, max_test, seed)


def _subsample(ds: Dataset, max_train: int | None, max_test: int | None, seed: int) -> Dataset:
    """Seeded random subsets (order kept) when a split is larger than asked."""
    rng = np.random.default_rng(seed)
    x_train, y_train = _take(ds.x_train, ds.y_train, max_train, rng, "max_train")
    x_test, y_test = _take(ds.x_test, ds.y_test, max_test, rng, "max_test")
    if x_train is ds.x_train and x_test is ds.x_test:
        return ds
    return _make(ds.name, x_train, y_train, x_test, y_test, ds.class_names, ds.description, ds.kind, ds.notes)


def _take(x, y, limit, rng, what):
    if limit is None:
        return x, y
    limit = whole_number(limit, what)
    if limit >= len(y):
        return x, y
    keep = np.sort(rng.choice(len(y), size=limit, replace=False))
    return x[keep], y[keep]


def _make(name, x_train, y_train, x_test, y_test, class_names, description, kind, notes=()) -> Dataset:
    x_dtype = np.int32 if kind == "tokens" else np.float32
    return Dataset(
        name=name,
        x_train=np.ascontiguousarray(x_train, dtype=x_dtype),
        y_train=np.ascontiguousarray(y_train, dtype=np.int64),
        x_test=np.ascontiguousarray(x_test, dtype=x_dtype),
        y_test=np.ascontiguousarray(y_test, dtype=np.int64),
        class_names=tuple(class_names),
        input_shape=tuple(int(d) for d in x_train.shape[1:]),
        description=description,
        kind=kind,
        notes=tuple(notes),
    )


LAYOUTS = ("image", "sequence", "tokens")


def infer_layout(x: np.ndarray) -> str:
    """What a ``(N, ...)`` input array most likely holds: "image", "sequence" or "tokens".

    Integer (not 8-bit) ``(N, L)`` arrays are token ids; other ``(N, L)`` arrays and float
    ``(N, T, C)`` arrays with a few channels over many steps (``C <= 16`` and ``T >= 4 C``:
    (40, 1), (40, 3), (128, 9)) are sequences; 8-bit arrays, ``(N, H, W)`` of similar sides and
    ``(N, H, W, C)`` are images.

    Usage::

        infer_layout(np.zeros((10, 40, 3), np.float32))  # 'sequence'
    """
    x = np.asarray(x)
    integer = x.dtype.kind in "iub" and x.dtype != np.uint8
    if x.ndim == 2:
        return "tokens" if integer else "sequence"
    if x.ndim == 3 and x.dtype != np.uint8 and x.shape[2] <= 16 and x.shape[1] >= 4 * x.shape[2]:
        return "sequence"
    return "image"


def arrange(x_train: np.ndarray, x_test: np.ndarray, layout: str | None = None):
    """Turn raw input arrays into model inputs for a layout (inferred when None), saying what was done.

    Images get a channel axis when they have none and are divided by 255 only when they are 8-bit
    data (uint8, or whole numbers in 0…255 above 1.5); sequences ``(N, L)`` get a feature axis of
    size 1 and keep their values; token ids stay integers (int32), unscaled.

    Returns:
        (x_train, x_test, layout, notes): float32 (int32 for tokens) arrays and one sentence per change.

    Raises:
        CompressionError: an unknown layout, or token ids that are not whole numbers.
    """
    layout = layout or infer_layout(x_train)
    if layout not in LAYOUTS:
        raise CompressionError(f"layout must be one of {', '.join(LAYOUTS)}. Received: {layout!r}")
    raw = tuple(x_train.shape[1:])
    notes: list[str] = []
    if layout == "tokens":
        for x in (x_train, x_test):
            if x.dtype.kind == "f" and not np.array_equal(x, np.round(x)):
                raise CompressionError("Token ids must be whole numbers; these inputs hold fractions, so they are "
                                       "not token ids (read them as a sequence instead).")
        notes.append(f"read {raw} as integer token ids (int32, not scaled)")
        return x_train.astype(np.int32), x_test.astype(np.int32), layout, notes
    eight_bit = x_train.dtype == np.uint8 or (
        layout == "image" and x_train.dtype.kind in "iuf" and float(min(x_train.min(), x_test.min())) >= 0
        and 1.5 < float(max(x_train.max(), x_test.max())) <= 255
        and np.array_equal(x_train[:1000], np.round(x_train[:1000])))
    x_train, x_test = x_train.astype(np.float32), x_test.astype(np.float32)
    if layout == "image" and eight_bit:
        x_train /= np.float32(255)
        x_test /= np.float32(255)
        notes.append("divided by 255 (8-bit image data)")
    if x_train.ndim == 2 or (layout == "image" and x_train.ndim == 3):
        x_train, x_test = x_train[..., None], x_test[..., None]
        what = "a channel axis" if layout == "image" else "a feature axis"
        notes.append(f"added {what} of size 1: {raw} became {tuple(x_train.shape[1:])}")
    return x_train, x_test, layout, [f"read as {layout}s", *notes]


def fit_to_model(ds: Dataset, input_shape, input_dtype: str = "float32") -> Dataset:
    """The dataset laid out as a model's input wants it: a size-1 axis added or dropped, ids cast to its dtype.

    The model decides: a model that takes ``(40,)`` gets a ``(40, 1)`` sequence without its feature
    axis; a model that takes ``(8, 8, 1)`` gets ``(8, 8)`` images with a channel; integer token ids
    stay integers for an integer input. What was changed is appended to ``notes``. A dataset that
    cannot be made to fit is returned unchanged (the compatibility check then says why).

    Usage::

        ds = fit_to_model(ds, model.input_shape[1:], model.input.dtype.name)
    """
    want = tuple(None if d is None else int(d) for d in input_shape)
    got = tuple(ds.input_shape)
    notes = list(ds.notes)
    x_train, x_test = ds.x_train, ds.x_test

    def same(a, b):
        return len(a) == len(b) and all(w is None or w == g for w, g in zip(a, b, strict=True))

    if not same(want, got):
        if len(want) == len(got) + 1 and want[-1] in (1, None) and same(want[:-1], got):
            x_train, x_test = x_train[..., None], x_test[..., None]
            notes.append(f"added a size-1 last axis because the model takes {_shape(want)}")
        elif len(want) == len(got) - 1 and got[-1] == 1 and same(want, got[:-1]):
            x_train, x_test = x_train[..., 0], x_test[..., 0]
            notes.append(f"dropped the size-1 last axis because the model takes {_shape(want)}")
        else:
            return ds
    integer_input = np.dtype(input_dtype).kind in "iu"
    kind = ds.kind
    if integer_input and x_train.dtype.kind == "f":
        if not (np.array_equal(x_train, np.round(x_train)) and np.array_equal(x_test, np.round(x_test))):
            raise CompressionError(
                f"The model takes integer inputs ({input_dtype}, e.g. token ids) but the dataset holds fractional "
                "values; give it the integer ids it was trained on.")
        x_train, x_test, kind = x_train.astype(np.int32), x_test.astype(np.int32), "tokens"
        notes.append(f"cast to int32 because the model's input is {input_dtype}")
    elif not integer_input and kind == "tokens":
        x_train, x_test = x_train.astype(np.float32), x_test.astype(np.float32)
        kind = "sequence"
        notes.append("token ids fed as float32 because the model's input is float32: int8 and int16x8 will "
                     "quantize the ids at the input; give the model an integer Input "
                     "(keras.Input(shape, dtype='int32')) to keep them exact in every mode")
    if len(notes) == len(ds.notes):
        return ds
    return _make(ds.name, x_train, ds.y_train, x_test, ds.y_test, ds.class_names, ds.description, kind, notes)


def _shape(shape) -> str:
    return "(" + ", ".join("any" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")


# ---------------------------------------------------------------- digits and mnist1d (offline)


def _load_digits() -> Dataset:
    """sklearn's 8×8 digits, /16, fixed stratified 80/20 split.

    The split does not follow the recipe seed: a shipped pretrained model was
    trained on this train split, and its test score must stay honest.
    """
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    bunch = load_digits()
    x = (bunch.images.astype(np.float32) / 16.0)[..., None]
    y = bunch.target.astype(np.int64)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.2, stratify=y, random_state=0)
    return _make("digits", x_train, y_train, x_test, y_test, DIGIT_CLASSES, _REGISTRY["digits"].description, "image")


@functools.lru_cache(maxsize=1)
def _mnist1d_arrays() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Generate MNIST-1D once per process (takes seconds); arrays are read-only."""
    from mnist1d.data import get_dataset_args, make_dataset

    # make_dataset reseeds the global NumPy and `random` generators: restore them.
    np_state, py_state = np.random.get_state(), random.getstate()
    try:
        raw = make_dataset(get_dataset_args())
    finally:
        np.random.set_state(np_state)
        random.setstate(py_state)
    arrays = []
    for key in ("x", "y", "x_test", "y_test"):
        a = np.asarray(raw[key])
        a = a.astype(np.float32)[..., None] if key.startswith("x") else a.astype(np.int64)
        a.setflags(write=False)
        arrays.append(a)
    return tuple(arrays)


def _load_mnist1d() -> Dataset:
    """MNIST-1D from the generator's default arguments (already standardised: mean 0, std 1)."""
    x_train, y_train, x_test, y_test = _mnist1d_arrays()
    return _make(
        "mnist1d",
        x_train.copy(),
        y_train.copy(),
        x_test.copy(),
        y_test.copy(),
        DIGIT_CLASSES,
        _REGISTRY["mnist1d"].description,
        "sequence",
    )


# ---------------------------------------------------------------- IDX files (Fashion-MNIST, MNIST)


def write_idx(path: str | os.PathLike, array: np.ndarray) -> None:
    """Write an array as an IDX file (gzip-compressed when the name ends in ``.gz``).

    Args:
        path: destination file.
        array: uint8, int8, int16, int32, float32 or float64 array of any rank.

    Raises:
        ValueError: the dtype has no IDX type code.

    Usage::

        write_idx("train-labels-idx1-ubyte.gz", labels.astype(np.uint8))
    """
    array = np.asarray(array)
    code = _IDX_CODES.get(array.dtype.newbyteorder("=").str)
    if code is None:
        raise ValueError(f"IDX cannot store dtype {array.dtype}")
    header = bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
    payload = header + array.astype(_IDX_DTYPES[code]).tobytes()
    opener = gzip.open if str(path).endswith(".gz") else open
    with opener(path, "wb") as f:
        f.write(payload)


def read_idx(path: str | os.PathLike, max_bytes: int = MAX_IDX_BYTES) -> np.ndarray:
    """Read an IDX file (optionally gzip-compressed), checking its magic number and length.

    Args:
        path: the `.gz` or plain IDX file.
        max_bytes: refuse payloads larger than this.

    Returns:
        The array in native byte order.

    Raises:
        CompressionError: not an IDX file, corrupt gzip, truncated or oversized.

    Usage::

        labels = read_idx("/usr/share/datasets/fashion-mnist/t10k-labels-idx1-ubyte.gz")
    """
    name = Path(path).name
    opener = gzip.open if str(path).endswith(".gz") else open
    try:
        with opener(path, "rb") as f:
            magic = f.read(4)
            if len(magic) < 4 or magic[:2] != b"\0\0" or magic[2] not in _IDX_DTYPES or not 1 <= magic[3] <= 8:
                raise CompressionError(
                    f"{name} is not an IDX file: its magic number is {magic.hex() or 'missing'} "
                    "(expected 00000801, 00000803, … as in train-images-idx3-ubyte.gz)."
                )
            ndim = magic[3]
            dims_raw = f.read(4 * ndim)
            if len(dims_raw) < 4 * ndim:
                raise CompressionError(f"{name} is truncated: its header ends early.")
            dims = struct.unpack(f">{ndim}I", dims_raw)
            dtype = np.dtype(_IDX_DTYPES[magic[2]])
            expected = math.prod(dims) * dtype.itemsize
            if expected > max_bytes:
                raise CompressionError(
                    f"{name} declares {expected / 2**20:.0f} MB of data, more than the "
                    f"{max_bytes / 2**20:.0f} MB limit."
                )
            data = f.read(expected + 1)
    except (OSError, EOFError, zlib.error) as exc:
        raise CompressionError(f"{name} could not be read as a gzip-compressed IDX file ({exc}).") from None
    if len(data) < expected:
        raise CompressionError(f"{name} is truncated: {len(data)} of {expected} data bytes are present.")
    if len(data) > expected:
        raise CompressionError(f"{name} is corrupt: it holds more data than its header declares.")
    return np.frombuffer(data, dtype=dtype).reshape(dims).astype(dtype.newbyteorder("="))


def _idx_file(folder: Path, stem: str) -> Path | None:
    for candidate in (folder / f"{stem}.gz", folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _idx_files(folder: Path) -> dict[str, Path] | None:
    files = {key: _idx_file(folder, stem) for key, stem in IDX_FILES.items()}
    return None if any(v is None for v in files.values()) else files


def _keras_dataset_dirs() -> list[Path]:
    """Where Keras caches downloads: $KERAS_HOME or ~/.keras, and /tmp/.keras when home is read-only."""
    homes = [Path(os.environ["KERAS_HOME"])] if os.environ.get("KERAS_HOME") else []
    homes += [Path.home() / ".keras", Path("/tmp/.keras")]
    return [h / "datasets" for h in homes]


def _find_idx_dir(name: str, path: str | None) -> Path | None:
    """The first folder holding all four IDX files, in the documented search order.

    An explicit ``path`` or environment variable is the only place looked at;
    it raises when the files are not there rather than silently using others.
    """
    env = FASHION_MNIST_ENV if name == "fashion_mnist" else MNIST_ENV
    explicit = [(path, "The folder")] if path else []
    if not explicit and os.environ.get(env):
        explicit = [(os.environ[env], f"The folder in ${env}")]
    for folder, what in explicit:
        folder = Path(folder).expanduser()
        if not folder.is_dir():
            raise CompressionError(f"{what} {str(folder)!r} does not exist; it should hold the {name} IDX files.")
        if _idx_files(folder) is None:
            missing = [f"{s}.gz" for s in IDX_FILES.values() if _idx_file(folder, s) is None]
            raise CompressionError(f"{what} {str(folder)!r} lacks the {name} file(s) {', '.join(missing)}.")
        return folder
    candidates = [Path(DEBIAN_FASHION_MNIST_DIR)] if name == "fashion_mnist" else []
    if name == "fashion_mnist":
        candidates += [d / "fashion-mnist" for d in _keras_dataset_dirs()]
    for folder in candidates:
        if _idx_files(folder) is not None:
            return folder
    return None


def _keras_mnist_npz() -> Path | None:
    for d in _keras_dataset_dirs():
        if (d / "mnist.npz").is_file():
            return d / "mnist.npz"
    return None


def _keras_cifar10_dir() -> Path | None:
    for d in _keras_dataset_dirs():
        folder = d / "cifar-10-batches-py"
        if all((folder / b).is_file() for b in CIFAR10_BATCHES):
            return folder
    return None


def _missing_hint(name: str) -> str:
    keras_dir = _keras_dataset_dirs()[0]
    files = ", ".join(f"{s}.gz" for s in IDX_FILES.values())
    if name == "fashion_mnist":
        return (
            f"install the Debian package {DEBIAN_FASHION_MNIST_PACKAGE} (apt-get install -y "
            f"{DEBIAN_FASHION_MNIST_PACKAGE}), or put {files} in a folder named by ${FASHION_MNIST_ENV} "
            f"or in {keras_dir / 'fashion-mnist'}"
        )
    if name == "mnist":
        return f"put {files} in a folder named by ${MNIST_ENV}, or mnist.npz in {keras_dir}"
    return f"download cifar-10-python.tar.gz and extract its cifar-10-batches-py folder into {keras_dir}"


def _labels_and_images(files: dict[str, Path], name: str) -> tuple[np.ndarray, ...]:
    out = []
    for split in ("train", "test"):
        images, labels = read_idx(files[f"{split}_images"]), read_idx(files[f"{split}_labels"])
        if images.ndim != 3 or images.dtype != np.uint8:
            raise CompressionError(
                f"{files[f'{split}_images'].name} must hold uint8 images of shape (N, H, W); "
                f"it holds {images.dtype} of shape {images.shape}."
            )
        if labels.ndim != 1:
            raise CompressionError(f"{files[f'{split}_labels'].name} must hold one label per image.")
        if len(labels) != len(images):
            raise CompressionError(f"{name} {split} split has {len(images)} images but {len(labels)} labels.")
        if labels.size and labels.max() >= 10:
            raise CompressionError(f"{files[f'{split}_labels'].name} holds label {labels.max()}; expected 0–9.")
        out += [images, labels]
    if out[0].shape[1:] != out[2].shape[1:]:
        raise CompressionError(f"{name} test images are {out[2].shape[1:]} but train images are {out[0].shape[1:]}.")
    return tuple(out)


def _load_idx_dataset(name: str, path: str | None) -> Dataset:
    folder = _find_idx_dir(name, path)
    if folder is not None:
        x_train, y_train, x_test, y_test = _labels_and_images(_idx_files(folder), name)
        source = str(folder)
    elif name == "mnist" and _keras_mnist_npz() is not None:
        x_train, y_train, x_test, y_test = _read_keras_mnist_npz(_keras_mnist_npz())
        source = str(_keras_mnist_npz())
    else:
        (x_train, y_train), (x_test, y_test) = _download_with_keras(name)
        source = "downloaded by Keras"
    classes = FASHION_MNIST_CLASSES if name == "fashion_mnist" else DIGIT_CLASSES
    description = f"{_REGISTRY[name].description}; from {source}"
    return _make(
        name,
        x_train[..., None] / np.float32(255),
        y_train,
        x_test[..., None] / np.float32(255),
        y_test,
        classes,
        description,
        "image",
    )


def _read_keras_mnist_npz(path: Path) -> tuple[np.ndarray, ...]:
    try:
        with np.load(path, allow_pickle=False) as f:
            return tuple(np.asarray(f[k]) for k in ("x_train", "y_train", "x_test", "y_test"))
    except (OSError, ValueError, KeyError, zipfile.BadZipFile) as exc:
        raise CompressionError(f"The Keras cache file {path} is corrupt ({exc}); delete it and retry.") from None


# ---------------------------------------------------------------- CIFAR-10 and downloads


def _load_cifar10() -> Dataset:
    (x_train, y_train), (x_test, y_test) = _download_with_keras("cifar10")
    source = str(_keras_cifar10_dir() or "downloaded by Keras")
    return _make(
        "cifar10",
        x_train / np.float32(255),
        np.reshape(y_train, -1),
        x_test / np.float32(255),
        np.reshape(y_test, -1),
        CIFAR10_CLASSES,
        f"{_REGISTRY['cifar10'].description}; from {source}",
        "image",
    )


def _download_with_keras(name: str):
    """``keras.datasets.<name>.load_data()``: uses the Keras cache, else downloads.

    Keras prints download progress to stdout; the engine keeps stdout for the
    CLI, so it goes to stderr (the logs).
    """
    from .. import _tf

    module = getattr(_tf.keras().datasets, name)
    try:
        with contextlib.redirect_stdout(sys.stderr):
            return module.load_data()
    except Exception as exc:  # noqa: BLE001 - network, cache and archive errors all mean "not available"
        reason = one_line(exc, with_type=False)
        raise CompressionError(
            f"The {name} dataset is not available offline and could not be downloaded ({reason}); "
            f"{_missing_hint(name)}."
        ) from None


# ---------------------------------------------------------------- users' .npz files


def load_npz(path: str | os.PathLike, max_bytes: int = DEFAULT_NPZ_MAX_BYTES, layout: str | None = None) -> Dataset:
    """Load and validate a user's ``.npz`` with ``x_train, y_train, x_test, y_test``.

    The layout is inferred (:func:`infer_layout`) unless given: integer
    ``(N, L)`` arrays are token ids (kept int32), float ``(N, L)`` and
    ``(N, T, C)`` with few channels are sequences (values kept), the rest are
    images (a channel added to ``(N, H, W)``, divided by 255 only for 8-bit
    data); :func:`arrange` says what it did in ``Dataset.notes``, and
    :func:`fit_to_model` then lays it out as a chosen model wants. Labels
    must be whole numbers from 0; class names are "0" … "k-1".

    Args:
        path: the `.npz` file.
        max_bytes: refuse files larger than this (default 200 MB).
        layout: "image", "sequence" or "tokens" to override the inference.

    Returns:
        The validated :class:`Dataset` (name "npz").

    Raises:
        CompressionError: the file is too big, not an `.npz`, holds pickled
            objects, or fails a check; the message names the array and problem.

    Usage::

        ds = load_npz("uploads/sensors.npz")
    """
    path = Path(path)
    label = path.name
    if not path.is_file():
        raise CompressionError(f"The dataset file {label!r} does not exist.")
    size = path.stat().st_size
    if size > max_bytes:
        raise CompressionError(
            f"The dataset file {label!r} is {size / 2**20:.1f} MB, over the {max_bytes / 2**20:.0f} MB limit."
        )
    if size == 0:
        raise CompressionError(f"The dataset file {label!r} is empty.")
    if not zipfile.is_zipfile(path):
        raise CompressionError(
            f"{label!r} is not an .npz archive (save it with numpy.savez(path, x_train=…, y_train=…, "
            "x_test=…, y_test=…))."
        )
    arrays = _read_npz_arrays(path, label, max_bytes * NPZ_EXPANSION_LIMIT)
    return _validate_arrays(arrays, label, layout)


def _read_npz_arrays(path: Path, label: str, max_uncompressed: int) -> dict[str, np.ndarray]:
    required = ("x_train", "y_train", "x_test", "y_test")
    try:
        zipsafe.open_archive(path, subject=repr(label), not_a_zip=f"{label!r} is a damaged .npz archive.",
                             max_total_bytes=max_uncompressed).close()
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in required if k not in npz.files]
            if missing:
                present = ", ".join(npz.files) or "none"
                raise CompressionError(f"{label!r} lacks the array(s) {', '.join(missing)} (it holds: {present}).")
            arrays = {}
            for key in required:
                try:
                    arrays[key] = npz[key]
                except ValueError as exc:
                    if "allow_pickle" in str(exc) or "Object arrays" in str(exc):
                        raise CompressionError(
                            f"Array {key!r} in {label!r} holds Python objects (a pickled object array); "
                            "only numeric arrays are accepted."
                        ) from None
                    raise CompressionError(f"Array {key!r} in {label!r} could not be read ({exc}).") from None
            return arrays
    except (zipfile.BadZipFile, OSError, EOFError, zlib.error) as exc:
        raise CompressionError(f"{label!r} is a damaged .npz archive ({exc}).") from None


def _validate_arrays(a: dict[str, np.ndarray], label: str, layout: str | None = None) -> Dataset:
    for key, arr in a.items():
        if arr.dtype.kind not in "biuf":
            raise CompressionError(f"Array {key!r} in {label!r} has dtype {arr.dtype}; it must be numeric.")
    for split in ("train", "test"):
        x, y = a[f"x_{split}"], a[f"y_{split}"]
        if x.ndim < 2 or x.ndim > 4:
            raise CompressionError(
                f"x_{split} in {label!r} has shape {x.shape}; expected (N, L), (N, H, W) or (N, H, W, C)."
            )
        if len(x) == 0:
            raise CompressionError(f"x_{split} in {label!r} holds no samples; each split needs at least one.")
        if y.ndim == 2 and y.shape[1] == 1:
            y = a[f"y_{split}"] = y[:, 0]
        if y.ndim != 1:
            raise CompressionError(
                f"y_{split} in {label!r} has shape {y.shape}; it must hold one integer class label per sample "
                "(one-hot labels must be turned into indices with argmax)."
            )
        if len(x) != len(y):
            raise CompressionError(f"x_{split} has {len(x)} samples but y_{split} has {len(y)} labels in {label!r}.")
    if a["x_test"].shape[1:] != a["x_train"].shape[1:]:
        raise CompressionError(
            f"x_test samples have shape {a['x_test'].shape[1:]} but x_train samples have "
            f"{a['x_train'].shape[1:]} in {label!r}."
        )
    for key, arr in a.items():
        if arr.dtype.kind == "f" and not np.isfinite(arr).all():
            bad = int((~np.isfinite(arr)).sum())
            raise CompressionError(f"Array {key!r} in {label!r} holds {bad} NaN or infinite value(s).")
    for key in ("y_train", "y_test"):
        y = a[key]
        if y.dtype.kind == "f" and not np.array_equal(y, np.round(y)):
            raise CompressionError(
                f"Labels {key!r} in {label!r} hold non-integer values; labels must be whole class numbers 0, 1, 2, …."
            )
        if y.min() < 0:
            raise CompressionError(f"Labels {key!r} in {label!r} hold negative value {y.min():g}; labels start at 0.")
        if y.max() >= MAX_CLASSES:
            raise CompressionError(
                f"Labels {key!r} in {label!r} go up to {y.max():g}; at most {MAX_CLASSES} classes are supported."
            )
    y_train = a["y_train"].astype(np.int64)
    y_test = a["y_test"].astype(np.int64)
    if len(np.unique(y_train)) < 2:
        raise CompressionError(f"y_train in {label!r} holds a single class; classification needs at least two.")
    num_classes = int(max(y_train.max(), y_test.max())) + 1

    x_train, x_test, kind, notes = arrange(a["x_train"], a["x_test"], layout)
    shape = "×".join(str(d) for d in x_train.shape[1:])
    plural = {"image": "images", "sequence": "sequences", "tokens": "token-id sequences"}[kind]
    description = f"{label}: {len(y_train)} train + {len(y_test)} test {plural} of {shape}, {num_classes} classes"
    return _make("npz", x_train, y_train, x_test, y_test, tuple(str(i) for i in range(num_classes)), description, kind,
                 notes)
