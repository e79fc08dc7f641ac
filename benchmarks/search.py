"""Benchmark 11: the search alone (no hand-made grid) on Fashion-MNIST, within a time budget per model.

A section of ``python -m benchmarks`` (``--only search``; ``--search-minutes M`` sets the budget, default
8 minutes per model, ``--quick`` 1.5). For each model: train the float baseline on the full Fashion-MNIST
training set (seeded; the seed CNN 8 epochs, so that "within 1 point" is measured against a well-trained
baseline, ``qat_cnn`` 2), then run :func:`compression.explore.search.search` with a 1-point accuracy budget, the
gzip size as objective, stripped strings and the time budget, fine-tuning on a seeded slice of the
training set (seed CNN: all 60 000; ``qat_cnn``: 30 000, at most 2 epochs a trial; the test set is the
full 10 000). It reports:

* the smallest gzip within 1 point and its ratio vs the float32 ``.tflite``'s gzip
  (targets: ≥ 25× for the seed CNN, ≥ 40× for ``qat_cnn``), met or missed at the budget given;
* the time until a trial within budget reached 20×;
* the smallest raw ``.tflite`` within 1 point (what a board's flash holds);
* every trial.

``--quick``: the seed CNN only, on quick mode's subsample (4 000 train / 2 000 test, baseline 2 epochs).
Alone, with other settings (prints the section; writes nothing)::

    python -m benchmarks.search --minutes 20 --models seed_cnn,qat_cnn
"""

from __future__ import annotations

import argparse
import shutil
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from compression.explore.search import describe_params

from .common import (
    Context,
    fashion_mnist_available,
    fmt,
    load_average,
    needs_fashion_mnist,
    now_iso,
    quiet_stderr,
    say,
    section,
    table,
    target,
)

TITLE = "11. Search: smallest within 1 point (Fashion-MNIST, the search alone)"
TARGETS = {"seed_cnn": 25.0, "qat_cnn": 40.0}
MINUTES = {False: 8.0, True: 1.5}  # default budget per model: full, quick


@dataclass(frozen=True)
class SearchSetting:
    """One model's search: its baseline, the fine-tune slice and the longest fine-tune of a trial."""

    model: str
    baseline_epochs: int
    max_train: int | None = None  # the trials' fine-tune slice (and the baseline's data when quick)
    max_test: int | None = None
    max_epochs: int | None = None  # None: the search's default (twice the dataset's: 4 here)
    strip_strings: bool = True
    quick_data: bool = False  # the baseline is trained on the same subsample as the trials (quick mode)


# qat_cnn's epoch costs ~15× the seed CNN's: 2 epochs on 30 000 images a trial keep trials within the budget
# (a PCQAT trial took 223-252 s on the AMD EPYC at 20 minutes a model).
FULL = (SearchSetting("seed_cnn", baseline_epochs=8, max_train=60_000),
        SearchSetting("qat_cnn", baseline_epochs=2, max_train=30_000, max_epochs=2))
QUICK = (SearchSetting("seed_cnn", baseline_epochs=2, max_train=4000, max_test=2000, max_epochs=2, quick_data=True),)


def baseline_run(ctx: Context, s: SearchSetting) -> Path:
    """Train the Fashion-MNIST baseline (seeded) with just the float32 variant; its folder holds baseline.keras."""
    from compression.config import Recipe
    from compression.run.recipe import run_recipe
    from compression.run_folder import RunFolder

    out = ctx.run_dir(f"search-baseline-{s.model}-{s.baseline_epochs}ep" + ("-quick" if s.quick_data else ""))
    if not RunFolder(out).baseline_model.is_file():
        dataset = {"name": "fashion_mnist"}
        if s.quick_data:
            dataset.update(max_train=s.max_train, max_test=s.max_test)
        recipe = Recipe.from_dict({"title": f"Benchmark baseline: Fashion-MNIST × {s.model}",
                                   "dataset": dataset, "model": {"name": s.model},
                                   "baseline": {"pretrained": False, "epochs": s.baseline_epochs},
                                   "variants": [{"name": "float32"}], "evaluation": {"latency_runs": 20}, "seed": 0})
        say(f"training the Fashion-MNIST × {s.model} baseline ({s.baseline_epochs} epochs) → {out}")
        t0 = time.perf_counter()
        run_recipe(recipe, out)
        say(f"  baseline trained in {time.perf_counter() - t0:.0f} s")
    return out


def search_one(ctx: Context, s: SearchSetting, minutes: float) -> dict[str, Any]:
    from compression.config import Recipe
    from compression.explore.search import SearchSpec, search
    from compression.run_folder import RunFolder

    model = s.model
    base = baseline_run(ctx, s)
    baseline_results = RunFolder(base).read_results()
    recipe = Recipe.from_dict({"title": f"Benchmark search: Fashion-MNIST × {model}",
                               "dataset": {"name": "fashion_mnist", "max_train": s.max_train, "max_test": s.max_test},
                               "model": {"path": str(RunFolder(base).baseline_model)}, "baseline": {"pretrained": True},
                               "variants": [{"name": "float32"}],
                               "evaluation": {"latency_runs": 20, "throughput_batch": 256}, "seed": 0})
    spec = SearchSpec(budget=1.0, minutes=minutes, objective="gzip", seed=0, strip_strings=s.strip_strings,
                      max_epochs=s.max_epochs)
    out = ctx.work / f"search-{model}"
    shutil.rmtree(out, ignore_errors=True)  # a rerun starts clean: no trial files of an earlier search
    out.mkdir(parents=True)
    started = time.perf_counter()

    def progress(event):
        if event.phase in ("trial_done", "baseline_done"):
            say(f"  [{model} {time.perf_counter() - started:6.0f}s] {event.message}")

    result = search(recipe, out, spec, progress=progress)
    wall = time.perf_counter() - started
    ref = RunFolder(out).read_results().reference.to_dict()
    ok = [t for t in result.trials if t.state.value == "ok"]
    within = [t for t in ok if t.within_budget]
    smallest_raw = min(within, key=lambda t: t.size_bytes) if within else None
    chosen = result.chosen_trial
    rows = [[t.name, t.source, t.state.value, describe_params(t.params), fmt(t.accuracy, 4),
             fmt(None if t.drop_points is None else -t.drop_points, 2), fmt(t.gzip_bytes), fmt(t.size_bytes),
             fmt(ref["gzip_bytes"] / t.gzip_bytes, 1) if t.gzip_bytes else "—", "yes" if t.within_budget else "no",
             fmt(t.finished_s, 0)] for t in result.trials]
    return {
        "model": model, "run_dir": str(out), "wall_seconds": wall, "search_seconds": result.seconds,
        "n_train_baseline": fmt(baseline_results.dataset.n_train if baseline_results.dataset else None),
        "baseline_accuracy": result.baseline_accuracy, "reference": ref, "n_trials": len(result.trials),
        "states": {s: sum(1 for t in result.trials if t.state.value == s) for s in ("ok", "failed", "pruned",
                                                                                   "cancelled")},
        "chosen": chosen.name if chosen else None, "why_none": result.why_none,
        "gzip_bytes": chosen.gzip_bytes if chosen else None,
        "gzip_ratio": ref["gzip_bytes"] / chosen.gzip_bytes if chosen else None,
        "chosen_accuracy": chosen.accuracy if chosen else None,
        "chosen_drop_points": chosen.drop_points if chosen else None,
        "chosen_params": chosen.params if chosen else None,
        "time_to_20x": result.time_to_ratio(20.0),
        "raw_bytes": smallest_raw.size_bytes if smallest_raw else None,
        "raw_ratio": ref["size_bytes"] / smallest_raw.size_bytes if smallest_raw else None,
        "raw_trial": smallest_raw.name if smallest_raw else None,
        "rows": rows, "stopped": result.stopped, "load_after": load_average(),
    }


HEADERS = ["trial", "source", "state", "settings", "accuracy", "Δ pts", "gzip B", "raw B", "× gzip", "within",
           "done at s"]


def _label(s: SearchSetting) -> str:
    return f"{s.model} (baseline {s.baseline_epochs} epochs)"


def _targets(s: SearchSetting, minutes: float, r: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The two targets; a search that ran but found nothing within 1 point (or never reached 20×) missed them."""
    found = r and r["chosen"]
    out = [
        target(f"{_label(s)}: smallest gzip within 1 pt in {minutes:g} min, ratio vs float32 gzip",
               round(r["gzip_ratio"], 2) if r and r["gzip_ratio"] else None, TARGETS[s.model], unit="×",
               higher_is_better=True,
               note=f"{r['chosen']}, {fmt(r['gzip_bytes'])} B" if found else (r["why_none"] if r else "")),
        target(f"{_label(s)}: time until a trial within 1 pt reached 20×",
               round(r["time_to_20x"], 1) if r and r["time_to_20x"] is not None else None,
               minutes * 60, unit="s", note="not reached" if r and r["time_to_20x"] is None else ""),
    ]
    for t in out:
        if r is not None and t["value"] is None:
            t["met"] = False
    return out


def run(ctx: Context, settings: tuple[SearchSetting, ...] | None = None) -> dict[str, Any]:
    """The benchmark as a suite section (targets, tables, notes, data)."""
    settings = settings or (QUICK if ctx.quick else FULL)
    minutes = ctx.search_minutes or MINUTES[ctx.quick]
    if not fashion_mnist_available():
        return needs_fashion_mnist(TITLE, targets=[t for s in settings for t in _targets(s, minutes, None)])
    runs, targets, tables, notes = {}, [], [], []
    for s in settings:
        say(f"\n--- search on Fashion-MNIST × {s.model}, {minutes:g} minutes ---")
        started, load = now_iso(), load_average()
        r = search_one(ctx, s, minutes)
        r.update(started=started, load_average_start=load, setting=s.__dict__, minutes=minutes)
        runs[s.model] = r
        targets += _targets(s, minutes, r)
        tables.append(table(
            f"{_label(s)}: baseline accuracy {fmt(r['baseline_accuracy'], 4)} ({r['n_train_baseline']} training "
            f"images); float32 .tflite {fmt(r['reference']['size_bytes'])} B raw / "
            f"{fmt(r['reference']['gzip_bytes'])} B gzip; {r['n_trials']} trials in {r['search_seconds']:.0f} s "
            f"(budget {minutes:g} min, stopped by {r['stopped']}); started {started}, load average {load} → "
            f"{r['load_after']}", HEADERS, r["rows"]))
        if r["raw_bytes"]:
            notes.append(f"{s.model}: smallest raw .tflite within 1 point: {r['raw_trial']}, {fmt(r['raw_bytes'])} B "
                         f"({r['raw_ratio']:.1f}× smaller than the float32 file's {fmt(r['reference']['size_bytes'])}"
                         " B): what a board's flash holds.")
        if r["chosen_params"]:
            notes.append(f"{s.model}: chosen {r['chosen']}: {describe_params(r['chosen_params'])}, accuracy "
                         f"{r['chosen_accuracy']:.4f} ({-r['chosen_drop_points']:+.2f} points).")
    notes.append(f"Time budget: {minutes:g} minutes of trials per model (`python -m benchmarks --search-minutes M`); "
                 "the baseline and the search's sensitivity prior come first and are not counted. The targets are "
                 "judged at this budget: a longer search tries more settings (e.g. `python -m benchmarks.search "
                 "--minutes 20`, printed only).")
    notes.append("Each search fine-tunes on a seeded slice of the training images ("
                 + "; ".join(f"{s.model}: {fmt(s.max_train) if s.max_train else 'all'}"
                             + (f", at most {s.max_epochs} epochs a trial" if s.max_epochs else "")
                             for s in settings)
                 + ") and measures on " + ("quick mode's 2 000 test images" if ctx.quick else "all 10 000 test images")
                 + ". Every trial's file is stripped of its tensor names and signature (SearchSpec.strip_strings; "
                 "same outputs) and its sizes are the stripped file's; the float32 reference is the file as "
                 "converted. The machine is shared (2 cores): trials per minute depend on the load.")
    if ctx.quick:
        notes.append("Quick mode: the seed CNN only, on a subsample (4 000 train / 2 000 test, baseline 2 epochs): "
                     "the figures say the search runs end to end, not what it reaches.")
    return section(TITLE, targets=targets, tables=tables, notes=notes, data=runs)


def main(argv: list[str] | None = None) -> int:
    """Alone, with other settings: prints the section as Markdown; RESULTS.md comes from ``python -m benchmarks``."""
    from .report import render_section

    parser = argparse.ArgumentParser(prog="python -m benchmarks.search", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=None, help="time budget of each search (default 8)")
    parser.add_argument("--quick", action="store_true", help="the seed CNN on a subsample")
    parser.add_argument("--models", default=None, help="comma-separated: seed_cnn, qat_cnn")
    parser.add_argument("--work", default=None, help="folder for the runs (default: a new temp folder)")
    parser.add_argument("--keep-strings", action="store_true", help="trials keep their tensor names")
    parser.add_argument("--max-train", default="", help="fine-tune slices, e.g. seed_cnn=20000")
    parser.add_argument("--baseline-epochs", default="", help="baseline training epochs, e.g. seed_cnn=4")
    parser.add_argument("--max-epochs", default="", help="longest fine-tune of a trial, e.g. qat_cnn=4")
    args = parser.parse_args(argv)
    defaults = {s.model: s for s in FULL} | ({s.model: s for s in QUICK} if args.quick else {})
    models = [m.strip() for m in (args.models or ("seed_cnn" if args.quick else "seed_cnn,qat_cnn")).split(",")
              if m.strip()]
    bad = [m for m in models if m not in TARGETS]
    if bad:
        parser.error(f"unknown model(s) {', '.join(bad)}; choose from {', '.join(TARGETS)}")
    chosen = [defaults[m] for m in models]
    for option, field in ((args.max_train, "max_train"), (args.baseline_epochs, "baseline_epochs"),
                          (args.max_epochs, "max_epochs")):
        for item in option.split(","):
            if item.strip():
                name, _, n = item.partition("=")
                chosen = [replace(s, **{field: int(n)}) if s.model == name.strip() else s for s in chosen]
    if args.keep_strings:
        chosen = [replace(s, strip_strings=False) for s in chosen]
    ctx = Context(quick=args.quick, search_minutes=args.minutes)
    if args.work:
        ctx.work = Path(args.work)
    ctx.work.mkdir(parents=True, exist_ok=True)
    quiet_stderr(ctx.work / "stderr.log")
    started, load, t0 = now_iso(), load_average(), time.perf_counter()
    result = run(ctx, tuple(chosen))
    result.update(started=started, seconds=round(time.perf_counter() - t0, 1), load_average_start=load,
                  load_average_end=load_average())
    print(render_section(result), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
