"""The runner with real worker processes: crashes, kills, restarts, cancel, concurrency, export round trip.

The jobs are the cheap fakes in tests/jobs.py (no TensorFlow); store, runner
and worker are the real ones. Nothing sleeps to wait for work: everything
polls with a deadline. Each test prints what it measured (run with ``-s``).
"""

from __future__ import annotations

import json
import os
import signal
import threading
import time
from pathlib import Path

import pytest

from compression.config import Recipe
from compression.errors import CompressionError
from compression.run.runner import Runner, get_runner
from compression.store import Store
from tests.jobs import fake_tflite, make_recipe

DEADLINE = 60.0


def poll(predicate, timeout: float = DEADLINE, what: str = "condition"):
    """Call ``predicate`` until it returns something truthy; fail after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout} s waiting for {what}")
        time.sleep(0.02)


def snapshot(folder: Path) -> dict[str, bytes]:
    """Every file of a run folder (but its lock and hidden temporaries) by relative path."""
    return {
        p.relative_to(folder).as_posix(): p.read_bytes()
        for p in sorted(folder.rglob("*"))
        if p.is_file() and p.name != "worker.lock" and not p.name.startswith(".")
    }


def pid_gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    try:  # a zombie child of this test process counts as gone
        return os.waitpid(pid, os.WNOHANG)[0] == pid
    except ChildProcessError:
        return False


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "lab")


@pytest.fixture
def make_runner(store):
    """Runners with fast polling; every one is shut down (its workers cancelled) at the end."""
    made = []

    def make(store_=None, **kwargs):
        kwargs = {"poll_interval": 0.05, "idle_interval": 0.1, "orphan_check_interval": 0.5, **kwargs}
        runner = Runner(store_ or store, **kwargs)
        made.append(runner)
        return runner

    yield make
    for runner in made:
        if runner.alive:
            runner.shutdown(cancel=True, timeout=10)
    for run in store.list_runs():  # no worker outlives its test
        if run["status"] == "running" and run["pid"]:
            try:
                os.killpg(run["pid"], signal.SIGKILL)
            except ProcessLookupError:
                pass


def running_with_events(store: Store, run_id: str, n: int = 1):
    run = store.get_run(run_id)
    return run if run["status"] == "running" and run["pid"] and len(store.events(run_id)) >= n else None


# ---------------------------------------------------------------- the happy path


def test_a_run_goes_through_a_worker_process_to_ok(store, make_runner):
    runner = make_runner()
    t0 = time.monotonic()
    run_id = runner.submit(make_recipe("happy"), job="tests.jobs:quick_job", session="tab-1")
    run = runner.wait(run_id, timeout=DEADLINE)
    print(f"\nquick run: {run['status']} in {time.monotonic() - t0:.2f} s (worker {run['duration']:.2f} s)")

    assert run["status"] == "ok" and run["error"] is None
    assert run["pid"] and run["pid"] != os.getpid()
    assert run["session"] == "tab-1" and run["title"] == "happy"
    assert run["best_ratio"] == pytest.approx(2.0)
    results = runner.store.results(run_id)
    assert results.title == "happy" and results.extra["run_dir"] == run_id
    assert (run["dir"] / "int8.tflite").read_bytes() == fake_tflite("happy", "int8")
    events = runner.store.events(run_id)
    assert [e["variant"] for e in events if e["phase"] == "variant_done"] == ["float32", "int8"]
    assert events[-1]["phase"] == "done" and run["progress"]["phase"] == "done"
    assert "run " + run_id in (run["dir"] / "worker.log").read_text()


def test_two_runs_submitted_together_both_finish_with_their_own_results(store, make_runner):
    runner = make_runner(max_concurrent=2)
    t0 = time.monotonic()
    a = runner.submit(make_recipe("run A", ("float32",)), job="tests.jobs:quick_job")
    b = runner.submit(make_recipe("run B", ("float32", "int8", "dynamic")), job="tests.jobs:quick_job")
    runs = {rid: runner.wait(rid, timeout=DEADLINE) for rid in (a, b)}
    print(
        f"\ntwo runs: {[r['status'] for r in runs.values()]} in {time.monotonic() - t0:.2f} s, "
        f"pids {[r['pid'] for r in runs.values()]}"
    )

    assert [r["status"] for r in runs.values()] == ["ok", "ok"]
    assert runs[a]["pid"] != runs[b]["pid"]
    for run_id, title, variants in ((a, "run A", ["float32"]), (b, "run B", ["float32", "int8", "dynamic"])):
        results = store.results(run_id)
        assert results.title == title and results.extra["run_dir"] == run_id
        assert [r.name for r in results.variants] == variants
        assert sorted(p.name for p in store.run_dir(run_id).glob("*.tflite")) == sorted(f"{v}.tflite" for v in variants)
        for v in variants:
            assert (store.run_dir(run_id) / f"{v}.tflite").read_bytes() == fake_tflite(title, v)
        assert {e["variant"] for e in store.events(run_id) if e["variant"]} == set(variants)


# ---------------------------------------------------------------- failures


def test_a_segfaulting_worker_is_reported_and_the_next_run_still_runs(store, make_runner):
    runner = make_runner()
    t0 = time.monotonic()
    crash = runner.submit(make_recipe("crash"), job="tests.jobs:segfault_job")
    after = runner.submit(make_recipe("after"), job="tests.jobs:quick_job")
    crashed = runner.wait(crash, timeout=DEADLINE)
    t_crash = time.monotonic() - t0
    ok = runner.wait(after, timeout=DEADLINE)
    print(
        f"\nsegfault: {crashed['status']} after {t_crash:.2f} s: {crashed['error']!r}; "
        f"next run {ok['status']} at {time.monotonic() - t0:.2f} s"
    )

    assert crashed["status"] == "failed"
    assert (
        crashed["error"] == "The worker process crashed (signal SIGSEGV) while converting variant 'int8'."
    )
    assert "Segmentation fault" in (crashed["dir"] / "worker.log").read_text()  # faulthandler's stack
    assert ok["status"] == "ok" and store.results(after).title == "after"
    assert runner.alive and store.integrity_check() == "ok"


def test_a_worker_exiting_without_a_result_is_reported(store, make_runner):
    runner = make_runner()
    run = runner.wait(runner.submit(make_recipe("exit"), job="tests.jobs:exit_job"), timeout=DEADLINE)
    print(f"\nexit 3: {run['status']}: {run['error']!r}")
    assert run["status"] == "failed"
    assert run["error"].startswith("The worker process exited with code 3 while preparing the baseline")


def test_a_compression_error_fails_the_run_with_its_sentence(store, make_runner):
    runner = make_runner()
    run = runner.wait(runner.submit(make_recipe("bad data"), job="tests.jobs:error_job"), timeout=DEADLINE)
    print(f"\nCompressionError: {run['status']}: {run['error']!r}")
    assert run["status"] == "failed"
    assert run["error"] == "The dataset file is not a valid .npz archive."


def test_a_bug_fails_the_run_and_keeps_the_traceback_in_the_log(store, make_runner):
    runner = make_runner()
    run = runner.wait(runner.submit(make_recipe("bug"), job="tests.jobs:bug_job"), timeout=DEADLINE)
    print(f"\nbug: {run['status']}: {run['error']!r}")
    assert run["status"] == "failed"
    assert run["error"].startswith("Internal error (KeyError: 'missing_key')") and "worker.log" in run["error"]
    assert "Traceback" in (run["dir"] / "worker.log").read_text()


def test_a_job_that_cannot_be_imported_fails_clearly(store, make_runner):
    runner = make_runner()
    run = runner.wait(runner.submit(make_recipe("nojob"), job="tests.jobs:no_such_job"), timeout=DEADLINE)
    assert run["status"] == "failed"
    assert run["error"] == "The job 'tests.jobs:no_such_job' cannot be loaded: tests.jobs has no function no_such_job."


# ---------------------------------------------------------------- SIGKILL and restarts


def finished_earlier_run(runner: Runner) -> tuple[str, dict[str, bytes], dict]:
    run_id = runner.submit(make_recipe("earlier"), job="tests.jobs:quick_job")
    run = runner.wait(run_id, timeout=DEADLINE)
    assert run["status"] == "ok"
    return run_id, snapshot(run["dir"]), run


def test_sigkill_of_a_worker_mid_run_fails_it_and_harms_nothing_else(store, make_runner):
    runner = make_runner()
    earlier, earlier_files, earlier_row = finished_earlier_run(runner)
    victim = runner.submit(make_recipe("victim"), job="tests.jobs:slow_job")
    run = poll(lambda: running_with_events(store, victim, 50), what="the slow job to write 50 events")
    t_kill = time.monotonic()
    os.kill(run["pid"], signal.SIGKILL)
    killed = runner.wait(victim, timeout=DEADLINE)
    noticed = time.monotonic() - t_kill
    n_events = len(store.events(victim))

    runner.shutdown()  # the server restarts
    store2 = Store(store.root)
    runner2 = make_runner(store2)
    after = store2.get_run(victim)
    print(
        f"\nSIGKILL (runner up): {killed['status']} {noticed:.2f} s after the kill, {n_events} events stored: "
        f"{killed['error']!r}; after restart: {after['status']}, integrity {store2.integrity_check()!r}"
    )

    assert killed["status"] == "failed"
    assert killed["error"].startswith(
        "The worker process was killed (signal SIGKILL) while fine-tuning variant 'float32'"
    )
    assert after["status"] == "failed" and runner2.interrupted_at_start == []
    assert store2.integrity_check() == "ok"
    assert snapshot(store2.run_dir(earlier)) == earlier_files
    assert store2.get_run(earlier) | {"duration": None} == earlier_row | {"duration": None}
    assert store2.results(victim).title == "victim"  # the atomically rewritten file is whole


def test_sigkill_while_the_server_is_down_marks_the_run_interrupted_and_queued_runs_resume(store, make_runner):
    runner = make_runner()
    earlier, earlier_files, earlier_row = finished_earlier_run(runner)
    victim = runner.submit(make_recipe("victim"), job="tests.jobs:slow_job")
    queued = runner.submit(make_recipe("queued"), job="tests.jobs:quick_job")
    run = poll(lambda: running_with_events(store, victim, 50), what="the slow job to write 50 events")
    runner.shutdown()  # the server goes down; its worker keeps running on its own...
    assert store.get_run(victim)["status"] == "running" and store.get_run(queued)["status"] == "queued"
    os.kill(run["pid"], signal.SIGKILL)  # ...until it is killed too
    poll(lambda: pid_gone(run["pid"]), what="the worker to die")

    t_restart = time.monotonic()
    store2 = Store(store.root)
    runner2 = make_runner(store2)
    victim_after = store2.get_run(victim)
    resumed = runner2.wait(queued, timeout=DEADLINE)
    print(
        f"\nSIGKILL (server down): after restart {victim_after['status']}: {victim_after['error']!r}; "
        f"queued run {resumed['status']} {time.monotonic() - t_restart:.2f} s after the restart; "
        f"integrity {store2.integrity_check()!r}"
    )

    assert runner2.interrupted_at_start == [victim]
    assert victim_after["status"] == "interrupted"
    assert "while fine-tuning variant 'float32'" in victim_after["error"]
    assert resumed["status"] == "ok" and store2.results(queued).title == "queued"
    assert store2.integrity_check() == "ok"
    assert snapshot(store2.run_dir(earlier)) == earlier_files
    assert store2.get_run(earlier) | {"duration": None} == earlier_row | {"duration": None}
    json.loads((store2.run_dir(victim) / "results.json").read_text())  # whole, not half written


def test_a_worker_outlives_its_runner_and_a_new_runner_can_cancel_it(store, make_runner):
    runner = make_runner()
    run_id = runner.submit(make_recipe("detached"), job="tests.jobs:sleepy_job")
    poll(lambda: running_with_events(store, run_id), what="the job to start")
    runner.shutdown()
    runner2 = make_runner(Store(store.root))
    assert runner2.interrupted_at_start == []  # its worker is alive: left alone
    assert runner2.cancel(run_id) == "running"
    run = runner2.wait(run_id, timeout=DEADLINE)
    assert run["status"] == "cancelled"


# ---------------------------------------------------------------- cancel


def test_cancel_of_a_running_run_stops_its_worker(store, make_runner):
    runner = make_runner()
    run_id = runner.submit(make_recipe("sleepy"), job="tests.jobs:sleepy_job")
    poll(lambda: running_with_events(store, run_id), what="the job to start")
    t0 = time.monotonic()
    assert runner.cancel(run_id) == "running"
    run = runner.wait(run_id, timeout=DEADLINE)
    took = time.monotonic() - t0
    print(f"\ncancel running: {run['status']} {took:.2f} s after cancel(): {run['error']!r}")
    assert run["status"] == "cancelled" and run["cancel_requested"]
    assert run["error"] == "Cancelled while fine-tuning variant 'float32'."
    assert took < 5
    poll(lambda: pid_gone(run["pid"]), what="the worker to exit")


def test_cancel_of_a_queued_run_is_immediate_and_it_never_starts(store, make_runner):
    runner = make_runner()
    first = runner.submit(make_recipe("first"), job="tests.jobs:sleepy_job")
    second = runner.submit(make_recipe("second"), job="tests.jobs:quick_job")
    poll(lambda: running_with_events(store, first), what="the first job to start")
    assert store.get_run(second)["status"] == "queued"  # one at a time
    assert runner.cancel(second) == "cancelled"
    assert store.get_run(second)["status"] == "cancelled"
    runner.cancel(first)
    assert runner.wait(first, timeout=DEADLINE)["status"] == "cancelled"
    run = store.get_run(second)
    assert run["pid"] is None and run["started"] is None
    assert store.results(second) is None and store.events(second) == []
    with pytest.raises(CompressionError):
        runner.cancel("20990101-000000-000-000000")


def test_a_worker_ignoring_cancel_is_terminated(store, make_runner):
    runner = make_runner(cancel_grace=0.5, kill_grace=2.0)
    run_id = runner.submit(make_recipe("stubborn"), job="tests.jobs:stubborn_job")
    poll(lambda: running_with_events(store, run_id), what="the job to start")
    t0 = time.monotonic()
    runner.cancel(run_id)
    run = runner.wait(run_id, timeout=DEADLINE)
    print(f"\nstubborn cancel: {run['status']} {time.monotonic() - t0:.2f} s after cancel(): {run['error']!r}")
    assert run["status"] == "cancelled"
    assert run["error"] == (
        "Cancelled while converting variant 'float32'; "
        "the worker did not stop within 0.5 s and was ended with SIGTERM."
    )


# ---------------------------------------------------------------- export / import of a real run


def test_export_delete_import_restores_a_run_byte_for_byte(store, make_runner, tmp_path):
    runner = make_runner()
    run_id = runner.submit(make_recipe("exported"), job="tests.jobs:quick_job", session="s")
    row = runner.wait(run_id, timeout=DEADLINE)
    files, events = snapshot(row["dir"]), store.events(run_id)
    assert {"recipe.json", "results.json", "float32.tflite", "int8.tflite", "worker.log"} <= set(files)

    data = store.export_run(run_id)
    store.delete_run(run_id)
    assert not row["dir"].exists() and store.list_runs() == []
    assert store.import_run(data) == run_id
    print(f"\nexport: {len(data)} bytes zip of {len(files)} files, {len(events)} events; import restored {run_id}")

    assert snapshot(store.run_dir(run_id)) == files
    assert store.get_run(run_id) | {"duration": None} == row | {"duration": None}
    assert store.get_run(run_id)["duration"] == pytest.approx(row["duration"])
    assert [{k: v for k, v in e.items() if k != "id"} for e in store.events(run_id)] == [
        {k: v for k, v in e.items() if k != "id"} for e in events
    ]
    assert store.integrity_check() == "ok"


# ---------------------------------------------------------------- the app's singleton


def test_get_runner_is_one_runner_per_data_directory(tmp_path):
    got = []
    threads = [threading.Thread(target=lambda: got.append(get_runner(tmp_path / "app"))) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    try:
        assert len({id(r) for r in got}) == 1 and got[0].max_concurrent == 1
        assert get_runner(str(tmp_path / "app")) is got[0]
        assert get_runner(tmp_path / "other") is not got[0]
    finally:
        got[0].shutdown(cancel=True)
        get_runner(tmp_path / "other").shutdown(cancel=True)
    assert get_runner(tmp_path / "app") is not got[0]  # a stopped runner is replaced
    get_runner(tmp_path / "app").shutdown(cancel=True)


# ---------------------------------------------------------------- the real recipe engine


@pytest.mark.slow
def test_a_real_tiny_recipe_runs_through_the_runner(store, make_runner):
    recipe = Recipe.from_dict(
        {
            "dataset": {"name": "digits"},
            "model": {"name": "seed_cnn"},
            "baseline": {"epochs": 1},
            "variants": [{"name": "float32"}, {"name": "int8", "quantization": "int8"}],
            "evaluation": {"latency_runs": 20},
        }
    )
    runner = make_runner()
    t0 = time.monotonic()
    run_id = runner.submit(recipe)
    run = runner.wait(run_id, timeout=300)
    print(
        f"\nreal recipe: {run['status']} in {time.monotonic() - t0:.1f} s, best ratio {run['best_ratio']}, "
        f"{len(store.events(run_id))} events"
    )

    assert run["status"] == "ok", run["error"]
    assert run["job"] == "compression.run.recipe:run_recipe"
    results = store.results(run_id)
    assert [v.name for v in results.variants] == ["float32", "int8"]
    assert all(v.status == "ok" for v in results.variants)
    assert (run["dir"] / "float32.tflite").is_file() and (run["dir"] / "int8.tflite").is_file()
    assert (run["dir"] / "baseline.keras").is_file()
    assert run["best_ratio"] >= 0.99  # at worst the float32 variant itself
    phases = {e["phase"] for e in store.events(run_id)}
    assert {"baseline", "variant_done", "done"} <= phases
