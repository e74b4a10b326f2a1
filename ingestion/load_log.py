"""The load log: one row per run, source and table (rows, duration, status, error), in `ops.load_log`.

It lives in the raw DuckDB beside the data, append-only, so the warehouse and the dashboard's
pipeline-health page read the same facts the operator saw on the console.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from datetime import datetime
from pathlib import Path

import duckdb

DDL = """
create schema if not exists ops;
create table if not exists ops.load_log (
    run_id varchar not null,
    source varchar not null,
    dataset varchar not null,
    table_name varchar,
    rows bigint not null,
    started_at timestamptz not null,
    duration_s double not null,
    status varchar not null,
    error varchar
);
"""


@dataclass(frozen=True)
class LoadLogEntry:
    run_id: str
    source: str
    dataset: str
    table_name: str | None
    rows: int
    started_at: datetime
    duration_s: float
    status: str  # loaded | failed
    error: str | None

    def describe(self) -> str:
        if self.status == "failed":
            return f"{self.source}: FAILED after {self.duration_s:.1f} s: {self.error}"
        target = f"{self.dataset}.{self.table_name}" if self.table_name else self.dataset
        return f"{target}: {self.rows:,} rows ({self.duration_s:.1f} s for the source)"


def write_load_log(raw_db: Path, entries: list[LoadLogEntry]) -> None:
    """Append entries to `ops.load_log` (creating it on first use)."""
    if not entries:
        return
    columns = ", ".join(field.name for field in fields(LoadLogEntry))
    placeholders = ", ".join("?" for _ in fields(LoadLogEntry))
    with duckdb.connect(str(raw_db)) as connection:
        connection.execute(DDL)
        connection.executemany(
            f"insert into ops.load_log ({columns}) values ({placeholders})",
            [astuple(entry) for entry in entries],
        )
