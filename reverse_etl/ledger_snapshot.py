"""The ledger's read-only snapshot off DuckDB: the same two tables, where the engine's build reads them.

The ledger itself stays in SQLite on every engine: exactly-once rests on its local transactions
(each state change commits before the next request goes out) and one sync runs at a time on one
machine (docs/reverse_etl.md). Only its published snapshot follows the engine:

- **PostgreSQL**: schema `raw_ledger` (tables `line_states`, `sync_runs`, the columns and types of
  the DuckDB snapshot) in the warehouse's database, both tables replaced in ONE transaction: a
  reader sees the previous snapshot or the new one, never half of either;
- **Spark**: Parquet under `<lake>/raw_ledger/<table>/` (the lake is `data/lake` beside the
  ledger's snapshot), each table's folder written aside and renamed into place (an atomic
  exchange of the two folders where Linux offers one, else two renames).

`tables` is an in-memory DuckDB connection holding the two tables already typed (ledger.py builds
it the same way as the DuckDB snapshot, so the three snapshots agree column for column).
"""

from __future__ import annotations

import ctypes
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

import duckdb

SCHEMA = "raw_ledger"
# DuckDB type -> PostgreSQL type where the names differ (decimal, varchar, ... are the same)
_PG_TYPES = {"double": "double precision"}
_INSERT_PAGE = 1000


def pg_type(duckdb_type: str) -> str:
    return _PG_TYPES.get(duckdb_type, duckdb_type)


def to_postgres(tables: duckdb.DuckDBPyConnection, columns: Mapping[str, Mapping[str, str]]) -> str:
    """Replace raw_ledger's tables in one transaction; where they went (no password)."""
    import psycopg2
    import psycopg2.extras

    from billable.engine import postgres_settings

    settings = postgres_settings()
    connection = psycopg2.connect(connect_timeout=30, **settings.connect_kwargs())
    try:
        with connection, connection.cursor() as cursor:  # one transaction: commit at the end, else rollback
            # a build reading the previous snapshot holds it a while; wait, but not for ever
            cursor.execute("set local lock_timeout = '10min'")
            cursor.execute(f"create schema if not exists {SCHEMA}")
            for name, types in columns.items():
                names = ", ".join(types)
                cursor.execute(f"drop table if exists {SCHEMA}.{name}")
                cursor.execute(
                    f"create table {SCHEMA}.{name} ("
                    + ", ".join(f"{column} {pg_type(sql_type)}" for column, sql_type in types.items())
                    + ")"
                )
                rows = tables.execute(f"select {names} from {name}").fetchall()
                psycopg2.extras.execute_values(
                    cursor, f"insert into {SCHEMA}.{name} ({names}) values %s", rows, page_size=_INSERT_PAGE
                )
    finally:
        connection.close()
    return f"{settings.describe()} schema {SCHEMA}"


def to_parquet(tables: duckdb.DuckDBPyConnection, names: list[str], lake: Path) -> Path:
    """Write each table as <lake>/raw_ledger/<table>/snapshot.parquet, folder by folder swapped in."""
    root = lake / SCHEMA
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        final = root / name
        staging = root / f".{name}.publishing"
        shutil.rmtree(staging, ignore_errors=True)
        staging.mkdir()
        target = staging / "snapshot.parquet"
        quoted = str(target).replace("'", "''")
        tables.execute(f"copy {name} to '{quoted}' (format parquet)")
        _fsync(target)
        _fsync(staging)
        if final.exists() and _exchange(staging, final):
            shutil.rmtree(staging, ignore_errors=True)  # now holds the previous snapshot
        else:
            aside = root / f".{name}.replaced"
            shutil.rmtree(aside, ignore_errors=True)
            if final.exists():
                os.rename(final, aside)
            os.rename(staging, final)
            shutil.rmtree(aside, ignore_errors=True)
        _fsync(root)
    return root


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _exchange(first: Path, second: Path) -> bool:
    """Swap two folders atomically (Linux renameat2 RENAME_EXCHANGE); False where unavailable."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        renameat2 = libc.renameat2
    except (OSError, AttributeError):
        return False
    at_fdcwd, rename_exchange = -100, 2
    done = renameat2(at_fdcwd, os.fsencode(first), at_fdcwd, os.fsencode(second), rename_exchange)
    return int(done) == 0
