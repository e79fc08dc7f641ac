"""``python -m benchmarks [--quick] [--only NAMES]``: run the suite, write results.json and RESULTS.md.

Every section of RESULTS.md comes from this one run: the registry below is the whole suite, and
RESULTS.md is rendered from this run's results.json only (its commit, its date, each section's own
start, seconds and load averages).

TensorFlow and the TFLite converter write a lot to stderr; it goes to ``<work>/stderr.log``
(``--verbose`` keeps it on the terminal). The figures are printed to stdout as they are measured.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import traceback
from pathlib import Path

from . import (
    app_render,
    board_fit,
    eval_speed,
    experiment_e,
    frontier,
    lessons,
    measurement,
    ray_bench,
    search,
    time_to_result,
    time_to_result_cache,
)
from .common import (
    BENCH_DIR,
    Context,
    git_state,
    library_versions,
    load_average,
    machine_info,
    not_measured,
    now_iso,
    quiet_stderr,
    say,
    section,
)
from .report import render

# The whole suite, in order. Order matters: experiment E leaves its runs (the Fashion-MNIST baseline and
# .tflite files, its per-variant timings) for the later ones. The search goes last: it is the longest.
BENCHMARKS = {
    "experiment_e": experiment_e,
    "frontier": frontier,
    "eval_speed": eval_speed,
    "time_to_result": time_to_result,
    "measurement": measurement,
    "app": app_render,
    "board_fit": board_fit,
    "time_to_result_cache": time_to_result_cache,
    "ray": ray_bench,
    "lessons": lessons,
    "search": search,
}
# Left out, on purpose: architectures.py (a support matrix of tiny models on random data, ok/failed per
# architecture × mode, written to docs/architectures.md: no figure to time, 13 minutes) and
# isolation_overhead.py (a printed diagnostic of one design choice, no target; the isolation's cost is
# inside every end-to-end time above). plain_script.py is the plain script that benchmarks 4 and 8 time.


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the short version (a few minutes)")
    parser.add_argument("--only", default="", help=f"comma-separated subset of: {', '.join(BENCHMARKS)}")
    parser.add_argument("--work", default=None, help="folder for the runs' files (default: a new temp folder)")
    parser.add_argument("--out", default=str(BENCH_DIR), help="where results.json and RESULTS.md go")
    parser.add_argument("--verbose", action="store_true", help="leave TensorFlow's stderr on the terminal")
    parser.add_argument("--search-minutes", type=float, default=None,
                        help="time budget of the search benchmark, per model (default: 8 full, 1.5 quick)")
    args = parser.parse_args(argv)

    names = [n.strip() for n in args.only.split(",") if n.strip()] or list(BENCHMARKS)
    unknown = [n for n in names if n not in BENCHMARKS]
    if unknown:
        parser.error(f"unknown benchmark(s) {', '.join(unknown)}; choose from {', '.join(BENCHMARKS)}")
    ctx = Context(quick=args.quick) if args.work is None else Context(quick=args.quick, work=Path(args.work))
    ctx.search_minutes = args.search_minutes
    ctx.work.mkdir(parents=True, exist_ok=True)
    where_tracebacks_go = "the terminal's stderr" if args.verbose else str(ctx.work / "stderr.log")
    if not args.verbose:
        quiet_stderr(ctx.work / "stderr.log")
    out_dir = Path(args.out)
    out_dir.mkdir(parents=True, exist_ok=True)

    started = time.perf_counter()
    command = " ".join(["python -m benchmarks", *(argv if argv is not None else sys.argv[1:])])
    results = {"quick": args.quick, "started": now_iso(), "machine": machine_info(), "versions": library_versions(),
               "command": command, "git": git_state((out_dir / "RESULTS.md", out_dir / "results.json")),
               "registry": list(BENCHMARKS), "only": names if args.only else None,
               "work": str(ctx.work), "sections": []}
    say(f"benchmarks ({'quick' if args.quick else 'full'}): {', '.join(names)}; work folder {ctx.work}")
    for name in names:
        module = BENCHMARKS[name]
        say(f"\n=== {module.TITLE} ===")
        section_started, load_start = now_iso(), load_average()
        t0 = time.perf_counter()
        try:
            result = module.run(ctx)
        except Exception as exc:  # noqa: BLE001 - one benchmark failing must not lose the others' figures
            traceback.print_exc()  # to stderr.log
            say(f"{module.TITLE} failed: {type(exc).__name__}: {exc}")
            result = section(module.TITLE, missing=[not_measured(f"failed: {type(exc).__name__}: {exc} (traceback in "
                                                                 f"{where_tracebacks_go})")],
                             data={"error": f"{type(exc).__name__}: {exc}"})
        result.update(key=name, started=section_started, seconds=round(time.perf_counter() - t0, 1),
                      load_average_start=load_start, load_average_end=load_average())
        results["sections"].append(result)
        for t in result.get("targets", []):
            say(f"  target {t['name']}: {t['value']} {t['unit']} ({t['op']} {t['goal']}) → "
                f"{ {True: 'met', False: 'MISSED', None: 'not measured'}[t['met']] }")
        _write(results, started, out_dir)
    _write(results, started, out_dir)
    say(f"\nwrote {out_dir / 'RESULTS.md'} and {out_dir / 'results.json'} ({time.perf_counter() - started:.0f} s)")
    return 0


def _write(results: dict, started: float, out_dir: Path) -> None:
    results["finished"] = now_iso()
    results["seconds"] = round(time.perf_counter() - started, 1)
    results["load_average_end"] = load_average()
    (out_dir / "results.json").write_text(json.dumps(results, indent=1, default=str) + "\n")
    (out_dir / "RESULTS.md").write_text(render(results))


if __name__ == "__main__":
    sys.exit(main())
