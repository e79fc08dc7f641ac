"""Benchmark 6: the app itself, in headless Chromium.

1. A store is filled with one run of 50 variants on digits (pretrained seed CNN: 5 pruning
   sparsities and 5 clusterings, each in 5 quantization modes) through the CLI's ``--store``
   path, so it is a real run with real ``.tflite`` files. (``--quick``: the 50 rows are the
   real rows of a small run repeated under new names, files copied: same page, no 50 conversions.)
2. ``python3 -m streamlit run app.py`` is started on a free port with that store; seconds from
   the process start to the first page (Compress) rendered in the browser: its title drawn and
   Streamlit's script state back to ``notRunning``.
3. History → "Open in Compare": seconds from the click until the Compare page for the 50-variant
   run has finished rendering (its results table drawn, script state ``notRunning``, every
   Plotly chart drawn); 3 times, moving between pages with the sidebar as a user does. The first
   time also loads Plotly's JavaScript into the page.
4. Diagnostics for what bounds these: the same pages' scripts alone (``AppTest``, no server, no
   browser), and steps 2–3 again with Streamlit's file watcher off (``--server.fileWatcherType none``).

Browser: Playwright driving Debian's ``/usr/bin/chromium`` (``apt-get install -y chromium``).
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Any

from .common import ROOT, Context, Stopwatch, say, section, skipped, table, target, text_table

TITLE = "6. The app"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu"]
GOAL_START_S = 5.0
GOAL_COMPARE_S = 2.0
N_VARIANTS = 50
REPEATS = 3
DEADLINE_MS = 120_000
IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
CHARTS_DRAWN = ("() => { const c = [...document.querySelectorAll('[data-testid=stPlotlyChart]')];"
                " return c.length > 0 && c.every(e => e.querySelector('.main-svg')); }")


def fifty_variants() -> list[dict[str, Any]]:
    """5 pruning sparsities and 5 clusterings (shared fine-tunes), each converted in the 5 modes."""
    modes = ("float32", "dynamic", "float16", "int8", "int16x8")
    out = []
    for s in (0.5, 0.6, 0.7, 0.8, 0.9):
        prune = {"schedule": "polynomial", "initial_sparsity": min(0.5, s), "final_sparsity": s}
        out += [{"name": f"pruned{int(s * 100)}-{m}", "pruning": prune, "fine_tune_epochs": 2, "quantization": m}
                for m in modes]
    for k in (4, 8, 16, 32, 64):
        out += [{"name": f"cluster{k}-{m}", "clustering": {"clusters": k}, "fine_tune_epochs": 2, "quantization": m}
                for m in modes]
    return out


def fill_store(ctx: Context) -> Path:
    """A store holding one finished 50-variant run, made with ``python -m compression run --store``."""
    root = ctx.run_dir("store-app")
    recipe = {"title": f"Benchmark: {N_VARIANTS} variants", "dataset": {"name": "digits"},
              "model": {"name": "seed_cnn"}, "baseline": {"pretrained": True},
              "variants": fifty_variants(), "evaluation": {"latency_runs": 50}}
    path = root / "recipe50.json"
    path.write_text(json.dumps(recipe))
    log = root / "cli.log"
    say(f"[6] running a {N_VARIANTS}-variant recipe into the store {root}")
    with Stopwatch() as t, open(log, "wb") as f:
        proc = subprocess.run([sys.executable, "-m", "compression", "run", str(path), "--store", str(root)],
                              cwd=ROOT, stdout=f, stderr=subprocess.STDOUT, check=False)
    if proc.returncode != 0:
        raise RuntimeError(f"the 50-variant run failed (exit {proc.returncode}); see {log}")
    say(f"  stored in {t.seconds:.0f} s")
    return root


def copied_store(ctx: Context) -> Path:
    """Quick mode: a store whose one run holds 50 rows, the real rows of a small run repeated under new names."""
    import shutil

    from compression.config import Recipe
    from compression.results import RunStatus, file_stem
    from compression.run.recipe import run_recipe
    from compression.run_folder import RunFolder
    from compression.store import Store

    source = RunFolder(ctx.run_dir("app-source"))
    if not source.results_file.exists():
        say(f"[6] quick: a 5-variant digits run to copy rows from → {source.path}")
        run_recipe(Recipe.from_dict({"dataset": {"name": "digits"}, "baseline": {"pretrained": True},
                                     "variants": fifty_variants()[:5], "evaluation": {"latency_runs": 50}}),
                   source.path)
    results = source.read_results()
    rows = results.ok_variants
    variants, new_rows = [], []
    for i in range(N_VARIANTS):
        row = rows[i % len(rows)]
        name = f"{row.name}-{i // len(rows) + 1}"
        variants.append({**row.settings, "name": name})
        new_rows.append(row.replace(name=name, tflite=f"{file_stem(name)}.tflite",
                                    settings={**row.settings, "name": name}))
    recipe = Recipe.from_dict({**results.recipe, "title": f"Benchmark: {N_VARIANTS} variants (copied rows)",
                               "variants": variants})
    store = Store(ctx.run_dir("store-app"))
    run_id = store.create_run(recipe, session="benchmark", running=True)
    folder = store.folder(run_id)
    folder.weights_dir.mkdir(exist_ok=True)
    folder.predictions_dir.mkdir(exist_ok=True)
    for src, dst in ((source.weights(), folder.weights()), (source.predictions(), folder.predictions()),
                     (source.labels, folder.labels), (source.baseline_model, folder.baseline_model)):
        if src.exists():
            shutil.copy(src, dst)
    for old, new in zip([rows[i % len(rows)] for i in range(N_VARIANTS)], new_rows, strict=True):
        shutil.copy(source.tflite(old), folder.tflite(new))
        shutil.copy(source.weights(old.stem), folder.weights(new.stem))
        shutil.copy(source.predictions(old.stem), folder.predictions(new.stem))
    folder.write_results(results.replace(recipe=recipe.to_dict(), variants=tuple(new_rows)))
    store.set_status(run_id, RunStatus.OK)
    return store.root


def script_timings(store_root: Path) -> dict[str, Any]:
    """The first page's and the Compare page's scripts alone (AppTest, a fresh process): no server, no browser."""
    out = subprocess.run([sys.executable, "-m", "benchmarks.app_render", "apptest", str(store_root)], cwd=ROOT,
                         capture_output=True, text=True, check=False,
                         env={**os.environ, "COMPRESSION_LAB_DATA": str(store_root)})
    lines = [line for line in out.stdout.splitlines() if line.startswith("{")]
    if out.returncode != 0 or not lines:
        raise RuntimeError(f"AppTest timing failed: {(out.stderr or out.stdout).strip().splitlines()[-1:]}")
    return json.loads(lines[-1])


def _apptest_main(store_root: str) -> None:
    """``python -m benchmarks.app_render apptest STORE``: print the script timings as JSON."""
    t0 = time.perf_counter()
    from streamlit.testing.v1 import AppTest

    from compression.store import Store

    imported = time.perf_counter() - t0
    run_id = Store(store_root).list_runs()[0]["id"]
    timings: dict[str, Any] = {"import_streamlit_s": imported}
    at = AppTest.from_file(str(ROOT / "app.py"), default_timeout=DEADLINE_MS / 1000)
    for key in ("first_page_cold_s", "first_page_warm_s"):
        start = time.perf_counter()
        at.run()
        timings[key] = time.perf_counter() - start
    compare = AppTest.from_file(str(ROOT / "pages" / "3_compare.py"), default_timeout=DEADLINE_MS / 1000)
    compare.session_state["run_id"] = run_id
    runs = []
    for _ in range(1 + REPEATS):
        start = time.perf_counter()
        compare.run()
        runs.append(time.perf_counter() - start)
    timings["compare_first_s"], timings["compare_again_s"] = runs[0], sorted(runs[1:])[len(runs[1:]) // 2]
    timings["errors"] = [str(e.value) for e in compare.exception]
    print(json.dumps(timings))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def _on_page(path: str):
    """A URL predicate: the app's page ``path``, whatever the query string (the app keeps ``?sid=`` there)."""
    from urllib.parse import urlparse

    return lambda url: urlparse(url).path.rstrip("/").endswith(f"/{path}")


def _wait_title(page, heading: str) -> None:
    """Until the page's title is drawn (page titles carry a material icon name before the text)."""
    page.get_by_role("heading", name=heading).first.wait_for(state="visible")


def _wait_rendered(page, heading: str, marker: str | None = None) -> None:
    """Until the page's title is drawn, (optionally) a second heading too, and the script has finished."""
    _wait_title(page, heading)
    if marker:
        page.get_by_role("heading", name=marker).first.wait_for(state="visible")
    page.locator(IDLE).wait_for(state="attached")


def _stop(process: subprocess.Popen) -> None:
    try:
        os.killpg(process.pid, signal.SIGTERM)
        process.wait(timeout=15)
    except (ProcessLookupError, PermissionError):
        pass
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=15)


def measure_app(store_root: Path, log: Path, extra_args: tuple[str, ...] = ()) -> dict[str, Any]:
    from playwright.sync_api import sync_playwright

    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "COMPRESSION_LAB_DATA": str(store_root), "PYTHONUNBUFFERED": "1"}
    out: dict[str, Any] = {}
    with sync_playwright() as p:
        browser = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1400, "height": 1000})
        context.set_default_timeout(DEADLINE_MS)
        page = context.new_page()
        with open(log, "wb") as f:
            t0 = time.perf_counter()
            process = subprocess.Popen(
                [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
                 "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false",
                 *extra_args],
                cwd=ROOT, env=env, stdout=f, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                start_new_session=True)
        try:
            while not _healthy(url):
                if process.poll() is not None:
                    raise RuntimeError(f"streamlit exited with {process.returncode}; see {log}")
                if time.perf_counter() - t0 > DEADLINE_MS / 1000:
                    raise TimeoutError("streamlit did not answer /_stcore/health")
                time.sleep(0.05)
            out["healthy_s"] = time.perf_counter() - t0
            page.goto(url)
            _wait_title(page, "Compress")
            out["first_title_s"] = time.perf_counter() - t0
            _wait_rendered(page, "Compress")
            out["first_page_s"] = time.perf_counter() - t0
            say(f"  server healthy after {out['healthy_s']:.2f} s, first page's title after {out['first_title_s']:.2f}"
                f" s, first page rendered (script finished) after {out['first_page_s']:.2f} s")

            # In-app navigation, as a user clicks (a page.goto would reload Streamlit's and Plotly's JavaScript).
            compare, script_done = [], []
            for i in range(REPEATS):
                page.locator('[data-testid="stSidebarNav"] a[href$="/history"]').first.click()
                page.wait_for_url(_on_page("history"))
                _wait_rendered(page, "History")
                button = page.get_by_role("button", name="Open in Compare")
                start = time.perf_counter()
                button.click()
                page.wait_for_url(_on_page("compare"))
                _wait_rendered(page, "Compare", "Results")
                page.locator('[data-testid="stDataFrame"]').first.wait_for(state="visible")
                page.locator(IDLE).wait_for(state="attached")
                script_done.append(time.perf_counter() - start)
                page.wait_for_function(CHARTS_DRAWN)
                compare.append(time.perf_counter() - start)
                say(f"  Compare page with {N_VARIANTS} variants rendered in {compare[-1]:.2f} s (try {i + 1})")
            out["compare_s"] = compare
            out["compare_script_done_s"] = script_done
            page.screenshot(path=str(log.with_name("compare.png")), full_page=False)
        finally:
            _stop(process)
            browser.close()
    return out


def run(ctx: Context) -> dict[str, Any]:
    if not (ROOT / "app.py").exists():
        return skipped(TITLE, "app.py is not in the repository yet; rerun `python -m benchmarks --only app` "
                              "once it is.")
    if not CHROMIUM.exists():
        return skipped(TITLE, "/usr/bin/chromium is missing (`apt-get install -y chromium chromium-driver`).")
    try:
        import playwright  # noqa: F401
    except ImportError:
        return skipped(TITLE, "Playwright is not installed (`pip install -r requirements-dev.txt`).")

    with Stopwatch() as total:
        root = copied_store(ctx) if ctx.quick else fill_store(ctx)
        say("[6] the app as configured")
        m = measure_app(root, ctx.run_dir("app") / "streamlit.log")
        say("[6] the same with Streamlit's file watcher off (diagnostic)")
        off = measure_app(root, ctx.run_dir("app") / "streamlit-nowatch.log", ("--server.fileWatcherType", "none"))
        say("[6] the pages' scripts alone (AppTest, diagnostic)")
        scripts = script_timings(root)

    def median(values):
        return sorted(values)[len(values) // 2]

    compare, compare_off = median(m["compare_s"]), median(off["compare_s"])
    rows = [
        ["server process start → /_stcore/health answers", round(m["healthy_s"], 2), round(off["healthy_s"], 2)],
        ["server process start → first page's title drawn", round(m["first_title_s"], 2),
         round(off["first_title_s"], 2)],
        ["server process start → first page rendered (script finished)", round(m["first_page_s"], 2),
         round(off["first_page_s"], 2)],
    ]
    rows += [[f"History → Open in Compare → Compare rendered, {N_VARIANTS} variants (try {i + 1})", round(a, 2),
              round(b, 2)] for i, (a, b) in enumerate(zip(m["compare_s"], off["compare_s"], strict=True))]
    script_rows = [
        ["first page (app.py → Compress), first run in a fresh process", round(scripts["first_page_cold_s"], 2)],
        ["first page, again", round(scripts["first_page_warm_s"], 3)],
        [f"Compare, {N_VARIANTS} variants, first run", round(scripts["compare_first_s"], 2)],
        [f"Compare, {N_VARIANTS} variants, again (median of {REPEATS})", round(scripts["compare_again_s"], 3)],
    ]
    say(text_table(["moment", "as configured", "file watcher off"], rows))
    say(text_table(["script alone (AppTest)", "seconds"], script_rows))
    targets = [
        target("server start → first page rendered", round(m["first_page_s"], 2), GOAL_START_S, unit="s"),
        target(f"Compare page render, {N_VARIANTS} variants (median of {REPEATS})", round(compare, 2),
               GOAL_COMPARE_S, unit="s"),
    ]
    done = median(m["compare_script_done_s"])
    notes = [f"The first Compare render of a browser session also loads Plotly's JavaScript: {m['compare_s'][0]:.2f} s "
             f"here; the target takes the median of the {REPEATS} tries."]
    if m["first_page_s"] > GOAL_START_S or compare > GOAL_COMPARE_S:
        notes.append(
            f"What bounds it (measured above): the Compare script itself takes {scripts['compare_again_s']:.2f} s "
            f"once warm (AppTest); in the browser the page reports its script finished {done:.2f} s after the click "
            f"(median) and every Plotly chart is drawn at {compare:.2f} s. The "
            f"{done - scripts['compare_again_s']:.2f} s outside the script are the History page's own rerun (its "
            "button switches page from there), the websocket round trips and the browser building a 50-row data "
            "grid and 5 Plotly charts with software rendering in headless Chromium, all on the same 2 shared cores. "
            + (f"Streamlit's file watcher is not what bounds it: with `--server.fileWatcherType none` the Compare "
               f"page takes {compare_off:.2f} s and the first page {off['first_page_s']:.2f} s. "
               if compare_off >= 0.8 * compare else
               f"With `--server.fileWatcherType none` (no scan of every imported module after each run) the "
               f"Compare page takes {compare_off:.2f} s and the first page {off['first_page_s']:.2f} s. ")
            + f"The first page's script alone takes {scripts['first_page_cold_s']:.2f} s in a fresh process (imports "
            "of Streamlit, pandas and Plotly, and loading the digits set for the default choice); the server answers "
            f"its health check after {m['healthy_s']:.2f} s.")
    if ctx.quick:
        notes.append(f"Quick mode: the {N_VARIANTS} rows are 5 real variants repeated under new names.")
    if scripts.get("errors"):
        notes.append(f"The Compare page raised: {scripts['errors']}")
    return section(TITLE, targets=targets, tables=[
        table("Headless Chromium (Playwright), 1400×1000 viewport; seconds",
              ["moment", "as configured", "file watcher off"], rows),
        table("The same pages' scripts alone (streamlit.testing AppTest, no server, no browser)",
              ["script", "seconds"], script_rows),
    ], notes=notes, data={"as_configured": m, "file_watcher_off": off, "scripts": scripts}, seconds=total.seconds)


if __name__ == "__main__":
    if len(sys.argv) == 3 and sys.argv[1] == "apptest":
        _apptest_main(sys.argv[2])
    else:
        sys.exit("usage: python -m benchmarks.app_render apptest STORE_ROOT")
