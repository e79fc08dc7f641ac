"""No silent wrong results: near-chance and one-class predictions are flagged, agreement of constants too."""

from __future__ import annotations

import json

import numpy as np
import pytest

from compression.config import VariantSpec
from compression.errors import CompressionError
from compression.measure.litert import baseline_flags, prediction_flags
from compression.results import VariantResult

LABELS = np.repeat(np.arange(10), 20)


def codes(flags):
    return [f["code"] for f in flags]


def test_a_good_classifier_has_no_flags():
    predictions = LABELS.copy()
    predictions[::10] = (predictions[::10] + 1) % 10
    assert prediction_flags(predictions, LABELS, reference=LABELS) == []
    assert baseline_flags(LABELS, LABELS) == []


def test_a_constant_variant_of_a_good_baseline_is_near_chance_and_one_class():
    flags = prediction_flags(np.full_like(LABELS, 3), LABELS, reference=LABELS)
    assert codes(flags) == ["near_chance", "one_class"]
    assert "predicts class 3 for 100% of the test set" in flags[1]["message"]
    assert "float baseline reaches 100.0%" in flags[0]["message"]


def test_two_constant_predictors_do_not_look_like_perfect_agreement():
    flags = prediction_flags(np.full_like(LABELS, 3), LABELS, reference=np.full_like(LABELS, 3))
    assert "agreement_meaningless" in codes(flags)
    assert "near_chance" not in codes(flags), "the baseline itself is at chance: that is the baseline's flag"
    assert codes(baseline_flags(np.full_like(LABELS, 3), LABELS)) == ["baseline_at_chance"]


def test_imbalanced_labels_raise_the_chance_level():
    labels = np.array([0] * 95 + [1] * 5)
    assert codes(prediction_flags(np.zeros(100, int), labels)) == ["near_chance"]  # 95 % is what "always 0" gets


def test_int16x8_with_sparse_encoding_is_refused_up_front():
    with pytest.raises(CompressionError, match="int16x8 with sparse encoding is refused: TFLite's converter"):
        VariantSpec(name="x", quantization="int16x8", sparse_encoding=True)
    from compression.tflite.convert import convert_to_tflite

    with pytest.raises(CompressionError, match="^int16x8 with sparse encoding is refused"):
        convert_to_tflite(object(), "int16x8", sparse=True)


def test_an_untrained_model_is_flagged_at_chance_and_its_variant_against_a_trained_baseline(cnn, digits_split):
    from compression.inputs.models import build_model
    from compression.measure.litert import measure_tflite
    from compression.techniques.train import predict_classes
    from compression.tflite.convert import convert_to_tflite

    _, _, x_test, y_test = digits_split
    untrained = build_model("seed_cnn", x_test.shape[1:], 10, seed=3)
    flags = baseline_flags(predict_classes(untrained, x_test), y_test)
    assert codes(flags) == ["baseline_at_chance"] and "untrained" in flags[0]["message"]

    trained = predict_classes(cnn, x_test)
    m = measure_tflite(convert_to_tflite(untrained, "float32", isolate=False), x_test, y_test,
                       reference_predictions=trained, latency_runs=3)
    assert "near_chance" in codes(m["flags"])
    row = VariantResult.from_dict(json.loads(json.dumps({"name": "v", "status": "ok", "flags": m["flags"]})))
    assert row.flags[0].code == "near_chance" and row.to_dict()["flags"] == m["flags"]


def test_the_cli_table_marks_a_flagged_variant_and_prints_why(tmp_path):
    import subprocess
    import sys

    from flagged_model import save_constant_model

    model = save_constant_model(tmp_path / "constant.keras")
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({
        "dataset": {"name": "digits"}, "model": {"path": str(model)}, "baseline": {"pretrained": True},
        "variants": [{"name": "float32"}], "evaluation": {"latency_runs": 3, "tflm": False}}))
    done = subprocess.run([sys.executable, "-m", "compression", "run", str(recipe), "--out", str(tmp_path / "out")],
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-2000:]
    row = next(line for line in done.stdout.splitlines() if line.lstrip().startswith("float32"))
    assert "ok, flagged" in row and "one_class" in row
    assert "warning: baseline: The baseline's accuracy" in done.stdout
    assert "warning: variant 'float32': predicts class 3 for 100% of the test set" in done.stdout
    assert "warning: variant 'float32': agreement 100.0% means nothing here" in done.stdout
