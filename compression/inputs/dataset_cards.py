"""What a built-in dataset looks like (shape, classes, split sizes) without loading it.

The Compress page needs only a dataset's input shape, class count and training-set size (layer
names, students, the pruning-schedule preview). Loading the default dataset for that imports
scikit-learn (and SciPy): seconds of the first page after the server starts. The default's card
is fixed data, like the model cards in ``sample_models/summaries``; ``tests/test_dataset_cards.py``
checks it against the real loader, so the card cannot drift from the data.

Usage::

    info = dataset_card("digits", max_train=500)     # a results.DatasetInfo, or None: load the data
"""

from __future__ import annotations

import dataclasses

from ..results import DatasetInfo
from ..validation import whole_number

__all__ = ["dataset_card", "describe_dataset"]

# scikit-learn's 8×8 digits as compression.inputs.builtin_datasets._load_digits splits them (1 797 images, 20 % test,
# stratified).
_CARDS = {
    "digits": DatasetInfo(name="digits", input_shape=(8, 8, 1), num_classes=10, n_train=1437, n_test=360,
                          class_names=tuple(str(d) for d in range(10)), kind="image"),
}


def dataset_card(name: str, path: str | None = None, max_train: int | None = None, max_test: int | None = None,
                 layout: str | None = None) -> DatasetInfo | None:
    """The dataset's :class:`~compression.results.DatasetInfo` from its card, or None (no card: load it).

    Args:
        name, path, max_train, max_test, layout: as :func:`compression.inputs.data.load_dataset` takes them.
    """
    card = _CARDS.get(name)
    if card is None or path or layout:
        return None
    n_train = card.n_train if max_train is None else min(card.n_train, whole_number(max_train, "max_train"))
    n_test = card.n_test if max_test is None else min(card.n_test, whole_number(max_test, "max_test"))
    return dataclasses.replace(card, n_train=n_train, n_test=n_test)


def describe_dataset(ds) -> DatasetInfo:
    """The :class:`~compression.results.DatasetInfo` of a loaded :class:`~compression.inputs.dataset.Dataset`."""
    return DatasetInfo(name=ds.name, input_shape=tuple(ds.input_shape), num_classes=ds.num_classes,
                       n_train=int(len(ds.x_train)), n_test=int(len(ds.x_test)), class_names=tuple(ds.class_names),
                       kind=ds.kind, notes=tuple(ds.notes))
