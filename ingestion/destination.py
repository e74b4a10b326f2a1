"""Where the raw data lands, by engine (billable.engine, BILLABLE_ENGINE):

- duckdb (default): dlt's `duckdb` destination, the raw file (`--raw-db`, data/raw.duckdb);
- postgres: dlt's `postgres` destination, the warehouse's own database (the connection in dlt's
  configuration, `destination.postgres.credentials`), one schema per dataset (`raw_crm`, ...);
- spark: dlt's `filesystem` destination writing Parquet into the lake (data/lake, or
  BILLABLE_LAKE: a folder or any fsspec URL a Spark cluster also reads), one folder per dataset and
  table; dlt's filesystem destination cannot merge without Delta or Iceberg, so merge tables land
  as appends and Spark reads the latest row per key through a view (billable.spark_engine).

The local state (dlt's pipelines folder, the run lock) stays next to `--raw-db` on every engine.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import dlt

from billable import engine as engines
from billable.duckdb_config import duckdb_config

LAKE_ENV = "BILLABLE_LAKE"


def lake_url(data_dir: Path) -> str:
    """The lake's root URL: BILLABLE_LAKE, else `lake/` in the data folder (the raw database's)."""
    configured = os.environ.get(LAKE_ENV, "").strip()
    if configured:
        return configured if "://" in configured else Path(configured).resolve().as_uri()
    return (data_dir.resolve() / "lake").as_uri()


def lake_path(data_dir: Path) -> Path:
    """The lake as a local folder (the sandbox and the tests use a local lake)."""
    url = lake_url(data_dir)
    if not url.startswith("file://"):
        raise engines.EngineError(f"{LAKE_ENV}={url} is not a local folder; this step needs one")
    return Path(url.removeprefix("file://"))


def engine_problem(data_dir: Path) -> str | None:
    """What is wrong with the engine's settings, checked before anything loads (None: all fine):
    an unknown engine, PostgreSQL's connection missing or refused, a lake that is not a folder,
    DuckDB settings it cannot take."""
    try:
        engine = engines.engine_name()
        if engine == "postgres":
            settings = engines.postgres_settings()
            import psycopg2

            try:
                psycopg2.connect(**settings.connect_kwargs(), connect_timeout=15).close()
            except psycopg2.Error as err:
                return f"cannot connect to PostgreSQL at {settings.describe()}: {str(err).strip()}"
        elif engine == "spark":
            lake_path(data_dir)
        else:
            duckdb_config()  # a memory limit or thread count DuckDB cannot take
    except engines.EngineError as err:
        return str(err)
    return None


def raw_destination(raw_db: Path, engine: str | None = None) -> Any:
    """The dlt destination the loaders write to."""
    engine = engine or engines.engine_name()
    if engine == "postgres":
        return dlt.destinations.postgres(credentials=engines.postgres_settings().dsn())
    if engine == "spark":
        return dlt.destinations.filesystem(bucket_url=lake_url(raw_db.parent))
    # DuckDB's memory limit and threads for the loader's writes (billable.duckdb_config)
    from dlt.destinations.impl.duckdb.configuration import DuckDbCredentials

    return dlt.destinations.duckdb(DuckDbCredentials(str(raw_db), global_config=duckdb_config()))


def loader_file_format(engine: str | None = None) -> Any:
    """The file format dlt loads with: Parquet, except on PostgreSQL.

    dlt loads Parquet into PostgreSQL by converting it to CSV and COPY ... FORCE_NULL on every
    nullable column, which turns every empty string into NULL (a record whose note is '' would
    land with no note). INSERT statements keep '' and NULL apart, at some cost in speed.
    """
    return "insert_values" if (engine or engines.engine_name()) == "postgres" else "parquet"


def dataset_tables(raw_db: Path, dataset: str, engine: str | None = None) -> set[str]:
    """The tables a dataset already has (none when the raw store or the dataset does not exist)."""
    engine = engine or engines.engine_name()
    if engine == "postgres":
        with engines.transaction() as cursor:
            cursor.execute(
                "select table_name from information_schema.tables where table_schema = %s", [dataset]
            )
            return {name for (name,) in cursor.fetchall()}
    if engine == "spark":
        folder = lake_path(raw_db.parent) / dataset
        if not folder.is_dir():
            return set()
        return {child.name for child in folder.iterdir() if child.is_dir() and any(child.glob("*.parquet"))}
    if not raw_db.exists():
        return set()
    import duckdb

    with duckdb.connect(str(raw_db), read_only=True) as connection:
        rows = connection.execute(
            "select table_name from information_schema.tables where table_schema = ?", [dataset]
        ).fetchall()
    return {name for (name,) in rows}


def row_identity(engine: str | None = None) -> str | None:
    """The column naming one physical row, for deleting exact copies (none on the append-only lake)."""
    return {"duckdb": "rowid", "postgres": "ctid", "spark": None}[engine or engines.engine_name()]
