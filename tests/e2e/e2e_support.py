"""Playwright helpers for the Streamlit app: wait for a script run to end, navigate, look for errors, screenshot.

Waiting is always on a condition with a deadline (Playwright's auto-waiting or
``poll``), never a bare sleep.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import TypeVar

ROOT = Path(__file__).resolve().parents[2]  # the repository

PAGE_DEADLINE_MS = 120_000  # one script run may import TensorFlow (~10 s alone, more under load)
# URL paths st.navigation gives the pages (file names without their number prefix); Compress is the default.
PAGES = {"data": "data_model", "compress": "", "compare": "compare", "find_smallest": "find_smallest",
         "inspect": "inspect", "history": "history"}
APP_IDLE = '[data-testid="stApp"][data-test-script-state="notRunning"]'
EXCEPTION = '[data-testid="stException"]'
ALERT = '[data-testid="stAlert"]'
TITLES = {"data": "Data & model", "compress": "Compress", "compare": "Compare", "find_smallest": "Find smallest",
          "inspect": "Inspect", "history": "History", "lessons": "Lessons"}  # the sidebar's order (app.py)

T = TypeVar("T")


def wait_idle(page, timeout_ms: int = PAGE_DEADLINE_MS) -> None:
    """Wait until no script run is in progress and every lazily loaded element has replaced its skeleton."""
    page.wait_for_selector(APP_IDLE, timeout=timeout_ms)
    page.wait_for_function("() => !document.querySelector('[data-testid=\"stSkeleton\"]')", timeout=timeout_ms)


def open_page(page, server, name: str) -> float:
    """Load a page by URL (a new Streamlit session); return the seconds until its script run ended."""
    started = time.perf_counter()
    page.goto(server.page_url(name))
    page.get_by_role("heading", name=TITLES[name]).first.wait_for()
    wait_idle(page)
    return time.perf_counter() - started


def navigate(page, name: str) -> float:
    """Go to a page through the sidebar (same session, like a user); return the seconds it took to draw."""
    started = time.perf_counter()
    page.locator(f'[data-testid="stSidebarNav"] a[href$="/{PAGES[name]}"]').click()
    page.get_by_role("heading", name=TITLES[name]).first.wait_for()
    wait_idle(page)
    return time.perf_counter() - started


def exceptions(page) -> list[str]:
    """Text of every Streamlit exception box on the page."""
    return [e.inner_text() for e in page.locator(EXCEPTION).all()]


def alerts(page) -> list[str]:
    """Text of every st.error / st.warning / st.info / st.success box (empty for one in a closed expander)."""
    return [b.inner_text() for b in page.locator(ALERT).all()]


def by_key(page, key: str):
    """The element a widget with ``key=`` draws (Streamlit gives its container the class ``st-key-<key>``).

    Keys are the pages' stable names for their widgets; labels and icons change.
    """
    return page.locator(f".st-key-{key}")


def selectbox_value(page, key: str) -> str:
    """The shown value of the select box with ``key``."""
    return by_key(page, key).get_by_role("combobox").input_value()


def screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to its height first."""
    size = page.viewport_size
    height = page.evaluate(
        "() => Math.max(...['stMain', 'stMainBlockContainer', 'stAppViewContainer'].map(t => "
        "(document.querySelector(`[data-testid=${t}]`) || {scrollHeight: 0}).scrollHeight))"
    )
    page.set_viewport_size({"width": size["width"], "height": max(size["height"], min(int(height) + 120, 12000))})
    try:
        wait_idle(page)
        page.screenshot(path=str(path), full_page=True)
    finally:
        page.set_viewport_size(size)


def poll(check: Callable[[], T], deadline_s: float, what: str, every_s: float = 1.0) -> T:
    """Call ``check`` until it returns something truthy, or fail after ``deadline_s`` saying ``what``."""
    end = time.monotonic() + deadline_s
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > end:
            raise AssertionError(f"gave up after {deadline_s:.0f} s waiting for {what}")
        time.sleep(every_s)  # poll interval; the loop ends on the condition, not the clock
