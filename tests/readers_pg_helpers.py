"""The readers' PostgreSQL tests: a throwaway cluster holding a copy of a published DuckDB warehouse.

The readers (dashboards, reverse ETL plan, metrics) must give the same answers on PostgreSQL as on
DuckDB *for the same warehouse*; so the tests copy one published DuckDB warehouse, table by table
and type for type, into the published schemas of a throwaway PostgreSQL 15 cluster and run both.
(Building the warehouse on PostgreSQL itself is tested by the engine's own tests.)
"""

from __future__ import annotations

import io
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import duckdb
import psycopg2
import pyarrow.csv as arrow_csv

from billable.pg_cluster import ThrowawayCluster

PUBLISHED = ("marts", "ops", "staging", "intermediate", "seeds")

_TYPES = {
    "VARCHAR": "text",
    "BIGINT": "bigint",
    "INTEGER": "integer",
    "SMALLINT": "smallint",
    "TINYINT": "smallint",
    "DOUBLE": "double precision",
    "FLOAT": "real",
    "BOOLEAN": "boolean",
    "DATE": "date",
    "TIMESTAMP": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "JSON": "jsonb",
    "HUGEINT": "numeric(38,0)",
    "UBIGINT": "numeric(20,0)",
    "UINTEGER": "bigint",
    "TIME": "time",
    "UUID": "uuid",
}


def pg_type(duck_type: str) -> str:
    upper = duck_type.upper()
    if upper.endswith("[]"):
        return pg_type(upper[:-2]) + "[]"
    if upper.startswith("DECIMAL"):
        return upper.replace("DECIMAL", "numeric")
    if upper not in _TYPES:
        raise ValueError(f"no PostgreSQL type for DuckDB's {duck_type}")
    return _TYPES[upper]


def _select(column: str, duck_type: str) -> str:
    if duck_type.endswith("[]"):  # a PostgreSQL array literal: {"a","b"}
        item = "'\"' || replace(replace(cast(x as varchar), '\\', '\\\\'), '\"', '\\\"') || '\"'"
        return (
            f'case when "{column}" is null then null else '
            f"'{{' || array_to_string(list_transform(\"{column}\", lambda x: {item}), ',') || '}}' end"
        )
    return f'"{column}"'


def copy_warehouse(warehouse: Path, dsn: str, schemas: tuple[str, ...] = PUBLISHED) -> None:
    """Every table of `schemas` from the DuckDB file into PostgreSQL (schemas replaced); nulls stay
    null and empty strings stay empty (every non-null value is quoted in the CSV)."""
    duck = duckdb.connect(str(warehouse), read_only=True)
    pg = psycopg2.connect(dsn)
    try:
        duck.execute("set timezone = 'UTC'")
        with pg, pg.cursor() as cursor:
            for schema in schemas:
                cursor.execute(f'drop schema if exists "{schema}" cascade; create schema "{schema}"')
                names = duck.execute(
                    "select table_name from information_schema.tables where table_schema = ?"
                    " and table_catalog = current_database() order by 1",
                    [schema],
                ).fetchall()
                for (table,) in names:
                    columns = duck.execute(
                        "select column_name, data_type from information_schema.columns"
                        " where table_schema = ? and table_name = ? and table_catalog = current_database()"
                        " order by ordinal_position",
                        [schema, table],
                    ).fetchall()
                    cursor.execute(
                        f'create table "{schema}"."{table}" ('
                        + ", ".join(f'"{name}" {pg_type(kind)}' for name, kind in columns)
                        + ")"
                    )
                    select = ", ".join(_select(name, kind) for name, kind in columns)
                    data = duck.sql(f'select {select} from "{schema}"."{table}"').to_arrow_table()
                    sink = io.BytesIO()
                    options = arrow_csv.WriteOptions(include_header=False, quoting_style="all_valid")
                    arrow_csv.write_csv(data, sink, options)
                    cursor.copy_expert(
                        f'copy "{schema}"."{table}" from stdin with (format csv)',
                        io.StringIO(sink.getvalue().decode()),
                    )
    finally:
        pg.close()
        duck.close()


@contextmanager
def cluster_with(warehouse: Path) -> Iterator[ThrowawayCluster]:
    """A throwaway cluster whose database `billable` holds a copy of the published warehouse."""
    with ThrowawayCluster() as cluster:
        cluster.create_database("billable")
        copy_warehouse(warehouse, cluster.dsn("billable"))
        yield cluster


def spark_snapshot(
    warehouse: Path, data_dir: Path, run_id: str, schemas: tuple[str, ...] = PUBLISHED
) -> Path:
    """The published warehouse laid out as a Spark build publishes it (billable/spark_engine.py):
    data/spark/published/<run_id>/<schema>/<table>/part-*.parquet, then CURRENT naming the run."""
    root = data_dir / "spark" / "published"
    with duckdb.connect(str(warehouse), read_only=True) as duck:
        for schema in schemas:
            names = duck.execute(
                "select table_name from information_schema.tables where table_schema = ?"
                " and table_catalog = current_database() order by 1",
                [schema],
            ).fetchall()
            for (table,) in names:
                folder = root / run_id / schema / table
                folder.mkdir(parents=True)
                target = str(folder / "part-00000-snapshot.snappy.parquet").replace("'", "''")
                duck.execute(f'copy "{schema}"."{table}" to \'{target}\' (format parquet)')
                (folder / "_SUCCESS").touch()
    pointer = root / "CURRENT.tmp"
    pointer.write_text(run_id + "\n")
    pointer.replace(root / "CURRENT")
    return root / run_id
