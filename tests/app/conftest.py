"""AppTest fixtures: a throw-away store per test, or per module one holding a finished run."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from apptest_support import RUN_DEADLINE

from tests.session_cache import shared_folder


def _stop_runner(root: Path) -> None:
    from compression.run import runner as runner_module

    runner = runner_module._RUNNERS.pop(root.resolve(), None)
    if runner is not None and runner.alive:
        runner.shutdown(cancel=True, timeout=30)


@pytest.fixture
def lab(tmp_path, monkeypatch):
    """An empty store under tmp_path (COMPRESSION_LAB_DATA); its runner is stopped afterwards."""
    root = tmp_path / "lab"
    monkeypatch.setenv("COMPRESSION_LAB_DATA", str(root))
    monkeypatch.setenv("COMPRESSION_LAB_WARM_WORKER", "0")  # no spare importing TensorFlow per test
    yield root
    _stop_runner(root)


@pytest.fixture(scope="session")
def finished_run_export(tmp_path_factory):
    """One finished run (pretrained digits seed CNN: float32, int8, pruned int8) made through the runner once
    per test session, as the store's export zip of it: (zip bytes, run id).

    Under pytest-xdist the first worker to need it makes it and the others read its zip
    (tests/session_cache.py).
    """
    def fill(folder: Path) -> None:
        data, run_id = _make_finished_run_export(tmp_path_factory)
        (folder / "run.zip").write_bytes(data)
        (folder / "run.json").write_text(json.dumps({"run_id": run_id}))

    folder = shared_folder(tmp_path_factory, "finished-run-export", fill)
    return (folder / "run.zip").read_bytes(), json.loads((folder / "run.json").read_text())["run_id"]


def _make_finished_run_export(tmp_path_factory) -> tuple[bytes, str]:
    from compression import Recipe
    from compression.run.runner import get_runner
    from compression.store import Store

    root = tmp_path_factory.mktemp("lab-template")
    mp = pytest.MonkeyPatch()
    mp.setenv("COMPRESSION_LAB_DATA", str(root))
    mp.setenv("COMPRESSION_LAB_WARM_WORKER", "0")
    recipe = Recipe.from_dict(
        {
            "title": "Page test run",
            "dataset": {"name": "digits"},
            "model": {"name": "seed_cnn"},
            "baseline": {"pretrained": True},
            "variants": [
                {"name": "float32"},
                {"name": "int8", "quantization": "int8"},
                {
                    "name": "pruned-int8",
                    "pruning": {"final_sparsity": 0.8, "initial_sparsity": 0.5},
                    "fine_tune_epochs": 1,
                    "quantization": "int8",
                },
            ],
            "evaluation": {"latency_runs": 20},
        }
    )
    runner = get_runner(root)
    try:
        run_id = runner.submit(recipe, session="owner-session")
        run = runner.wait(run_id, timeout=RUN_DEADLINE)
        assert run["status"] == "ok", run["error"]
        return Store(root).export_run(run_id), run_id
    finally:
        _stop_runner(root)
        mp.undo()


@pytest.fixture(scope="module")
def finished_run(finished_run_export, tmp_path_factory):
    """A store of this module's own holding the finished run above, imported byte for byte (same id, same
    database row, same files: a module may change or delete it, History's test does), for the Compare / Inspect /
    History pages. Yields (root, run_id, session id that owns it)."""
    from compression.store import Store

    data, run_id = finished_run_export
    root = tmp_path_factory.mktemp("lab")
    assert Store(root).import_run(data) == run_id
    mp = pytest.MonkeyPatch()
    mp.setenv("COMPRESSION_LAB_DATA", str(root))
    mp.setenv("COMPRESSION_LAB_WARM_WORKER", "0")
    yield root, run_id, "owner-session"
    _stop_runner(root)
    mp.undo()


@pytest.fixture
def with_run(finished_run, monkeypatch):
    """Point this test's environment at the module's finished run."""
    root, run_id, session = finished_run
    monkeypatch.setenv("COMPRESSION_LAB_DATA", str(root))
    return run_id, session
