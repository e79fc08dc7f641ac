"""Run a recipe: baseline → every variant (techniques → convert → measure) → results.

One variant failing never loses the others: it is recorded ``failed`` with its
reason. ``results.json`` is rewritten atomically after each variant, so a reader
(the app, the runner) sees finished variants while the rest still run. Every
stage starts from ``recipe.seed``, so the same recipe gives the same table.

Usage::

    table = run_recipe(Recipe.experiment_e(), "out/")      # a pandas DataFrame
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Callable
from pathlib import Path

from .. import _tf
from ..config import Recipe
from ..errors import CompressionError, one_line
from ..progress import Cancelled, Progress, ProgressFn, emit
from ..results import (
    BaselineInfo,
    DatasetInfo,
    Reference,
    RunResults,
    RunStatus,
    VariantResult,
    results_table,
)
from ..run_folder import RunFolder
from .baseline import load_recipe_dataset, prepare_baseline
from .pipeline import _Monotonic, _Pipeline
from .stages import progress_weights
from .variant import _build_variant, _measure_variant, _variant_row, write_outcome_files
from .writers import ResultsWriter, _now

__all__ = [
    "load_results",
    "run_recipe",
]

log = logging.getLogger("compression")


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
