"""Benchmark 7: board fit — every experiment-E variant measured under TensorFlow Lite Micro, fitted to boards.

For experiment E on digits (pretrained seed CNN) and on Fashion-MNIST (seed CNN trained here), each
variant's TFLM measurement (:func:`compression.measure.tflm.measure_tflm`, run by ``run_recipe`` for every
variant): whether TFLM runs it (or why not), the smallest tensor arena that allocates and invokes,
the RecordingMicroAllocator's total, the flash bytes, TFLM's accuracy on the reference kernels and its
agreement with LiteRT, the host time per sample, and the fit on each board of
:data:`compression.measure.boards.BOARDS`.

When benchmark 1 ran in the same invocation its run folders are reused (their results.json already
carry the TFLM fields); otherwise the recipes are run here (``--quick``: Fashion-MNIST subsampled).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from .common import (
    NEEDS_FASHION_MNIST,
    Context,
    Stopwatch,
    fashion_mnist_available,
    fmt,
    not_measured,
    progress_printer,
    say,
    section,
    table,
    text_table,
)

TITLE = "7. Board fit (TensorFlow Lite Micro)"

FIT_MARK = {"fits": "fits", "does not fit": "✗ over", "cannot run under TFLM": "✗ TFLM", "not measured": "—"}


def headers() -> list[str]:
    from compression.measure.boards import BOARDS

    return ["variant", "TFLM", "arena B", "allocator total B", "flash B", "TFLM accuracy", "samples",
            "agrees with LiteRT", "host ms/sample", *BOARDS]


def variant_rows(results) -> list[dict[str, Any]]:
    """One plain dict per finished variant: the TFLM measurement and the fit status per board."""
    from compression.measure.boards import BOARDS, fit_of
    from compression.results import RunResults

    run = RunResults.from_dict(results)
    rows = []
    for v in run.ok_variants:
        t = v.tflm
        rows.append({
            "name": v.name, "quantization": v.quantization, "sparse": v.sparse_encoding,
            "runnable": None if t is None else t.runnable, "reason": None if t is None else t.reason,
            "arena_bytes": None if t is None else t.arena_bytes,
            "allocator_total": None if t is None else t.allocator_total,
            "flash_bytes": None if t is None else t.flash_bytes, "accuracy": None if t is None else t.accuracy,
            "litert_accuracy": v.accuracy, "agreement": None if t is None else t.agreement,
            "samples": None if t is None else t.samples, "test_size": None if t is None else t.test_size,
            "ms_per_sample": None if t is None else t.ms_per_sample, "seconds": None if t is None else t.seconds,
            "fit": {key: fit_of(t, board).status.value for key, board in BOARDS.items()},
            "margins": {key: [fit_of(t, board).ram_margin_bytes, fit_of(t, board).flash_margin_bytes]
                        for key, board in BOARDS.items()},
        })
    return rows


def row_cells(r: dict) -> list[Any]:
    runs = {True: "runs", False: "refused", None: "not measured"}[r["runnable"]]
    ms = r["ms_per_sample"]
    return [r["name"], runs, r["arena_bytes"], r["allocator_total"], r["flash_bytes"],
            None if r["accuracy"] is None else round(r["accuracy"], 4), r["samples"],
            None if r["agreement"] is None else round(r["agreement"], 4), None if ms is None else round(ms, 3),
            *(FIT_MARK[s] for s in r["fit"].values())]


def _recipes(ctx: Context) -> dict[str, Any]:
    from .experiment_e import fashion_recipe, pretrained_recipe

    return {"digits": pretrained_recipe("digits", "seed_cnn"), "fashion_mnist": fashion_recipe(ctx.quick)}


def run_one(ctx: Context, key: str, recipe) -> dict[str, Any]:
    from compression.run.recipe import load_results, run_recipe

    reused = ctx.shared.get(f"experiment_e_{key}")
    if reused:
        out = Path(reused)
        say(f"[7] reusing benchmark 1's {key} run → {out}")
        seconds = None
    else:
        out = ctx.run_dir(f"board_fit-{key}")
        say(f"[7] experiment E on {recipe.dataset.name} ({len(recipe.variants)} variants, TFLM on) → {out}")
        with Stopwatch() as t:
            run_recipe(recipe, out, progress=progress_printer(key))
        seconds = t.seconds
    results = load_results(out)
    rows = variant_rows(results)
    say(text_table(headers(), [row_cells(r) for r in rows]))
    return {"dataset": recipe.dataset.name, "run_dir": str(out), "seconds": seconds, "rows": rows,
            "n_test": results.dataset.n_test if results.dataset else None,
            "tflm_max_samples": recipe.evaluation.tflm_max_samples}


def run(ctx: Context) -> dict[str, Any]:
    from compression.measure.boards import BOARDS, format_bytes

    runs: dict[str, Any] = {}
    recipes = _recipes(ctx)
    missing = []
    if not fashion_mnist_available():
        del recipes["fashion_mnist"]
        missing.append(not_measured(NEEDS_FASHION_MNIST, "Fashion-MNIST × seed CNN"))
    with Stopwatch() as t:
        for key, recipe in recipes.items():
            runs[key] = run_one(ctx, key, recipe)
    tables, notes = [], []
    for key, r in runs.items():
        ok = [x for x in r["rows"] if x["runnable"]]
        took = f"; the run took {r['seconds']:.0f} s" if r["seconds"] is not None else ""
        tflm_seconds = sum(x["seconds"] or 0 for x in r["rows"])
        caption = (f"{key} × seed CNN: {len(ok)} of {len(r['rows'])} variants run under TFLM; TFLM accuracy on "
                   f"{fmt(min((x['samples'] or 0) for x in ok) if ok else None)} of {fmt(r['n_test'])} test samples "
                   f"(max {fmt(r['tflm_max_samples'])}); TFLM measurements {tflm_seconds:.0f} s in all{took}")
        tables.append(table(caption, headers(), [row_cells(x) for x in r["rows"]]))
        reasons = sorted({x["reason"] for x in r["rows"] if x["runnable"] is False and x["reason"]})
        for reason in reasons:
            names = [x["name"] for x in r["rows"] if x["reason"] == reason]
            notes.append(f"{key}: {', '.join(names)} — {reason}")
        differ = [f"{x['name']} {x['agreement']:.2%}" for x in ok if x["agreement"] is not None and x["agreement"] < 1]
        if differ:
            notes.append(f"{key}: TFLM and LiteRT disagree on some samples of the same .tflite: {', '.join(differ)}.")
        gaps = [f"{x['name']} {x['arena_bytes'] - x['allocator_total']:+d} B" for x in ok
                if x["arena_bytes"] is not None and x["allocator_total"] is not None
                and x["arena_bytes"] != x["allocator_total"]]
        if gaps:
            notes.append(f"{key}: smallest working arena minus the RecordingMicroAllocator total (temporary memory "
                         f"of prepare): {', '.join(gaps)}.")
    notes.append("Boards: " + "; ".join(f"{k} = {b.name} ({format_bytes(b.ram_bytes)} RAM, "
                                        f"{format_bytes(b.flash_bytes)} flash)" for k, b in BOARDS.items())
                 + ". 'fits' compares the arena with the whole RAM and the .tflite with the whole flash; the TFLM "
                 "runtime's code and the firmware's own RAM are not counted. ✗ TFLM: TFLite Micro refuses the model.")
    notes.append("Arena and accuracy come from tflite-micro's Python interpreter (reference kernels, 64-bit host): "
                 "on a 32-bit board TFLM's structs are smaller, so the device's arena is a little smaller; host "
                 "ms/sample is a reference-kernel time on this CPU, not a device's latency.")
    if ctx.quick:
        notes.append("Quick mode: Fashion-MNIST subsampled (see benchmark 1's settings).")
    return section(TITLE, tables=tables, notes=notes, data={"runs": runs}, seconds=t.seconds, missing=missing)
