"""Every page loads in a real browser with no Streamlit exception box; a screenshot of each is kept.

Two passes: the empty store a new user sees, then a store holding a finished
run (made with the CLI's ``--store``) opened from History → Compare → Inspect.
Screenshots: ``test-artifacts/pages/<page>-empty.png`` and ``<page>-with-run.png``.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
from e2e_support import ROOT, TITLES, by_key, exceptions, navigate, open_page, screenshot, selectbox_value, wait_idle

pytestmark = pytest.mark.e2e


def nav_titles(page) -> list[str]:
    return [a.inner_text().strip().splitlines()[-1].strip()
            for a in page.locator('[data-testid="stSidebarNav"] a').all()]


def test_a_deep_link_on_a_fresh_server_gets_the_apps_navigation(server, page):
    """The first visitor after a restart may land on a bookmarked page (or reload one): app.py must still route.

    Streamlit runs a ``pages/`` folder's scripts directly (legacy multipage mode, app.py skipped) until some
    session has called ``st.navigation``; this must not happen to the first user.
    """
    open_page(page, server, "history")
    assert nav_titles(page) == list(TITLES.values())
    assert page.get_by_text("Pick data and a model, build variants").count() == 1  # app.py's sidebar ran


@pytest.mark.parametrize("name", ["compress", "data", "compare", "inspect", "history"])  # "/" first: see above
def test_page_loads_without_exception(name, server, page, artifacts):
    seconds = open_page(page, server, name)
    assert exceptions(page) == []
    assert nav_titles(page) == list(TITLES.values())
    (artifacts / "pages").mkdir(exist_ok=True)
    screenshot(page, artifacts / "pages" / f"{name}-empty.png")
    print(f"{name}: first draw in {seconds:.2f} s")


def test_pages_with_a_finished_run(server, page, artifacts, tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({
        "title": "Smoke run", "baseline": {"pretrained": True},
        "variants": [{"name": "float32"}, {"name": "int8", "quantization": "int8"},
                     {"name": "pruned-int8", "pruning": {"final_sparsity": 0.5, "initial_sparsity": 0.5,
                                                         "schedule": "constant"},
                      "fine_tune_epochs": 1, "quantization": "int8"}],
        "evaluation": {"latency_runs": 20},
    }))
    done = subprocess.run([sys.executable, "-m", "compression", "run", str(recipe), "--store", str(server.data)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]

    open_page(page, server, "history")
    assert "Smoke run" in selectbox_value(page, "history_run")
    screenshot(page, artifacts / "pages" / "history-with-run.png")
    by_key(page, "open_compare").get_by_role("button").click()
    page.get_by_role("heading", name="Results").wait_for()
    wait_idle(page)
    page.locator('[data-testid="stPlotlyChart"]').first.wait_for()
    assert exceptions(page) == []
    screenshot(page, artifacts / "pages" / "compare-with-run.png")
    for name in ("inspect", "data", "compress"):
        navigate(page, name)
        assert exceptions(page) == [], name
        screenshot(page, artifacts / "pages" / f"{name}-with-run.png")
