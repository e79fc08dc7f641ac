"""The Find smallest page: controls explained, a short search run through the store + runner, Stop keeps trials."""

from __future__ import annotations

import json
import time

from apptest_support import RUN_DEADLINE, app_test, assert_clean, figure, plotly_charts, wait_for_run

PAGE = "pages/6_find_smallest.py"
QUICK = {"max_train": 300, "fs_max_epochs": 1, "fs_minutes": 5}


def test_every_control_is_explained(lab):
    at = app_test(PAGE)
    at.run()
    assert_clean(at)
    assert at.slider(key="fs_budget").value == 1.0
    for widget in (at.slider(key="fs_budget"), at.checkbox(key="fs_relative"), at.selectbox(key="fs_board"),
                   at.radio(key="fs_objective"), at.number_input(key="fs_minutes"),
                   at.number_input(key="fs_trials"), at.number_input(key="fs_max_epochs"),
                   at.number_input(key="fs_seed"), at.button(key="fs_start")):
        assert widget.help, widget.key
    assert any(o.startswith("Arduino Nano 33 BLE Sense (256.0 KB RAM") for o in at.selectbox(key="fs_board").options)
    assert len(at.caption) >= 8  # a one-line caption under each control
    assert "Start search" in at.info[0].value


def test_a_short_search_runs_from_the_page_and_the_chosen_variant_downloads(lab):
    from compression.store import Store

    at = app_test(PAGE, **QUICK, fs_trials=2)
    at.run()
    at.button(key="fs_start").click().run()
    assert_clean(at)
    run_id = at.session_state["search_run_id"]
    store = Store()
    assert store.get_run(run_id)["job"] == "compression.explore.search:run_search"
    assert json.loads((store.run_dir(run_id) / "search.json").read_text())["trials"] == 2
    run = wait_for_run(at, run_id)
    assert run["status"] == "ok", run["error"]
    assert_clean(at)
    trials = next(d.value for d in at.dataframe if "within_budget" in d.value.columns)
    assert list(trials["name"]) == ["trial-000", "trial-001"]
    assert list(trials["chosen"]).count("★") == 1
    assert trials["settings"].iloc[0] == "int8"  # what each trial tried, in words (the int8 anchor first)
    assert "prune " in trials["settings"].iloc[1] and "epochs" in trials["settings"].iloc[1]
    assert at.success and "Best so far" in at.success[0].value
    titles = [figure(c)["layout"]["title"]["text"] for c in plotly_charts(at)]
    assert any(t.startswith("Search trials") for t in titles) and any(t.startswith("Search history") for t in titles)
    assert any(t.startswith("Accuracy drop when one layer") for t in titles)  # the sensitivity prior
    keys = {b.key for b in at.download_button}
    assert {"fs_dl_chosen", "fs_dl_recipe", "fs_dl_trials"} <= keys


def test_stop_keeps_the_finished_trials(lab):
    from compression.explore.search_results import read_search
    from compression.store import Store

    at = app_test(PAGE, **QUICK, fs_trials=0)
    at.run()
    at.button(key="fs_start").click().run()
    run_id = at.session_state["search_run_id"]
    store = Store()
    deadline = time.monotonic() + RUN_DEADLINE
    while not (read_search(store.results(run_id) or {}) or None) or not read_search(store.results(run_id)).trials:
        assert time.monotonic() < deadline, store.get_run(run_id)
        time.sleep(0.5)  # poll interval: the loop ends when the first trial is stored
    at.run()
    at.button(key=f"fs_stop_{run_id}").click().run()
    run = wait_for_run(at, run_id)
    assert run["status"] == "cancelled"
    result = read_search(store.results(run_id))
    assert result.stopped == "cancelled" and result.trials[0].state.value == "ok"
    assert not at.exception
    assert any("Cancelled" in w.value for w in at.warning)
    assert at.success and result.chosen in at.success[0].value  # the best so far is kept and shown


def test_sensitivity_only_shows_the_heatmap_and_ranking(lab):
    at = app_test(PAGE, max_train=300)
    at.run()
    at.button(key="fs_sensitivity").click().run()
    run_id = at.session_state["search_run_id"]
    run = wait_for_run(at, run_id)
    assert run["status"] == "ok", run["error"]
    assert_clean(at)
    titles = [figure(c)["layout"]["title"]["text"] for c in plotly_charts(at)]
    assert titles == ["Accuracy drop when one layer alone is compressed (points, no fine-tune)",
                      "Layers ranked by sensitivity (mean drop over the tested settings)"]
    assert any(b.key == f"fs_dl_sens_{run_id}" for b in at.download_button)
