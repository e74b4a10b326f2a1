"""The dashboards on Spark (BILLABLE_ENGINE=spark): DuckDB over the published Parquet snapshot.

No JVM in the dashboard process: a Spark build publishes each table of the audited build as a
Parquet snapshot, `data/spark/published/<run_id>/<schema>/<table>/part-*.parquet`, then replaces
the pointer file `data/spark/published/CURRENT` (one atomic rename) naming that run
(billable/spark_engine.py, `publish`). The dashboards read the pointer once per page run and query
that snapshot through an in-memory DuckDB holding one view per table (`marts.rpt_wip` over its
folder's Parquet files): the same SQL and the same frames as on a DuckDB warehouse. A snapshot
never changes once written and the previous one is kept, so a page run that started on it can
finish while the next build is published.
"""

from __future__ import annotations

import threading
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import duckdb

PUBLISHED = Path("spark") / "published"
CURRENT_FILE = "CURRENT"
_KEPT = 4  # snapshot readers kept per process (a few runs may still read the previous build)

_readers: dict[str, duckdb.DuckDBPyConnection] = {}
_lock = threading.Lock()


def published_root(data_dir: Path) -> Path:
    return data_dir / PUBLISHED


def current(data_dir: Path) -> tuple[Path, str, dict[str, Any]] | None:
    """(the published snapshot's folder, its run id, what was published), or None before the first."""
    pointer = published_root(data_dir) / CURRENT_FILE
    try:
        run = pointer.read_text(encoding="utf-8").strip()
        published_at = datetime.fromtimestamp(pointer.stat().st_mtime, UTC).isoformat()
    except FileNotFoundError:
        return None
    if not run:
        return None
    return (
        published_root(data_dir) / run,
        run,
        {"run_id": run, "published_at": published_at, "engine": "spark"},
    )


def reader(snapshot: str) -> duckdb.DuckDBPyConnection:
    """A cursor on this process's in-memory DuckDB over one snapshot (created on first use)."""
    with _lock:
        connection = _readers.get(snapshot)
        if connection is None:
            connection = _open(Path(snapshot))
            _readers[snapshot] = connection
            while len(_readers) > _KEPT:  # dropped, not closed: a running read keeps its own cursor
                _readers.pop(next(iter(_readers)))
        return connection.cursor()


def _open(snapshot: Path) -> duckdb.DuckDBPyConnection:
    if not snapshot.is_dir():
        raise FileNotFoundError(f"the published snapshot {snapshot} is missing")
    connection = duckdb.connect()
    for schema in sorted(path for path in snapshot.iterdir() if path.is_dir()):
        connection.execute(f'create schema if not exists "{schema.name}"')
        for table in sorted(path for path in schema.iterdir() if path.is_dir()):
            if not any(table.glob("*.parquet")):
                continue
            files = str(table / "*.parquet").replace("'", "''")
            connection.execute(
                f'create view "{schema.name}"."{table.name}" as select * from read_parquet(\'{files}\')'
            )
    return connection
