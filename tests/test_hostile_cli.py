"""Hostile and broken inputs through the CLI, as a user runs it: ``python -m compression run``.

Every case runs into one shared ``--store`` that already holds a good run, and
must end with exit status 2, exactly one ``error: …`` line (the last line of
stderr) that names the problem, no traceback, the marker file absent (no
code from the file ran), and the good run untouched (same status, same bytes).

The engine-level variants of these files are in test_safe_load.py and
test_data.py; this is the user-facing side of the same promise.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.hostile_files import MODEL_MESSAGES, NPZ_MESSAGES, run_fingerprint

ROOT = Path(__file__).resolve().parent.parent


def cli(*args, cwd=ROOT):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}
    return subprocess.run([sys.executable, "-m", "compression", *args], capture_output=True, text=True, cwd=cwd,
                          env=env, timeout=600)


@pytest.fixture(scope="module")
def shared_store(tmp_path_factory):
    """A store holding one finished good run, and that run's fingerprint."""
    root = tmp_path_factory.mktemp("store")
    recipe = root.parent / "good-recipe.json"
    recipe.write_text(json.dumps({"title": "the good run", "baseline": {"pretrained": True},
                                  "variants": [{"name": "float32"}], "evaluation": {"latency_runs": 5}}))
    done = cli("run", str(recipe), "--store", str(root))
    assert done.returncode == 0, done.stderr[-3000:]
    from compression.store import Store

    (run,) = Store(root).list_runs()
    fingerprint = run_fingerprint(root, run["id"])
    assert fingerprint["status"] == "ok" and "float32.tflite" in fingerprint["files"]
    return root, run["id"], fingerprint


def assert_refused(done: subprocess.CompletedProcess, message: str) -> None:
    """Exit 2, one ``error:`` line (the last) holding ``message``, nothing else said about it, no traceback."""
    lines = done.stderr.strip().splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    assert done.returncode == 2, (done.returncode, done.stderr[-3000:])
    assert errors == [lines[-1]], done.stderr[-3000:]
    assert message in errors[0], errors[0]
    assert "Traceback" not in done.stderr and "Traceback" not in done.stdout
    assert "results:" not in done.stdout  # no table printed as if something ran


def run_hostile(recipe: dict, tmp_path: Path, store) -> subprocess.CompletedProcess:
    root, good_id, fingerprint = store
    path = tmp_path / "recipe.json"
    path.write_text(json.dumps(recipe))
    done = cli("run", str(path), "--store", str(root))
    assert run_fingerprint(root, good_id) == fingerprint, "the earlier good run changed"
    return done


# ---------------------------------------------------------------- hand-edited recipes with absurd values


def _variant(**fields) -> dict:
    return {"variants": [{"name": "v", **fields}]}


ABSURD_RECIPES = {
    "sparsity 1.0": (_variant(pruning={"final_sparsity": 1.0}),
                     "variant 'v': pruning.final_sparsity must be in [0, 1). Received: 1.0"),
    "sparsity 7": (_variant(pruning={"schedule": "constant", "final_sparsity": 7}),
                   "variant 'v': pruning.final_sparsity must be in [0, 1). Received: 7"),
    "0 clusters": (_variant(clustering={"clusters": 0}),
                   "variant 'v': clustering.clusters must be in [2, 256]. Received: 0"),
    "10^9 clusters": (_variant(clustering={"clusters": 10**9}),
                      "variant 'v': clustering.clusters must be in [2, 256]. Received: 1000000000"),
    "negative fine-tune epochs": (_variant(fine_tune_epochs=-3),
                                  "variant 'v': fine_tune_epochs must be in [0, 500]. Received: -3"),
    "negative baseline epochs": ({**_variant(), "baseline": {"epochs": -1}},
                                 "baseline.epochs must be in [0, 500]. Received: -1"),
    "fractional epochs": (_variant(fine_tune_epochs=2.5),
                          "variant 'v': fine_tune_epochs must be a whole number. Received: 2.5"),
    "string for a number": (_variant(pruning={"final_sparsity": "0.8"}),
                            "variant 'v': pruning.final_sparsity must be a number. Received: '0.8'"),
    "boolean for a number": ({**_variant(), "baseline": {"epochs": True}},
                             "baseline.epochs must be a number. Received: True"),
    "NaN learning rate": (_variant(learning_rate=float("nan")),
                          "variant 'v': learning_rate must be finite. Received: nan"),
    "10^9 latency runs": ({**_variant(), "evaluation": {"latency_runs": 10**9}},
                          "evaluation.latency_runs must be in [1, 100000]. Received: 1000000000"),
    "0 threads": ({**_variant(), "evaluation": {"threads": 0}},
                  "evaluation.threads must be in [1, 64]. Received: 0"),
    "negative seed": ({**_variant(), "seed": -1}, "seed must be in [0, 2147483647]. Received: -1"),
    "variant name with ../": ({"variants": [{"name": "../../escape"}]},
                              "Variant name '../../escape' must be at most 80 characters with no slashes."),
    "65 variants": ({"variants": [{"name": f"v{i}"} for i in range(65)]},
                    "A recipe may hold at most 64 variants. Received: 65"),
    "unknown key": (_variant(prunning={"final_sparsity": 0.5}), "has unknown key(s) prunning"),
}


@pytest.mark.parametrize("case", list(ABSURD_RECIPES))
def test_absurd_recipe_values_are_refused(case, tmp_path, shared_store):
    from compression.store import Store

    recipe, message = ABSURD_RECIPES[case]
    runs_before = len(Store(shared_store[0]).list_runs())
    done = run_hostile(recipe, tmp_path, shared_store)
    assert_refused(done, message)
    assert len(Store(shared_store[0]).list_runs()) == runs_before  # refused before a run is even created


def test_oversized_recipe_file_is_refused(tmp_path, shared_store):
    path = tmp_path / "huge.json"
    path.write_text(json.dumps({"title": "x" * 2_000_000, "variants": [{"name": "v"}]}))
    assert_refused(cli("run", str(path), "--store", str(shared_store[0])), "is larger than 1 MB")


# ---------------------------------------------------------------- hostile model files


def _model_recipe(path: str) -> dict:
    return {"model": {"path": path}, "baseline": {"pretrained": True}, "variants": [{"name": "float32"}],
            "evaluation": {"latency_runs": 5}}


@pytest.mark.parametrize("name", list(MODEL_MESSAGES))
def test_hostile_model_file_is_refused_and_nothing_runs(name, hostile, tmp_path, shared_store):
    path = hostile.oversize_model() if name == "huge.keras" else hostile.models[name]
    assert not hostile.marker.exists()
    done = run_hostile(_model_recipe(str(path)), tmp_path, shared_store)
    assert_refused(done, MODEL_MESSAGES[name])
    assert not hostile.marker.exists(), "code carried by the model file ran"
    _assert_recorded_as_failed(shared_store[0], MODEL_MESSAGES[name])


def test_model_path_with_dot_dot_is_still_checked(hostile, tmp_path, shared_store):
    """A relative path that climbs out of the working folder reaches the same checks."""
    cwd = hostile.folder / "sub"
    cwd.mkdir(exist_ok=True)
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(_model_recipe("../evil.h5")))
    done = cli("run", str(recipe), "--store", str(shared_store[0]), cwd=cwd)
    assert_refused(done, MODEL_MESSAGES["evil.h5"])
    assert not hostile.marker.exists()
    root, good_id, fingerprint = shared_store
    assert run_fingerprint(root, good_id) == fingerprint


def _assert_recorded_as_failed(root: Path, message: str) -> None:
    """The refused run is in the store as failed, with the same sentence (what History shows)."""
    from compression.store import Store

    latest = Store(root).list_runs()[0]
    assert latest["status"] == "failed" and message in (latest["error"] or "")


# ---------------------------------------------------------------- hostile datasets


@pytest.mark.parametrize("name", list(NPZ_MESSAGES))
def test_hostile_npz_is_refused_and_nothing_is_unpickled(name, hostile, tmp_path, shared_store):
    recipe = {"dataset": {"name": "npz", "path": str(hostile.npz[name])}, "model": {"name": "mlp"},
              "baseline": {"pretrained": False, "epochs": 1}, "variants": [{"name": "float32"}],
              "evaluation": {"latency_runs": 5}}
    done = run_hostile(recipe, tmp_path, shared_store)
    assert_refused(done, NPZ_MESSAGES[name])
    assert not hostile.marker.exists(), "the pickled payload ran"
    _assert_recorded_as_failed(shared_store[0], NPZ_MESSAGES[name])
