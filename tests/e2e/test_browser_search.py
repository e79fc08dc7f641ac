"""Find smallest in a real browser: a short search on the default data runs from the page, its trials arrive
while it runs, and the chosen variant downloads as a valid .tflite."""

from __future__ import annotations

import pytest
from e2e_support import alerts, by_key, exceptions, open_page, poll, screenshot, wait_idle

pytestmark = pytest.mark.e2e

SEARCH_DEADLINE_S = 600  # two trials on digits; the 2-core machine is shared


def set_number(page, key: str, value: int) -> None:
    field = by_key(page, key).locator("input")
    field.fill(str(value))
    field.press("Enter")
    wait_idle(page)


def test_short_search_runs_trials_arrive_and_the_chosen_variant_downloads(server, page, artifacts, tmp_path):
    shots = artifacts / "find-smallest"
    shots.mkdir(exist_ok=True)
    store = server.store()
    open_page(page, server, "find_smallest")
    assert exceptions(page) == []
    set_number(page, "fs_trials", 2)
    page.get_by_text("More settings").click()
    set_number(page, "fs_max_epochs", 1)
    by_key(page, "fs_start").get_by_role("button").click()
    wait_idle(page)

    run = poll(lambda: next(iter(store.list_runs()), None), 60, "the search run in the store")
    assert run["job"] == "compression.explore.search:run_search"

    def first_trial_shown():  # the table is a canvas grid: its cells are not text; the best-so-far box is
        return any("Best so far: trial-000" in a for a in alerts(page)) and store.get_run(run["id"])["status"]

    status_when_first_arrived = poll(first_trial_shown, SEARCH_DEADLINE_S, "the first trial on the page")
    assert status_when_first_arrived == "running"  # it arrived live, before the search ended
    screenshot(page, shots / "running.png")
    poll(lambda: store.get_run(run["id"])["status"] == "ok", SEARCH_DEADLINE_S, "the search to finish")
    # The last live refresh hands over to a full rerun: for a moment the old and the new button can both be in the
    # DOM. Wait until the page shows the finished search (no Stop button) with exactly one download button, twice in
    # a row a second apart (a button that stays doubled fails here, with this message).
    settled = []

    def one_button_settled() -> bool:
        wait_idle(page)
        ok = (page.locator('[class*="st-key-fs_stop_"]').count() == 0
              and by_key(page, "fs_dl_chosen").get_by_role("button").count() == 1)
        settled.append(ok)
        return len(settled) >= 2 and settled[-1] and settled[-2]

    assert poll(one_button_settled, 60, "exactly one download button for the chosen variant")
    results = store.results(run["id"])
    search = results.extra["search"]
    chosen_name = search["chosen"]
    assert [t["name"] for t in search["trials"]] == ["trial-000", "trial-001"]
    assert any(f"Best so far: {chosen_name}" in a for a in alerts(page))
    assert page.locator('[data-testid="stDataFrame"]').count() >= 1
    assert exceptions(page) == []
    screenshot(page, shots / "finished.png")
    with page.expect_download() as info:
        by_key(page, "fs_dl_chosen").get_by_role("button").click()
    path = tmp_path / info.value.suggested_filename
    info.value.save_as(path)
    data = path.read_bytes()
    assert path.suffix == ".tflite" and data[4:8] == b"TFL3"
    assert path.stem == chosen_name
    assert len(data) == results.variant(chosen_name).size_bytes
