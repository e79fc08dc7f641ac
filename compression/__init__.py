"""Compression Lab's engine: datasets, models, pruning / clustering / QAT,
TFLite conversion and LiteRT measurement, recipes, a run store and a runner.

Importing this package is fast and never imports TensorFlow or Streamlit;
TensorFlow loads the first time a function that needs it runs.

Usage::

    from compression import Recipe, run_recipe
    table = run_recipe(Recipe.experiment_e(), "out/")
"""

from __future__ import annotations

import importlib

from .config import (
    PRESETS,
    BaselineSpec,
    CentroidInit,
    ClusteringConfig,
    DatasetSpec,
    DistillationConfig,
    EvaluationSpec,
    ModelSpec,
    Preserve,
    PruningConfig,
    QATConfig,
    QuantizationMode,
    Recipe,
    ScheduleKind,
    VariantSpec,
)
from .errors import CompressionError
from .progress import Cancelled, Progress

# Public functions that live in modules importing TensorFlow or heavy libraries:
# resolved on first attribute access so `import compression` stays light.
_LAZY = {
    "load_dataset": "inputs.data",
    "list_datasets": "inputs.builtin_datasets",
    "load_npz": "inputs.user_npz",
    "Dataset": "inputs.dataset",
    "build_model": "inputs.models",
    "list_models": "inputs.models",
    "load_user_model": "inputs.safe_load",
    "train_baseline": "techniques.train",
    "convert_to_tflite": "tflite.convert",
    "measure_tflite": "measure.litert",
    "run_recipe": "run.recipe",
    "load_results": "run.recipe",
    "results_table": "results",
    "Store": "store",
    "Runner": "run.runner",
    "get_runner": "run.runner",
}

__all__ = [
    "PRESETS",
    "BaselineSpec",
    "Cancelled",
    "CentroidInit",
    "ClusteringConfig",
    "CompressionError",
    "DatasetSpec",
    "DistillationConfig",
    "EvaluationSpec",
    "ModelSpec",
    "Preserve",
    "Progress",
    "PruningConfig",
    "QATConfig",
    "QuantizationMode",
    "Recipe",
    "ScheduleKind",
    "VariantSpec",
    *sorted(_LAZY),
]


def __getattr__(name: str):
    if name in _LAZY:
        module = importlib.import_module(f".{_LAZY[name]}", __name__)
        return getattr(module, name)
    raise AttributeError(f"module 'compression' has no attribute {name!r}")
