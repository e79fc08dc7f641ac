"""Command line: ``python -m compression run RECIPE.json --out DIR`` and listings.

An expected error (bad file, bad value) prints one line and exits with status 2;
a bug keeps its traceback.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

from .config import PRESETS, Recipe
from .errors import CompressionError
from .progress import Cancelled, Progress


class TerminalProgress:
    """A one-line progress bar on a terminal; plain lines when not a terminal."""

    def __init__(self, stream=sys.stderr):
        self.stream = stream
        self.tty = stream.isatty()
        self.started = time.perf_counter()
        self.last_line = ""

    def __call__(self, event: Progress) -> None:
        elapsed = time.perf_counter() - self.started
        eta = elapsed / event.fraction - elapsed if event.fraction > 0.02 else None
        what = event.variant or event.phase
        detail = event.message or (f"epoch {event.epoch}/{event.epochs}" if event.epoch else event.phase)
        if self.tty:
            width = 28
            filled = int(width * event.fraction)
            bar = "█" * filled + "·" * (width - filled)
            eta_text = f" ETA {eta:4.0f}s" if eta is not None else ""
            line = f"\r[{bar}] {event.fraction:4.0%} {what}: {detail}"[:110] + eta_text
            self.stream.write(line.ljust(len(self.last_line)))
            self.stream.flush()
            self.last_line = line
        elif event.phase in ("baseline_done", "variant_done", "done"):
            self.stream.write(f"{elapsed:6.1f}s {event.fraction:4.0%} {detail}\n")
            self.stream.flush()

    def close(self):
        if self.tty and self.last_line:
            self.stream.write("\n")
            self.stream.flush()


def _load_recipe(arg: str) -> Recipe:
    if arg in PRESETS:
        return PRESETS[arg]()
    path = Path(arg)
    if not path.is_file():
        raise CompressionError(f"Recipe file {arg!r} not found (or name a preset: {', '.join(PRESETS)}).")
    if path.stat().st_size > 1_000_000:
        raise CompressionError(f"Recipe file {arg!r} is larger than 1 MB; a recipe is a small JSON file.")
    return Recipe.from_json(path.read_text(encoding="utf-8", errors="replace"))


def cmd_run(args) -> int:
    import pandas as pd

    recipe = _load_recipe(args.recipe)
    bar = TerminalProgress()
    try:
        if args.store is not None:
            from .store import Store

            store = Store(args.store or None)
            table, out = _run_into_store(store, recipe, bar)
        else:
            from .recipes import run_recipe

            out = Path(args.out)
            table = run_recipe(recipe, out, progress=bar)
    finally:
        bar.close()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        cols = ["name", "status", "accuracy", "delta_accuracy", "latency_median_ms", "size_bytes", "gzip_bytes",
                "ratio", "gzip_ratio", "sparsity", "delegate"]
        print(table[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    failed = table[table.status != "ok"]
    for _, row in failed.iterrows():
        print(f"variant {row['name']!r} {row['status']}: {row['error']}", file=sys.stderr)
    print(f"results: {out / 'results.json'}")
    return 0 if len(failed) < len(table) else 1


def _run_into_store(store, recipe: Recipe, bar):
    """Run in this process but record it in the store, so it shows up in the app's History.

    The run is created "running" (no app runner can claim it) and holds the run's
    worker lock like a worker does, so a crash here is seen as one after a restart.
    """
    from .recipes import run_recipe
    from .worker import CancelCheck, ProgressWriter, _take_lock

    run_id = store.create_run(recipe, session="cli", running=True)
    out = store.run_dir(run_id)
    lock_fd = _take_lock(store, run_id)
    writer = ProgressWriter(store, run_id)

    def progress(event: Progress):
        bar(event)
        writer(event)

    try:
        table = run_recipe(recipe, out, progress=progress, cancel=CancelCheck(store, run_id))
    except Cancelled:
        store.set_status(run_id, "cancelled", error="Cancelled.")
        raise
    except CompressionError as exc:
        store.set_status(run_id, "failed", error=str(exc))
        raise
    except BaseException as exc:
        store.set_status(run_id, "failed", error=f"{type(exc).__name__}: {exc}")
        raise
    finally:
        os.close(lock_fd)
    results = store.results(run_id) or {}
    store.set_status(run_id, "ok" if results.get("status") == "ok" else "failed", error=results.get("error"))
    print(f"stored as run {run_id} in {store.root}")
    return table, out


def cmd_datasets(args) -> int:
    from .data import list_datasets

    for d in list_datasets():
        where = "available" if d.get("offline") else "needs download/files"
        print(f"{d['name']:<14} {where:<20} {d['description']}")
    return 0


def cmd_models(args) -> int:
    from .models import list_models
    from .pretrained import list_pretrained

    pretrained = {(c["dataset"], c["model"]): c for c in list_pretrained()}
    for m in list_models():
        shipped = [f"{d} ({c['test_accuracy']:.3f})" for (d, name), c in pretrained.items() if name == m["name"]]
        extra = f"  pretrained: {', '.join(shipped)}" if shipped else ""
        print(f"{m['name']:<16} {m['title']}{extra}")
    return 0


def cmd_presets(args) -> int:
    for name, make in PRESETS.items():
        r = make()
        print(f"{name:<14} {r.title}: {', '.join(v.name for v in r.variants)}")
    if args.show:
        print(PRESETS[args.show]().to_json())
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m compression", description=__doc__.splitlines()[0])
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a recipe (a JSON file or a preset name)")
    run.add_argument("recipe", help="recipe JSON file, or a preset: " + ", ".join(PRESETS))
    run.add_argument("--out", default="out", help="output folder for results.json and the .tflite files")
    run.add_argument("--store", nargs="?", const="", default=None,
                     help="record the run in the app's store (optionally give its folder)")
    run.set_defaults(func=cmd_run)
    sub.add_parser("datasets", help="list datasets").set_defaults(func=cmd_datasets)
    sub.add_parser("models", help="list zoo models and shipped pretrained baselines").set_defaults(func=cmd_models)
    presets = sub.add_parser("presets", help="list presets (--show NAME prints its JSON)")
    presets.add_argument("--show", choices=list(PRESETS))
    presets.set_defaults(func=cmd_presets)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except CompressionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    except Cancelled:
        print("error: cancelled", file=sys.stderr)
        return 130
    except KeyboardInterrupt:
        print("\ninterrupted", file=sys.stderr)
        return 130
