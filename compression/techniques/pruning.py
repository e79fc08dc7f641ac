"""Magnitude pruning with tfmot: wrap → fine-tune → strip.

Usage::

    pruned, info = prune(baseline, PruningConfig(final_sparsity=0.8), x, y, epochs=2)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import _tf
from ..config import PruningConfig, ScheduleKind
from ..errors import CompressionError
from ..inputs.models import check_layer_names, clone
from ..progress import ProgressFn
from .train import compile_for_training, fit, steps_per_epoch


def applied_schedule(config: PruningConfig, total_steps: int) -> dict:
    """The schedule actually applied for a fine-tune of ``total_steps`` optimizer steps.

    tfmot only prunes on steps where ``(step - begin_step) % frequency == 0`` and the
    last step it sees is ``total_steps - 1``. With the write-ups' frequency of 100 and
    a short fine-tune (digits: ~23 steps an epoch) the final sparsity would never be
    reached, so when fewer than four pruning events would fit, the frequency is
    shortened (to an eighth of the span) and the end step aligned to a pruning step;
    the result records both so the UI can show what really happened.
    """
    last = max(1, total_steps - 1)
    begin = min(config.begin_step, last - 1) if last > 1 else 0
    end = config.end_step if config.end_step is not None else last
    end = max(begin + 1, min(end, last))
    span = end - begin
    # At least ~4 pruning events so the sparsity ramps up and the model can recover in between.
    frequency = config.frequency if span >= 4 * config.frequency else max(1, span // 8)
    end = begin + (span // frequency) * frequency
    notes = []
    if frequency != config.frequency:
        notes.append(f"frequency lowered from {config.frequency} to {frequency} so the final sparsity is reached "
                     f"within {total_steps} fine-tune steps")
    if config.end_step is not None and end != config.end_step:
        notes.append(f"end step moved from {config.end_step} to {end} (last pruning step inside the fine-tune)")
    return {"schedule": config.schedule.value, "initial_sparsity": config.initial_sparsity,
            "final_sparsity": config.final_sparsity, "begin_step": begin, "end_step": end, "frequency": frequency,
            "total_steps": total_steps, "structured": config.structured,
            "layer_sparsity": dict(config.layer_sparsity) if config.layer_sparsity else None, "notes": notes}


def sparsity_curve(config: PruningConfig, total_steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Target sparsity at each optimizer step, as tfmot's schedule sets it (for previews).

    Computed in NumPy with tfmot's formulas (polynomial decay of power 3, masks
    updated only every ``frequency`` steps) so a slider preview needs no TensorFlow.
    """
    s = applied_schedule(config, total_steps)
    steps = np.arange(total_steps)
    target = np.zeros(total_steps)
    current = 0.0
    for t in steps:
        in_range = s["begin_step"] <= t and (config.schedule is ScheduleKind.CONSTANT or t <= s["end_step"])
        if in_range and (t - s["begin_step"]) % s["frequency"] == 0:
            if config.schedule is ScheduleKind.CONSTANT:
                current = config.final_sparsity
            else:
                p = min(1.0, (t - s["begin_step"]) / max(1, s["end_step"] - s["begin_step"]))
                current = config.final_sparsity + (config.initial_sparsity - config.final_sparsity) * (1 - p) ** 3
        target[t] = current
    return steps, target


def _schedule(config: PruningConfig, s: dict, final: float | None = None):
    sched = _tf.tfmot().sparsity.keras
    final = config.final_sparsity if final is None else final
    if config.schedule is ScheduleKind.CONSTANT:
        return sched.ConstantSparsity(final, begin_step=s["begin_step"], end_step=s["end_step"],
                                      frequency=s["frequency"])
    return sched.PolynomialDecay(initial_sparsity=min(config.initial_sparsity, final), final_sparsity=final,
                                 begin_step=s["begin_step"], end_step=s["end_step"], frequency=s["frequency"])


def _prunable(layer) -> bool:
    from tensorflow_model_optimization.python.core.sparsity.keras.prune_registry import PruneRegistry

    return bool(layer.weights) and PruneRegistry.supports(layer)


def apply_pruning(model, config: PruningConfig, total_steps: int):
    """Wrap a fresh copy's prunable layers (all, or ``config.layers``) for pruning.

    Returns:
        (wrapped model, applied schedule dict, names of the pruned layers).
    """
    keras = _tf.keras()
    tfmot = _tf.tfmot()
    s = applied_schedule(config, total_steps)
    check_layer_names(model, config.layers, "pruning.layers")
    check_layer_names(model, config.layer_sparsity, "pruning.layer_sparsity")
    chosen = []
    overrides = config.layer_sparsity or {}

    def wrap(layer):
        if _prunable(layer) and (config.layers is None or layer.name in config.layers):
            if config.structured and type(layer).__name__ not in ("Conv2D", "Dense"):
                return layer  # tfmot's M:N sparsity supports Conv2D and Dense kernels only
            final = overrides.get(layer.name, config.final_sparsity)
            if final <= 0 and not config.structured:
                return layer  # a per-layer sparsity of 0 leaves the layer dense
            kwargs = {"pruning_schedule": _schedule(config, s, final)}
            if config.structured == "2:4":
                kwargs["sparsity_m_by_n"] = (2, 4)
            chosen.append(layer.name)
            return tfmot.sparsity.keras.prune_low_magnitude(layer, **kwargs)
        return layer

    wrapped = keras.models.clone_model(clone(model), clone_function=wrap)
    if not chosen:
        raise CompressionError("None of the chosen layers can be pruned (tfmot prunes Conv, Dense, LSTM kernels).")
    return wrapped, s, chosen


def strip(model):
    """Remove pruning wrappers before export (masks are already applied to the kernels)."""
    return _tf.tfmot().sparsity.keras.strip_pruning(model)


def prune(model, config: PruningConfig, x, y, *, epochs: int, batch_size: int = 64, learning_rate: float = 1e-3,
          progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None, variant: str = "",
          fraction_span=(0.0, 1.0)):
    """Prune a copy of ``model`` while fine-tuning, then strip the wrappers.

    Args:
        model: the float baseline (left untouched).
        config: schedule, sparsities, layers, structure.
        x, y: training data for the fine-tune.
        epochs: fine-tune epochs; the default end step is the end of the fine-tune.

    Returns:
        (stripped pruned model, info dict with ``schedule``, ``layers``, ``history``).
    """
    total = steps_per_epoch(len(x), batch_size) * epochs
    wrapped, schedule, chosen = apply_pruning(model, config, total)
    compile_for_training(wrapped, learning_rate)
    recorder = pruning_recorder(wrapped, schedule)
    history = fit(wrapped, x, y, epochs=epochs, batch_size=batch_size,
                  callbacks=[_tf.tfmot().sparsity.keras.UpdatePruningStep(), recorder], progress=progress,
                  cancel=cancel, variant=variant, fraction_span=fraction_span)
    stripped = strip(wrapped)
    notes = dense_layer_notes(model, chosen) + structured_notes(stripped, config, chosen) + \
        unprunable_notes(stripped, chosen)
    return stripped, {"schedule": schedule, "layers": chosen, "history": history, "notes": notes,
                      "snapshots": recorder.snapshots()}


def structured_notes(model, config: PruningConfig, pruned: list[str]) -> list[str]:
    """For 2:4 pruning: the pruned layers that could not take the pattern (no blocks of 4 along their input)."""
    if config.structured != "2:4":
        return []
    notes = []
    for layer in model.layers:
        if layer.name not in pruned or not layer.trainable_weights:
            continue
        kernel = layer.trainable_weights[0].numpy()
        share = float(np.mean(kernel == 0))
        if share < 0.4:
            n = kernel.shape[-2] if kernel.ndim > 1 else 1
            notes.append(f"'{layer.name}' stayed {share:.0%} sparse under 2:4: its kernel {tuple(kernel.shape)} has "
                         f"no blocks of 4 along its input axis (only {n} input channel{'s' if n != 1 else ''}); "
                         "the other 2:4 layers are 50 % sparse")
    return notes


MAX_SNAPSHOTS = 64
MAX_SNAPSHOT_WEIGHTS = 300_000


def pruning_recorder(wrapped, schedule: dict, max_snapshots: int = MAX_SNAPSHOTS,
                     max_weights: int = MAX_SNAPSHOT_WEIGHTS):
    """A Keras callback recording each pruned kernel (weights × mask) whenever a mask update changes it.

    Records the dense kernels before the first step, then the step after every mask update that changed
    a layer's zero count (every n-th one when the schedule has more than ``max_snapshots`` updates) and
    the final kernels. Layers with more than ``max_weights`` weights are not recorded (memory).
    ``recorder.snapshots()`` returns ``{"step": int array (n,), "kernels": {layer: array (n, *shape)}}``
    or None when nothing was recorded.
    """
    keras = _tf.keras()
    updates = (schedule["end_step"] - schedule["begin_step"]) // max(1, schedule["frequency"]) + 1
    stride = max(1, -(-updates // max_snapshots))

    class PruningSnapshots(keras.callbacks.Callback):
        def __init__(self):
            super().__init__()
            self.pruned = [layer for layer in wrapped.layers if getattr(layer, "pruning_vars", None)
                           and int(np.prod(layer.pruning_vars[0][0].shape)) <= max_weights]
            self.steps: list[int] = []
            self.kernels: dict[str, list[np.ndarray]] = {layer.layer.name: [] for layer in self.pruned}
            self.last: tuple | None = None
            self.changes = 0

        def _zeros(self) -> tuple:
            return tuple(int(np.sum(layer.pruning_vars[0][1].numpy() == 0)) for layer in self.pruned)

        def _record(self, step: int) -> None:
            self.steps.append(step)
            for layer in self.pruned:
                weight, mask, _ = layer.pruning_vars[0]
                self.kernels[layer.layer.name].append((weight.numpy() * mask.numpy()).astype(np.float32))

        def _step(self) -> int:
            return max(0, int(self.pruned[0].pruning_step.numpy()))

        def on_train_begin(self, logs=None):
            if self.pruned:
                self._record(0)
                self.last = self._zeros()

        def on_train_batch_end(self, batch, logs=None):
            if not self.pruned:
                return
            zeros = self._zeros()
            if zeros != self.last:
                self.last = zeros
                self.changes += 1
                if self.changes % stride == 0 and len(self.steps) < max_snapshots + 1:
                    self._record(self._step())

        def on_train_end(self, logs=None):
            if self.pruned and self.steps and self.steps[-1] != self._step():
                self._record(self._step())

        def snapshots(self) -> dict | None:
            if len(self.steps) < 2:
                return None
            return {"step": np.asarray(self.steps, dtype=np.int64),
                    "kernels": {name: np.stack(values) for name, values in self.kernels.items()}}

    return PruningSnapshots()


def unprunable_notes(stripped, pruned: list[str]) -> list[str]:
    """One sentence naming the layers with kernels tfmot cannot prune, and what sparsity the others reached.

    E.g. a Bidirectional LSTM: tfmot 0.8.1's prune registry has no entry for the wrapper, so its
    kernels stay dense and the model's overall sparsity ends far below the target.
    """
    def kernel_sizes(layer) -> tuple[int, int]:
        ks = [w.numpy() for w in layer.weights if len(w.shape) > 1]
        return int(sum(k.size for k in ks)), int(sum((k == 0).sum() for k in ks))

    skipped, pruned_total, pruned_zeros, all_total, all_zeros = [], 0, 0, 0, 0
    for layer in stripped.layers:
        size, zeros = kernel_sizes(layer)
        if not size:
            continue
        all_total, all_zeros = all_total + size, all_zeros + zeros
        if layer.name in pruned:
            pruned_total, pruned_zeros = pruned_total + size, pruned_zeros + zeros
        elif not _prunable(layer):
            skipped.append(f"'{layer.name}' ({type(layer).__name__}, {size:,} weights)")
    if not skipped:
        return []
    return [f"could not prune {', '.join(skipped)}: tfmot's prune registry does not support "
            f"{'it' if len(skipped) == 1 else 'them'}; the pruned layers reached "
            f"{pruned_zeros / max(1, pruned_total):.0%} sparsity, the whole model {all_zeros / max(1, all_total):.0%}"]


def dense_layer_notes(model, pruned: list[str]) -> list[str]:
    """One sentence per prunable layer left dense: which, how big, and why that is the usual practice."""
    sizes = {layer.name: int(sum(np.prod(w.shape) for w in layer.trainable_weights if len(w.shape) > 1))
             for layer in model.layers if _prunable(layer)}
    total = sum(sizes.values()) or 1
    notes = []
    for name, size in sizes.items():
        if name in pruned or not size:
            continue
        share = size / total
        why = (" — too small to shrink the file and the most sensitive to pruning (the TF pruning guide: prune "
               "the large layers, leave small or sensitive ones dense)") if share < 0.2 else ""
        notes.append(f"'{name}' left dense ({size:,} weights, {share:.0%} of the prunable ones): "
                     f"not in the pruning layers setting{why}")
    return notes


_KERNEL_PREFIX = "kernel:"


def save_snapshots(path, snapshots: dict) -> None:
    """Write :func:`pruning_recorder` snapshots to an ``.npz`` (``step`` and ``kernel:<layer>`` arrays)."""
    from .._io import save_step_arrays

    save_step_arrays(path, snapshots["step"], snapshots["kernels"], _KERNEL_PREFIX)


def load_snapshots(path) -> dict | None:
    """The snapshots saved by :func:`save_snapshots` (never unpickles), or None when there is no file."""
    from .._io import load_step_arrays

    loaded = load_step_arrays(path, _KERNEL_PREFIX)
    return None if loaded is None else {"step": loaded[0], "kernels": loaded[1]}
