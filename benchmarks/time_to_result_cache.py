"""Benchmark 8: time to result with the result cache and the warm worker (issue 14), and equal work vs a script.

A section of ``python -m benchmarks`` (``--only time_to_result_cache``); it measures, in one process:

1. **Equal work** (reference experiment E on Fashion-MNIST, read where the engine finds it:
   baseline trained 2 epochs, pruned / pruned-dynamic / QAT / PQAT fine-tuned 2 epochs each, batch 128,
   200 latency runs; the TFLite Micro measurement off, since the script has none): ``python -m compression
   run RECIPE --store S --recompute`` vs :mod:`benchmarks.plain_script` doing the same work (it retrains
   its baseline too), whole processes in pairs, the order swapped each pair (3 pairs; ``--quick``: 1 pair
   with 1-epoch baseline and fine-tunes); then the same command again on the same store without
   ``--recompute`` (an unchanged re-run: every row from the cache). Without Fashion-MNIST this part is
   not measured and says so.
2. **The app's path** (the default preset: experiment E on digits, pretrained baseline) through a
   :class:`~compression.run.runner.Runner` with a warm spare: submit → first row, submit → full table on a
   fresh store; then the unchanged re-run's submit → full table.
3. **Pages while three runs go**: every page's script (Streamlit's AppTest, in this process, which never
   imports TensorFlow) rendered repeatedly while three real runs (experiment E on digits, retraining)
   go in three worker processes; p95 of the render times (3 rounds; ``--quick``: 1). The first page
   after a fresh process (the server's start) is timed too.

The machine's load average is recorded before each measurement: the machine is shared, so ratios
measured back to back are what to read, not absolute seconds.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from .common import (
    BENCH_DIR,
    NEEDS_FASHION_MNIST,
    ROOT,
    Context,
    fashion_mnist_dir,
    fmt,
    load_average,
    not_measured,
    paired_runs,
    run_alone,
    say,
    section,
    table,
    target,
    timed_process,
)

TITLE = "8. Time to result: result cache, warm worker, equal work"
PAGES = ["app.py", "pages/1_data_model.py", "pages/2_compress.py", "pages/3_compare.py", "pages/4_inspect.py",
         "pages/5_history.py"]


def equal_work_recipe(fashion_dir: Path, epochs: int = 2) -> dict[str, Any]:
    from compression.config import Recipe

    r = Recipe.experiment_e_writeup("fashion_mnist", "seed_cnn", pretrained=False, fine_tune_epochs=epochs).to_dict()
    r["title"] = f"Equal work: experiment E on Fashion-MNIST (baseline {epochs} epochs, fine-tunes {epochs}, batch 128)"
    r["dataset"] = {"name": "fashion_mnist", "path": str(fashion_dir)}
    r["baseline"].update(epochs=epochs, batch_size=128)
    for v in r["variants"]:
        v["batch_size"] = 128
    r["evaluation"].update(latency_runs=200, tflm=False)
    return r


def _timed(cmd: list[str], log: Path, env: dict | None = None) -> float:
    return timed_process(cmd, env=env, timeout=None, log=log)[0]


def equal_work(work: Path, fashion_dir: Path, runs: int = 3, epochs: int = 2) -> dict[str, Any]:
    recipe_path = work / "equal-work.json"
    recipe_path.write_text(json.dumps(equal_work_recipe(fashion_dir, epochs), indent=1))
    store = work / "equal-work-store"
    env = {**os.environ, "COMPRESSION_LAB_DATA": str(store)}
    # --recompute: every timed run of ours does the whole work afresh (none of them reads the cache).
    ours_cmd = [sys.executable, "-m", "compression", "run", str(recipe_path), "--store", str(store), "--recompute"]
    script_cmd = [sys.executable, str(BENCH_DIR / "plain_script.py"), str(work / "script.json"), str(fashion_dir),
                  str(epochs), str(epochs), "128"]
    out: dict[str, Any] = {"load": {}, "runs": runs, "epochs": epochs}
    out["load"]["start"] = load_average()
    say(f"[equal work] ours (A) and the plain script (B) in pairs, the order swapped each pair, {runs} each "
        f"(load {out['load']['start']})")
    fb = paired_runs(ours_cmd, script_cmd, runs, env=env, log=work / "paired.log")
    out["paired"] = fb
    out["load"]["end"] = load_average()
    out["first_s"], out["script_s"] = fb["A wall s"]["median"], fb["B wall s"]["median"]
    out["first_ratio"], out["cpu_ratio"] = fb["A/B wall"]["median"], fb["A/B cpu"]["median"]
    say(f"  ours {out['first_s']:.1f} s, script {out['script_s']:.1f} s (medians); ratio {out['first_ratio']:.3f} "
        f"(pairs {fb['A/B wall']['min']:.3f}-{fb['A/B wall']['max']:.3f}); cpu ratio {out['cpu_ratio']:.3f} "
        f"(load {out['load']['end']})")
    out["load"]["rerun"] = load_average()
    out["rerun_s"] = _timed(ours_cmd[:-1], work / "ours.log", env)
    say(f"  ours, unchanged re-run {out['rerun_s']:.2f} s")
    script_rows = {r["name"]: r for r in json.loads((work / "script.json").read_text())["rows"]}
    from compression.run_folder import RunFolder
    from compression.store import Store

    results = [RunFolder(Store(store).run_dir(r["id"])).read_results() for r in Store(store).list_runs()]
    results.sort(key=lambda r: r.created or "")
    fresh = results[-2]  # the last timed run (fresh work); the last one is the re-run
    out["rows"] = [[v.name, v.accuracy, script_rows.get(v.name, {}).get("accuracy"), v.timings.fine_tune,
                    v.timings.convert, v.timings.measure] for v in fresh.variants]
    out["reused"] = [sum(1 for v in r.variants if v.reused_from) for r in results]
    out["rerun_ratio"] = out["rerun_s"] / out["script_s"]
    return out


def _spare_ready(store_root: Path, timeout: float = 300) -> float:
    log = store_root / "spare-worker.log"
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < timeout:
        if log.is_file() and "spare worker ready" in log.read_text(errors="replace"):
            return time.perf_counter() - t0
        time.sleep(0.05)
    raise TimeoutError("the spare worker did not get ready")


def _watch(store, run_id: str, t0: float) -> dict[str, float]:
    from compression.run_folder import RunFolder
    from compression.store import FINAL_STATUSES

    marks: dict[str, float] = {}
    while True:
        now = time.perf_counter() - t0
        run = store.get_run(run_id)
        results = RunFolder(store.run_dir(run_id)).read_results() if run["status"] != "queued" else None
        if results is not None and any(v.status.value != "running" for v in results.variants):
            marks.setdefault("first_row", now)
        if run["status"] in FINAL_STATUSES:
            marks["full_table"] = now
            marks["status"] = run["status"]
            return marks
        if now > 900:
            raise TimeoutError(f"run {run_id} still {run['status']}")
        time.sleep(0.02)


def app_path(work: Path) -> dict[str, Any]:
    from compression.config import Recipe
    from compression.run.runner import Runner
    from compression.store import Store

    root = work / "app-store"
    store = Store(root)
    runner = Runner(store, warm=True, poll_interval=0.05, idle_interval=0.05)
    recipe = Recipe.experiment_e(dataset="digits", pretrained=True)
    out: dict[str, Any] = {}
    try:
        out["spare_ready_s"] = _spare_ready(root)
        out["load_first"] = load_average()
        t0 = time.perf_counter()
        out["first"] = _watch(store, runner.submit(recipe, session="bench"), t0)
        say(f"[app path] fresh: first row {out['first']['first_row']:.2f} s, full table "
            f"{out['first']['full_table']:.2f} s (load {out['load_first']})")
        (root / "spare-worker.log").unlink(missing_ok=True)
        time.sleep(0.5)  # the runner starts the next spare after the run
        _spare_ready(root)
        out["load_rerun"] = load_average()
        t0 = time.perf_counter()
        out["rerun"] = _watch(store, runner.submit(recipe, session="bench"), t0)
        say(f"[app path] unchanged re-run: first row {out['rerun']['first_row']:.2f} s, full table "
            f"{out['rerun']['full_table']:.2f} s")
    finally:
        runner.shutdown(cancel=True)
    return out


PAGE_CHILD = """
import json, sys, time
t = time.perf_counter()
from streamlit.testing.v1 import AppTest
at = AppTest.from_file("app.py", default_timeout=300); at.run()
first = time.perf_counter() - t
times = {}
for _ in range(ROUNDS):
    for page in PAGES:
        at = AppTest.from_file(page, default_timeout=300); at.session_state["sid"] = "bench"
        t = time.perf_counter(); at.run(); times.setdefault(page, []).append(time.perf_counter() - t)
print(json.dumps({"first_page_s": first, "times": times, "tensorflow": "tensorflow" in sys.modules}))
"""


def pages_under_load(work: Path, rounds: int = 3) -> dict[str, Any]:
    from compression.config import Recipe
    from compression.run.runner import Runner
    from compression.store import Store

    root = work / "pages-store"
    store = Store(root)
    runner = Runner(store, max_concurrent=3)
    busy = Recipe.experiment_e(dataset="digits", pretrained=False)
    ids = [runner.submit(busy.__class__.from_dict({**busy.to_dict(), "title": f"busy {i}",
                                                    "evaluation": {"recompute": True}}), session="bench")
           for i in range(3)]
    try:
        deadline = time.monotonic() + 120
        while sum(store.get_run(i)["status"] == "running" for i in ids) < 3 and time.monotonic() < deadline:
            time.sleep(0.1)
        load = load_average()
        env = {**os.environ, "COMPRESSION_LAB_DATA": str(root)}
        code = f"PAGES = {PAGES!r}; ROUNDS = {rounds}\n" + PAGE_CHILD
        done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, env=env,
                              timeout=1800)
        running = sum(store.get_run(i)["status"] == "running" for i in ids)
    finally:
        runner.shutdown(cancel=True)
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if not lines:
        raise RuntimeError(f"page timing failed: {done.stderr[-500:]}")
    data = json.loads(lines[-1])
    every = sorted(t for ts in data["times"].values() for t in ts)
    p95 = every[min(len(every) - 1, int(round(0.95 * (len(every) - 1))))]
    say(f"[pages] p95 {p95:.2f} s over {len(every)} renders with 3 runs going (load {load}); first page "
        f"{data['first_page_s']:.2f} s; still running at the end: {running}")
    return {"p95_s": p95, "renders": len(every), "load": load, "first_page_s": data["first_page_s"],
            "by_page": {k: max(v) for k, v in data["times"].items()}, "tensorflow_in_server": data["tensorflow"],
            "runs_still_running_at_end": running}


def _spread(e: dict[str, Any], label: str, digits: int = 1) -> str:
    figure = e["paired"][label]
    return f"{figure['min']:.{digits}f}-{figure['max']:.{digits}f}"


RUNS = {True: 1, False: 3}  # equal work: pairs of runs, quick and full
EPOCHS = {True: 1, False: 2}  # equal work: baseline and fine-tune epochs, quick and full
ROUNDS = {True: 1, False: 3}  # pages: rounds of every page


def _equal_work_targets(e: dict[str, Any] | None) -> list[dict[str, Any]]:
    return [
        target("equal work: ours / the plain script, wall time (median of pairs)",
               round(e["first_ratio"], 3) if e else None, 0.9, unit="×",
               note=f"{e['runs']} pair(s), order swapped each pair" if e else ""),
        target("equal work: unchanged re-run / the plain script, wall time",
               round(e["rerun_ratio"], 3) if e else None, 0.05, unit="×"),
    ]


def _equal_work_part(e: dict[str, Any]) -> tuple[list, list]:
    """Tables and notes of the equal-work measurement."""
    paired = e["paired"]
    tables = [
        table(f"Equal work vs a plain tfmot script (Fashion-MNIST, experiment E, both retrain the baseline; "
              f"baseline {e['epochs']} epochs, fine-tunes {e['epochs']}, batch 128): "
              f"{e['runs']} pair(s) of whole processes, ours (`python -m compression run RECIPE --store S "
              "--recompute`, fresh work every run) and the plain script, the order swapped each pair "
              f"(benchmarks.common.paired_runs); load average {e['load']['start']} at the start, "
              f"{e['load']['end']} at the end, {e['load']['rerun']} before the re-run",
              ["way", "wall s (median)", "wall s (min-max)", "ratio to the script (pairs)", "cpu s (median)"], [
                  ["plain script (benchmarks/plain_script.py)", round(e["script_s"], 1), _spread(e, "B wall s"), 1.0,
                   round(paired["B cpu s"]["median"], 1)],
                  ["ours, first run (fresh work)", round(e["first_s"], 1), _spread(e, "A wall s"),
                   f"{e['first_ratio']:.3f} ({_spread(e, 'A/B wall', 3)})", round(paired["A cpu s"]["median"], 1)],
                  ["ours, unchanged re-run (every row reused; one run)", round(e["rerun_s"], 2), "",
                   round(e["rerun_ratio"], 3), ""]]),
        table("Equal work: each variant of ours (the last fresh run) beside the plain script's",
              ["variant", "ours accuracy", "script accuracy", "fine-tune s", "convert s", "measure s"], e["rows"]),
    ]
    notes = [f"Equal work: rows reused per run of ours {e['reused']} (the last is the unchanged re-run); CPU "
             f"seconds ours / script (median of pairs) {e['cpu_ratio']:.3f}. The ratio is taken pair by pair, so a "
             "change of the machine's speed moves both sides of a pair alike."]
    return tables, notes


def run(ctx: Context) -> dict[str, Any]:
    work = ctx.run_dir("time_to_result_cache")
    targets, tables, notes, missing, data = [], [], [], [], {}
    fashion_dir = fashion_mnist_dir()
    if fashion_dir is None:
        missing.append(not_measured(NEEDS_FASHION_MNIST, "equal work vs the plain script (Fashion-MNIST)"))
        targets += _equal_work_targets(None)
    else:
        e = data["equal_work"] = equal_work(work, fashion_dir, runs=RUNS[ctx.quick], epochs=EPOCHS[ctx.quick])
        targets += _equal_work_targets(e)
        t, n = _equal_work_part(e)
        tables += t
        notes += n

    a = data["app_path"] = app_path(work)
    targets += [target("app path (warm spare): submit → first row", round(a["first"]["first_row"], 2), 3.0, unit="s"),
                target("app path: unchanged re-run, submit → full table", round(a["rerun"]["full_table"], 2), 2.0,
                       unit="s")]
    tables.append(table("The app's path: the default preset (digits, pretrained baseline) submitted to a Runner "
                        f"with a warm spare (ready {a['spare_ready_s']:.1f} s after the runner started, TensorFlow "
                        "imported); seconds after submit",
                        ["run", "first row", "full table", "load average"], [
                            ["fresh store", round(a["first"]["first_row"], 2), round(a["first"]["full_table"], 2),
                             a["load_first"]],
                            ["unchanged re-run", round(a["rerun"]["first_row"], 2),
                             round(a["rerun"]["full_table"], 2), a["load_rerun"]]]))

    p = data["pages"] = pages_under_load(work, rounds=ROUNDS[ctx.quick])
    targets += [target("page script render p95 while 3 runs go (AppTest)", round(p["p95_s"], 2), 2.0, unit="s",
                       note=f"{p['renders']} renders of {len(PAGES)} pages"),
                target("first page after a fresh process (AppTest)", round(p["first_page_s"], 2), 3.0, unit="s")]
    tables.append(table(f"Pages while three runs go (experiment E on digits, retraining, in 3 worker processes; "
                        f"load average {p['load']}): each page's slowest script render, seconds",
                        ["page", "slowest render (s)"], [[k, round(v, 2)] for k, v in p["by_page"].items()]))
    notes.append(f"Pages: TensorFlow imported by the page process: {fmt(p['tensorflow_in_server'])}; runs still "
                 f"going when the pages were done: {p['runs_still_running_at_end']} of 3"
                 + ("" if p["runs_still_running_at_end"] == 3 else " (some renders had less load beside them)")
                 + ". AppTest times the scripts (no browser); the browser's own rendering is benchmark 6.")
    if ctx.quick:
        notes.append(f"Quick mode: {RUNS[True]} equal-work pair with {EPOCHS[True]}-epoch baseline and fine-tunes, "
                     f"{ROUNDS[True]} round of the pages.")
    return section(TITLE, targets=targets, tables=tables, notes=notes, data=data, missing=missing)


if __name__ == "__main__":
    raise SystemExit(run_alone(sys.modules[__name__]))
