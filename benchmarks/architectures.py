"""Real architectures × every mode: tiny versions (seconds each) through the whole engine, one table.

Each architecture is built with tf_keras at a tiny size, saved as an uploaded ``.keras``, fed
random data of its input shape (an ``.npz``), trained one epoch and run through ``run_recipe``
with every post-training mode, pruning, clustering and the QAT schemes. A cell is "ok" or the
variant's one-line reason; a second table says which ``.tflite`` TensorFlow Lite Micro runs. Run::

    nice python -m benchmarks.architectures            # all eight, rewrites docs/architectures.md
    python -m benchmarks.architectures --only gru,lstm --doc ''   # a few, print only
"""

from __future__ import annotations

import argparse
import datetime as dt
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
TECHNIQUES = {  # float32 conversion, so the cell is about the technique, not the mode
    "pruned": {"pruning": {"final_sparsity": 0.8}},
    "clustered": {"clustering": {"clusters": 8}},
}
DOC = Path(__file__).resolve().parents[1] / "docs" / "architectures.md"
DESCRIPTIONS = {
    "mobilenet_v2": "MobileNetV2-style inverted residual: Conv–BN–ReLU6, expand 1×1, depthwise 3×3, linear "
                    "bottleneck, Add",
    "hard_swish": "MobileNetV3-style hard-swish: `x * ReLU6(x + 3) / 6` (TFOpLambda `+`, `/`, Multiply)",
    "squeeze_excite": "EfficientNet-style: Rescaling + Normalization, swish conv, squeeze-excite (pool, 1×1 convs, "
                      "sigmoid, Multiply)",
    "residual_cnn": "ResNet-style block: Conv–BN–ReLU twice, Add, ReLU",
    "embedding": "int32 token ids (N, 20) → Embedding(100, 8) → GlobalAveragePooling1D → Dense",
    "gru": "float sequence (N, 20, 3) → GRU(8) → Dense",
    "lstm": "float sequence (N, 20, 3) → LSTM(8) → Dense",
    "bilstm": "float sequence (N, 20, 3) → Bidirectional(LSTM(8)) → Dense",
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


def _one_line(text: str, limit: int = 320) -> str:
    line = " ".join(str(text).split())
    return line if len(line) <= limit else line[: limit - 1] + "…"


def run(names, out: Path, schemes=tuple(SCHEMES)) -> tuple[dict, dict, dict]:
    """Run each architecture's recipe; returns (engine cells, TFLM cells, notes) by architecture, then column."""
    from compression.config import Recipe
    from compression.run.recipe import run_recipe
    from compression.run_folder import RunFolder

    builders = _builders()
    table: dict[str, dict[str, str]] = {}
    tflm: dict[str, dict[str, str]] = {}
    notes: dict[str, list[str]] = {}
    for name in names:
        model = builders[name]()
        folder = out / name
        folder.mkdir(parents=True, exist_ok=True)
        model.save(folder / "model.keras")
        np.savez(folder / "data.npz", **_data(model))
        variants = [{"name": m, "quantization": m, "representative_samples": 16} for m in MODES]
        variants += [{"name": s, "quantization": "int8", "representative_samples": 16, "fine_tune_epochs": 1,
                      **spec} for s, spec in SCHEMES.items() if s in schemes]
        variants += [{"name": t, "fine_tune_epochs": 1, **spec} for t, spec in TECHNIQUES.items()]
        recipe = Recipe.from_dict({
            "title": f"architecture {name}", "dataset": {"name": "npz", "path": str(folder / "data.npz")},
            "model": {"path": str(folder / "model.keras")}, "baseline": {"epochs": 1},
            "variants": variants, "evaluation": {"latency_runs": 5, "throughput_batch": 8, "tflm_max_samples": 32}})
        started = time.perf_counter()
        try:
            run_recipe(recipe, folder / "run")
        except Exception as exc:  # noqa: BLE001 - a refused baseline is a row of the table too
            table[name] = {v["name"]: _one_line(f"baseline: {exc}") for v in variants}
            continue
        results = RunFolder(folder / "run").read_results()
        table[name] = {v.name: ("ok" if v.ok else _one_line(v.error or v.status.value)) for v in results.variants}
        tflm[name] = {
            v.name: "runs" if v.tflm.runnable else _one_line(v.tflm.reason or "not measured")
            for v in results.variants if v.ok and v.tflm is not None
        }
        found = {n for v in results.variants for n in v.notes if "could not" in n or "skipped" in n}
        # Flags are left out: on random labels every variant is near chance, that says nothing here.
        found |= {f"{v.name}: the .tflite takes {v.input_dtype} input" for v in results.variants
                  if v.ok and v.input_dtype and v.input_dtype not in ("float32", "int8")}
        found |= {f"{v.name}: QAT left {len(v.float_layers)} layer(s) float ("
                  + ", ".join(sorted({str(f.get('reason', '?')) for f in v.float_layers}))[:200] + ")"
                  for v in results.variants if v.name == "qat" and v.float_layers}
        if results.dataset is not None:
            found |= {f"data: {n}" for n in results.dataset.notes if not n.startswith("read as")}
        notes[name] = sorted(_one_line(n) for n in found)
        print(f"{name}: {time.perf_counter() - started:.0f} s; " + "; ".join(
            f"{k}={'ok' if s == 'ok' else 'FAILED'}" for k, s in table[name].items()), flush=True)
        for note in notes[name]:
            print(f"    note: {note}", flush=True)
    return table, tflm, notes


def _grid(table: dict[str, dict[str, str]], columns: list[str], good: str, reasons: list[str]) -> list[str]:
    """A Markdown table: ``good`` cells as they are, others "failed [n]" with the reason appended to ``reasons``."""
    lines = ["| architecture | " + " | ".join(columns) + " |", "|---" * (len(columns) + 1) + "|"]
    for name, row in table.items():
        cells = []
        for c in columns:
            cell = row.get(c, "—")
            if cell not in (good, "—"):
                if cell not in reasons:
                    reasons.append(cell)
                cell = f"{'failed' if good == 'ok' else 'no'} [{reasons.index(cell) + 1}]"
            cells.append(cell)
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def report(table, tflm, notes, command: str, seconds: float) -> str:
    """docs/architectures.md: what was run, the arch × mode table, the TFLM table, reasons and notes."""
    import tensorflow as tf

    from compression import _tf

    columns = [*MODES, *SCHEMES, *TECHNIQUES]
    reasons: list[str] = []
    lines = [
        "# Real architectures × modes, measured",
        "",
        f"Generated {dt.datetime.now(dt.UTC):%Y-%m-%d %H:%M} UTC by `{command}` in {seconds / 60:.1f} min "
        f"(TensorFlow {tf.__version__}, tf_keras {_tf.keras().__version__}). Do not edit by hand: rerun it.",
        "",
        "Each architecture is a tiny tf_keras model saved as an uploaded `.keras`, given random data of its input "
        "shape as an `.npz` (96 train / 32 test, 4 classes; accuracy is not the point), trained 1 epoch as the "
        "baseline, then run through the engine (`run_recipe`, as the app's worker and the CLI do) with every "
        "post-training mode, the four QAT schemes (int8) and pruning / clustering alone (float32). A cell is "
        "**ok** (converted and measured by LiteRT) or **failed [n]** with the variant's one-line reason below.",
        "",
        "| architecture | what |",
        "|---|---|",
        *[f"| {n} | {DESCRIPTIONS.get(n, '')} |" for n in table],
        "",
        "## Converted and measured (LiteRT)",
        "",
        *_grid(table, columns, "ok", reasons),
        "",
    ]
    lines += [f"[{i}] {r}  " for i, r in enumerate(reasons, 1)] or ["Every cell converted and measured."]
    lines += ["", "## Runs under TensorFlow Lite Micro (reference kernels)", "",
              "Only the variants that converted; **runs** = TFLM allocates and invokes the `.tflite`.", ""]
    tflm_reasons: list[str] = []
    lines += _grid(tflm, columns, "runs", tflm_reasons)
    lines += [""] + [f"[{i}] {r}  " for i, r in enumerate(tflm_reasons, 1)]
    lines += ["", "## Notes the runs gave (data reading, skipped layers, layers left float, input types)", ""]
    for name, found in notes.items():
        lines += [f"- **{name}**: {n}" for n in found]
    return "\n".join(lines) + "\n"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", default="", help="comma-separated architecture names")
    parser.add_argument("--out", default=None, help="folder for the models, data and runs (default: a temp dir)")
    parser.add_argument("--schemes", default=",".join(SCHEMES), help="comma-separated QAT schemes to run")
    parser.add_argument("--doc", default=str(DOC), help="Markdown file to write ('' = print only)")
    args = parser.parse_args(argv)
    names = [n for n in args.only.split(",") if n] or list(_builders())
    out = Path(args.out or tempfile.mkdtemp(prefix="architectures-"))
    started = time.perf_counter()
    table, tflm, notes = run(names, out, tuple(s for s in args.schemes.split(",") if s))
    command = "python -m benchmarks.architectures" + "".join(f" {a}" for a in (argv or sys.argv[1:]))
    text = report(table, tflm, notes, command, time.perf_counter() - started)
    print("\n" + text)
    if args.doc:
        Path(args.doc).write_text(text, encoding="utf-8")
        print(f"wrote {args.doc}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
