"""The dashboards on PostgreSQL (BILLABLE_ENGINE=postgres): a pool, read-only sessions, frames.

- **The connection** is the readers' one (`billable.engine.postgres_reader_settings`: the
  read-only role `[billable.postgres] reader_credentials` when configured, else the warehouse's
  own). One pool per Streamlit server process (module level, keyed by the connection), at most
  BILLABLE_DASHBOARD_PG_POOL connections (default 8): a page run borrows one per query and gives it
  back, so many visitors share a few sessions (two stay open between reads).
- **Every session is read-only**: each new connection runs `SET default_transaction_read_only =
  on` (a write fails even when the configured role could write) and a statement timeout
  (BILLABLE_DASHBOARD_STATEMENT_TIMEOUT_S, default 60 s), so one runaway query cannot hold a
  session for ever. Each query is its own short transaction (autocommit): nothing stays open
  between queries, and the publish step's schema swap never waits on a dashboard.
- **The build's identity** (the cache key, like the DuckDB file's inode on DuckDB) is the OIDs of
  the published schemas (a publish renames build_* schemas into place: new OIDs) and the latest
  row of `ops.publications` when the publish step wrote one. What was published, and when, comes
  from that row, else from the latest passed build in `ops.transform_runs`.
- **Frames look like DuckDB's**: rows are typed from PostgreSQL's column types into Arrow and
  turned into a DataFrame by DuckDB, so a page gets the same dtypes on both engines (dates as
  datetime64, numerics as float64, nullable integers as Int64, ...).
"""

from __future__ import annotations

import datetime as dt
import os
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from decimal import Decimal
from typing import Any

import duckdb
import pandas as pd
import psycopg2
import psycopg2.extensions
import psycopg2.extras
import psycopg2.pool
import pyarrow as pa

from billable.engine import PostgresSettings, postgres_reader_settings

POOL_SIZE_ENV = "BILLABLE_DASHBOARD_PG_POOL"
STATEMENT_TIMEOUT_ENV = "BILLABLE_DASHBOARD_STATEMENT_TIMEOUT_S"
KEPT_OPEN = 2
PUBLISHED_SCHEMAS = ("intermediate", "marts", "ops", "seeds", "staging")

# PostgreSQL type OID -> the Arrow type its values travel as (anything else: Arrow infers).
_ARROW_TYPES: dict[int, pa.DataType] = {
    16: pa.bool_(),
    20: pa.int64(),
    21: pa.int16(),
    23: pa.int32(),
    700: pa.float32(),
    701: pa.float64(),
    1700: pa.float64(),  # numeric: DuckDB hands DECIMAL to pandas as float64 too
    25: pa.string(),
    1043: pa.string(),
    1042: pa.string(),
    19: pa.string(),
    114: pa.string(),  # json / jsonb: the text (DuckDB's JSON is text in a frame)
    3802: pa.string(),
    1082: pa.date32(),
    1114: pa.timestamp("us"),
    1184: pa.timestamp("us", tz="UTC"),
    1009: pa.list_(pa.string()),
    1015: pa.list_(pa.string()),
    1016: pa.list_(pa.int64()),
    1007: pa.list_(pa.int32()),
}


def statement_timeout_ms() -> int:
    return int(float(os.environ.get(STATEMENT_TIMEOUT_ENV, "") or 60) * 1000)


class ReaderConnection(psycopg2.extensions.connection):
    """A dashboard session: read-only by default, a statement timeout, JSON left as text."""

    def __init__(self, dsn: str, *args: Any, **kwargs: Any) -> None:
        super().__init__(dsn, *args, **kwargs)
        self.autocommit = True
        psycopg2.extras.register_default_json(self, loads=lambda text: text)
        psycopg2.extras.register_default_jsonb(self, loads=lambda text: text)
        with self.cursor() as cursor:
            cursor.execute("set default_transaction_read_only = on")
            cursor.execute(f"set statement_timeout = {statement_timeout_ms():d}")
            cursor.execute("set application_name = 'billable-dashboard'")


_pools: dict[str, psycopg2.pool.ThreadedConnectionPool] = {}
_pools_lock = threading.Lock()


def settings() -> PostgresSettings:
    return postgres_reader_settings()


def _pool(reader: PostgresSettings) -> psycopg2.pool.ThreadedConnectionPool:
    key = reader.dsn()
    with _pools_lock:
        if key not in _pools:
            size = max(1, int(os.environ.get(POOL_SIZE_ENV, "") or 8))
            # psycopg2 keeps `minconn` sessions open between reads (opened now) and closes the
            # ones above it when they come back; up to `size` at once under load
            _pools[key] = psycopg2.pool.ThreadedConnectionPool(
                min(KEPT_OPEN, size),
                size,
                connection_factory=ReaderConnection,
                connect_timeout=10,
                **reader.connect_kwargs(),
            )
        return _pools[key]


def close_pools() -> None:
    """Close every pooled session (tests; a server process just exits)."""
    with _pools_lock:
        for pool in _pools.values():
            pool.closeall()
        _pools.clear()


@contextmanager
def session() -> Iterator[ReaderConnection]:
    """A pooled read-only session, given back afterwards (dropped if it broke)."""
    pool = _pool(settings())
    connection = pool.getconn()
    broken = False
    try:
        yield connection
    except (psycopg2.OperationalError, psycopg2.InterfaceError):
        broken = True
        raise
    finally:
        pool.putconn(connection, close=broken or bool(connection.closed))


def placeholders(sql: str) -> str:
    """The dashboard's `?` parameters as psycopg2's `%s` (a literal `%` doubled)."""
    return sql.replace("%", "%%").replace("?", "%s")


def _column(values: list[Any], type_code: int) -> pa.Array:
    arrow_type = _ARROW_TYPES.get(type_code)
    if arrow_type == pa.float64() or arrow_type == pa.float32():
        values = [None if value is None else float(value) for value in values]
    if arrow_type is None:
        values = [float(value) if isinstance(value, Decimal) else value for value in values]
        return pa.array(values)
    if type_code == 1184:  # aware datetimes: to UTC
        values = [
            None if value is None else value.astimezone(dt.UTC).replace(tzinfo=None) for value in values
        ]
        return pa.array(values, pa.timestamp("us")).cast(arrow_type)
    return pa.array(values, arrow_type)


_local = threading.local()


def _frame(names: Sequence[str], type_codes: Sequence[int], rows: list[tuple]) -> pd.DataFrame:
    columns = list(zip(*rows, strict=True)) if rows else [() for _ in names]
    table = pa.table(
        {
            f"c{index}": _column(list(values), code)
            for index, (values, code) in enumerate(zip(columns, type_codes, strict=True))
        }
    )
    converter = getattr(_local, "duckdb", None)
    if converter is None:
        converter = _local.duckdb = duckdb.connect()
    frame = converter.from_arrow(table).df()
    frame.columns = list(names)  # names may repeat or clash with Arrow's rules; set them last
    return frame


def fetch(sql: str, params: Sequence[Any]) -> pd.DataFrame:
    """One query in its own read-only transaction; the rows as a DuckDB-typed frame."""
    with session() as connection, connection.cursor() as cursor:
        cursor.execute(placeholders(sql), list(params))
        description = cursor.description or ()
        rows = cursor.fetchall() if description else []
    return _frame([column.name for column in description], [column.type_code for column in description], rows)


def relations() -> frozenset[str]:
    """schema.name of every table and view the reader may see."""
    frame = fetch("select table_schema || '.' || table_name from information_schema.tables", ())
    return frozenset(frame.iloc[:, 0])


def build_identity() -> tuple[str | None, dict[str, Any]]:
    """(identity of the published build, what was published); (None, {}) when nothing is published."""
    with session() as connection, connection.cursor() as cursor:
        cursor.execute(
            "select nspname, oid::bigint from pg_namespace where nspname in %s order by nspname",
            [PUBLISHED_SCHEMAS],
        )
        schemas = cursor.fetchall()
        if not any(name == "marts" for name, _ in schemas):
            return None, {}
        identity = ",".join(f"{name}={oid}" for name, oid in schemas)
        published: dict[str, Any] = {}
        cursor.execute(
            "select to_regclass('ops.publications') is not null,"
            " to_regclass('ops.transform_runs') is not null"
        )
        has_publications, has_runs = cursor.fetchone() or (False, False)
        if has_publications:
            cursor.execute(
                "select run_id, published_at, git_commit, dbt_invocation_id, engine"
                " from ops.publications order by published_at desc limit 1"
            )
            row = cursor.fetchone()
            if row is not None:
                names = ("run_id", "published_at", "git_commit", "dbt_invocation_id", "engine")
                published = {name: _text(value) for name, value in zip(names, row, strict=True)}
                identity += f";{published['run_id']}@{published['published_at']}"
        elif has_runs:  # before the publish step records publications: the latest passed build
            cursor.execute(
                "select run_id from ops.transform_runs where status = 'passed'"
                " order by finished_at desc nulls last limit 1"
            )
            row = cursor.fetchone()
            if row is not None:
                published = {"run_id": _text(row[0])}
    return identity, published


def _text(value: Any) -> Any:
    if isinstance(value, dt.datetime):  # the publish step records UTC (naive `timestamp`)
        return (value if value.tzinfo else value.replace(tzinfo=dt.UTC)).isoformat()
    return None if value is None else str(value)
