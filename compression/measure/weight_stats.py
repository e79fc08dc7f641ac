"""Per-layer weight statistics: what pruning zeroes and clustering collapses."""

from __future__ import annotations

import numpy as np

_KERNEL_NAMES = ("kernel", "depthwise_kernel", "pointwise_kernel", "recurrent_kernel", "embeddings")


def layer_kernels(model) -> dict[str, np.ndarray]:
    """Every kernel-like weight by layer name (biases and BatchNorm excluded).

    Walks the layers and reads each one's variables (a tfmot QuantizeWrapper keeps
    the kernel in its own weight list, not the inner layer's), naming them after
    the original layer; variable names are not used because stripping clustering
    leaves them without a layer prefix. A Bidirectional layer's two directions are
    ``<name>/forward_<rnn>`` and ``<name>/backward_<rnn>``.
    """
    out = {}
    for layer in model.layers:
        inner = layer
        while hasattr(inner, "layer") and not hasattr(inner, "layers"):
            inner = inner.layer
        for w in layer.weights:
            parts = w.name.split(":")[0].split("/")
            short = parts[-1]
            if short not in _KERNEL_NAMES:
                continue
            # A Bidirectional layer holds two copies (forward_*/backward_*): keep both directions apart.
            direction = next((p for p in parts[:-1] if p.startswith(("forward_", "backward_"))), None)
            base = f"{layer.name}/{direction}" if direction else inner.name
            key = base if short in ("kernel", "depthwise_kernel", "embeddings") else f"{base}/{short}"
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
