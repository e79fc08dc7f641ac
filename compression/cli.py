"""Command line: ``python -m compression run RECIPE.json --out DIR`` and listings.

An expected error (bad file, bad value) prints one line and exits with status 2;
a bug keeps its traceback.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import time
from pathlib import Path

from . import _locks
from .config import PRESETS, Recipe
from .errors import CompressionError, one_line
from .progress import Cancelled, Progress
from .results import RunStatus
from .run_folder import RunFolder


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

    from .run.executors import executor_from_environment, make_executor
    from .views.tables import FLAGGED

    recipe = _load_recipe(args.recipe)
    if args.recompute:
        import dataclasses

        recipe = dataclasses.replace(recipe, evaluation=dataclasses.replace(recipe.evaluation, recompute=True))
    board = None
    if args.board is not None:
        from .measure.boards import get_board

        board = get_board(args.board, args.ram_kb, args.flash_kb)  # refused before the run, not after
    executor = make_executor(args.ray) if args.ray else executor_from_environment()
    bar = TerminalProgress()
    try:
        if args.store is not None:
            from .store import Store

            store = Store(args.store or None)
            table, out = _run_into_store(store, recipe, bar, executor)
        else:
            from .run.recipe import run_recipe

            out = Path(args.out)
            table = run_recipe(recipe, out, progress=bar, executor=executor)
    finally:
        bar.close()
        executor.close()
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        cols = ["name", "status", "accuracy", "delta_accuracy", "latency_median_ms", "size_bytes", "gzip_bytes",
                "ratio", "gzip_ratio", "sparsity", "delegate", "arena_bytes", "flags"]
        shown = table[cols].rename(columns={"latency_median_ms": "host_latency_ms", "arena_bytes": "tflm_arena_B"})
        flagged = (shown["status"] == "ok") & (shown["flags"].fillna("") != "")
        shown.loc[flagged, "status"] = FLAGGED  # its figures mislead alone: the warning lines below say why
        print(shown.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
        if board is not None:
            _print_fit(out, board)
    _print_flags(out)
    failed = table[table.status != "ok"]
    for _, row in failed.iterrows():
        print(f"variant {row['name']!r} {row['status']}: {row['error']}", file=sys.stderr)
    print(f"results: {RunFolder(out).results_file}")
    return 0 if len(failed) < len(table) else 1


def _print_flags(out: Path) -> None:
    """One "warning:" line per flag of the baseline and of each variant (a figure that would mislead alone)."""
    from .run_folder import RunFolder
    from .views.tables import flag_lines

    results = RunFolder(out).read_results()
    if results is None:
        return
    if results.dataset is not None and results.dataset.notes:
        print(f"data: {'; '.join(results.dataset.notes)}")
    lines = flag_lines(results)
    for who, sentence in lines:
        if who is None:
            print(f"warning: baseline: {sentence}")
    reused = [v.name for v in results.variants if v.reused_from]
    if reused:
        origins = sorted({v.reused_from for v in results.variants if v.reused_from})
        print(f"reused from run {', '.join(origins)} (unchanged settings): {', '.join(reused)}; "
              "--recompute computes them afresh")
    for who, sentence in lines:
        if who is not None:
            print(f"warning: variant {who!r}: {sentence}")


def _run_into_store(store, recipe: Recipe, bar, executor=None):
    """Run in this process but record it in the store, so it shows up in the app's History.

    The run is created "running" (no app runner can claim it) and holds the run's
    worker lock like a worker does, so a crash here is seen as one after a restart.
    """
    from .run.recipe import run_recipe
    from .run.worker import CancelCheck, ProgressWriter, _take_lock

    run_id = store.create_run(recipe, session="cli", running=True)
    out = store.run_dir(run_id)
    lock_fd = _take_lock(store, run_id)
    writer = ProgressWriter(store, run_id)

    def progress(event: Progress):
        bar(event)
        writer(event)

    try:
        table = run_recipe(recipe, out, progress=progress, cancel=CancelCheck(store, run_id), executor=executor)
    except Cancelled:
        store.set_status(run_id, RunStatus.CANCELLED, error="Cancelled.")
        raise
    except CompressionError as exc:
        store.set_status(run_id, RunStatus.FAILED, error=str(exc))
        raise
    except BaseException as exc:
        store.set_status(run_id, RunStatus.FAILED, error=one_line(exc))
        raise
    finally:
        _locks.release(lock_fd)
    results = store.results(run_id)
    ok = results is not None and results.status is RunStatus.OK
    store.set_status(run_id, RunStatus.OK if ok else RunStatus.FAILED, error=results.error if results else None)
    print(f"stored as run {run_id} in {store.root}")
    return table, out


def cmd_sensitivity(args) -> int:
    from .explore.sensitivity import run_sensitivity

    recipe = _load_recipe(args.recipe)
    out = Path(args.out)
    bar = TerminalProgress(sys.stderr)
    try:
        result = run_sensitivity(recipe, out, progress=bar)
    finally:
        bar.close()
    print(f"baseline accuracy {result.baseline_accuracy:.4f} (Keras, {result.n_test} test samples); "
          "accuracy drop in points when one layer alone is compressed, no fine-tune:")
    print(result.matrix().to_string(float_format=lambda v: f"{v:.2f}"))
    print("ranking (most sensitive first):")
    for r in result.ranking():
        print(f"  {r['rank']}. {r['layer']:<20} {r['params']:>9,} weights  mean drop {r['mean_drop_points']:6.2f}"
              + ("  (tiny layer)" if r["tiny"] else ""))
    for note in result.notes:
        print(f"note: {note}")
    print(f"results: {RunFolder(out).results_file}")
    return 0


def cmd_search(args) -> int:
    import signal

    from .explore.search import search
    from .explore.search_space import SearchSpec

    recipe = _load_recipe(args.recipe)
    minutes = 20.0 if args.minutes is None and args.trials is None else args.minutes
    spec = SearchSpec(budget=args.budget, relative=args.relative, minutes=minutes, trials=args.trials,
                      board=args.board, board_ram_kb=args.ram_kb, board_flash_kb=args.flash_kb,
                      objective=args.objective, seed=args.seed, max_epochs=args.max_epochs,
                      strip_strings=args.strip_strings)
    out = Path(args.out)
    bar = TerminalProgress(sys.stderr)
    stop = {"asked": False}

    def progress(event: Progress) -> None:
        if event.phase == "trial_done":
            bar.close()
            bar.last_line = ""
            print(f"{time.perf_counter() - bar.started:7.1f}s {event.message}", file=sys.stderr, flush=True)
        else:
            bar(event)

    def on_interrupt(signum, frame):
        if stop["asked"]:
            raise KeyboardInterrupt
        stop["asked"] = True
        print("\nstopping after this trial (Ctrl-C again to abort)", file=sys.stderr, flush=True)

    from .run_folder import RunFolder
    from .views.tables import format_points

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        result = search(recipe, out, spec, progress=progress, cancel=lambda: stop["asked"])
    except Cancelled:
        from .explore.search_results import read_search

        result = read_search(RunFolder(out).read_results())
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
    frame = result.frame()
    cols = [c for c in ("name", "state", "source", "settings", "accuracy", "drop_points", "gzip_bytes",
                        "size_bytes", "arena_bytes", "within_budget") if c in frame]
    if len(frame):
        print(frame[cols].to_string(index=False, float_format=lambda v: f"{v:.4g}"))
    chosen = result.chosen_trial
    if chosen is not None:
        ratio = f", {result.reference_bytes / chosen.value:.1f}x smaller than float32" if result.reference_bytes else ""
        print(f"chosen: {chosen.name}: {chosen.value:,.0f} B {spec.objective.value}{ratio}, accuracy "
              f"{chosen.accuracy:.4f} ({format_points(-chosen.drop_points)}; budget {result.budget_points:.2f})")
    else:
        print(f"chosen: none found: {result.why_none}")
    print(f"stopped by: {result.stopped}; {len(result.trials)} trials in {result.seconds:.0f} s")
    print(f"results: {RunFolder(out).results_file}")
    return 0 if chosen is not None else 1


def _print_fit(out: Path, board) -> None:
    """The fit column of every finished variant on ``board`` (TFLM arena and flash against its budget)."""
    from .measure.boards import fit_table, format_bytes
    from .run_folder import RunFolder

    fits = fit_table(RunFolder(out).read_results(), board)
    print(f"\nfit on {board.name} ({format_bytes(board.ram_bytes)} RAM, {format_bytes(board.flash_bytes)} flash; "
          "RAM = TFLM tensor arena, flash = .tflite bytes, runtime code not included):")
    for _, row in fits.iterrows():
        print(f"  {row['name']:<20} arena {format_bytes(row['arena_bytes']):>9}  flash "
              f"{format_bytes(row['flash_bytes']):>9}  {row['fit_label']}")


def cmd_boards(args) -> int:
    from .measure.boards import BOARDS, CUSTOM, format_bytes

    for board in BOARDS.values():
        print(f"{board.key:<10} {board.name:<40} RAM {format_bytes(board.ram_bytes):>9}  flash "
              f"{format_bytes(board.flash_bytes):>9}  {board.note}")
    print(f"{CUSTOM:<10} your own budget: --board custom --ram-kb N --flash-kb N")
    return 0


def cmd_datasets(args) -> int:
    from .inputs.builtin_datasets import list_datasets

    for d in list_datasets():
        where = "available" if d.get("offline") else "needs download/files"
        print(f"{d['name']:<14} {where:<20} {d['description']}")
    return 0


def cmd_models(args) -> int:
    from .inputs.models import list_models
    from .inputs.pretrained import list_pretrained

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
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="also show TensorFlow's native log lines and the engine's debug log")
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="run a recipe (a JSON file or a preset name)")
    run.add_argument("recipe", help="recipe JSON file, or a preset: " + ", ".join(PRESETS))
    run.add_argument("--out", default="out", help="output folder for results.json and the .tflite files")
    run.add_argument("--store", nargs="?", const="", default=None,
                     help="record the run in the app's store (optionally give its folder)")
    run.add_argument("--recompute", action="store_true",
                     help="compute every variant afresh instead of reusing identical ones from earlier runs (--store)")
    run.add_argument("--board", default=None,
                     help="print whether each variant fits this board's RAM and flash (see the boards command)")
    run.add_argument("--ram-kb", type=float, default=None, help="RAM of --board custom, in KB")
    run.add_argument("--flash-kb", type=float, default=None, help="flash of --board custom, in KB")
    run.add_argument("--ray", metavar="ADDRESS", default=None,
                     help="run each variant as a Ray task: 'local' (Ray on this machine), 'auto' or "
                          "'ray://host:10001' (a cluster); default: $COMPRESSION_LAB_RAY_ADDRESS, else in this process")
    run.set_defaults(func=cmd_run)
    sens = sub.add_parser("sensitivity", help="per-layer sensitivity of a recipe's baseline (no fine-tune)")
    sens.add_argument("recipe", help="recipe JSON file, or a preset (its dataset, model and baseline are used)")
    sens.add_argument("--out", default="out", help="output folder for results.json and sensitivity.csv")
    sens.set_defaults(func=cmd_sensitivity)
    srch = sub.add_parser("search", help="search the smallest variant within an accuracy (and board) budget")
    srch.add_argument("recipe", help="recipe JSON file, or a preset (its dataset, model and baseline are used)")
    srch.add_argument("--budget", type=float, default=1.0, help="accuracy points the result may lose (default 1.0)")
    srch.add_argument("--relative", action="store_true", help="read --budget as percent of the baseline accuracy")
    srch.add_argument("--minutes", type=float, default=None,
                      help="time budget for the trials (20 when neither --minutes nor --trials is given)")
    srch.add_argument("--trials", type=int, default=None, help="most trials")
    srch.add_argument("--board", default=None, help="fit this board's RAM and flash (see the boards command)")
    srch.add_argument("--ram-kb", type=float, default=None, help="RAM of --board custom, in KB")
    srch.add_argument("--flash-kb", type=float, default=None, help="flash of --board custom, in KB")
    srch.add_argument("--objective", choices=["gzip", "raw"], default="gzip", help="minimise gzip or raw bytes")
    srch.add_argument("--seed", type=int, default=None, help="sampler seed (default: the recipe's)")
    srch.add_argument("--max-epochs", type=int, default=None, help="longest fine-tune a trial may pick")
    srch.add_argument("--strip-strings", action="store_true",
                      help="trials' files without tensor names or signature (same outputs, fewer bytes)")
    srch.add_argument("--out", default="out", help="output folder for results.json and the trials' .tflite files")
    srch.set_defaults(func=cmd_search)
    sub.add_parser("boards", help="list the microcontroller boards' RAM and flash budgets").set_defaults(
        func=cmd_boards)
    sub.add_parser("datasets", help="list datasets").set_defaults(func=cmd_datasets)
    sub.add_parser("models", help="list zoo models and shipped pretrained baselines").set_defaults(func=cmd_models)
    presets = sub.add_parser("presets", help="list presets (--show NAME prints its JSON)")
    presets.add_argument("--show", choices=list(PRESETS))
    presets.set_defaults(func=cmd_presets)
    return parser


def _configure_logging(verbose: bool) -> None:
    """Quiet by default (the user's sentences only); -v: TensorFlow's native lines and the engine's log."""

    from ._tf import VERBOSE_ENV

    if verbose:
        os.environ[VERBOSE_ENV] = "1"  # read before TensorFlow loads, here and in child processes
        logging.basicConfig(stream=sys.stderr, level=logging.WARNING, format="%(name)s %(levelname)s %(message)s")
        logging.getLogger("compression").setLevel(logging.DEBUG)


def exit_now(code: int) -> None:
    """End the ``python -m compression`` process once its results are written, skipping the interpreter's teardown.

    With TensorFlow loaded, Python's own exit takes ~1.5 s (module teardown, TensorFlow's destructors) and the
    isolation child's orderly shutdown ~0.7 s more (measured on the 2-core machine); by the time ``main()``
    returns, results.json and the store are written and closed. Flush what we print, kill the idle child,
    and leave. Only for the command line: ``main()`` itself returns normally to in-process callers (tests).
    """
    sys.stdout.flush()
    sys.stderr.flush()
    logging.shutdown()
    if "compression.isolation" in sys.modules:
        sys.modules["compression.isolation"].abandon_shared_pool()
    if "multiprocessing.util" in sys.modules:
        # What multiprocessing's own atexit hook does (with the child killed, it does not wait): release the
        # pool's semaphores, or the resource tracker warns about them on the terminal after we are gone.
        sys.modules["multiprocessing.util"]._exit_function()
    os._exit(0 if code is None else code if isinstance(code, int) else 1)  # as sys.exit(code) would


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    _configure_logging(args.verbose)
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
