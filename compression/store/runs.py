"""Run records and their progress events: create, read, list (by session, by kind), status moves, cancel flags."""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import sqlite3
import time
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import Any

from .._io import atomic_write_text, json_default
from ..config import Recipe
from ..errors import CompressionError
from ..results import FINAL_STATUSES, RunKind, RunResults, RunStatus, best_ratio
from ..run_folder import RunFolder
from .schema import Database, kind_of

__all__ = ["DEFAULT_JOB", "STATUSES", "RunRecords"]

DEFAULT_JOB = "compression.run.recipe:run_recipe"
STATUSES = tuple(s.value for s in RunStatus)
MAX_BATCH_EVENTS = 2_000  # batch-level events kept per run before thinning

RUN_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$")
_SETTINGS_FILE = re.compile(r"^[a-z][a-z0-9_]*\.json$")
_JOB = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")


def _dumps(value: Any) -> str:
    return json.dumps(value, default=json_default)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _new_run_id() -> str:
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{stamp}-{int(now * 1000) % 1000:03d}-{secrets.token_hex(3)}"



class RunRecords(Database):
    """Runs (rows + folders) and their progress events; mixed into :class:`~compression.store.Store`."""

    runs_root: Path

    # ------------------------------------------------------------ runs

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run (``root/runs/<run_id>``).

        Raises:
            CompressionError: ``run_id`` is not a run id.
        """
        if not isinstance(run_id, str) or not RUN_ID.match(run_id):
            raise CompressionError(f"{run_id!r} is not a run id.")
        return self.runs_root / run_id

    def folder(self, run_id: str) -> RunFolder:
        """The :class:`~compression.run_folder.RunFolder` of a run (its files' paths).

        Raises:
            CompressionError: ``run_id`` is not a run id.
        """
        return RunFolder(self.run_dir(run_id))

    def create_run(
        self,
        recipe: Recipe,
        job: str = DEFAULT_JOB,
        session: str | None = None,
        *,
        running: bool = False,
        files: dict[str, str] | None = None,
        kind: RunKind | str | None = None,
    ) -> str:
        """Queue a new run: write its recipe.json and insert its row (status "queued").

        Args:
            recipe: the recipe to run (a :class:`Recipe`, or a dict for ``Recipe.from_dict``).
            job: ``"module:function"`` called as ``fn(recipe, out_dir, progress=..., cancel=...)``.
            session: an opaque tag (the browser session) to list one's own runs.
            running: create it "running" in this process instead of queued, for a
                caller that runs the job itself (the CLI), so that no runner claims it.
            files: extra text files (name -> text) written into the run folder before the
                run is queued: a job's own settings (the search's ``search.json``).
            kind: what the run is for (:class:`~compression.results.RunKind`); by default
                inferred from the job (sensitivity, search), else "recipe".

        Returns:
            The run id: sortable by creation time.

        Raises:
            CompressionError: invalid recipe or job string.

        Usage::

            run_id = store.create_run(Recipe.experiment_e(), session="tab-1")
        """
        if not isinstance(recipe, Recipe):
            recipe = Recipe.from_dict(recipe)
        if not isinstance(job, str) or not _JOB.match(job):
            raise CompressionError(f"job must look like 'package.module:function'. Received: {job!r}")
        try:
            kind = kind_of(job) if kind is None else RunKind(kind)
        except ValueError:
            raise CompressionError(
                f"kind must be one of {', '.join(k.value for k in RunKind)}. Received: {kind!r}") from None
        reserved = (RunFolder.RECIPE, RunFolder.RESULTS)
        bad = [name for name in files or {} if not _SETTINGS_FILE.match(name) or name in reserved]
        if bad:
            raise CompressionError(f"A run's extra files must have plain .json names. Received: {bad[0]!r}")
        run_id = _new_run_id()
        folder = self.folder(run_id)
        folder.path.mkdir(parents=True)
        folder.write_recipe_text(recipe.to_json())
        for name, text in (files or {}).items():
            atomic_write_text(folder.file(name), text)
        model = recipe.model.name or Path(recipe.model.path or "").name
        now = time.time()
        status, started, pid = (RunStatus.RUNNING, now, os.getpid()) if running else (RunStatus.QUEUED, None, None)
        with self._write() as conn:
            conn.execute(
                "INSERT INTO runs (id, status, job, title, dataset, model, n_variants, created, session, started,"
                " pid, kind) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (run_id, status.value, job, recipe.title, recipe.dataset.name, model, len(recipe.variants), now,
                 session, started, pid, kind.value),
            )
        return run_id

    def recipe(self, run_id: str) -> Recipe:
        """The run's recipe, read back from its recipe.json."""
        text = self.folder(run_id).read_recipe_text()
        if text is None:
            raise CompressionError(f"Run {run_id} has no recipe.json.")
        return Recipe.from_json(text)

    def _row(self, conn: sqlite3.Connection, run_id: str) -> sqlite3.Row:
        row = conn.execute("SELECT * FROM runs WHERE id = ?", (run_id,)).fetchone()
        if row is None:
            raise CompressionError(f"There is no run {run_id!r} in {self.root}.")
        return row

    def _to_dict(self, row: sqlite3.Row) -> dict[str, Any]:
        started, finished = row["started"], row["finished"]
        if started is None:
            duration = None
        else:
            duration = (finished if finished is not None else time.time()) - started
        progress = json.loads(row["progress"]) if row["progress"] else None
        return {
            "id": row["id"],
            "status": RunStatus(row["status"]),
            "kind": RunKind(row["kind"]),
            "created": _iso(row["created"]),
            "started": _iso(started),
            "finished": _iso(finished),
            "duration": duration,
            "title": row["title"],
            "dataset": row["dataset"],
            "model": row["model"],
            "n_variants": row["n_variants"],
            "error": row["error"],
            "session": row["session"],
            "pid": row["pid"],
            "progress": progress,
            "dir": self.runs_root / row["id"],
            "job": row["job"],
            "best_ratio": row["best_ratio"],
            "cancel_requested": row["cancel_requested"] is not None,
        }

    def get_run(self, run_id: str) -> dict[str, Any]:
        """One run as a dict.

        Returns:
            ``{id, status, created, started, finished (ISO 8601 local time or None),
            duration (seconds, running time so far while running), title, dataset,
            model, n_variants, error, session, pid, progress (last event dict or
            None), dir (Path), job, best_ratio, cancel_requested, kind}``; ``status``
            is a :class:`RunStatus`, ``kind`` a :class:`RunKind` (both str enums).

        Raises:
            CompressionError: no such run.
        """
        self.run_dir(run_id)
        with self._read() as conn:
            return self._to_dict(self._row(conn, run_id))

    def list_runs(
        self, session: str | None = None, kind: RunKind | str | Iterable[RunKind | str] | None = None
    ) -> list[dict[str, Any]]:
        """All runs (or one session's, or of some kinds), newest first, as :meth:`get_run` dicts.

        Args:
            session: only this session's runs.
            kind: only runs of this kind, or of one of these kinds.

        Usage::

            store.list_runs(session="tab-1", kind=[RunKind.RECIPE, RunKind.SEARCH])
        """
        where, args = [], []
        if session is not None:
            where.append("session = ?")
            args.append(session)
        if kind is not None:
            kinds = [kind] if isinstance(kind, str) else list(kind)
            where.append(f"kind IN ({', '.join('?' for _ in kinds)})")
            args += [RunKind(k).value for k in kinds]
        sql = "SELECT * FROM runs" + (" WHERE " + " AND ".join(where) if where else "")
        with self._read() as conn:
            rows = conn.execute(sql + " ORDER BY created DESC, id DESC", args).fetchall()
        return [self._to_dict(r) for r in rows]

    def results(self, run_id: str) -> RunResults | None:
        """The run's results.json as :class:`~compression.results.RunResults`, or None while it has none.

        Raises:
            CompressionError: the file exists but is not valid JSON.
        """
        return self.folder(run_id).read_results()

    def set_status(
        self,
        run_id: str,
        status: str,
        *,
        error: str | None = None,
        expected: Iterable[str] | None = None,
        pid: int | None = None,
    ) -> bool:
        """Move a run to ``status``; final statuses also stamp ``finished`` and compute ``best_ratio``.

        Args:
            run_id: the run.
            status: one of :data:`STATUSES`.
            error: the sentence shown for a failed/cancelled/interrupted run.
            expected: only change the run if its current status is one of these.
            pid: for "running": the process running the job, by default this one,
                so that :meth:`mark_interrupted` can tell when it is gone.

        Returns:
            True if the row changed (False when ``expected`` did not match).
        """
        try:
            status = RunStatus(status)
        except ValueError:
            raise ValueError(f"status must be one of {STATUSES}. Received: {status!r}") from None
        ratio = best_ratio(self._results_quietly(run_id)) if status in FINAL_STATUSES else None
        now = time.time()
        with self._write() as conn:
            current = self._row(conn, run_id)["status"]
            if expected is not None and current not in set(expected):
                return False
            if status in FINAL_STATUSES:
                conn.execute(
                    "UPDATE runs SET status = ?, error = ?, finished = ?, best_ratio = ?,"
                    " started = COALESCE(started, ?) WHERE id = ?",
                    (status.value, error, now, ratio, now, run_id),
                )
            elif status is RunStatus.RUNNING:
                conn.execute(
                    "UPDATE runs SET status = ?, error = ?, started = COALESCE(started, ?), pid = ? WHERE id = ?",
                    (status.value, error, now, os.getpid() if pid is None else pid, run_id),
                )
            else:
                conn.execute("UPDATE runs SET status = ?, error = ? WHERE id = ?", (status.value, error, run_id))
        return True

    def _results_quietly(self, run_id: str) -> RunResults | None:
        try:
            return self.results(run_id)
        except CompressionError:
            return None

    def set_pid(self, run_id: str, pid: int | None) -> None:
        """Record the worker process of a running run."""
        with self._write() as conn:
            conn.execute("UPDATE runs SET pid = ? WHERE id = ?", (pid, run_id))

    def delete_run(self, run_id: str) -> None:
        """Delete a run: its row, its events and its folder.

        Raises:
            CompressionError: no such run, or it is running (cancel it first).
        """
        folder = self.run_dir(run_id)
        trash = self.runs_root / f".trash-{run_id}-{secrets.token_hex(3)}"
        with self._write() as conn:
            status = RunStatus(self._row(conn, run_id)["status"])
            if status is RunStatus.RUNNING:
                raise CompressionError(f"Run {run_id} is still running; cancel it before deleting it.")
            conn.execute("DELETE FROM events WHERE run_id = ?", (run_id,))
            conn.execute("DELETE FROM runs WHERE id = ?", (run_id,))
            # Rename inside the transaction: if the rename fails, the row stays.
            if folder.exists():
                os.replace(folder, trash)
        shutil.rmtree(trash, ignore_errors=True)

    # ------------------------------------------------------------ progress events

    def add_event(self, run_id: str, progress: dict[str, Any]) -> int:
        """Store one progress event (a ``Progress.to_dict()``) and make it the run's current progress.

        Batch-level events (``batch`` set) are thinned once a run holds
        :data:`MAX_BATCH_EVENTS` of them: every other one is dropped, so the
        stored curve keeps its whole time span at half the resolution.

        Returns:
            The event id (for :meth:`events` ``since_id``).

        Raises:
            CompressionError: no such run.
        """
        if hasattr(progress, "to_dict"):
            progress = progress.to_dict()
        text = _dumps(progress)
        batch_level = 1 if progress.get("batch") is not None else 0
        with self._write() as conn:
            if conn.execute("UPDATE runs SET progress = ? WHERE id = ?", (text, run_id)).rowcount == 0:
                raise CompressionError(f"There is no run {run_id!r} in {self.root}.")
            cur = conn.execute(
                "INSERT INTO events (run_id, time, batch_level, data) VALUES (?, ?, ?, ?)",
                (run_id, time.time(), batch_level, text),
            )
            event_id = cur.lastrowid
            if batch_level:
                count = conn.execute(
                    "SELECT COUNT(*) FROM events WHERE run_id = ? AND batch_level = 1", (run_id,)
                ).fetchone()[0]
                if count > MAX_BATCH_EVENTS:
                    conn.execute(
                        "DELETE FROM events WHERE id IN (SELECT id FROM (SELECT id, ROW_NUMBER() OVER"
                        " (ORDER BY id) AS n FROM events WHERE run_id = ? AND batch_level = 1) WHERE n % 2 = 0)",
                        (run_id,),
                    )
        return event_id

    def events(self, run_id: str, since_id: int = 0) -> list[dict[str, Any]]:
        """Progress events of a run with id > ``since_id``, oldest first.

        Each is the ``Progress.to_dict()`` plus ``id`` and ``time`` (epoch seconds).

        Usage::

            new = store.events(run_id, since_id=last_seen)
        """
        with self._read() as conn:
            rows = conn.execute(
                "SELECT id, time, data FROM events WHERE run_id = ? AND id > ? ORDER BY id", (run_id, since_id)
            ).fetchall()
        return [{**json.loads(r["data"]), "id": r["id"], "time": r["time"]} for r in rows]

    # ------------------------------------------------------------ runner support

    def request_cancel(self, run_id: str) -> str:
        """Cancel a run: a queued one is cancelled at once, a running one gets its cancel flag set.

        Returns:
            The run's status after the call ("cancelled", "running" or its final status).

        Raises:
            CompressionError: no such run.
        """
        now = time.time()
        with self._write() as conn:
            status = RunStatus(self._row(conn, run_id)["status"])
            if status is RunStatus.QUEUED:
                conn.execute(
                    "UPDATE runs SET status = 'cancelled', finished = ?, cancel_requested = ?,"
                    " error = 'Cancelled before it started.' WHERE id = ?",
                    (now, now, run_id),
                )
                return RunStatus.CANCELLED
            if status is RunStatus.RUNNING:
                conn.execute(
                    "UPDATE runs SET cancel_requested = COALESCE(cancel_requested, ?) WHERE id = ?", (now, run_id)
                )
            return status

    def cancel_requested(self, run_id: str) -> bool:
        """True once :meth:`request_cancel` was called for the run (cheap: one indexed read)."""
        with self._read() as conn:
            row = conn.execute("SELECT cancel_requested FROM runs WHERE id = ?", (run_id,)).fetchone()
        return row is None or row[0] is not None

    def claim_next(self, max_running: int) -> str | None:
        """Atomically move the oldest queued run to "running" if fewer than ``max_running`` runs are running.

        The limit counts every running run in the store, whichever process started it.

        Returns:
            The claimed run id, or None.
        """
        with self._read() as conn:
            if conn.execute("SELECT 1 FROM runs WHERE status = 'queued' LIMIT 1").fetchone() is None:
                return None
        now = time.time()
        with self._write() as conn:
            running = conn.execute("SELECT COUNT(*) FROM runs WHERE status = 'running'").fetchone()[0]
            if running >= max_running:
                return None
            row = conn.execute("SELECT id FROM runs WHERE status = 'queued' ORDER BY created, id LIMIT 1").fetchone()
            if row is None:
                return None
            conn.execute(
                "UPDATE runs SET status = 'running', started = ?, pid = NULL, error = NULL WHERE id = ?",
                (now, row["id"]),
            )
            return row["id"]

    def running_runs(self) -> list[dict[str, Any]]:
        """Runs in status "running" (with the raw ``cancel_requested`` time)."""
        with self._read() as conn:
            rows = conn.execute("SELECT * FROM runs WHERE status = 'running'").fetchall()
        out = []
        for r in rows:
            d = self._to_dict(r)
            d["cancel_requested_at"] = r["cancel_requested"]
            d["started_at"] = r["started"]
            out.append(d)
        return out
