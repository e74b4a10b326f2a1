"""Building and reading warehouses in tests: the real transform runner, real DuckDB files."""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from billable.sandbox_process import running_sandbox
from tests.ingest_helpers import ROOT, generate_world, ingest


def load_tiny_world(folder: Path, seed: int = 7) -> tuple[Path, Path]:
    """Generate a tiny world and load all five systems from its sandbox; (world, raw db)."""
    world = generate_world(folder / "world", seed=seed)
    raw_db = folder / "raw.duckdb"
    with running_sandbox(world) as base_url:
        result = ingest(base_url, world, raw_db, "")
    assert result.returncode == 0, result.stdout + result.stderr
    return world, raw_db


def transform(
    raw_db: Path, out: Path, *extra: str, build_dir: Path | None = None
) -> subprocess.CompletedProcess:
    """`python -m billable.transform` publishing `out/warehouse.duckdb` (built in `out/build`)."""
    command = [sys.executable, "-m", "billable.transform", "--raw-db", str(raw_db)]
    command += ["--warehouse", str(out / "warehouse.duckdb"), "--build-dir", str(build_dir or out / "build")]
    return subprocess.run(
        [*command, *extra], cwd=ROOT, capture_output=True, text=True, check=False, timeout=900
    )


def built(raw_db: Path, out: Path, *extra: str) -> Path:
    """Transform and insist it published; the published warehouse's path."""
    result = transform(raw_db, out, *extra)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out / "warehouse.duckdb"


def rows(warehouse: Path, sql: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


def copy_raw(raw_db: Path, target: Path) -> Path:
    shutil.copyfile(raw_db, target)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()
