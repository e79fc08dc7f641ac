"""Pretrained baselines shipped in ``sample_models/`` (the script that trains them is
:mod:`compression.techniques.samples`).

Each sample is ``<dataset>__<model>.keras`` plus a JSON card with the dataset,
architecture, test accuracy, library versions and how it was trained.

Regenerate them all (a few minutes on 2 CPU cores)::

    python -m compression.techniques.samples
"""

from __future__ import annotations

import json
from pathlib import Path

from .. import _tf
from ..errors import CompressionError

SAMPLES_DIR = Path(__file__).resolve().parents[2] / "sample_models"

# (dataset, model, epochs, batch size): what we ship and how it is trained.
SAMPLES = [
    ("digits", "seed_cnn", 80, 32),
    ("digits", "mlp", 30, 32),
    ("mnist1d", "conv1d", 120, 64),
]


def sample_path(dataset: str, model: str) -> Path:
    return SAMPLES_DIR / f"{dataset}__{model}.keras"


def list_pretrained() -> list[dict]:
    """Every shipped sample's card (dataset, model, test_accuracy, ...)."""
    cards = []
    for card in sorted(SAMPLES_DIR.glob("*.json")):
        data = json.loads(card.read_text())
        if sample_path(data["dataset"], data["model"]).exists():
            cards.append(data)
    return cards


def has_pretrained(dataset: str, model: str) -> bool:
    return sample_path(dataset, model).exists()


def load_pretrained(dataset: str, model: str):
    """Load a shipped baseline (Keras safe mode; our own files, no custom code)."""
    path = sample_path(dataset, model)
    if not path.exists():
        available = ", ".join(f"{c['dataset']} × {c['model']}" for c in list_pretrained()) or "none"
        raise CompressionError(
            f"There is no pretrained {model!r} for dataset {dataset!r} (shipped: {available}); "
            "train a baseline instead (baseline.pretrained = false)."
        )
    return _tf.keras().models.load_model(path, compile=False, safe_mode=True)
