"""Helpers for the AppTest tests: build an AppTest with seeded state, check a page is clean, poll a run."""

from __future__ import annotations

import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

TIMEOUT = 180  # seconds AppTest waits for one script run (the first import of TensorFlow is slow here)
RUN_DEADLINE = 420  # seconds a whole recipe may take on the 2-core machine


def app_test(script: str, **state):
    """An AppTest for app.py or a page file, with session state seeded."""
    from streamlit.testing.v1 import AppTest

    at = AppTest.from_file(str(ROOT / script), default_timeout=TIMEOUT)
    for key, value in state.items():
        at.session_state[key] = value
    return at


def assert_clean(at) -> None:
    """No exception and no error box on the page."""
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def plotly_charts(at) -> list:
    return at.get("plotly_chart")


def wait_for_run(at, run_id: str, deadline_s: float = RUN_DEADLINE) -> dict:
    """Poll the store until it says the run finished (with a deadline), then re-run the page once to draw it.

    The page is not re-run while the run goes: nothing is asserted about those draws (each rerun replaces the
    last one's elements), and on the shared 2-core machine each rerun took CPU from the worker doing the run.
    """
    from compression.store import FINAL_STATUSES, Store

    store = Store()
    deadline = time.monotonic() + deadline_s
    while True:
        run = store.get_run(run_id)
        if run["status"] in FINAL_STATUSES:
            at.run()
            return run
        if time.monotonic() > deadline:
            raise AssertionError(f"run {run_id} still {run['status']} after {deadline_s} s: {run['progress']}")
        time.sleep(0.2)  # poll interval, not a wait for the work: the loop ends when the store says so


def figure(chart) -> dict:
    """A drawn Plotly chart's figure as plain data, typed arrays ("bdata") decoded to NumPy."""
    import base64
    import json

    import numpy as np

    def decode(value):
        if isinstance(value, dict):
            if set(value) >= {"dtype", "bdata"}:
                return np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"]))
            return {k: decode(v) for k, v in value.items()}
        if isinstance(value, list):
            return [decode(v) for v in value]
        return value

    return decode(json.loads(chart.proto.spec))
