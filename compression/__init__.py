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
    "load_dataset": "data",
    "list_datasets": "data",
    "load_npz": "data",
    "Dataset": "data",
    "build_model": "models",
    "list_models": "models",
    "load_user_model": "safe_load",
    "train_baseline": "train",
    "convert_to_tflite": "convert",
    "measure_tflite": "measure",
    "run_recipe": "recipes",
    "load_results": "recipes",
    "results_table": "results",
    "Store": "store",
    "Runner": "runner",
    "get_runner": "runner",
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
