"""Benchmark 1: reference experiment E (pruning vs QAT vs both, with TFLite) through ``run_recipe``.

Runs on Fashion-MNIST (seed CNN, baseline trained here, seeded), on digits (shipped
pretrained seed CNN) and on mnist1d (shipped pretrained Conv1D), with the product's
own path: one :class:`~compression.config.Recipe` per dataset, run by
:func:`~compression.run.recipe.run_recipe` (its stage cache shares identical fine-tunes,
e.g. the pruning stage between ``pruned``, ``pruned-dynamic`` and the PQAT/PCQAT rows).
"""

from __future__ import annotations

import time
from typing import Any

from .common import (
    NEEDS_FASHION_MNIST,
    Context,
    Stopwatch,
    fashion_mnist_available,
    fmt,
    needs_fashion_mnist,
    not_measured,
    progress_printer,
    say,
    section,
    table,
    text_table,
)

TITLE = "1. Reference experiment E"

PRUNE_E = {"schedule": "polynomial", "initial_sparsity": 0.5, "final_sparsity": 0.8, "frequency": 100}
SPARSE_ROWS = ("pruned-dynamic-sparse", "pqat-int8-sparse", "pcqat16-int8-sparse")

# Fashion-MNIST settings: the write-up trains a few epochs and fine-tunes 2 (~1 700 steps).
FASHION_FULL = {"baseline_epochs": 4, "fine_tune_epochs": 2, "max_train": None, "max_test": None}
FASHION_QUICK = {"baseline_epochs": 2, "fine_tune_epochs": 2, "max_train": 4000, "max_test": 2000}


def e_variants(fine_tune_epochs: int) -> list[dict[str, Any]]:
    """Experiment E's rows plus clustering, PCQAT and sparse encoding (three candidates; the table keeps the best)."""
    e = fine_tune_epochs
    cluster16 = {"clusters": 16, "init": "kmeans++"}
    return [
        {"name": "float32"},
        {"name": "int8", "quantization": "int8"},
        {"name": "pruned", "pruning": PRUNE_E, "fine_tune_epochs": e},
        {"name": "pruned-dynamic", "pruning": PRUNE_E, "fine_tune_epochs": e, "quantization": "dynamic"},
        {"name": "qat-int8", "qat": {}, "fine_tune_epochs": e, "quantization": "int8"},
        {"name": "pqat-int8", "pruning": PRUNE_E, "qat": {}, "fine_tune_epochs": e, "quantization": "int8"},
        {"name": "cqat16-int8", "clustering": cluster16, "qat": {}, "fine_tune_epochs": e, "quantization": "int8"},
        {"name": "pcqat16-int8", "pruning": PRUNE_E, "clustering": cluster16, "qat": {}, "fine_tune_epochs": e,
         "quantization": "int8"},
        {"name": "pruned-dynamic-sparse", "pruning": PRUNE_E, "fine_tune_epochs": e, "quantization": "dynamic",
         "sparse_encoding": True},
        {"name": "pqat-int8-sparse", "pruning": PRUNE_E, "qat": {}, "fine_tune_epochs": e, "quantization": "int8",
         "sparse_encoding": True},
        {"name": "pcqat16-int8-sparse", "pruning": PRUNE_E, "clustering": cluster16, "qat": {},
         "fine_tune_epochs": e, "quantization": "int8", "sparse_encoding": True},
    ]


def fashion_recipe(quick: bool):
    from compression.config import Recipe

    s = FASHION_QUICK if quick else FASHION_FULL
    return Recipe.from_dict({
        "title": "Benchmark: experiment E on Fashion-MNIST",
        "dataset": {"name": "fashion_mnist", "max_train": s["max_train"], "max_test": s["max_test"]},
        "model": {"name": "seed_cnn"},
        "baseline": {"pretrained": False, "epochs": s["baseline_epochs"], "batch_size": 64},
        "variants": e_variants(s["fine_tune_epochs"]),
        "evaluation": {"threads": 1, "latency_runs": 200},
        "seed": 0,
    })


def pretrained_recipe(dataset: str, model: str):
    from compression.config import Recipe, default_fine_tune_epochs

    return Recipe.from_dict({
        "title": f"Benchmark: experiment E on {dataset}",
        "dataset": {"name": dataset},
        "model": {"name": model},
        "baseline": {"pretrained": True},
        "variants": e_variants(default_fine_tune_epochs(dataset)),
        "evaluation": {"threads": 1, "latency_runs": 200},
        "seed": 0,
    })


HEADERS = ["variant", "techniques", "accuracy", "Δ pts", "latency median ms", "latency p90 ms", "raw B", "gzip B",
           "× raw", "× gzip", "sparsity", "delegate"]


def best_sparse(rows: list[dict]) -> dict | None:
    """The sparse-encoded row with the smallest raw file (sparse encoding exists to shrink the raw bytes)."""
    ok = [r for r in rows if r["name"] in SPARSE_ROWS and r["status"] == "ok"]
    return min(ok, key=lambda r: (r["size_bytes"], r["gzip_bytes"])) if ok else None


def table_rows(results) -> list[dict]:
    """A run's RunResults → one plain dict per variant (the reference-experiment columns, JSON-ready)."""
    from compression.results import results_table

    frame = results_table(results)
    out = []
    for rec in frame.to_dict("records"):
        out.append({k: (None if isinstance(v, float) and v != v else v) for k, v in rec.items()})
    return out


def shown_rows(rows: list[dict]) -> list[dict]:
    """Every row except the sparse candidates that are not the best one."""
    best = best_sparse(rows)
    return [r for r in rows if r["name"] not in SPARSE_ROWS or (best is not None and r["name"] == best["name"])]


def row_cells(r: dict) -> list[Any]:
    if r["status"] != "ok":
        return [r["name"], r["techniques"], f"{r['status']}: {r['error']}", None, None, None, None, None, None, None,
                None, None]
    return [r["name"], r["techniques"], round(r["accuracy"], 4), round(r["delta_accuracy"], 2),
            round(r["latency_median_ms"], 4), round(r["latency_p90_ms"], 4), int(r["size_bytes"]),
            int(r["gzip_bytes"]), round(r["ratio"], 2), round(r["gzip_ratio"], 2), round(r["sparsity"], 3),
            r["delegate"]]


def run_one(ctx: Context, key: str, recipe) -> dict[str, Any]:
    """Run one recipe into the work folder and summarise it."""
    from compression.run.recipe import load_results, run_recipe

    out = ctx.run_dir(f"experiment_e-{key}")
    say(f"[1] experiment E on {recipe.dataset.name} ({len(recipe.variants)} variants) → {out}")
    printer, marks = progress_printer(key), {}
    with Stopwatch() as t:

        def progress(event) -> None:
            if event.phase == "baseline_done":
                marks.setdefault("baseline_done", time.perf_counter() - t.start)
            printer(event)

        run_recipe(recipe, out, progress=progress)
    results = load_results(out)
    ctx.shared[f"experiment_e_{key}"] = str(out)  # benchmark 7 reads its TFLM measurements
    rows = table_rows(results)
    best = best_sparse(rows)
    shown = shown_rows(rows)
    say(text_table(HEADERS, [row_cells(r) for r in shown]))
    return {"dataset": recipe.dataset.name, "model": recipe.model.name, "run_dir": str(out), "seconds": t.seconds,
            "baseline_seconds": marks.get("baseline_done"),  # data, baseline and the float32 reference
            "recipe": recipe.to_dict(),
            "baseline": {k: v for k, v in results.baseline.to_dict().items() if k != "history"},
            "n_train": results.dataset.n_train, "n_test": results.dataset.n_test,
            "reference": results.reference.to_dict(), "rows": rows, "best_sparse": best["name"] if best else None,
            "timings": {v.name: v.timings.to_dict() for v in results.variants}}


def ensure_fashion_run(ctx: Context):
    """The Fashion-MNIST run folder (baseline.keras, float32.tflite, int8.tflite) the later benchmarks use.

    Benchmark 1 leaves it in ``ctx.shared``; when it was not run (``--only``), the same
    seeded baseline is trained with just the float32 and int8 variants.
    """
    from pathlib import Path

    from compression.run.recipe import run_recipe

    if "fashion_run" not in ctx.shared:
        recipe = fashion_recipe(ctx.quick)
        recipe = recipe.with_variants([v for v in recipe.variants if v.name in ("float32", "int8")])
        out = ctx.run_dir("fashion_mnist-baseline")
        say(f"training the Fashion-MNIST baseline (benchmark 1 was not run) → {out}")
        run_recipe(recipe, out, progress=progress_printer("fashion baseline"))
        ctx.shared["fashion_run"] = str(out)
    return Path(ctx.shared["fashion_run"])


def run(ctx: Context) -> dict[str, Any]:
    fashion = fashion_mnist_available()
    if not fashion and ctx.quick:  # quick mode runs the Fashion-MNIST recipe only
        return needs_fashion_mnist(TITLE)
    runs = {}
    with Stopwatch() as t:
        if fashion:
            runs["fashion_mnist"] = run_one(ctx, "fashion_mnist", fashion_recipe(ctx.quick))
            ctx.shared["fashion_run"] = runs["fashion_mnist"]["run_dir"]
            ctx.shared["experiment_e_fashion_mnist_run"] = runs["fashion_mnist"]  # the Ray benchmark's estimate
        if not ctx.quick:
            runs["digits"] = run_one(ctx, "digits", pretrained_recipe("digits", "seed_cnn"))
            runs["mnist1d"] = run_one(ctx, "mnist1d", pretrained_recipe("mnist1d", "conv1d"))

    tables, notes = [], []
    for key, r in runs.items():
        base = r["baseline"]
        ref = r["reference"] or {}
        source = "trained here" if base.get("source") == "trained" else f"{base.get('source')} (sample_models/)"
        caption = (f"{key} × {r['model']}: baseline {source}, accuracy {fmt(base.get('accuracy'), 4)}; "
                   f"{fmt(r['n_train'])} train / {fmt(r['n_test'])} test samples; float32 .tflite "
                   f"{fmt(ref.get('size_bytes'))} B raw, {fmt(ref.get('gzip_bytes'))} B gzip; run took "
                   f"{r['seconds']:.0f} s")
        tables.append(table(caption, HEADERS, [row_cells(x) for x in shown_rows(r["rows"])]))
        others = [x for x in r["rows"] if x["name"] in SPARSE_ROWS and x["name"] != r["best_sparse"]]
        if others:
            notes.append(f"{key}: sparse-encoded candidates not shown (the table keeps the smallest raw file, "
                         f"{r['best_sparse']}): " + "; ".join(
                             f"{x['name']} {fmt(x['size_bytes'])} B raw / {fmt(x['gzip_bytes'])} B gzip"
                             if x["status"] == "ok" else f"{x['name']} {x['status']}" for x in others))
        slow = [x["name"] for x in r["rows"] if x["status"] == "ok" and x["delegate"] != "XNNPACK"]
        if slow:
            notes.append(f"{key}: ran without XNNPACK (LiteRT builtin kernels, so slower): {', '.join(slow)}.")
    notes.append("Δ pts is accuracy minus the float baseline's, in points; × raw and × gzip are the float32 "
                 ".tflite's bytes divided by the variant's (raw vs raw, gzip vs gzip). Latency: one interpreter "
                 "thread, batch 1, 200 timed invokes after a warm-up. The write-up's own table (MNIST, pruned + QAT "
                 "+ TFLite) reached 9.71× on raw bytes.")
    if ctx.quick:
        notes.append("Quick mode: Fashion-MNIST subsampled (see the caption); digits and mnist1d left out.")
    missing = [] if fashion else [not_measured(NEEDS_FASHION_MNIST, "Fashion-MNIST × seed CNN")]
    return section(TITLE, tables=tables, notes=notes, data={"runs": runs}, seconds=t.seconds, missing=missing)
