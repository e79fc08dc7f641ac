"""Fits on my board, in a real browser: Compare shows the fit column and the RAM-vs-flash chart with a board box.

The default run (the experiment E preset on digits, the app's default recipe) is made with the CLI's
``--store`` into the live server's store, opened from History; then the Compare page's board section is
read: the fit table's cells and the chart's figure data (the budget box's corners are the board's RAM
and flash, the points the variants' measured arena and flash from results.json). Switching the board
to a custom one too small for the int8 model turns its cell into "does not fit" and moves the box.
"""

from __future__ import annotations

import subprocess
import sys

import pytest
from e2e_support import ROOT, by_key, exceptions, open_page, poll, screenshot, wait_idle

from compression.measure.boards import BOARDS
from compression.run_folder import RunFolder

pytestmark = pytest.mark.e2e

READ_BOARD_CHART = """() => {
  const gd = document.querySelector('.st-key-chart_board .js-plotly-plot');
  if (!gd || !gd.data) return null;
  const plain = v => (v && v.buffer instanceof ArrayBuffer) ? Array.from(v) : v;
  return {title: (gd.layout.title || {}).text,
          data: gd.data.map(t => ({name: t.name, fill: t.fill, x: plain(t.x), y: plain(t.y), text: plain(t.text)}))};
}"""


def fit_cells(page) -> str:
    """The fit table's cells, one per line (the data grid draws on a canvas; its cells' accessible copy is read)."""
    section = by_key(page, "compare_fit")
    section.wait_for()
    return "\n".join(section.locator('[role="gridcell"]').all_text_contents())


def fit_summary(page) -> str:
    return by_key(page, "compare_fit").locator('[data-testid="stMarkdownContainer"]').first.inner_text()


def test_compare_shows_the_fit_column_and_the_board_box_for_the_default_run(server, page, artifacts):
    done = subprocess.run([sys.executable, "-m", "compression", "run", "experiment_e", "--store", str(server.data)],
                          cwd=ROOT, capture_output=True, text=True, timeout=900)
    assert done.returncode == 0, done.stderr[-3000:]
    store = server.store()
    run = store.list_runs()[0]
    results = RunFolder(store.run_dir(run["id"])).read_results()
    tflm = {v.name: v.tflm for v in results.ok_variants}
    assert all(t is not None for t in tflm.values())
    measured = {name: t for name, t in tflm.items() if t.runnable}
    refused = sorted(name for name, t in tflm.items() if t.runnable is False)
    assert "int8" in measured and refused == ["pruned-dynamic"]  # hybrid dynamic-range: TFLM has no kernels

    open_page(page, server, "history")
    by_key(page, "open_compare").get_by_role("button").click()
    page.get_by_role("heading", name="Fits on my board").wait_for()
    wait_idle(page)
    assert exceptions(page) == []

    # The chart: a box at the board's budget, one point per variant at its measured (flash, arena).
    nano = BOARDS["nano33"]
    figure = poll(lambda: page.evaluate(READ_BOARD_CHART), 60, "the RAM-vs-flash chart's data")
    assert nano.name in figure["title"]
    box = next(t for t in figure["data"] if t["fill"] == "toself")
    assert max(box["x"]) == nano.flash_bytes and max(box["y"]) == nano.ram_bytes
    points = {name: (x, y) for t in figure["data"] if t["fill"] != "toself"
              for name, x, y in zip(t["text"], t["x"], t["y"], strict=True)}
    assert points == {name: (t.flash_bytes, t.arena_bytes) for name, t in measured.items()}

    # The fit column: every variant fits the Nano 33 (KB-sized models), with its margin.
    cells = poll(lambda: (text := fit_cells(page)) and "fits (RAM +" in text and text, 60, "the fit column")
    assert cells.count("fits (RAM +") == len(measured)
    assert cells.count("cannot run under TFLM") == len(refused)
    assert f"{len(measured)} of {len(tflm)} finished variants fit" in fit_summary(page)
    screenshot(page, artifacts / "board-fit-nano33.png")

    # A custom board smaller than the int8 arena: that variant no longer fits, and the box moves.
    int8 = measured["int8"]
    box_input = by_key(page, "compare_board").get_by_role("combobox")
    box_input.click()
    box_input.fill("custom")  # the select filters its options by what is typed (the list is virtualised)
    page.get_by_role("option", name="custom (your numbers)").click()
    wait_idle(page)
    ram_input = by_key(page, "compare_ram_kb").get_by_role("spinbutton")
    typed = f"{(int8.arena_bytes - 512) / 1024:.2f}"
    ram_input.fill(typed)
    ram_input.press("Enter")
    wait_idle(page)

    ram_bytes = round(float(typed) * 1024)
    assert ram_bytes < int8.arena_bytes

    def custom_box():
        fig = page.evaluate(READ_BOARD_CHART)
        if not fig or "custom" not in (fig["title"] or ""):
            return None
        box = next(t for t in fig["data"] if t["fill"] == "toself")
        return box if max(box["y"]) == ram_bytes else None

    box = poll(custom_box, 60, f"the chart's box redrawn at the custom board's {ram_bytes} B of RAM")
    assert max(box["x"]) == 1024 * 1024  # the custom board's default flash, 1024 KB
    cells = poll(lambda: (text := fit_cells(page)) and "does not fit" in text and text, 60, "a 'does not fit' cell")
    assert "RAM" in cells and "over" in cells
    assert exceptions(page) == []
    screenshot(page, artifacts / "board-fit-custom.png")
