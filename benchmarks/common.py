"""Shared helpers of the benchmark suite: context, machine facts, timing, targets, tables.

Every benchmark module exposes ``TITLE`` and ``run(ctx) -> dict`` returning a *section*::

    {"title": str, "targets": [target(...)], "tables": [table(...)], "notes": [str],
     "not_measured": [{"part": str | None, "reason": str}], "data": {...raw numbers...}}

``python -m benchmarks`` adds each section's own start time, seconds and load averages, and
``benchmarks.report.render`` turns the sections into RESULTS.md; nothing there is typed by hand.
"""

from __future__ import annotations

import datetime as _dt
import math
import os
import platform
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

os.environ["TF_USE_LEGACY_KERAS"] = "1"
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

ROOT = Path(__file__).resolve().parent.parent
BENCH_DIR = Path(__file__).resolve().parent


@dataclass
class Context:
    """What every benchmark gets: the mode, a work folder, and artefacts shared between benchmarks.

    Attributes:
        quick: the short version (subsampled Fashion-MNIST, fewer points).
        work: folder for run directories (tflite files, results.json of each recipe run).
        shared: artefacts one benchmark leaves for another (e.g. the Fashion-MNIST run folder).
        search_minutes: time budget of each model's search (``--search-minutes``).
    """

    quick: bool = False
    work: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="compression-bench-")))
    shared: dict[str, Any] = field(default_factory=dict)
    search_minutes: float | None = None  # the search benchmark's budget per model; None: the mode's default

    def run_dir(self, name: str) -> Path:
        path = self.work / name
        path.mkdir(parents=True, exist_ok=True)
        return path


def say(message: str) -> None:
    """Print a progress line at once (the suite's figures are printed as they are measured)."""
    print(message, flush=True)


class Stopwatch:
    """``with Stopwatch() as t: ...; t.seconds``."""

    def __enter__(self) -> Stopwatch:
        self.start = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.start


# ---------------------------------------------------------------- machine and versions


def machine_info() -> dict[str, Any]:
    """CPU model, cores, RAM, OS, Python and the load average (the machine is shared)."""
    cpu = platform.processor() or platform.machine()
    flags = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name") and cpu in ("", platform.machine(), platform.processor()):
                cpu = line.split(":", 1)[1].strip()
            if line.startswith("flags") and not flags:
                flags = line
    except OSError:
        pass
    ram = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                ram = round(int(line.split()[1]) / 2**20, 1)
    except OSError:
        pass
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:
        usable = os.cpu_count()
    return {
        "cpu": cpu,
        "logical_cores": os.cpu_count(),
        "usable_cores": usable,
        "avx2": " avx2" in flags,
        "avx512": " avx512f" in flags,
        "ram_gib": ram,
        "os": f"{platform.system()} {platform.release()}",
        "python": sys.version.split()[0],
        "load_average": load_average(),
    }


def timed_process(cmd: list[str], *, cwd: Path = ROOT, env: dict | None = None, timeout: float | None = 3600,
                  log: Path | None = None) -> tuple[float, float]:
    """Run one whole command (output appended to ``log``, or dropped) → (wall s, CPU s of it and its descendants).

    Wall seconds from a monotonic clock; CPU seconds (user + system) from the operating system's accounting of
    the finished child and every descendant it waited for. Raises if it exits non-zero.
    """
    import resource
    import subprocess

    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    t0 = time.perf_counter()
    sink = open(log, "ab") if log else subprocess.DEVNULL
    try:
        done = subprocess.run(cmd, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=sink,
                              stderr=subprocess.STDOUT, timeout=timeout, check=False)
    finally:
        if log:
            sink.close()
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd[:4])} exited {done.returncode}" + (f"; see {log}" if log else ""))
    return wall, (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)


def paired_runs(a: list[str], b: list[str], runs: int, *, cwd: Path = ROOT, env: dict | None = None,
                timeout: float = 3600, log: Path | None = None) -> dict[str, Any]:
    """Time two whole commands in pairs, the order swapped each pair (A B, B A, A B, ...).

    Each run is one process from start to exit (its start-up included); wall seconds from a monotonic
    clock, CPU seconds (user + system) from the operating system's accounting of the finished child and
    every descendant it waited for. The ratio A/B is taken pair by pair, so a drift in the machine's
    speed moves both sides of a pair alike, and swapping the order cancels a first-of-the-pair penalty.
    Written here rather than with a library: ``timeit`` and ``pyperf`` time Python code or single
    commands, not two whole processes interleaved. Raises if a run exits non-zero.

    Returns ``{"A wall s": {"min", "median", "max"}, ... "A/B wall": ..., "A/B cpu": ..., "pairs": [...]}``.
    """
    import statistics

    def once(cmd: list[str]) -> tuple[float, float]:
        return timed_process(cmd, cwd=cwd, env=env, timeout=timeout, log=log)

    pairs = []
    for i in range(runs):
        order = "AB" if i % 2 == 0 else "BA"
        got = {side: once(a if side == "A" else b) for side in order}
        pairs.append({"order": order, "A wall": got["A"][0], "B wall": got["B"][0], "A cpu": got["A"][1],
                      "B cpu": got["B"][1]})
        say(f"  pair {i + 1}/{runs} ({order}): A {got['A'][0]:.1f} s, B {got['B'][0]:.1f} s, "
            f"A/B {got['A'][0] / got['B'][0]:.3f}")

    def spread(values: list[float]) -> dict[str, float]:
        return {"min": min(values), "median": statistics.median(values), "max": max(values)}

    out: dict[str, Any] = {"pairs": pairs, "runs": runs}
    for side in "AB":
        out[f"{side} wall s"] = spread([p[f"{side} wall"] for p in pairs])
        out[f"{side} cpu s"] = spread([p[f"{side} cpu"] for p in pairs])
    out["A/B wall"] = spread([p["A wall"] / p["B wall"] for p in pairs])
    out["A/B cpu"] = spread([p["A cpu"] / p["B cpu"] for p in pairs])
    return out


def load_average() -> list[float] | None:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except OSError:
        return None


def library_versions() -> dict[str, str]:
    """The engine's library versions plus the app's and the browser driver's."""
    from importlib import metadata

    from compression import _tf

    out = dict(_tf.library_versions())
    for name in ("pandas", "streamlit", "playwright"):
        try:
            out[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            out[name] = "not installed"
    return out


def now_iso() -> str:
    return _dt.datetime.now().astimezone().isoformat(timespec="seconds")


def git_state(outputs: tuple[Path, ...] = ()) -> dict[str, Any]:
    """The checkout's short commit and whether tracked files differ from it (``outputs`` not counted).

    ``outputs`` are the files the suite itself rewrites (RESULTS.md, results.json): a previous
    run's uncommitted figures do not make the code dirty.
    """
    import subprocess

    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=30,
                              check=True).stdout

    try:
        commit = git("rev-parse", "--short", "HEAD").strip()
        top = Path(git("rev-parse", "--show-toplevel").strip())
        changed = [line[3:] for line in git("status", "--porcelain", "--untracked-files=no").splitlines()]
    except (OSError, subprocess.SubprocessError):
        return {"commit": None, "dirty": None, "modified": []}
    skip = {str(p.resolve().relative_to(top)) for p in outputs if p.resolve().is_relative_to(top)}
    modified = [c.split(" -> ")[-1] for c in changed if c.split(" -> ")[-1] not in skip]
    return {"commit": commit, "dirty": bool(modified), "modified": modified}


# ---------------------------------------------------------------- Fashion-MNIST

NEEDS_FASHION_MNIST = "needs Fashion-MNIST (`sudo apt-get install -y dataset-fashion-mnist`); not measured"


def fashion_mnist_dir() -> Path | None:
    """The folder the engine reads Fashion-MNIST from, or None when it cannot load it offline.

    Asks the engine's own check (``compression.inputs.builtin_datasets.list_datasets``: Debian's
    /usr/share/datasets/fashion-mnist, ``$COMPRESSION_LAB_FASHION_MNIST_DIR`` or Keras' cache).
    """
    from compression.inputs.builtin_datasets import list_datasets

    entry = next((d for d in list_datasets() if d["name"] == "fashion_mnist"), None)
    return Path(entry["source"]) if entry and entry["offline"] else None


def fashion_mnist_available() -> bool:
    return fashion_mnist_dir() is not None


# ---------------------------------------------------------------- sections


def target(name: str, value: float | None, goal: float, *, unit: str = "", higher_is_better: bool = False,
           note: str = "") -> dict[str, Any]:
    """One figure next to its target; ``met`` is None when the figure could not be measured."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        met = None
    else:
        met = value >= goal if higher_is_better else value <= goal
    return {"name": name, "value": value, "goal": goal, "unit": unit,
            "op": "≥" if higher_is_better else "≤", "met": met, "note": note}


def table(caption: str, headers: list[str], rows: list[list[Any]]) -> dict[str, Any]:
    return {"caption": caption, "headers": headers, "rows": rows}


def not_measured(reason: str, part: str | None = None) -> dict[str, Any]:
    """One part of a section (or the whole section, ``part=None``) that was not measured, and why."""
    return {"part": part, "reason": reason}


def section(title: str, *, targets=None, tables=None, notes=None, data=None, seconds=None,
            missing=None) -> dict[str, Any]:
    """A benchmark's result; ``missing`` lists :func:`not_measured` parts (rendered before the figures)."""
    return {"title": title, "targets": list(targets or []), "tables": list(tables or []),
            "notes": list(notes or []), "not_measured": list(missing or []), "data": data or {}, "seconds": seconds}


def skipped(title: str, reason: str, *, targets=None) -> dict[str, Any]:
    """A section for a benchmark that could not run here, saying why (its targets, if given, as not measured)."""
    return section(title, targets=targets, missing=[not_measured(reason)], data={"skipped": reason})


def needs_fashion_mnist(title: str, *, targets=None) -> dict[str, Any]:
    """The section of a benchmark that runs on Fashion-MNIST only, when the dataset is absent."""
    return skipped(title, NEEDS_FASHION_MNIST, targets=targets)


def quiet_stderr(log: Path) -> None:
    """Send this process' stderr (TensorFlow's and the converter's noise, tracebacks) to ``log``."""
    say(f"stderr goes to {log}")
    sink = open(log, "ab", buffering=0)  # noqa: SIM115 - lives as long as the process
    os.dup2(sink.fileno(), 2)


def run_alone(module, argv: list[str] | None = None) -> int:
    """``python -m benchmarks.<module> [--quick] [--work DIR]``: one section, printed as Markdown; nothing written.

    RESULTS.md comes only from ``python -m benchmarks`` (use ``--only <key>`` there to regenerate it with
    just this section, or ``--out DIR`` to keep the repository's file).
    """
    import argparse

    from .report import render_section

    parser = argparse.ArgumentParser(prog=f"python -m {module.__name__}", description=module.TITLE)
    parser.add_argument("--quick", action="store_true", help="the short version")
    parser.add_argument("--work", default=None, help="folder for the runs' files (default: a new temp folder)")
    args = parser.parse_args(argv)
    ctx = Context(quick=args.quick) if args.work is None else Context(quick=args.quick, work=Path(args.work))
    ctx.work.mkdir(parents=True, exist_ok=True)
    quiet_stderr(ctx.work / "stderr.log")
    started, load_start, t0 = now_iso(), load_average(), time.perf_counter()
    result = module.run(ctx)
    result.update(started=started, seconds=round(time.perf_counter() - t0, 1), load_average_start=load_start,
                  load_average_end=load_average())
    print(render_section(result), flush=True)
    return 0


# ---------------------------------------------------------------- formatting


def fmt(value: Any, digits: int = 4) -> str:
    """A cell: floats to at most ``digits`` decimals (callers round to what is meaningful), None as an em dash,
    integers grouped by thousands."""
    if value is None:
        return "—"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}".replace(",", " ")
    if isinstance(value, float):
        if math.isnan(value):
            return "—"
        if value != 0 and abs(value) < 10 ** -digits:
            return f"{value:.2g}"
        text = f"{value:.{digits}f}"
        if "." in text:
            text = text.rstrip("0").rstrip(".")
        return "0" if text == "-0" else text
    return str(value)


def text_table(headers: list[str], rows: list[list[Any]]) -> str:
    """A plain aligned table for the terminal."""
    cells = [[fmt(c) for c in r] for r in rows]
    widths = [max(len(h), *(len(r[i]) for r in cells)) if cells else len(h) for i, h in enumerate(headers)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(headers, widths, strict=True))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(r, widths, strict=True)) for r in cells]
    return "\n".join(lines)


def progress_printer(prefix: str):
    """A ``progress`` callback for run_recipe that prints each finished variant (figures as they come)."""
    started = time.perf_counter()

    def show(event) -> None:
        if event.phase == "baseline_done":
            say(f"  [{prefix} {time.perf_counter() - started:6.1f}s] {event.message}")
        elif event.phase == "variant_done":
            from compression.results import VariantResult

            row = VariantResult.from_dict((event.data or {}).get("row"))
            if row.ok:
                say(f"  [{prefix} {time.perf_counter() - started:6.1f}s] {row.name}: acc {row.accuracy:.4f}  "
                    f"{row.size_bytes} B raw  {row.gzip_bytes} B gzip  {row.latency.median or 0:.4f} ms")
            else:
                say(f"  [{prefix} {time.perf_counter() - started:6.1f}s] {row.name}: {row.status} ({row.error})")

    return show
