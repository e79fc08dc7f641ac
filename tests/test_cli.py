"""The CLI as a user runs it: a real subprocess, real files."""

import json
import subprocess
import sys

ROOT = __import__("pathlib").Path(__file__).resolve().parent.parent


def cli(*args, env=None, cwd=ROOT):
    return subprocess.run([sys.executable, "-m", "compression", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


def test_run_writes_results_and_tflite_files(tmp_path):
    recipe = {"dataset": {"name": "digits"}, "model": {"name": "seed_cnn"}, "baseline": {"pretrained": True},
              "variants": [{"name": "float32"}, {"name": "int8", "quantization": "int8"}],
              "evaluation": {"latency_runs": 10}}
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    out = tmp_path / "out"
    done = cli("run", str(path), "--out", str(out))
    assert done.returncode == 0, done.stderr[-2000:]
    results = json.loads((out / "results.json").read_text())
    assert [v["status"] for v in results["variants"]] == ["ok", "ok"]
    assert (out / "int8.tflite").stat().st_size == results["variants"][1]["size_bytes"]
    assert "int8" in done.stdout and "results:" in done.stdout


def test_run_into_the_store_shows_up_in_history(tmp_path):
    import os

    env = {**os.environ, "COMPRESSION_LAB_DATA": str(tmp_path / "lab")}
    recipe = tmp_path / "r.json"
    recipe.write_text(json.dumps({"variants": [{"name": "float32"}], "baseline": {"pretrained": True},
                                  "evaluation": {"latency_runs": 5}}))
    done = cli("run", str(recipe), "--store", env=env)
    assert done.returncode == 0, done.stderr[-2000:]
    from compression.store import Store

    runs = Store(tmp_path / "lab").list_runs()
    assert len(runs) == 1 and runs[0]["status"] == "ok" and runs[0]["session"] == "cli"


def test_expected_errors_print_one_line_and_exit_non_zero(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"variants": [{"name": "a", "pruning": {"final_sparsity": 1.0}}]}))
    cases = {
        str(bad): "variant 'a': pruning.final_sparsity must be in [0, 1). Received: 1.0",
        str(tmp_path / "missing.json"): "not found",
    }
    garbage = tmp_path / "garbage.json"
    garbage.write_text("{not json")
    cases[str(garbage)] = "not valid JSON"
    negative = tmp_path / "negative.json"
    negative.write_text(json.dumps({"variants": [{"name": "a", "clustering": {"clusters": 0}}]}))
    cases[str(negative)] = "clusters must be in [2, 256]. Received: 0"
    for arg, message in cases.items():
        done = cli("run", arg, "--out", str(tmp_path / "o"))
        assert done.returncode == 2
        assert done.stderr.strip().splitlines()[-1].startswith("error: ")
        assert message in done.stderr
        assert "Traceback" not in done.stderr


def test_listings():
    datasets = cli("datasets")
    assert datasets.returncode == 0
    assert "digits" in datasets.stdout and "fashion_mnist" in datasets.stdout
    models = cli("models")
    assert "seed_cnn" in models.stdout and "pretrained: digits (0.972)" in models.stdout
    presets = cli("presets", "--show", "experiment_e")
    assert json.loads(presets.stdout[presets.stdout.index("{"):])["variants"][0]["name"] == "float32"
