import numpy as np
import pytest

from compression import CompressionError
from compression.inputs.models import ZOO, build_model, clone, list_models, model_summary


@pytest.mark.parametrize("name", list(ZOO))
@pytest.mark.parametrize("shape", [(8, 8, 1), (40, 1), (32, 32, 3)])
def test_every_zoo_model_adapts_to_image_and_sequence_shapes(name, shape):
    model = build_model(name, shape, num_classes=7)
    assert model.input_shape[1:] == shape
    assert model.output_shape == (None, 7)
    assert model.layers[-1].name == "logits"
    out = model.predict(np.zeros((2, *shape), np.float32), verbose=0)
    assert out.shape == (2, 7)


def test_seed_cnn_matches_experiment_e_on_28x28():
    # Experiment E's base CNN on MNIST: 20 410 parameters = a 78 KB float Keras model.
    model = build_model("seed_cnn", (28, 28, 1), 10)
    assert model.count_params() == 20410
    kinds = [type(layer).__name__ for layer in model.layers[1:]]
    assert kinds == ["Conv2D", "MaxPooling2D", "Flatten", "Dense"]


def test_builders_are_seeded():
    a = build_model("mlp", (8, 8, 1), 10, seed=3).get_weights()
    b = build_model("mlp", (8, 8, 1), 10, seed=3).get_weights()
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


def test_unknown_model_is_refused():
    with pytest.raises(CompressionError, match="Unknown model 'resnet9000'"):
        build_model("resnet9000", (8, 8, 1), 10)


def test_clone_is_independent(seed_cnn):
    copy = clone(seed_cnn)
    copy.layers[-1].kernel.assign(np.zeros(copy.layers[-1].kernel.shape))
    assert np.count_nonzero(seed_cnn.get_layer("logits").kernel.numpy()) > 0


def test_summary_and_listing(seed_cnn):
    summary = model_summary(seed_cnn)
    assert summary["params"] == seed_cnn.count_params() == 1210
    assert summary["float_bytes"] == 4840
    assert [row["name"] for row in summary["layers"]][-1] == "logits"
    assert {m["name"] for m in list_models()} == set(ZOO)


def test_check_compatible_is_the_one_sentence_for_shape_and_class_mismatches():
    from types import SimpleNamespace

    from compression.inputs.models import check_compatible

    digits = SimpleNamespace(name="digits", input_shape=(8, 8, 1), num_classes=10)
    check_compatible((8, 8, 1), 10, digits)
    check_compatible((None, None, 1), 10, digits)  # any height and width
    with pytest.raises(CompressionError) as err:
        check_compatible((28, 28, 1), 10, digits)
    assert str(err.value) == "The model expects inputs of shape (28, 28, 1) but dataset 'digits' gives (8, 8, 1)."
    with pytest.raises(CompressionError, match=r"expects inputs of shape \(64,\)"):
        check_compatible([64], 10, digits)
    with pytest.raises(CompressionError) as err:
        check_compatible((8, 8, 1), 3, digits)
    assert str(err.value) == "The model has 3 outputs but dataset 'digits' has 10 classes."
