"""Where a run's files live: :class:`RunFolder` owns the paths inside one run folder (recipe.json,
results.json, the worker's log and lock, the baseline, every variant's `.tflite`, kernels and predictions);
nothing else joins them.

A core module: the store, the runner, the run's jobs, exports and pages all read and write run folders.
What results.json holds is :mod:`compression.results`.

Usage::

    folder = RunFolder(run_dir)
    results = folder.read_results()                     # RunResults | None
    data = folder.tflite(results.variant("int8")).read_bytes()
"""

from __future__ import annotations

from pathlib import Path

from .errors import CompressionError
from .results import RunResults, VariantResult

__all__ = ["RunFolder"]


class RunFolder:
    """The paths inside one run folder. Nothing else joins run-folder paths.

    Layout::

        recipe.json  results.json  worker.log  worker.lock
        baseline.keras  <variant>.tflite
        weights/<stem>.npz  predictions/<stem>.npy  predictions/labels.npy  predictions/baseline.npy
    """

    RECIPE = "recipe.json"
    RESULTS = "results.json"
    LOG = "worker.log"
    LOCK = "worker.lock"
    BASELINE_MODEL = "baseline.keras"

    def __init__(self, path: str | Path):
        self.path = Path(path)

    def __repr__(self) -> str:
        return f"RunFolder({str(self.path)!r})"

    def __fspath__(self) -> str:
        return str(self.path)

    @property
    def run_id(self) -> str:
        return self.path.name

    @property
    def recipe_file(self) -> Path:
        return self.path / self.RECIPE

    @property
    def results_file(self) -> Path:
        return self.path / self.RESULTS

    @property
    def log_file(self) -> Path:
        return self.path / self.LOG

    @property
    def lock_file(self) -> Path:
        return self.path / self.LOCK

    @property
    def baseline_model(self) -> Path:
        return self.path / self.BASELINE_MODEL

    @property
    def weights_dir(self) -> Path:
        return self.path / "weights"

    @property
    def predictions_dir(self) -> Path:
        return self.path / "predictions"

    def tflite(self, variant: VariantResult | str) -> Path:
        """The `.tflite` of a variant (a row, or a file name as stored in ``row.tflite``)."""
        name = variant.tflite if isinstance(variant, VariantResult) else variant
        if not name:
            raise CompressionError(f"Variant {getattr(variant, 'name', variant)!r} has no .tflite file.")
        return self.path / Path(str(name)).name

    def file(self, name: str) -> Path:
        """A job's own file in the folder (e.g. ``search.json``): a plain name, never a path."""
        if not name or Path(name).name != name or name.startswith("."):
            raise CompressionError(f"A run folder file needs a plain name. Received: {name!r}")
        return self.path / name

    def tflite_files(self) -> list[Path]:
        """Every `.tflite` in the folder (not temporaries), sorted."""
        return sorted(p for p in self.path.glob("*.tflite") if p.is_file() and not p.name.startswith("."))

    def tflite_for_stem(self, stem: str) -> Path:
        return self.path / f"{stem}.tflite"

    def weights(self, stem: str = "baseline") -> Path:
        """Saved kernels (npz) of the variant with file stem ``stem`` (``baseline`` for the baseline)."""
        return self.weights_dir / f"{stem}.npz"

    def kernels(self, stem: str = "baseline") -> Path:
        """The npz to read a variant's kernels from: its own, or the baseline's for a post-training variant.

        A variant no technique changed (float32, dynamic, int8 of the baseline) writes no copy of the
        baseline's kernels; they are the same.
        """
        own = self.weights(stem)
        return own if own.exists() else self.weights("baseline")

    def cluster_steps(self, stem: str) -> Path:
        """Cluster centroids after each batch of the variant's fine-tune (npz, see ``clustering.save_centroids``)."""
        return self.weights_dir / f"{stem}.cluster-steps.npz"

    def pruning_steps(self, stem: str) -> Path:
        """Pruned kernels at each mask update of the variant's fine-tune (npz, see ``pruning.save_snapshots``)."""
        return self.weights_dir / f"{stem}.pruning-steps.npz"

    def predictions(self, stem: str = "baseline") -> Path:
        """Predicted classes (npy) of the variant with file stem ``stem``."""
        return self.predictions_dir / f"{stem}.npy"

    @property
    def labels(self) -> Path:
        return self.predictions_dir / "labels.npy"

    def read_results(self) -> RunResults | None:
        """The parsed results.json, or None while there is none.

        Raises:
            CompressionError: the file exists but is not valid JSON.
        """
        try:
            text = self.results_file.read_text("utf-8")
        except FileNotFoundError:
            return None
        try:
            return RunResults.from_json(text)
        except ValueError:
            raise CompressionError(f"The results.json of run {self.run_id} is not valid JSON.") from None

    def write_results(self, results: RunResults) -> None:
        from ._io import atomic_write_json

        atomic_write_json(self.results_file, results.to_dict())

    def save_weights(self, stem: str, kernels: dict) -> Path:
        """Write the kernels (name → array) of a model as ``weights/<stem>.npz``."""
        import numpy as np

        self.weights_dir.mkdir(parents=True, exist_ok=True)
        path = self.weights(stem)
        np.savez_compressed(path, **kernels)
        return path

    def save_predictions(self, stem: str, classes) -> Path:
        """Write predicted (or true: stem ``labels``) classes as ``predictions/<stem>.npy`` (int16)."""
        import numpy as np

        self.predictions_dir.mkdir(parents=True, exist_ok=True)
        path = self.predictions(stem)
        np.save(path, np.asarray(classes, dtype=np.int16))
        return path

    def save_baseline_model(self, model) -> Path:
        """Save the float Keras baseline as ``baseline.keras`` (via a temporary name, then a rename)."""
        tmp = self.path / f".{self.BASELINE_MODEL}.tmp.keras"
        model.save(tmp)
        tmp.replace(self.baseline_model)
        return self.baseline_model

    def load_weights(self, stem: str = "baseline") -> dict:
        """The kernels of ``stem`` (name → array; :meth:`kernels` picks the file), {} when none. Never unpickles."""
        import numpy as np

        path = self.kernels(stem)
        if not path.is_file():
            return {}
        with np.load(path, allow_pickle=False) as data:
            return {k: data[k] for k in data.files}

    def load_predictions(self, stem: str = "baseline"):
        """The classes saved for ``stem`` (``labels`` for the true ones), or None. Never unpickles."""
        import numpy as np

        path = self.predictions(stem)
        return np.load(path, allow_pickle=False) if path.is_file() else None

    def read_recipe_text(self) -> str | None:
        """The text of recipe.json, or None when there is none."""
        try:
            return self.recipe_file.read_text("utf-8")
        except FileNotFoundError:
            return None

    def write_recipe_text(self, text: str) -> None:
        from ._io import atomic_write_text

        atomic_write_text(self.recipe_file, text)

    def size_bytes(self) -> int:
        """Bytes on disk of every file in the folder."""
        return sum(p.stat().st_size for p in self.path.rglob("*") if p.is_file())
