"""Real architectures × every mode: tiny versions (seconds each) through the whole engine, one table.

Each architecture is built with tf_keras at a tiny size, saved as an uploaded ``.keras``, fed
random data of its input shape (an ``.npz``), trained one epoch and run through ``run_recipe``
with every post-training mode and the QAT schemes. A cell is "ok" or the variant's one-line
reason. Run::

    python -m benchmarks.architectures [--only gru,lstm] [--out DIR]
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")

MODES = ("float32", "dynamic", "float16", "int8", "int16x8")
SCHEMES = {
    "qat": {"qat": {}},
    "pqat": {"pruning": {"final_sparsity": 0.5}, "qat": {}},
    "cqat": {"clustering": {"clusters": 8}, "qat": {}},
    "pcqat": {"pruning": {"final_sparsity": 0.5}, "clustering": {"clusters": 8}, "qat": {}},
}


def _builders():
    from compression import _tf

    keras = _tf.keras()
    layers = keras.layers

    def image(inputs_shape=(16, 16, 3)):
        return keras.Input(inputs_shape)

    def mobilenet_v2():
        i = image()
        x = layers.Conv2D(8, 3, strides=2, padding="same", use_bias=False)(i)
        x = layers.ReLU(6.0)(layers.BatchNormalization()(x))
        y = layers.Conv2D(24, 1, use_bias=False)(x)  # expand
        y = layers.ReLU(6.0)(layers.BatchNormalization()(y))
        y = layers.DepthwiseConv2D(3, padding="same", use_bias=False)(y)
        y = layers.ReLU(6.0)(layers.BatchNormalization()(y))
        y = layers.BatchNormalization()(layers.Conv2D(8, 1, use_bias=False)(y))  # linear bottleneck
        x = layers.Add()([x, y])
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(i, layers.Dense(4)(x))

    def hard_swish():
        i = image()
        x = layers.Conv2D(8, 3, padding="same")(i)
        x = layers.Multiply()([x, layers.ReLU(6.0)(x + 3.0) / 6.0])  # TFOpLambda x+3 and /6, Multiply
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(i, layers.Dense(4)(x))

    def squeeze_excite():
        i = image()
        x = layers.Rescaling(1 / 255.0)(i)
        x = layers.Normalization(mean=0.5, variance=0.25)(x)
        x = layers.Conv2D(8, 3, padding="same", activation="swish")(x)
        s = layers.GlobalAveragePooling2D(keepdims=True)(x)
        s = layers.Conv2D(2, 1, activation="swish")(s)
        s = layers.Conv2D(8, 1, activation="sigmoid")(s)
        x = layers.Multiply()([x, s])
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(i, layers.Dense(4)(x))

    def residual_cnn():
        i = image()
        x = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(i)))
        y = layers.ReLU()(layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(x)))
        y = layers.BatchNormalization()(layers.Conv2D(8, 3, padding="same")(y))
        x = layers.ReLU()(layers.Add()([x, y]))
        x = layers.GlobalAveragePooling2D()(x)
        return keras.Model(i, layers.Dense(4)(x))

    def embedding():
        i = keras.Input((20,), dtype="int32")
        x = layers.GlobalAveragePooling1D()(layers.Embedding(100, 8)(i))
        return keras.Model(i, layers.Dense(4)(layers.Dense(16, activation="relu")(x)))

    def recurrent(kind):
        def build():
            i = keras.Input((20, 3))
            cell = {"gru": lambda: layers.GRU(8), "lstm": lambda: layers.LSTM(8),
                    "bilstm": lambda: layers.Bidirectional(layers.LSTM(8))}[kind]()
            return keras.Model(i, layers.Dense(4)(cell(i)))
        return build

    return {"mobilenet_v2": mobilenet_v2, "hard_swish": hard_swish, "squeeze_excite": squeeze_excite,
            "residual_cnn": residual_cnn, "embedding": embedding, "gru": recurrent("gru"),
            "lstm": recurrent("lstm"), "bilstm": recurrent("bilstm")}


def _data(model, n_train=96, n_test=32, seed=0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    shape = tuple(model.input_shape[1:])
    if model.inputs[0].dtype.is_integer:
        make = lambda n: rng.integers(0, 100, size=(n, *shape)).astype(np.int32)  # noqa: E731
    elif len(shape) == 3:
        make = lambda n: rng.integers(0, 256, size=(n, *shape)).astype(np.uint8)  # noqa: E731
    else:
        make = lambda n: rng.normal(size=(n, *shape)).astype(np.float32)  # noqa: E731
    return {"x_train": make(n_train), "y_train": np.arange(n_train) % 4,
            "x_test": make(n_test), "y_test": np.arange(n_test) % 4}


def run(names, out: Path, schemes=tuple(SCHEMES)) -> dict[str, dict[str, str]]:
    from compression.config import Recipe
    from compression.recipes import run_recipe
    from compression.results import RunFolder

    builders = _builders()
    table: dict[str, dict[str, str]] = {}
    for name in names:
        model = builders[name]()
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / "model.keras")
        np.savez(folder / "data.npz", **_data(model))
        variants = [{"name": m, "quantization": m, "representative_samples": 16} for m in MODES]
        variants += [{"name": s, "quantization": "int8", "representative_samples": 16, "fine_tune_epochs": 1,
                      **spec} for s, spec in SCHEMES.items() if s in schemes]
        variants.append({"name": "pruned", "pruning": {"final_sparsity": 0.8}, "fine_tune_epochs": 1})
        recipe = Recipe.from_dict({
            "title": f"architecture {name}", "dataset": {"name": "npz", "path": str(folder / "data.npz")},
            "model": {"path": str(folder / "model.keras")}, "baseline": {"epochs": 1},
            "variants": variants, "evaluation": {"latency_runs": 5, "throughput_batch": 8}})
        started = time.perf_counter()
        try:
            run_recipe(recipe, folder / "run")
        except Exception as exc:  # noqa: BLE001 - a refused baseline is a row of the table too
            table[name] = {v["name"]: f"baseline: {exc}" for v in variants}
            continue
        results = RunFolder(folder / "run").read_results()
        table[name] = {v.name: ("ok" if v.ok else (v.error or v.status.value)) for v in results.variants}
        notes = {n for v in results.variants for n in v.notes if "could not" in n or "skipped" in n}
        print(f"{name}: {time.perf_counter() - started:.0f} s; " + "; ".join(
            f"{k}={'ok' if s == 'ok' else 'FAILED'}" for k, s in table[name].items()), flush=True)
        for note in sorted(notes):
            print(f"    note: {note}", flush=True)
    return table


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated architecture names")
    parser.add_argument("--out", default=None, help="folder for the models, data and runs (default: a temp dir)")
    parser.add_argument("--schemes", default=",".join(SCHEMES), help="comma-separated QAT schemes to run")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(_builders())
    out = Path(args.out or tempfile.mkdtemp(prefix="architectures-"))
    table = run(names, out, tuple(s for s in args.schemes.split(",") if s))
    columns = [*MODES, *SCHEMES, "pruned"]
    print("\n| architecture | " + " | ".join(columns) + " |")
    print("|---" * (len(columns) + 1) + "|")
    reasons: list[str] = []
    for name, row in table.items():
        cells = []
        for c in columns:
            cell = row.get(c, "—")
            if cell != "ok":
                reasons.append(f"{name} × {c}: {cell}")
                cell = f"failed [{len(reasons)}]"
            cells.append(cell)
        print(f"| {name} | " + " | ".join(cells) + " |")
    for i, reason in enumerate(reasons, 1):
        print(f"[{i}] {reason}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
