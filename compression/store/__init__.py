"""The experiment store: one SQLite database plus one folder per run (may import: core, ``inputs``).

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

The package, one module per job:

* :mod:`.schema` — connections and migrations (PRAGMA user_version), the ``runs`` columns;
* :mod:`.runs` — run records and progress events (create, list by session/kind, status, cancel);
* :mod:`.liveness` — whether a running run's worker is alive (its ``worker.lock``), interrupted runs;
* :mod:`.archive` — export/import of a finished run as a zip.

Paths inside a run folder belong to :class:`compression.run_folder.RunFolder` (``store.folder(run_id)``).

Usage::

    store = Store()                      # or Store("/data/lab")
    run_id = store.create_run(Recipe.experiment_e())
    store.get_run(run_id)["status"]      # "queued"
"""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

from .._io import atomic_write_bytes, atomic_write_text
from ..errors import CompressionError
from ..results import ACCURACY_TOLERANCE, FINAL_STATUSES, RunKind, RunStatus, best_ratio
from ..run_folder import RunFolder
from .archive import EXPORT_FORMAT, EXPORT_VERSION, MAX_IMPORT_BYTES, MAX_IMPORT_MEMBERS, Archive
from .liveness import CLAIM_GRACE_S, describe_position
from .runs import DEFAULT_JOB, MAX_BATCH_EVENTS, STATUSES
from .schema import BUSY_TIMEOUT_MS, DB_NAME, KIND_OF_JOB, MIGRATIONS, SCHEMA_VERSION, kind_of

__all__ = [
    "ACCURACY_TOLERANCE",
    "BUSY_TIMEOUT_MS",
    "CLAIM_GRACE_S",
    "DATA_ENV",
    "DB_NAME",
    "DEFAULT_JOB",
    "EXPORT_FORMAT",
    "EXPORT_VERSION",
    "FINAL_STATUSES",
    "KIND_OF_JOB",
    "LOCK_NAME",
    "LOG_NAME",
    "MAX_BATCH_EVENTS",
    "MAX_IMPORT_BYTES",
    "MAX_IMPORT_MEMBERS",
    "MIGRATIONS",
    "SCHEMA_VERSION",
    "STATUSES",
    "RunFolder",
    "RunKind",
    "RunStatus",
    "Store",
    "atomic_write_bytes",
    "atomic_write_text",
    "best_ratio",
    "default_root",
    "describe_position",
    "kind_of",
]

DATA_ENV = "COMPRESSION_LAB_DATA"
LOCK_NAME = RunFolder.LOCK
LOG_NAME = RunFolder.LOG


def default_root() -> Path:
    """The data directory: ``$COMPRESSION_LAB_DATA``, else ``~/.compression-lab``."""
    env = os.environ.get(DATA_ENV)
    return Path(env).expanduser() if env else Path.home() / ".compression-lab"



# ---------------------------------------------------------------- the store


class Store(Archive):
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
