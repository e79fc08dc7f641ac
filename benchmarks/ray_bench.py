"""Ray benchmark: an 8-variant recipe through the app's local worker path vs on a local Ray, same run.

``python -m benchmarks.ray_bench [--work DIR] [--no-write]``

Both runs go through the app's path: a :class:`~compression.run.runner.Runner` on a fresh
:class:`~compression.store.Store` starts a worker process; the Ray run differs only by
``COMPRESSION_LAB_RAY_ADDRESS=local`` in the worker's environment (a Ray instance with this
machine's CPUs, one variant per 1-CPU task). Wall time is submit → final status, so the Ray
run pays its own Ray start and a TensorFlow import per Ray worker process.

It then estimates an N-node sweep (simulated, not measured) from the per-variant times the
main suite recorded for experiment E on Fashion-MNIST (``benchmarks/results.json``): each
variant as a task re-runs its own fine-tune (the local stage cache does not cross tasks),
plus the per-task overhead measured here, packed longest-first onto N nodes × 2 CPUs.

Prints the figures and writes them into RESULTS.md (its own section, between markers) and
``benchmarks/ray_results.json``. The machine is shared with other sessions: the load average
is recorded at start, between the runs and at the end.
"""

from __future__ import annotations

import argparse
import heapq
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import BENCH_DIR, load_average, machine_info, now_iso, say

START, END = "<!-- ray_bench:start -->", "<!-- ray_bench:end -->"
NODE_CPUS = 2


def eight_variants():
    from compression.config import Recipe

    prune = {"schedule": "constant", "final_sparsity": 0.6}
    return Recipe.from_dict({
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
            {"name": "pruned", "pruning": prune, "fine_tune_epochs": 3},
            {"name": "pruned-int8", "pruning": prune, "fine_tune_epochs": 3, "quantization": "int8"},
            {"name": "qat-int8", "qat": {}, "fine_tune_epochs": 3, "quantization": "int8"},
            {"name": "cluster16", "clustering": {"clusters": 16}, "fine_tune_epochs": 3},
        ],
    })


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


def simulate(suite: dict, overhead_s: float, slowdown: float = 1.0, nodes=(1, 2, 4, 8, 16)) -> dict[str, Any] | None:
    """N-node estimate for experiment E on Fashion-MNIST from the suite's recorded per-variant times."""
    try:
        section = next(s for s in suite["sections"] if s.get("key") == "experiment_e" or
                       str(s.get("title", "")).startswith("1."))
        run = section["data"]["runs"]["fashion_mnist"]
    except (KeyError, StopIteration):
        return None
    local_variants = sum(t["fine_tune"] + t["convert"] + t["measure"] for t in run["timings"].values())
    before = run["seconds"] - local_variants  # data + baseline, run once by the driver either way
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
            "overhead_per_task_s": round(overhead_s, 2), "slowdown": round(slowdown, 2), "rows": rows,
            "recorded": suite.get("started")}


def render(data: dict) -> str:
    local, ray = data["local"], data["ray"]
    la = data["load_average"]
    lines = [
        START,
        "## Ray: variants as tasks on a local Ray",
        "",
        f"`python -m benchmarks.ray_bench`, {data['finished']}. {data['machine']['cpu']}, "
        f"{data['machine']['logical_cores']} cores. **The machine is shared with other sessions**: load average "
        f"{la['start']} at start, {la['between']} between the runs, {la['end']} at the end (1/5/15 min).",
        "",
        "The same 8-variant recipe (digits, pretrained seed CNN: float32, float16, dynamic, int8, pruned 60 %, "
        "pruned int8, QAT int8, cluster 16; fine-tunes 3 epochs) submitted to a Runner on a fresh store: the "
        "local worker path, then the same with `COMPRESSION_LAB_RAY_ADDRESS=local` (Ray started in the worker "
        "with 2 CPUs, one 1-CPU task per variant). Wall time is submit → final status.",
        "",
        "| path | status | wall s | sum of variant s |",
        "|---|---|---|---|",
        f"| local worker | {local['status']} | {local['wall_seconds']:.1f} | "
        f"{sum(r['seconds'] or 0 for r in local['rows'].values()):.1f} |",
        f"| Ray (local, 2 CPUs) | {ray['status']} | {ray['wall_seconds']:.1f} | "
        f"{sum(r['seconds'] or 0 for r in ray['rows'].values()):.1f} |",
        "",
        f"Engine: commit {data.get('commit') or 'not recorded'}." if data.get("commit") else
        "Engine: measured on the ray branch at 20:48–20:53 UTC, before main's conversion isolation "
        "(compression/isolation.py) and result cache were merged in; rerun `python -m benchmarks.ray_bench` "
        "for current figures.",
        "",
        f"**Ratio Ray / local wall time: {data['ratio']:.2f}** (below 1 is faster on Ray). Per-task overhead "
        f"(a task's seconds minus its stages: baseline load, and the TensorFlow import that the first task of "
        f"each Ray worker process pays): median "
        f"{data['overhead_per_task_s']:.1f} s. Same accuracy and bytes as the local run: "
        f"{', '.join(data['same']) or 'none'}"
        + (f"; differing: {', '.join(data['different'])} (1-CPU tasks fine-tune with 1 TensorFlow thread, the "
           "local worker with every core: oneDNN's float sums differ in the last bits; with "
           "`COMPRESSION_LAB_RAY_CPUS` = the local core count they match, see docs/ray.md)"
           if data["different"] else "") + ".",
        "",
    ]
    sim = data.get("simulated")
    if sim:
        lines += [
            f"**N-node estimate (simulated, not measured)** for experiment E on Fashion-MNIST "
            f"({sim['variants']} variants; the suite's recorded run of {sim['recorded']}: {sim['local_seconds']} s "
            f"locally, of which {sim['baseline_seconds']} s data + baseline). Each variant as a task re-runs its "
            f"own fine-tune (the stage cache does not cross tasks: {sim['task_seconds']} s of tasks in all, the "
            f"longest {sim['longest_task_seconds']} s), its stages {sim['slowdown']}× slower on 1 CPU than the "
            f"local run's (measured above) plus the {sim['overhead_per_task_s']} s overhead measured above, "
            f"packed longest-first onto nodes of {NODE_CPUS} CPUs:",
            "",
            "| nodes | CPUs | estimated s | speed-up vs local |",
            "|---|---|---|---|",
        ]
        lines += [f"| {r['nodes']} | {r['cpus']} | {r['seconds']} | {r['speedup']}× |" for r in sim["rows"]]
        lines += ["", f"The longest task ({sim['longest_task']}) bounds the sweep once there are about as many "
                  "CPUs as tasks; the data and baseline run once on the driver either way. The 1-CPU slowdown and "
                  "the overhead were measured on this loaded machine (two tasks sharing 2 busy cores), so the "
                  "estimate is pessimistic for idle cluster nodes.", ""]
    lines.append(END)
    return "\n".join(lines)


def _commit() -> str | None:
    import subprocess

    try:
        return subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True,
                              cwd=BENCH_DIR, timeout=10).stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def write_section(path: Path, text: str) -> None:
    old = path.read_text("utf-8") if path.is_file() else ""
    if START in old and END in old:
        new = old[: old.index(START)] + text + old[old.index(END) + len(END):]
    else:
        new = old.rstrip("\n") + "\n\n" + text + "\n"
    path.write_text(new, "utf-8")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.ray_bench", description=__doc__.splitlines()[0])
    parser.add_argument("--work", default=None, help="folder for the two stores (default: a new temp folder)")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args(argv)
    try:
        import ray  # noqa: F401
    except ImportError:
        print("error: ray is not installed (pip install -r requirements-ray.txt)", file=sys.stderr)
        return 2
    work = Path(args.work or tempfile.mkdtemp(prefix="ray-bench-"))
    recipe = eight_variants()
    la_start = load_average()
    say(f"load average at start: {la_start}")
    local = through_runner(work / "local", recipe, None)
    say(f"local worker: {local['status']} in {local['wall_seconds']} s")
    la_between = load_average()
    ray = through_runner(work / "ray", recipe, "local")
    say(f"Ray (local):  {ray['status']} in {ray['wall_seconds']} s")
    fields = ("status", "accuracy", "size_bytes", "gzip_bytes")
    same = [n for n in local["rows"] if all(local["rows"][n][f] == ray["rows"].get(n, {}).get(f) for f in fields)]
    different = [n for n in local["rows"] if n not in same]
    overheads = sorted(r["seconds"] - r["stages"] for r in ray["rows"].values() if r["status"] == "ok")
    overhead = overheads[len(overheads) // 2] if overheads else 0.0
    # 1-CPU task vs the local worker's TF threads, on variants whose local stages were not shared (cache)
    ratios = sorted(ray["rows"][n]["stages"] / local["rows"][n]["stages"] for n in ("float32", "int8", "pruned",
                    "qat-int8", "cluster16") if local["rows"][n]["stages"] and ray["rows"][n]["stages"])
    slowdown = ratios[len(ratios) // 2] if ratios else 1.0
    suite_file = BENCH_DIR / "results.json"
    suite = json.loads(suite_file.read_text()) if suite_file.is_file() else {}
    data = {"finished": now_iso(), "commit": _commit(),
            "machine": machine_info(), "recipe": recipe.to_dict(), "local": local, "ray": ray,
            "ratio": ray["wall_seconds"] / local["wall_seconds"], "same": same, "different": different,
            "overhead_per_task_s": overhead, "slowdown": slowdown,
            "simulated": simulate(suite, overhead, slowdown),
            "load_average": {"start": la_start, "between": la_between, "end": load_average()}}
    text = render(data)
    print(text)
    if not args.no_write:
        (BENCH_DIR / "ray_results.json").write_text(json.dumps(data, indent=2))
        write_section(BENCH_DIR / "RESULTS.md", text)
        say(f"wrote {BENCH_DIR / 'RESULTS.md'} and {BENCH_DIR / 'ray_results.json'}")
    return 0 if local["status"] == ray["status"] == "ok" else 1


if __name__ == "__main__":
    sys.exit(main())
