"""Benchmark 10: the classroom lessons, in headless Chromium: seconds from a lesson button's click to its chart.

A live ``streamlit run app.py`` on a fresh store (the embedded default: digits + the pretrained
seed CNN). For each lesson, in the sidebar's order, a new browser session opens the app at its
start, clicks the lesson's button and waits until the Lessons page has drawn the chart (its Plotly
figure holds data). Then each lesson once more (a second class: the finished run is reused).
Where the worker's time went comes from the run's own progress events (data and baseline, then
the variant's fine-tune, conversion and measurement).

A section of ``python -m benchmarks`` (``--only lessons``; ``--quick``: the first two lessons), or alone::

    python -m benchmarks.lessons            # prints a table; nothing is written
    python -m benchmarks.lessons --only pruning,schedule

The lessons are clicked right after the first page is drawn, so the first lesson may meet a spare
worker still importing TensorFlow (the worst case a class meets). Browser: Playwright driving
Debian's ``/usr/bin/chromium``. Timings are wall-clock on whatever else the machine runs: the load
average is recorded beside them.
"""

from __future__ import annotations

import argparse
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from datetime import datetime
from pathlib import Path
from typing import Any

from .common import Context, load_average, say, section, skipped, table

ROOT = Path(__file__).resolve().parent.parent
TITLE = "10. Lessons in the browser"
QUICK_LESSONS = 2
LESSONS_TITLE = "Lessons: pruning, clustering, int8, the pruning schedule"  # compression.explore.lessons.LESSONS_TITLE
CHROMIUM = "/usr/bin/chromium"
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CHART = ".st-key-lesson_chart .js-plotly-plot"
HAS_DATA = ("() => { const gd = document.querySelector('.st-key-lesson_chart .js-plotly-plot');"
            " return !!(gd && gd.data && gd.data.length); }")
DEADLINE_MS = 300_000


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _start(data: Path, log: Path) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    env = {**os.environ, "COMPRESSION_LAB_DATA": str(data), "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                                 "--server.port", str(port), "--server.address", "127.0.0.1",
                                 "--browser.gatherUsageStats", "false"],
                                cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while True:
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=5) as r:
                if r.status == 200:
                    return proc, url
        except OSError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"streamlit did not start; see {log}")
        time.sleep(0.2)  # poll interval


def _stop(proc: subprocess.Popen, data: Path) -> None:
    from compression.store import Store

    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=15)
    except (ProcessLookupError, subprocess.TimeoutExpired):
        os.killpg(proc.pid, signal.SIGKILL)
    for run in Store(data).list_runs():  # each worker leads its own session
        if run["pid"]:
            try:
                cmd = Path(f"/proc/{run['pid']}/cmdline").read_bytes()
            except OSError:
                continue
            if b"compression.run.worker" in cmd and str(data).encode() in cmd:
                os.killpg(run["pid"], signal.SIGKILL)


def _click_to_chart(browser, url: str, key: str) -> float:
    ctx = browser.new_context(viewport={"width": 1280, "height": 800})
    ctx.set_default_timeout(DEADLINE_MS)
    page = ctx.new_page()
    try:
        page.goto(url)
        page.get_by_role("heading", name="Compress").first.wait_for()
        page.wait_for_selector(IDLE)
        started = time.perf_counter()
        page.locator(f".st-key-lesson_{key}").get_by_role("button").click()
        page.wait_for_selector(CHART)
        page.wait_for_function(HAS_DATA)
        return time.perf_counter() - started
    finally:
        ctx.close()


def _phases(store, variant: str) -> dict[str, float]:
    """Seconds from the lessons' run's creation to this lesson's variant starting and to its row (progress events)."""
    run = next(r for r in store.list_runs() if r["title"] == LESSONS_TITLE)
    events = store.events(run["id"])
    created = datetime.fromisoformat(run["created"]).timestamp()
    out = {}
    if events:
        out["run: to first event"] = events[0]["time"] - created
    for phase, label in (("variant_start", "to its start"), ("variant_done", "to its row")):
        at = next((e["time"] for e in events if e.get("phase") == phase and e.get("variant") == variant), None)
        if at is not None:
            out[label] = at - created
    if os.environ.get("LESSONS_BENCH_EVENTS"):
        for e in events:
            if e.get("batch") is None:
                print(f"    {e['time'] - created:6.2f} {e.get('phase')}: {e.get('message')}")
    return out


def measure(keys: list[str], work: Path) -> list[dict[str, Any]]:
    """Each lesson clicked on a fresh store, then again: seconds to its chart, load, where the run's time went."""
    from playwright.sync_api import sync_playwright

    from compression.explore.lessons import LESSONS
    from compression.store import Store

    proc, url = _start(work / "lab", work / "streamlit.log")
    rows = []
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path=CHROMIUM, args=["--headless", "--no-sandbox",
                                                                        "--disable-gpu"])
            for key in keys:
                load = load_average()
                first = _click_to_chart(browser, url, key)
                again = _click_to_chart(browser, url, key)
                phases = _phases(Store(work / "lab"), LESSONS[key].variant.name)
                rows.append({"lesson": key, "first_s": first, "again_s": again, "phases": phases,
                             "load_average": load})
                say(f"  {key:14s} first {first:6.1f} s   again {again:5.1f} s   load {load}   "
                    + "  ".join(f"{k} {v:.1f} s" for k, v in phases.items()))
            browser.close()
    finally:
        _stop(proc, work / "lab")
    return rows


def run(ctx: Context) -> dict[str, Any]:
    if not Path(CHROMIUM).exists():
        return skipped(TITLE, "/usr/bin/chromium is missing (`apt-get install -y chromium`).")
    try:
        import playwright  # noqa: F401
    except ImportError:
        return skipped(TITLE, "Playwright is not installed (`pip install -r requirements-dev.txt`).")
    from compression.explore.lessons import LESSONS

    keys = list(LESSONS)[:QUICK_LESSONS] if ctx.quick else list(LESSONS)
    say(f"[10] lessons {', '.join(keys)} in headless Chromium on a fresh store")
    rows = measure(keys, ctx.run_dir("lessons"))

    def phase(r: dict, name: str) -> float | None:
        value = r["phases"].get(name)
        return None if value is None else round(value, 1)

    notes = ["Each lesson in the sidebar's order, in a new browser session on the app's first page: the click on "
             "its button → the Lessons page's chart holding data; then the same lesson again (a second class: the "
             "finished run is reused). The run's times are seconds after the lessons' run was created, from its "
             "progress events. The first lesson is clicked right after the first page, so it may meet a spare "
             "worker still importing TensorFlow (worst case); one run prepares every lesson, so the later ones "
             "are faster."]
    if ctx.quick:
        notes.append(f"Quick mode: the first {QUICK_LESSONS} lessons only.")
    return section(TITLE, tables=[table(
        "Digits, pretrained seed CNN (the embedded default), `streamlit run app.py` on a fresh store; seconds",
        ["lesson", "click → chart", "again", "run: to first event", "to its variant's start", "to its row",
         "load average at the click"],
        [[r["lesson"], round(r["first_s"], 1), round(r["again_s"], 1), phase(r, "run: to first event"),
          phase(r, "to its start"), phase(r, "to its row"), r["load_average"]] for r in rows])],
        notes=notes, data={"rows": rows})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.lessons", description=__doc__.splitlines()[0])
    parser.add_argument("--only", help="comma-separated lesson keys (default: every lesson)")
    args = parser.parse_args(argv)
    from compression.explore.lessons import LESSONS

    keys = args.only.split(",") if args.only else list(LESSONS)
    measure(keys, Path(tempfile.mkdtemp(prefix="lessons-bench-")))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
