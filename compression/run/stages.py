"""Building a variant's Keras model stage by stage (distil → prune → cluster → QAT), with a cache of the
stages and conversions that variants of one run share, and each stage's share of the run's progress."""


import json
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import _tf
from ..config import QuantizationMode, Recipe, VariantSpec
from ..progress import ProgressFn

__all__ = [
    "build_variant_model",
    "progress_weights",
    "values_per_channel",
]

log = logging.getLogger("compression")


def _drop_export(kept: tuple[Any, Path] | None) -> None:
    import shutil

    if kept is not None:
        shutil.rmtree(kept[1], ignore_errors=True)


def _fresh_export(model, previous: tuple[Any, Path] | None) -> tuple[Any, Path]:
    """A new temporary export folder for ``model``; ``previous`` (another model's) is deleted."""
    import tempfile

    _drop_export(previous)
    return model, Path(tempfile.mkdtemp(prefix="compression-export-"))


class _StageCache:
    """Trained models by the settings that produced them, within one run.

    Variants that differ only in their conversion (``pruned`` and ``pruned-dynamic``)
    share one fine-tune. Each stage is seeded from the recipe seed, so a cache hit
    returns exactly what recomputing would. Conversions happen in one thread (a run's row writer).
    """

    def __init__(self, isolate: bool = True, keep_exports: bool = False):
        self._models: dict[str, tuple[Any, dict]] = {}
        self.converted: dict[tuple, bytes] = {}  # (model id, mode, sparse, calibration size) → .tflite
        self.isolate = isolate  # False in a Ray task: the task's process is the isolation (executors.py)
        self.keep_exports = keep_exports  # True: the owner calls close() at the end
        self._export: tuple[Any, Path] | None = None  # the last exported model and its SavedModel export
        self._pinned: tuple[Any, Path] | None = None  # the model :meth:`export` exported, kept to the end

    def _key(self, model, mode: QuantizationMode, sparse: bool, samples: int, seed: int) -> tuple:
        calibrated = mode in (QuantizationMode.INT8, QuantizationMode.INT16X8)
        return (id(model), mode, sparse, samples if calibrated else None, seed if calibrated else None)

    def convert(self, model, mode: QuantizationMode, ds, sparse: bool = False, samples: int = 200,
                seed: int = 0) -> bytes:
        """Convert once per model and settings (the float32 reference and a plain float32 variant share it).

        With ``keep_exports`` the last model's SavedModel export is kept, so the next mode of the same model
        (the baseline's float32 and int8, ``pruned`` and ``pruned-dynamic``: adjacent variants) converts
        without saving it again; one export at a time bounds the disk it takes.
        """
        from ..tflite.convert import convert_to_tflite

        key = self._key(model, mode, sparse, samples, seed)
        if key not in self.converted:
            self.converted[key] = convert_to_tflite(model, mode, representative=ds.x_train, sparse=sparse,
                                                    representative_samples=samples, seed=seed,
                                                    isolate=self.isolate, export_dir=self._export_dir(model))
        return self.converted[key]

    def export(self, model) -> None:
        """Export the model's SavedModel now, in this thread; its conversions (in another thread) reuse it.

        For the baseline: the main thread goes on calling it (a distillation's teacher), and a SavedModel
        export traced in another thread meanwhile can capture that thread's half-made functions. The export
        is kept until :meth:`close`, so a later conversion of this model (an int8 variant listed after a
        fine-tuned one) never exports it again in the other thread.
        """
        from ..tflite.convert import export_for_conversion

        if not self.keep_exports:
            return
        self._pinned = _fresh_export(model, self._pinned)
        export_for_conversion(model, self._pinned[1])

    def _export_dir(self, model) -> Path | None:
        if not self.keep_exports:
            return None
        if self._pinned is not None and self._pinned[0] is model:
            return self._pinned[1]
        if self._export is None or self._export[0] is not model:  # the model is held: its id stays its own
            self._export = _fresh_export(model, self._export)
        return self._export[1]

    def close(self) -> None:
        """Delete the kept exports (the run's end)."""
        for kept in (self._export, self._pinned):
            _drop_export(kept)
        self._export = self._pinned = None

    def get_or_make(self, key: dict, make: Callable[[], tuple[Any, dict]]):
        k = json.dumps(key, sort_keys=True, default=str)
        if k not in self._models:
            self._models[k] = make()
        return self._models[k]


def progress_weights(recipe: Recipe, n_train: int) -> tuple[float, list[float]]:
    """Expected cost of the baseline and of each variant, in "one conversion + measurement" units.

    Drives the overall progress fraction (and so the UI's ETA): an epoch costs about
    ``n_train / 4000`` units here, and a technique stage an earlier variant already
    ran (same settings: the stage cache) costs nothing.
    """
    epoch = max(0.05, n_train / 4000)
    base = recipe.baseline
    baseline = 0.5 if base.pretrained else max(0.5, base.epochs * epoch)
    seen: set[str] = set()
    weights = []
    for spec in recipe.variants:
        cost, key = 1.0, {}
        stages = [("distill", spec.distillation, spec.distillation.epochs if spec.distillation else 0),
                  ("prune", spec.pruning, spec.fine_tune_epochs), ("cluster", spec.clustering, spec.fine_tune_epochs),
                  ("qat", spec.qat, spec.fine_tune_epochs)]
        for name, config, epochs in stages:
            if config is None:
                continue
            key = {**key, name: config, f"{name}_epochs": epochs, "lr": spec.learning_rate, "bs": spec.batch_size}
            k = json.dumps(key, sort_keys=True, default=str)
            if k not in seen:
                seen.add(k)
                cost += epochs * epoch * (1.5 if name == "qat" else 1.0)
        weights.append(cost)
    return baseline, weights


def build_variant_model(spec: VariantSpec, baseline, ds, seed: int, cache: _StageCache | None = None,
                        progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None,
                        fraction_span=(0.0, 1.0)):
    """Apply a variant's techniques, in order distill → prune → cluster → QAT, to fresh copies.

    Returns:
        (model ready for conversion, info dict: schedule, float_layers, notes, history, stage timings).
    """
    from ..measure.weight_stats import layer_kernels
    from ..techniques.clustering import cluster
    from ..techniques.distill import distill
    from ..techniques.pruning import prune
    from ..techniques.qat import quantize_aware

    cache = cache or _StageCache()
    x, y = ds.x_train, ds.y_train
    info: dict[str, Any] = {"notes": [], "float_layers": [], "history": {}, "schedule": None}
    model, key = baseline, {}
    n_stages = sum(1 for s in (spec.distillation, spec.pruning, spec.clustering, spec.qat) if s) or 1
    lo, hi = fraction_span
    step = (hi - lo) / n_stages
    span = [lo, lo + step]
    common = {"batch_size": spec.batch_size, "learning_rate": spec.learning_rate}

    def advance():
        span[0], span[1] = span[1], span[1] + step

    def seeded(fn):
        def run():
            _tf.set_seed(seed)
            return fn()
        return run

    if spec.distillation:
        d = spec.distillation
        key = {**key, "distill": vars(d), **common}
        model, dinfo = cache.get_or_make(key, seeded(lambda m=model: distill(
            m, d, x, y, ds.input_shape, ds.num_classes, seed=seed, progress=progress, cancel=cancel,
            variant=spec.name, fraction_span=tuple(span), **common)))
        info["distillation"] = {k: v for k, v in dinfo.items() if k != "history"}
        info["history"]["distill"] = dinfo["history"]
        advance()
    if spec.pruning:
        key = {**key, "prune": spec.pruning, "epochs": spec.fine_tune_epochs, **common}
        model, pinfo = cache.get_or_make(key, seeded(lambda m=model: prune(
            m, spec.pruning, x, y, epochs=spec.fine_tune_epochs, progress=progress, cancel=cancel,
            variant=spec.name, fraction_span=tuple(span), **common)))
        info["schedule"] = pinfo["schedule"]
        zeros = {name: float(np.mean(kernel == 0)) for name, kernel in layer_kernels(model).items()}
        info["kept"] = {"zeros": {name: share for name, share in zeros.items() if share > 0}}
        info["snapshots"] = pinfo.get("snapshots")
        info["notes"] += pinfo["schedule"]["notes"] + pinfo.get("notes", [])
        info["history"]["prune"] = pinfo["history"]
        advance()
    if spec.clustering:
        key = {**key, "cluster": spec.clustering, "epochs": spec.fine_tune_epochs, **common}
        model, cinfo = cache.get_or_make(key, seeded(lambda m=model: cluster(
            m, spec.clustering, x, y, epochs=spec.fine_tune_epochs, preserve_sparsity=bool(spec.pruning),
            progress=progress, cancel=cancel, variant=spec.name, fraction_span=tuple(span), **common)))
        info["notes"] += cinfo["notes"]
        k = spec.clustering.clusters + bool(spec.pruning)  # the zero of a pruned layer is one more value
        most = {name: values_per_channel(kernel) for name, kernel in layer_kernels(model).items()}
        info.setdefault("kept", {})["values"] = {name: n for name, n in most.items() if n <= k}
        info["centroids"] = cinfo.get("centroids")
        info["history"]["cluster"] = cinfo["history"]
        advance()
    if spec.qat:
        preserve = spec.expected_preserve
        key = {**key, "qat": spec.qat, "preserve": preserve, "epochs": spec.fine_tune_epochs, **common}
        model, qinfo = cache.get_or_make(key, seeded(lambda m=model: quantize_aware(
            m, spec.qat, x, y, epochs=spec.fine_tune_epochs, preserve=preserve, progress=progress, cancel=cancel,
            variant=spec.name, fraction_span=tuple(span), **common)))
        info["float_layers"] = qinfo["float_layers"]
        info["scheme"] = qinfo["scheme"]
        info["history"]["qat"] = qinfo["history"]
        if preserve.value in ("sparsity", "both") and qinfo["float_layers"]:
            info["notes"].append("layers QAT leaves float are fine-tuned without a pruning mask, so their "
                                 "sparsity is not preserved: " + ", ".join(f["name"] for f in qinfo["float_layers"]))
    return model, info

def values_per_channel(kernel: np.ndarray) -> int:
    """Distinct values in a kernel's most varied output channel (last axis).

    A clustered layer keeps its k values per channel whether its centroids are the layer's (clustering) or,
    as CQAT trains a Conv2D's, each channel's own: the whole kernel then holds up to k × channels values.
    """
    kernel = np.asarray(kernel)
    flat = kernel.reshape(-1, kernel.shape[-1]) if kernel.ndim > 1 else kernel.reshape(-1, 1)
    return max(int(np.unique(flat[:, c]).size) for c in range(flat.shape[1]))
