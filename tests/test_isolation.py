"""Crash isolation: a native crash in a child fails that call with one sentence, the caller carries on."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from compression.errors import CompressionError
from compression.isolation import ChildError, IsolatedPool, NativeCrash, crash_reason
from compression.results import RunResults
from compression.run_folder import RunFolder
from tests import isolation_jobs as jobs

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def pool():
    with IsolatedPool(max_tasks_per_child=3) as p:
        yield p


def test_results_come_back_and_the_child_is_replaced_after_max_tasks(pool):
    pids = []
    for i in range(4):
        pid, doubled = pool.call(jobs.pid_and_double, i)
        assert doubled == 2 * i
        pids.append(pid)
    assert os.getpid() not in pids
    assert len(set(pids[:3])) == 1, "the child is kept warm between calls"
    assert pids[3] != pids[0], "max_tasks_per_child=3 replaced the child on the 4th call"


def test_a_segfault_fails_that_call_in_one_sentence_and_the_next_call_works(pool):
    with pytest.raises(NativeCrash) as caught:
        pool.call(jobs.segfault, what="TFLite's int8 calibration")
    assert str(caught.value) == "TFLite's int8 calibration crashed (SIGSEGV)."
    assert isinstance(caught.value, CompressionError)
    assert pool.call(jobs.pid_and_double, 5)[1] == 10


def test_a_killed_child_is_reported_without_a_signal_name(pool):
    with pytest.raises(NativeCrash, match=r"^The isolated call ended abruptly \(the process was killed"):
        pool.call(jobs.sigkill)
    assert pool.call(jobs.pid_and_double, 1)[1] == 2


def test_exceptions_in_the_child_come_back_as_exceptions(pool):
    with pytest.raises(CompressionError, match="^The child refused: one sentence.$"):
        pool.call(jobs.refuse)
    with pytest.raises(ChildError) as caught:
        pool.call(jobs.bug)
    assert caught.value.kind == "KeyError" and "missing thing" in str(caught.value)


def test_the_childs_c_level_output_does_not_reach_the_callers_terminal(pool, capfd, caplog):
    caplog.set_level("DEBUG", logger="compression.isolation")
    assert pool.call(jobs.noisy, "chatter", what="noise") == "chatter"
    out, err = capfd.readouterr()
    assert "chatter" not in out and "chatter" not in err
    assert "fd1 chatter" in caplog.text and "fd2 chatter" in caplog.text


def test_crash_reason_reads_faulthandlers_first_line():
    assert crash_reason("Fatal Python error: Segmentation fault\n\nCurrent thread") == "SIGSEGV"
    assert crash_reason("Fatal Python error: Aborted\n") == "SIGABRT"
    assert crash_reason("nothing here") == ""


# ---------------------------------------------------------------- conversion goes through the child


def _gru(keras, steps=40):
    inputs = keras.Input((steps, 1))
    x = keras.layers.GRU(4, name="gru")(inputs)
    return keras.Model(inputs, keras.layers.Dense(10, name="logits")(x))


def test_isolated_conversion_gives_the_same_bytes_as_in_process(cnn, digits_split):
    from compression.tflite.convert import convert_to_tflite

    x_train = digits_split[0]
    for mode in ("float32", "int8"):
        t0 = time.perf_counter()
        isolated = convert_to_tflite(cnn, mode, representative=x_train, isolate=True)
        t1 = time.perf_counter()
        local = convert_to_tflite(cnn, mode, representative=x_train, isolate=False)
        t2 = time.perf_counter()
        print(f"\n{mode}: isolated {t1 - t0:.2f} s, in process {t2 - t1:.2f} s")
        assert isolated == local


def test_gru_int8_calibration_segfault_is_one_sentence_and_conversion_goes_on():
    from compression import _tf
    from compression.tflite.convert import convert_to_tflite

    model = _gru(_tf.keras(), steps=12)
    x = np.random.default_rng(0).normal(size=(20, 12, 1)).astype(np.float32)
    with pytest.raises(NativeCrash) as caught:
        convert_to_tflite(model, "int8", representative=x)
    message = str(caught.value)
    assert message.startswith("TFLite's int8 calibration crashed (SIGSEGV) on this model (it has GRU layer 'gru')")
    assert "\n" not in message
    assert len(convert_to_tflite(model, "dynamic")) > 1000


# ---------------------------------------------------------------- a whole run: CLI and the app's worker


def _gru_recipe(tmp_path: Path) -> dict:
    from compression import _tf

    path = tmp_path / "gru.keras"
    _gru(_tf.keras()).save(path)
    return {
        "title": "gru crash",
        "dataset": {"name": "mnist1d", "max_train": 200, "max_test": 100},
        "model": {"name": "uploaded", "path": str(path)},
        "baseline": {"epochs": 0},
        "variants": [{"name": "float32"}, {"name": "int8", "quantization": "int8", "representative_samples": 20},
                     {"name": "dynamic", "quantization": "dynamic"}],
        "evaluation": {"latency_runs": 5, "throughput_batch": 16},
    }


def _assert_one_variant_crashed(results: RunResults) -> None:
    assert results.status == "ok"
    status = {v.name: v.status for v in results.variants}
    assert status == {"float32": "ok", "int8": "failed", "dynamic": "ok"}
    error = results.variant("int8").error
    assert error.startswith("TFLite's int8 calibration crashed (SIGSEGV) on this model (it has GRU layer 'gru')")


def test_cli_run_survives_a_segfault_in_one_variants_conversion(tmp_path):
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps(_gru_recipe(tmp_path)))
    out = tmp_path / "out"
    t0 = time.perf_counter()
    done = subprocess.run([sys.executable, "-m", "compression", "run", str(recipe), "--out", str(out)],
                          capture_output=True, text=True, cwd=ROOT, timeout=600)
    print(f"\nCLI run with a crashing variant: {time.perf_counter() - t0:.1f} s")
    assert done.returncode == 0, done.stderr[-3000:]
    _assert_one_variant_crashed(RunFolder(out).read_results())
    assert "Fatal Python error" not in done.stderr
    assert not (out / "int8.tflite").exists() and (out / "dynamic.tflite").is_file()


def test_the_apps_worker_survives_a_segfault_in_one_variants_conversion(tmp_path):
    from compression.config import Recipe
    from compression.run.runner import Runner
    from compression.store import Store

    store = Store(tmp_path / "lab")
    runner = Runner(store, poll_interval=0.05, idle_interval=0.1)
    try:
        run_id = runner.submit(Recipe.from_dict(_gru_recipe(tmp_path)))
        run = runner.wait(run_id, timeout=600)
    finally:
        runner.shutdown(cancel=True, timeout=10)
    assert run["status"] == "ok", run["error"]
    _assert_one_variant_crashed(store.results(run_id))


def _wait_gone(pid: int, seconds: float) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        time.sleep(0.1)
    return False


def test_a_child_whose_parent_died_while_it_started_ends_too(tmp_path):
    """The parent dies right after starting the child, before the child's initializer runs (a spare worker
    killed at server shutdown): the child must not take init for its parent and live on."""
    pid_file = tmp_path / "child.pid"
    script = (
        "import os\n"
        "from compression.isolation import IsolatedPool\n"
        "pool = IsolatedPool(preload=('json',))\n"
        "pool.warm()\n"
        f"open({str(pid_file)!r}, 'w').write(str(next(iter(pool._executor._processes))))\n"
        "os._exit(0)\n"
    )
    subprocess.run([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1], timeout=120,
                   check=True)
    child = int(pid_file.read_text())
    if not _wait_gone(child, 20):
        os.kill(child, 9)
        pytest.fail("the isolation child outlived a parent that died while it started")


def test_the_child_ends_when_its_parent_is_killed(tmp_path):
    """A worker killed by the runner (cancel, crash) must not leave its warm child behind (they filled 24 GB)."""
    pid_file = tmp_path / "child.pid"
    script = (
        "import os, sys, time\n"
        "from compression.isolation import IsolatedPool\n"
        "pool = IsolatedPool()\n"
        f"open({str(pid_file)!r}, 'w').write(str(pool.call(os.getpid)))\n"
        "time.sleep(600)\n"
    )
    parent = subprocess.Popen([sys.executable, "-c", script], cwd=Path(__file__).resolve().parents[1])
    try:
        deadline = time.monotonic() + 120
        while not (pid_file.exists() and pid_file.read_text()) and time.monotonic() < deadline:
            time.sleep(0.1)
        child = int(pid_file.read_text())
        os.kill(child, 0)  # alive while the parent is
        parent.kill()
        parent.wait(10)
        if not _wait_gone(child, 15):
            os.kill(child, 9)
            pytest.fail("the isolation child outlived its killed parent")
    finally:
        parent.kill()
