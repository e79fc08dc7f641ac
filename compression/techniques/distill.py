"""Knowledge distillation (reference experiment B): a smaller zoo model learns the
baseline's temperature-softened outputs.

The soft targets are computed once from the teacher and packed with the hard
labels into one target array, so plain ``model.fit`` (and its progress callback)
trains the student with the combined loss — no custom training loop needed.

Usage::

    student, info = distill(teacher, DistillationConfig(student="mlp"), dataset)
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from .. import _tf
from ..config import DistillationConfig
from ..inputs.models import build_model, outputs_logits
from ..progress import ProgressFn
from .train import fit


def soft_targets(teacher, x, temperature: float, batch_size: int = 512) -> np.ndarray:
    """Teacher probabilities softened by ``temperature``."""
    out = teacher.predict(x, batch_size=batch_size, verbose=0).astype(np.float64)
    logits = out if outputs_logits(teacher) else np.log(np.clip(out, 1e-12, 1.0))
    z = logits / temperature
    z -= z.max(axis=1, keepdims=True)
    p = np.exp(z)
    return (p / p.sum(axis=1, keepdims=True)).astype(np.float32)


def distillation_loss(num_classes: int, temperature: float, alpha: float):
    """alpha·CE(labels, student) + (1−alpha)·T²·KL(teacher_T ‖ student_T) on packed targets."""
    tf = _tf.tf()

    def loss(packed, student_logits):
        labels = tf.cast(packed[:, 0], tf.int32)
        teacher = packed[:, 1:]
        hard = tf.keras.losses.sparse_categorical_crossentropy(labels, student_logits, from_logits=True)
        student_soft = tf.nn.log_softmax(student_logits / temperature)
        kl = tf.reduce_sum(teacher * (tf.math.log(tf.clip_by_value(teacher, 1e-12, 1.0)) - student_soft), axis=-1)
        return alpha * hard + (1.0 - alpha) * (temperature**2) * kl

    return loss


def distill(teacher, config: DistillationConfig, x, y, input_shape, num_classes: int, *, batch_size: int = 64,
            learning_rate: float = 1e-3, seed: int = 0, progress: ProgressFn | None = None,
            cancel: Callable[[], bool] | None = None, variant: str = "", fraction_span=(0.0, 1.0)):
    """Train a fresh zoo ``config.student`` on the teacher's soft targets.

    Returns:
        (trained student with logits outputs, info dict with ``student``, ``params``, ``history``).
    """
    keras = _tf.keras()
    student = build_model(config.student, input_shape, num_classes, seed=seed)
    packed = np.concatenate([y.reshape(-1, 1).astype(np.float32), soft_targets(teacher, x, config.temperature)],
                            axis=1)

    def accuracy(packed_true, logits):
        tf = _tf.tf()
        return tf.cast(tf.equal(tf.cast(packed_true[:, 0], tf.int64), tf.argmax(logits, axis=-1)), tf.float32)

    student.compile(optimizer=keras.optimizers.Adam(learning_rate),
                    loss=distillation_loss(num_classes, config.temperature, config.alpha), metrics=[accuracy])
    history = fit(student, x, packed, epochs=config.epochs, batch_size=batch_size, progress=progress, cancel=cancel,
                  phase="distill", variant=variant, fraction_span=fraction_span)
    return student, {"student": config.student, "params": int(student.count_params()),
                     "teacher_params": int(teacher.count_params()), "history": history}
