"""Hostile and broken inputs through the UI, as a user (or an attacker) with a browser gives them.

The Data & model page's uploaders get every hostile model and dataset of
``tests/hostile_files.py`` through ``set_input_files`` on the real ``<input
type=file>``. Each must be answered with the engine's sentence in an
``st.error`` box, the marker file must not exist (no code from the file ran),
and afterwards the app must still serve (a reload works) with an earlier run
still in History, byte-for-byte intact. A file over the 100 MB upload limit is
refused, a file named ``../../…`` is stored inside the upload folder, and the
builder's number widgets make absurd values impossible or say why.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest
from e2e_support import (
    ALERT,
    ROOT,
    alerts,
    by_key,
    exceptions,
    navigate,
    open_page,
    screenshot,
    selectbox_value,
    wait_idle,
)

from tests.hostile_files import MODEL_MESSAGES, NPZ_MESSAGES, run_fingerprint

pytestmark = pytest.mark.e2e

ALERT_DEADLINE_MS = 60_000


@pytest.fixture(scope="module")
def earlier_run(server, tmp_path_factory):
    """A finished run in the server's store before any hostile input arrives; yields (run id, fingerprint)."""
    recipe = tmp_path_factory.mktemp("recipe") / "earlier.json"
    recipe.write_text('{"title": "Earlier run", "baseline": {"pretrained": true}, "variants": [{"name": "float32"}], '
                      '"evaluation": {"latency_runs": 5}}')
    done = subprocess.run([sys.executable, "-m", "compression", "run", str(recipe), "--store", str(server.data)],
                          cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    (run,) = server.store().list_runs()
    return run["id"], run_fingerprint(server.data, run["id"])


def assert_still_serving(server, page, earlier_run) -> None:
    """A reload works, History lists the earlier run, and that run is untouched."""
    assert server.alive()
    open_page(page, server, "history")
    assert exceptions(page) == []
    assert "Earlier run" in selectbox_value(page, "history_run")
    run_id, fingerprint = earlier_run
    assert run_fingerprint(server.data, run_id) == fingerprint


def expect_error(page, message: str) -> str:
    """Wait for the st.error box holding ``message``; return its text."""
    box = page.locator(ALERT).filter(has_text=message)
    try:
        box.first.wait_for(timeout=ALERT_DEADLINE_MS)
    except Exception:
        raise AssertionError(f"no error box saying {message!r}; the page shows {alerts(page)}") from None
    wait_idle(page)
    return box.first.inner_text()


def uploads(server) -> list:
    folder = server.data / "uploads"
    return sorted(p for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


def open_model_uploader(server, page):
    open_page(page, server, "compress")
    navigate(page, "data")
    by_key(page, "model_source").get_by_text("Upload", exact=True).click()
    wait_idle(page)
    return by_key(page, "model_upload").locator("input[type=file]")


def open_npz_uploader(server, page):
    open_page(page, server, "compress")
    navigate(page, "data")
    by_key(page, "dataset_name").get_by_role("combobox").click()
    page.get_by_role("option", name=re.compile(r"^npz")).click()
    wait_idle(page)
    return by_key(page, "npz_upload").locator("input[type=file]")


# ---------------------------------------------------------------- models


def test_hostile_models_are_refused_with_the_engines_sentence(server, page, hostile, earlier_run, artifacts):
    shots = artifacts / "hostile"
    shots.mkdir(exist_ok=True)
    uploader = open_model_uploader(server, page)
    seen = {}
    for name, message in MODEL_MESSAGES.items():
        if name == "huge.keras":
            continue  # over the upload limit: the browser refuses it (test below)
        uploader.set_input_files(hostile.models[name])
        seen[name] = expect_error(page, message)
        assert not hostile.marker.exists(), f"code in {name} ran"
        assert exceptions(page) == []
        assert page.get_by_text(f"Using {name}").count() == 0  # not taken as the model
        screenshot(page, shots / f"model-{name}.png")
    print("\n".join(f"{k}: {v}" for k, v in seen.items()))
    assert_still_serving(server, page, earlier_run)
    assert not hostile.marker.exists()


def test_a_file_over_the_upload_limit_never_reaches_the_server(server, page, hostile, earlier_run, artifacts):
    before = uploads(server)
    uploader = open_model_uploader(server, page)
    uploader.set_input_files(hostile.oversize_model())
    refusal = by_key(page, "model_upload").get_by_text("File must be 100.0MB or smaller.")
    refusal.wait_for()
    screenshot(page, artifacts / "hostile" / "model-over-the-limit.png")
    assert uploads(server) == before
    assert_still_serving(server, page, earlier_run)


def test_a_name_with_dot_dot_is_stored_inside_the_upload_folder(server, page, hostile, earlier_run):
    uploader = open_model_uploader(server, page)
    uploader.set_input_files({"name": "../../escape.keras", "mimeType": "application/octet-stream",
                              "buffer": hostile.good_model.read_bytes()})
    page.get_by_text("Using escape.keras").wait_for()  # a good model: accepted, shown by its stored name
    wait_idle(page)
    assert exceptions(page) == []
    landed = [p for p in server.data.parent.rglob("escape.keras")]
    assert landed, "the upload was not saved"
    for path in landed:
        assert path.resolve().is_relative_to((server.data / "uploads").resolve()), path
    assert not any(".." in p.name for p in uploads(server))
    assert_still_serving(server, page, earlier_run)


# ---------------------------------------------------------------- datasets


def test_hostile_npz_files_are_refused_and_nothing_is_unpickled(server, page, hostile, earlier_run, artifacts):
    uploader = open_npz_uploader(server, page)
    seen = {}
    for name, message in NPZ_MESSAGES.items():
        uploader.set_input_files(hostile.npz[name])
        seen[name] = expect_error(page, message)
        assert not hostile.marker.exists(), f"the payload of {name} ran"
        assert exceptions(page) == []
        screenshot(page, artifacts / "hostile" / f"npz-{name}.png")
    print("\n".join(f"{k}: {v}" for k, v in seen.items()))
    assert_still_serving(server, page, earlier_run)


# ---------------------------------------------------------------- absurd numbers in the builder


def test_absurd_numbers_are_impossible_or_explained(server, page, earlier_run, artifacts):
    open_page(page, server, "compress")

    final = by_key(page, "b_prune_final").locator("input[type=range]")
    assert float(final.get_attribute("max")) < 1.0  # sparsity 1.0 cannot be chosen
    final.focus()
    final.press("End")
    wait_idle(page)
    assert float(final.input_value()) == float(final.get_attribute("max"))
    assert by_key(page, "b_prune_final").get_by_test_id("stSliderThumbValue").inner_text() == "0.98"

    page.get_by_role("tab", name="Clustering").click()
    clusters = by_key(page, "b_clusters").locator("input[type=range]")
    assert clusters.get_attribute("min") == "2"  # 0 (or 1) clusters cannot be chosen
    clusters.focus()
    clusters.press("Home")
    wait_idle(page)
    assert clusters.input_value() == "2"

    page.get_by_role("tab", name="Conversion").click()
    for key, typed, message in [
        ("b_epochs", "-3", "Please enter a value between 1 and 500."),
        ("b_epochs", "0", "Please enter a value between 1 and 500."),
        ("b_batch", "0", "Please enter a value between 1 and 4096."),
    ]:
        _type_and_expect(page, key, typed, message)
    page.get_by_role("tab", name="Evaluation").click()
    _type_and_expect(page, "e_latency_runs", "1000000000", "Please enter a value between 1 and 100000.")
    _type_and_expect(page, "e_threads", "0", "Please enter a value between 1 and 64.")
    screenshot(page, artifacts / "hostile" / "builder-absurd-numbers.png")

    navigate(page, "data")
    by_key(page, "baseline_mode").get_by_text("Train it (now, or in the Compress run)", exact=True).click()
    wait_idle(page)
    _type_and_expect(page, "baseline_epochs", "-1", "Please enter a value between 1 and 500.")
    assert exceptions(page) == []
    assert_still_serving(server, page, earlier_run)


def _type_and_expect(page, key: str, typed: str, message: str) -> None:
    """Type a value into a number input and press Enter: the widget refuses it with ``message``."""
    box = by_key(page, key)
    field = box.locator("input")
    before = field.input_value()
    field.fill(typed)
    field.press("Enter")
    wait_idle(page)
    assert "Number is outside the allowed range." in box.inner_text() and message in box.inner_text(), \
        box.inner_text()
    field.fill(before)  # put it back so the next check starts clean
    field.press("Enter")
    wait_idle(page)
