"""Run a recipe: baseline → every variant (techniques → convert → measure) → results.

One variant failing never loses the others: it is recorded ``failed`` with its
reason. ``results.json`` is rewritten atomically after each variant, so a reader
(the app, the runner) sees finished variants while the rest still run. Every
stage starts from ``recipe.seed``, so the same recipe gives the same table.

Usage::

    table = run_recipe(Recipe.experiment_e(), "out/")      # a pandas DataFrame
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as _dt
import json
import logging
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import _tf
from ..config import QuantizationMode, Recipe, VariantSpec
from ..errors import CompressionError, one_line
from ..inputs.models import check_compatible
from ..progress import Cancelled, Progress, ProgressFn, emit
from ..results import (
    BaselineInfo,
    DatasetInfo,
    Flag,
    Latency,
    LayerStat,
    Reference,
    RunFolder,
    RunKind,
    RunResults,
    RunStatus,
    Timings,
    VariantResult,
    file_stem,
    results_table,
)

__all__ = [
    "JobResults",
    "ResultsWriter",
    "build_variant_model",
    "get_baseline",
    "load_recipe_dataset",
    "load_results",
    "prepare_baseline",
    "progress_weights",
    "run_recipe",
    "run_variant",
]

log = logging.getLogger("compression")
RUN_BASELINE_MAX_BYTES = 4 * 2**30  # a run's own baseline.keras: bounded only against a runaway file


def _now() -> str:
    return _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds")


# ---------------------------------------------------------------- baseline


def get_baseline(recipe: Recipe, ds, progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None,
                 fraction_span=(0.0, 0.1)):
    """The float baseline the recipe asks for: pretrained, uploaded, or trained now.

    Returns:
        (model, info dict with ``source``, ``history``).
    """
    from ..inputs.models import build_model
    from ..inputs.pretrained import load_pretrained
    from ..techniques.train import compile_for_training, train_baseline

    spec, base = recipe.model, recipe.baseline
    if spec.path is not None:
        from ..inputs.safe_load import load_user_model

        # A baseline trained by an earlier run (the app's "train now") keeps saying so, and is not an upload:
        # the upload size limit does not apply to it (a ResNet50 baseline is ~100 MB even without optimizer).
        earlier = RunFolder(Path(spec.path).parent)
        own = Path(spec.path) == earlier.baseline_model and earlier.results_file.is_file()
        source = f"trained in run {earlier.run_id}" if own else "uploaded"
        model = load_user_model(spec.path, max_bytes=RUN_BASELINE_MAX_BYTES) if own else load_user_model(spec.path)
        check_compatible(model.input_shape[1:], model.output_shape[-1], ds)
        if base.pretrained or base.epochs == 0:
            compile_for_training(model, base.learning_rate)
            return model, {"source": source, "history": {}}
    elif base.pretrained:
        model = load_pretrained(ds.name, spec.name)
        check_compatible(model.input_shape[1:], model.output_shape[-1], ds)
        compile_for_training(model, base.learning_rate)
        return model, {"source": "pretrained", "history": {}}
    else:
        model = build_model(spec.name, ds.input_shape, ds.num_classes, seed=recipe.seed)
        source = "trained"
    history = train_baseline(model, ds, epochs=base.epochs, batch_size=base.batch_size,
                             learning_rate=base.learning_rate, validation_split=base.validation_split,
                             seed=recipe.seed, progress=progress, cancel=cancel, fraction_span=fraction_span)
    return model, {"source": source, "history": history}


class _Recording:
    """``with run.recording():`` writes a cancel or a failure inside the block to results.json, then re-raises it."""

    def save(self) -> None:
        raise NotImplementedError

    def _mark(self, status: RunStatus, error: str | None = None) -> None:
        raise NotImplementedError

    @contextlib.contextmanager
    def recording(self):
        try:
            yield self
        except Cancelled:
            self._mark(RunStatus.CANCELLED)
            self.save()
            raise
        except Exception as exc:
            self._mark(RunStatus.FAILED, str(exc) if isinstance(exc, CompressionError) else one_line(exc))
            self.save()
            raise


class ResultsWriter(_Recording):
    """A run's :class:`RunResults` while it runs, rewritten atomically through its :class:`RunFolder`.

    Usage::

        run = ResultsWriter(RunFolder(out), RunResults(recipe=recipe.to_dict()))
        run.update(status=RunStatus.OK); run.save()
    """

    def __init__(self, folder: RunFolder, results: RunResults):
        self.folder, self.results = folder, results
        self.started = time.perf_counter()

    def _mark(self, status: RunStatus, error: str | None = None) -> None:
        self.update(status=status, **({"error": error} if error is not None else {}))

    def update(self, **changes) -> None:
        self.results = self.results.replace(**changes)

    def add(self, row: VariantResult) -> None:
        self.results = self.results.with_variant(row)

    def save(self) -> None:
        self.update(elapsed_seconds=round(time.perf_counter() - self.started, 3))
        self.folder.write_results(self.results)


class JobResults(_Recording):
    """results.json of a job's run (sensitivity, search) as its plain dict, rewritten atomically.

    The usual recipe/versions/dataset/baseline/reference parts, the run's ``kind``, and the job's own
    parts (``"sensitivity"``, ``"search"``) that the job puts into :attr:`results` itself.

    Usage::

        job = JobResults(recipe, out_dir, RunKind.SENSITIVITY)
        job.save()
        with job.recording():
            ds = load_recipe_dataset(recipe, job.results, progress)
    """

    def __init__(self, recipe: Recipe, out_dir: str | Path, kind: RunKind):
        self.folder = RunFolder(out_dir)
        self.folder.path.mkdir(parents=True, exist_ok=True)
        self.started = time.perf_counter()
        self.results: dict[str, Any] = {
            "kind": kind.value, "recipe": recipe.to_dict(), "versions": _tf.library_versions(), "created": _now(),
            "status": RunStatus.RUNNING.value, "dataset": None, "baseline": None, "reference": None, "variants": []}

    def _mark(self, status: RunStatus, error: str | None = None) -> None:
        self.results["status"] = status.value
        if error is not None:
            self.results["error"] = error

    def save(self) -> None:
        from .._io import atomic_write_json

        self.results["elapsed_seconds"] = round(time.perf_counter() - self.started, 3)
        atomic_write_json(self.folder.results_file, self.results)


def _record(results: ResultsWriter | dict[str, Any], **parts) -> None:
    """Put typed parts into the run's results (a :class:`ResultsWriter`, or a plain results.json dict)."""
    if isinstance(results, ResultsWriter):
        results.update(**parts)
    else:
        results.update({key: part.to_dict() for key, part in parts.items()})


def _parts(results: ResultsWriter | dict[str, Any]) -> dict[str, Any]:
    """The run's dataset, baseline and reference so far (what the result cache keeps of a baseline)."""
    if isinstance(results, ResultsWriter):
        return {key: getattr(results.results, key) for key in ("dataset", "baseline", "reference")}
    return results


def load_recipe_dataset(recipe: Recipe, results: ResultsWriter | dict[str, Any], progress: ProgressFn | None = None):
    """Load the recipe's dataset (seeded) and describe it in the results' ``dataset``."""
    from ..inputs.data import load_dataset

    emit(progress, Progress(phase="data", fraction=0.0, message=f"loading {recipe.dataset.name}"))
    d = recipe.dataset
    try:  # numpy only (its own seeded generator): overlaps TensorFlow's import (_tf.import_in_background)
        ds = load_dataset(d.name, path=d.path, max_train=d.max_train, max_test=d.max_test, seed=recipe.seed,
                          layout=d.layout)
    finally:  # an error's sentence must not go to the import's silenced stderr
        _tf.wait_for_tensorflow()
    _tf.set_seed(recipe.seed)
    if recipe.model.path is not None:  # the uploaded model decides the layout (axes, integer ids)
        from ..inputs.data import fit_to_model
        from ..inputs.safe_load import model_input_spec

        spec = model_input_spec(recipe.model.path)
        if spec is not None:
            ds = fit_to_model(ds, *spec)
    _record(results, dataset=DatasetInfo(
        name=ds.name, input_shape=tuple(ds.input_shape), num_classes=ds.num_classes, n_train=int(len(ds.x_train)),
        n_test=int(len(ds.x_test)), class_names=tuple(ds.class_names), kind=ds.kind, notes=tuple(ds.notes)))
    return ds


def prepare_baseline(recipe: Recipe, ds, out: str | Path | RunFolder, results: ResultsWriter | dict[str, Any],
                     progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None,
                     fraction_span=(0.0, 0.1), reuse=None, keep_exports: bool = False,
                     defer: Callable[[Callable[[], None]], None] | None = None, refuse_at_chance: str | None = None):
    """Get the baseline, save it with its predictions and kernels, convert the float32 reference.

    Fills the results' ``baseline`` and ``reference``; shared by recipes, sensitivity and search runs.
    With ``reuse`` (a :class:`compression.run.cache.Reuse`) an identical earlier baseline is restored instead
    (no training, no reference conversion), and a fresh one is recorded for later runs. With
    ``keep_exports`` the returned stage cache keeps its last SavedModel export (close it at the end).
    With ``defer``, the reference conversion and the cache record are not made here: ``defer(call)`` is
    given them as one call to make later (a recipe run queues it first in its row writer, which is
    idle while the first fine-tune starts); ``reference`` is filled when it has run.
    With ``refuse_at_chance`` (why the run means nothing against such a baseline), a baseline at chance is
    refused with a :class:`CompressionError` (recorded in ``results``) instead of a warning (not with ``reuse``,
    which recipe runs alone pass: they warn).

    Returns:
        (baseline model, its test-set predictions, the stage cache holding the reference conversion).
    """
    from ..inputs.models import clone
    from ..measure.litert import baseline_flags, chance_accuracy
    from ..measure.weight_stats import layer_kernels
    from ..techniques.train import predict_classes
    from ..tflite.convert import gzip_size

    folder = out if isinstance(out, RunFolder) else RunFolder(out)
    entry = reuse.lookup_baseline() if reuse is not None else None
    if entry is not None:
        return _restored_baseline(recipe, folder, results, reuse, entry, progress, fraction_span, keep_exports)
    baseline, base_info = get_baseline(recipe, ds, progress, cancel, fraction_span=fraction_span)
    # Without the optimizer state (it doubles a trained model's file and is never read back): the .keras format
    # has no include_optimizer, so save an uncompiled copy.
    folder.save_baseline_model(clone(baseline))
    reference_predictions = predict_classes(baseline, ds.x_test)
    folder.save_predictions("labels", ds.y_test)
    folder.save_predictions("baseline", reference_predictions)
    folder.save_weights("baseline", layer_kernels(baseline))
    cache = _StageCache(keep_exports=keep_exports)
    accuracy = float(np.mean(reference_predictions == ds.y_test))
    info = BaselineInfo(source=base_info["source"], history=base_info["history"], accuracy=accuracy,
                        params=int(baseline.count_params()), model_file=folder.baseline_model.name,
                        flags=tuple(map(Flag.from_dict, baseline_flags(reference_predictions, ds.y_test))))
    _record(results, baseline=info)
    if refuse_at_chance and any(flag.code == "baseline_at_chance" for flag in info.flags):
        raise CompressionError(
            f"The baseline is at chance ({accuracy:.1%} test accuracy, chance {chance_accuracy(ds.y_test):.1%}): "
            f"{refuse_at_chance}; train the baseline first (more epochs, or enough steps to settle the "
            "BatchNormalization statistics of a model built with weights=None).")
    for flag in info.flags:
        log.warning("baseline: %s", flag.message)

    def reference() -> None:
        ref = cache.convert(baseline, QuantizationMode.FLOAT32, ds)
        _record(results, reference=Reference(size_bytes=len(ref), gzip_bytes=gzip_size(ref), accuracy=accuracy))
        if reuse is not None:
            reuse.record_baseline(_parts(results))

    if defer is None:
        reference()
    else:
        cache.export(baseline)
        defer(reference)
    emit(progress, Progress(phase="baseline_done", fraction=fraction_span[1],
                            message=f"baseline accuracy {accuracy:.4f}", data={"baseline": info.to_dict()}))
    return baseline, reference_predictions, cache


def _restored_baseline(recipe: Recipe, folder: RunFolder, results: ResultsWriter | dict[str, Any], reuse, entry,
                       progress, fraction_span, keep_exports: bool = False):
    """The cached baseline of an identical earlier run: its files copied here, its model loaded from them."""
    from ..inputs.safe_load import load_user_model
    from ..techniques.train import compile_for_training

    payload = reuse.restore_baseline(entry)
    model = load_user_model(folder.baseline_model, max_bytes=RUN_BASELINE_MAX_BYTES)
    compile_for_training(model, recipe.baseline.learning_rate)
    info = dataclasses.replace(BaselineInfo.from_dict(payload["baseline"]), reused_from=entry.run_id)
    _record(results, baseline=info, reference=Reference.from_dict(payload["reference"]))
    emit(progress, Progress(phase="baseline_done", fraction=fraction_span[1],
                            message=f"baseline accuracy {info.accuracy:.4f} (reused from run {entry.run_id})",
                            data={"baseline": info.to_dict()}))
    return model, folder.load_predictions("baseline").astype(np.int64), _StageCache(keep_exports=keep_exports)


# ---------------------------------------------------------------- variants


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


def _variant_row(spec: VariantSpec, status: RunStatus = RunStatus.RUNNING, error: str | None = None
                 ) -> VariantResult:
    return VariantResult(
        name=spec.name, status=status, error=error, settings=spec.to_dict(),
        techniques=tuple(spec.techniques), quantization=spec.quantization.value,
        sparse_encoding=spec.sparse_encoding,
    )


def run_variant(spec: VariantSpec, baseline, ds, recipe: Recipe, out: str | Path | RunFolder,
                reference_predictions: np.ndarray, cache: _StageCache | None = None,
                progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None,
                fraction_span=(0.0, 1.0)) -> VariantResult:
    """Build, convert and measure one variant; write its `.tflite`, kernels and predictions. Raises on failure.

    Returns:
        The variant's :class:`VariantResult` (status ok).
    """
    built = _build_variant(spec, baseline, ds, recipe, cache, progress, cancel, fraction_span)
    row, tflm = _measure_variant(built, ds, recipe, out, reference_predictions, cache, progress, defer_tflm=False)
    return row


@dataclasses.dataclass
class _Built:
    """A variant's model after its techniques (the fine-tunes), waiting for conversion and measurement."""

    spec: VariantSpec
    model: Any
    info: dict
    is_baseline: bool
    fine_tune_seconds: float
    span: tuple[float, float]


def _build_variant(spec, baseline, ds, recipe: Recipe, cache, progress, cancel, fraction_span) -> _Built:
    lo, hi = fraction_span
    t0 = time.perf_counter()
    model, info = build_variant_model(spec, baseline, ds, recipe.seed, cache, progress, cancel,
                                      fraction_span=(lo, lo + (hi - lo) * 0.85))
    seconds = time.perf_counter() - t0
    if cancel is not None and cancel():
        raise Cancelled("cancelled")
    return _Built(spec, model, info, model is baseline, seconds, (lo, hi))


def _measure_variant(built: _Built, ds, recipe: Recipe, out, reference_predictions, cache, progress,
                     defer_tflm: bool, quiet=None):
    """Convert and measure a built variant, write its files; the row, and the TFLM call still to make (or None).

    With ``defer_tflm`` the TensorFlow Lite Micro measurement is returned as a call instead of made: the row
    then says ``measuring=("tflm",)`` and the caller fills it in (:func:`_with_tflm`). ``quiet`` is passed to
    :func:`~compression.measure.litert.measure_tflite` (a :class:`TrainingGate`'s, in a run's row writer).
    """
    from ..measure.litert import measure_tflite
    from ..measure.weight_stats import layer_kernels, layer_weight_stats, overall_sparsity
    from ..tflite.convert import gzip_size

    spec, model, info = built.spec, built.model, built.info
    folder = out if isinstance(out, RunFolder) else RunFolder(out)
    lo, hi = built.span
    emit(progress, Progress(phase="convert", variant=spec.name, fraction=lo + (hi - lo) * 0.87,
                            message=f"converting to {spec.quantization.value}"))
    t1 = time.perf_counter()
    cache = cache or _StageCache()
    data = cache.convert(model, spec.quantization, ds, sparse=spec.sparse_encoding,
                         samples=spec.representative_samples, seed=recipe.seed)
    stripped_note = None
    if spec.strip_strings:
        from ..tflite.convert import strip_strings

        full, data = len(data), strip_strings(data)
        stripped_note = (f"strings stripped: {full:,} → {len(data):,} bytes (no tensor names or signature in "
                         "the file: invoke it by input index)")
    t2 = time.perf_counter()
    stem = file_stem(spec.name)
    from .._io import atomic_write_bytes

    atomic_write_bytes(folder.tflite_for_stem(stem), data)
    emit(progress, Progress(phase="measure", variant=spec.name, fraction=lo + (hi - lo) * 0.93,
                            message="measuring accuracy and latency"))
    ev = recipe.evaluation
    m = measure_tflite(data, ds.x_test, ds.y_test, reference_predictions=reference_predictions, threads=ev.threads,
                       latency_runs=ev.latency_runs, throughput_batch=ev.throughput_batch, quiet=quiet)
    t3 = time.perf_counter()
    tflm, measuring, deferred = None, (), None
    if ev.tflm:  # in a child process: a TFLM crash fails this measurement only
        from functools import partial

        from ..measure.tflm import measure_tflm

        call = partial(measure_tflm, data, ds.x_test, ds.y_test, litert_predictions=m["predictions"],
                       max_samples=ev.tflm_max_samples, seed=recipe.seed)
        if defer_tflm:
            deferred, measuring = call, ("tflm",)
        else:
            emit(progress, Progress(phase="measure", variant=spec.name, fraction=lo + (hi - lo) * 0.96,
                                    message="measuring under TensorFlow Lite Micro (arena, flash)"))
            tflm = call()
    stats = layer_weight_stats(model)
    kernels = layer_kernels(model)
    if not built.is_baseline:  # a post-training variant's kernels are the baseline's: RunFolder.kernels refers there
        folder.save_weights(stem, kernels)
    if info.get("snapshots"):
        from ..techniques.pruning import save_snapshots

        save_snapshots(folder.pruning_steps(stem), info["snapshots"])
    if info.get("centroids"):
        from ..techniques.clustering import save_centroids

        save_centroids(folder.cluster_steps(stem), info["centroids"])
    folder.save_predictions(stem, m["predictions"])
    notes = list(info["notes"]) + lost_notes(info.get("kept"), kernels) + (
        [stripped_note] if stripped_note else [])
    if spec.quantization is QuantizationMode.INT16X8:
        notes.append("int16x8 is not delegated to XNNPACK: expect it to run 20–40× slower than int8 on CPU")
    if m["delegate"] == "none" and m["delegate_note"]:
        notes.append(f"ran without XNNPACK: {m['delegate_note']}")
    row = dataclasses.replace(
        _variant_row(spec, RunStatus.OK),
        tflite=folder.tflite_for_stem(stem).name, size_bytes=len(data), gzip_bytes=gzip_size(data),
        accuracy=m["accuracy"], agreement=m["agreement"], flags=tuple(map(Flag.from_dict, m["flags"])),
        top_class_share=m["top_class_share"], latency=Latency.from_dict(m["latency_ms"]),
        throughput_sps=m["throughput_sps"], throughput_batch=m["throughput_batch"],
        sparsity=overall_sparsity(stats), layers=tuple(LayerStat.from_dict(x) for x in stats),
        input_dtype=m["input_dtype"], output_dtype=m["output_dtype"], delegate=m["delegate"],
        delegate_note=m["delegate_note"], ops=tuple(m["ops"]), params=int(model.count_params()),
        float_layers=tuple(info["float_layers"]), notes=tuple(notes), schedule=info["schedule"],
        history=info["history"], distillation=info.get("distillation"), scheme=info.get("scheme"), tflm=tflm,
        measuring=measuring,
        timings=Timings(fine_tune=round(built.fine_tune_seconds, 3), convert=round(t2 - t1, 3),
                        measure=round(t3 - t2, 3)),
    )
    return row, deferred


def values_per_channel(kernel: np.ndarray) -> int:
    """Distinct values in a kernel's most varied output channel (last axis).

    A clustered layer keeps its k values per channel whether its centroids are the layer's (clustering) or,
    as CQAT trains a Conv2D's, each channel's own: the whole kernel then holds up to k × channels values.
    """
    kernel = np.asarray(kernel)
    flat = kernel.reshape(-1, kernel.shape[-1]) if kernel.ndim > 1 else kernel.reshape(-1, 1)
    return max(int(np.unique(flat[:, c]).size) for c in range(flat.shape[1]))


def lost_notes(kept: dict | None, kernels: dict[str, np.ndarray]) -> list[str]:
    """One sentence per layer whose zeros (after pruning) or distinct values (after clustering) a later stage lost.

    ``kept`` is what the stages left: ``{"zeros": {layer: sparsity}, "values": {layer: distinct values in its
    most varied channel}}``; ``kernels`` the final model's :func:`compression.measure.weight_stats.layer_kernels`. A
    variant's settings say what was asked; these notes say where the model does not hold it (a QAT scheme that
    did not preserve it).
    """
    notes = []
    for name, sparsity in (kept or {}).get("zeros", {}).items():
        if name in kernels and (now := float(np.mean(kernels[name] == 0))) < sparsity - 0.01:
            notes.append(f"'{name}' lost zeros after pruning: {sparsity:.1%} after pruning, {now:.1%} in the "
                         "final model")
    for name, values in (kept or {}).get("values", {}).items():
        if name in kernels and (now := values_per_channel(kernels[name])) > values:
            notes.append(f"'{name}' lost its clusters: at most {values} distinct values per channel after "
                         f"clustering, up to {now:,} in the final model")
    return notes


def _with_tflm(row: VariantResult, call) -> VariantResult:
    """The row with its deferred TensorFlow Lite Micro measurement made."""
    try:
        return row.replace(tflm=call(), measuring=())
    except Exception as exc:  # noqa: BLE001 - measure_tflm reports TFLM's own failures; this is a bug
        log.exception("variant %s: the TFLite Micro measurement failed", row.name)
        return row.replace(measuring=(), notes=(*row.notes, f"TFLite Micro measurement failed: {one_line(exc)}"))


class _Monotonic:
    """A progress callback whose fractions never go back (the row writer reports variant i after the main
    thread started variant i+1); thread-safe."""

    def __init__(self, progress: ProgressFn):
        self.progress, self.highest, self._lock = progress, 0.0, threading.Lock()

    def __call__(self, event: Progress) -> None:
        with self._lock:
            if event.fraction < self.highest:
                event = dataclasses.replace(event, fraction=self.highest)
            self.highest = event.fraction
            self.progress(event)


class TrainingGate:
    """Pauses a run's fine-tune while its row writer takes a timing (host latency and throughput).

    On 2 cores a timing taken beside a fine-tune measures the fine-tune: the seed CNN's 8 µs float32 invoke
    was timed at 210 µs. The main thread polls :meth:`checkpoint` after every training batch (with the
    run's cancel poll) and counts as training only inside :meth:`working`; the row writer's
    ``with gate.quiet():`` waits until the trainer is parked at a checkpoint (or done), runs its block
    alone, then lets the training go on. Usage::

        with gate.working():            # main thread
            fit(..., cancel=lambda: gate.checkpoint() or cancelled())
        with gate.quiet():              # row writer
            time_the_interpreter()
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._requests = 0
        self._parked = False
        self._working = False

    @contextlib.contextmanager
    def working(self):
        with self._cond:
            self._working = True
        try:
            yield self
        finally:
            self.finish()

    def finish(self) -> None:
        """The trainer is done (or about to wait for the row writer): no pause is waited for any more."""
        with self._cond:
            self._working = False
            self._cond.notify_all()

    def checkpoint(self) -> None:
        """Called by the trainer between batches: parks while a timing runs."""
        with self._cond:
            if not self._requests:
                return
            self._parked = True
            self._cond.notify_all()
            while self._requests:
                self._cond.wait()
            self._parked = False

    @contextlib.contextmanager
    def quiet(self):
        with self._cond:
            self._requests += 1
            while self._working and not self._parked:
                self._cond.wait()
        try:
            yield
        finally:
            with self._cond:
                self._requests -= 1
                self._cond.notify_all()


class _Pipeline:
    """A run's rows written in order by one thread, while this (the main) thread fine-tunes the next variant.

    The main thread trains a variant (the fine-tunes) and hands it over; this pipeline's thread exports its
    SavedModel, converts it (in the isolation child), measures it with LiteRT (its timings while the
    fine-tune pauses: :class:`TrainingGate`), writes its files and
    its row as soon as accuracy and size are known (``measuring=("tflm",)``), then measures it under
    TensorFlow Lite Micro (another child) and rewrites the row complete, recording it in the result cache.
    On 2 cores the conversion and measurements of one variant overlap the next variant's training (what a
    sequential script pays one after the other). Rows go through the same queue in recipe order: restored
    and failed rows too. Only this thread writes ``run`` until :meth:`close`.
    """

    def __init__(self, run: ResultsWriter, reuse, progress: ProgressFn | None, total: float):
        from concurrent.futures import ThreadPoolExecutor

        self.run, self.reuse, self.progress, self.total = run, reuse, progress, total
        self._pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="compression-rows")
        self._futures: list[Any] = []
        self.failure: Exception | None = None  # a failed :meth:`first` job: the run fails with it
        self.gate = TrainingGate()  # the main thread's fine-tunes pause while this thread times a model

    def first(self, call: Callable[[], None]) -> None:
        """A job ahead of the rows (the baseline's deferred reference conversion). If it raises, the
        exception is kept in :attr:`failure` (the main thread fails the run with it) instead of raised here."""
        self._futures.append(self._pool.submit(self._guarded, call))

    def _guarded(self, call: Callable[[], None]) -> None:
        try:
            call()
        except Exception as exc:  # noqa: BLE001 - handed to the main thread, which fails the run with it
            self.failure = exc

    def check(self, run: ResultsWriter) -> None:
        """Fail the run (results.json says why) if a :meth:`first` job failed."""
        if self.failure is not None:
            self.drain()
            with run.recording():
                raise self.failure

    def row(self, spec: VariantSpec, row: VariantResult, fraction: float, record: bool = False) -> None:
        """Write a finished row (restored from the cache, or failed) in its turn."""
        self._futures.append(self._pool.submit(self._write, spec, row, fraction, None, record))

    def measure(self, built: _Built, started: float, measure: Callable[[], tuple]) -> None:
        """Convert and measure a built variant in its turn; ``measure()`` gives (row, deferred TFLM call)."""
        self._futures.append(self._pool.submit(self._measure, built, started, measure))

    def _measure(self, built: _Built, started: float, measure) -> None:
        spec = built.spec
        try:
            row, deferred = measure()
        except CompressionError as exc:
            row, deferred = _variant_row(spec, RunStatus.FAILED, str(exc)), None
        except Exception as exc:  # noqa: BLE001 - one variant's bug must not lose the others
            log.exception("variant %s failed", spec.name)
            row, deferred = _variant_row(spec, RunStatus.FAILED, one_line(exc)), None
        self._write(spec, row.replace(seconds=round(time.perf_counter() - started, 3)), built.span[1], deferred,
                    row.ok)

    def _write(self, spec, row: VariantResult, fraction: float, deferred, record: bool) -> None:
        self.run.add(row)
        self.run.save()
        emit(self.progress, Progress(phase="variant_done", variant=spec.name, fraction=fraction,
                                     message=f"{spec.name}: {row.status.value}", data={"row": row.to_dict()}))
        if deferred is not None:
            row = _with_tflm(row, deferred)
            self.run.add(row)
            self.run.save()
        if record and self.reuse is not None:
            self.reuse.record_variant(spec, row)

    def drain(self) -> None:
        """Wait until every handed-over variant's row is written (re-raises a writer's own failure).

        The caller's training is over from here (a timing must not wait for a checkpoint that never comes).
        """
        self.gate.finish()
        futures, self._futures = self._futures, []
        for future in futures:
            future.result()

    def close(self) -> None:
        try:
            self.drain()
        finally:
            self._pool.shutdown(wait=True)


# ---------------------------------------------------------------- the whole recipe


def run_recipe(recipe: Recipe | dict, out_dir: str | Path, progress: ProgressFn | None = None,
               cancel: Callable[[], bool] | None = None, cache=None, executor=None):
    """Run every variant of a recipe and write results.json plus one `.tflite` per variant.

    Args:
        recipe: a :class:`Recipe` or its dict form.
        out_dir: folder for results.json, the `.tflite` files, baseline.keras, weights/ and predictions/.
        progress: receives :class:`Progress` events (``variant_done`` carries the row in ``data["row"]``).
        cancel: polled between batches and stages; when it returns True the run stops with :class:`Cancelled`.
        cache: a :class:`compression.run.cache.ResultCache` to reuse identical earlier work from and record this
            run's into; None takes the cache of the store holding ``out_dir`` (none outside a store), False
            uses none. ``recipe.evaluation.recompute`` forces fresh work (still recorded).
        executor: where the variants run (:mod:`compression.run.executors`): None takes
            ``COMPRESSION_LAB_RAY_ADDRESS`` (unset: in this process, in order; set: Ray tasks).

    Returns:
        The results table (:func:`results_table`).

    Raises:
        CompressionError: the dataset or model cannot be loaded (variant errors are recorded, not raised).
        Cancelled: cancel() returned True; finished variants are kept in results.json.
    """
    if not isinstance(recipe, Recipe):
        recipe = Recipe.from_dict(recipe)
    folder = RunFolder(out_dir)
    folder.path.mkdir(parents=True, exist_ok=True)
    run = ResultsWriter(folder, RunResults(recipe=recipe.to_dict(), versions=_tf.library_versions(),
                                           created=_now(), status=RunStatus.RUNNING))
    run.save()
    reuse = _open_reuse(recipe, folder.path, cache)
    if reuse is not None and reuse.complete():
        return _replay(recipe, reuse, run, progress)
    from ..isolation import shared_pool

    # The conversion child imports TensorFlow while this process loads the data and trains the baseline,
    # instead of at the first conversion (a no-op when it is already warm, as in the app's spare worker).
    shared_pool().warm()
    _tf.import_in_background()
    with run.recording():
        ds = load_recipe_dataset(recipe, run, progress)
        base_weight, weights = progress_weights(recipe, len(ds.x_train))
        total = base_weight + sum(weights)
        base_end = base_weight / total
        deferred: list[Callable[[], None]] = []  # the reference conversion: the row writer's first job
        baseline, reference_predictions, stages = prepare_baseline(recipe, ds, folder, run, progress, cancel,
                                                                   fraction_span=(0.0, base_end), reuse=reuse,
                                                                   keep_exports=True, defer=deferred.append)
        run.save()

    try:
        if executor is None:
            from .executors import executor_from_environment

            with executor_from_environment() as chosen:
                return _run_recipe_variants(recipe, run, ds, baseline, reference_predictions, stages,
                                            reuse, base_weight, weights, total, progress, cancel, chosen, deferred)
        return _run_recipe_variants(recipe, run, ds, baseline, reference_predictions, stages, reuse,
                                    base_weight, weights, total, progress, cancel, executor, deferred)
    finally:
        stages.close()


def _run_recipe_variants(recipe, run: ResultsWriter, ds, baseline, reference_predictions, stages, reuse,
                         base_weight, weights, total, progress, cancel, executor, deferred=()):
    if not executor.in_process:
        with run.recording():
            for call in deferred:
                call()
        run.save()
        _run_remote_variants(executor, recipe, run, ds, reference_predictions, reuse, base_weight,
                             weights, total, progress, cancel)
        return _finish(run, progress)
    progress = _Monotonic(progress) if progress is not None else None
    pipeline = _Pipeline(run, reuse, progress, total)
    for call in deferred:
        pipeline.first(call)
    try:
        _run_local_variants(recipe, run, ds, baseline, reference_predictions, stages, reuse, base_weight, weights,
                            total, progress, cancel, pipeline)
        pipeline.drain()
        pipeline.check(run)
    finally:
        pipeline.close()
    return _finish(run, progress)


def _run_local_variants(recipe, run: ResultsWriter, ds, baseline, reference_predictions, stages, reuse,
                        base_weight, weights, total, progress, cancel, pipeline: _Pipeline) -> None:
    """Each variant's fine-tunes here, in order; its conversion, measurement and row in ``pipeline``.

    The fine-tunes pause at a batch's end while the row writer times a model (:class:`TrainingGate`).
    """
    with pipeline.gate.working():
        _run_local_loop(recipe, run, ds, baseline, reference_predictions, stages, reuse, base_weight, weights,
                        total, progress, cancel, pipeline)


def _run_local_loop(recipe, run: ResultsWriter, ds, baseline, reference_predictions, stages, reuse,
                    base_weight, weights, total, progress, cancel, pipeline: _Pipeline) -> None:
    folder = run.folder
    done = base_weight
    gate = pipeline.gate

    def gated_cancel() -> bool:
        gate.checkpoint()
        return bool(cancel is not None and cancel())

    for i, spec in enumerate(recipe.variants):
        span = (done / total, (done + weights[i]) / total)
        done += weights[i]
        pipeline.check(run)
        if cancel is not None and cancel():
            _cancel_rest(run, pipeline, recipe.variants[i:])
        emit(progress, Progress(phase="variant_start", variant=spec.name, fraction=span[0],
                                message=f"variant {i + 1}/{len(recipe.variants)}: {spec.name}"))
        t0 = time.perf_counter()
        try:
            restored = reuse.restore_variant(spec) if reuse is not None else None
            if restored is not None:
                pipeline.row(spec, restored.replace(seconds=round(time.perf_counter() - t0, 3)), span[1])
                continue
            built = _build_variant(spec, baseline, ds, recipe, stages, progress, gated_cancel, span)
        except Cancelled:
            _cancel_rest(run, pipeline, recipe.variants[i:])
        except CompressionError as exc:
            pipeline.row(spec, _variant_row(spec, RunStatus.FAILED, str(exc)).replace(
                seconds=round(time.perf_counter() - t0, 3)), span[1])
            continue
        except Exception as exc:  # noqa: BLE001 - one variant's bug must not lose the others
            log.exception("variant %s failed", spec.name)
            pipeline.row(spec, _variant_row(spec, RunStatus.FAILED, one_line(exc)).replace(
                seconds=round(time.perf_counter() - t0, 3)), span[1])
            continue
        pipeline.measure(built, t0, lambda b=built: _measure_variant(
            b, ds, recipe, folder, reference_predictions, stages, None, defer_tflm=True, quiet=gate.quiet))


def _cancel_rest(run: ResultsWriter, pipeline: _Pipeline, remaining) -> None:
    """Let the handed-over variants finish, mark the rest cancelled, stop the run."""
    pipeline.drain()
    _mark_cancelled(run, remaining)
    run.save()
    raise Cancelled("cancelled")


def _finish(run: ResultsWriter, progress):
    """The run's final status from its rows; the results table."""
    variants = run.results.variants
    if any(v.ok for v in variants):
        run.update(status=RunStatus.OK)
    else:
        run.update(status=RunStatus.FAILED,
                   error="every variant failed: " + "; ".join(f"{v.name}: {v.error}" for v in variants))
    run.save()
    emit(progress, Progress(phase="done", fraction=1.0,
                            message=f"finished in {run.results.elapsed_seconds:.1f} s"))
    return results_table(run.results)


def _run_remote_variants(executor, recipe, run: ResultsWriter, ds, reference_predictions, reuse, base_weight,
                         weights, total, progress, cancel) -> None:
    """The variants as tasks of ``executor`` (Ray); each row and its files are written as it finishes.

    Variants the result cache holds are restored here, as in a local run; the others become tasks.
    """
    from .executors import write_outcome_files

    folder = run.folder
    order = {spec.name: i for i, spec in enumerate(recipe.variants)}
    done = [base_weight]

    def in_order() -> None:
        run.update(variants=tuple(sorted(run.results.variants, key=lambda v: order.get(v.name, len(order)))))

    def record(spec, row: VariantResult):
        run.add(row)
        in_order()
        run.save()
        done[0] += weights[order[spec.name]]
        emit(progress, Progress(phase="variant_done", variant=spec.name, fraction=done[0] / total,
                                message=f"{spec.name}: {row.status.value}", data={"row": row.to_dict()}))

    def on_start(spec):
        emit(progress, Progress(phase="variant_start", variant=spec.name, fraction=done[0] / total,
                                message=f"variant {order[spec.name] + 1}/{len(recipe.variants)}: {spec.name} "
                                        "(submitted)"))

    def on_done(outcome):
        write_outcome_files(folder, outcome)
        row = VariantResult.from_dict({**_variant_row(outcome.spec).to_dict(), **outcome.row,
                                       "seconds": outcome.seconds})
        if reuse is not None and row.ok:
            reuse.record_variant(outcome.spec, row)
        record(outcome.spec, row)

    remote = []
    for spec in recipe.variants:
        reused = reuse.restore_variant(spec) if reuse is not None else None
        if reused is None:
            remote.append(spec)
        else:
            record(spec, reused)
    try:
        if remote:
            executor.run_variants(recipe, remote, folder.baseline_model, ds, reference_predictions, on_done, cancel,
                                  on_start)
    except Cancelled:
        finished = {v.name for v in run.results.variants}
        _mark_cancelled(run, [s for s in recipe.variants if s.name not in finished])
        in_order()
        run.save()
        raise
    except CompressionError as exc:
        finished = {v.name for v in run.results.variants}
        for spec in recipe.variants:
            if spec.name not in finished:
                run.add(_variant_row(spec, RunStatus.FAILED, str(exc)))
        in_order()
        run.update(status=RunStatus.FAILED, error=str(exc))
        run.save()
        raise


def _open_reuse(recipe: Recipe, out: Path, cache):
    """This run's :class:`compression.run.cache.Reuse`, or None without a cache."""
    if cache is False:
        return None
    from .cache import ResultCache

    cache = cache if cache is not None else ResultCache.for_run_folder(out)
    return cache.session(recipe, out) if cache is not None else None


def _replay(recipe: Recipe, reuse, run: ResultsWriter, progress: ProgressFn | None):
    """Every part of the run is cached: copy the files and rows in, no dataset, no TensorFlow."""
    entry = reuse.lookup_baseline()
    payload = reuse.restore_baseline(entry)
    baseline = dataclasses.replace(BaselineInfo.from_dict(payload["baseline"]), reused_from=entry.run_id)
    run.update(dataset=DatasetInfo.from_dict(payload["dataset"]), baseline=baseline,
               reference=Reference.from_dict(payload["reference"]))
    run.save()
    emit(progress, Progress(phase="baseline_done", fraction=0.05, message=f"baseline reused from run {entry.run_id}",
                            data={"baseline": baseline.to_dict()}))
    n = len(recipe.variants)
    for i, spec in enumerate(recipe.variants):
        t0 = time.perf_counter()
        emit(progress, Progress(phase="variant_start", variant=spec.name, fraction=0.05 + 0.95 * i / n,
                                message=f"variant {i + 1}/{n}: {spec.name}"))
        row = reuse.restore_variant(spec).replace(seconds=round(time.perf_counter() - t0, 3))
        run.add(row)
        run.save()
        emit(progress, Progress(phase="variant_done", variant=spec.name, fraction=0.05 + 0.95 * (i + 1) / n,
                                message=f"{spec.name}: ok (reused from run {row.reused_from})",
                                data={"row": row.to_dict()}))
    run.update(status=RunStatus.OK)
    run.save()
    emit(progress, Progress(phase="done", fraction=1.0,
                            message=f"finished in {run.results.elapsed_seconds:.1f} s"))
    return results_table(run.results)


def _mark_cancelled(run: ResultsWriter, remaining) -> None:
    run.update(status=RunStatus.CANCELLED)
    for spec in remaining:
        run.add(_variant_row(spec, RunStatus.CANCELLED, "cancelled"))


def load_results(out_dir: str | Path) -> RunResults:
    """Read a run folder's results.json.

    Raises:
        CompressionError: the folder has no results.json, or it is not valid JSON.
    """
    results = RunFolder(out_dir).read_results()
    if results is None:
        raise CompressionError(f"No results.json in {out_dir}.")
    return results
