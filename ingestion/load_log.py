"""The load log: one row per run, source and table (rows, duration, status, error), in `ops.load_log`.

It lives beside the raw data, append-only, so the warehouse and the dashboard's pipeline-health
page read the same facts the operator saw on the console: `ops.load_log` in the raw DuckDB;
`raw_ops.load_log` in PostgreSQL (the warehouse's database has an `ops` of its own); on the
lake, one Parquet file per source and run under `raw_ops/load_log/`, written then renamed.
"""

from __future__ import annotations

from dataclasses import astuple, dataclass, fields
from datetime import datetime
from pathlib import Path

from billable import engine as engines

COLUMNS = """
    run_id varchar not null,
    source varchar not null,
    dataset varchar not null,
    table_name varchar,
    rows bigint not null,
    started_at timestamptz not null,
    duration_s double precision not null,
    status varchar not null,
    error varchar
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
    """Append entries to the load log (creating it on first use), in the configured engine."""
    if not entries:
        return
    engine = engines.engine_name()
    schema = engines.raw_ops_schema(engine)
    names = [field.name for field in fields(LoadLogEntry)]
    insert = f"insert into {schema}.load_log ({', '.join(names)}) values ({{}})"
    ddl = f"create schema if not exists {schema}; create table if not exists {schema}.load_log ({COLUMNS});"
    if engine == "spark":
        write_lake_log(raw_db.parent, entries)
    elif engine == "postgres":
        with engines.transaction() as cursor:
            cursor.execute(ddl)
            cursor.executemany(
                insert.format(", ".join("%s" for _ in names)),
                [astuple(entry) for entry in entries],
            )
    else:
        import duckdb

        with duckdb.connect(str(raw_db)) as connection:
            connection.execute(ddl)
            connection.executemany(
                insert.format(", ".join("?" for _ in names)),
                [astuple(entry) for entry in entries],
            )


def write_lake_log(data_dir: Path, entries: list[LoadLogEntry]) -> None:
    """One Parquet file per source and run in the lake's raw_ops/load_log, by write-then-rename."""
    import os

    import pyarrow as pa
    import pyarrow.parquet as pq

    from ingestion.destination import lake_path

    folder = lake_path(data_dir) / engines.raw_ops_schema("spark") / "load_log"
    folder.mkdir(parents=True, exist_ok=True)
    schema = pa.schema(
        [
            ("run_id", pa.string()),
            ("source", pa.string()),
            ("dataset", pa.string()),
            ("table_name", pa.string()),
            ("rows", pa.int64()),
            ("started_at", pa.timestamp("us", tz="UTC")),
            ("duration_s", pa.float64()),
            ("status", pa.string()),
            ("error", pa.string()),
        ]
    )
    rows = [dict(zip(schema.names, astuple(entry), strict=True)) for entry in entries]
    table = pa.Table.from_pylist(rows, schema)
    target = folder / f"{entries[0].run_id}.{entries[0].source}.parquet"
    partial = target.with_name(target.name + ".partial")
    pq.write_table(table, partial)
    os.replace(partial, target)
