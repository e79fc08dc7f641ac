"""The warm worker: a spare process (TensorFlow preloaded) takes the next run; one run per process still."""

from __future__ import annotations

import pytest

from compression.run.runner import Runner
from compression.store import Store
from tests.test_runner import DEADLINE, make_recipe, pid_gone, poll

SPARE_DEADLINE = 600.0  # a spare imports TensorFlow and warms up on a shared machine (load ~15 on 2 cores)


@pytest.fixture
def runner(tmp_path):
    runner = Runner(Store(tmp_path / "lab"), warm=True, poll_interval=0.05, idle_interval=0.1,
                    orphan_check_interval=0.5)
    yield runner
    runner.shutdown(cancel=True, timeout=10)


def spare_pid(runner: Runner, other_than: int | None = None) -> int:
    def ready():
        spare = runner._spare
        return spare is not None and spare.process.pid != other_than and spare.process.pid
    return poll(ready, SPARE_DEADLINE, "a spare worker")


def test_the_spare_takes_a_run_that_segfaults_and_the_next_spare_runs_the_next_one(runner):
    first = spare_pid(runner)
    crashed = runner.submit(make_recipe("crash"), job="tests.jobs:segfault_job")
    run = runner.wait(crashed, timeout=SPARE_DEADLINE)
    assert run["pid"] == first  # handed to the waiting spare, not a cold start
    assert run["status"] == "failed" and "SIGSEGV" in run["error"] and "int8" in run["error"]
    assert "Segmentation fault" in (run["dir"] / "worker.log").read_text()  # the run's log, not the spare's

    second = spare_pid(runner, other_than=first)  # a fresh process: nothing of the crashed run survives
    fine = runner.submit(make_recipe("fine"), job="tests.jobs:quick_job")
    run = runner.wait(fine, timeout=DEADLINE)
    assert run["status"] == "ok" and run["error"] is None and run["pid"] == second
    assert pid_gone(first)


def test_shutdown_ends_the_idle_spare(runner):
    pid = spare_pid(runner)
    runner.shutdown()
    poll(lambda: pid_gone(pid), DEADLINE, "the spare to exit")
