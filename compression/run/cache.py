"""A content-addressed cache of finished variants and baselines, shared by the runs of one store.

A re-run of an unchanged recipe, or of a recipe where only some variants
changed, reuses what an earlier run already computed: the row (accuracy, sizes,
latency, TFLM figures…) and its files (``.tflite``, kernels, predictions).
Reused rows say so (``VariantResult.reused_from`` names the run that computed
them).

Keys (sha256 of a canonical JSON document):

* **baseline** — the dataset (registry name and limits, plus the sha256 of a
  user's file or folder), the model (zoo name, or the sha256 of the uploaded
  file), the baseline settings, the seed and, for a pretrained baseline, the
  sha256 of the shipped ``sample_models`` file;
* **variant** — the baseline key, the variant's settings without its name
  (technique, fine-tune, conversion), the evaluation settings (threads,
  latency runs, TFLM…, not ``recompute``) and the seed;
* both include the library versions (:func:`compression._tf.library_versions`)
  and the **engine version**: the sha256 of the source of the modules that
  compute results (:data:`ENGINE_MODULES`). Editing any of them invalidates
  every entry; UI, store, runner and chart modules are left out on purpose.

Layout under the store's data directory::

    cache/index.sqlite3     entries (key, kind, run id, row JSON, last use), their files, blob sizes
    cache/objects/ab/<sha>  file contents by sha256 (one copy whatever the number of entries)

The cache holds its own copies (files are copied into it and out of it), so
deleting a run never breaks another run that reused from it, and deleting a
cache entry never breaks a run. It is bounded (:data:`DEFAULT_MAX_BYTES`, or
``COMPRESSION_LAB_CACHE_MAX_BYTES``): the least recently used entries are
evicted, then blobs no entry refers to are removed. It survives restarts
(SQLite in WAL mode, blobs written to a temporary name and renamed).

Usage::

    cache = ResultCache.for_run_folder(run_dir)       # None outside a store
    reuse = cache.session(recipe, run_dir)
    row = reuse.restore_variant(spec)                 # VariantResult or None (a miss)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sqlite3
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..errors import CompressionError
from ..results import VariantResult, file_stem
from ..run_folder import RunFolder

__all__ = [
    "CACHE_DIR",
    "DEFAULT_MAX_BYTES",
    "ENGINE_MODULES",
    "MAX_BYTES_ENV",
    "Entry",
    "ResultCache",
    "Reuse",
    "engine_version",
]

log = logging.getLogger("compression.run.cache")

CACHE_DIR = "cache"
INDEX_NAME = "index.sqlite3"
MAX_BYTES_ENV = "COMPRESSION_LAB_CACHE_MAX_BYTES"
DEFAULT_MAX_BYTES = 2 * 2**30
KEY_FORMAT = 1  # bump when what goes into a key changes meaning

# The code that determines a row's figures (the engine version hashes its source): these core modules, and
# every module of these floors (a whole floor, so a module split or added there counts without a list to keep).
ENGINE_MODULES = ("_tf.py", "config.py", "isolation.py", "results.py", "run_folder.py")
ENGINE_FLOORS = ("inputs", "techniques", "tflite", "measure", "run")

_PACKAGE = Path(__file__).resolve().parents[1]  # compression/
_engine_version: str | None = None


def engine_version() -> str:
    """sha256 (16 hex digits) of the engine modules' source: a code change invalidates the cache."""
    global _engine_version
    if _engine_version is None:
        h = hashlib.sha256()
        paths = [_PACKAGE / name for name in ENGINE_MODULES]
        paths += sorted(p for floor in ENGINE_FLOORS for p in (_PACKAGE / floor).rglob("*.py"))
        for path in paths:
            h.update(str(path.relative_to(_PACKAGE)).encode() + b"\0" + path.read_bytes() + b"\0")
        _engine_version = h.hexdigest()[:16]
    return _engine_version


def _digest(doc: Any) -> str:
    return hashlib.sha256(json.dumps(doc, sort_keys=True, default=str).encode()).hexdigest()


def file_digest(path: str | Path) -> str:
    """sha256 of a file, or of a folder's files (names and contents, sorted)."""
    path = Path(path)
    h = hashlib.sha256()
    if path.is_dir():
        for child in sorted(p for p in path.rglob("*") if p.is_file()):
            h.update(str(child.relative_to(path)).encode() + b"\0" + bytes.fromhex(file_digest(child)))
        return h.hexdigest()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _optional_digest(path: str | Path | None) -> str | None:
    if not path:
        return None
    try:
        return file_digest(path)
    except OSError:
        return "missing"  # the run itself reports the missing file; a later run with the file gets another key


def baseline_identity(recipe) -> dict[str, Any]:
    """Everything that determines a recipe's baseline, its predictions and its float32 reference."""
    from .._tf import library_versions

    ds, model, base = recipe.dataset, recipe.model, recipe.baseline
    pretrained_file = None
    if base.pretrained and model.path is None:
        from ..inputs.pretrained import sample_path

        pretrained_file = _optional_digest(sample_path(ds.name, model.name))
    return {
        "format": KEY_FORMAT,
        "engine": engine_version(),
        "versions": library_versions(),
        "seed": recipe.seed,
        "dataset": {"name": ds.name, "max_train": ds.max_train, "max_test": ds.max_test,
                    "file": _optional_digest(ds.path)},
        "model": {"name": model.name, "file": _optional_digest(model.path)},
        "baseline": vars(base) if not hasattr(base, "to_dict") else base.to_dict(),
        "pretrained_file": pretrained_file,
    }


def _evaluation(recipe) -> dict[str, Any]:
    ev = dict(vars(recipe.evaluation))
    ev.pop("recompute", None)
    return ev


def variant_identity(recipe, spec, baseline_key: str) -> dict[str, Any]:
    """Everything that determines one variant's row and files (its name is not part of it)."""
    settings = spec.to_dict()
    settings.pop("name", None)
    return {"format": KEY_FORMAT, "baseline": baseline_key, "variant": settings,
            "evaluation": _evaluation(recipe), "seed": recipe.seed}


@dataclass(frozen=True)
class Entry:
    """A cached baseline or variant: what the run that computed it recorded, and its files by role."""

    key: str
    kind: str  # "baseline" | "variant"
    run_id: str
    payload: dict
    files: dict  # role -> sha256
    created: float


# Files of each kind of entry, by role: (role, RunFolder path for a file stem, required).
def _variant_files(folder: RunFolder, stem: str) -> list[tuple[str, Path, bool]]:
    return [("tflite", folder.tflite_for_stem(stem), True), ("weights", folder.weights(stem), False),
            ("pruning_steps", folder.pruning_steps(stem), False), ("cluster_steps", folder.cluster_steps(stem), False),
            ("predictions", folder.predictions(stem), True)]


def _baseline_files(folder: RunFolder) -> list[tuple[str, Path, bool]]:
    return [("model", folder.baseline_model, True), ("weights", folder.weights("baseline"), True),
            ("predictions", folder.predictions("baseline"), True), ("labels", folder.labels, True)]


class ResultCache:
    """The cache of one store (``<data dir>/cache``); safe to share between processes.

    Args:
        root: the cache folder (created if missing).
        max_bytes: bound on the blobs' total size; least recently used entries go first.

    Raises:
        CompressionError: the folder cannot be created.
    """

    def __init__(self, root: str | Path, max_bytes: int | None = None):
        self.root = Path(root)
        if max_bytes is None:
            text = os.environ.get(MAX_BYTES_ENV)
            try:
                max_bytes = int(text) if text else DEFAULT_MAX_BYTES
            except ValueError:
                raise CompressionError(f"{MAX_BYTES_ENV} must be a whole number of bytes. Received: {text!r}") \
                    from None
        self.max_bytes = max_bytes
        self.objects = self.root / "objects"
        try:
            self.objects.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CompressionError(f"The cache folder {self.root} cannot be created: {exc.strerror}.") from None
        self.index = self.root / INDEX_NAME
        with self._connect() as conn:
            conn.executescript("""
                CREATE TABLE IF NOT EXISTS entries (
                    key TEXT PRIMARY KEY, kind TEXT NOT NULL, run_id TEXT NOT NULL, payload TEXT NOT NULL,
                    created REAL NOT NULL, last_used REAL NOT NULL);
                CREATE TABLE IF NOT EXISTS entry_files (
                    key TEXT NOT NULL, role TEXT NOT NULL, sha TEXT NOT NULL, PRIMARY KEY (key, role));
                CREATE INDEX IF NOT EXISTS entry_files_sha ON entry_files (sha);
                CREATE TABLE IF NOT EXISTS blobs (sha TEXT PRIMARY KEY, size INTEGER NOT NULL);
            """)

    def __repr__(self) -> str:
        return f"ResultCache({str(self.root)!r}, max_bytes={self.max_bytes})"

    @classmethod
    def for_store_root(cls, root: str | Path) -> ResultCache:
        return cls(Path(root) / CACHE_DIR)

    @classmethod
    def for_run_folder(cls, out: str | Path) -> ResultCache | None:
        """The cache of the store holding run folder ``out`` (``<root>/runs/<id>``), None outside a store."""
        from ..store import DB_NAME

        path = Path(out).resolve()
        root = path.parent.parent
        if path.parent.name != "runs" or not (root / DB_NAME).is_file():
            return None
        try:
            return cls.for_store_root(root)
        except CompressionError as exc:
            log.warning("no cache: %s", exc)
            return None

    @contextlib.contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        conn = sqlite3.connect(self.index, timeout=30, isolation_level=None)
        try:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA busy_timeout=30000")
            yield conn
        finally:
            conn.close()

    # ------------------------------------------------------------ blobs

    def _blob(self, sha: str) -> Path:
        return self.objects / sha[:2] / sha

    def _put_blob(self, path: Path) -> tuple[str, int]:
        sha = file_digest(path)
        target = self._blob(sha)
        if not target.exists():
            target.parent.mkdir(parents=True, exist_ok=True)
            tmp = target.with_name(f".{sha}.{uuid.uuid4().hex}.tmp")
            shutil.copyfile(path, tmp)
            os.replace(tmp, target)
        return sha, path.stat().st_size

    # ------------------------------------------------------------ entries

    def get(self, key: str) -> Entry | None:
        """The entry of ``key`` with every file present (its last use refreshed), or None."""
        with self._connect() as conn:
            row = conn.execute("SELECT kind, run_id, payload, created FROM entries WHERE key = ?", (key,)).fetchone()
            if row is None:
                return None
            files = dict(conn.execute("SELECT role, sha FROM entry_files WHERE key = ?", (key,)).fetchall())
            if not all(self._blob(sha).is_file() for sha in files.values()):
                conn.execute("DELETE FROM entries WHERE key = ?", (key,))
                conn.execute("DELETE FROM entry_files WHERE key = ?", (key,))
                return None
            conn.execute("UPDATE entries SET last_used = ? WHERE key = ?", (time.time(), key))
        return Entry(key, row[0], row[1], json.loads(row[2]), files, row[3])

    def put(self, key: str, kind: str, run_id: str, payload: dict, files: dict[str, Path]) -> None:
        """Record an entry: its payload (JSON) and copies of its files (role -> path)."""
        from .._io import json_default

        blobs = {role: self._put_blob(Path(p)) for role, p in files.items()}
        now = time.time()
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            conn.execute("DELETE FROM entry_files WHERE key = ?", (key,))
            conn.execute("INSERT OR REPLACE INTO entries VALUES (?, ?, ?, ?, ?, ?)",
                         (key, kind, run_id, json.dumps(payload, default=json_default), now, now))
            for role, (sha, size) in blobs.items():
                conn.execute("INSERT OR REPLACE INTO entry_files VALUES (?, ?, ?)", (key, role, sha))
                conn.execute("INSERT OR IGNORE INTO blobs VALUES (?, ?)", (sha, size))
            conn.execute("COMMIT")
        self.evict()

    def restore(self, entry: Entry, targets: dict[str, Path]) -> None:
        """Copy the entry's files to ``targets`` (role -> path); roles the entry lacks are skipped."""
        for role, path in targets.items():
            sha = entry.files.get(role)
            if sha is None:
                continue
            path.parent.mkdir(parents=True, exist_ok=True)
            tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex}.tmp")
            shutil.copyfile(self._blob(sha), tmp)
            os.replace(tmp, path)

    def total_bytes(self) -> int:
        with self._connect() as conn:
            return int(conn.execute("SELECT COALESCE(SUM(size), 0) FROM blobs").fetchone()[0])

    def evict(self) -> int:
        """Drop least recently used entries until the blobs fit ``max_bytes``; returns the entries dropped."""
        dropped = 0
        with self._connect() as conn:
            conn.execute("BEGIN IMMEDIATE")
            total = int(conn.execute("SELECT COALESCE(SUM(size), 0) FROM blobs").fetchone()[0])
            if total > self.max_bytes:
                for (key,) in conn.execute("SELECT key FROM entries ORDER BY last_used").fetchall():
                    conn.execute("DELETE FROM entries WHERE key = ?", (key,))
                    conn.execute("DELETE FROM entry_files WHERE key = ?", (key,))
                    dropped += 1
                    orphans = conn.execute(
                        "SELECT sha, size FROM blobs WHERE sha NOT IN (SELECT sha FROM entry_files)").fetchall()
                    for sha, size in orphans:
                        conn.execute("DELETE FROM blobs WHERE sha = ?", (sha,))
                        self._blob(sha).unlink(missing_ok=True)
                        total -= size
                    if total <= self.max_bytes:
                        break
            conn.execute("COMMIT")
        if dropped:
            log.info("cache: evicted %d entries (now %d bytes, bound %d)", dropped, total, self.max_bytes)
        return dropped

    def entries(self, kind: str | None = None) -> list[Entry]:
        """Every entry (oldest use first), for tests and the CLI."""
        with self._connect() as conn:
            keys = [k for (k,) in conn.execute(
                "SELECT key FROM entries WHERE ? IS NULL OR kind = ? ORDER BY last_used", (kind, kind))]
        return [e for e in (self.get(k) for k in keys) if e is not None]

    def session(self, recipe, out: str | Path) -> Reuse:
        return Reuse(self, recipe, RunFolder(out))


class Reuse:
    """One run's use of the cache: look up and restore its baseline and variants, record fresh ones.

    ``recompute`` (``recipe.evaluation.recompute``) skips every lookup; fresh results are still recorded.
    """

    def __init__(self, cache: ResultCache, recipe, folder: RunFolder):
        self.cache, self.recipe, self.folder = cache, recipe, folder
        self.recompute = bool(getattr(recipe.evaluation, "recompute", False))
        self.baseline_key = _digest(baseline_identity(recipe))
        self.keys = {spec.name: _digest(variant_identity(recipe, spec, self.baseline_key))
                     for spec in recipe.variants}

    def lookup_baseline(self) -> Entry | None:
        return None if self.recompute else self.cache.get(self.baseline_key)

    def lookup_variant(self, spec) -> Entry | None:
        return None if self.recompute else self.cache.get(self.keys[spec.name])

    def complete(self) -> bool:
        """Every part of the run is cached (a replay needs no TensorFlow)."""
        return not self.recompute and self.lookup_baseline() is not None and all(
            self.lookup_variant(spec) is not None for spec in self.recipe.variants)

    def restore_baseline(self, entry: Entry) -> dict[str, Any]:
        """Copy the cached baseline's files into the run; returns its payload (dataset, baseline, reference)."""
        self.cache.restore(entry, {role: path for role, path, _ in _baseline_files(self.folder)})
        return entry.payload

    def restore_variant(self, spec, entry: Entry | None = None) -> VariantResult | None:
        """The cached row of ``spec`` with its files copied into the run, or None on a miss."""
        entry = entry or self.lookup_variant(spec)
        if entry is None:
            return None
        stem = file_stem(spec.name)
        self.cache.restore(entry, {role: path for role, path, _ in _variant_files(self.folder, stem)})
        row = VariantResult.from_dict(entry.payload)
        return row.replace(name=spec.name, settings=spec.to_dict(), tflite=self.folder.tflite_for_stem(stem).name,
                           reused_from=entry.run_id)

    def record_baseline(self, results: dict[str, Any]) -> None:
        """Keep this run's baseline (files + dataset/baseline/reference), unless it came from the cache."""
        self._record(self.baseline_key, "baseline",
                     {k: _plain(results.get(k)) for k in ("dataset", "baseline", "reference")},
                     _baseline_files(self.folder))

    def record_variant(self, spec, row: VariantResult | dict) -> None:
        """Keep a fresh ok row of ``spec`` and its files."""
        row = VariantResult.from_dict(row) if isinstance(row, dict) else row
        if not row.ok or row.reused_from is not None:
            return
        self._record(self.keys[spec.name], "variant", row.to_dict(), _variant_files(self.folder, row.stem))

    def _record(self, key: str, kind: str, payload: dict, files: list[tuple[str, Path, bool]]) -> None:
        present = {role: path for role, path, _ in files if path.is_file()}
        if any(required and role not in present for role, _, required in files):
            log.warning("cache: %s %s not recorded: a file is missing", kind, key[:12])
            return
        try:
            self.cache.put(key, kind, self.folder.run_id, payload, present)
        except (OSError, sqlite3.Error) as exc:  # a full disk must not fail the run: it only loses the reuse
            log.warning("cache: could not record %s %s: %s", kind, key[:12], exc)


def _plain(value: Any) -> Any:
    return value.to_dict() if hasattr(value, "to_dict") else value
