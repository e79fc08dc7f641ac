"""Per-layer sensitivity: how much test accuracy one layer alone loses to each technique.

For every layer with a kernel, on a copy of the trained baseline and with **no
fine-tune** (fast: one Keras prediction over the test set per cell):

* **prune** — that layer alone magnitude-pruned to 50 / 80 / 90 / 95 % (the
  smallest-magnitude weights set to zero, exactly the count tfmot's
  ``prune_low_magnitude`` keeps at that sparsity);
* **cluster** — that layer alone clustered to 8 / 16 / 32 centroids with the
  engine's own tfmot clustering (k-means++ init), then stripped;
* **int8** — *only that layer quantized to int8* in an otherwise float model:
  its kernel rounded to int8 the way TFLite's full-integer converter does it
  (symmetric, per output channel for convolutions, per tensor for Dense) and its
  output activations fake-quantized to int8 per tensor over the min/max of
  ``calibration_samples`` training samples (the converter's calibration).

Accuracy is measured in **Keras** (``model.predict``), not LiteRT: a cell needs
no conversion, so the whole table takes seconds on digits. The drop is in
accuracy points (×100) against the baseline's Keras accuracy.

The result is a :class:`SensitivityResult` (a per-layer × setting table, the
parameter count of every layer so a tiny layer shows as such, a ranking), stored
in ``results.json`` under ``"sensitivity"`` for a run of kind "sensitivity", and
the search's prior (:meth:`SensitivityResult.max_safe_sparsity`).

Usage::

    result = analyze(baseline, dataset)                 # SensitivityResult
    result.frame()                                      # layer, technique, setting, accuracy, drop_points, ...
    run_sensitivity(Recipe.experiment_e(), "out/")      # a stored run (the runner's job signature)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from enum import StrEnum
from pathlib import Path
from typing import Any

import numpy as np

from .. import _tf
from ..errors import CompressionError
from ..progress import Cancelled, Progress, ProgressFn, emit
from ..views.tables import format_points

__all__ = [
    "DEFAULT_CLUSTERS",
    "DEFAULT_SPARSITIES",
    "SENSITIVITY_FILE",
    "LayerSensitivity",
    "SensitivityCell",
    "SensitivityResult",
    "Technique",
    "analyze",
    "read_sensitivity",
    "run_sensitivity",
    "setting_label",
]

DEFAULT_SPARSITIES = (0.5, 0.8, 0.9, 0.95)
DEFAULT_CLUSTERS = (8, 16, 32)
TINY_SHARE = 0.01  # a layer with under 1 % of the kernel weights barely changes the file, whatever it costs
SENSITIVITY_FILE = "sensitivity.csv"


class Technique(StrEnum):
    """What a sensitivity cell applies to one layer."""

    PRUNE = "prune"
    CLUSTER = "cluster"
    INT8 = "int8"


def setting_label(technique: Technique | str, setting: float | int | None) -> str:
    """Column label of a cell: ``prune 80%``, ``cluster 16``, ``int8``."""
    technique = Technique(technique)
    if technique is Technique.PRUNE:
        return f"prune {float(setting):.0%}"
    if technique is Technique.CLUSTER:
        return f"cluster {int(setting)}"
    return "int8"


@dataclass(frozen=True)
class SensitivityCell:
    """One layer × one setting: the accuracy with only that change, or why it was not measured."""

    layer: str
    technique: Technique
    setting: float | None
    accuracy: float | None = None
    drop_points: float | None = None
    error: str | None = None

    @property
    def label(self) -> str:
        return setting_label(self.technique, self.setting)


@dataclass(frozen=True)
class LayerSensitivity:
    """A layer of the baseline: its kernel size and what can be applied to it."""

    name: str
    kind: str
    params: int
    share: float  # fraction of all kernel weights
    prunable: bool
    clusterable: bool
    quantizable: bool

    @property
    def tiny(self) -> bool:
        return self.share < TINY_SHARE


@dataclass(frozen=True)
class SensitivityResult:
    """The per-layer × setting table of accuracy drops.

    Attributes:
        baseline_accuracy: Keras test accuracy of the untouched baseline.
        measured_in: "keras" (no conversion per cell).
        int8_measures: what an int8 cell measures (one sentence).
        layers: every layer with a kernel, in model order.
        cells: one per layer × setting that applies to it.
        n_test: test samples each accuracy is computed on.
        seconds: wall time of the analysis.
        notes: anything the analysis changed or skipped, one sentence each.
    """

    baseline_accuracy: float
    layers: tuple[LayerSensitivity, ...]
    cells: tuple[SensitivityCell, ...]
    sparsities: tuple[float, ...] = DEFAULT_SPARSITIES
    clusters: tuple[int, ...] = DEFAULT_CLUSTERS
    measured_in: str = "keras"
    int8_measures: str = ("only this layer quantized to int8 (kernel symmetric, per channel for convolutions and "
                          "per tensor for Dense; output activations per tensor) in an otherwise float model")
    n_test: int = 0
    seconds: float = 0.0
    notes: tuple[str, ...] = ()

    # ------------------------------------------------------------ queries

    def layer(self, name: str) -> LayerSensitivity | None:
        return next((x for x in self.layers if x.name == name), None)

    def cell(self, layer: str, technique: Technique | str, setting: float | None = None) -> SensitivityCell | None:
        technique = Technique(technique)
        for c in self.cells:
            if c.layer == layer and c.technique is technique and (
                    setting is None or c.setting is None or abs(float(c.setting) - float(setting)) < 1e-9):
                return c
        return None

    def score(self, layer: str) -> float:
        """Mean accuracy drop (points) over the layer's measured cells: what the ranking sorts by."""
        drops = [c.drop_points for c in self.cells if c.layer == layer and c.drop_points is not None]
        return float(np.mean(drops)) if drops else 0.0

    def ranking(self) -> list[dict[str, Any]]:
        """Layers from most to least sensitive, with params so tiny layers show as such."""
        rows = [{"layer": x.name, "kind": x.kind, "params": x.params, "share": x.share, "tiny": x.tiny,
                 "mean_drop_points": self.score(x.name),
                 "worst_drop_points": max((c.drop_points for c in self.cells
                                           if c.layer == x.name and c.drop_points is not None), default=0.0)}
                for x in self.layers]
        rows.sort(key=lambda r: (-r["mean_drop_points"], r["layer"]))
        for i, r in enumerate(rows, 1):
            r["rank"] = i
        return rows

    def max_safe_sparsity(self, layer: str, budget_points: float) -> float:
        """Largest tested sparsity at which pruning this layer alone (no fine-tune) loses ≤ ``budget_points``.

        0.0 when even the mildest tested sparsity costs more; the search widens it, as fine-tuning recovers.
        """
        safe = 0.0
        for s in sorted(self.sparsities):
            c = self.cell(layer, Technique.PRUNE, s)
            if c is None or c.drop_points is None or c.drop_points > budget_points:
                break
            safe = s
        return safe

    def min_safe_clusters(self, budget_points: float) -> int | None:
        """Fewest tested clusters at which every clusterable layer alone loses ≤ ``budget_points``."""
        for k in sorted(self.clusters):
            cells = [self.cell(x.name, Technique.CLUSTER, k) for x in self.layers if x.clusterable]
            drops = [c.drop_points for c in cells if c is not None and c.drop_points is not None]
            if drops and max(drops) <= budget_points:
                return k
        return None

    # ------------------------------------------------------------ tables and (de)serialisation

    def frame(self):
        """Long table: one row per cell (layer, params, technique, setting, label, accuracy, drop_points, error)."""
        import pandas as pd

        params = {x.name: x.params for x in self.layers}
        rows = [{"layer": c.layer, "params": params.get(c.layer), "technique": c.technique.value,
                 "setting": c.setting, "label": c.label, "accuracy": c.accuracy, "drop_points": c.drop_points,
                 "error": c.error} for c in self.cells]
        return pd.DataFrame(rows, columns=["layer", "params", "technique", "setting", "label", "accuracy",
                                           "drop_points", "error"])

    def matrix(self):
        """Wide table: layers (rows, model order) × setting labels (columns) of drops in points."""
        df = self.frame()
        order = [x.name for x in self.layers]
        labels = list(dict.fromkeys(df["label"]))
        wide = df.pivot_table(index="layer", columns="label", values="drop_points", aggfunc="first")
        return wide.reindex(index=[n for n in order if n in wide.index], columns=labels)

    def to_csv(self) -> str:
        return self.frame().to_csv(index=False)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        for c in out["cells"]:
            c["technique"] = Technique(c["technique"]).value
        out["ranking"] = self.ranking()
        return out

    @classmethod
    def from_dict(cls, data: dict | None) -> SensitivityResult | None:
        """Tolerant: None for anything that is not a sensitivity dict; unknown keys ignored."""
        if not isinstance(data, dict) or "cells" not in data:
            return None
        layers = tuple(LayerSensitivity(name=str(x.get("name", "")), kind=str(x.get("kind", "")),
                                        params=int(x.get("params") or 0), share=float(x.get("share") or 0.0),
                                        prunable=bool(x.get("prunable")), clusterable=bool(x.get("clusterable")),
                                        quantizable=bool(x.get("quantizable")))
                       for x in data.get("layers") or () if isinstance(x, dict))
        cells = []
        for c in data.get("cells") or ():
            try:
                cells.append(SensitivityCell(layer=str(c["layer"]), technique=Technique(c["technique"]),
                                             setting=c.get("setting"), accuracy=c.get("accuracy"),
                                             drop_points=c.get("drop_points"), error=c.get("error")))
            except (KeyError, ValueError, TypeError):
                continue
        return cls(baseline_accuracy=float(data.get("baseline_accuracy") or 0.0), layers=layers, cells=tuple(cells),
                   sparsities=tuple(float(s) for s in data.get("sparsities") or DEFAULT_SPARSITIES),
                   clusters=tuple(int(k) for k in data.get("clusters") or DEFAULT_CLUSTERS),
                   measured_in=str(data.get("measured_in") or "keras"),
                   int8_measures=str(data.get("int8_measures") or cls.int8_measures),
                   n_test=int(data.get("n_test") or 0), seconds=float(data.get("seconds") or 0.0),
                   notes=tuple(str(n) for n in data.get("notes") or ()))


# ---------------------------------------------------------------- the analysis


def _kernel_variable(layer):
    for w in layer.weights:
        if w.name.split(":")[0].split("/")[-1] in ("kernel", "depthwise_kernel"):
            return w
    return None


def _quantize_kernel_int8(kernel: np.ndarray, per_channel: bool) -> np.ndarray:
    """Round a float kernel to symmetric int8 and back, per output channel (last axis) or per tensor."""
    axes = tuple(range(kernel.ndim - 1)) if per_channel else None
    scale = np.max(np.abs(kernel), axis=axes, keepdims=per_channel) / 127.0
    scale = np.where(scale == 0, 1.0, scale)
    return (np.clip(np.round(kernel / scale), -127, 127) * scale).astype(kernel.dtype)


def _magnitude_prune(kernel: np.ndarray, sparsity: float) -> np.ndarray:
    """Zero the ``round(sparsity × size)`` smallest-magnitude weights (what tfmot's mask keeps)."""
    flat = kernel.reshape(-1).copy()
    k = int(round(sparsity * flat.size))
    if k > 0:
        flat[np.argsort(np.abs(flat), kind="stable")[:k]] = 0
    return flat.reshape(kernel.shape)


def _with_output_fake_quant(model, layer_name: str, lo: float, hi: float):
    """A copy of ``model`` (sharing its layers) whose ``layer_name`` output is fake-quantized to int8."""
    keras, tf = _tf.keras(), _tf.tf()

    class _FakeQuantOutput(keras.layers.Wrapper):
        def call(self, inputs, *args, **kwargs):
            return tf.quantization.fake_quant_with_min_max_args(self.layer(inputs, *args, **kwargs),
                                                                min=lo, max=hi, num_bits=8)

    def wrap(layer):
        return _FakeQuantOutput(layer, name=f"{layer.name}_int8") if layer.name == layer_name else layer

    return keras.models.clone_model(model, clone_function=wrap)


def _layers_of(model) -> list[LayerSensitivity]:
    from ..techniques.clustering import _clusterable_kernel
    from ..techniques.pruning import _prunable

    found = []
    for layer in model.layers:
        var = _kernel_variable(layer)
        if var is None:
            continue
        found.append((layer, int(np.prod(var.shape)), _prunable(layer), _clusterable_kernel(layer) is not None))
    total = sum(p for _, p, _, _ in found) or 1
    return [LayerSensitivity(name=layer.name, kind=type(layer).__name__, params=p, share=p / total, prunable=pr,
                             clusterable=cl, quantizable=True) for layer, p, pr, cl in found]


def analyze(baseline, dataset, *, sparsities: Sequence[float] = DEFAULT_SPARSITIES,
            clusters: Sequence[int] = DEFAULT_CLUSTERS, int8: bool = True, calibration_samples: int = 200,
            max_test: int | None = None, seed: int = 0, progress: ProgressFn | None = None,
            cancel: Callable[[], bool] | None = None, fraction_span=(0.0, 1.0)) -> SensitivityResult:
    """Measure every layer × setting on copies of ``baseline`` (left untouched), in Keras, without fine-tuning.

    Args:
        baseline: the trained float tf_keras model.
        dataset: a :class:`compression.inputs.dataset.Dataset` (test set for accuracy, training set for calibration).
        sparsities: pruning sparsities in (0, 1).
        clusters: cluster counts (≥ 2).
        int8: measure the int8 cells too.
        calibration_samples: training samples for an int8 cell's activation range.
        max_test: measure on a seeded sample of at most this many test samples (None: all of them).
        seed: seeds the clustering initialisation and the calibration sample.
        progress: receives ``Progress(phase="sensitivity", ...)`` per cell.
        cancel: polled between cells; True raises :class:`Cancelled`.

    Returns:
        A :class:`SensitivityResult`.

    Raises:
        CompressionError: a setting is out of range or the model has no layer with a kernel.
        Cancelled: ``cancel()`` returned True.
    """
    from ..config import ClusteringConfig
    from ..inputs.models import clone
    from ..techniques.clustering import apply_clustering
    from ..techniques.clustering import strip as strip_clustering
    from ..techniques.train import predict_classes

    sparsities = tuple(float(s) for s in sparsities)
    clusters = tuple(int(k) for k in clusters)
    if any(not 0 < s < 1 for s in sparsities):
        raise CompressionError(f"Sensitivity sparsities must be in (0, 1). Received: {list(sparsities)}")
    if any(k < 2 for k in clusters):
        raise CompressionError(f"Sensitivity cluster counts must be at least 2. Received: {list(clusters)}")
    started = time.perf_counter()
    x, y = dataset.x_test, dataset.y_test
    if max_test is not None and len(x) > max_test:
        keep = np.sort(np.random.default_rng(seed).permutation(len(x))[:max_test])
        x, y = x[keep], y[keep]
    model = clone(baseline)
    layers = _layers_of(model)
    if not layers:
        raise CompressionError("The model has no layer with a kernel to analyse (Conv, Dense, ...).")

    def accuracy(m) -> float:
        return float(np.mean(predict_classes(m, x) == y))

    base_acc = accuracy(model)
    plan: list[tuple[LayerSensitivity, Technique, float | None]] = []
    for info in layers:
        if info.prunable:
            plan += [(info, Technique.PRUNE, s) for s in sparsities]
        if info.clusterable:
            plan += [(info, Technique.CLUSTER, float(k)) for k in clusters]
        if int8 and info.quantizable:
            plan.append((info, Technique.INT8, None))
    rng = np.random.default_rng(seed)
    calib = dataset.x_train[rng.permutation(len(dataset.x_train))[:calibration_samples]]
    cells, notes = [], []
    lo, hi = fraction_span
    for i, (info, technique, setting) in enumerate(plan):
        if cancel is not None and cancel():
            raise Cancelled("cancelled")
        layer = model.get_layer(info.name)
        var = _kernel_variable(layer)
        original = var.numpy()
        error = None
        acc = None
        try:
            if technique is Technique.PRUNE:
                var.assign(_magnitude_prune(original, setting))
                acc = accuracy(model)
            elif technique is Technique.CLUSTER:
                _tf.set_seed(seed)
                try:
                    wrapped, _, _ = apply_clustering(model, ClusteringConfig(clusters=int(setting),
                                                                             layers=(info.name,)))
                    acc = accuracy(strip_clustering(wrapped))
                except CompressionError as exc:
                    error = str(exc).split(". ", 1)[-1] or str(exc)
            else:
                per_channel = info.kind in ("Conv2D", "Conv1D", "Conv3D", "DepthwiseConv2D", "SeparableConv2D")
                var.assign(_quantize_kernel_int8(original, per_channel))
                probe = _tf.keras().Model(model.inputs, layer.output)
                act = probe.predict(calib, batch_size=512, verbose=0)
                a_lo, a_hi = min(0.0, float(np.min(act))), max(0.0, float(np.max(act)))
                if a_hi - a_lo <= 0:
                    a_hi = a_lo + 1e-6
                acc = accuracy(_with_output_fake_quant(model, info.name, a_lo, a_hi))
        finally:
            var.assign(original)
        drop = None if acc is None else (base_acc - acc) * 100
        cells.append(SensitivityCell(layer=info.name, technique=technique, setting=setting, accuracy=acc,
                                     drop_points=drop, error=error))
        if error:
            notes.append(f"{info.name} {setting_label(technique, setting)} not measured: {error}")
        emit(progress, Progress(phase="sensitivity", variant=info.name,
                                fraction=lo + (hi - lo) * (i + 1) / len(plan),
                                message=f"{info.name} {setting_label(technique, setting)}: "
                                        + (format_points(-drop) if drop is not None else "not measured")))
    tiny = [x.name for x in layers if x.tiny]
    if tiny:
        notes.append(f"tiny layer(s) {', '.join(tiny)}: under {TINY_SHARE:.0%} of the kernel weights each, so "
                     "compressing them barely changes the file whatever it costs in accuracy")
    return SensitivityResult(baseline_accuracy=base_acc, layers=tuple(layers), cells=tuple(cells),
                             sparsities=sparsities, clusters=clusters, n_test=int(len(x)),
                             seconds=round(time.perf_counter() - started, 3), notes=tuple(notes))


# ---------------------------------------------------------------- the stored run (runner job)


def run_sensitivity(recipe, out_dir: str | Path, progress: ProgressFn | None = None,
                    cancel: Callable[[], bool] | None = None) -> SensitivityResult:
    """A run of kind "sensitivity": baseline as the recipe says, then :func:`analyze`; writes results.json.

    Has the runner's job signature (``"compression.explore.sensitivity:run_sensitivity"``); the recipe's
    variants are not run. results.json holds the usual dataset/baseline/reference and the
    result under ``"sensitivity"``; ``sensitivity.csv`` holds the long table.

    Raises:
        CompressionError: the dataset or model cannot be loaded, or the model has nothing to analyse.
        Cancelled: ``cancel()`` returned True (what was measured so far is not kept: it is seconds).
    """
    from .._io import atomic_write_text
    from ..config import Recipe
    from ..results import RunKind
    from ..run.baseline import load_recipe_dataset, prepare_baseline
    from ..run.writers import JobResults

    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_dict(recipe)
    job = JobResults(recipe, out_dir, RunKind.SENSITIVITY)
    folder, results = job.folder, job.results
    job.save()
    with job.recording():
        ds = load_recipe_dataset(recipe, results, progress)
        baseline, _, _ = prepare_baseline(
            recipe, ds, folder.path, results, progress, cancel, fraction_span=(0, 0.2),
            refuse_at_chance="no layer setting can lower chance accuracy, so every layer would look robust")
        job.save()
        result = analyze(baseline, ds, seed=recipe.seed, progress=progress, cancel=cancel, fraction_span=(0.2, 1.0))
    results["sensitivity"] = result.to_dict()
    results["status"] = "ok"
    atomic_write_text(folder.file(SENSITIVITY_FILE), result.to_csv())
    job.save()
    emit(progress, Progress(phase="done", fraction=1.0, message=f"sensitivity of {len(result.layers)} layers in "
                                                               f"{result.seconds:.1f} s"))
    return result


def read_sensitivity(results: dict | Any) -> SensitivityResult | None:
    """The sensitivity result of a run's results (a dict or a RunResults), or None."""
    if isinstance(results, dict):
        return SensitivityResult.from_dict(results.get("sensitivity"))
    extra = getattr(results, "extra", None) or {}
    return SensitivityResult.from_dict(extra.get("sensitivity"))

