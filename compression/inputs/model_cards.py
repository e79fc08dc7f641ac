"""Model summaries without TensorFlow in the calling process (the web server draws pages with these).

A summary is :func:`compression.inputs.models.model_summary`'s dict (layers, params, float_bytes) plus
``input_shape`` and ``outputs``. They come from:

1. the precomputed cards in ``sample_models/summaries/model_summaries.json`` — every zoo model for every
   built-in dataset's shape (10 classes), and every shipped pretrained sample — written by
   ``python -m compression.inputs.model_cards`` (re-run it when the zoo changes; a test checks they match);
2. otherwise (an uploaded model, an ``.npz`` dataset of another shape) a child process that
   imports TensorFlow, builds or loads the model, and prints the summary as JSON
   (:func:`summarize_in_child`); its errors come back as the same one-sentence ``CompressionError``.

Usage::

    summary = model_summary("zoo", "seed_cnn", None, (8, 8, 1), 10)
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from functools import lru_cache
from pathlib import Path
from typing import Any

from ..errors import CompressionError

__all__ = ["CARDS_FILE", "card_key", "check_model_file", "model_summary", "summarize_in_child"]

CARDS_FILE = Path(__file__).resolve().parents[2] / "sample_models" / "summaries" / "model_summaries.json"
CARD_CLASSES = 10
CHILD_TIMEOUT_S = 300


def card_key(kind: str, name: str, input_shape=(), num_classes: int = CARD_CLASSES, dataset: str = "") -> str:
    """``zoo|seed_cnn|8x8x1|10`` or ``pretrained|digits|seed_cnn``."""
    if kind == "pretrained":
        return f"pretrained|{dataset}|{name}"
    return f"zoo|{name}|{'x'.join(str(int(d)) for d in input_shape)}|{int(num_classes)}"


@lru_cache(maxsize=1)
def _cards() -> dict[str, dict]:
    try:
        return json.loads(CARDS_FILE.read_text())
    except (OSError, ValueError):
        return {}


def model_summary(kind: str, name: str | None, path: str | None, input_shape, num_classes: int,
                  dataset: str = "") -> dict[str, Any]:
    """The summary of a zoo model (``kind="zoo"``), a pretrained sample (``"pretrained"``) or a file (``path``).

    Raises:
        CompressionError: the model cannot be built for this data, or the file is refused.
    """
    if not path:
        card = _cards().get(card_key(kind, name or "", input_shape, num_classes, dataset))
        if card is not None:
            return card
    return summarize_in_child(kind, name, path, tuple(input_shape), int(num_classes), dataset)


def check_model_file(path: str | Path) -> dict[str, Any]:
    """Check and summarise an uploaded model file in a child process (the caller never imports TensorFlow).

    Raises:
        CompressionError: the file is refused (the safe loader's sentence).
    """
    return summarize_in_child("file", None, str(path), (), 0, "")


def summarize_in_child(kind: str, name: str | None, path: str | None, input_shape: tuple, num_classes: int,
                       dataset: str) -> dict[str, Any]:
    request = {"kind": kind, "name": name, "path": path, "input_shape": list(input_shape),
               "num_classes": num_classes, "dataset": dataset}
    done = subprocess.run([sys.executable, "-m", "compression.inputs.model_cards", "--child", json.dumps(request)],
                          capture_output=True, text=True, timeout=CHILD_TIMEOUT_S,
                          cwd=Path(__file__).resolve().parents[2])
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise CompressionError("Summarising the model failed: its process ended without an answer"
                               f" (exit code {done.returncode}).")
    answer = json.loads(lines[-1])
    if "error" in answer:
        raise CompressionError(answer["error"])
    return answer["summary"]


def _summarize(kind: str, name: str | None, path: str | None, input_shape, num_classes: int,
               dataset: str) -> dict[str, Any]:
    """In this process (imports TensorFlow)."""
    from .models import build_model
    from .models import model_summary as summarize

    if path:
        from .safe_load import load_user_model

        model = load_user_model(path)
    elif kind == "pretrained":
        from .pretrained import load_pretrained

        model = load_pretrained(dataset, name)
    else:
        model = build_model(name, input_shape, num_classes)
    summary = summarize(model)
    summary["input_shape"] = [int(d) for d in model.input_shape[1:]]
    summary["outputs"] = int(model.output_shape[-1])
    return summary


def write_cards(path: Path = CARDS_FILE) -> dict[str, dict]:
    """Compute every card (zoo × built-in shapes, pretrained samples) and write them."""
    from .._io import atomic_write_json
    from .builtin_datasets import _REGISTRY
    from .models import ZOO
    from .pretrained import list_pretrained

    cards: dict[str, dict] = {}
    shapes = sorted({entry.input_shape for entry in _REGISTRY.values()})
    for name in ZOO:
        for shape in shapes:
            try:
                cards[card_key("zoo", name, shape)] = _summarize("zoo", name, None, shape, CARD_CLASSES, "")
            except CompressionError:
                pass  # an architecture that cannot take this shape: the child says why when asked
    for sample in list_pretrained():
        cards[card_key("pretrained", sample["model"], dataset=sample["dataset"])] = _summarize(
            "pretrained", sample["model"], None, (), 0, sample["dataset"])
    atomic_write_json(path, cards)
    return cards


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m compression.inputs.model_cards", description=__doc__.splitlines()[0]
    )
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.child is None:
        cards = write_cards()
        print(f"{len(cards)} model summaries written to {CARDS_FILE}")
        return 0
    request = json.loads(args.child)
    try:
        answer = {"summary": _summarize(request["kind"], request["name"], request["path"],
                                        request["input_shape"], request["num_classes"], request["dataset"])}
    except CompressionError as exc:
        answer = {"error": str(exc)}
    sys.stdout.write("\n" + json.dumps(answer) + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    import os

    code = main()
    os._exit(code)  # skip TensorFlow's teardown
