"""One variant, built and measured: fine-tune its stages, convert, measure under LiteRT and TensorFlow Lite
Micro, and describe it as a ``VariantResult`` row (with notes on what a later stage lost). Used by a recipe
run, the executors' remote tasks and the search's trials."""


import dataclasses
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from ..config import QuantizationMode, Recipe, VariantSpec
from ..errors import one_line
from ..progress import Cancelled, Progress, ProgressFn, emit
from ..results import (
    Flag,
    Latency,
    LayerStat,
    RunStatus,
    Timings,
    VariantResult,
    file_stem,
)
from ..run_folder import RunFolder
from .stages import _StageCache, build_variant_model, values_per_channel

__all__ = [
    "VariantOutcome",
    "lost_notes",
    "run_variant",
    "write_outcome_files",
]

log = logging.getLogger("compression")


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


@dataclass(frozen=True)
class VariantOutcome:
    """How one remote variant ended: its row (ok or failed with ``error``) and its files.

    ``files`` maps ``"tflite"`` / ``"weights"`` / ``"predictions"`` to the bytes the
    task wrote for the variant's file stem; ``seconds`` is the task's own time (TensorFlow
    import and baseline load included, queueing not); ``where`` names the node and process;
    ``threads`` the TensorFlow thread pools the task ran with.
    """

    spec: VariantSpec
    row: dict[str, Any]
    files: dict[str, bytes]
    seconds: float
    where: str = ""
    threads: dict[str, Any] | None = None


def write_outcome_files(folder, outcome: VariantOutcome) -> None:
    """Write the files a task returned into the run folder (a :class:`~compression.run_folder.RunFolder`)."""
    from .._io import atomic_write_bytes
    from ..results import file_stem

    stem = file_stem(outcome.spec.name)
    for kind, path in (("tflite", folder.tflite_for_stem(stem)), ("weights", folder.weights(stem)),
                       ("predictions", folder.predictions(stem))):
        if kind in outcome.files:
            atomic_write_bytes(path, outcome.files[kind])
