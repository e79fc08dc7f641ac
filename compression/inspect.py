"""Per-layer weight statistics: what pruning zeroes and clustering collapses."""

from __future__ import annotations

import numpy as np

_KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel", "embeddings")


def layer_kernels(model) -> dict[str, np.ndarray]:
    """Every kernel-like weight by layer name (biases and BatchNorm excluded).

    Read from the model's variables rather than ``layer.kernel`` because tfmot's
    QuantizeWrapper moves the kernel out of the inner layer's weight list; the
    variable name's first component is still the original layer's name.
    """
    out, seen = {}, set()
    for w in model.weights:
        if id(w) in seen:
            continue
        seen.add(id(w))
        parts = w.name.split(":")[0].split("/")
        short = parts[-1]
        if short not in _KERNEL_NAMES:
            continue
        key = parts[0] if short in ("kernel", "depthwise_kernel", "embeddings") else f"{parts[0]}/{short}"
        out[key] = np.asarray(w.numpy())
    return out


def layer_weight_stats(model) -> list[dict]:
    """Per kernel: name, sparsity (fraction of exact zeros), unique_values, params."""
    return [
        {"name": name, "sparsity": float(np.mean(k == 0)), "unique_values": int(np.unique(k).size),
         "params": int(k.size)}
        for name, k in layer_kernels(model).items()
    ]


def overall_sparsity(stats: list[dict]) -> float:
    """Fraction of zeros over all kernels, weighted by their size."""
    total = sum(s["params"] for s in stats)
    return float(sum(s["sparsity"] * s["params"] for s in stats) / total) if total else 0.0
