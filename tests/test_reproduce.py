"""The reproduce script: its template is real code (imported and unit-tested here), and the generated script,
run in a subprocess, writes the engine's `.tflite` bytes for every technique."""

from __future__ import annotations

import ast
import itertools
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from compression import PRESETS, Recipe
from compression.config import PruningConfig
from compression.errors import CompressionError
from compression.tflite.export import REPRODUCE_DATA_BEGIN, REPRODUCE_DATA_END, reproduce_script
from compression.tflite.templates import reproduce as template


def _data_block(script: str) -> dict:
    """The literals the generator wrote between the recipe-data markers."""
    lines = script.splitlines()
    block = "\n".join(lines[lines.index(REPRODUCE_DATA_BEGIN) + 1 : lines.index(REPRODUCE_DATA_END)])
    tree = ast.parse(block)
    return {node.targets[0].id: ast.literal_eval(node.value) for node in tree.body}


# ----------------------------------------------------------------- the generator


@pytest.mark.parametrize("preset", sorted(PRESETS))
def test_script_for_every_preset_variant_is_the_template_with_the_variant_as_data(preset):
    recipe = PRESETS[preset]()
    with open(template.__file__, encoding="utf-8") as fh:
        code = fh.read().split(f"\n{REPRODUCE_DATA_END}\n", 1)[1]
    for spec in recipe.variants:
        script = reproduce_script(recipe, spec.name, run_id="20250101-000000-000-abcdef")
        compile(script, f"reproduce_{spec.name}.py", "exec")
        data = _data_block(script)
        assert data["VARIANT"] == spec.to_dict()
        assert data["DATASET"] == recipe.to_dict()["dataset"]
        assert data["SEED"] == recipe.seed
        assert data["BASELINE_LEARNING_RATE"] == recipe.baseline.learning_rate
        assert data["PRESERVE"] == spec.expected_preserve.value  # the engine's derivation, filled in
        assert data["PRESERVE"] in template.PRESERVES
        assert "20250101-000000-000-abcdef" in data["TITLE"]
        assert script.split(f"\n{REPRODUCE_DATA_END}\n", 1)[1] == code  # the code itself is never substituted


def test_template_data_block_names_what_the_generator_writes():
    """The template's own example block has the same names, so the module imports and its main() reads them."""
    script = reproduce_script(Recipe.experiment_e(), Recipe.experiment_e().variants[0].name)
    with open(template.__file__, encoding="utf-8") as fh:
        own = _data_block(fh.read())
    assert list(own) == list(_data_block(script))


def test_reproduce_script_refuses_an_unknown_variant():
    with pytest.raises(CompressionError, match="no variant 'nope'"):
        reproduce_script(Recipe.experiment_e(), "nope")


@pytest.mark.parametrize("name", ['a__SEED__"""b', "x # ----- end of recipe data -----", "q'\"\nx"])
def test_odd_variant_names_stay_data(name):
    recipe = Recipe.from_dict({"variants": [{"name": name, "quantization": "int8"}]})
    script = reproduce_script(recipe, name)
    compile(script, "x.py", "exec")
    assert _data_block(script)["VARIANT"]["name"] == name


# ----------------------------------------------------------------- the template's functions


def test_applied_schedule_matches_the_engine_over_a_grid():
    from compression.techniques.pruning import applied_schedule

    checked = 0
    for total, frequency, begin, end in itertools.product(
        (1, 2, 3, 5, 8, 23, 46, 100, 117, 400, 1000, 5000),
        (1, 2, 7, 10, 50, 100, 250),
        (0, 1, 5, 40, 300),
        (None, 2, 30, 120, 999, 6000),
    ):
        if end is not None and end <= begin:
            continue
        config = PruningConfig(final_sparsity=0.5, begin_step=begin, end_step=end, frequency=frequency)
        engine = applied_schedule(config, total)
        mine = template.applied_schedule(config.__dict__, total)
        assert mine == (engine["begin_step"], engine["end_step"], engine["frequency"]), (total, frequency, begin, end)
        checked += 1
    assert checked > 1000


@pytest.mark.parametrize("dataset", [{"name": "digits"}, {"name": "digits", "max_train": 300, "max_test": 111}])
def test_load_data_is_the_engines_split(dataset):
    from compression.inputs.data import load_dataset

    seed = 3
    ds = load_dataset(dataset["name"], max_train=dataset.get("max_train"), max_test=dataset.get("max_test"), seed=seed)
    got = template.load_data({"path": None, "max_train": None, "max_test": None, **dataset}, seed)
    for mine, engine in zip(got, (ds.x_train, ds.y_train, ds.x_test, ds.y_test), strict=True):
        assert mine.dtype == engine.dtype
        np.testing.assert_array_equal(mine, engine)


@pytest.mark.parametrize(
    ("mode", "sparse"),
    [("float32", False), ("dynamic", False), ("float16", False), ("int8", False), ("int16x8", False),
     ("float32", True), ("dynamic", True)],
)
def test_convert_and_accuracy_match_the_engine(seed_cnn, digits, mode, sparse):
    from compression.measure.litert import measure_tflite
    from compression.tflite.convert import convert_to_tflite

    mine = template.convert(seed_cnn, mode, digits.x_train, sparse=sparse, samples=50, seed=1)
    engine = convert_to_tflite(seed_cnn, mode, representative=digits.x_train, sparse=sparse,
                               representative_samples=50, seed=1)
    assert mine == engine
    acc, dtype = template.accuracy(mine, digits.x_test, digits.y_test)
    measured = measure_tflite(engine, digits.x_test, digits.y_test, latency_runs=1)
    assert acc == pytest.approx(measured["accuracy"], abs=1e-9)
    assert dtype == measured["input_dtype"]


def test_quantize_aware_refuses_an_unknown_scheme(seed_cnn, small_train):
    spec = Recipe.from_dict({"variants": [{"name": "q", "qat": {}}]}).variants[0].to_dict()
    with pytest.raises(SystemExit, match="unknown QAT scheme 'pcqat'"):
        template.quantize_aware(seed_cnn, *small_train, spec, "pcqat")


# ----------------------------------------------------------------- byte-identical with the engine

_VARIANTS = [
    {"name": "int8", "quantization": "int8"},
    {"name": "int8-stripped", "quantization": "int8", "strip_strings": True},
    {"name": "pruned", "pruning": {"final_sparsity": 0.5}, "quantization": "int8", "sparse_encoding": True},
    {"name": "clustered", "clustering": {"clusters": 8}, "quantization": "int8"},
    {"name": "qat", "qat": {}, "quantization": "int8"},
    {"name": "pqat", "pruning": {"final_sparsity": 0.5, "layer_sparsity": {"conv": 0.3}}, "qat": {},
     "quantization": "int8"},
    {"name": "pcqat", "pruning": {"final_sparsity": 0.5}, "clustering": {"clusters": 8}, "qat": {},
     "quantization": "int8"},
]


class _Scripts:
    """The generated scripts run in subprocesses, one per core at a time, started in the tests' order.

    Each script is its own interpreter (as a user runs it); running the next one while a test waits for its own
    keeps the slow tests' wall time near their CPU time on a multi-core machine.
    """

    def __init__(self, recipe, folder, tmp_path):
        self.recipe, self.folder, self.tmp = recipe, folder, tmp_path
        self.order = [v["name"] for v in _VARIANTS]
        self.parallel = max(1, min(2, os.cpu_count() or 1))
        self.started: dict[str, tuple[subprocess.Popen, Path]] = {}

    def _start(self, name):
        script = self.tmp / f"reproduce_{name}.py"
        script.write_text(reproduce_script(self.recipe, name, run_id=self.folder.run_id))
        out = self.tmp / f"{name}.tflite"
        log = (self.tmp / f"{name}.stdout").open("w"), (self.tmp / f"{name}.stderr").open("w")
        command = [sys.executable, str(script), "--baseline", str(self.folder.baseline_model), "--out", str(out)]
        with log[0], log[1]:
            self.started[name] = subprocess.Popen(command, stdout=log[0], stderr=log[1], cwd=self.tmp), out

    def result(self, name) -> tuple[int, str, str, bytes | None]:
        """(return code, stdout, stderr, the written .tflite) of the script for variant ``name``."""
        i = self.order.index(name)
        for ahead in self.order[i : i + self.parallel]:
            if ahead not in self.started:
                self._start(ahead)
        proc, out = self.started[name]
        code = proc.wait(timeout=600)
        stdout, stderr = ((self.tmp / f"{name}.{s}").read_text() for s in ("stdout", "stderr"))
        return code, stdout, stderr, out.read_bytes() if out.is_file() else None

    def stop(self):
        for proc, _ in self.started.values():
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@pytest.fixture(scope="module")
def engine_run(tmp_path_factory):
    """One engine run of every technique on a digits subsample with one-epoch fine-tunes."""
    from compression.run.recipe import run_recipe
    from compression.run_folder import RunFolder

    recipe = Recipe.from_dict({
        "dataset": {"name": "digits", "max_train": 320, "max_test": 200},
        "baseline": {"pretrained": True},
        "variants": [{"fine_tune_epochs": 1, **v} for v in _VARIANTS],
        "evaluation": {"latency_runs": 2, "throughput_batch": 16},
        "seed": 7,
    })
    folder = RunFolder(tmp_path_factory.mktemp("engine-run"))
    run_recipe(recipe, folder.path)
    results = folder.read_results()
    assert [r.status for r in results.variants] == ["ok"] * len(_VARIANTS), [r.error for r in results.variants]
    files = {folder.tflite(r).read_bytes() for r in results.variants}
    assert len(files) == len(_VARIANTS)  # every technique changed the model: no comparison is trivially equal
    return recipe, folder, results


@pytest.fixture(scope="module")
def scripts(engine_run, tmp_path_factory):
    recipe, folder, _ = engine_run
    runner = _Scripts(recipe, folder, tmp_path_factory.mktemp("scripts"))
    yield runner
    runner.stop()


@pytest.mark.slow
@pytest.mark.parametrize("variant", [v["name"] for v in _VARIANTS])
def test_script_writes_the_engines_tflite_bytes(engine_run, scripts, variant):
    """Run the generated script in a subprocess: same seed → the engine's `.tflite` bytes, the engine's accuracy."""
    _, folder, results = engine_run
    row = next(r for r in results.variants if r.name == variant)
    code, stdout, stderr, written = scripts.result(variant)
    assert code == 0, stderr[-3000:]
    assert written == folder.tflite(row).read_bytes()
    accuracy = float(re.search(r"test accuracy ([0-9.]+)", stdout).group(1))
    assert accuracy == pytest.approx(row.accuracy, abs=1e-4)
    assert f"input {row.input_dtype}" in stdout
