"""The user's own dataset file: a ``.npz`` of ``x_train, y_train, x_test, y_test``, read safely (no pickles,
bounded inflation) and validated array by array; the message of every refusal names the array and the
problem. Its inputs are arranged by :func:`compression.inputs.layout.arrange`.

The user's other kinds of data (image folders) get their own module beside this one, and their branch in
:func:`compression.inputs.data.load_dataset`.

Usage::

    ds = load_npz("uploads/sensors.npz")
"""

from __future__ import annotations

import os
import zipfile
import zlib
from pathlib import Path

import numpy as np

from ..errors import CompressionError
from . import zipsafe
from .dataset import Dataset, dataset_from_arrays
from .layout import arrange

__all__ = ["DEFAULT_NPZ_MAX_BYTES", "MAX_CLASSES", "load_npz"]


DEFAULT_NPZ_MAX_BYTES = 200 * 2**20
# A compressed .npz can expand far beyond its file size; bound what np.load may inflate.
NPZ_EXPANSION_LIMIT = 8
MAX_CLASSES = 10_000


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
    return dataset_from_arrays("npz", x_train, y_train, x_test, y_test, tuple(str(i) for i in range(num_classes)),
                               description, kind, notes)
