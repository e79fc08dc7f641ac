"""Process liveness: whether a running run still has a worker, and marking the ones whose worker died.

The runner takes an exclusive ``flock`` on the run's ``worker.lock`` (:mod:`compression._locks`)
before it starts the worker, which inherits it; the kernel drops it when the process dies,
however it dies, so a free lock means a dead worker (robust to pid reuse).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterable
from typing import Any

from .. import _locks
from ..results import RunStatus
from .runs import RunRecords

__all__ = ["CLAIM_GRACE_S", "Liveness", "describe_position"]

CLAIM_GRACE_S = 60.0  # a claimed run may have no worker pid yet for this long


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


# What each progress phase means to a user (the phase names are internal).
_PHASE_WORDS = {
    "data": "loading the data", "baseline": "preparing the baseline", "variant_start": "starting",
    "fine_tune": "fine-tuning", "convert": "converting", "measure": "measuring", "sensitivity": "measuring",
    "trial_start": "starting",
}
_AFTER_PHASES = {"baseline_done": "after the baseline was ready", "done": "after its last step"}


def describe_position(progress: dict | None) -> str:
    """'while converting variant 'int8'' (or 'after variant 'int8' finished') from the last progress event."""
    if not progress:
        return "before it reported any progress"
    variant, phase = progress.get("variant") or "", progress.get("phase") or ""
    if phase in ("variant_done", "trial_done"):
        return f"after variant {variant!r} finished" if variant else "between two variants"
    if phase in _AFTER_PHASES:
        return _AFTER_PHASES[phase]
    doing = _PHASE_WORDS.get(phase, "running")
    if variant:
        return f"while {doing} variant {variant!r}"
    if phase:
        return f"while {doing}"
    return "before it reported any progress"



class Liveness(RunRecords):
    """Worker liveness of running runs; mixed into :class:`~compression.store.Store`."""

    def worker_lock_held(self, run_id: str) -> bool:
        """True while a process started by a runner holds the run's worker lock."""
        return bool(_locks.is_held(self.folder(run_id).lock_file))

    def worker_alive(self, run: dict[str, Any]) -> bool:
        """Whether the worker of a running run (a :meth:`running_runs` dict) is still alive.

        The runner takes an exclusive ``flock`` on ``worker.lock`` before it
        starts the worker, which inherits it; the kernel drops it when the
        process dies, however it dies, so a free lock means a dead worker
        (robust to pid reuse). Without a lock file, fall back to the pid.
        """
        held = _locks.is_held(self.folder(run["id"]).lock_file)
        if held:
            return True
        if run["pid"] is None:
            # Claimed but not started yet (or its starter died): give the starter time.
            started = run.get("started_at") or 0
            return time.time() - started < CLAIM_GRACE_S
        if held is False:
            return False
        return _pid_alive(run["pid"])

    def mark_interrupted(self, exclude: Iterable[str] = ()) -> list[str]:
        """Mark running runs whose worker is dead as "interrupted" (or "cancelled" if a cancel was asked).

        Queued runs stay queued: the next runner picks them up.

        Args:
            exclude: run ids to leave alone (the caller's own children, which it reaps itself).

        Returns:
            The ids that were marked.
        """
        skip = set(exclude)
        marked = []
        for run in self.running_runs():
            if run["id"] in skip or self.worker_alive(run):
                continue
            where = describe_position(run["progress"])
            pid = f" (pid {run['pid']})" if run["pid"] else ""
            if run["cancel_requested_at"] is not None:
                status, error = RunStatus.CANCELLED, f"Cancelled; the worker process{pid} stopped {where}."
            else:
                status = RunStatus.INTERRUPTED
                error = (
                    f"The worker process{pid} stopped without reporting a result {where}; "
                    "the server was restarted or the process was killed."
                )
            if self.set_status(run["id"], status, error=error, expected=(RunStatus.RUNNING,)):
                marked.append(run["id"])
        return marked
