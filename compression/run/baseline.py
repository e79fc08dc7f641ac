"""The dataset and the baseline every job starts from: load the recipe's dataset (seeded), get or train the
baseline, export its float32 reference, or restore both from the result cache."""


import dataclasses
import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .. import _tf
from ..config import QuantizationMode, Recipe
from ..errors import CompressionError
from ..inputs.models import check_compatible
from ..progress import Progress, ProgressFn, emit
from ..results import (
    BaselineInfo,
    DatasetInfo,
    Flag,
    Reference,
)
from ..run_folder import RunFolder
from .stages import _StageCache
from .writers import ResultsWriter, _parts, _record

__all__ = [
    "RUN_BASELINE_MAX_BYTES",
    "get_baseline",
    "load_recipe_dataset",
    "prepare_baseline",
]

log = logging.getLogger("compression")


RUN_BASELINE_MAX_BYTES = 4 * 2**30  # a run's own baseline.keras: bounded only against a runaway file

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
        from ..inputs.layout import fit_to_model
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
