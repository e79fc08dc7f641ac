"""Lessons from the app's start in a real browser: one click each reaches a chart whose data shows the effect.

Each test opens the app at its start page (Compress), clicks one sidebar lesson button and reads the
Plotly figure the Lessons page drew (its ``data`` in the browser), then checks it against the run's
own ``.tflite`` in the server's store. The first lesson's run prepares every lesson (its own first):
the later tests reuse it, as a class asking for the next lesson does.
"""

from __future__ import annotations

import base64

import numpy as np
import pytest
from e2e_support import TITLES, by_key, exceptions, navigate, poll, wait_idle

from compression.explore.lessons import LESSONS, LESSONS_TITLE
from compression.run_folder import RunFolder
from compression.tflite.weights import tflite_weights_by_layer

pytestmark = pytest.mark.e2e

CHART = ".st-key-lesson_chart .js-plotly-plot"
LESSON_DEADLINE_S = 300  # the first lesson's worker imports TensorFlow and fine-tunes, on a shared machine
READ_FIGURE = """() => {
  const gd = document.querySelector('.st-key-lesson_chart .js-plotly-plot');
  if (!gd || !gd.data) return null;
  const plain = v => (v && v.buffer instanceof ArrayBuffer) ? Array.from(v) : v;
  return {
    data: gd.data.map(t => ({type: t.type, x: plain(t.x), y: plain(t.y), width: plain(t.width), meta: t.meta,
                             customdata: t.customdata})),
    frames: (gd._transitionData && gd._transitionData._frames || []).map(f => f.name),
    sliders: ((gd.layout.sliders || [])[0] || {steps: []}).steps.length,
  };
}"""


def _array(value) -> np.ndarray:
    """A figure array as the browser holds it: a list, or Plotly's base64 typed-array spec."""
    if isinstance(value, dict) and "bdata" in value:
        data = np.frombuffer(base64.b64decode(value["bdata"]), dtype=np.dtype(value["dtype"])).astype(float)
        shape = value.get("shape")
        if isinstance(shape, str):
            shape = [int(d) for d in shape.split(",")]
        return data.reshape(shape) if shape else data
    if isinstance(value, list) and value and isinstance(value[0], dict) and "bdata" in value[0]:
        return np.stack([_array(v) for v in value])
    return np.asarray(value, dtype=float)


def open_lesson(page, server, key: str) -> dict:
    """From the app's start: one click on the lesson's sidebar button, then the figure's data."""
    page.goto(server.url)
    page.get_by_role("heading", name=TITLES["compress"]).first.wait_for()
    wait_idle(page)
    by_key(page, f"lesson_{key}").get_by_role("button").click()  # click 1 (and the only one)
    page.get_by_role("heading", name="Lessons").first.wait_for()
    page.wait_for_selector(CHART, timeout=LESSON_DEADLINE_S * 1000)
    figure = poll(lambda: page.evaluate(READ_FIGURE), 60, "the lesson chart's figure data")
    assert not exceptions(page)
    return figure


def lesson_file(server, key: str):
    """The lesson's run folder and its file weights of the largest layer, read from the server's store."""
    runs = lesson_runs(server)
    assert len(runs) == 1, runs
    folder = RunFolder(runs[0]["dir"])
    row = folder.read_results().variant(LESSONS[key].variant.name)
    assert row is not None and row.ok
    weights = tflite_weights_by_layer(folder.tflite(row).read_bytes(), [layer.name for layer in row.layers])
    return weights["logits"]


def lesson_runs(server) -> list[dict]:
    return [r for r in server.store().list_runs() if r["title"] == LESSONS_TITLE]


def trace(figure: dict, *kinds: str) -> dict:
    return next(t for t in figure["data"] if (t.get("meta") or {}).get("kind") in kinds)


def test_show_pruning_reaches_a_zero_bar_holding_the_pruned_fraction(page, server):
    figure = open_lesson(page, server, "pruning")
    bars = trace(figure, "distinct", "binned")
    x, y = _array(bars["x"]), _array(bars["y"])
    at = int(np.argmin(np.abs(x)))
    assert abs(x[at]) <= float(np.max(_array(bars["width"]))) / 2 + 1e-12  # a bar centred on zero
    assert y[at] / bars["meta"]["total"] >= LESSONS["pruning"].sparsity - 0.005
    assert trace(figure, "baseline")["meta"]["total"] == bars["meta"]["total"]  # the baseline on the same axes
    file = lesson_file(server, "pruning")
    assert bars["meta"]["total"] == file.params
    # A second class (a new session) asking for the same lesson reuses the run.
    open_lesson(page, server, "pruning")
    assert len(lesson_runs(server)) == 1


def test_show_clustering_reaches_at_most_k_distinct_values(page, server):
    figure = open_lesson(page, server, "clustering")
    spikes = trace(figure, "distinct")
    assert 1 < len(_array(spikes["x"])) <= LESSONS["clustering"].clusters
    assert np.unique(lesson_file(server, "clustering").values).size <= LESSONS["clustering"].clusters


def test_show_quantization_reaches_int8_codes_on_the_grid_of_the_files_scale(page, server):
    figure = open_lesson(page, server, "quantization")
    codes = _array(trace(figure, "codes")["x"])
    assert np.array_equal(codes, np.round(codes)) and codes.min() >= -128 and codes.max() <= 127
    deq = trace(figure, "dequantized")
    q, scale, zp = _array(deq["customdata"]).T
    np.testing.assert_allclose(_array(deq["y"]), (q - zp) * scale, rtol=1e-9)
    file = lesson_file(server, "quantization")
    channel = deq["meta"]["channel"]
    assert deq["meta"]["scale"] == pytest.approx(float(file.scales[channel]), rel=1e-12)
    np.testing.assert_array_equal(np.sort(q), np.sort(file.channel(channel).astype(float)))


def test_show_the_schedule_scrubs_through_the_mask_updates(page, server):
    figure = open_lesson(page, server, "schedule")
    measured = trace(figure, "measured")["meta"]["sparsity"]
    assert len(figure["frames"]) == len(measured) >= 3 and figure["sliders"] == len(measured)
    assert measured[0] == 0.0 and measured[-1] == pytest.approx(LESSONS["schedule"].sparsity, abs=0.01)
    assert all(b >= a for a, b in zip(measured, measured[1:], strict=False))


def test_presentation_mode_enlarges_the_type(page, server):
    page.goto(server.url)
    page.get_by_role("heading", name=TITLES["compress"]).first.wait_for()
    wait_idle(page)
    before = page.evaluate("() => parseFloat(getComputedStyle(document.documentElement).fontSize)")
    by_key(page, "presentation").locator("label").click()
    wait_idle(page)
    size = "() => parseFloat(getComputedStyle(document.documentElement).fontSize)"
    after = poll(lambda: (v := page.evaluate(size)) > before and v, 30, "the larger font")
    assert after >= before * 1.2


# The Compare page's first data grid is the results table (st.dataframe's key names no element).
GRID_WIDTHS = """() => { const s = document.querySelector('[data-testid=stDataFrame] .dvn-scroller');
  return s ? [s.scrollWidth, s.clientWidth] : null; }"""


def test_the_results_table_fits_a_1280_px_window(page, server):
    """The lesson's run is this session's: Compare shows it; its compact table needs no sideways scrolling."""
    page.set_viewport_size({"width": 1280, "height": 800})
    open_lesson(page, server, "quantization")
    navigate(page, "compare")
    content, visible = poll(lambda: page.evaluate(GRID_WIDTHS), 60, "the results table")
    assert content <= visible + 1, (content, visible)  # sparsity, delegate and input are in view
    by_key(page, "compare_table_all").locator("label").click()  # every column: wider, scrolls sideways
    wait_idle(page)
    wide = poll(lambda: (w := page.evaluate(GRID_WIDTHS)) and w[0] > visible + 1 and w, 30,
                "the table with every column")
    assert wide[1] == visible
