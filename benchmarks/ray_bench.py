"""Benchmark 9: an 8-variant recipe through the app's local worker path vs on a local Ray, same run.

A section of ``python -m benchmarks`` (``--only ray``); needs ``ray`` (``pip install -r requirements-ray.txt``).

Both runs go through the app's path: a :class:`~compression.run.runner.Runner` on a fresh
:class:`~compression.store.Store` starts a worker process; the Ray run differs only by
``COMPRESSION_LAB_RAY_ADDRESS=local`` in the worker's environment (a Ray instance with this
machine's CPUs, one variant per 1-CPU task). Wall time is submit → final status, so the Ray
run pays its own Ray start and a TensorFlow import per Ray worker process.

It then estimates an N-node sweep (simulated, not measured) from the per-variant times that
benchmark 1 measured for experiment E on Fashion-MNIST in the same invocation: each variant as a
task re-runs its own fine-tune (the local stage cache does not cross tasks), plus the per-task
overhead measured here, packed longest-first onto N nodes × 2 CPUs. Without benchmark 1's
Fashion-MNIST run in this invocation there is no estimate (and the section says why).

``--quick``: 4 variants (float32, int8, pruned, QAT int8), fine-tunes 1 epoch. The machine is
shared with other sessions: the load average is recorded at start, between the runs and at the end.
"""

from __future__ import annotations

import heapq
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

from .common import (
    NEEDS_FASHION_MNIST,
    Context,
    fashion_mnist_available,
    load_average,
    not_measured,
    run_alone,
    say,
    section,
    skipped,
    table,
)

TITLE = "9. Ray: variants as tasks on a local Ray"
NODE_CPUS = 2
QUICK_VARIANTS = ("float32", "int8", "pruned", "qat-int8")


def eight_variants(quick: bool = False):
    from compression.config import Recipe

    epochs = 1 if quick else 3
    prune = {"schedule": "constant", "final_sparsity": 0.6}
    recipe = Recipe.from_dict({
        "title": "Ray benchmark: 8 variants",
        "dataset": {"name": "digits"},
        "model": {"name": "seed_cnn"},
        "baseline": {"pretrained": True},
        "evaluation": {"latency_runs": 100},
        "seed": 0,
        "variants": [
            {"name": "float32"},
            {"name": "float16", "quantization": "float16"},
            {"name": "dynamic", "quantization": "dynamic"},
            {"name": "int8", "quantization": "int8"},
            {"name": "pruned", "pruning": prune, "fine_tune_epochs": epochs},
            {"name": "pruned-int8", "pruning": prune, "fine_tune_epochs": epochs, "quantization": "int8"},
            {"name": "qat-int8", "qat": {}, "fine_tune_epochs": epochs, "quantization": "int8"},
            {"name": "cluster16", "clustering": {"clusters": 16}, "fine_tune_epochs": epochs},
        ],
    })
    if quick:
        recipe = recipe.with_variants([v for v in recipe.variants if v.name in QUICK_VARIANTS])
    return recipe


def through_runner(root: Path, recipe, ray_address: str | None) -> dict[str, Any]:
    """Submit to a Runner on a fresh store (the app's path); wall time from submit to final status."""
    from compression.run.executors import CPUS_ENV, RAY_ADDRESS_ENV
    from compression.run.runner import Runner
    from compression.run_folder import RunFolder
    from compression.store import Store

    saved = {k: os.environ.get(k) for k in (RAY_ADDRESS_ENV, CPUS_ENV, "RAY_AUTH_MODE")}
    if ray_address:
        os.environ.update({RAY_ADDRESS_ENV: ray_address, CPUS_ENV: "1", "RAY_AUTH_MODE": "disabled"})
    else:
        os.environ.pop(RAY_ADDRESS_ENV, None)
    store = Store(root)
    try:
        with Runner(store) as runner:
            t0 = time.perf_counter()
            run_id = runner.submit(recipe, session="ray-bench")
            run = runner.wait(run_id, timeout=3600)
            wall = time.perf_counter() - t0
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v
    results = RunFolder(store.run_dir(run_id)).read_results()
    rows = {v.name: {"status": v.status.value, "accuracy": v.accuracy, "size_bytes": v.size_bytes,
                     "gzip_bytes": v.gzip_bytes, "seconds": v.seconds, "error": v.error,
                     "stages": sum(x for x in (v.timings.fine_tune, v.timings.convert, v.timings.measure) if x)}
            for v in results.variants}
    return {"status": run["status"], "error": run.get("error"), "wall_seconds": round(wall, 2), "rows": rows,
            "load_average_after": load_average()}


def _stage_key(v: dict) -> str | None:
    keys = ("distillation", "pruning", "clustering", "qat")
    if not any(v.get(k) for k in keys):
        return None
    return json.dumps({k: v.get(k) for k in (*keys, "fine_tune_epochs", "learning_rate", "batch_size")},
                      sort_keys=True)


def task_costs(run: dict) -> dict[str, float]:
    """Each variant's seconds as its own task: its fine-tune uncached, plus its convert and measure."""
    variants = {v["name"]: v for v in run["recipe"]["variants"]}
    fine_tune: dict[str, float] = {}
    for name, t in run["timings"].items():
        key = _stage_key(variants[name])
        if key is not None and t["fine_tune"] > fine_tune.get(key, 0.0):
            fine_tune[key] = t["fine_tune"]  # the variant that paid for the shared stage locally
    costs = {}
    for name, t in run["timings"].items():
        key = _stage_key(variants[name])
        costs[name] = (fine_tune[key] if key else t["fine_tune"]) + t["convert"] + t["measure"]
    return costs


def makespan(costs: list[float], slots: int) -> float:
    """Longest-processing-time-first list scheduling onto ``slots`` identical CPUs."""
    finish = [0.0] * max(1, slots)
    heapq.heapify(finish)
    for c in sorted(costs, reverse=True):
        heapq.heappush(finish, heapq.heappop(finish) + c)
    return max(finish)


def simulate(run: dict, overhead_s: float, slowdown: float = 1.0, nodes=(1, 2, 4, 8, 16)) -> dict[str, Any]:
    """N-node estimate for experiment E on Fashion-MNIST from benchmark 1's per-variant times (its run summary)."""
    # Data + baseline (+ the float32 reference), run once by the driver either way: measured up to the run's
    # baseline_done event (the engine overlaps conversions with fine-tunes, so the wall time minus the sum of
    # the variants' stage times undercounts it).
    before = run.get("baseline_seconds")
    if before is None:
        local_variants = sum(t["fine_tune"] + t["convert"] + t["measure"] for t in run["timings"].values())
        before = max(0.0, run["seconds"] - local_variants)
    per_task = {name: c * slowdown + overhead_s for name, c in task_costs(run).items()}
    costs = list(per_task.values())
    rows = []
    for n in nodes:
        total = before + makespan(costs, n * NODE_CPUS)
        rows.append({"nodes": n, "cpus": n * NODE_CPUS, "seconds": round(total, 1),
                     "speedup": round(run["seconds"] / total, 2)})
    return {"dataset": "fashion_mnist", "local_seconds": round(run["seconds"], 1),
            "baseline_seconds": round(before, 1), "variants": len(costs),
            "task_seconds": round(sum(costs), 1), "longest_task_seconds": round(max(costs), 1),
            "longest_task": max(per_task, key=per_task.get),
            "overhead_per_task_s": round(overhead_s, 2), "slowdown": round(slowdown, 2), "rows": rows}


def run(ctx: Context) -> dict[str, Any]:
    try:
        import ray  # noqa: F401
    except ImportError:
        return skipped(TITLE, "ray is not installed (`pip install -r requirements-ray.txt`).")
    work = ctx.run_dir("ray")
    recipe = eight_variants(ctx.quick)
    la_start = load_average()
    say(f"[9] {len(recipe.variants)} variants: local worker, then Ray (load average {la_start})")
    local = through_runner(work / "local", recipe, None)
    say(f"  local worker: {local['status']} in {local['wall_seconds']} s")
    la_between = load_average()
    ray_run = through_runner(work / "ray", recipe, "local")
    say(f"  Ray (local):  {ray_run['status']} in {ray_run['wall_seconds']} s")
    fields = ("status", "accuracy", "size_bytes", "gzip_bytes")
    same = [n for n in local["rows"] if all(local["rows"][n][f] == ray_run["rows"].get(n, {}).get(f) for f in fields)]
    different = [n for n in local["rows"] if n not in same]
    overheads = sorted(r["seconds"] - r["stages"] for r in ray_run["rows"].values() if r["status"] == "ok")
    overhead = overheads[len(overheads) // 2] if overheads else 0.0
    # 1-CPU task vs the local worker's TF threads, on variants whose local stages were not shared (cache)
    ratios = sorted(ray_run["rows"][n]["stages"] / local["rows"][n]["stages"]
                    for n in ("float32", "int8", "pruned", "qat-int8", "cluster16")
                    if n in local["rows"] and local["rows"][n]["stages"] and ray_run["rows"][n]["stages"])
    slowdown = ratios[len(ratios) // 2] if ratios else 1.0
    fashion_run = ctx.shared.get("experiment_e_fashion_mnist_run")
    sim = simulate(fashion_run, overhead, slowdown) if fashion_run else None
    ratio = ray_run["wall_seconds"] / local["wall_seconds"]
    data = {"recipe": recipe.to_dict(), "local": local, "ray": ray_run, "ratio": ratio, "same": same,
            "different": different, "overhead_per_task_s": overhead, "slowdown": slowdown, "simulated": sim,
            "load_average": {"start": la_start, "between": la_between, "end": load_average()}}

    names = ", ".join(v.name for v in recipe.variants)
    epochs = 1 if ctx.quick else 3  # eight_variants' fine-tunes
    tables = [table(f"The same {len(recipe.variants)}-variant recipe (digits, pretrained seed CNN: {names}; fine-tunes "
                    f"{epochs} epoch(s)) submitted to a Runner on a fresh store: the local worker, then with "
                    "`COMPRESSION_LAB_RAY_ADDRESS=local` (Ray started in the worker with this machine's CPUs, one "
                    "1-CPU task per variant). Wall time is submit → final status; load average "
                    f"{la_start} before the local run, {la_between} before the Ray run",
                    ["path", "status", "wall s", "sum of variant s"], [
                        ["local worker", local["status"], round(local["wall_seconds"], 1),
                         round(sum(r["seconds"] or 0 for r in local["rows"].values()), 1)],
                        ["Ray (local)", ray_run["status"], round(ray_run["wall_seconds"], 1),
                         round(sum(r["seconds"] or 0 for r in ray_run["rows"].values()), 1)]])]
    notes = [f"Ratio Ray / local wall time: **{ratio:.2f}** (below 1 is faster on Ray). Per-task overhead (a task's "
             "seconds minus its stages: baseline load, and the TensorFlow import that the first task of each Ray "
             f"worker process pays): median {overhead:.1f} s; a variant's stages on a 1-CPU task take {slowdown:.2f}× "
             "the local worker's (median).",
             f"Same accuracy and bytes as the local run: {', '.join(same) or 'none'}"
             + (f"; differing: {', '.join(different)} (1-CPU tasks fine-tune with 1 TensorFlow thread, the local "
                "worker with every core: oneDNN's float sums differ in the last bits; with "
                "`COMPRESSION_LAB_RAY_CPUS` = the local core count they match, see docs/ray.md)" if different else "")
             + "."]
    missing = []
    if sim:
        tables.append(table(
            f"N-node estimate (simulated, not measured) for experiment E on Fashion-MNIST, from benchmark 1's run "
            f"above ({sim['variants']} variants, {sim['local_seconds']} s locally, of which "
            f"{sim['baseline_seconds']} s data + baseline): each variant as a task re-runs its own fine-tune (the "
            f"stage cache does not cross tasks: {sim['task_seconds']} s of tasks in all, the longest "
            f"{sim['longest_task_seconds']} s), its stages "
            f"{sim['slowdown']}× slower on 1 CPU plus {sim['overhead_per_task_s']} s overhead (both measured above), "
            f"packed longest-first onto nodes of {NODE_CPUS} CPUs",
            ["nodes", "CPUs", "estimated s", "speed-up vs local"],
            [[r["nodes"], r["cpus"], r["seconds"], f"{r['speedup']}×"] for r in sim["rows"]]))
        notes.append(f"The longest task ({sim['longest_task']}) bounds the estimated sweep once there are about as "
                     "many CPUs as tasks; the data and baseline run once on the driver either way. The 1-CPU "
                     "slowdown and the overhead come from this machine (tasks sharing its cores), so the estimate is "
                     "pessimistic for idle cluster nodes.")
    elif not fashion_mnist_available():
        missing.append(not_measured(NEEDS_FASHION_MNIST, "N-node estimate for experiment E on Fashion-MNIST"))
    else:
        missing.append(not_measured("benchmark 1 (experiment_e) did not run in this invocation: the estimate is "
                                    "built from its Fashion-MNIST per-variant times", "N-node estimate"))
    if ctx.quick:
        notes.append("Quick mode: 4 variants, fine-tunes 1 epoch; the estimate (if any) uses quick mode's subsampled "
                     "Fashion-MNIST run.")
    return section(TITLE, tables=tables, notes=notes, data=data, missing=missing)


if __name__ == "__main__":
    raise SystemExit(run_alone(sys.modules[__name__]))
