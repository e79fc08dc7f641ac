"""Export a finished run as one zip (manifest + files) and import it back, byte for byte, after strict checks."""

from __future__ import annotations

import hashlib
import io
import json
import math
import os
import secrets
import shutil
import time
import zipfile
from pathlib import Path, PurePosixPath
from typing import Any

from ..config import Recipe
from ..errors import CompressionError
from ..inputs import zipsafe
from ..results import FINAL_STATUSES, RunKind, RunStatus
from ..run_folder import RunFolder
from .liveness import Liveness
from .runs import DEFAULT_JOB, RUN_ID, _iso, _new_run_id
from .schema import COLUMNS, SCHEMA_VERSION, kind_of

__all__ = ["EXPORT_FORMAT", "EXPORT_VERSION", "MAX_IMPORT_BYTES", "MAX_IMPORT_MEMBERS", "Archive"]

MAX_IMPORT_BYTES = 1 << 30
MAX_IMPORT_MEMBERS = 10_000
EXPORT_FORMAT = "compression-lab-run"
EXPORT_VERSION = 1
_SKIP_IN_EXPORT = {RunFolder.LOCK}  # plus hidden names: temporaries of atomic writes (".x.tmp")


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


class Archive(Liveness):
    """Export/import of runs; mixed into :class:`~compression.store.Store`."""

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
                "run": {k: row[k] for k in COLUMNS},
                "events": [{"time": e["time"], "batch_level": e["batch_level"], "data": e["data"]} for e in events],
                "files": hashes,
            }
            archive.writestr("manifest.json", json.dumps(manifest, indent=1))
        return buffer.getvalue()

    def import_run(self, data: bytes, max_bytes: int = MAX_IMPORT_BYTES) -> str:
        """Restore a run from an :meth:`export_run` zip, byte for byte.

        The zip is checked before anything is written, first by the engine's one
        set of zip rules (:mod:`compression.inputs.zipsafe`: no encrypted members, no
        name twice, no links or special files, no unsafe paths, bounded member
        count and sizes, no zip bombs), then for a run export's layout: a
        manifest, ``run/<files>`` with a recipe, every file's sha256 as the
        manifest says. If the run id already exists the run gets a new id.

        Returns:
            The id of the imported run.

        Raises:
            CompressionError: the data is not a valid run export.
        """
        if len(data) > max_bytes:
            raise CompressionError(f"The file is larger than the {max_bytes // 2**20} MiB import limit.")
        archive = zipsafe.open_archive(
            data,
            subject="the export",
            not_a_zip="The file is not a Compression Lab run export (it is not a zip file).",
            max_total_bytes=max_bytes,
            max_members=MAX_IMPORT_MEMBERS,
        )
        with archive:
            members = self._check_layout(archive)
            manifest = self._read_manifest(archive, members)
            row = manifest["run"]
            run_id = row.get("id")
            if not isinstance(run_id, str) or not RUN_ID.match(run_id):
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
                    content = zipsafe.read_member(archive, info, "the export")
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
            folder = self.folder(run_id)
            self.get_run(run_id)
        except CompressionError:
            return False
        for rel, path in ((RunFolder.RECIPE, folder.recipe_file), (RunFolder.RESULTS, folder.results_file)):
            if rel not in expected:
                continue
            if not path.is_file() or hashlib.sha256(path.read_bytes()).hexdigest() != expected[rel]:
                return False
        return True

    @staticmethod
    def _check_layout(archive: zipfile.ZipFile) -> dict[str, zipfile.ZipInfo]:
        """The export's files by name, refusing any that is not ``manifest.json`` or a plain ``run/...`` path."""
        members = {}
        for info in archive.infolist():
            name = info.filename
            if info.is_dir():
                continue
            parts = PurePosixPath(name).parts
            if (
                "\\" in name
                or name.startswith("/")
                or any(p in ("", ".", "..") for p in parts)
                or not (name == "manifest.json" or (len(parts) > 1 and parts[0] == "run"))
            ):
                raise CompressionError(f"The export holds a file with an unsafe name: {name!r}.")
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
        values = {k: row.get(k) for k in COLUMNS}
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
                f"INSERT INTO runs ({', '.join(COLUMNS)}) VALUES ({', '.join('?' for _ in COLUMNS)})",
                [values[k] for k in COLUMNS],
            )
            conn.executemany(
                "INSERT INTO events (run_id, time, batch_level, data) VALUES (?, ?, ?, ?)",
                [(values["id"], e["time"], 1 if e.get("batch_level") else 0, e["data"]) for e in events],
            )
            # Inside the transaction: if the rename fails, no row points at a missing folder.
            os.replace(staging, self.runs_root / values["id"])
        _fsync_dir(self.runs_root)
        return values["id"]
