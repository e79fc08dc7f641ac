"""Variants as Ray tasks on a local Ray (2 CPUs, loopback, no dashboard): same table as a local run,
crashes fail only their variant, cancel cancels the outstanding tasks, the CLI's --ray local."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from compression import Cancelled, CompressionError, Recipe, run_recipe
from compression.results import RunStatus
from compression.run.executors import (
    RAY_ADDRESS_ENV,
    LocalExecutor,
    RayExecutor,
    describe_setting,
    make_executor,
    run_variant_task,
)
from compression.run_folder import RunFolder

ROOT = Path(__file__).resolve().parents[1]
DEADLINE_S = 300  # a whole short recipe on the shared 2-core machine
# A fine-tune's float sums (oneDNN) depend on TensorFlow's intra-op thread count: a task with as many
# threads as the local run (TF's default: every core) writes the same bytes; PTQ-only variants match at any count.
LOCAL_THREADS = os.cpu_count() or 1

FOUR = {
    "title": "Ray: four variants",
    "dataset": {"name": "digits"},
    "model": {"name": "seed_cnn"},
    "baseline": {"pretrained": True},
    "evaluation": {"latency_runs": 10, "throughput_batch": 64},
    "seed": 3,
    "variants": [
        {"name": "float32"},
        {"name": "int8", "quantization": "int8"},
        {"name": "dynamic", "quantization": "dynamic"},
        {"name": "pruned", "pruning": {"schedule": "constant", "final_sparsity": 0.8}, "fine_tune_epochs": 1},
    ],
}


def recipe_with(*variants) -> Recipe:
    return Recipe.from_dict({**FOUR, "variants": list(variants)})


@pytest.fixture(scope="module")
def ray_local():
    """One local Ray for the module: 2 CPUs, loopback only, no dashboard, no token auth."""
    import ray  # requirements-dev.txt installs it

    mp = pytest.MonkeyPatch()
    mp.setenv("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=max(2, LOCAL_THREADS), include_dashboard=False, _node_ip_address="127.0.0.1", log_to_driver=False)
    # The crash wrappers below live in this test module, which Ray workers cannot import by name.
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])
    yield ray
    ray.shutdown()
    mp.undo()


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    out = tmp_path_factory.mktemp("local")
    run_recipe(Recipe.from_dict(FOUR), out, executor=LocalExecutor())
    return out


@pytest.fixture(scope="module")
def ray_run(ray_local, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray")
    events = []
    with RayExecutor("local", cpus_per_task=LOCAL_THREADS) as executor:  # joins the fixture's Ray, leaves it running
        run_recipe(Recipe.from_dict(FOUR), out, progress=events.append, executor=executor)
    return out, events


def figures(out: Path) -> dict[str, tuple]:
    results = RunFolder(out).read_results()
    return {v.name: (v.status, v.accuracy, v.agreement, v.size_bytes, v.gzip_bytes, v.sparsity)
            for v in results.variants}


def test_four_variants_on_ray_give_the_local_table(local_run, ray_run):
    out, events = ray_run
    local, remote = figures(local_run), figures(out)
    assert list(remote) == ["float32", "int8", "dynamic", "pruned"]  # recipe order, whatever finished first
    assert all(row[0] is RunStatus.OK for row in local.values()), local
    assert remote == local
    results = RunFolder(out).read_results()
    assert results.status is RunStatus.OK and results.reference == RunFolder(local_run).read_results().reference
    for v in results.variants:  # the files came back from the tasks into the run folder
        assert RunFolder(out).tflite(v).stat().st_size == v.size_bytes
        assert np.array_equal(np.load(RunFolder(out).predictions(v.stem)),
                              np.load(RunFolder(local_run).predictions(v.stem)))
        assert set(np.load(RunFolder(out).kernels(v.stem)).files) == {"conv", "logits"}
        assert v.latency.runs == 10 and v.seconds > 0
    done = [e for e in events if e.phase == "variant_done"]
    assert sorted(e.variant for e in done) == sorted(local)
    assert [e.fraction for e in done] == sorted(e.fraction for e in done) and events[-1].phase == "done"


def test_a_task_reserves_its_cpus_and_matches_tensorflow_threads(ray_local, ray_run, digits):
    out, _ = ray_run
    folder = RunFolder(out)
    outcomes = []
    with RayExecutor("local", cpus_per_task=1) as executor:
        recipe = recipe_with({"name": "float32"})
        executor.run_variants(recipe, recipe.variants, folder.baseline_model, digits,
                              np.load(folder.predictions("baseline")), outcomes.append)
    (outcome,) = outcomes
    assert outcome.threads == {"intra_op": 1, "inter_op": 1, "omp": "1"}
    assert outcome.row["status"] == "ok" and len(outcome.files["tflite"]) == outcome.row["size_bytes"]
    node, pid = re.fullmatch(r"node ([0-9a-f]{12}) pid (\d+)", outcome.where).groups()
    assert int(pid) != os.getpid() and ray_local.get_runtime_context().get_node_id().startswith(node)


def test_a_task_larger_than_any_node_is_a_sentence_not_a_hang(ray_run, digits):
    out, _ = ray_run
    folder = RunFolder(out)
    recipe = recipe_with({"name": "float32"})
    too_many = max(2, LOCAL_THREADS) + 1
    with RayExecutor("local", cpus_per_task=too_many) as executor, \
            pytest.raises(CompressionError, match=f"reserves {too_many} CPUs"):
        executor.run_variants(recipe, recipe.variants, folder.baseline_model, digits,
                              np.load(folder.predictions("baseline")), lambda outcome: None)


def crashing_task(spec, *args, **kwargs):
    """The real task, except that variant "exits" calls os._exit and "segfaults" raises SIGSEGV."""
    if spec["name"] == "exits":
        os._exit(3)
    if spec["name"] == "segfaults":
        os.kill(os.getpid(), signal.SIGSEGV)
    return run_variant_task(spec, *args, **kwargs)


def test_a_crashing_task_fails_only_its_variant(ray_local, local_run, tmp_path):
    recipe = recipe_with({"name": "float32"}, {"name": "exits", "quantization": "float16"},
                         {"name": "segfaults", "quantization": "float16"}, {"name": "int8", "quantization": "int8"})
    with RayExecutor("local", task=crashing_task) as executor:
        run_recipe(recipe, tmp_path, executor=executor)
    results = RunFolder(tmp_path).read_results()
    assert [v.name for v in results.variants] == ["float32", "exits", "segfaults", "int8"]
    assert results.status is RunStatus.OK
    for name in ("exits", "segfaults"):
        v = results.variant(name)
        assert v.status is RunStatus.FAILED and "Ray worker process died while running it" in v.error
        assert v.settings["quantization"] == "float16" and not RunFolder(tmp_path).tflite_for_stem(name).exists()
    local = figures(local_run)
    for name in ("float32", "int8"):
        assert figures(tmp_path)[name] == local[name]


def test_cancel_cancels_the_outstanding_tasks(ray_local, tmp_path):
    long = {"pruning": {"schedule": "constant", "final_sparsity": 0.5}, "fine_tune_epochs": 200}
    recipe = recipe_with({"name": "float32"}, {"name": "long-a", **long}, {"name": "long-b", **long})
    finished = []

    def progress(event):
        if event.phase == "variant_done":
            finished.append(event.variant)

    started = time.monotonic()
    with RayExecutor("local") as executor, pytest.raises(Cancelled):
        run_recipe(recipe, tmp_path, progress=progress, cancel=lambda: bool(finished), executor=executor)
    assert time.monotonic() - started < DEADLINE_S  # 200 epochs each would take far longer
    results = RunFolder(tmp_path).read_results()
    assert results.status is RunStatus.CANCELLED
    assert [(v.name, v.status) for v in results.variants] == [
        ("float32", RunStatus.OK), ("long-a", RunStatus.CANCELLED), ("long-b", RunStatus.CANCELLED)]
    deadline = time.monotonic() + 60
    while ray_local.available_resources().get("CPU", 0) < 2:  # the cancelled tasks gave their CPUs back
        assert time.monotonic() < deadline, ray_local.available_resources()
        time.sleep(0.2)


def test_cli_ray_local_writes_the_local_results(local_run, tmp_path):
    recipe_file = tmp_path / "recipe.json"
    recipe_file.write_text(json.dumps(FOUR))
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled", "TF_CPP_MIN_LOG_LEVEL": "3",
           "COMPRESSION_LAB_RAY_CPUS": str(LOCAL_THREADS)}
    env.pop(RAY_ADDRESS_ENV, None)
    done = subprocess.run([sys.executable, "-m", "compression", "run", str(recipe_file), "--ray", "local",
                           "--out", str(tmp_path / "out")], cwd=tmp_path, env=env, capture_output=True, text=True,
                          timeout=DEADLINE_S)
    assert done.returncode == 0, done.stderr[-2000:]
    assert figures(tmp_path / "out") == figures(local_run)


def test_the_setting_is_chosen_without_importing_ray(monkeypatch):
    monkeypatch.delenv(RAY_ADDRESS_ENV, raising=False)
    assert describe_setting().startswith("local:") and RAY_ADDRESS_ENV in describe_setting()
    assert isinstance(make_executor(""), LocalExecutor)
    monkeypatch.setenv(RAY_ADDRESS_ENV, "ray://head:10001")
    assert "Ray cluster at ray://head:10001" in describe_setting()
    monkeypatch.setenv("COMPRESSION_LAB_RAY_CPUS", "zero")
    assert "COMPRESSION_LAB_RAY_CPUS must be a whole number" in describe_setting()
    with pytest.raises(CompressionError, match="The Ray address must be"):
        make_executor("nonsense")
    code = ("import sys; import compression.run.executors as e, compression.run.recipe, compression.cli; "
            "e.describe_setting('auto'); sys.exit('ray' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], cwd=ROOT, timeout=120).returncode == 0


def test_a_short_search_fans_its_trials_out_on_ray(ray_local, tmp_path):
    from compression.explore.search import search
    from compression.explore.search_results import TrialState, read_search
    from compression.explore.search_space import SearchSpec

    recipe = Recipe.from_dict({**FOUR, "dataset": {"name": "digits", "max_train": 300}})
    with RayExecutor("local") as executor:
        result = search(recipe, tmp_path, SearchSpec(budget=1.0, minutes=None, max_epochs=1, trials=3, seed=7),
                        executor=executor)
    assert len(result.trials) == 3 and result.stopped == "trials"
    assert {t.source for t in result.trials} >= {"int8 anchor", "prior"}
    ok = [t for t in result.trials if t.state is TrialState.OK]
    assert ok, [t.error for t in result.trials]
    stored = RunFolder(tmp_path).read_results()
    assert stored.extra["kind"] == "search" and stored.status is RunStatus.OK
    assert read_search(stored) == result
    for v in stored.ok_variants:  # each trial's files came back from its task
        assert RunFolder(tmp_path).tflite(v).stat().st_size == v.size_bytes
    first, second = sorted(result.trials, key=lambda t: t.started_s)[:2]
    assert second.started_s < first.finished_s  # two trials ran at once (2 CPUs, 1 per task)


LOST_DRIVER = '''
import os, signal, subprocess, sys, threading, time
from pathlib import Path

from compression import CompressionError, Recipe, run_recipe
from compression.run import executors
from compression.run.executors import RayExecutor

# The engine's probe, tightened for the test: every second instead of every 10 s, lost after 5 s unanswered
# instead of 15 s (before the kill every probe must still be answered in time, or the run fails too early).
executors.HEALTH_SECONDS, executors.HEALTH_TIMEOUT_S = 1.0, 5.0
STARTED = Path(sys.argv[1]).parent / "started"  # a task touches STARTED/<its variant> when it runs


def hangs(spec, *args, **kwargs):
    (STARTED / spec["name"]).touch()
    time.sleep(600)


def kill_the_cluster(out):
    """Once a variant task is running on it, SIGKILL this driver's own Ray: its GCS and its raylet."""
    while not any(STARTED.iterdir()):
        time.sleep(0.2)  # poll interval: the loop ends when a task has started
    ps = subprocess.run(["ps", "-o", "pid=,comm=", "--ppid", str(os.getpid())], capture_output=True, text=True)
    for line in ps.stdout.splitlines():
        pid, name = line.split(None, 1)
        if name.startswith(("gcs_server", "raylet")):
            os.kill(int(pid), signal.SIGKILL)


if __name__ == "__main__":
    out = Path(sys.argv[1])
    STARTED.mkdir()
    recipe = Recipe.from_dict({"dataset": {"name": "digits"}, "baseline": {"pretrained": True},
                               "variants": [{"name": "a"}, {"name": "b", "quantization": "int8"}]})
    threading.Thread(target=kill_the_cluster, args=(out,), daemon=True).start()
    try:
        with RayExecutor("local", task=hangs) as executor:
            run_recipe(recipe, out, executor=executor)
    except CompressionError as exc:
        print("raised:", exc, flush=True)
    from compression.isolation import shared_pool
    shared_pool().close()
    os._exit(0)
'''


def test_a_lost_cluster_fails_the_run_with_a_sentence_not_a_hang(tmp_path):
    """A driver in its own process (Ray aborts a driver whose GCS stays away): its Ray is killed mid-run."""
    script = tmp_path / "driver.py"
    script.write_text(LOST_DRIVER)
    env = {**os.environ, "PYTHONPATH": str(ROOT), "RAY_AUTH_MODE": "disabled", "TF_CPP_MIN_LOG_LEVEL": "3"}
    env.pop(RAY_ADDRESS_ENV, None)
    with open(tmp_path / "stdout", "w") as stdout, open(tmp_path / "stderr", "w") as stderr:
        code = subprocess.run([sys.executable, str(script), str(tmp_path / "out")], cwd=tmp_path, env=env,
                              stdout=stdout, stderr=stderr, timeout=DEADLINE_S).returncode
    assert code == 0, (tmp_path / "stderr").read_text()[-2000:]
    assert "raised: Lost the connection to the Ray cluster at 'local'" in (tmp_path / "stdout").read_text()
    results = RunFolder(tmp_path / "out").read_results()
    assert results.status is RunStatus.FAILED and "Lost the connection" in results.error
    assert [(v.name, v.status) for v in results.variants] == [("a", RunStatus.FAILED), ("b", RunStatus.FAILED)]
