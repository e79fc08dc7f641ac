"""The store's SQLite schema: connections, migrations (PRAGMA user_version), the runs table's columns.

Every write is one short ``BEGIN IMMEDIATE`` transaction on a connection opened for
that call (WAL, busy timeout), so threads, worker processes and the CLI share one store.
Migrations run in order; a released one is never edited, a new one is appended.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from ..errors import CompressionError
from ..results import RunKind, best_ratio
from ..run_folder import RunFolder

__all__ = ["COLUMNS", "DB_NAME", "KIND_OF_JOB", "MIGRATIONS", "SCHEMA_VERSION", "Database", "kind_of"]

DB_NAME = "lab.sqlite3"
BUSY_TIMEOUT_MS = 30_000


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
    "compression.explore.sensitivity:run_sensitivity": RunKind.SENSITIVITY,
    "compression.explore.search:run_search": RunKind.SEARCH,
}
# Job names recorded before the engine was grouped by floor (a store made then still holds them).
LEGACY_JOBS = {
    "compression.recipes:run_recipe": "compression.run.recipe:run_recipe",
    "compression.sensitivity:run_sensitivity": "compression.explore.sensitivity:run_sensitivity",
    "compression.search:run_search": "compression.explore.search:run_search",
}
_LEGACY_BASELINE_PREFIX = "Baseline:"  # the "train now" runs' title before runs had a kind


def kind_of(job: str | None, title: str | None = None) -> RunKind:
    """The kind of a run recorded without one: from its job, else a legacy "Baseline:" title, else recipe."""
    job = LEGACY_JOBS.get(job or "", job)
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

COLUMNS = (
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



class Database:
    """Connections to the store's database and its migration; the base of :class:`~compression.store.Store`."""

    db_path: Path
    root: Path

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

    def schema_version(self) -> int:
        """The database's PRAGMA user_version (number of migrations applied)."""
        with self._read() as conn:
            return conn.execute("PRAGMA user_version").fetchone()[0]

    def integrity_check(self) -> str:
        """Result of ``PRAGMA integrity_check``: "ok" for a healthy database."""
        with self._read() as conn:
            rows = conn.execute("PRAGMA integrity_check").fetchall()
        return "\n".join(str(r[0]) for r in rows)
