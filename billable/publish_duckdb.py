"""Write, audit, publish on DuckDB (the default engine; docs/publishing.md).

The build writes a working file (`<build-dir>/warehouse.duckdb`) that persists between runs; when
every test passed, a checkpointed copy of it replaces the published `warehouse.duckdb` by an atomic
rename, and `warehouse.json` beside it says when and what. Readers of the published file never see
a half-built warehouse and never block a build: a rename leaves open connections on the old file.
billable.transform calls these; billable.publish_postgres does the same on PostgreSQL.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import duckdb

if TYPE_CHECKING:
    from billable.transform import Paths


def seed_working_db(paths: Paths) -> None:
    """Start a lost working file from the published warehouse, so incremental state and history
    survive losing the build folder; the first run ever starts from nothing."""
    if paths.working_db.exists() or not paths.warehouse.exists():
        return
    print(f"transform: no working warehouse; starting it from the published {paths.warehouse}")
    copy_durably(paths.warehouse, paths.working_db)


def record_run(working_db: Path, run: dict, columns: dict[str, str]) -> bool:
    """Append the run to ops.transform_runs in the working file; False when it cannot be opened."""
    placeholders = ", ".join("?" for _ in columns)
    try:
        with duckdb.connect(str(working_db)) as connection:
            connection.execute("create schema if not exists ops")
            connection.execute("create table if not exists ops.transform_runs (run_id varchar not null)")
            for column, sql_type in columns.items():
                add = f"alter table ops.transform_runs add column if not exists {column} {sql_type}"
                connection.execute(add)
            connection.execute(
                f"insert into ops.transform_runs ({', '.join(columns)}) values ({placeholders})",
                [run[column] for column in columns],
            )
    except duckdb.Error as err:
        print(f"transform: warning: could not record the run in {working_db}: {err}", file=sys.stderr)
        return False
    return True


def store_semantic_manifest(paths: Paths, run_id: str) -> None:
    """Keep this build's semantic manifest (the metric definitions dbt parsed) inside the working
    file, so the published warehouse carries the definitions of its own build (billable.metrics)."""
    manifest = paths.target_dir / "semantic_manifest.json"
    if not manifest.is_file():
        return
    with duckdb.connect(str(paths.working_db)) as connection:
        connection.execute("create schema if not exists ops")
        connection.execute(
            "create or replace table ops.semantic_manifest"
            " (run_id varchar, stored_at timestamp, manifest varchar)"
        )
        connection.execute(
            "insert into ops.semantic_manifest values (?, ?, ?)",
            [run_id, datetime.now(UTC).replace(tzinfo=None), manifest.read_text()],
        )


def publish(paths: Paths, metadata: dict) -> None:
    """Checkpoint the working file, then replace the published warehouse and its metadata."""
    checkpoint(paths.working_db)
    copy_durably(paths.working_db, paths.warehouse, verify=True)
    # After the database: the metadata never announces a build readers cannot open yet.
    write_durably(paths.metadata, (json.dumps(metadata, indent=2) + "\n").encode())


def checkpoint(database: Path) -> None:
    """Fold the write-ahead log into the file, so a byte copy of the file is the whole database."""
    with duckdb.connect(str(database)) as connection:
        connection.execute("checkpoint")
    wal = database.with_name(database.name + ".wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise RuntimeError(f"{wal} is still there after a checkpoint; a copy of {database} would miss it")


def copy_durably(source: Path, target: Path, verify: bool = False) -> None:
    """Copy `source` over `target` atomically: readers see the old file or the new, never a part."""
    staging = target.with_name(target.name + ".publishing")  # same folder: rename cannot cross disks
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(source, "rb") as reader, open(staging, "wb") as writer:
        shutil.copyfileobj(reader, writer, length=8 * 1024 * 1024)
        writer.flush()
        os.fsync(writer.fileno())
    if verify:
        verify_database(staging)
    os.replace(staging, target)
    fsync_directory(target.parent)


def write_durably(target: Path, content: bytes) -> None:
    """Write a small file atomically, the same way."""
    staging = target.with_name(target.name + ".publishing")
    with open(staging, "wb") as writer:
        writer.write(content)
        writer.flush()
        os.fsync(writer.fileno())
    os.replace(staging, target)
    fsync_directory(target.parent)


def verify_database(database: Path) -> None:
    """The copy opens as a DuckDB database and has the run log: never rename a broken file in."""
    with duckdb.connect(str(database), read_only=True) as connection:
        connection.execute("select count(*) from ops.transform_runs").fetchone()


def fsync_directory(folder: Path) -> None:
    """Make a rename in `folder` survive a power cut."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
