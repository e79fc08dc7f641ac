"""Downloads: zip of .tflite files, C array headers, results files, the reproduce script (executed for real)."""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
import zipfile

import pytest

from compression import PRESETS, Recipe
from compression.errors import CompressionError
from compression.export import (
    recipe_json,
    reproduce_script,
    results_csv,
    results_json,
    tflite_zip,
)


def test_tflite_zip(tmp_path):
    (tmp_path / "a.tflite").write_bytes(b"A" * 10)
    (tmp_path / "b.tflite").write_bytes(b"B" * 20)
    (tmp_path / ".tmp-c.tflite").write_bytes(b"partial")
    results = {
        "variants": [
            {"name": "a", "status": "ok", "tflite": "a.tflite"},
            {"name": "b", "status": "failed", "tflite": None},
        ]
    }
    with zipfile.ZipFile(io.BytesIO(tflite_zip(tmp_path, results))) as z:
        assert z.namelist() == ["a.tflite", "c/a_tflite.h", "c/a_tflite.cc"]  # with the C++ pair
        assert z.read("a.tflite") == b"A" * 10
    with zipfile.ZipFile(io.BytesIO(tflite_zip(tmp_path, c_pairs=False))) as z:
        assert sorted(z.namelist()) == ["a.tflite", "b.tflite"]
    assert tflite_zip(tmp_path) == tflite_zip(tmp_path)  # deterministic bytes
    with pytest.raises(CompressionError):
        tflite_zip(tmp_path / "nothing-here")


def test_results_and_recipe_files():
    results = {
        "recipe": Recipe.experiment_e().to_dict(),
        "reference": {"size_bytes": 100, "gzip_bytes": 50, "accuracy": 0.9},
        "variants": [
            {
                "name": "int8",
                "status": "ok",
                "techniques": ["int8"],
                "quantization": "int8",
                "size_bytes": 25,
                "gzip_bytes": 20,
                "accuracy": 0.91,
                "latency_ms": {"median": 0.01},
            }
        ],
    }
    csv = results_csv(results).decode()
    header, row = csv.strip().splitlines()
    assert header.startswith("name,status,techniques,quantization,accuracy,delta_accuracy")
    assert row.startswith("int8,ok,int8,int8,0.91,")
    assert json.loads(results_json(results)) == results
    assert Recipe.from_json(recipe_json(results["recipe"]).decode()) == Recipe.experiment_e()


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_reproduce_script_is_valid_python_for_every_preset_variant(preset):
    recipe = PRESETS[preset]()
    for v in recipe.variants:
        script = reproduce_script(recipe, v.name, run_id="20250101-000000-000-abcdef")
        compile(script, f"reproduce_{v.name}.py", "exec")
        assert "__VARIANT__" not in script and "__STEM__" not in script
        assert f"'name': {v.name!r}" in script


def test_reproduce_script_refuses_an_unknown_variant():
    with pytest.raises(CompressionError, match="no variant 'nope'"):
        reproduce_script(Recipe.experiment_e(), "nope")


def test_reproduce_script_placeholders_in_names_are_not_substituted():
    recipe = Recipe.from_dict({"variants": [{"name": 'a__SEED__"""b', "quantization": "int8"}]})
    script = reproduce_script(recipe, 'a__SEED__"""b')
    compile(script, "x.py", "exec")
    assert '\'a__SEED__"""b\'' in script


@pytest.mark.slow
def test_reproduce_script_runs_and_writes_an_int8_tflite(tmp_path, digits):
    """Execute the generated script in a subprocess for an int8 variant on digits; check the .tflite."""
    import numpy as np

    from compression.models import build_model
    from compression.train import train_baseline

    baseline = build_model("seed_cnn", digits.input_shape, digits.num_classes)
    train_baseline(baseline, digits, epochs=2)
    baseline.save(tmp_path / "baseline.keras")
    recipe = Recipe.from_dict(
        {"dataset": {"name": "digits"}, "variants": [{"name": "int8", "quantization": "int8"}], "seed": 0}
    )
    script = tmp_path / "reproduce_int8.py"
    script.write_text(reproduce_script(recipe, "int8"))
    out = subprocess.run(
        [
            sys.executable,
            str(script),
            "--baseline",
            str(tmp_path / "baseline.keras"),
            "--out",
            str(tmp_path / "int8.tflite"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    assert "input int8" in out.stdout
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", out.stdout).group(1))
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_content=(tmp_path / "int8.tflite").read_bytes())
    assert interpreter.get_input_details()[0]["dtype"] == np.int8
    # The same variant through the engine: same bytes, same accuracy.
    from compression.convert import convert_to_tflite
    from compression.measure import measure_tflite

    engine = convert_to_tflite(baseline, "int8", representative=digits.x_train, seed=0)
    assert engine == (tmp_path / "int8.tflite").read_bytes()
    assert measure_tflite(engine, digits.x_test, digits.y_test, latency_runs=5)["accuracy"] == pytest.approx(
        accuracy, abs=1e-4
    )
