"""Training and fine-tuning with progress events and cancellation.

Usage::

    history = train_baseline(model, dataset, epochs=5, progress=print)
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np

from .. import _tf
from ..inputs.models import outputs_logits
from ..progress import Cancelled, Progress, ProgressFn, emit


def compile_for_training(model, learning_rate: float = 1e-3, loss=None) -> None:
    """Compile with Adam and a sparse categorical loss matching the model's outputs."""
    keras = _tf.keras()
    if loss is None:
        loss = keras.losses.SparseCategoricalCrossentropy(from_logits=outputs_logits(model))
    model.compile(optimizer=keras.optimizers.Adam(learning_rate), loss=loss, metrics=["accuracy"])


def steps_per_epoch(n_samples: int, batch_size: int, validation_split: float = 0.0) -> int:
    """Optimizer steps in one epoch of ``model.fit`` (what pruning schedules count)."""
    return max(1, math.ceil(_fit_count(n_samples, validation_split) / batch_size))


def _fit_count(n_samples: int, validation_split: float) -> int:
    """Samples ``model.fit`` trains on: the first ones; Keras's validation_split holds out the last."""
    return n_samples - int(n_samples * validation_split) if validation_split else n_samples


BATCH_EVENT_INTERVAL_S = 0.05  # batch-level events at most 20 per second (the worker stores at most 5)


def _progress_callback(progress: ProgressFn | None, cancel: Callable[[], bool] | None, *, phase: str,
                       variant: str, epochs: int, fraction_span: tuple[float, float]):
    keras = _tf.keras()

    class ProgressCallback(keras.callbacks.Callback):
        """Turns Keras batch/epoch ends into Progress events and honours cancel()."""

        def __init__(self):
            super().__init__()
            self.epoch = 0
            self.cancelled = False
            self.history = {"loss": [], "accuracy": [], "val_loss": [], "val_accuracy": []}
            # Keras then hands the logs over as tensors instead of converting them to numpy every batch (which
            # cost more than a small model's batch); they are read only when an event is due.
            self._supports_tf_logs = True
            self._next_batch_event = float("-inf")

        def _fraction(self, epoch_progress: float) -> float:
            lo, hi = fraction_span
            return lo + (hi - lo) * min(1.0, epoch_progress / max(epochs, 1))

        def on_epoch_begin(self, epoch, logs=None):
            self.epoch = epoch

        def on_train_batch_end(self, batch, logs=None):
            if cancel is not None and cancel():
                self.cancelled = True
                self.model.stop_training = True
            now = time.monotonic()
            if now < self._next_batch_event:
                return
            self._next_batch_event = now + BATCH_EVENT_INTERVAL_S
            logs = logs or {}
            steps = self.params.get("steps") or 1
            emit(progress, Progress(
                phase=phase, variant=variant, fraction=self._fraction(self.epoch + (batch + 1) / steps),
                epoch=self.epoch + 1, epochs=epochs, batch=batch + 1, **_loss_and_accuracy(logs),
            ))

        def on_epoch_end(self, epoch, logs=None):
            logs = logs or {}
            for key in self.history:
                if key in logs:
                    self.history[key].append(float(logs[key]))
            emit(progress, Progress(
                phase=phase, variant=variant, fraction=self._fraction(epoch + 1), epoch=epoch + 1, epochs=epochs,
                **_loss_and_accuracy(logs),
                message=f"epoch {epoch + 1}/{epochs}",
                data={"epoch_end": True, **{k: float(v) for k, v in logs.items()}},
            ))

    return ProgressCallback()


def _finite(v):
    return float(v) if v is not None and math.isfinite(float(v)) else None


def _loss_and_accuracy(logs: dict) -> dict:
    """The Progress fields ``loss`` and ``accuracy`` from Keras logs (None when absent or not finite)."""
    return {key: _finite(logs.get(key)) for key in ("loss", "accuracy")}


SHUFFLE_SEED = 0  # the fine-tune pipeline's shuffle op seed (with the run's tf.random.set_seed)
_TENSORS: dict[int, tuple[np.ndarray, object]] = {}  # id(array) -> (array, its eager tensor); the last few only
_TENSORS_KEPT = 4


def _tensor(array: np.ndarray):
    """``array`` as an eager tensor, made once per array (a run fine-tunes every variant on the same arrays)."""
    hit = _TENSORS.get(id(array))
    if hit is not None and hit[0] is array:
        return hit[1]
    tensor = _tf.tf().convert_to_tensor(array)
    while len(_TENSORS) >= _TENSORS_KEPT:
        _TENSORS.pop(next(iter(_TENSORS)))
    _TENSORS[id(array)] = (array, tensor)
    return tensor


def batches(x: np.ndarray, y: np.ndarray | None, batch_size: int, *, start: int = 0, stop: int | None = None,
            shuffle: bool = False):
    """Samples ``start:stop`` of (x, y) (of x alone when y is None) as a ``tf.data`` pipeline of batches,
    reshuffled every epoch if asked.

    What ``model.fit(x, y, shuffle=True)`` builds from NumPy arrays (batches of shuffled indices, gathered from
    the arrays), with two differences measured on Fashion-MNIST:

    - tf.data's autotuning is off. Its model thread, which Keras's own pipeline starts, must wake up before the
      iterator can be deleted; it sleeps for up to seconds, so ``fit`` returned 4-5 s after its last epoch in
      four of six 2-epoch fine-tunes. With it off, none of six did, and a fit took about as long otherwise (6.5-8.2 s vs
      6.1-6.7 s for the fits that did not stall; a fixed prefetch of two batches feeds a model this size).
    - The arrays are converted to tensors once per array, not once per ``fit`` (~0.5 s a fit on 60 000 images).
    """
    tf = _tf.tf()
    xt = _tensor(x)
    stop = len(x) if stop is None else stop
    indices = tf.data.Dataset.range(start, stop)
    if shuffle:
        # an explicit op seed: the order then follows tf.random.set_seed alone, not how many seeded ops this
        # process made before (the reproduce script rebuilds the same order: compression/tflite/templates/reproduce.py)
        indices = indices.shuffle(stop - start, seed=SHUFFLE_SEED, reshuffle_each_iteration=True)
    if y is None:
        dataset = indices.batch(batch_size).map(lambda i: tf.gather(xt, i))
    else:
        yt = _tensor(y)
        dataset = indices.batch(batch_size).map(lambda i: (tf.gather(xt, i), tf.gather(yt, i)))
    dataset = dataset.prefetch(2)
    options = tf.data.Options()
    options.autotune.enabled = False
    return dataset.with_options(options)


def fit(model, x, y, *, epochs: int, batch_size: int, validation_split: float = 0.0, callbacks=(),
        progress: ProgressFn | None = None, cancel: Callable[[], bool] | None = None, phase: str = "fine_tune",
        variant: str = "", fraction_span: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Run ``model.fit`` with progress events; returns the loss/accuracy history.

    Raises:
        Cancelled: when ``cancel()`` became true during training.
    """
    cb = _progress_callback(progress, cancel, phase=phase, variant=variant, epochs=epochs,
                            fraction_span=fraction_span)
    if epochs > 0:
        n_fit = _fit_count(len(x), validation_split)
        validation = batches(x, y, batch_size, start=n_fit) if n_fit < len(x) else None
        model.fit(batches(x, y, batch_size, stop=n_fit, shuffle=True), epochs=epochs, validation_data=validation,
                  callbacks=[*callbacks, cb], verbose=0)
    if cb.cancelled:
        raise Cancelled("cancelled during training")
    return {k: v for k, v in cb.history.items() if v}


def evaluate_accuracy(model, x, y, batch_size: int = 512) -> float:
    """Top-1 accuracy of a Keras model (one batched predict)."""
    preds = predict_classes(model, x, batch_size)
    return float(np.mean(preds == y))


def predict_classes(model, x, batch_size: int = 512) -> np.ndarray:
    """Argmax class of every sample."""
    return np.argmax(model.predict(batches(x, None, batch_size), verbose=0), axis=-1)


def train_baseline(model, dataset, *, epochs: int = 5, batch_size: int = 64, learning_rate: float = 1e-3,
                   validation_split: float = 0.1, seed: int = 0, progress: ProgressFn | None = None,
                   cancel: Callable[[], bool] | None = None, fraction_span: tuple[float, float] = (0.0, 1.0)) -> dict:
    """Train a float baseline in place, seeded.

    Args:
        model: an uncompiled or compiled tf_keras model.
        dataset: a :class:`compression.inputs.dataset.Dataset`.
        epochs, batch_size, learning_rate, validation_split: training settings.
        seed: seeds Python, NumPy and TensorFlow first.
        progress: receives ``Progress(phase="baseline", ...)`` events.
        cancel: polled after every batch.

    Returns:
        The training history (loss, accuracy, val_loss, val_accuracy per epoch).
    """
    _tf.set_seed(seed)
    compile_for_training(model, learning_rate)
    emit(progress, Progress(phase="baseline", fraction=fraction_span[0],
                            message=f"training baseline ({epochs} epochs)"))
    return fit(model, dataset.x_train, dataset.y_train, epochs=epochs, batch_size=batch_size,
               validation_split=validation_split, progress=progress, cancel=cancel, phase="baseline",
               fraction_span=fraction_span)


def uploaded_baseline_flags(path, dataset, max_samples: int = 2000) -> list[dict[str, str]]:
    """Warnings about an uploaded model used as it is (at chance on this data?), before any run starts.

    Loads the file safely, lays the data out as the model wants (:func:`~compression.inputs.layout.fit_to_model`)
    and predicts up to ``max_samples`` test samples.

    Usage::

        for flag in uploaded_baseline_flags("model.keras", ds):
            print(flag["message"])

    Raises:
        CompressionError: the file cannot be loaded or does not fit the data.
    """
    from ..inputs.layout import fit_to_model
    from ..inputs.models import check_compatible
    from ..inputs.safe_load import load_user_model
    from ..measure.litert import baseline_flags

    model = load_user_model(path)
    fitted = fit_to_model(dataset, model.input_shape[1:], model.inputs[0].dtype.name)
    check_compatible(model.input_shape[1:], model.output_shape[-1], fitted)
    x, y = fitted.x_test[:max_samples], fitted.y_test[:max_samples]
    return baseline_flags(predict_classes(model, x), y)


def uploaded_baseline_check(path, data: dict) -> list[dict[str, str]]:
    """:func:`uploaded_baseline_flags` for a dataset given as its spec (``name``, ``path``, ``max_train``,
    ``layout``): what a caller without TensorFlow runs in the isolation child.

    Usage::

        shared_pool().call(uploaded_baseline_check, "model.keras", {"name": "digits"})
    """
    from ..inputs.data import load_dataset

    ds = load_dataset(data["name"], path=data.get("path"), max_train=data.get("max_train"), layout=data.get("layout"))
    return uploaded_baseline_flags(path, ds)
