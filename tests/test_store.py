"""The store on its own: schema and migrations, runs, events, atomic files, export/import checks."""

from __future__ import annotations

import io
import json
import os
import sqlite3
import subprocess
import sys
import threading
import zipfile
from pathlib import Path

import pytest

import compression.store as store_module
import compression.store.runs as store_runs
from compression.errors import CompressionError
from compression.results import RunKind, RunStatus
from compression.store import SCHEMA_VERSION, Store, atomic_write_bytes, atomic_write_text, best_ratio, default_root
from tests.jobs import make_recipe


def finished_run(store: Store, title: str = "done") -> str:
    """A run finished by hand: files in its folder, events, status ok."""
    run_id = store.create_run(make_recipe(title), job="tests.jobs:quick_job", session="s1")
    folder = store.run_dir(run_id)
    (folder / "sub").mkdir()
    (folder / "sub" / "nested.bin").write_bytes(bytes(range(256)) * 10)
    atomic_write_bytes(folder / "int8.tflite", b"TFL3" + os.urandom(3000))
    results = {
        "recipe": make_recipe(title).to_dict(),
        "reference": {"gzip_bytes": 1000, "accuracy": 0.9},
        "variants": [
            {"name": "float32", "status": "ok", "gzip_bytes": 1000, "accuracy": 0.9},
            {"name": "int8", "status": "ok", "gzip_bytes": 250, "accuracy": 0.895},
        ],
    }
    atomic_write_text(folder / "results.json", json.dumps(results))
    assert store.claim_next(1) == run_id
    store.add_event(run_id, {"phase": "fine_tune", "variant": "int8", "epoch": 1, "batch": None})
    store.add_event(run_id, {"phase": "variant_done", "variant": "int8", "data": {"row": results["variants"][1]}})
    assert store.set_status(run_id, "ok", expected=("running",))
    return run_id


@pytest.fixture
def store(tmp_path):
    return Store(tmp_path / "lab")


# ---------------------------------------------------------------- location, schema


def test_root_defaults_to_env_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv("COMPRESSION_LAB_DATA", str(tmp_path / "from-env"))
    assert default_root() == tmp_path / "from-env"
    assert Store().root == (tmp_path / "from-env").resolve()
    assert (tmp_path / "from-env" / "lab.sqlite3").is_file()
    monkeypatch.delenv("COMPRESSION_LAB_DATA")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_root() == tmp_path / "home" / ".compression-lab"


def test_new_database_is_wal_at_latest_version(store):
    assert store.schema_version() == SCHEMA_VERSION == len(store_module.MIGRATIONS)
    conn = sqlite3.connect(store.db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()
    assert store.integrity_check() == "ok"
    Store(store.root)  # opening again migrates nothing and works


# Version 1 exactly as it shipped, written by hand (not via MIGRATIONS) so the test keeps an old file.
V1_SCHEMA = """
CREATE TABLE runs (id TEXT PRIMARY KEY, status TEXT NOT NULL, job TEXT NOT NULL, title TEXT NOT NULL DEFAULT '',
  dataset TEXT, model TEXT, n_variants INTEGER, created REAL NOT NULL, started REAL, finished REAL, pid INTEGER,
  error TEXT, progress TEXT, cancel_requested REAL);
CREATE TABLE events (id INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, time REAL NOT NULL,
  batch_level INTEGER NOT NULL DEFAULT 0, data TEXT NOT NULL);
CREATE INDEX events_by_run ON events(run_id, batch_level, id);
CREATE INDEX runs_by_status ON runs(status);
PRAGMA user_version = 1;
"""


def test_opening_a_version_1_database_migrates_it(tmp_path):
    root = tmp_path / "old"
    (root / "runs" / "20240101-000000-000-abcdef").mkdir(parents=True)
    (root / "runs" / "20240101-000000-000-abcdef" / "results.json").write_text(
        json.dumps(
            {
                "reference": {"gzip_bytes": 900, "accuracy": 0.8},
                "variants": [{"name": "int8", "status": "ok", "gzip_bytes": 300, "accuracy": 0.795}],
            }
        )
    )
    conn = sqlite3.connect(root / "lab.sqlite3")
    conn.executescript(V1_SCHEMA)
    conn.execute(
        "INSERT INTO runs (id, status, job, title, dataset, model, n_variants, created, started, finished)"
        " VALUES ('20240101-000000-000-abcdef', 'ok', 'compression.recipes:run_recipe', 'old run', 'digits',"
        " 'seed_cnn', 1, 1704067200, 1704067200, 1704067260)"
    )
    conn.execute(
        "INSERT INTO events (run_id, time, data) VALUES ('20240101-000000-000-abcdef', 1, '{\"phase\": \"done\"}')"
    )
    conn.commit()
    conn.close()

    store = Store(root)

    assert store.schema_version() == SCHEMA_VERSION == 3
    run = store.get_run("20240101-000000-000-abcdef")
    assert run["title"] == "old run" and run["status"] == "ok" and run["duration"] == 60
    assert run["kind"] == "recipe"  # migration 3
    assert run["session"] is None
    assert run["best_ratio"] == pytest.approx(3.0)  # backfilled from results.json by migration 2
    assert store.events(run["id"])[0]["phase"] == "done"
    assert store.integrity_check() == "ok"
    new_id = store.create_run(make_recipe(), session="tab")
    assert [r["id"] for r in store.list_runs(session="tab")] == [new_id]


# Version 2 as it shipped: version 1 plus the History columns.
V2_SCHEMA = V1_SCHEMA.replace("PRAGMA user_version = 1;", "") + """
ALTER TABLE runs ADD COLUMN session TEXT;
ALTER TABLE runs ADD COLUMN best_ratio REAL;
CREATE INDEX runs_by_created ON runs(created);
PRAGMA user_version = 2;
"""


def test_a_version_2_database_gets_run_kinds_and_old_baseline_runs_become_kind_baseline(tmp_path):
    root = tmp_path / "old"
    (root / "runs").mkdir(parents=True)
    conn = sqlite3.connect(root / "lab.sqlite3")
    conn.executescript(V2_SCHEMA)
    old = [
        # job names as a store made before the engine was grouped by floor holds them
        ("20240101-000000-000-aaaaaa", "compression.recipes:run_recipe", "Baseline: seed_cnn on digits"),
        ("20240101-000000-001-bbbbbb", "compression.recipes:run_recipe", "Experiment E"),
        ("20240101-000000-002-cccccc", "compression.sensitivity:run_sensitivity", "Sensitivity"),
        ("20240101-000000-003-dddddd", "compression.search:run_search", "Baseline: a search, by its title"),
    ]
    for i, (run_id, job, title) in enumerate(old):
        conn.execute(
            "INSERT INTO runs (id, status, job, title, dataset, model, n_variants, created, session)"
            " VALUES (?, 'ok', ?, ?, 'digits', 'seed_cnn', 1, ?, 'tab')",
            (run_id, job, title, 1704067200 + i),
        )
    conn.commit()
    conn.close()

    store = Store(root)

    assert store.schema_version() == SCHEMA_VERSION == 3
    kinds = {r["id"]: r["kind"] for r in store.list_runs()}
    assert kinds == {old[0][0]: "baseline", old[1][0]: "recipe", old[2][0]: "sensitivity", old[3][0]: "search"}
    assert all(isinstance(k, RunKind) for k in kinds.values())
    assert [r["id"] for r in store.list_runs(kind=RunKind.BASELINE)] == [old[0][0]]
    assert [r["id"] for r in store.list_runs(session="tab", kind=["recipe", "search"])] == [old[3][0], old[1][0]]
    # New runs: the kind is given (or inferred from the job), never read from the title.
    trained = store.create_run(make_recipe("Baseline: mlp on digits"), kind=RunKind.BASELINE)
    titled = store.create_run(make_recipe("Baseline: just a title"))
    searched = store.create_run(make_recipe("s"), job="compression.explore.search:run_search")
    assert [store.get_run(r)["kind"] for r in (trained, titled, searched)] == ["baseline", "recipe", "search"]
    with pytest.raises(CompressionError, match="kind must be one of"):
        store.create_run(make_recipe(), kind="lesson")
    assert store.integrity_check() == "ok"


def test_status_is_the_run_status_enum(store):
    run_id = store.create_run(make_recipe())
    assert store.get_run(run_id)["status"] is RunStatus.QUEUED
    assert store.set_status(run_id, RunStatus.RUNNING) and store.get_run(run_id)["status"] is RunStatus.RUNNING
    assert store.set_status(run_id, "ok", expected=[RunStatus.RUNNING])
    assert store.get_run(run_id)["status"] is RunStatus.OK and store.get_run(run_id)["status"].final
    assert store_module.STATUSES == tuple(s.value for s in RunStatus)
    with pytest.raises(ValueError, match="status must be one of"):
        store.set_status(run_id, "done")


def test_a_newer_database_is_refused(tmp_path):
    Store(tmp_path / "lab")
    conn = sqlite3.connect(tmp_path / "lab" / "lab.sqlite3")
    conn.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    conn.close()
    with pytest.raises(CompressionError, match="newer Compression Lab"):
        Store(tmp_path / "lab")


# ---------------------------------------------------------------- runs


def test_create_get_list_runs(store):
    first = store.create_run(make_recipe("first"), session="a")
    second = store.create_run(make_recipe("second", ("float32",)), session="b")
    assert first < second  # ids sort by creation

    run = store.get_run(first)
    assert run["status"] == "queued" and run["title"] == "first" and run["session"] == "a"
    assert (run["dataset"], run["model"], run["n_variants"]) == ("digits", "seed_cnn", 2)
    assert run["started"] is None and run["duration"] is None and run["progress"] is None
    assert run["job"] == "compression.run.recipe:run_recipe"
    assert run["dir"] == store.run_dir(first) == store.root / "runs" / first
    assert store.recipe(first) == make_recipe("first")
    assert store.results(first) is None

    assert [r["id"] for r in store.list_runs()] == [second, first]
    assert [r["id"] for r in store.list_runs(session="b")] == [second]
    assert "best_ratio" in store.list_runs()[0]

    with pytest.raises(CompressionError, match="no run"):
        store.get_run("20990101-000000-000-000000")
    with pytest.raises(CompressionError, match="not a run id"):
        store.run_dir("../etc")
    with pytest.raises(CompressionError, match="job must look like"):
        store.create_run(make_recipe(), job="os.system")


def test_status_lifecycle_and_best_ratio(store):
    run_id = finished_run(store)
    run = store.get_run(run_id)
    assert run["status"] == "ok" and run["finished"] is not None and run["duration"] >= 0
    assert run["best_ratio"] == pytest.approx(4.0)  # int8: 1000 / 250, within 1 point
    assert store.list_runs()[0]["best_ratio"] == pytest.approx(4.0)
    assert not store.set_status(run_id, "failed", expected=("running",))  # final stays final
    assert store.get_run(run_id)["status"] == "ok"


def test_best_ratio_keeps_only_ok_variants_within_one_point():
    results = {
        "reference": {"gzip_bytes": 1200, "accuracy": 0.90},
        "variants": [
            {"name": "a", "status": "ok", "gzip_bytes": 600, "accuracy": 0.891},  # 2.0, -0.9 point
            {"name": "b", "status": "ok", "gzip_bytes": 100, "accuracy": 0.85},  # too inaccurate
            {"name": "c", "status": "failed", "gzip_bytes": 50, "accuracy": 0.95},  # failed
            {"name": "d", "status": "ok", "gzip_bytes": None, "accuracy": None},
        ],
    }
    assert best_ratio(results) == pytest.approx(2.0)
    assert best_ratio({"variants": []}) is None
    assert best_ratio(None) is None


def test_cancel_of_queued_and_running_runs(store):
    queued = store.create_run(make_recipe())
    assert store.request_cancel(queued) == "cancelled"
    assert store.get_run(queued)["status"] == "cancelled"
    running = store.create_run(make_recipe())
    assert store.claim_next(1) == running
    assert not store.cancel_requested(running)
    assert store.request_cancel(running) == "running"
    assert store.cancel_requested(running) and store.get_run(running)["cancel_requested"]


def test_claim_respects_the_store_wide_limit(store):
    a, b = store.create_run(make_recipe("a")), store.create_run(make_recipe("b"))
    assert store.claim_next(1) == a
    assert store.claim_next(1) is None
    assert store.claim_next(2) == b
    assert store.claim_next(2) is None


# ---------------------------------------------------------------- events


def test_events_since_id_and_last_progress(store):
    run_id = store.create_run(make_recipe())
    ids = [store.add_event(run_id, {"phase": "fine_tune", "variant": "int8", "epoch": e}) for e in (1, 2, 3)]
    assert [e["epoch"] for e in store.events(run_id)] == [1, 2, 3]
    assert [e["epoch"] for e in store.events(run_id, since_id=ids[0])] == [2, 3]
    assert store.get_run(run_id)["progress"]["epoch"] == 3
    assert all("time" in e and "id" in e for e in store.events(run_id))


def test_batch_events_are_thinned_not_truncated(store, monkeypatch):
    monkeypatch.setattr(store_runs, "MAX_BATCH_EVENTS", 20)  # the run records' module of the store package
    run_id = store.create_run(make_recipe())
    for batch in range(100):
        store.add_event(run_id, {"phase": "fine_tune", "batch": batch})
        if batch % 10 == 0:
            store.add_event(run_id, {"phase": "fine_tune", "epoch": batch // 10})
    events = store.events(run_id)
    batches = [e["batch"] for e in events if e.get("batch") is not None]
    assert 10 <= len(batches) <= 20
    assert batches[0] == 0 and batches[-1] >= 90  # the whole span survives
    assert len([e for e in events if e.get("batch") is None]) == 10  # epoch events all kept


def test_numpy_values_in_events_are_stored(store):
    import numpy as np

    run_id = store.create_run(make_recipe())
    store.add_event(run_id, {"phase": "variant_done", "data": {"row": {"acc": np.float32(0.5), "v": np.arange(3)}}})
    assert store.events(run_id)[0]["data"]["row"] == {"acc": 0.5, "v": [0, 1, 2]}


def test_two_threads_writing_events_at_once_do_not_lock(store):
    runs = [store.create_run(make_recipe(f"t{i}")) for i in range(2)]
    errors = []
    barrier = threading.Barrier(3)

    def writer(run_id):
        try:
            barrier.wait()
            for i in range(300):
                store.add_event(run_id, {"phase": "fine_tune", "epoch": i, "batch": None})
                if i % 50 == 0:
                    store.list_runs()
        except Exception as exc:  # collected, asserted below
            errors.append(exc)

    def reader():
        try:
            barrier.wait()
            for _ in range(300):
                store.events(runs[0])
                store.get_run(runs[1])
        except Exception as exc:
            errors.append(exc)

    threads = [threading.Thread(target=writer, args=(r,)) for r in runs] + [threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert [len(store.events(r)) for r in runs] == [300, 300]
    assert store.integrity_check() == "ok"


# ---------------------------------------------------------------- liveness


def test_mark_interrupted_only_touches_runs_with_a_dead_worker(store):
    import fcntl

    dead = store.create_run(make_recipe("dead"))
    alive = store.create_run(make_recipe("alive"))
    starting = store.create_run(make_recipe("starting"))
    queued = store.create_run(make_recipe("queued"))
    assert {store.claim_next(5) for _ in range(3)} == {dead, alive, starting}

    exited = subprocess.Popen([sys.executable, "-c", "pass"])
    exited.wait()
    store.set_pid(dead, exited.pid)
    (store.run_dir(dead) / "worker.lock").touch()  # lock file with no holder: its worker is gone
    store.add_event(dead, {"phase": "convert", "variant": "int8"})

    fd = os.open(store.run_dir(alive) / "worker.lock", os.O_RDWR | os.O_CREAT)
    fcntl.flock(fd, fcntl.LOCK_EX)  # a live holder
    store.set_pid(alive, 999_999)
    try:
        assert store.mark_interrupted() == [dead]
    finally:
        os.close(fd)
    run = store.get_run(dead)
    assert run["status"] == "interrupted"
    assert "while converting variant 'int8'" in run["error"]
    assert store.get_run(alive)["status"] == "running"
    assert store.get_run(starting)["status"] == "running"  # claimed a moment ago, no pid yet
    assert store.get_run(queued)["status"] == "queued"


def test_a_run_executed_in_process_is_not_claimed_or_interrupted_while_its_process_lives(store):
    # How the CLI records a run it runs itself: no worker, no lock file, its own pid.
    direct = store.create_run(make_recipe("cli"), session="cli", running=True)
    assert store.get_run(direct)["pid"] == os.getpid() and store.get_run(direct)["started"]
    legacy = store.create_run(make_recipe("cli, older style"))
    store.set_status(legacy, "running")
    assert store.get_run(legacy)["pid"] == os.getpid()
    assert store.claim_next(10) is None
    assert store.mark_interrupted() == []
    assert store.add_event(direct, {"phase": "baseline"}) > 0
    with pytest.raises(CompressionError):
        store.add_event("20990101-000000-000-000000", {"phase": "baseline"})


# ---------------------------------------------------------------- atomic files


def test_atomic_writes_replace_whole_files_and_leave_no_temporaries(tmp_path, monkeypatch):
    import compression._io

    assert atomic_write_bytes is compression._io.atomic_write_bytes  # one implementation for the engine
    target = tmp_path / "results.json"
    atomic_write_text(target, '{"a": 1}')
    atomic_write_bytes(target, b'{"a": 2}')
    assert target.read_bytes() == b'{"a": 2}'

    def disk_full(fd):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(compression._io.os, "fsync", disk_full)
    with pytest.raises(OSError):
        atomic_write_bytes(target, b'{"a": 3, "half": ')
    monkeypatch.undo()
    assert target.read_bytes() == b'{"a": 2}'  # the old whole file, not a half new one
    assert [p.name for p in tmp_path.iterdir()] == ["results.json"]


# ---------------------------------------------------------------- delete, export, import


def snapshot(folder: Path) -> dict[str, bytes]:
    return {p.relative_to(folder).as_posix(): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


def test_delete_removes_row_events_and_folder(store):
    run_id = finished_run(store)
    keep = finished_run(store, "keep")
    store.delete_run(run_id)
    assert not store.run_dir(run_id).exists()
    assert store.events(run_id) == []
    with pytest.raises(CompressionError):
        store.get_run(run_id)
    assert [r["id"] for r in store.list_runs()] == [keep]
    assert [p.name for p in store.runs_root.iterdir()] == [keep]


def test_running_runs_cannot_be_deleted_or_exported(store):
    run_id = store.create_run(make_recipe())
    with pytest.raises(CompressionError, match="once it has finished"):
        store.export_run(run_id)
    store.claim_next(1)
    with pytest.raises(CompressionError, match="cancel it before deleting"):
        store.delete_run(run_id)


def test_export_import_byte_for_byte_with_events(store, tmp_path):
    run_id = finished_run(store)
    files, row, events = snapshot(store.run_dir(run_id)), store.get_run(run_id), store.events(run_id)
    data = store.export_run(run_id)
    store.delete_run(run_id)

    other = Store(tmp_path / "elsewhere")  # another machine's store
    assert other.import_run(data) == run_id
    assert snapshot(other.run_dir(run_id)) == files
    assert other.get_run(run_id) | {"dir": None} == row | {"dir": None}
    strip = [{k: v for k, v in e.items() if k != "id"} for e in events]
    assert [{k: v for k, v in e.items() if k != "id"} for e in other.events(run_id)] == strip

    # Importing the same run again is refused in a sentence, not silently duplicated.
    with pytest.raises(CompressionError, match=f"already in the store \\(run {run_id}"):
        other.import_run(data)
    assert [r["id"] for r in other.list_runs()] == [run_id]
    # A different run under that id (its results changed here): the import gets a new id.
    (other.run_dir(run_id) / "results.json").write_text("{}")
    copy = other.import_run(data)
    assert copy != run_id and snapshot(other.run_dir(copy)) == files
    assert other.get_run(copy)["title"] == row["title"]


def test_an_export_from_before_run_kinds_imports_with_the_kind_of_its_title(store, tmp_path):
    run_id = finished_run(store, title="Baseline: seed_cnn on digits")
    archive = zipfile.ZipFile(io.BytesIO(store.export_run(run_id)))
    members = {i.filename: archive.read(i) for i in archive.infolist()}
    manifest = json.loads(members.pop("manifest.json"))
    del manifest["run"]["kind"]
    new = Store(tmp_path / "elsewhere").import_run(_zip(members, manifest))
    assert Store(tmp_path / "elsewhere").get_run(new)["kind"] is RunKind.BASELINE


def _zip(members: dict[str, bytes], manifest: dict | None = None) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        if manifest is not None:
            archive.writestr("manifest.json", json.dumps(manifest))
    return buffer.getvalue()


def test_import_refuses_bad_archives(store):
    good = store.export_run(finished_run(store))
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        manifest = json.loads(archive.read("manifest.json"))
        recipe = archive.read("run/recipe.json")

    def refused(data, match, **kw):
        with pytest.raises(CompressionError, match=match):
            store.import_run(data, **kw)

    refused(b"not a zip", "not a zip")
    refused(_zip({"run/recipe.json": recipe}), "no manifest")
    refused(_zip({"run/../../evil.txt": b"x"}, manifest), "unsafe name")
    refused(_zip({"/etc/evil": b"x"}, manifest), "unsafe name")
    refused(_zip({"elsewhere/file": b"x"}, manifest), "unsafe name")
    refused(good, "import limit", max_bytes=1000)
    bad_hash = manifest | {"files": {k: "0" * 64 for k in manifest["files"]}}
    members = {}
    with zipfile.ZipFile(io.BytesIO(good)) as archive:
        members = {n: archive.read(n) for n in archive.namelist() if n != "manifest.json"}
    refused(_zip(members, bad_hash), "checksum")
    refused(_zip(members | {"run/extra.bin": b"x"}, manifest), "does not match its manifest")
    refused(_zip(members, manifest | {"run": manifest["run"] | {"id": "../x"}}), "invalid run id")
    refused(_zip(members, manifest | {"format": "something-else"}), "unknown manifest format")

    link = io.BytesIO()
    with zipfile.ZipFile(link, "w") as archive:
        info = zipfile.ZipInfo("run/link")
        info.external_attr = 0o120777 << 16
        archive.writestr(info, "/etc/passwd")
        archive.writestr("manifest.json", json.dumps(manifest))
    refused(link.getvalue(), "link")

    # Nothing half-imported is left behind.
    assert len(store.list_runs()) == 1
    assert [p.name for p in store.runs_root.iterdir() if p.name.startswith(".")] == []
