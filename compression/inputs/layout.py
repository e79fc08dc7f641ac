"""How a dataset's inputs are laid out: infer the layout of raw arrays ("image", "sequence" or "tokens"),
arrange them as model inputs (axes, scaling, integer ids), and fit a loaded dataset to a model's input.

A user's arrays are arranged when they are read (:mod:`compression.inputs.user_npz`); any dataset, built-in
or the user's, is fitted to an uploaded model's input before a run (:func:`fit_to_model`).

Usage::

    infer_layout(np.zeros((10, 40, 3), np.float32))                    # 'sequence'
    ds = fit_to_model(ds, model.input_shape[1:], model.input.dtype.name)
"""

from __future__ import annotations

import numpy as np

from ..errors import CompressionError
from .dataset import Dataset, dataset_from_arrays

__all__ = ["LAYOUTS", "arrange", "fit_to_model", "infer_layout"]


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
    return dataset_from_arrays(ds.name, x_train, ds.y_train, x_test, ds.y_test, ds.class_names, ds.description,
                               kind, notes)


def _shape(shape) -> str:
    return "(" + ", ".join("any" if d is None else str(d) for d in shape) + (",)" if len(shape) == 1 else ")")
