"""The Data & model page: previews, model summary, uploads that fail with a sentence, and "train now"."""

from __future__ import annotations

import io

import numpy as np
from apptest_support import app_test, assert_clean, plotly_charts, wait_for_run


def data_page(lab, **state):
    return app_test("pages/1_data_model.py", **state).run()


def test_defaults_show_digits_the_pretrained_seed_cnn_and_its_summary(lab):
    at = data_page(lab)
    assert_clean(at)
    assert at.selectbox(key="dataset_name").value == "digits"
    assert at.radio(key="model_source").value == "Pretrained sample"
    assert at.selectbox(key="model_name").value == "seed_cnn"
    assert at.radio(key="baseline_mode").value == "pretrained"
    assert len(plotly_charts(at)) == 2  # sample grid and class counts
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["training samples"] == "1,437" and metrics["classes"] == "10"
    assert metrics["parameters"] == "1,210"
    (layers,) = [d.value for d in at.dataframe if "output_shape" in d.value.columns]
    assert list(layers["name"]) == ["input", "conv", "pool", "flatten", "logits"]


def test_sequences_preview_as_lines(lab):
    at = data_page(lab)
    at.selectbox(key="dataset_name").set_value("mnist1d").run()
    assert not at.exception
    preview = plotly_charts(at)[0].proto.spec
    assert '"type":"scatter"' in preview.replace(" ", "")


def test_a_bad_npz_shows_the_engine_sentence_and_the_app_keeps_working(lab):
    at = data_page(lab)
    at.selectbox(key="dataset_name").set_value("npz").run()
    assert not at.exception
    at.file_uploader(key="npz_upload").upload("data.npz", b"not a zip at all", "application/octet-stream")
    at.run()
    assert not at.exception
    assert any("is not an .npz archive" in e.value for e in at.error)
    assert at.session_state["npz_path"] is None
    # A valid one is accepted and previewed.
    rng = np.random.default_rng(0)
    buffer = io.BytesIO()
    np.savez(
        buffer,
        x_train=rng.random((40, 6, 6)),
        y_train=np.arange(40) % 3,
        x_test=rng.random((12, 6, 6)),
        y_test=np.arange(12) % 3,
    )
    at.file_uploader(key="npz_upload").clear()
    at.run()
    at.file_uploader(key="npz_upload").upload("../../evil name.npz", buffer.getvalue())
    at.run()
    assert not at.exception
    path = at.session_state["npz_path"]
    assert path and path.startswith(str(lab)) and path.endswith("evil_name.npz")
    assert {m.label: m.value for m in at.metric}["classes"] == "3"


def test_a_refused_model_upload_shows_the_sentence(lab):
    at = data_page(lab)
    at.radio(key="model_source").set_value("Upload").run()
    at.file_uploader(key="model_upload").upload("model.keras", b"PK\x03\x04 definitely not a model")
    at.run()
    assert not at.exception
    assert at.error and "model.keras" in at.error[0].value
    assert at.session_state["model_upload_path"] is None


def test_an_upload_that_does_not_fit_the_data_shows_the_engine_sentence(lab, tmp_path):
    from compression import _tf

    keras = _tf.keras()
    inputs = keras.Input((5,))
    keras.Model(inputs, keras.layers.Dense(2)(inputs)).save(tmp_path / "small.keras")
    at = data_page(lab)
    at.radio(key="model_source").set_value("Upload").run()
    at.file_uploader(key="model_upload").upload("small.keras", (tmp_path / "small.keras").read_bytes())
    at.run()
    assert not at.exception
    assert [e.value for e in at.error] == [
        "The model expects inputs of shape (5,) but dataset 'digits' gives (8, 8, 1)."
    ]


def test_train_now_runs_in_the_runner_with_a_live_curve(lab):
    at = data_page(lab, model_source="Model zoo", model_name="seed_cnn", baseline_mode="train", baseline_epochs=3)
    assert_clean(at)
    assert at.button(key="train_now") is not None
    at.button(key="train_now").click().run()
    assert not at.exception
    run_id = at.session_state["train_run_id"]
    assert run_id
    run = wait_for_run(at, run_id)
    assert run["status"] == "ok", run["error"]
    assert_clean(at)
    curve = [c for c in plotly_charts(at) if "Live training" in c.proto.spec]
    assert curve and '"name":"baseline"' in curve[0].proto.spec.replace(" ", "")
    assert any("Baseline trained" in s.value for s in at.success)
    assert "baseline trained on the Data & model page" in at.markdown[-1].value


def test_without_pretrained_weights_only_training_is_offered(lab):
    at = data_page(lab, model_source="Model zoo", model_name="qat_cnn", baseline_mode="pretrained")
    assert_clean(at)
    radio = at.radio(key="baseline_mode")
    assert radio.options == ["Train it (now, or in the Compress run)"] and radio.value == "train"
    assert at.button(key="train_now").label == "Train now"  # the button, no longer also a radio label


def test_npz_without_an_upload_says_upload_above_and_the_summary_names_no_none(lab):
    at = data_page(lab)
    at.selectbox(key="dataset_name").set_value("npz").run()
    assert any(i.value.startswith("Upload a .npz file above") for i in at.info)
    assert not any("Data & model page" in i.value for i in at.info)  # this IS the Data & model page
    summary = next(m.value for m in at.markdown if m.value.startswith("**The Compress page will use:**"))
    assert "None" not in summary and "no dataset yet" in summary


def test_an_uploaded_model_defaults_to_its_own_weights_after_a_weightless_zoo_model(lab, tmp_path):
    from compression import _tf

    keras = _tf.keras()
    inputs = keras.Input((8, 8, 1))
    keras.Model(inputs, keras.layers.Dense(10)(keras.layers.Flatten()(inputs))).save(tmp_path / "mine.keras")
    at = data_page(lab, model_source="Model zoo", model_name="qat_cnn", baseline_mode="pretrained")
    assert at.radio(key="baseline_mode").value == "train"  # the zoo model has no weights: training only
    at.radio(key="model_source").set_value("Upload").run()
    assert at.radio(key="baseline_mode").value == "train"  # nothing uploaded yet
    at.file_uploader(key="model_upload").upload("mine.keras", (tmp_path / "mine.keras").read_bytes())
    at.run()
    assert_clean(at)
    radio = at.radio(key="baseline_mode")
    assert radio.value == "pretrained"
    assert radio.options == ["Use the uploaded weights as they are", "Train it (now, or in the Compress run)"]
    assert "baseline: uploaded weights as they are" in at.markdown[-1].value
    # Back to the zoo and to the upload again: the upload's weights are the default again.
    at.radio(key="model_source").set_value("Model zoo").run()
    assert at.radio(key="baseline_mode").value == "train"
    at.radio(key="model_source").set_value("Upload").run()
    assert at.radio(key="baseline_mode").value == "pretrained"


def test_an_npz_preview_follows_what_the_arrays_are(lab):
    from apptest_support import figure

    rng = np.random.default_rng(0)

    def upload(at, name, x, y):
        buffer = io.BytesIO()
        np.savez(buffer, x_train=x[:30], y_train=y[:30], x_test=x[30:], y_test=y[30:])
        at.file_uploader(key="npz_upload").upload(name, buffer.getvalue())
        at.run()
        assert not at.exception
        return figure(next(c for c in plotly_charts(at) if c.key == "dataset_preview"))

    at = data_page(lab)
    at.selectbox(key="dataset_name").set_value("npz").run()
    y = np.arange(40) % 2
    sensors = upload(at, "sensors.npz", rng.normal(0, 2, size=(40, 25, 3)).astype(np.float32), y)
    assert {t["type"] for t in sensors["data"]} == {"scatter"}
    assert len(sensors["data"]) == 2 * 2 * 3  # classes × samples × channels, drawn as lines
    assert [a["text"] for a in sensors["layout"]["annotations"]] == ["channel 0", "channel 1", "channel 2"]
    at.file_uploader(key="npz_upload").clear()
    at.run()
    tokens = upload(at, "tokens.npz", rng.integers(1, 300, size=(40, 30)), y)
    assert [t["type"] for t in tokens["data"]] == ["table"]
