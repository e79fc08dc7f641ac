"""Train the pretrained baselines shipped in ``sample_models/`` and write their cards (a few minutes on 2 CPU
cores)::

    python -m compression.techniques.samples

Here, not in :mod:`compression.inputs.pretrained` (which loads them), because making a sample trains it.
"""

from __future__ import annotations

import time

from .. import _tf
from .._io import atomic_write_json
from ..inputs.data import load_dataset
from ..inputs.models import build_model
from ..inputs.pretrained import SAMPLES, SAMPLES_DIR, sample_path
from .train import evaluate_accuracy, train_baseline


def make_sample(dataset: str, model: str, epochs: int, batch_size: int, seed: int = 0) -> dict:
    """Train one sample baseline and write its model and card."""
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
        "made_by": "python -m compression.techniques.samples",
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
