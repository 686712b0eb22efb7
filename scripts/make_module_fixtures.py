#!/usr/bin/env python3
"""Regenerate tests/fixtures/module-snapshots/: small snapshots made by the reference module.

The module (ATOCORE_REFERENCE_DIR, else ../shared/reference) backs up a tiny store built here
(a WAL-mode database of a few KiB, a registry, a small Chroma folder) three times,
at fixed stamps, with and without --chroma. The store is built under
/tmp/atocore-module-fixtures, so the absolute paths the module records point there;
that folder is removed at the end, so tests prove the snapshots are found by
relocation, not at their recorded paths.

Usage: python3 scripts/make_module_fixtures.py
"""

from __future__ import annotations

import gc
import json
import os
import random
import shutil
import sqlite3
import sys
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
REFERENCE_DIR = Path(os.environ.get("ATOCORE_REFERENCE_DIR", ROOT.parent / "shared" / "reference"))
WORK = Path("/tmp/atocore-module-fixtures")
TARGET = ROOT / "tests" / "fixtures" / "module-snapshots" / "backups" / "snapshots"
SEGMENT = "00000000-5e9a-4c1d-8f00-000000000000"

# (stamp time, include Chroma, ledger rows added before this snapshot)
SNAPSHOTS = [
    (datetime(2026, 4, 9, 1, 2, 3, 123456, tzinfo=UTC), False, 3),
    (datetime(2026, 4, 10, 1, 2, 3, 500000, tzinfo=UTC), True, 2),
    (datetime(2026, 4, 12, 23, 59, 59, 999999, tzinfo=UTC), True, 4),
]


def make_store(data: Path, rng: random.Random) -> None:
    data.mkdir(parents=True)
    db = sqlite3.connect(data / "atocore.db", isolation_level=None)
    db.executescript(
        """
        PRAGMA journal_mode=WAL;
        CREATE TABLE projects (id INTEGER PRIMARY KEY, name TEXT NOT NULL UNIQUE, created_at TEXT NOT NULL);
        CREATE TABLE documents (id INTEGER PRIMARY KEY, project_id INTEGER NOT NULL REFERENCES projects(id),
          title TEXT NOT NULL, body TEXT NOT NULL);
        CREATE TABLE ledger (id INTEGER PRIMARY KEY, amount INTEGER NOT NULL);
        CREATE TABLE ledger_total (id INTEGER PRIMARY KEY CHECK (id = 1), total INTEGER NOT NULL);
        INSERT INTO ledger_total VALUES (1, 0);
        INSERT INTO projects VALUES (1, 'atlas', '2026-01-01T00:00:00Z'), (2, 'borealis', '2026-01-01T00:00:00Z');
        INSERT INTO documents VALUES (1, 1, 'Document 1', 'lorem ipsum'), (2, 2, 'Document 2', 'dolor sit amet');
        """
    )
    db.close()
    registry = {"projects": [{"id": name, "aliases": [name.upper()], "root": f"/srv/{name}"} for name in ("atlas", "borealis")]}
    (data / "project-registry.json").write_text(json.dumps(registry, indent=2) + "\n", encoding="utf-8")
    chroma = data / "chroma"
    (chroma / SEGMENT).mkdir(parents=True)
    cdb = sqlite3.connect(chroma / "chroma.sqlite3", isolation_level=None)
    cdb.executescript(
        f"""
        PRAGMA journal_mode=WAL;
        CREATE TABLE collections (id TEXT PRIMARY KEY, name TEXT NOT NULL);
        CREATE TABLE segments (id TEXT PRIMARY KEY, collection TEXT NOT NULL, scope TEXT NOT NULL);
        INSERT INTO collections VALUES ('c0', 'atocore');
        INSERT INTO segments VALUES ('{SEGMENT}', 'c0', 'VECTOR');
        """
    )
    cdb.close()
    for name, size in (("header.bin", 100), ("data_level0.bin", 2048), ("length.bin", 400),
                       ("link_lists.bin", 256), ("index_metadata.pickle", 200)):
        (chroma / SEGMENT / name).write_bytes(rng.randbytes(size))


def add_ledger_rows(db_path: Path, count: int, start: int) -> None:
    db = sqlite3.connect(db_path, isolation_level=None)
    for amount in range(start, start + count):
        db.execute("BEGIN IMMEDIATE")
        db.execute("INSERT INTO ledger (amount) VALUES (?)", (amount,))
        db.execute("UPDATE ledger_total SET total = total + ? WHERE id = 1", (amount,))
        db.execute("COMMIT")
    db.close()


def main() -> int:
    shutil.rmtree(WORK, ignore_errors=True)
    data = WORK / "data"
    make_store(data, random.Random(20260409))
    os.environ.update({
        "ATOCORE_DB_PATH": str(data / "atocore.db"),
        "ATOCORE_BACKUP_DIR": str(WORK / "backups"),
        "ATOCORE_PROJECT_REGISTRY_PATH": str(data / "project-registry.json"),
        "ATOCORE_CHROMA_PATH": str(data / "chroma"),
    })
    sys.path.insert(0, str(REFERENCE_DIR))
    from atocore.ops.backup import create_runtime_backup  # noqa: E402 (needs the environment above)

    rows = 1
    for when, include_chroma, added in SNAPSHOTS:
        add_ledger_rows(data / "atocore.db", added, rows)
        rows += added
        result = create_runtime_backup(timestamp=when, include_chroma=include_chroma)
        if not result["validated"]:
            raise SystemExit(f"the module did not validate its own snapshot: {result['validation_errors']}")
    gc.collect()  # the module's validation leaves its connection to be collected; closing it removes -wal/-shm
    made = WORK / "backups" / "snapshots"
    leftovers = [str(path) for path in made.rglob("*") if path.name.endswith(("-wal", "-shm", "-journal"))]
    if leftovers:
        raise SystemExit(f"sidecar files in the module's snapshots: {leftovers}")
    shutil.rmtree(TARGET, ignore_errors=True)
    shutil.copytree(made, TARGET, symlinks=True)
    shutil.rmtree(WORK)
    print("\n".join(sorted(path.name for path in TARGET.iterdir())))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
