"""The one place that decides how TensorFlow, Keras 2 and tfmot are imported.

TensorFlow reads ``TF_USE_LEGACY_KERAS`` once, the first time ``tf.keras`` is
touched, and tfmot only accepts Keras 2 (``tf_keras``) models. Every module of
the engine gets TensorFlow through the functions below, lazily, so that
``import compression`` stays fast and the first page of the app does not wait
for TensorFlow.
"""

from __future__ import annotations

import os

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")


def tf():
    """Return the ``tensorflow`` module (imported on first use)."""
    import tensorflow

    return tensorflow


def keras():
    """Return ``tf_keras`` (Keras 2), the only Keras this project uses."""
    tf()  # TensorFlow first, so it sees TF_USE_LEGACY_KERAS
    import tf_keras

    _enable_keras_v3_saving_in_this_thread()
    return tf_keras


def _enable_keras_v3_saving_in_this_thread() -> None:
    """Work around a tf_keras thread-local bug.

    tf_keras keeps its ".keras format enabled" flag in a ``threading.local`` set only
    in the thread that imported it; in any other thread the first ``.keras`` save or
    load restores the flag to False, and every later one silently takes the legacy
    path (the saved file is not a zip; loading a real ``.keras`` fails). Streamlit
    and our tests use several threads, so set the flag in whichever thread asks.
    """
    from tf_keras.src.saving import saving_lib

    if not hasattr(saving_lib._SAVING_V3_ENABLED, "value"):
        saving_lib._SAVING_V3_ENABLED.value = True


def tfmot():
    """Return ``tensorflow_model_optimization``."""
    keras()
    import tensorflow_model_optimization

    return tensorflow_model_optimization


def interpreter_module():
    """Return ``ai_edge_litert.interpreter`` (the LiteRT Python interpreter)."""
    from ai_edge_litert import interpreter

    return interpreter


def set_seed(seed: int) -> None:
    """Seed Python, NumPy and TensorFlow and make TF ops deterministic."""
    import random

    import numpy as np

    random.seed(seed)
    np.random.seed(seed)
    t = tf()
    t.keras.utils.set_random_seed(seed) if hasattr(t.keras.utils, "set_random_seed") else None
    t.random.set_seed(seed)
    try:
        t.config.experimental.enable_op_determinism()
    except Exception:  # noqa: BLE001 - older TF or already set; determinism is best effort
        pass


def library_versions() -> dict[str, str]:
    """Versions of the libraries a result depends on (echoed into results)."""
    from importlib import metadata

    out = {}
    for name in (
        "tensorflow",
        "tf-keras",
        "tensorflow-model-optimization",
        "ai-edge-litert",
        "numpy",
        "scikit-learn",
    ):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out
