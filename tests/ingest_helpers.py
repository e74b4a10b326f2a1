"""Shared pieces for ingestion tests: a generated world, the real runner as a subprocess, DuckDB reads."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from sandbox.connection import connection_settings as sandbox_settings

ROOT = Path(__file__).resolve().parent.parent

# Retries stay real but quick in tests: dlt's backoff, capped.
FAST_RETRIES = {
    "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.05",
    "RUNTIME__REQUEST_MAX_RETRY_DELAY": "2",
    "RUNTIME__REQUEST_MAX_ATTEMPTS": "12",
}


def generate_world(out: Path, preset: str = "tiny", seed: int = 5) -> Path:
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "sandbox",
            "generate",
            "--preset",
            preset,
            "--seed",
            str(seed),
            "--out",
            str(out),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return out


def copy_world(source: Path, target: Path) -> Path:
    shutil.copytree(source, target, ignore=shutil.ignore_patterns("sandbox-*.log"))
    return target


def advance(world: Path, days: float = 0, hours: float = 0) -> None:
    """Move the world's clock with the real CLI."""
    command = [sys.executable, "-m", "sandbox", "advance", "--world", str(world)]
    command += ["--days", str(days), "--hours", str(hours)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr


def ingest_command(raw_db: Path, sources: str) -> list[str]:
    return [sys.executable, "-m", "ingestion", "--raw-db", str(raw_db), "--sources", sources]


def ingest_env(base_url: str, world: Path, **extra: str) -> dict[str, str]:
    return {**os.environ, **sandbox_settings(base_url, world), **FAST_RETRIES, **extra}


def ingest(
    base_url: str, world: Path, raw_db: Path, sources: str, **extra: str
) -> subprocess.CompletedProcess:
    """Run the real ingestion runner against the sandbox; returns the finished process."""
    return subprocess.run(
        ingest_command(raw_db, sources),
        cwd=ROOT,
        env=ingest_env(base_url, world, **extra),
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )


def query(raw_db: Path, sql: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(raw_db), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()
