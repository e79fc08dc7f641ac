"""The default flow through app.py: open → Run (experiment E, digits) → Compare → the int8 download runs in LiteRT."""

from __future__ import annotations

import time

import numpy as np
import pytest
from apptest_support import app_test, assert_clean, plotly_charts, wait_for_run


@pytest.fixture
def downloads(monkeypatch):
    """Every static download the app registers: {file name: bytes} (what the browser would receive)."""
    from streamlit.runtime.media_file_manager import MediaFileManager

    seen: dict[str, bytes] = {}
    original = MediaFileManager.add

    def add(self, path_or_data, mimetype, coordinates, file_name=None, is_for_static_download=False):
        if is_for_static_download and file_name:
            seen[file_name] = bytes(path_or_data)
        return original(
            self,
            path_or_data,
            mimetype,
            coordinates,
            file_name=file_name,
            is_for_static_download=is_for_static_download,
        )

    monkeypatch.setattr(MediaFileManager, "add", add)
    return seen


def test_open_run_compare_download_int8(lab, downloads):
    from ai_edge_litert.interpreter import Interpreter

    at = app_test("app.py")
    at.run()
    assert_clean(at)
    assert at.selectbox(key="preset").value == "experiment_e"  # Compress is the landing page

    started = time.monotonic()
    at.button(key="run").click().run()  # click 1
    assert not at.exception
    run_id = at.session_state["run_id"]
    run = wait_for_run(at, run_id)
    seconds = time.monotonic() - started
    assert run["status"] == "ok", run["error"]
    assert_clean(at)
    print(f"\nexperiment E on digits: Run click → full table in {seconds:.1f} s (worker: {run['duration']:.1f} s)")

    at.switch_page("pages/3_compare.py").run()  # click 2: the Compare page
    assert_clean(at)
    assert len(plotly_charts(at)) == 6  # size, latency, bubble, ratio, size bars and the board's RAM-vs-flash
    table = next(d.value for d in at.dataframe if "delta_accuracy" in d.value.columns)
    assert list(table["status"]) == ["ok"] * 6
    int8_button = at.download_button(key="dl_int8")  # click 3 downloads this
    assert int8_button.label.startswith("int8.tflite")
    data = downloads["int8.tflite"]
    interpreter = Interpreter(model_content=data)
    interpreter.allocate_tensors()
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    assert data == (run["dir"] / "int8.tflite").read_bytes()
