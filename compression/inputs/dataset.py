"""The :class:`Dataset` every loader returns, and :func:`dataset_from_arrays`, the one way loaders build it.

Inputs are float32 with a channel (or feature) axis, images scaled to [0, 1]; token ids stay int32;
labels are int64 class indices. Models, training and conversion never care where the data came from:
built-in sets (:mod:`compression.inputs.builtin_datasets`) or the user's files
(:mod:`compression.inputs.user_npz`), all loaded through :func:`compression.inputs.data.load_dataset`.

Usage::

    ds = dataset_from_arrays("npz", x_train, y_train, x_test, y_test, ("cat", "dog"), "my pets", "image")
    ds.num_classes                                  # 2
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["Dataset", "dataset_from_arrays"]


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


def dataset_from_arrays(name, x_train, y_train, x_test, y_test, class_names, description, kind, notes=()) -> Dataset:
    """A :class:`Dataset` of these arrays: contiguous, inputs float32 (int32 for tokens), labels int64."""
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
