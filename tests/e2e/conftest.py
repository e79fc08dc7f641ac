"""Real-browser fixtures: a live ``streamlit run app.py`` per test module, Debian's chromium, hostile files.

* ``server`` (module scope) starts ``python3 -m streamlit run app.py`` on a free
  localhost port with ``COMPRESSION_LAB_DATA`` in a temporary folder, waits for
  ``/_stcore/health`` with a deadline, and on teardown kills its process group
  and the worker processes its runs started (workers live in their own
  sessions on purpose, so that runs survive the page).
* ``browser`` (session scope) is ``/usr/bin/chromium`` driven by Playwright
  (``playwright install`` is never used: the browser comes from Debian).
* ``page`` is a fresh browser context + page per test.
* ``hostile`` (session scope, in ``tests/conftest.py``) is the hostile models
  and datasets of ``tests/hostile_files.py``.

Every test here is marked ``e2e``: ``python -m pytest -m e2e`` runs only them.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest
from e2e_support import PAGE_DEADLINE_MS, PAGES, ROOT

if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))  # `tests.hostile_files` and `compression` under a bare `pytest` too
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
SERVER_DEADLINE_S = 90  # streamlit starts in a few seconds; the machine is shared and slow at times

# ---------------------------------------------------------------- the server


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Server:
    url: str
    data: Path
    process: subprocess.Popen
    log: Path

    def store(self):
        from compression.store import Store

        return Store(self.data)

    def page_url(self, page: str) -> str:
        return f"{self.url}/{PAGES[page]}"

    def alive(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False


def _wait_healthy(server: Server) -> None:
    deadline = time.monotonic() + SERVER_DEADLINE_S
    while not server.alive():
        if server.process.poll() is not None:
            raise RuntimeError(f"streamlit exited ({server.process.returncode}):\n{server.log.read_text()[-3000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"streamlit not healthy after {SERVER_DEADLINE_S} s:\n{server.log.read_text()[-3000:]}")
        time.sleep(0.2)


def _kill_group(pid: int, sig: int) -> None:
    try:
        os.killpg(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _our_worker(pid: int, data: Path) -> bool:
    """Is ``pid`` a compression worker of this server's store (not a recycled pid)?"""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return False
    return b"compression.run.worker" in cmdline and str(data).encode() in cmdline


def _stop(server: Server) -> None:
    _kill_group(server.process.pid, signal.SIGTERM)
    try:
        server.process.wait(timeout=15)
    except subprocess.TimeoutExpired:
        _kill_group(server.process.pid, signal.SIGKILL)
        server.process.wait(timeout=15)
    for run in server.store().list_runs():
        if run["pid"] and _our_worker(run["pid"], server.data):
            _kill_group(run["pid"], signal.SIGKILL)  # each worker leads its own session


def start_server(data: Path, log: Path) -> Server:
    port = free_port()
    env = {**os.environ, "COMPRESSION_LAB_DATA": str(data), "PYTHONUNBUFFERED": "1"}
    with open(log, "wb") as out:
        process = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true",
             "--server.port", str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"],
            cwd=ROOT, env=env, stdout=out, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    server = Server(url=f"http://127.0.0.1:{port}", data=data, process=process, log=log)
    try:
        _wait_healthy(server)
    except BaseException:
        _stop(server)
        raise
    return server


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    """One live app per test module, on its own empty store."""
    folder = tmp_path_factory.mktemp("e2e")
    s = start_server(folder / "lab", folder / "streamlit.log")
    yield s
    _stop(s)


# ---------------------------------------------------------------- the browser


@pytest.fixture(scope="session")
def browser():
    if not CHROMIUM.exists():
        pytest.fail("Debian's chromium is missing: `make browser` (apt-get install -y chromium) installs it.")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        yield b
        b.close()


@pytest.fixture
def context(browser):
    ctx = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    ctx.set_default_timeout(PAGE_DEADLINE_MS)
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, request):
    p = context.new_page()
    yield p
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed and not p.is_closed():
        folder = ARTIFACTS / "failures"
        folder.mkdir(parents=True, exist_ok=True)
        try:
            p.screenshot(path=str(folder / f"{request.node.name}.png"), full_page=True)
        except Exception as exc:  # noqa: BLE001 - a failed screenshot must not hide the test's failure
            print(f"no failure screenshot: {exc}")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
