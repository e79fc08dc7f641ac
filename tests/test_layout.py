"""The model decides the layout: sequences stay sequences, token ids stay integers, 8-bit images alone are scaled."""

from __future__ import annotations

import numpy as np
import pytest

from compression.errors import CompressionError
from compression.inputs.layout import fit_to_model, infer_layout
from compression.inputs.user_npz import load_npz

RNG = np.random.default_rng(0)


def save_npz(path, x_train, x_test, classes=3):
    y = np.arange(len(x_train)) % classes
    np.savez(path, x_train=x_train, y_train=y, x_test=x_test, y_test=np.arange(len(x_test)) % classes)
    return path


@pytest.mark.parametrize(("shape", "dtype", "layout"), [
    ((5, 40), np.float32, "sequence"), ((5, 40, 1), np.float32, "sequence"), ((5, 40, 3), np.float32, "sequence"),
    ((5, 128, 9), np.float64, "sequence"), ((5, 28, 28), np.float32, "image"), ((5, 28, 28), np.uint8, "image"),
    ((5, 8, 8, 1), np.float32, "image"), ((5, 50), np.int64, "tokens"), ((5, 50), np.int32, "tokens"),
])
def test_infer_layout(shape, dtype, layout):
    assert infer_layout(np.zeros(shape, dtype)) == layout


def test_a_float_sequence_npz_keeps_its_shape_and_values(tmp_path):
    x = RNG.normal(0, 1.2, size=(30, 40, 1)).astype(np.float32)
    x[0, 0, 0] = 2.3
    ds = load_npz(save_npz(tmp_path / "seq.npz", x, x[:9]))
    assert ds.kind == "sequence" and ds.input_shape == (40, 1)
    np.testing.assert_array_equal(ds.x_train, x)  # not divided by 255, no channel appended
    assert any("sequence" in n for n in ds.notes)


def test_token_ids_stay_integers_and_unscaled(tmp_path):
    x = RNG.integers(0, 1000, size=(30, 50))
    ds = load_npz(save_npz(tmp_path / "tok.npz", x, x[:9]))
    assert ds.kind == "tokens" and ds.input_shape == (50,) and ds.x_train.dtype == np.int32
    np.testing.assert_array_equal(ds.x_train, x)


def test_only_8bit_images_are_divided_by_255(tmp_path):
    x8 = RNG.integers(0, 256, size=(30, 12, 12), dtype=np.uint8)
    ds = load_npz(save_npz(tmp_path / "u8.npz", x8, x8[:9]))
    assert ds.kind == "image" and ds.input_shape == (12, 12, 1)
    assert ds.x_train.max() <= 1.0 and any("255" in n for n in ds.notes) and any("channel" in n for n in ds.notes)
    xf = RNG.normal(0, 3, size=(30, 12, 12, 3)).astype(np.float32)  # standardised float images: kept
    ds = load_npz(save_npz(tmp_path / "f.npz", xf, xf[:9]))
    np.testing.assert_array_equal(ds.x_train, xf)


def test_the_user_can_correct_the_layout(tmp_path):
    x = RNG.integers(0, 9, size=(30, 40)).astype(np.int64)
    ds = load_npz(save_npz(tmp_path / "s.npz", x, x[:9]), layout="sequence")
    assert ds.kind == "sequence" and ds.input_shape == (40, 1) and ds.x_train.dtype == np.float32


def test_fit_to_model_adds_or_drops_a_size_one_axis_and_casts_ids(tmp_path):
    x = RNG.normal(size=(30, 40, 1)).astype(np.float32)
    ds = load_npz(save_npz(tmp_path / "seq.npz", x, x[:9]))
    flat = fit_to_model(ds, (40,), "float32")
    assert flat.input_shape == (40,) and "dropped the size-1 last axis" in flat.notes[-1]
    assert fit_to_model(ds, (None, 1), "float32") is ds  # already fits

    ids = RNG.integers(0, 100, size=(30, 20))
    tokens = load_npz(save_npz(tmp_path / "tok.npz", ids, ids[:9]))
    as_float = fit_to_model(tokens, (20,), "float32")
    assert as_float.x_train.dtype == np.float32 and "int8 and int16x8 will quantize the ids" in as_float.notes[-1]
    ids_as_float = load_npz(save_npz(tmp_path / "idf.npz", ids.astype(np.float32), ids[:9].astype(np.float32)),
                            layout="sequence")
    back = fit_to_model(ids_as_float, (20,), "int32")
    assert back.kind == "tokens" and back.x_train.dtype == np.int32 and back.input_shape == (20,)
    with pytest.raises(CompressionError, match="takes integer inputs"):
        fit_to_model(load_npz(save_npz(tmp_path / "fr.npz", x[..., 0], x[:9, :, 0])), (40,), "int32")


def test_the_mismatch_message_says_what_was_done_and_what_to_change(tmp_path):
    from compression.inputs.models import check_compatible

    x = RNG.normal(size=(30, 40)).astype(np.float32)
    ds = load_npz(save_npz(tmp_path / "seq.npz", x, x[:9]))
    with pytest.raises(CompressionError) as caught:
        check_compatible((8, 8, 1), 3, ds)
    message = str(caught.value)
    assert "gives (40, 1) (read as sequences; added a feature axis of size 1: (40,) became (40, 1))" in message
    assert "save the arrays as (N, 8, 8, 1) or change the model's Input shape" in message


def test_a_recipe_runs_an_lstm_on_its_sequence_npz_and_an_embedding_model_keeps_integer_ids(tmp_path):
    from compression import _tf
    from compression.config import Recipe
    from compression.run.recipe import run_recipe
    from compression.run_folder import RunFolder

    keras = _tf.keras()
    x = RNG.normal(size=(60, 40, 1)).astype(np.float32)
    inputs = keras.Input((40, 1))
    keras.Model(inputs, keras.layers.Dense(3)(keras.layers.LSTM(4)(inputs))).save(tmp_path / "lstm.keras")
    ids = RNG.integers(0, 50, size=(60, 12))
    inputs = keras.Input((12,), dtype="int32")
    pooled = keras.layers.GlobalAveragePooling1D()(keras.layers.Embedding(50, 4)(inputs))
    keras.Model(inputs, keras.layers.Dense(3)(pooled)).save(tmp_path / "emb.keras")
    cases = [("lstm", save_npz(tmp_path / "seq.npz", x, x[:20]), ["float32", "dynamic"]),
             ("emb", save_npz(tmp_path / "tok.npz", ids, ids[:20]), ["float32", "int8"])]
    for model, data, modes in cases:
        recipe = Recipe.from_dict({
            "dataset": {"name": "npz", "path": str(data)}, "model": {"path": str(tmp_path / f"{model}.keras")},
            "baseline": {"epochs": 0}, "evaluation": {"latency_runs": 3, "throughput_batch": 8},
            "variants": [{"name": m, "quantization": m, "representative_samples": 10} for m in modes]})
        run_recipe(recipe, tmp_path / model)
        results = RunFolder(tmp_path / model).read_results()
        assert [v.status.value for v in results.variants] == ["ok", "ok"], [v.error for v in results.variants]
        if model == "emb":
            assert results.dataset.kind == "tokens" and results.variants[1].input_dtype == "int32"
        else:
            assert tuple(results.dataset.input_shape) == (40, 1)
