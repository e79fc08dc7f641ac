"""Time to result with the result cache and the warm worker (issue 14), against a plain script on equal work.

``python -m benchmarks.time_to_result_cache [--skip-equal-work] [--out DIR]`` measures, in one process:

1. **Equal work** (reference experiment E on Fashion-MNIST from ``/usr/share/datasets/fashion-mnist``:
   baseline trained 2 epochs, pruned / pruned-dynamic / QAT / PQAT fine-tuned 2 epochs each, batch 128,
   200 latency runs; the TFLite Micro measurement off, since the script has none): ``python -m compression
   run RECIPE --store S`` on a fresh store, vs :mod:`benchmarks.plain_script` doing the same work (it
   retrains its baseline too), each as a subprocess from start to exit, one after the other; then the
   same command again on the same store (an unchanged re-run: every row from the cache).
2. **The app's path** (the default preset: experiment E on digits, pretrained baseline) through a
   :class:`~compression.run.runner.Runner` with a warm spare: submit → first row, submit → full table on a
   fresh store; then the unchanged re-run's submit → full table.
3. **Pages while three runs go**: every page's script (Streamlit's AppTest, in this process, which never
   imports TensorFlow) rendered repeatedly while three real runs (experiment E on digits, retraining)
   go in three worker processes; p95 of the render times. The first page after a fresh process
   (the server's start) is timed too.

The machine's load average is recorded before each measurement: the machine is shared, so ratios
measured back to back are what to read, not absolute seconds. Writes ``time_to_result_cache.json`` and
a marked section of ``RESULTS.md``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from .common import BENCH_DIR, ROOT, load_average, now_iso, paired_runs, say, timed_process
from .report import markdown_table

FASHION_DIR = Path("/usr/share/datasets/fashion-mnist")
BEGIN, END = "<!-- time-to-result-cache:begin -->", "<!-- time-to-result-cache:end -->"
PAGES = ["app.py", "pages/1_data_model.py", "pages/2_compress.py", "pages/3_compare.py", "pages/4_inspect.py",
         "pages/5_history.py"]


def equal_work_recipe() -> dict[str, Any]:
    from compression.config import Recipe

    r = Recipe.experiment_e_writeup("fashion_mnist", "seed_cnn", pretrained=False, fine_tune_epochs=2).to_dict()
    r["title"] = "Equal work: experiment E on Fashion-MNIST (baseline 2 epochs, fine-tunes 2, batch 128)"
    r["dataset"] = {"name": "fashion_mnist", "path": str(FASHION_DIR)}
    r["baseline"].update(epochs=2, batch_size=128)
    for v in r["variants"]:
        v["batch_size"] = 128
    r["evaluation"].update(latency_runs=200, tflm=False)
    return r


def _timed(cmd: list[str], log: Path, env: dict | None = None) -> float:
    return timed_process(cmd, env=env, timeout=None, log=log)[0]


def equal_work(work: Path, runs: int = 2) -> dict[str, Any]:
    recipe_path = work / "equal-work.json"
    recipe_path.write_text(json.dumps(equal_work_recipe(), indent=1))
    store = work / "equal-work-store"
    env = {**os.environ, "COMPRESSION_LAB_DATA": str(store)}
    # --recompute: every timed run of ours does the whole work afresh (none of them reads the cache).
    ours_cmd = [sys.executable, "-m", "compression", "run", str(recipe_path), "--store", str(store), "--recompute"]
    script_cmd = [sys.executable, str(BENCH_DIR / "plain_script.py"), str(work / "script.json"), str(FASHION_DIR),
                  "2", "2", "128"]
    out: dict[str, Any] = {"load": {}, "runs": runs}
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


FIRST_PAGE_CHILD = ("from streamlit.testing.v1 import AppTest; at = AppTest.from_file('app.py', default_timeout=300); "
                    "at.run(); assert not at.exception, at.exception")
FIRST_PAGE_BEFORE = "680cc4c"  # main before this turn's first-page work (the Compress page loaded the dataset)


def first_page(work: Path, runs: int = 5) -> dict[str, Any]:
    """A fresh process drawing the first page (app.py → Compress), now vs before, in pairs (order swapped)."""
    before = work / f"tree-{FIRST_PAGE_BEFORE}"
    if not before.is_dir():
        before.mkdir(parents=True)
        archive = subprocess.run(["git", "archive", FIRST_PAGE_BEFORE], cwd=ROOT, capture_output=True, check=True)
        subprocess.run(["tar", "-x", "-C", str(before)], input=archive.stdout, check=True)
    store = work / "first-page-store"
    child = [sys.executable, "-c", FIRST_PAGE_CHILD]
    # One command per tree: the same child, in each tree.

    def in_tree(tree: Path) -> list[str]:
        import shlex

        return ["sh", "-c", f"cd {shlex.quote(str(tree))} && COMPRESSION_LAB_DATA={shlex.quote(str(store))} "
                f"COMPRESSION_LAB_WARM_WORKER=0 exec {shlex.join(child)}"]
    out: dict[str, Any] = {"load_start": load_average(), "runs": runs, "before": FIRST_PAGE_BEFORE}
    fb = paired_runs(in_tree(ROOT), in_tree(before), runs, timeout=1200)
    out.update(paired=fb, load_end=load_average(), now_s=fb["A wall s"]["median"],
               before_s=fb["B wall s"]["median"], ratio=fb["A/B wall"]["median"])
    say(f"[first page] now {out['now_s']:.2f} s, before {out['before_s']:.2f} s (medians), ratio {out['ratio']:.3f} "
        f"(load {out['load_end']})")
    return out


def write_section(out_dir: Path, data: dict[str, Any]) -> None:
    e, a, p = data.get("equal_work"), data.get("app_path"), data.get("pages")
    lines = [BEGIN, "## Time to result: result cache, warm worker, equal work (issue 14)", "",
             f"Measured {data['when']} on a shared 2-core machine (other sessions running; load averages "
             "below, 1/5/15 min). Ratios are measured back to back in one run; absolute seconds move with the load.",
             ""]
    if e:
        lines += ["### Equal work vs a plain tfmot script (Fashion-MNIST, experiment E, both retrain the baseline)",
                  f"{e['runs']} pairs: ours (A: `python -m compression run RECIPE --store S --recompute`, "
                  "fresh work every run) and the plain script (B), whole processes, in pairs with the order swapped "
                  "each pair (A B, B A, ...: benchmarks.common.paired_runs); "
                  f"medians, the ratio taken pair by pair. Load average {e['load']['start']} at the start, "
                  f"{e['load']['end']} at the end, {e['load']['rerun']} before the re-run.", "",
                  markdown_table(["way", "wall s (median)", "wall s (min-max)", "ratio to the script (pairs)",
                                  "cpu s (median)"], [
                      ["plain script (benchmarks/plain_script.py)", round(e["script_s"], 1),
                       _spread(e, "B wall s"), 1.0, round(e["paired"]["B cpu s"]["median"], 1)],
                      ["ours, first run (fresh work)", round(e["first_s"], 1), _spread(e, "A wall s"),
                       f"{e['first_ratio']:.3f} ({_spread(e, 'A/B wall', 3)})",
                       round(e["paired"]["A cpu s"]["median"], 1)],
                      ["ours, unchanged re-run (every row reused; one run)", round(e["rerun_s"], 2), "",
                       round(e["rerun_ratio"], 3), ""]]),
                  "", f"Targets: first run ≤ 0.9× the script → **{e['first_ratio']:.2f}×** "
                  f"({'met' if e['first_ratio'] <= 0.9 else 'NOT met'}); unchanged re-run ≤ 0.05× → "
                  f"**{e['rerun_ratio']:.3f}×** ({'met' if e['rerun_ratio'] <= 0.05 else 'NOT met'}). "
                  f"Rows reused per run: {e['reused']}. CPU seconds ours/script (median of pairs): "
                  f"{e['cpu_ratio']:.3f}.", "",
                  markdown_table(["variant", "ours accuracy", "script accuracy", "fine-tune s", "convert s",
                                  "measure s"], e["rows"]), ""]
    if a:
        lines += ["### The app's path: default preset (digits, pretrained baseline), Runner with a warm spare", "",
                  markdown_table(["run", "submit → first row (s)", "submit → full table (s)", "load average"], [
                      ["fresh store", round(a["first"]["first_row"], 2), round(a["first"]["full_table"], 2),
                       a["load_first"]],
                      ["unchanged re-run", round(a["rerun"]["first_row"], 2), round(a["rerun"]["full_table"], 2),
                       a["load_rerun"]]]), "",
                  f"Targets: first row ≤ 3 s → {a['first']['first_row']:.2f} s "
                  f"({'met' if a['first']['first_row'] <= 3 else 'NOT met'}); re-run ≤ 2 s → "
                  f"{a['rerun']['full_table']:.2f} s ({'met' if a['rerun']['full_table'] <= 2 else 'NOT met'}). "
                  f"The spare was ready {a['spare_ready_s']:.1f} s after the runner started (TensorFlow imported).", ""]
    if p:
        lines += ["### Pages while three runs go", "",
                  f"p95 page script render **{p['p95_s']:.2f} s** over {p['renders']} renders of "
                  f"{len(PAGES)} pages (target ≤ 2 s: {'met' if p['p95_s'] <= 2 else 'NOT met'}), load {p['load']}; "
                  f"first page after a fresh process {p['first_page_s']:.2f} s (target ≤ 3 s: "
                  f"{'met' if p['first_page_s'] <= 3 else 'NOT met'}); TensorFlow imported by the page process: "
                  f"{p['tensorflow_in_server']}; runs still going at the end: {p['runs_still_running_at_end']}. "
                  "AppTest script time (no browser): the browser's own rendering is benchmark 6.", "",
                  markdown_table(["page", "slowest render (s)"], [[k, round(v, 2)] for k, v in p["by_page"].items()]),
                  ""]
    f = data.get("first_page")
    if f:
        lines += ["### First page after the server starts: now vs before this turn", "",
                  f"{f['runs']} pairs, the order swapped each pair: a fresh Python process importing Streamlit's "
                  "AppTest and drawing "
                  f"app.py (the Compress page) on an empty store, this tree (A) and commit {f['before']} (B) in "
                  f"turn; load {f['load_start']} at the start, {f['load_end']} at the end.", "",
                  markdown_table(["tree", "wall s (median)", "wall s (min-max)"], [
                      ["now", round(f["now_s"], 2), f"{f['paired']['A wall s']['min']:.2f}-"
                                                    f"{f['paired']['A wall s']['max']:.2f}"],
                      [f"before ({f['before']})", round(f["before_s"], 2),
                       f"{f['paired']['B wall s']['min']:.2f}-{f['paired']['B wall s']['max']:.2f}"]]),
                  "", f"Ratio now/before (median of pairs): **{f['ratio']:.3f}** "
                  f"(pairs {f['paired']['A/B wall']['min']:.3f}-{f['paired']['A/B wall']['max']:.3f}); "
                  f"target first page ≤ 3 s: {'met' if f['now_s'] <= 3 else 'NOT met'} at this load.", ""]
    for note in data.get("notes", []):
        lines += [f"- {note}"]
    lines.append(END)
    section = "\n".join(lines)
    md = out_dir / "RESULTS.md"
    text = md.read_text() if md.is_file() else ""
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + section + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n" + section + "\n"
    md.write_text(text)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.time_to_result_cache")
    parser.add_argument("--only", default="equal_work,app_path,pages")
    parser.add_argument("--out", default=str(BENCH_DIR))
    parser.add_argument("--work", default=None)
    parser.add_argument("--runs", type=int, default=2, help="equal work: pairs of runs (ours and the script)")
    args = parser.parse_args(argv)
    work = Path(args.work or tempfile.mkdtemp(prefix="ttr-cache-"))
    work.mkdir(parents=True, exist_ok=True)
    out_dir = Path(args.out)
    saved = out_dir / "time_to_result_cache.json"
    data = json.loads(saved.read_text()) if saved.is_file() else {}
    data["when"] = now_iso()
    for name in args.only.split(","):
        if name == "equal_work":
            data[name] = equal_work(work, runs=args.runs)
        else:
            data[name] = {"app_path": app_path, "pages": pages_under_load, "first_page": first_page}[name](work)
        saved.write_text(json.dumps(data, indent=1, default=str))
        write_section(out_dir, data)
    say(f"wrote {saved} and {out_dir / 'RESULTS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
