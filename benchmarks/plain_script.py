"""Experiment E on digits the way the write-ups do it: one plain sequential script.

No engine, no cache, no batching: train the seed CNN from scratch, then prune, QAT and
PQAT with tfmot, convert each with ``TFLiteConverter``, and evaluate each ``.tflite``
with a per-sample interpreter loop. It does the same work as the product's
``experiment_e`` preset on digits (same variants, epochs and latency runs), except that
it retrains its baseline (80 epochs, batch 32: how the shipped pretrained one was made).

Benchmark 4 times it as a subprocess, from start to exit::

    python benchmarks/plain_script.py OUT.json
"""

import os
import time

START = time.perf_counter()  # before the imports: the script's time includes TensorFlow's import
os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import gzip  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402
import tensorflow_model_optimization as tfmot  # noqa: E402
import tf_keras as keras  # noqa: E402
from ai_edge_litert.interpreter import Interpreter  # noqa: E402
from sklearn.datasets import load_digits  # noqa: E402
from sklearn.model_selection import train_test_split  # noqa: E402

BASELINE_EPOCHS, BASELINE_BATCH = 80, 32
FINE_TUNE_EPOCHS, BATCH = 10, 64
LATENCY_RUNS = 200
PRUNE_FREQUENCY = None  # None: steps // 8 (digits); the Fashion-MNIST comparison uses the engine's 100
SHAPE = (8, 8, 1)


def data():
    d = load_digits()
    x = (d.images.astype(np.float32) / 16.0)[..., None]
    return train_test_split(x, d.target, test_size=0.2, stratify=d.target, random_state=0)


def fashion(folder):
    """Fashion-MNIST from its four IDX .gz files, scaled to [0, 1] (what a plain script does)."""
    def read(name, offset):
        with gzip.open(os.path.join(folder, name)) as f:
            return np.frombuffer(f.read(), np.uint8, offset=offset)
    x_train = read("train-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    x_test = read("t10k-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28, 1).astype(np.float32) / 255.0
    return x_train, x_test, read("train-labels-idx1-ubyte.gz", 8).astype(np.int64), \
        read("t10k-labels-idx1-ubyte.gz", 8).astype(np.int64)


def seed_cnn():
    return keras.Sequential([
        keras.layers.Input(SHAPE),
        keras.layers.Conv2D(12, 3, activation="relu"),
        keras.layers.MaxPooling2D(2),
        keras.layers.Flatten(),
        keras.layers.Dense(10),
    ])


def compile_(model):
    model.compile(optimizer=keras.optimizers.Adam(1e-3),
                  loss=keras.losses.SparseCategoricalCrossentropy(from_logits=True), metrics=["accuracy"])


def convert(model, mode, x_train):
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    if mode != "float32":
        converter.optimizations = [tf.lite.Optimize.DEFAULT]
    if mode == "int8":
        def representative():
            for row in x_train[:200]:
                yield [row[None]]
        converter.representative_dataset = representative
        converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
        converter.inference_input_type = tf.int8
        converter.inference_output_type = tf.int8
    return converter.convert()


def evaluate(tflite, x_test, y_test):
    """Accuracy with one invoke per sample, then batch-1 latency."""
    interpreter = Interpreter(model_content=tflite)
    interpreter.allocate_tensors()
    inp, out = interpreter.get_input_details()[0], interpreter.get_output_details()[0]
    scale, zero = inp["quantization"]
    correct = 0
    for sample, label in zip(x_test, y_test, strict=True):
        value = sample[None]
        if inp["dtype"] == np.int8:
            value = np.clip(np.round(value / scale + zero), -128, 127).astype(np.int8)
        interpreter.set_tensor(inp["index"], value)
        interpreter.invoke()
        correct += int(interpreter.get_tensor(out["index"]).argmax() == label)
    times = []
    for _ in range(LATENCY_RUNS):
        t = time.perf_counter()
        interpreter.invoke()
        times.append(time.perf_counter() - t)
    return correct / len(y_test), float(np.median(times) * 1000)


def clone(model):
    c = keras.models.clone_model(model)
    c.set_weights(model.get_weights())
    return c


def main(out_path):
    tf.random.set_seed(0)
    np.random.seed(0)
    x_train, x_test, y_train, y_test = fashion(FASHION) if FASHION else data()
    base = seed_cnn()
    compile_(base)
    base.fit(x_train, y_train, epochs=BASELINE_EPOCHS, batch_size=BASELINE_BATCH, validation_split=0.1, verbose=0)
    trained = time.perf_counter() - START

    steps = int(np.ceil(len(x_train) / BATCH)) * FINE_TUNE_EPOCHS
    schedule = tfmot.sparsity.keras.PolynomialDecay(0.5, 0.8, begin_step=0, end_step=steps - 1,
                                                    frequency=PRUNE_FREQUENCY or max(1, steps // 8))
    pruned = tfmot.sparsity.keras.prune_low_magnitude(clone(base), pruning_schedule=schedule)
    compile_(pruned)
    pruned.fit(x_train, y_train, epochs=FINE_TUNE_EPOCHS, batch_size=BATCH, verbose=0,
               callbacks=[tfmot.sparsity.keras.UpdatePruningStep()])
    pruned = tfmot.sparsity.keras.strip_pruning(pruned)

    qat = tfmot.quantization.keras.quantize_model(clone(base))
    compile_(qat)
    qat.fit(x_train, y_train, epochs=FINE_TUNE_EPOCHS, batch_size=BATCH, verbose=0)

    pqat = tfmot.quantization.keras.quantize_apply(
        tfmot.quantization.keras.quantize_annotate_model(clone(pruned)),
        tfmot.experimental.combine.Default8BitPrunePreserveQuantizeScheme())
    compile_(pqat)
    pqat.fit(x_train, y_train, epochs=FINE_TUNE_EPOCHS, batch_size=BATCH, verbose=0)

    rows = []
    for name, model, mode in [("float32", base, "float32"), ("int8", base, "int8"), ("pruned", pruned, "float32"),
                              ("pruned-dynamic", pruned, "dynamic"), ("qat-int8", qat, "int8"),
                              ("pqat-int8", pqat, "int8")]:
        data_ = convert(model, mode, x_train)
        accuracy, latency = evaluate(data_, x_test, y_test)
        rows.append({"name": name, "accuracy": accuracy, "latency_ms": latency, "size_bytes": len(data_),
                     "gzip_bytes": len(gzip.compress(data_, 9))})
        print(f"{name:15s} acc {accuracy:.4f}  {len(data_):6d} B  {latency:.4f} ms", flush=True)
    result = {"rows": rows, "baseline_seconds": trained, "seconds": time.perf_counter() - START}
    with open(out_path, "w") as f:
        json.dump(result, f, indent=1)


FASHION = None

if __name__ == "__main__":
    # python benchmarks/plain_script.py OUT.json [FASHION_DIR BASELINE_EPOCHS FINE_TUNE_EPOCHS BATCH]
    if len(sys.argv) > 2:
        FASHION, SHAPE, PRUNE_FREQUENCY = sys.argv[2], (28, 28, 1), 100
        BASELINE_EPOCHS, FINE_TUNE_EPOCHS = int(sys.argv[3]), int(sys.argv[4])
        BASELINE_BATCH = BATCH = int(sys.argv[5])
    main(sys.argv[1])
