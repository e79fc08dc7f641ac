"""Loading a dataset by name: the one entry point (:func:`load_dataset`) every run, page and test goes through.

Where each kind of data lives:

* the :class:`~compression.inputs.dataset.Dataset` type every loader returns: :mod:`compression.inputs.dataset`;
* the built-in sets (digits, mnist1d, fashion_mnist, mnist, cifar10), their registry and
  :func:`~compression.inputs.builtin_datasets.list_datasets`: :mod:`compression.inputs.builtin_datasets`;
* the user's own files — a ``.npz`` of arrays: :mod:`compression.inputs.user_npz`. Other kinds of the
  user's data (image folders) go in a module beside it and get a branch here;
* layouts (image / sequence / tokens) and fitting a dataset to a model's input: :mod:`compression.inputs.layout`.

This module dispatches by name and takes the seeded subsets (``max_train`` / ``max_test``).

Usage::

    ds = load_dataset("digits")
    ds = load_dataset("fashion_mnist", max_train=5000)
    ds = load_dataset("npz", path="my_data.npz")
"""

from __future__ import annotations

import numpy as np

from ..errors import CompressionError
from ..validation import whole_number
from .builtin_datasets import BUILTIN_NAMES, load_builtin
from .dataset import Dataset, dataset_from_arrays
from .user_npz import load_npz

__all__ = ["load_dataset"]


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
    elif name in BUILTIN_NAMES:
        dataset = load_builtin(name, path)
    else:
        names = ", ".join([*BUILTIN_NAMES, "npz"])
        raise CompressionError(f"Unknown dataset {name!r}; choose one of {names}.")
    return _subsample(dataset, max_train, max_test, seed)


def _subsample(ds: Dataset, max_train: int | None, max_test: int | None, seed: int) -> Dataset:
    """Seeded random subsets (order kept) when a split is larger than asked."""
    rng = np.random.default_rng(seed)
    x_train, y_train = _take(ds.x_train, ds.y_train, max_train, rng, "max_train")
    x_test, y_test = _take(ds.x_test, ds.y_test, max_test, rng, "max_test")
    if x_train is ds.x_train and x_test is ds.x_test:
        return ds
    return dataset_from_arrays(ds.name, x_train, y_train, x_test, y_test, ds.class_names, ds.description, ds.kind,
                               ds.notes)


def _take(x, y, limit, rng, what):
    if limit is None:
        return x, y
    limit = whole_number(limit, what)
    if limit >= len(y):
        return x, y
    keep = np.sort(rng.choice(len(y), size=limit, replace=False))
    return x[keep], y[keep]
