"""Pretrained baselines shipped in ``sample_models/``, and the script that makes them.

Each sample is ``<dataset>__<model>.keras`` plus a JSON card with the dataset,
architecture, test accuracy, library versions and how it was trained.

Regenerate them all (a few minutes on 2 CPU cores)::

    python -m compression.pretrained
"""

from __future__ import annotations

import json
import time
from pathlib import Path

from . import _tf
from .errors import CompressionError

SAMPLES_DIR = Path(__file__).resolve().parent.parent / "sample_models"

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


def make_sample(dataset: str, model: str, epochs: int, batch_size: int, seed: int = 0) -> dict:
    """Train one sample baseline and write its model and card."""
    from ._io import atomic_write_json
    from .data import load_dataset
    from .models import build_model
    from .train import evaluate_accuracy, train_baseline

    ds = load_dataset(dataset, seed=seed)
    net = build_model(model, ds.input_shape, ds.num_classes, seed=seed)
    t0 = time.perf_counter()
    history = train_baseline(net, ds, epochs=epochs, batch_size=batch_size, seed=seed, validation_split=0.1)
    seconds = time.perf_counter() - t0
    SAMPLES_DIR.mkdir(exist_ok=True)
    path = sample_path(dataset, model)
    tmp = path.with_name(f".tmp-{path.name}")
    net.save(tmp)
    tmp.replace(path)
    card = {
        "dataset": dataset,
        "model": model,
        "architecture": [f"{type(layer).__name__}({layer.name})" for layer in net.layers],
        "params": int(net.count_params()),
        "test_accuracy": round(evaluate_accuracy(net, ds.x_test, ds.y_test), 4),
        "n_train": int(len(ds.x_train)),
        "n_test": int(len(ds.x_test)),
        "training": {"epochs": epochs, "batch_size": batch_size, "optimizer": "Adam(1e-3)", "seed": seed,
                     "validation_split": 0.1, "seconds": round(seconds, 1),
                     "final_loss": round(history["loss"][-1], 4)},
        "versions": _tf.library_versions(),
        "made_by": "python -m compression.pretrained",
    }
    atomic_write_json(path.with_suffix(".json"), card)
    return card


def main() -> None:
    for dataset, model, epochs, batch_size in SAMPLES:
        card = make_sample(dataset, model, epochs, batch_size)
        print(f"{dataset} × {model}: test accuracy {card['test_accuracy']:.4f} "
              f"({card['params']} params, {card['training']['seconds']} s)")


if __name__ == "__main__":
    main()
