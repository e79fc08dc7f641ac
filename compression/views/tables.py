"""Tables the pages draw, as pure functions of store records and typed results (no Streamlit).

* :func:`history_table` — the History page: one row per run of the store.
* :func:`variant_status_rows` — the live run monitor: one line per variant of the recipe,
  finished ones from results.json joined with the queued/running ones still to come.
* :func:`flag_lines` — every flag of a run (baseline first) as ``(who, sentence)``: what the pages and the
  CLI print beside their tables, so a flagged row never reads as plain "ok".

Usage::

    history_table(store.list_runs(), session="tab-1")
    variant_status_rows(recipe_names, store.get_run(run_id), store.results(run_id))
    flag_lines(store.results(run_id))    # [(None, "The baseline's accuracy ..."), ("int8", "predicts class 3 ...")]
"""

from __future__ import annotations

import datetime as dt
import math
from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from ..progress import Progress
from ..results import MEASUREMENT_WORDS, Flag, RunResults, RunStatus, results_table

__all__ = [
    "FLAGGED",
    "HISTORY_COLUMNS",
    "VARIANT_STATUS_COLUMNS",
    "flag_labels",
    "flag_lines",
    "format_duration",
    "format_when",
    "history_table",
    "variant_status_rows",
]

# What the monitor says a variant is doing (the progress phases are internal names).
PHASE_WORDS = {"variant_start": "starting", "fine_tune": "fine-tuning", "convert": "converting",
               "measure": "measuring", "variant_done": "finishing"}
HISTORY_COLUMNS = [
    "date", "title", "dataset", "model", "variants", "best ratio (≤1 pt lost)", "status", "duration", "size (MB)",
    "mine", "id",
]
VARIANT_STATUS_COLUMNS = [
    "variant", "status", "flags", "accuracy", "delta_accuracy", "gzip_bytes", "ratio", "latency_ms", "seconds", "error",
]


# The status a finished variant shows when its figures would mislead alone (results.json keeps "ok").
FLAGGED = "ok, flagged"


def flag_labels(flags: Iterable[Flag]) -> str:
    """Short words for a row's flags: "near chance, one class" ("" when none)."""
    return ", ".join(f.code.replace("_", " ") for f in flags)


def flag_lines(results: RunResults | None) -> list[tuple[str | None, str]]:
    """Every flag of a run as ``(who, sentence)``: the baseline's first (``who`` None), then each variant's (its name).

    Usage::

        for who, sentence in flag_lines(results):
            print(f"warning: {who or 'baseline'}: {sentence}")
    """
    if results is None:
        return []
    baseline = results.baseline.flags if results.baseline else ()
    lines: list[tuple[str | None, str]] = [(None, f.message) for f in baseline]
    return lines + [(v.name, f.message) for v in results.variants for f in v.flags]


def format_when(iso: str | None) -> str:
    """'2024-01-31 12:00' from an ISO 8601 time ("" for None; the text itself if it is not ISO)."""
    if not iso:
        return ""
    try:
        return dt.datetime.fromisoformat(iso).strftime("%Y-%m-%d %H:%M")
    except ValueError:
        return iso


def format_points(change: float) -> str:
    """An accuracy change in points, signed, two decimals: '+0.10 points', '-1.39 points', never '-0.00'."""
    return f"{round(change, 2) + 0.0:+.2f} points"


def format_duration(seconds: float | None) -> str:
    """'42 s' or '3 min 05 s' ("" for None or a non-finite number)."""
    if seconds is None or not math.isfinite(seconds):
        return ""
    seconds = int(round(seconds))
    return f"{seconds // 60} min {seconds % 60:02d} s" if seconds >= 60 else f"{seconds} s"


def history_table(
    runs: Iterable[dict[str, Any]], session: str | None, sizes: dict[str, int] | None = None
) -> pd.DataFrame:
    """One row per run (``Store.list_runs`` dicts, newest first): what the History page lists.

    Args:
        runs: run records as :meth:`Store.get_run` returns them.
        session: this browser session's id; ``mine`` is True for its runs.
        sizes: bytes on disk of each run's folder (``RunFolder.size_bytes``), by run id; missing: empty.

    Returns:
        A frame with :data:`HISTORY_COLUMNS`.
    """
    rows = [
        {
            "date": format_when(r["created"]),
            "title": r["title"],
            "dataset": r["dataset"],
            "model": r["model"],
            "variants": r["n_variants"],
            "best ratio (≤1 pt lost)": r["best_ratio"],
            "status": str(r["status"]),
            "duration": format_duration(r["duration"]),
            "size (MB)": (sizes or {}).get(r["id"], float("nan")) / 1e6,
            "mine": r["session"] == session,
            "id": r["id"],
        }
        for r in runs
    ]
    return pd.DataFrame(rows, columns=HISTORY_COLUMNS)


def variant_status_rows(names: Sequence[str], run: dict[str, Any], results: RunResults | None) -> pd.DataFrame:
    """One line per variant of the recipe: finished ones from the results, the rest waiting/running/not run.

    Args:
        names: the recipe's variant names, in order.
        run: the run record (``status``, ``progress``: its last progress event).
        results: the run's results so far (None before it has any).

    Returns:
        A frame with :data:`VARIANT_STATUS_COLUMNS` (``ratio`` is the gzip ratio vs the float32 `.tflite`); an
        ok variant with flags has the status :data:`FLAGGED` and its flags' short words in ``flags``.
    """
    done = {v.name: v for v in results.variants} if results else {}
    table = results_table(results).set_index("name") if done else None
    progress = Progress.from_dict(run.get("progress"))
    current = progress.variant
    status = run["status"]
    rows = []
    for name in names:
        if name in done:
            v = done[name]
            flagged = v.ok and bool(v.flags)
            row = {"variant": name, "status": FLAGGED if flagged else v.status.value, "flags": flag_labels(v.flags)}
            if v.measuring:  # accuracy and size are in; a slow measurement still runs beside the next variant
                row["status"] = f"{row['status']}, measuring " + ", ".join(MEASUREMENT_WORDS.get(m, m)
                                                                          for m in v.measuring)
            if table is not None and name in table.index:
                t = table.loc[name]
                row.update(
                    accuracy=t["accuracy"],
                    delta_accuracy=t["delta_accuracy"],
                    gzip_bytes=t["gzip_bytes"],
                    ratio=t["gzip_ratio"],
                    latency_ms=t["latency_median_ms"],
                    seconds=v.seconds,
                    error=v.error,
                )
        elif status == RunStatus.RUNNING and name == current:
            row = {"variant": name, "status": PHASE_WORDS.get(progress.phase, "running")}
        elif status in (RunStatus.QUEUED, RunStatus.RUNNING):
            row = {"variant": name, "status": "waiting"}
        else:
            row = {"variant": name, "status": "not run"}
        rows.append(row)
    return pd.DataFrame(rows, columns=VARIANT_STATUS_COLUMNS)
