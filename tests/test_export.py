"""Downloads: zip of .tflite files, C array headers, results files (the reproduce script: test_reproduce.py)."""

from __future__ import annotations

import io
import json
import zipfile

import pytest

from compression import Recipe
from compression.errors import CompressionError
from compression.tflite.export import recipe_json, results_csv, results_json, tflite_zip


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
