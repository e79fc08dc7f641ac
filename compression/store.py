"""The experiment store: one SQLite database plus one folder per run.

Layout under the data directory (``COMPRESSION_LAB_DATA``, else
``~/.compression-lab``)::

    lab.sqlite3            runs, their progress events, schema version (PRAGMA user_version)
    runs/<run_id>/         recipe.json, results.json, <variant>.tflite, baseline.keras, worker.log

SQLite runs in WAL mode with a busy timeout, and every write is one short
``BEGIN IMMEDIATE`` transaction on a connection opened for that call, so the
server's threads, worker processes and the CLI can share one store. Files are
written to a temporary name in the same folder, fsynced and renamed
(:func:`atomic_write_bytes`), so a crash never leaves a half file that looks
whole.

Usage::

    store = Store()                      # or Store("/data/lab")
    run_id = store.create_run(Recipe.experiment_e())
    store.get_run(run_id)["status"]      # "queued"
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import math
import os
import re
import secrets
import shutil
import sqlite3
import stat
import time
import zipfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path, PurePosixPath
from typing import Any

from ._io import atomic_write_bytes, atomic_write_text
from .config import Recipe
from .errors import CompressionError
from .results import ACCURACY_TOLERANCE, FINAL_STATUSES, RunFolder, RunKind, RunResults, RunStatus, best_ratio

__all__ = [
    "ACCURACY_TOLERANCE",
    "KIND_OF_JOB",
    "RunKind",
    "RunStatus",
    "kind_of",
    "DATA_ENV",
    "DEFAULT_JOB",
    "FINAL_STATUSES",
    "STATUSES",
    "Store",
    "atomic_write_bytes",
    "atomic_write_text",
    "best_ratio",
    "default_root",
    "describe_position",
]

DATA_ENV = "COMPRESSION_LAB_DATA"
DEFAULT_JOB = "compression.recipes:run_recipe"
DB_NAME = "lab.sqlite3"
LOCK_NAME = RunFolder.LOCK
LOG_NAME = RunFolder.LOG

STATUSES = tuple(s.value for s in RunStatus)
BUSY_TIMEOUT_MS = 30_000
MAX_BATCH_EVENTS = 2_000  # batch-level events kept per run before thinning
CLAIM_GRACE_S = 60.0  # a claimed run may have no worker pid yet for this long
MAX_IMPORT_BYTES = 1 << 30
MAX_IMPORT_MEMBERS = 10_000
EXPORT_FORMAT = "compression-lab-run"
EXPORT_VERSION = 1

_RUN_ID = re.compile(r"^[0-9A-Za-z][0-9A-Za-z_-]{0,63}$")
_SETTINGS_FILE = re.compile(r"^[a-z][a-z0-9_]*\.json$")
_JOB = re.compile(r"^[A-Za-z_][\w.]*:[A-Za-z_]\w*$")
_SKIP_IN_EXPORT = {LOCK_NAME}  # plus hidden names: temporaries of atomic writes (".x.tmp")


def default_root() -> Path:
    """The data directory: ``$COMPRESSION_LAB_DATA``, else ``~/.compression-lab``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".compression-lab"


# ---------------------------------------------------------------- atomic files
# One implementation for the whole engine (compression._io); re-exported here because
# everything that writes into a run folder should use it.


def _fsync_dir(path: Path) -> None:
    """Make a rename in ``path`` durable (best effort)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _json_default(value: Any) -> Any:
    """Make numpy scalars/arrays, paths and enums JSON-serialisable."""
    if hasattr(value, "tolist"):
        return value.tolist()
    if hasattr(value, "item"):
        return value.item()
    if hasattr(value, "value") and isinstance(value.value, (str, int, float)):
        return value.value
    return str(value)


def _dumps(value: Any) -> str:
    return json.dumps(value, default=_json_default)


# ---------------------------------------------------------------- schema


def _migration_1(conn: sqlite3.Connection, root: Path) -> None:
    """Runs and their progress events."""
    conn.execute(
        """CREATE TABLE runs (
            id TEXT PRIMARY KEY,
            status TEXT NOT NULL,
            job TEXT NOT NULL,
            title TEXT NOT NULL DEFAULT '',
            dataset TEXT,
            model TEXT,
            n_variants INTEGER,
            created REAL NOT NULL,
            started REAL,
            finished REAL,
            pid INTEGER,
            error TEXT,
            progress TEXT,
            cancel_requested REAL
        )"""
    )
    conn.execute(
        """CREATE TABLE events (
            id INTEGER PRIMARY KEY AUTOINCREMENT,
            run_id TEXT NOT NULL,
            time REAL NOT NULL,
            batch_level INTEGER NOT NULL DEFAULT 0,
            data TEXT NOT NULL
        )"""
    )
    conn.execute("CREATE INDEX events_by_run ON events(run_id, batch_level, id)")
    conn.execute("CREATE INDEX runs_by_status ON runs(status)")


def _migration_2(conn: sqlite3.Connection, root: Path) -> None:
    """History page: the browser session that made a run and its best ratio, backfilled."""
    conn.execute("ALTER TABLE runs ADD COLUMN session TEXT")
    conn.execute("ALTER TABLE runs ADD COLUMN best_ratio REAL")
    conn.execute("CREATE INDEX runs_by_created ON runs(created)")
    finished = conn.execute(
        "SELECT id FROM runs WHERE status IN ('ok', 'failed', 'cancelled', 'interrupted')"
    ).fetchall()
    for (run_id,) in finished:
        try:
            results = RunFolder(root / "runs" / run_id).read_results()
        except (OSError, CompressionError):
            continue
        conn.execute("UPDATE runs SET best_ratio = ? WHERE id = ?", (best_ratio(results), run_id))


# The jobs that make runs of a kind other than "recipe" (a run's kind is inferred from its job).
KIND_OF_JOB = {
    "compression.sensitivity:run_sensitivity": RunKind.SENSITIVITY,
    "compression.search:run_search": RunKind.SEARCH,
}
_LEGACY_BASELINE_PREFIX = "Baseline:"  # the "train now" runs' title before runs had a kind


def kind_of(job: str | None, title: str | None = None) -> RunKind:
    """The kind of a run recorded without one: from its job, else a legacy "Baseline:" title, else recipe."""
    if job in KIND_OF_JOB:
        return KIND_OF_JOB[job]
    if (title or "").startswith(_LEGACY_BASELINE_PREFIX):
        return RunKind.BASELINE
    return RunKind.RECIPE


def _migration_3(conn: sqlite3.Connection, root: Path) -> None:
    """A run's kind (recipe / baseline / sensitivity / search), backfilled from its job and legacy title."""
    conn.execute(f"ALTER TABLE runs ADD COLUMN kind TEXT NOT NULL DEFAULT '{RunKind.RECIPE.value}'")
    conn.execute("CREATE INDEX runs_by_kind ON runs(kind, created)")
    for run_id, job, title in conn.execute("SELECT id, job, title FROM runs").fetchall():
        kind = kind_of(job, title)
        if kind is not RunKind.RECIPE:
            conn.execute("UPDATE runs SET kind = ? WHERE id = ?", (kind.value, run_id))


# Applied in order; the database's PRAGMA user_version counts how many ran.
# Never edit a released migration: append a new one.
MIGRATIONS: tuple[Callable[[sqlite3.Connection, Path], None], ...] = (_migration_1, _migration_2, _migration_3)
SCHEMA_VERSION = len(MIGRATIONS)

_COLUMNS = (
    "id",
    "status",
    "job",
    "title",
    "dataset",
    "model",
    "n_variants",
    "created",
    "started",
    "finished",
    "pid",
    "error",
    "progress",
    "cancel_requested",
    "session",
    "best_ratio",
    "kind",
)


def _iso(ts: float | None) -> str | None:
    return None if ts is None else datetime.fromtimestamp(ts).astimezone().isoformat(timespec="seconds")


def _new_run_id() -> str:
    now = time.time()
    stamp = time.strftime("%Y%m%d-%H%M%S", time.localtime(now))
    return f"{stamp}-{int(now * 1000) % 1000:03d}-{secrets.token_hex(3)}"


def _lock_is_held(path: Path) -> bool | None:
    """True if a live process holds the worker lock on ``path``; None if there is no lock file."""
    try:
        fd = os.open(path, os.O_RDWR)
    except FileNotFoundError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as exc:
        if exc.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return True
        raise
    else:
        fcntl.flock(fd, fcntl.LOCK_UN)
        return False
    finally:
        os.close(fd)


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


# ---------------------------------------------------------------- the store


class Store:
    """SQLite database + run folders under one data directory.

    Safe to share between threads (each call opens its own connection) and
    between processes (WAL, busy timeout, short immediate transactions).

    Args:
        root: the data directory; None means ``$COMPRESSION_LAB_DATA`` or
            ``~/.compression-lab``. Created if missing.

    Raises:
        CompressionError: the directory cannot be created, or the database was
            written by a newer version of Compression Lab.
    """

    def __init__(self, root: str | Path | None = None):
        self.root = Path(root).expanduser().resolve() if root is not None else default_root().resolve()
        self.db_path = self.root / DB_NAME
        self.runs_root = self.root / "runs"
        try:
            self.runs_root.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CompressionError(f"The data directory {self.root} cannot be created: {exc.strerror}.") from None
        self._migrate()
        self._clean_leftovers()

    def __repr__(self) -> str:
        return f"Store({str(self.root)!r})"

    # ------------------------------------------------------------ connections

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self.db_path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None)
        conn.row_factory = sqlite3.Row
        conn.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        # WAL + NORMAL survives a killed process (not a power cut) without an fsync per commit.
        conn.execute("PRAGMA synchronous = NORMAL")
        return conn

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        conn = self._connect()
        try:
            yield conn
        finally:
            conn.close()

    @contextmanager
    def _write(self) -> Iterator[sqlite3.Connection]:
        # IMMEDIATE takes the write lock up front: a deferred transaction that upgrades
        # from read to write gets SQLITE_BUSY without waiting on the busy timeout.
        conn = self._connect()
        try:
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        finally:
            conn.close()

    def _migrate(self) -> None:
        conn = self._connect()
        try:
            mode = conn.execute("PRAGMA journal_mode = WAL").fetchone()[0]
            if str(mode).lower() != "wal":
                raise CompressionError(f"The database {self.db_path} cannot use WAL mode (got {mode!r}).")
            if conn.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION:
                return  # the common case: no write lock needed
            # Re-read under the write lock: another process may be migrating right now.
            conn.execute("BEGIN IMMEDIATE")
            try:
                version = conn.execute("PRAGMA user_version").fetchone()[0]
                if version > SCHEMA_VERSION:
                    raise CompressionError(
                        f"The data store {self.db_path} was written by a newer Compression Lab "
                        f"(schema {version}; this version reads up to {SCHEMA_VERSION})."
                    )
                for number in range(version + 1, SCHEMA_VERSION + 1):
                    MIGRATIONS[number - 1](conn, self.root)
                    conn.execute(f"PRAGMA user_version = {number}")
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")
        except sqlite3.DatabaseError as exc:
            raise CompressionError(f"The data store {self.db_path} cannot be opened: {exc}.") from None
        finally:
            conn.close()

    def _clean_leftovers(self) -> None:
        """Remove folders of deletes/imports that a crash interrupted (older than an hour)."""
        cutoff = time.time() - 3600
        for entry in self.runs_root.iterdir():
            if entry.name.startswith((".trash-", ".import-")):
                try:
                    if entry.name.startswith(".trash-") or entry.stat().st_mtime < cutoff:
                        shutil.rmtree(entry, ignore_errors=True)
                except OSError:
                    pass

    def schema_version(self) -> int:
        """The database's PRAGMA user_version (number of migrations applied)."""
        with self._read() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    def integrity_check(self) -> str:
        """Result of ``PRAGMA integrity_check``: "ok" for a healthy database."""
        with self._read() as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)

    # ------------------------------------------------------------ runs

    def run_dir(self, run_id: str) -> Path:
        """The folder of a run (``root/runs/<run_id>``).

        Raises:
            CompressionError: ``run_id`` is not a run id.
        """
        if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
            raise CompressionError(f"{run_id!r} is not a run id.")
        return self.runs_root / run_id

    def folder(self, run_id: str) -> RunFolder:
        """The :class:`~compression.results.RunFolder` of a run (its files' paths).

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

    def worker_lock_held(self, run_id: str) -> bool:
        """True while a process started by a runner holds the run's worker lock."""
        return bool(_lock_is_held(self.folder(run_id).lock_file))

    def worker_alive(self, run: dict[str, Any]) -> bool:
        """Whether the worker of a running run (a :meth:`running_runs` dict) is still alive.

        The runner takes an exclusive ``flock`` on ``worker.lock`` before it
        starts the worker, which inherits it; the kernel drops it when the
        process dies, however it dies, so a free lock means a dead worker
        (robust to pid reuse). Without a lock file, fall back to the pid.
        """
        held = _lock_is_held(self.folder(run["id"]).lock_file)
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

    # ------------------------------------------------------------ export / import

    def _run_files(self, folder: Path) -> list[Path]:
        files = []
        for path in sorted(folder.rglob("*")):
            rel = path.relative_to(folder)
            if path.is_symlink() or not path.is_file():
                continue
            if rel.as_posix() in _SKIP_IN_EXPORT or any(p.startswith(".") for p in rel.parts):
                continue
            files.append(path)
        return files

    def export_run(self, run_id: str) -> bytes:
        """A zip of the run: ``manifest.json`` (the database row, events, file hashes) and ``run/<files>``.

        Raises:
            CompressionError: no such run, or it is queued/running.

        Usage::

            st.download_button("Export", store.export_run(run_id), f"{run_id}.zip")
        """
        folder = self.run_dir(run_id)
        with self._read() as conn:
            row = self._row(conn, run_id)
            events = conn.execute(
                "SELECT time, batch_level, data FROM events WHERE run_id = ? ORDER BY id", (run_id,)
            ).fetchall()
        if row["status"] not in FINAL_STATUSES:
            raise CompressionError(f"Run {run_id} is {row['status']}; export it once it has finished.")
        buffer = io.BytesIO()
        hashes = {}
        with zipfile.ZipFile(buffer, "w", compression=zipfile.ZIP_DEFLATED) as archive:
            for path in self._run_files(folder):
                rel = path.relative_to(folder).as_posix()
                data = path.read_bytes()
                hashes[rel] = hashlib.sha256(data).hexdigest()
                archive.writestr(f"run/{rel}", data)
            manifest = {
                "format": EXPORT_FORMAT,
                "version": EXPORT_VERSION,
                "schema_version": SCHEMA_VERSION,
                "exported": _iso(time.time()),
                "run": {k: row[k] for k in _COLUMNS},
                "events": [{"time": e["time"], "batch_level": e["batch_level"], "data": e["data"]} for e in events],
                "files": hashes,
            }
            archive.writestr("manifest.json", json.dumps(manifest, indent=1))
        return buffer.getvalue()

    def import_run(self, data: bytes, max_bytes: int = MAX_IMPORT_BYTES) -> str:
        """Restore a run from an :meth:`export_run` zip, byte for byte.

        The zip is checked before anything is written: a manifest, a recipe,
        only relative member names without ``..``, no links, at most
        ``max_bytes`` unpacked, every file's sha256 as the manifest says. If
        the run id already exists the run gets a new id.

        Returns:
            The id of the imported run.

        Raises:
            CompressionError: the data is not a valid run export.
        """
        if len(data) > max_bytes:
            raise CompressionError(f"The file is larger than the {max_bytes // 2**20} MiB import limit.")
        try:
            archive = zipfile.ZipFile(io.BytesIO(data))
        except zipfile.BadZipFile:
            raise CompressionError("The file is not a Compression Lab run export (it is not a zip file).") from None
        with archive:
            members = self._check_members(archive, max_bytes)
            manifest = self._read_manifest(archive, members)
            row = manifest["run"]
            run_id = row.get("id")
            if not isinstance(run_id, str) or not _RUN_ID.match(run_id):
                raise CompressionError(f"The export's manifest names an invalid run id {run_id!r}.")
            files = {name[len("run/") :]: info for name, info in members.items() if name.startswith("run/")}
            if RunFolder.RECIPE not in files:
                raise CompressionError(f"The export holds no run/{RunFolder.RECIPE}.")
            expected = manifest.get("files")
            if not isinstance(expected, dict) or set(expected) != set(files):
                raise CompressionError("The export's file list does not match its manifest.")
            if self._holds_copy(run_id, expected):
                raise CompressionError(f"This run is already in the store (run {run_id}, the same files): "
                                       "nothing was imported.")
            staging = self.runs_root / f".import-{secrets.token_hex(4)}"
            staging.mkdir()
            try:
                for rel, info in files.items():
                    try:
                        content = archive.read(info)
                    except (zipfile.BadZipFile, OSError) as exc:
                        raise CompressionError(f"The export's file {rel} is damaged ({exc}).") from None
                    if hashlib.sha256(content).hexdigest() != expected[rel]:
                        raise CompressionError(f"The export's file {rel} does not match its checksum.")
                    target = staging / rel
                    target.parent.mkdir(parents=True, exist_ok=True)
                    target.write_bytes(content)
                Recipe.from_json(RunFolder(staging).read_recipe_text() or "")
                return self._insert_imported(row, manifest.get("events") or [], staging)
            finally:
                if staging.exists():
                    shutil.rmtree(staging, ignore_errors=True)

    def _holds_copy(self, run_id: str, expected: dict) -> bool:
        """Whether run ``run_id`` exists here with the recipe and results the export's manifest lists."""
        try:
            folder = self.run_dir(run_id)
            self.get_run(run_id)
        except CompressionError:
            return False
        for rel in ("recipe.json", "results.json"):
            path = folder / rel
            if rel not in expected:
                continue
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != expected[rel]:
                return False
        return True

    @staticmethod
    def _check_members(archive: zipfile.ZipFile, max_bytes: int) -> dict[str, zipfile.ZipInfo]:
        infos = archive.infolist()
        if len(infos) > MAX_IMPORT_MEMBERS:
            raise CompressionError(f"The export holds more than {MAX_IMPORT_MEMBERS} files.")
        if sum(i.file_size for i in infos) > max_bytes:
            raise CompressionError(f"The export unpacks to more than the {max_bytes // 2**20} MiB import limit.")
        members = {}
        for info in infos:
            name = info.filename
            if info.is_dir():
                continue
            parts = PurePosixPath(name).parts
            if (
                "\\" in name
                or name.startswith("/")
                or (len(name) > 1 and name[1] == ":")
                or any(p in ("", ".", "..") for p in parts)
                or not (name == "manifest.json" or (len(parts) > 1 and parts[0] == "run"))
            ):
                raise CompressionError(f"The export holds a file with an unsafe name: {name!r}.")
            if stat.S_ISLNK(info.external_attr >> 16):
                raise CompressionError(f"The export holds a link, which is not allowed: {name!r}.")
            if name in members:
                raise CompressionError(f"The export holds {name!r} twice.")
            members[name] = info
        return members

    @staticmethod
    def _read_manifest(archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo]) -> dict:
        if "manifest.json" not in members:
            raise CompressionError("The file is not a Compression Lab run export (it has no manifest.json).")
        try:
            manifest = json.loads(archive.read(members["manifest.json"]))
        except (ValueError, zipfile.BadZipFile):
            raise CompressionError("The export's manifest.json is not valid JSON.") from None
        if not isinstance(manifest, dict) or manifest.get("format") != EXPORT_FORMAT:
            raise CompressionError("The file is not a Compression Lab run export (unknown manifest format).")
        if manifest.get("version") != EXPORT_VERSION:
            raise CompressionError(
                f"The export has format version {manifest.get('version')!r}; this version reads {EXPORT_VERSION}."
            )
        if not isinstance(manifest.get("run"), dict):
            raise CompressionError("The export's manifest has no run record.")
        return manifest

    def _insert_imported(self, row: dict, events: list, staging: Path) -> str:
        values = {k: row.get(k) for k in _COLUMNS}
        if values["status"] not in FINAL_STATUSES:
            values["status"] = RunStatus.INTERRUPTED.value
        if not isinstance(values.get("created"), (int, float)):
            values["created"] = time.time()
        if not isinstance(values.get("job"), str):
            values["job"] = DEFAULT_JOB
        if not isinstance(values.get("title"), str):
            values["title"] = ""
        if values.get("kind") not in {k.value for k in RunKind}:  # an export from before runs had a kind
            values["kind"] = kind_of(values["job"], values["title"]).value
        for e in events:
            if not (isinstance(e, dict) and isinstance(e.get("data"), str) and _is_number(e.get("time"))):
                raise CompressionError("The export's manifest holds a malformed progress event.")
        with self._write() as conn:
            exists = conn.execute("SELECT 1 FROM runs WHERE id = ?", (values["id"],)).fetchone()
            if exists or (self.runs_root / values["id"]).exists():
                values["id"] = _new_run_id()
            conn.execute(
                f"INSERT INTO runs ({', '.join(_COLUMNS)}) VALUES ({', '.join('?' for _ in _COLUMNS)})",
                [values[k] for k in _COLUMNS],
            )
            conn.executemany(
                "INSERT INTO events (run_id, time, batch_level, data) VALUES (?, ?, ?, ?)",
                [(values["id"], e["time"], 1 if e.get("batch_level") else 0, e["data"]) for e in events],
            )
            # Inside the transaction: if the rename fails, no row points at a missing folder.
            os.replace(staging, self.runs_root / values["id"])
        _fsync_dir(self.runs_root)
        return values["id"]
