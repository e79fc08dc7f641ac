"""The warm spare is not started while a run of another process is going in the store (it would compete for CPU)."""

from __future__ import annotations

from compression import _locks
from compression.results import RunStatus
from compression.run.runner import Runner
from compression.store import Store
from tests.test_runner import DEADLINE, make_recipe, poll


def test_no_spare_while_another_process_runs_a_run_then_one_after(tmp_path):
    store = Store(tmp_path / "lab")
    run_id = store.create_run(make_recipe("elsewhere"))  # as a CLI run does: claimed, its worker lock held here
    assert store.set_status(run_id, RunStatus.RUNNING, expected=(RunStatus.QUEUED,))
    lock = _locks.acquire(store.folder(run_id).lock_file, timeout=5)
    runner = Runner(store, warm=True, poll_interval=0.05, idle_interval=0.05, orphan_check_interval=0.2)
    try:
        assert store.get_run(run_id)["status"] == "running"  # its lock held: not taken for an interrupted run
        runner._keep_spare()  # what every supervisor tick does (a spare would start at once without the check)
        assert runner._spare is None
        store.set_status(run_id, RunStatus.OK, expected=(RunStatus.RUNNING,))
        _locks.release(lock)
        lock = None
        poll(lambda: runner._spare is not None, DEADLINE, "a spare once the store is idle")
    finally:
        if lock is not None:
            _locks.release(lock)
        runner.shutdown(cancel=True, timeout=10)
