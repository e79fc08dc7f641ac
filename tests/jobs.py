"""Job functions for the runner tests, run inside real worker processes.

They have the recipe engine's signature ``fn(recipe, out_dir, progress=None,
cancel=None)`` and do cheap fake work (no TensorFlow), so the store, the
runner and the worker are tested for real in seconds. Referenced as
``"tests.jobs:<name>"``.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import time
from pathlib import Path

from compression.errors import CompressionError
from compression.progress import Cancelled, Progress, emit
from compression.store import atomic_write_bytes, atomic_write_text

DEADLINE_S = 120  # no test job outlives a forgotten test by much


def make_recipe(title: str = "tiny", variants=("float32", "int8")):
    """A digits × seed CNN recipe (baseline trained 1 epoch): one variant per name, the name as its mode."""
    from compression.config import Recipe

    return Recipe.from_dict(
        {
            "title": title,
            "dataset": {"name": "digits"},
            "model": {"name": "seed_cnn"},
            "baseline": {"epochs": 1},
            "variants": [{"name": v, **({"quantization": v} if v != "float32" else {})} for v in variants],
        }
    )


def fake_tflite(title: str, variant: str) -> bytes:
    """Deterministic bytes standing in for a variant's .tflite."""
    seed = hashlib.sha256(f"{title}/{variant}".encode()).digest()
    return b"TFL3" + seed * 64


def _results(recipe, out_dir: Path, rows: list[dict], status: str) -> dict:
    return {
        "recipe": recipe.to_dict(),
        "run_dir": out_dir.name,
        "status": status,
        "reference": {"size_bytes": 4000, "gzip_bytes": 2000, "accuracy": 0.95},
        "variants": rows,
    }


def quick_job(recipe, out_dir, progress=None, cancel=None):
    """Fake a short recipe: per variant a few batch/epoch events, a .tflite, results.json rewritten."""
    out_dir = Path(out_dir)
    rows = []
    n = len(recipe.variants)
    for i, variant in enumerate(recipe.variants):
        for epoch in (1, 2):
            for batch in (0, 1, 2, None):  # three batches, then the epoch's end with its accuracy
                at = {"batch": batch} if batch is not None else {"accuracy": 0.9}
                emit(progress, Progress("fine_tune", variant.name, (i + epoch / 3) / n, epoch=epoch, epochs=2,
                                        loss=1.0 / epoch, **at))
        if cancel is not None and cancel():
            raise Cancelled()
        data = fake_tflite(recipe.title, variant.name)
        atomic_write_bytes(out_dir / f"{variant.name}.tflite", data)
        row = {
            "name": variant.name,
            "status": "ok",
            "tflite": f"{variant.name}.tflite",
            "size_bytes": len(data),
            "gzip_bytes": 2000 // (i + 1),
            "accuracy": 0.95 - 0.005 * i,
        }
        rows.append(row)
        atomic_write_text(out_dir / "results.json", json.dumps(_results(recipe, out_dir, rows, "running")))
        emit(progress, Progress("variant_done", variant.name, (i + 1) / n, data={"row": row}))
    atomic_write_text(out_dir / "results.json", json.dumps(_results(recipe, out_dir, rows, "ok")))
    emit(progress, Progress("done", "", 1.0))


def sleepy_job(recipe, out_dir, progress=None, cancel=None):
    """Work in small steps, checking cancel every step, until cancelled (or the deadline)."""
    start = time.monotonic()
    step = 0
    while time.monotonic() - start < DEADLINE_S:
        step += 1
        emit(progress, Progress("fine_tune", recipe.variants[0].name, 0.1, epoch=1, epochs=1, batch=step))
        if cancel is not None and cancel():
            raise Cancelled()
        time.sleep(0.01)
    raise CompressionError("sleepy_job was never cancelled.")


def stubborn_job(recipe, out_dir, progress=None, cancel=None):
    """Ignore cancel (like a long converter call in C++): only a signal stops it."""
    emit(progress, Progress("convert", recipe.variants[0].name, 0.5))
    end = time.monotonic() + DEADLINE_S
    while time.monotonic() < end:
        time.sleep(0.01)


def segfault_job(recipe, out_dir, progress=None, cancel=None):
    """Crash the process the hard way while 'converting' the last variant."""
    name = recipe.variants[-1].name
    emit(progress, Progress("convert", name, 0.5, message=f"converting {name}"))
    os.kill(os.getpid(), signal.SIGSEGV)
    time.sleep(10)  # not reached


def exit_job(recipe, out_dir, progress=None, cancel=None):
    """Leave the process with a non-zero code and no result (like a native abort())."""
    emit(progress, Progress("baseline", "", 0.1))
    os._exit(3)


def error_job(recipe, out_dir, progress=None, cancel=None):
    """Fail the way a user's mistake fails."""
    emit(progress, Progress("data", "", 0.0))
    raise CompressionError("The dataset file is not a valid .npz archive.")


def bug_job(recipe, out_dir, progress=None, cancel=None):
    """Fail the way a bug fails."""
    raise KeyError("missing_key")


def slow_job(recipe, out_dir, progress=None, cancel=None):
    """Keep the store and the run folder busy (events and results.json rewrites) until cancelled or killed."""
    out_dir = Path(out_dir)
    start = time.monotonic()
    step = 0
    while time.monotonic() - start < DEADLINE_S:
        step += 1
        # Epoch-level events are never throttled: the database is written continuously.
        emit(progress, Progress("fine_tune", recipe.variants[0].name, 0.2, epoch=step, epochs=10**6, loss=1 / step))
        atomic_write_text(
            out_dir / "results.json", json.dumps(_results(recipe, out_dir, [], "running") | {"step": step})
        )
        atomic_write_bytes(out_dir / "partial.tflite", fake_tflite(recipe.title, str(step)))
        if cancel is not None and cancel():
            raise Cancelled()
        time.sleep(0.002)
    raise CompressionError("slow_job was never stopped.")
