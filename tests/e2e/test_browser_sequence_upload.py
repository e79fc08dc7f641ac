"""A user's own recurrent model and sequence data, in a real browser.

Upload an LSTM ``.keras`` that takes ``(40, 1)`` and its ``(N, 40, 1)`` float ``.npz`` (values
beyond ±2: not images, nothing divided by 255) → the Data & model page reads them as sequences
and, because the upload is untrained, warns that the baseline is at chance before anything runs
→ Compress with the Fastest preset (float32, float16, dynamic, int8, QAT) → Run → the run ends,
float32 and dynamic are ok with accuracies, and Compare shows the table and the baseline warning.
"""

from __future__ import annotations

import re

import numpy as np
import pytest
from e2e_support import ALERT, alerts, by_key, exceptions, navigate, open_page, poll, screenshot, wait_idle
from playwright.sync_api import expect

pytestmark = pytest.mark.e2e

RUN_DEADLINE_S = 900  # five LSTM conversions and a QAT fine-tune on a shared 2-core machine
FINAL = ("ok", "failed", "cancelled", "interrupted")


@pytest.fixture(scope="module")
def lstm_files(tmp_path_factory):
    from compression import _tf

    keras = _tf.keras()
    folder = tmp_path_factory.mktemp("lstm")
    keras.utils.set_random_seed(0)
    inputs = keras.Input((40, 1))
    model = keras.Model(inputs, keras.layers.Dense(4)(keras.layers.LSTM(6)(inputs)))
    model.save(folder / "sensor_lstm.keras")
    rng = np.random.default_rng(0)
    x = rng.normal(0, 1.5, size=(240, 40, 1)).astype(np.float32)
    y = np.arange(240) % 4
    np.savez(folder / "sensors.npz", x_train=x[:160], y_train=y[:160], x_test=x[160:], y_test=y[160:])
    return folder / "sensor_lstm.keras", folder / "sensors.npz"


def test_an_lstm_and_its_sequences_run_and_a_chance_level_upload_is_warned(server, page, lstm_files, artifacts):
    shots = artifacts / "sequence-upload"
    shots.mkdir(exist_ok=True)
    model_file, npz_file = lstm_files
    open_page(page, server, "compress")
    navigate(page, "data")
    by_key(page, "dataset_name").get_by_role("combobox").click()
    page.get_by_role("option", name=re.compile(r"^npz")).click()
    wait_idle(page)
    by_key(page, "npz_upload").locator("input[type=file]").set_input_files(str(npz_file))
    page.get_by_text("Read as sequence", exact=False).first.wait_for(timeout=120_000)
    assert page.get_by_text("40×1", exact=False).count() >= 1
    by_key(page, "model_source").get_by_text("Upload", exact=True).click()
    wait_idle(page)
    by_key(page, "model_upload").locator("input[type=file]").set_input_files(str(model_file))
    wait_idle(page)
    # npz + the zoo had no weights, so the page had switched to training: the upload brings the default back to
    # its own weights (no click), which is what shows the chance warning.
    expect(by_key(page, "baseline_mode").get_by_role("radio", name="Use the uploaded weights as they are")) \
        .to_be_checked(timeout=120_000)
    warning = page.locator(ALERT).filter(has_text="about chance")
    warning.first.wait_for(timeout=180_000)
    assert "BatchNormalization" in warning.first.inner_text() and "untrained" in warning.first.inner_text()
    assert exceptions(page) == [], alerts(page)
    screenshot(page, shots / "1-data-chance-warning.png")

    navigate(page, "compress")
    by_key(page, "preset").get_by_role("combobox").click()
    page.get_by_role("option", name=re.compile(r"Fastest")).click()
    wait_idle(page)
    store = server.store()
    before = {r["id"] for r in store.list_runs()}
    by_key(page, "run").get_by_role("button").click()
    run = poll(lambda: next((r for r in store.list_runs() if r["id"] not in before), None), 120, "the run")
    finished = poll(lambda: (r := store.get_run(run["id"]))["status"] in FINAL and r, RUN_DEADLINE_S,
                    "the LSTM run to finish")
    results = store.results(run["id"])
    status = {v.name: v.status for v in results.variants}
    assert finished["status"] == "ok", (finished["error"], status)
    assert status["float32"] == "ok" and status["dynamic"] == "ok", status
    assert tuple(results.dataset.input_shape) == (40, 1) and results.dataset.kind == "sequence"
    assert results.baseline.flags[0].code == "baseline_at_chance"

    navigate(page, "compare")
    page.locator(ALERT).filter(has_text="Baseline: The baseline's accuracy").first.wait_for(timeout=120_000)
    assert exceptions(page) == []
    screenshot(page, shots / "2-compare.png")
