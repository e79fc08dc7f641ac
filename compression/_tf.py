"""The one place that decides how TensorFlow, Keras 2 and tfmot are imported.

TensorFlow reads ``TF_USE_LEGACY_KERAS`` once, the first time ``tf.keras`` is
touched, and tfmot only accepts Keras 2 (``tf_keras``) models. Every module of
the engine gets TensorFlow through the functions below, lazily, so that
``import compression`` stays fast and the first page of the app does not wait
for TensorFlow.

Importing TensorFlow 2.21 writes C++ INFO lines ("oneDNN custom operations
are on", "Could not find cuda drivers") and absl's "All log messages before
absl::InitializeLog()" warning straight to file descriptor 2, whatever
``TF_CPP_MIN_LOG_LEVEL`` says. :func:`tf` therefore imports it with fd 2
pointed at a temporary file and hands those lines to the ``compression.tf``
logger at DEBUG level, so a terminal shows the user's sentence alone. With
``COMPRESSION_VERBOSE=1`` (the CLI's ``-v``) they stay on the terminal.
"""

from __future__ import annotations

import contextlib
import logging
import os
import sys
import tempfile
import threading
from typing import Any

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

VERBOSE_ENV = "COMPRESSION_VERBOSE"

log = logging.getLogger("compression.tf")
_import_lock = threading.Lock()


def verbose() -> bool:
    """Whether TensorFlow's native log lines should reach the terminal (``COMPRESSION_VERBOSE=1``)."""
    return os.environ.get(VERBOSE_ENV, "") not in ("", "0")


@contextlib.contextmanager
def quiet_native_stderr(what: str):
    """Send what native code writes to fd 2 inside the block to the log (DEBUG) instead of the terminal."""
    if verbose():
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with tempfile.TemporaryFile() as capture:
        os.dup2(capture.fileno(), 2)
        try:
            yield
        finally:
            sys.stderr.flush()
            os.dup2(saved, 2)
            os.close(saved)
            capture.seek(0)
            text = capture.read().decode("utf-8", "replace").strip()
            if text:
                log.debug("%s wrote:\n%s", what, text)


class _KnownNoise(logging.Filter):
    """TensorFlow's log lines that say nothing to a user of this engine go to the log (DEBUG), not a terminal.

    * Keras's "Callback method `on_train_batch_end` is slow compared to the batch time": Keras times the first
      batches of every ``fit``; the progress callback's first event (a row written, a line printed) and the
      first batch's tracing trip the check on a model this small, and the warning reached a CLI run's terminal
      once per fine-tune. The callback sends an event at most every 50 ms (``train.BATCH_EVENT_INTERVAL_S``),
      so later batches do not pay it.
    * "Gradients do not exist for variables [...kernel...]", several times per CQAT/PCQAT fine-tune: tfmot's
      cluster-preserving quantizer rebuilds each clustered kernel from its centroids every step, so the
      original kernel variable gets no gradient by design (the centroids do).
    """

    QUIET = ("is slow compared to the batch time", "Gradients do not exist for variables")

    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        if any(text in message for text in self.QUIET):
            log.debug("TensorFlow: %s", message)
            return False
        return True


def tf():
    """Return the ``tensorflow`` module (imported on first use, its native log lines kept off the terminal)."""
    if "tensorflow" not in sys.modules:
        with _import_lock, quiet_native_stderr("importing TensorFlow"):
            import tensorflow

            # The first device query calls cuInit, which logs "failed call to cuInit" at ERROR level on a
            # machine without a GPU: do it here, inside the quiet block.
            tensorflow.config.list_physical_devices()
            tensorflow.get_logger().addFilter(_KnownNoise())
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


_background: dict[str, Any] = {}  # the background import's thread and its "TensorFlow is in" event


def import_in_background() -> None:
    """Start importing TensorFlow, then tf_keras and tfmot, in a daemon thread.

    A run calls this first, so that loading its dataset (numpy and gzip, which release the GIL) overlaps
    TensorFlow's import, and tfmot's import overlaps the baseline; :func:`wait_for_tensorflow` joins it.
    A plain script pays the three imports one after the other before it starts.
    """
    running = _background.get("thread")
    if "tensorflow_model_optimization" in sys.modules or (running is not None and running.is_alive()):
        return
    ready = threading.Event()

    def run():
        try:
            tf()
            ready.set()
            tfmot()
        except Exception:  # noqa: BLE001 - the thread that needs the module imports it again and raises
            log.debug("the background import failed", exc_info=True)
        finally:
            ready.set()

    thread = threading.Thread(target=run, daemon=True, name="compression-import")
    _background.update(thread=thread, ready=ready)
    thread.start()


def wait_for_tensorflow() -> None:
    """Until the background import (if any) has TensorFlow in (its native stderr back on the terminal)."""
    ready = _background.get("ready")
    if ready is not None:
        ready.wait()


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
