"""Weight clustering with tfmot: wrap → fine-tune → strip.

Usage::

    clustered, info = cluster(baseline, ClusteringConfig(clusters=16), x, y, epochs=1)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import _tf
from ..config import CentroidInit, ClusteringConfig
from ..errors import CompressionError
from ..inputs.models import check_layer_names, clone
from ..progress import ProgressFn
from .train import compile_for_training, fit


def _init(init: CentroidInit):
    ci = _tf.tfmot().clustering.keras.CentroidInitialization
    return {
        CentroidInit.KMEANS_PLUS_PLUS: ci.KMEANS_PLUS_PLUS,
        CentroidInit.LINEAR: ci.LINEAR,
        CentroidInit.DENSITY: ci.DENSITY_BASED,
        CentroidInit.RANDOM: ci.RANDOM,
    }[init]


def _clusterable_kernel(layer) -> np.ndarray | None:
    from tensorflow_model_optimization.python.core.clustering.keras.clustering_registry import ClusteringRegistry

    if not layer.weights or not ClusteringRegistry.supports(layer):
        return None
    for w in layer.weights:
        if w.name.split("/")[-1].split(":")[0] in ("kernel", "depthwise_kernel"):
            return np.asarray(w.numpy())
    return None


def apply_clustering(model, config: ClusteringConfig, preserve_sparsity: bool = False):
    """Wrap a fresh copy's clusterable layers (all, or ``config.layers``).

    A layer with fewer (non-zero, when preserving sparsity) weights than clusters
    crashes tfmot's k-means++ initialisation, so it is left unclustered and noted.

    Returns:
        (wrapped model, names of clustered layers, notes).
    """
    keras = _tf.keras()
    if preserve_sparsity:
        # The public tfmot.clustering.keras.experimental namespace is empty in 0.8.1.
        from tensorflow_model_optimization.python.core.clustering.keras.experimental import cluster as exp_cluster

        def wrap_layer(layer):
            return exp_cluster.cluster_weights(layer, number_of_clusters=config.clusters,
                                               cluster_centroids_init=_init(config.init), preserve_sparsity=True)
    else:
        def wrap_layer(layer):
            return _tf.tfmot().clustering.keras.cluster_weights(
                layer, number_of_clusters=config.clusters, cluster_centroids_init=_init(config.init))

    check_layer_names(model, config.layers, "clustering.layers")
    chosen, notes = [], []

    def wrap(layer):
        if config.layers is not None and layer.name not in config.layers:
            return layer
        kernel = _clusterable_kernel(layer)
        if kernel is None:
            return layer
        candidates = int(np.count_nonzero(kernel)) if preserve_sparsity else kernel.size
        if candidates <= config.clusters:
            notes.append(f"layer {layer.name!r} left unclustered: {candidates} "
                         f"{'non-zero ' if preserve_sparsity else ''}weights for {config.clusters} clusters")
            return layer
        chosen.append(layer.name)
        return wrap_layer(layer)

    wrapped = keras.models.clone_model(clone(model), clone_function=wrap)
    if not chosen:
        raise CompressionError("None of the chosen layers can be clustered (tfmot clusters Conv and Dense kernels "
                               f"with more weights than clusters). {' '.join(notes)}".strip())
    return wrapped, chosen, notes


def strip(model):
    """Remove clustering wrappers: kernels keep only the centroid values."""
    return _tf.tfmot().clustering.keras.strip_clustering(model)


def cluster(model, config: ClusteringConfig, x, y, *, epochs: int, batch_size: int = 64,
            learning_rate: float = 1e-4, preserve_sparsity: bool = False, progress: ProgressFn | None = None,
            cancel: Callable[[], bool] | None = None, variant: str = "", fraction_span=(0.0, 1.0)):
    """Cluster a copy of ``model``'s weights, fine-tune the centroids, then strip.

    Returns:
        (stripped clustered model, info dict with ``layers``, ``notes``, ``history``).
    """
    wrapped, chosen, notes = apply_clustering(model, config, preserve_sparsity)
    compile_for_training(wrapped, learning_rate)
    recorder = centroid_recorder(wrapped)
    history = fit(wrapped, x, y, epochs=epochs, batch_size=batch_size, callbacks=[recorder], progress=progress,
                  cancel=cancel, variant=variant, fraction_span=fraction_span)
    return strip(wrapped), {"layers": chosen, "notes": notes, "history": history,
                            "centroids": recorder.snapshots()}


MAX_CENTROID_SNAPSHOTS = 200


def centroid_recorder(wrapped, max_snapshots: int = MAX_CENTROID_SNAPSHOTS):
    """A Keras callback recording each clustered kernel's centroids before training and after every batch.

    Centroids are a few numbers per layer, so this is cheap; past ``max_snapshots`` batches every other
    snapshot is dropped (the first and the last stay). ``recorder.snapshots()`` returns
    ``{"step": int array (n,), "centroids": {layer: array (n, k)}}`` or None.
    """
    keras = _tf.keras()

    class CentroidSnapshots(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.layers = [layer for layer in wrapped.layers if getattr(layer, "cluster_centroids", None)]
            self.steps: list[int] = []
            self.values: dict[str, list[np.ndarray]] = {self._name(layer): [] for layer in self.layers}
            self.step = 0

        @staticmethod
        def _name(layer) -> str:
            return getattr(getattr(layer, "layer", None), "name", layer.name)

        def _record(self) -> None:
            self.steps.append(self.step)
            for layer in self.layers:
                first = next(iter(layer.cluster_centroids.values()))
                self.values[self._name(layer)].append(np.asarray(first.numpy(), dtype=np.float32).ravel())
            if len(self.steps) > max_snapshots:
                keep = [*range(0, len(self.steps) - 1, 2), len(self.steps) - 1]
                self.steps = [self.steps[i] for i in keep]
                for name in self.values:
                    self.values[name] = [self.values[name][i] for i in keep]

        def on_train_begin(self, logs=None):
            if self.layers:
                self._record()

        def on_train_batch_end(self, batch, logs=None):
            self.step += 1
            if self.layers:
                self._record()

        def snapshots(self) -> dict | None:
            if len(self.steps) < 2:
                return None
            return {"step": np.asarray(self.steps, dtype=np.int64),
                    "centroids": {name: np.stack(v) for name, v in self.values.items()}}

    return CentroidSnapshots()


def save_centroids(path, snapshots: dict) -> None:
    """Write :func:`centroid_recorder` snapshots to an ``.npz`` (``step`` and ``centroids:<layer>`` arrays)."""
    from .._io import save_step_arrays

    save_step_arrays(path, snapshots["step"], snapshots["centroids"], "centroids:")


def load_centroids(path) -> dict | None:
    """The snapshots saved by :func:`save_centroids` (never unpickles), or None when there is no file."""
    from .._io import load_step_arrays

    loaded = load_step_arrays(path, "centroids:")
    return None if loaded is None else {"step": loaded[0], "centroids": loaded[1]}
