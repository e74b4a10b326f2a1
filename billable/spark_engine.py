"""The Spark engine (BILLABLE_ENGINE=spark): the session, the raw sources, the publish step.

One local Spark (pyspark's bundled jars only: no `spark.jars.packages`, no Delta or Iceberg)
stands in for a cluster. Its catalog is a Hive metastore in embedded Derby under
`data/spark/metastore`, its managed tables Parquet under `data/spark/warehouse`. Embedded Derby
admits one JVM at a time, so the steps run one after another, each in its own process:
`register_raw_sources` (after every load), `dbt build` (dbt-spark, `session` method, the `spark`
target of profiles.yml, whose settings `dbt_env()` passes), then `publish`.

Raw data: dlt's `filesystem` destination writes Parquet at `<lake>/<dataset>/<table>/<load_id>.
<file_id>.parquet`, with its schema versions in `<dataset>/_dlt_version/*.jsonl` and one
`<dataset>/_dlt_loads/*.jsonl` per completed load. Without Delta/Iceberg that destination cannot
merge: every load appends the records it brought. So each raw table is two objects in the
dataset's database: an external Parquet table over every file (`raw_crm.account__files`) and the
view the dbt sources read (`raw_crm.account`) that restores what a merging destination holds:
rows of completed loads only; for a table with a primary key, its latest version per key (by
`_dlt_load_id`, then the table's `dedup_sort` column); for a `merge_key` table (delete-insert:
QuickBooks invoice lines), the latest load's rows per merge key; for `replace`, the latest load;
an append table without a key, every row.

Publishing (write-audit-publish): dbt builds into `build_*` databases; when every test passed,
`publish` snapshots each built table as Parquet under `data/spark/published/<run_id>/<schema>/
<table>` and then points the published databases' views (`marts.fct_time_entries`, ...) at the
snapshot, and last replaces the file `data/spark/published/CURRENT` (an atomic rename) naming the
run. A failed build never reaches `publish`, so yesterday's snapshot stays published. Readers that
do not want a JVM (the dashboards) open the current snapshot with DuckDB: `duckdb_reader`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    from pyspark.sql import SparkSession

DATA_DIR = Path("data")
LAKE_DIR = "lake"
SPARK_DIR = "spark"
FILES_SUFFIX = "__files"
CURRENT_FILE = "CURRENT"
PUBLISHED_SCHEMAS = ("staging", "intermediate", "marts", "seeds", "ops")
BUILD_PREFIX = "build_"
KEEP_SNAPSHOTS = 2  # the one published and the one before it (a reader may still be reading it)
_NAME = re.compile(r"^[a-z_][a-z0-9_]*$")


def spark_home(data_dir: Path = DATA_DIR) -> Path:
    return (data_dir / SPARK_DIR).resolve()


def spark_settings(data_dir: Path = DATA_DIR, driver_memory: str = "3g") -> dict[str, str]:
    """The session's settings: the same for `session()` here and for dbt (profiles.yml via dbt_env)."""
    home = spark_home(data_dir)
    return {
        "spark.master": "local[2]",
        "spark.app.name": "billable",
        "spark.driver.memory": driver_memory,
        "spark.ui.enabled": "false",
        "spark.ui.showConsoleProgress": "false",
        "spark.sql.shuffle.partitions": "4",
        "spark.sql.adaptive.enabled": "true",
        "spark.sql.session.timeZone": "UTC",
        "spark.sql.ansi.enabled": "false",  # dbt-spark forces it off; the same here for the same SQL
        "spark.sql.catalogImplementation": "hive",
        "spark.sql.warehouse.dir": str(home / "warehouse"),
        "spark.hadoop.javax.jdo.option.ConnectionURL": (
            f"jdbc:derby:;databaseName={home / 'metastore'};create=true"
        ),
        "spark.driver.extraJavaOptions": f"-Dderby.system.home={home}",
        "spark.local.dir": str(home / "tmp"),
        # readers of the published Parquet (DuckDB) read int64 microseconds, not INT96
        "spark.sql.parquet.outputTimestampType": "TIMESTAMP_MICROS",
    }


def dbt_env(data_dir: Path = DATA_DIR) -> dict[str, str]:
    """What profiles.yml's `spark` target reads (the paths, absolute)."""
    home = spark_home(data_dir)
    return {"BILLABLE_SPARK_HOME": str(home), "BILLABLE_SCHEMA_PREFIX": BUILD_PREFIX}


def session(data_dir: Path = DATA_DIR) -> SparkSession:
    """The local session (one JVM per process; the metastore admits one JVM at a time)."""
    from pyspark.sql import SparkSession

    home = spark_home(data_dir)
    (home / "tmp").mkdir(parents=True, exist_ok=True)
    builder = SparkSession.builder
    for key, value in spark_settings(data_dir).items():
        builder = builder.config(key, value)
    spark = builder.enableHiveSupport().getOrCreate()
    spark.sparkContext.setLogLevel("ERROR")
    return spark


# ---- raw sources --------------------------------------------------------------------------


@dataclass(frozen=True)
class RawTable:
    """One raw table as dlt's schema declares it."""

    dataset: str
    name: str
    write_disposition: str = "append"
    primary_key: tuple[str, ...] = ()
    merge_key: tuple[str, ...] = ()
    dedup_sort: tuple[str, ...] = ()  # columns, newest first when the load is the same

    @property
    def files_table(self) -> str:
        return f"{self.dataset}.{self.name}{FILES_SUFFIX}"

    @property
    def view(self) -> str:
        return f"{self.dataset}.{self.name}"


def _read_json_records(folder: Path) -> list[tuple[str, dict[str, Any]]]:
    """(file name, record) for each `.jsonl` file dlt wrote into a `_dlt_*` folder."""
    records = []
    if folder.is_dir():
        for path in sorted(folder.iterdir()):
            if path.suffix == ".jsonl" and path.is_file():
                records.append((path.name, json.loads(path.read_text(encoding="utf-8"))))
    return records


def newest_schema(dataset_dir: Path) -> dict[str, Any] | None:
    """The dataset's newest dlt schema (file names are `<schema>__<id>__<hash>.jsonl`)."""
    newest: tuple[float, dict[str, Any]] | None = None
    for name, record in _read_json_records(dataset_dir / "_dlt_version"):
        parts = name[: -len(".jsonl")].split("__")
        try:
            stamp = float(parts[-2])
        except (IndexError, ValueError):
            continue
        if newest is None or stamp > newest[0]:
            newest = (stamp, json.loads(record["schema"]))
    return newest[1] if newest else None


def raw_tables(lake: Path) -> list[RawTable]:
    """Every table of every dataset in the lake, with its keys from dlt's schema."""
    tables = []
    for dataset_dir in sorted(p for p in lake.iterdir() if p.is_dir() and _NAME.match(p.name)):
        declared = (newest_schema(dataset_dir) or {}).get("tables", {})
        for table_dir in sorted(p for p in dataset_dir.iterdir() if p.is_dir() and _NAME.match(p.name)):
            if table_dir.name.startswith("_dlt") or not any(table_dir.glob("*.parquet")):
                continue
            spec = declared.get(table_dir.name, {})
            columns = spec.get("columns", {})

            def hinted(hint: str, cols: dict[str, Any] = columns) -> tuple[str, ...]:
                return tuple(name for name, col in cols.items() if col.get(hint))

            disposition = spec.get("write_disposition", "append")
            if isinstance(disposition, dict):
                disposition = disposition.get("disposition", "append")
            tables.append(
                RawTable(
                    dataset=dataset_dir.name,
                    name=table_dir.name,
                    write_disposition=str(disposition),
                    primary_key=hinted("primary_key"),
                    merge_key=hinted("merge_key"),
                    dedup_sort=hinted("dedup_sort"),
                )
            )
    return tables


def completed_loads(dataset_dir: Path) -> list[str]:
    """Load ids dlt marked complete (status 0) in the dataset; [] when it keeps no record."""
    return sorted(
        str(record["load_id"])
        for _, record in _read_json_records(dataset_dir / "_dlt_loads")
        if record.get("status") == 0
    )


def _quoted(names: Iterable[str]) -> str:
    return ", ".join(f"`{name}`" for name in names)


def dedup_view_sql(table: RawTable, loads: list[str], has_load_id: bool = True) -> str:
    """The view's query: what a merging destination would hold (see the module's docstring).
    A table without dlt's `_dlt_load_id` (written by other means) is read as it is."""
    source = table.files_table
    if not has_load_id:
        return f"select * from {source}"
    where = ""
    if loads:
        where = " where _dlt_load_id in (" + ", ".join(f"'{load}'" for load in loads) + ")"
    rows = f"select * from {source}{where}"
    order = ["_dlt_load_id desc"] + [f"`{name}` desc" for name in table.dedup_sort]
    if table.write_disposition == "replace":
        return f"select * from ({rows}) where _dlt_load_id = (select max(_dlt_load_id) from ({rows}))"
    if table.merge_key:
        # delete-insert: a newer load replaces every row of the keys it brought
        rows = (
            f"select * except (_newest_load) from (select *, max(_dlt_load_id) over "
            f"(partition by {_quoted(table.merge_key)}) as _newest_load from ({rows})) "
            "where _dlt_load_id = _newest_load"
        )
    if not table.primary_key:
        return rows
    return (
        f"select * except (_version) from (select *, row_number() over "
        f"(partition by {_quoted(table.primary_key)} order by {', '.join(order)}) as _version "
        f"from ({rows})) where _version = 1"
    )


def register_raw_sources(spark: SparkSession, lake: Path) -> list[RawTable]:
    """Create (or re-create) every raw table's external Parquet table and dedup view.

    Idempotent: run it after each load. The external table is dropped and created again (its files
    stay), so it lists the new files and takes up the columns a newer load added (mergeSchema).
    """
    lake = lake.resolve()
    tables = raw_tables(lake)
    for dataset in sorted({t.dataset for t in tables}):
        spark.sql(f"create database if not exists {dataset}")
    for table in tables:
        location = (lake / table.dataset / table.name).as_uri()
        spark.sql(f"drop table if exists {table.files_table}")
        spark.sql(
            f"create table {table.files_table} using parquet options (path '{location}', mergeSchema 'true')"
        )
        loads = completed_loads(lake / table.dataset)
        has_load_id = "_dlt_load_id" in spark.table(table.files_table).columns
        spark.sql(f"create or replace view {table.view} as {dedup_view_sql(table, loads, has_load_id)}")
    return tables


# ---- publishing ---------------------------------------------------------------------------


def published_root(data_dir: Path = DATA_DIR) -> Path:
    return spark_home(data_dir) / "published"


def current_run(data_dir: Path = DATA_DIR) -> str | None:
    """The run whose snapshot is published (None before the first publish)."""
    pointer = published_root(data_dir) / CURRENT_FILE
    return pointer.read_text(encoding="utf-8").strip() if pointer.exists() else None


def built_tables(spark: SparkSession, prefix: str = BUILD_PREFIX) -> dict[str, list[str]]:
    """Each published schema's tables as built in its `build_` database (views included; not dbt's
    scratch tables, `<name>__dbt_tmp`, `<name>__dbt_keep`)."""
    found: dict[str, list[str]] = {}
    databases = {row[0] for row in spark.sql("show databases").collect()}
    for schema in PUBLISHED_SCHEMAS:
        database = prefix + schema
        if database in databases:
            rows = spark.sql(f"show tables in {database}").collect()
            found[schema] = sorted(
                row["tableName"]
                for row in rows
                if not row["isTemporary"] and "__dbt_" not in row["tableName"]
            )
    return found


def publish(
    spark: SparkSession,
    run_id: str,
    data_dir: Path = DATA_DIR,
    prefix: str = BUILD_PREFIX,
    extra_ops: Path | None = None,
) -> Path:
    """Publish the audited build: call only after every dbt test passed.

    Each built table is written once more as a Parquet snapshot of this run (the build databases
    are rebuilt in place by the next run; a snapshot never changes). Only when every snapshot is
    written do the published databases' views move to it, one `create or replace view` each, and
    then the pointer file CURRENT names the run (os.replace: atomic for DuckDB readers, who see
    either the whole old snapshot or the whole new one). Snapshots older than the previous one are
    deleted. Returns the snapshot's folder.
    """
    if not re.match(r"^[A-Za-z0-9_.-]+$", run_id):
        raise ValueError(f"run id {run_id!r} is not a safe folder name")
    root = published_root(data_dir)
    snapshot = root / run_id
    if snapshot.exists():
        shutil.rmtree(snapshot)  # a publish of this run that died half way: written again
    tables = built_tables(spark, prefix)
    for schema, names in tables.items():
        for name in names:
            spark.table(f"{prefix}{schema}.{name}").write.mode("overwrite").parquet(
                str(snapshot / schema / name)
            )
    if extra_ops is not None:  # the runner's own records (billable.publish_spark): ops.<table>/*.parquet
        for folder in sorted(path for path in extra_ops.iterdir() if path.is_dir()):
            shutil.copytree(folder, snapshot / "ops" / folder.name, dirs_exist_ok=True)
            tables.setdefault("ops", []).append(folder.name)
    for schema, names in tables.items():
        spark.sql(f"create database if not exists {schema}")
        for name in names:
            location = (snapshot / schema / name).as_uri()
            spark.sql(f"create or replace view {schema}.{name} as select * from parquet.`{location}`")
    pointer = root / (CURRENT_FILE + ".tmp")
    pointer.write_text(run_id + "\n", encoding="utf-8")
    with open(pointer, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(pointer, root / CURRENT_FILE)
    _drop_old_snapshots(root, run_id)
    return snapshot


def _drop_old_snapshots(root: Path, current: str) -> None:
    snapshots = sorted((p for p in root.iterdir() if p.is_dir()), key=lambda p: p.stat().st_mtime)
    keep = {current} | {p.name for p in snapshots[-KEEP_SNAPSHOTS:]}
    for path in snapshots:
        if path.name not in keep:
            shutil.rmtree(path, ignore_errors=True)


def duckdb_reader(data_dir: Path = DATA_DIR) -> duckdb.DuckDBPyConnection:
    """An in-memory DuckDB with one view per published table over the current snapshot's Parquet.

    No JVM: what the dashboards use on Spark. The views hold the snapshot's paths, so a connection
    keeps reading the snapshot it opened (kept until two newer ones are published).
    """
    import duckdb

    run = current_run(data_dir)
    if run is None:
        raise FileNotFoundError(f"nothing published yet under {published_root(data_dir)}")
    snapshot = published_root(data_dir) / run
    con = duckdb.connect()
    for schema_dir in sorted(p for p in snapshot.iterdir() if p.is_dir()):
        con.execute(f"create schema if not exists {schema_dir.name}")
        for table_dir in sorted(p for p in schema_dir.iterdir() if p.is_dir()):
            glob = str(table_dir / "*.parquet").replace("'", "''")
            con.execute(
                f"create view {schema_dir.name}.{table_dir.name} as select * from read_parquet('{glob}')"
            )
    return con


def main(argv: list[str] | None = None) -> int:
    """`python -m billable.spark_engine register [--lake data/lake]` | `publish RUN_ID`."""
    import argparse

    parser = argparse.ArgumentParser(prog="python -m billable.spark_engine")
    parser.add_argument("--data", type=Path, default=DATA_DIR)
    sub = parser.add_subparsers(dest="command", required=True)
    register = sub.add_parser("register", help="external tables and dedup views over the raw lake")
    register.add_argument("--lake", type=Path, default=None)
    publish_cmd = sub.add_parser("publish", help="publish the audited build_* databases")
    publish_cmd.add_argument("run_id")
    publish_cmd.add_argument("--extra", type=Path, help="ops tables to add, as <table>/*.parquet")
    args = parser.parse_args(argv)
    spark = session(args.data)
    try:
        if args.command == "register":
            done = register_raw_sources(spark, args.lake or args.data / LAKE_DIR)
            print(f"spark: {len(done)} raw tables registered")
        else:
            print(f"spark: published {publish(spark, args.run_id, args.data, extra_ops=args.extra)}")
    finally:
        spark.stop()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
