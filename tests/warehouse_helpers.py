"""Building and reading warehouses in tests: the real transform runner, real DuckDB files."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from billable.sandbox_process import running_sandbox
from billable.transform import dbt_executable
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


def build_models(raw_db: Path, folder: Path, *select: str) -> Path:
    """`dbt build` of some models (and their own tests) from `raw_db` into `folder/warehouse.duckdb`.

    Tests that also read models not built here (tie-outs to the facts) are left out (cautious
    indirect selection). Cheaper than a whole transform when a test needs only a few models.
    """
    folder.mkdir(parents=True)
    build_db = folder / "warehouse.duckdb"
    project = ROOT / "dbt_project"
    command = [*dbt_executable(), "build", "--project-dir", str(project), "--profiles-dir", str(project)]
    command += ["--target-path", str(folder / "target"), "--log-path", str(folder / "logs")]
    command += ["--select", *select, "--indirect-selection", "cautious"]
    env = {**os.environ, "BILLABLE_RAW_DB": str(raw_db), "BILLABLE_BUILD_DB": str(build_db)}
    env["DBT_USE_COLORS"] = "false"
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return build_db
