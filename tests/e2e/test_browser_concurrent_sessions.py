"""Three people at once: three browser sessions start runs together; each gets its own results, sees only them.

While the runs go, every session keeps moving between pages; how long each
page took to draw is recorded in ``test-artifacts/concurrency.json`` and
printed (no timed assertions: the machine is shared, the numbers are a
measurement, not a test outcome).
"""

from __future__ import annotations

import json
import re
import statistics
import time

import pytest
from e2e_support import by_key, exceptions, navigate, open_page, poll, selectbox_value

pytestmark = pytest.mark.e2e

SESSIONS = 3
PRESET = "fastest"  # float32, float16, dynamic, int8 and a short QAT: the cheapest preset with some training
RUNS_DEADLINE_S = 600  # three runs, one worker at a time on 2 shared cores
TOUR = ("history", "compare", "data", "inspect", "compress")
FINAL = ("ok", "failed", "cancelled", "interrupted")


def choose_preset(page, preset_title: re.Pattern) -> None:
    by_key(page, "preset").get_by_role("combobox").click()
    page.get_by_role("option", name=preset_title).click()


def started_run_id(page) -> str:
    """The id of the run this session just started, read from its live monitor's cancel button key."""
    cancel = page.locator('[class*="st-key-compress_cancel_"]').first
    cancel.wait_for()
    classes = cancel.get_attribute("class")
    return re.search(r"st-key-compress_cancel_(\S+)", classes).group(1)


def compare_options(page) -> list[str]:
    """The runs this session's Compare page offers."""
    box = by_key(page, "compare_run").get_by_role("combobox")
    box.click()
    options = [o.inner_text() for o in page.get_by_role("option").all()]
    box.press("Escape")
    return options


def test_three_sessions_run_together_and_each_sees_only_its_own(server, browser, artifacts):
    contexts = [browser.new_context(viewport={"width": 1400, "height": 1000}) for _ in range(SESSIONS)]
    pages = [c.new_page() for c in contexts]
    store = server.store()
    loads: dict[str, list[dict]] = {f"session {i + 1}": [] for i in range(SESSIONS)}
    try:
        for page in pages:
            open_page(page, server, "compress")
            choose_preset(page, re.compile(r"^Fastest"))
            # The preset's rerun fills the table; wait for it instead of reading the button mid-rerun.
            poll(lambda p=page: "5 variants" in by_key(p, "run").inner_text(), 120, "the Fastest preset's 5 variants")

        run_ids = []
        for page in pages:  # the three clicks, back to back
            by_key(page, "run").get_by_role("button").click()
        for page in pages:
            run_ids.append(started_run_id(page))
        assert len(set(run_ids)) == SESSIONS
        started = time.monotonic()

        def all_final() -> bool:
            return all(store.get_run(r)["status"] in FINAL for r in run_ids)

        # Everyone keeps using the app while the runs go; record how long each page takes to draw.
        step = 0
        while not all_final():
            if time.monotonic() - started > RUNS_DEADLINE_S:
                raise AssertionError(f"runs not finished after {RUNS_DEADLINE_S} s: "
                                     f"{[store.get_run(r)['status'] for r in run_ids]}")
            for i, page in enumerate(pages):
                name = TOUR[step % len(TOUR)]
                running = sum(store.get_run(r)["status"] == "running" for r in run_ids)
                seconds = navigate(page, name)
                assert exceptions(page) == [], (i, name)
                loads[f"session {i + 1}"].append({"page": name, "seconds": round(seconds, 3),
                                                  "runs_running": running, "kind": "sidebar"})
            step += 1
        # A fresh load (new Streamlit session) of each page while the server is still warm, for comparison.
        for name in TOUR:
            loads["session 1"].append({"page": name, "seconds": round(open_page(pages[0], server, name), 3),
                                       "runs_running": 0, "kind": "fresh load, after the runs"})

        # All finished, each with its own results.
        for run_id in run_ids:
            run = store.get_run(run_id)
            assert run["status"] == "ok", run["error"]
            results = store.results(run_id)
            assert [v.status for v in results.variants] == ["ok"] * 5
        assert len({store.get_run(r)["session"] for r in run_ids}) == SESSIONS

        # None sees another's: each session's Compare offers exactly its own run.
        for page, run_id in zip(pages[1:], run_ids[1:], strict=True):  # session 1 reloaded above: new session
            navigate(page, "compare")
            assert run_id[-6:] in selectbox_value(page, "compare_run")
            options = compare_options(page)
            assert len(options) == 1 and run_id[-6:] in options[0], options
    finally:
        summary = _summarize(loads)
        (artifacts / "concurrency.json").write_text(json.dumps({"summary": summary, "loads": loads}, indent=2))
        print(json.dumps(summary, indent=2))
        for c in contexts:
            c.close()


def _summarize(loads: dict[str, list[dict]]) -> dict:
    during = [x["seconds"] for rows in loads.values() for x in rows if x["kind"] == "sidebar"]
    busy = [x["seconds"] for rows in loads.values() for x in rows if x["kind"] == "sidebar" and x["runs_running"]]
    fresh = [x["seconds"] for rows in loads.values() for x in rows if x["kind"] != "sidebar"]

    def stats(xs):
        if not xs:
            return None
        xs = sorted(xs)
        return {"n": len(xs), "median_s": round(statistics.median(xs), 3),
                "p90_s": round(xs[min(len(xs) - 1, int(0.9 * len(xs)))], 3), "max_s": round(xs[-1], 3),
                "over_2s": sum(x > 2 for x in xs)}

    return {"page_changes_while_runs_go": stats(during), "page_changes_while_a_worker_runs": stats(busy),
            "fresh_loads_after": stats(fresh)}
