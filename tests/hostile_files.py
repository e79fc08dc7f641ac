"""Hostile and broken files a user could hand the app or the CLI, made at test time.

Shared by ``tests/test_hostile_cli.py`` and the browser tests in ``tests/e2e/``.
The engine-level checks of the same ideas are in ``test_safe_load.py`` and
``test_data.py``; here the files exist so that the CLI and the UI can be fed
them as a user would.

The dangerous ones carry code that writes a *marker file* when it runs:

* ``evil.h5`` / ``evil.keras``: a digits-shaped model whose ``Lambda`` layer
  opens the marker for writing. tf_keras runs the Lambda while it builds the
  model, so they are made in a subprocess; the marker that construction
  writes is deleted before any check. The subprocess also loads the ``.h5``
  naively once (the control: this file really runs code on load) and deletes
  the marker again.
* ``pickled.npz``: ``x_train`` is an object array whose pickle calls
  ``open(marker, "w")`` when unpickled.

A check then asserts ``marker`` does not exist.

Usage::

    files = make_hostile_files(tmp_path)
    files.models["evil.h5"], files.npz["pickled.npz"], files.marker
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]

# Engine limit for model files (compression.inputs.safe_load.DEFAULT_MAX_BYTES) and Streamlit's upload limit
# (.streamlit/config.toml server.maxUploadSize), both 100 MB.
OVER_100_MB = 101 * 2**20

_BUILD = textwrap.dedent(
    """
    import os, sys
    os.environ["TF_USE_LEGACY_KERAS"] = "1"
    os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    import tf_keras as keras

    out, marker = sys.argv[1], sys.argv[2]

    def layers(evil):
        stack = [keras.Input((8, 8, 1))]
        if evil:
            # Runs on every call: while the model is built, and again whenever a naive load rebuilds it.
            stack.append(keras.layers.Lambda(lambda x: (open(MARKER, "w").write("ran"), x)[1], name="evil_lambda"))
        stack += [keras.layers.Conv2D(4, 3, activation="relu"), keras.layers.Flatten(),
                  keras.layers.Dense(10, activation="softmax")]
        return stack

    MARKER = marker
    keras.Sequential(layers(False)).save(os.path.join(out, "good.keras"))
    evil = keras.Sequential(layers(True))
    evil.save(os.path.join(out, "evil.h5"))
    evil.save(os.path.join(out, "evil.keras"))
    assert os.path.exists(marker), "building the Lambda model should have run it"
    os.remove(marker)
    keras.models.load_model(os.path.join(out, "evil.h5"), compile=False)
    assert os.path.exists(marker), "control: a naive load of evil.h5 must run its Lambda"
    os.remove(marker)
    print("built")
    """
)


class _RunsOnUnpickle:
    """Pickles to ``open(path, "w")``: unpickling it writes the marker."""

    def __init__(self, path: str):
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


@dataclass
class HostileFiles:
    """Paths of the generated files, by file name."""

    folder: Path
    marker: Path
    good_model: Path
    models: dict[str, Path] = field(default_factory=dict)
    npz: dict[str, Path] = field(default_factory=dict)

    def oversize_model(self) -> Path:
        """A 101 MB file named .keras (sparse on disk: costs nothing until read)."""
        path = self.folder / "huge.keras"
        if not path.exists():
            with open(path, "wb") as f:
                f.truncate(OVER_100_MB)
        return path


def _digits_like(n_train: int = 60, n_test: int = 20) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    return {
        "x_train": rng.random((n_train, 8, 8), dtype=np.float32),
        "y_train": np.arange(n_train) % 10,
        "x_test": rng.random((n_test, 8, 8), dtype=np.float32),
        "y_test": np.arange(n_test) % 10,
    }


def make_hostile_files(folder: Path) -> HostileFiles:
    """Write every hostile model and dataset file into ``folder``.

    Builds the Lambda models in a subprocess (about 10 s: it imports TensorFlow).
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    marker = folder / "MARKER-code-ran"
    env = {**os.environ, "TF_USE_LEGACY_KERAS": "1", "TF_CPP_MIN_LOG_LEVEL": "3"}
    built = subprocess.run([sys.executable, "-c", _BUILD, str(folder), str(marker)], capture_output=True,
                           text=True, env=env, timeout=300, cwd=ROOT)
    if built.returncode != 0 or "built" not in built.stdout:
        raise RuntimeError(f"could not build the hostile models:\n{built.stderr[-3000:]}")
    if marker.exists():
        raise RuntimeError("the marker survived the build; checks would mean nothing")
    (folder / "random.keras").write_bytes(np.random.default_rng(1).bytes(64 * 1024))
    good = (folder / "good.keras").read_bytes()
    (folder / "truncated.keras").write_bytes(good[: len(good) // 2])
    (folder / "empty.keras").write_bytes(b"")

    def npz(name: str, **arrays) -> None:
        with open(folder / name, "wb") as f:  # savez would append .npz to a name it does not like
            np.savez(f, **arrays)

    a = _digits_like()
    npz("pickled.npz", **{**a, "x_train": np.array([_RunsOnUnpickle(str(marker))] * len(a["x_train"]),
                                                    dtype=object)})
    npz("missing_keys.npz", x_train=a["x_train"], y_train=a["y_train"])
    npz("mismatched.npz", **{**a, "y_train": a["y_train"][:-7]})
    nan = a["x_train"].copy()
    nan[3, 4, 4] = np.nan
    npz("nans.npz", **{**a, "x_train": nan})
    npz("float_labels.npz", **{**a, "y_train": a["y_train"] + 0.5})
    npz("test_shape.npz", **{**a, "x_test": np.zeros((20, 6, 6), np.float32)})
    good_npz = folder / "good.npz"
    with open(good_npz, "wb") as f:
        np.savez(f, **a)
    if marker.exists():
        raise RuntimeError("writing pickled.npz ran its payload")
    return hostile_files_in(folder)


def hostile_files_in(folder: Path) -> HostileFiles:
    """The files :func:`make_hostile_files` wrote into ``folder``."""
    folder = Path(folder)
    return HostileFiles(
        folder=folder, marker=folder / "MARKER-code-ran", good_model=folder / "good.keras",
        models={name: folder / name for name in ("evil.h5", "evil.keras", "random.keras", "truncated.keras",
                                                 "empty.keras")},
        npz={name: folder / name for name in ("pickled.npz", "missing_keys.npz", "mismatched.npz", "nans.npz",
                                              "float_labels.npz", "test_shape.npz")})


def run_fingerprint(store_root: Path, run_id: str) -> dict:
    """A stored run's status and the SHA-256 of every file in its folder: equal fingerprints, untouched run."""
    from compression.store import Store

    run = Store(store_root).get_run(run_id)
    folder = Path(run["dir"])
    files = {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
             for p in sorted(folder.rglob("*")) if p.is_file()}
    return {"status": run["status"], "finished": run["finished"], "error": run["error"], "files": files}


# What the engine answers for each file: (substring of the one-line message). Kept here so the CLI
# and UI tests assert the same sentence.
MODEL_MESSAGES = {
    "evil.h5": "The model uses a Lambda layer ('evil_lambda'); Lambda layers run arbitrary Python and are refused.",
    "evil.keras": "The model uses a Lambda layer ('evil_lambda'); Lambda layers run arbitrary Python and are "
                  "refused.",
    "random.keras": "'random.keras' is not a valid .keras file (a zip archive); it may be truncated or not a "
                    "model file.",
    "truncated.keras": "'truncated.keras' is not a valid .keras file (a zip archive); it may be truncated",
    "empty.keras": "The model file 'empty.keras' is empty.",
    "huge.keras": "The model file 'huge.keras' is 101.0 MB, over the 100 MB limit.",
}
NPZ_MESSAGES = {
    "pickled.npz": "Array 'x_train' in 'pickled.npz' holds Python objects (a pickled object array); only numeric "
                   "arrays are accepted.",
    "missing_keys.npz": "'missing_keys.npz' lacks the array(s) x_test, y_test (it holds: x_train, y_train).",
    "mismatched.npz": "x_train has 60 samples but y_train has 53 labels in 'mismatched.npz'.",
    "nans.npz": "Array 'x_train' in 'nans.npz' holds 1 NaN or infinite value(s).",
    "float_labels.npz": "Labels 'y_train' in 'float_labels.npz' hold non-integer values",
    "test_shape.npz": "x_test samples have shape (6, 6) but x_train samples have (8, 8) in 'test_shape.npz'.",
}
