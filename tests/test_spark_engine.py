"""The Spark engine (billable.spark_engine, the `spark` dbt target): `make test-spark`.

A local Spark (pyspark's bundled jars, Java 17) stands in for a cluster. The tiny world's raw data
goes into a dlt-filesystem-shaped Parquet lake, Spark registers it (external tables and the dedup
views the dbt sources read), dbt-spark builds the warehouse and runs every test in `build_*`
databases, the build is published as a Parquet snapshot, and every KPI mart (`marts.rpt_*`), read
from that snapshot with DuckDB as the dashboards would, must equal the DuckDB warehouse's row by
row: text, dates and flags exactly, money to the cent, ratios to a millionth.

Skipped unless BILLABLE_TEST_SPARK=1 (`make test-spark` sets it): one build takes many minutes on
a laptop, and it starts JVMs. Every Spark step runs in a child process, one at a time: the
metastore is embedded Derby, which admits one JVM.

The lake is written from the same raw DuckDB the DuckDB warehouse was built from (dlt's file
layout, its schema versions and load records included), so both engines read the same records.
"""

from __future__ import annotations

import datetime as dt
import json
import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from billable import spark_engine
from billable.transform import dbt_executable
from tests.conftest import Firm
from tests.ingest_helpers import ROOT
from tests.warehouse_helpers import change_every_input, copy_raw, dbt_build

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        os.environ.get("BILLABLE_TEST_SPARK") != "1",
        reason="Spark engine: `make test-spark` (BILLABLE_TEST_SPARK=1)",
    ),
]

SPARK_TIMEOUT_S = 5400
RAW_DATASETS_OPS = "raw_ops"  # the raw DuckDB's `ops` (the loaders' log) is raw_ops off DuckDB


def spark_env(data: Path) -> dict[str, str]:
    env = {**os.environ, **spark_engine.dbt_env(data), "BILLABLE_ENGINE": "spark"}
    env.setdefault("SPARK_LOCAL_IP", "127.0.0.1")
    env.setdefault("DBT_USE_COLORS", "false")
    return env


def run_spark_step(data: Path, *args: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "billable.spark_engine", "--data", str(data), *args]
    return subprocess.run(
        command, cwd=ROOT, env=spark_env(data), capture_output=True, text=True, check=False, timeout=1800
    )


def run_spark_script(data: Path, script: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=spark_env(data),
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )


# ---- a lake in dlt's filesystem layout -------------------------------------------------------


def write_lake(raw_db: Path, lake: Path) -> None:
    """The raw DuckDB's datasets as dlt's filesystem destination lays them out:
    `<dataset>/<table>/<load_id>.<n>.parquet`, `_dlt_version/<schema>__<stamp>__<hash>.jsonl`,
    `_dlt_loads/<schema>__<load_id>.jsonl`."""
    with duckdb.connect(str(raw_db), read_only=True) as con:
        tables = con.execute(
            "select table_schema, table_name from information_schema.tables where table_schema = 'ops' "
            "or (table_schema like 'raw\\_%' escape '\\' and table_schema not like '%\\_staging' escape '\\')"
        ).fetchall()
        for schema, name in tables:
            dataset = RAW_DATASETS_OPS if schema == "ops" else schema
            if name == "_dlt_version":
                folder = lake / dataset / "_dlt_version"
                folder.mkdir(parents=True, exist_ok=True)
                versions = con.execute(
                    f"select schema_name, epoch(inserted_at), version_hash, schema from {schema}._dlt_version"
                ).fetchall()
                for schema_name, stamp, version_hash, schema_json in versions:
                    safe_hash = version_hash.replace("/", "_").replace("+", "-")
                    record = {"schema_name": schema_name, "version_hash": version_hash, "schema": schema_json}
                    (folder / f"{schema_name}__{stamp}__{safe_hash}.jsonl").write_text(json.dumps(record))
                continue
            if name == "_dlt_loads":
                folder = lake / dataset / "_dlt_loads"
                folder.mkdir(parents=True, exist_ok=True)
                for load_id, schema_name, status in con.execute(
                    f"select load_id, schema_name, status from {schema}._dlt_loads"
                ).fetchall():
                    record = {"load_id": load_id, "schema_name": schema_name, "status": status}
                    (folder / f"{schema_name}__{load_id}.jsonl").write_text(json.dumps(record))
                continue
            if name.startswith("_dlt"):
                continue
            folder = lake / dataset / name
            folder.mkdir(parents=True, exist_ok=True)
            columns = [row[0] for row in con.execute(f'describe {schema}."{name}"').fetchall()]
            loads: list[str | None] = [None]
            if "_dlt_load_id" in columns:
                found = con.execute(
                    f'select distinct _dlt_load_id from {schema}."{name}" order by 1'
                ).fetchall()
                loads = [row[0] for row in found] or [None]
            for number, load in enumerate(loads):
                where = f"where _dlt_load_id = '{load}'" if load else ""
                target = folder / f"{load or '0'}.{number}.parquet"
                con.execute(
                    f"copy (select * from {schema}.\"{name}\" {where}) to '{target}' (format parquet)"
                )


# ---- the dedup views, on a lake of two loads -------------------------------------------------


def test_dedup_views_restore_what_a_merging_destination_holds(tmp_path: Path) -> None:
    """Loads append; the views keep the latest version per key, all of a merge key's latest load,
    the latest load of a replace table, every row of a keyless append table, and only completed
    loads."""
    lake = tmp_path / "lake" / "raw_demo"
    schema = {
        "tables": {
            "people": {
                "write_disposition": "merge",
                "columns": {"id": {"primary_key": True}, "stamp": {"dedup_sort": "desc"}},
            },
            "lines": {
                "write_disposition": "merge",
                "columns": {"line_id": {"primary_key": True}, "invoice_id": {"merge_key": True}},
            },
            "firm": {"write_disposition": "replace", "columns": {"code": {"primary_key": True}}},
            "log": {"write_disposition": "append", "columns": {}},
        }
    }
    (lake / "_dlt_version").mkdir(parents=True)
    (lake / "_dlt_version" / "demo__1.5__h.jsonl").write_text(json.dumps({"schema": json.dumps(schema)}))
    (lake / "_dlt_loads").mkdir()
    for load in ("100.1", "200.1"):  # 300.1 landed files but never completed
        (lake / "_dlt_loads" / f"demo__{load}.jsonl").write_text(json.dumps({"load_id": load, "status": 0}))
    rows = {
        "people": [
            ("100.1", "select 'p1' as id, 'old' as name, 1 as stamp union all select 'p2', 'kept', 1"),
            ("200.1", "select 'p1' as id, 'new-a' as name, 2 as stamp union all select 'p1', 'new-b', 3"),
            ("300.1", "select 'p2' as id, 'uncommitted' as name, 9 as stamp"),
        ],
        "lines": [
            (
                "100.1",
                "select 'l1' as line_id, 'i1' as invoice_id, 10 as amount union all select 'l2', 'i1', 20",
            ),
            ("200.1", "select 'l3' as line_id, 'i1' as invoice_id, 30 as amount"),
        ],
        "firm": [("100.1", "select 'US' as code"), ("200.1", "select 'UK' as code")],
        "log": [("100.1", "select 'a' as event"), ("200.1", "select 'b' as event")],
    }
    with duckdb.connect() as con:
        for table, loads in rows.items():
            (lake / table).mkdir()
            for load, query in loads:
                con.execute(
                    f"copy (select *, '{load}' as _dlt_load_id from ({query})) to "
                    f"'{lake / table / f'{load}.0.parquet'}' (format parquet)"
                )
    script = f"""
import json
from pathlib import Path
from billable import spark_engine
spark = spark_engine.session(Path({str(tmp_path / "data")!r}))
spark_engine.register_raw_sources(spark, Path({str(tmp_path / "lake")!r}))
spark_engine.register_raw_sources(spark, Path({str(tmp_path / "lake")!r}))  # idempotent
out = {{t: sorted([[v for k, v in r.asDict().items() if k != '_dlt_load_id']
                   for r in spark.sql(f'select * from raw_demo.{{t}}').collect()], key=str)
       for t in ('people', 'lines', 'firm', 'log')}}
print('RESULT', json.dumps(out))
spark.stop()
"""
    result = run_spark_script(tmp_path / "data", script)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    views = json.loads(line.removeprefix("RESULT "))
    assert views["people"] == [["p1", "new-b", 3], ["p2", "kept", 1]]
    assert views["lines"] == [["l3", "i1", 30]]
    assert views["firm"] == [["UK"]]
    assert views["log"] == [["a"], ["b"]]


# ---- publishing ------------------------------------------------------------------------------


def test_publish_swaps_whole_snapshots_and_keeps_the_previous_one(tmp_path: Path) -> None:
    """Two audited builds published one after the other: the views and the DuckDB reader see the
    second build whole, the first build's snapshot is kept for readers still on it, a third
    publish drops the first; dbt's scratch tables are never published."""
    data = tmp_path / "data"
    script = """
import json, sys
from pathlib import Path
from billable import spark_engine
data = Path(sys.argv[1])
spark = spark_engine.session(data)
out = {}
for run, amount in (("run_a", 10), ("run_b", 20), ("run_c", 30)):
    spark.sql("create database if not exists build_marts")
    spark.sql("drop table if exists build_marts.rpt_demo")
    spark.sql(f"create table build_marts.rpt_demo using parquet as select 'x' as k, {amount} as amount")
    spark.sql("create table if not exists build_marts.rpt_demo__dbt_keep using parquet as select 1 as n")
    spark_engine.publish(spark, run, data)
    out[run] = [r.asDict() for r in spark.sql("select * from marts.rpt_demo").collect()]
    if run == "run_b":
        with spark_engine.duckdb_reader(data) as reader:
            out["duckdb_b"] = reader.execute("select k, amount from marts.rpt_demo").fetchall()
            names = reader.execute("select table_name from information_schema.tables order by 1")
            out["tables_b"] = [r[0] for r in names.fetchall()]
        out["snapshots_b"] = sorted(p.name for p in spark_engine.published_root(data).iterdir() if p.is_dir())
out["snapshots_c"] = sorted(p.name for p in spark_engine.published_root(data).iterdir() if p.is_dir())
print("RESULT", json.dumps(out, default=str))
spark.stop()
"""
    result = subprocess.run(
        [sys.executable, "-c", script, str(data)],
        cwd=ROOT,
        env=spark_env(data),
        capture_output=True,
        text=True,
        check=False,
        timeout=1800,
    )
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    line = next(line for line in result.stdout.splitlines() if line.startswith("RESULT "))
    out = json.loads(line.removeprefix("RESULT "))
    assert out["run_a"] == [{"k": "x", "amount": 10}]
    assert out["run_b"] == [{"k": "x", "amount": 20}]
    assert out["duckdb_b"] == [["x", 20]]
    assert out["tables_b"] == ["rpt_demo"]
    assert out["snapshots_b"] == ["run_a", "run_b"]
    assert out["snapshots_c"] == ["run_b", "run_c"]
    assert spark_engine.current_run(data) == "run_c"


# ---- the tiny world on Spark -----------------------------------------------------------------


def spark_dbt_build(folder: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    project = ROOT / "dbt_project"
    command = [*dbt_executable(), "build", "--project-dir", str(project), "--profiles-dir", str(project)]
    command += [
        "--target",
        "spark",
        "--target-path",
        str(folder / "target"),
        "--log-path",
        str(folder / "logs"),
    ]
    return subprocess.run(
        [*command, *extra],
        cwd=project,
        env=spark_env(data),
        capture_output=True,
        text=True,
        check=False,
        timeout=SPARK_TIMEOUT_S,
    )


class SparkBuild:
    def __init__(self, data: Path, dbt: subprocess.CompletedProcess, seconds: dict[str, float]) -> None:
        self.data = data
        self.folder = data.parent
        self.dbt = dbt
        self.seconds = seconds


@pytest.fixture(scope="module")
def spark_build(tiny_firm: Firm, tmp_path_factory: pytest.TempPathFactory) -> SparkBuild:
    folder = tmp_path_factory.mktemp("spark")
    data = folder / "data"
    seconds: dict[str, float] = {}
    started = time.monotonic()
    write_lake(tiny_firm.raw_db, data / spark_engine.LAKE_DIR)
    seconds["lake"] = time.monotonic() - started

    started = time.monotonic()
    registered = run_spark_step(data, "register")
    seconds["register"] = time.monotonic() - started
    assert registered.returncode == 0, registered.stdout[-3000:] + registered.stderr[-3000:]

    started = time.monotonic()
    dbt = spark_dbt_build(folder, data, "--no-partial-parse")
    seconds["dbt build"] = time.monotonic() - started
    build = SparkBuild(data, dbt, seconds)
    if dbt.returncode == 0:
        started = time.monotonic()
        published = run_spark_step(data, "publish", "run1")
        seconds["publish"] = time.monotonic() - started
        assert published.returncode == 0, published.stdout[-3000:] + published.stderr[-3000:]
    print("spark timings (s):", {step: round(s, 1) for step, s in seconds.items()})
    return build


def test_spark_builds_and_passes_every_dbt_test(spark_build: SparkBuild) -> None:
    failed = [line for line in spark_build.dbt.stdout.splitlines() if " ERROR " in line or " FAIL " in line]
    assert spark_build.dbt.returncode == 0, "\n".join(failed[:40]) + "\n" + spark_build.dbt.stdout[-3000:]
    assert spark_engine.current_run(spark_build.data) == "run1"


# Columns that name the build itself, not the firm: an exception episode's id hashes the dbt run's
# invocation id (exception_history), so it differs between any two builds, on one engine or two.
BUILD_IDENTITY_COLUMNS = {"episode_id", "snapshot_invocation_id"}  # each build's own ids


def kpi_marts(warehouse: Path) -> list[str]:
    with duckdb.connect(str(warehouse), read_only=True) as con:
        found = con.execute(
            "select table_name from information_schema.tables where table_schema = 'marts' "
            "and table_name like 'rpt\\_%' escape '\\' order by 1"
        ).fetchall()
    return [row[0] for row in found]


def normalised(value: object) -> object:
    """One comparable form per value: numbers as Decimal, timestamps as naive UTC."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, int | float | Decimal):
        return Decimal(str(value))
    if isinstance(value, dt.datetime) and value.tzinfo is not None:
        return value.astimezone(dt.UTC).replace(tzinfo=None)
    return value


def sort_key(row: tuple) -> tuple:
    # numbers rounded to the cent for the order only (tiny float differences must not reorder)
    return tuple(
        (v is None, str(round(v, 2)) if isinstance(v, Decimal) else str(v) if v is not None else "")
        for v in row
    )


def same_value(duck: object, spark: object) -> bool:
    if isinstance(duck, Decimal) and isinstance(spark, Decimal):
        # money to the cent (within half a cent), ratios to a millionth of their size
        return abs(duck - spark) <= min(
            Decimal("0.005"), Decimal("1e-6") * max(Decimal(1), abs(duck), abs(spark))
        )
    return duck == spark


def table_difference(
    warehouse: duckdb.DuckDBPyConnection,
    reader: duckdb.DuckDBPyConnection,
    table: str,
    columns: list[str],
    left_out: Callable[[str], bool],
) -> str | None:
    """How Spark's published `table` differs from DuckDB's (the first differing row), comparing
    the columns but those `left_out` says, as `same_value` does; None when they are equal."""
    compared = [column for column in columns if not left_out(column)]
    quoted = ", ".join(f'"{column}"' for column in compared)
    select = f"select {quoted} from {table}"
    duck_rows = sorted(
        (tuple(map(normalised, r)) for r in warehouse.execute(select).fetchall()), key=sort_key
    )
    spark_rows = sorted((tuple(map(normalised, r)) for r in reader.execute(select).fetchall()), key=sort_key)
    if len(duck_rows) != len(spark_rows):
        return f"{table}: {len(spark_rows)} rows on Spark, {len(duck_rows)} on DuckDB"
    for duck_row, spark_row in zip(duck_rows, spark_rows, strict=True):
        bad = [
            f"{name}: spark {s!r} duckdb {d!r}"
            for name, d, s in zip(compared, duck_row, spark_row, strict=True)
            if not same_value(d, s)
        ]
        if bad:
            return f"{table}: " + "; ".join(bad[:5])
    return None


def test_every_kpi_mart_equals_duckdbs(tiny_firm: Firm, spark_build: SparkBuild) -> None:
    assert spark_build.dbt.returncode == 0, (
        "the Spark build failed (see test_spark_builds_and_passes_every_dbt_test)"
    )
    marts = kpi_marts(tiny_firm.warehouse)
    assert len(marts) >= 10, marts
    reader = spark_engine.duckdb_reader(spark_build.data)
    differences: list[str] = []
    with duckdb.connect(str(tiny_firm.warehouse), read_only=True) as warehouse:
        for mart in marts:
            columns = [row[0] for row in warehouse.execute(f"describe marts.{mart}").fetchall()]
            spark_columns = [row[0] for row in reader.execute(f"describe marts.{mart}").fetchall()]
            if spark_columns != columns:
                differences.append(f"{mart}: columns {spark_columns} != {columns}")
                continue
            found = table_difference(
                warehouse, reader, f"marts.{mart}", columns, BUILD_IDENTITY_COLUMNS.__contains__
            )
            if found:
                differences.append(found)
    reader.close()
    assert not differences, "\n".join(differences)


# The time-entry chain and the fact: incremental models (macros/follow_change.sql). Their hashes
# are the engine's own (DuckDB's hash(), md5 elsewhere), so only the values are compared.
CHAIN = (
    "intermediate.int_time_entries_resolved",
    "intermediate.int_time_entries_rated",
    "intermediate.int_time_entries",
    "marts.fct_time_entries",
)


def is_hash_column(name: str) -> bool:
    return name.startswith("fingerprint") or name in {"code_fingerprint", "row_hash"}


def test_an_incremental_build_on_spark_equals_a_full_refresh(
    tiny_firm: Firm, spark_build: SparkBuild
) -> None:
    """The raw data changes in every way the chain follows (tests/warehouse_helpers.py,
    change_every_input); Spark builds the chain incrementally over its build of yesterday's data,
    DuckDB builds the changed data from scratch, and the chain's tables are equal. Runs last: it
    moves the Spark build on."""
    assert spark_build.dbt.returncode == 0, "the Spark build failed (see the first test)"
    folder, data = spark_build.folder / "incremental", spark_build.data
    folder.mkdir()
    raw = copy_raw(tiny_firm.raw_db, folder / "raw.duckdb")
    picked = change_every_input(tiny_firm.warehouse, raw)
    shutil.rmtree(data / spark_engine.LAKE_DIR)
    write_lake(raw, data / spark_engine.LAKE_DIR)
    registered = run_spark_step(data, "register")
    assert registered.returncode == 0, registered.stdout[-3000:] + registered.stderr[-3000:]
    build = spark_dbt_build(
        spark_build.folder,
        data,
        "--select",
        "+fct_time_entries",
        "--exclude-resource-type",
        "test",
        "unit_test",
    )
    assert build.returncode == 0, build.stdout[-6000:] + build.stderr[-3000:]
    published = run_spark_step(data, "publish", "run2")
    assert published.returncode == 0, published.stdout[-3000:] + published.stderr[-3000:]
    fresh = folder / "fresh" / "warehouse.duckdb"
    fresh.parent.mkdir()
    dbt_build(raw, fresh, "--full-refresh")

    reader = spark_engine.duckdb_reader(data)
    differences: list[str] = []
    with duckdb.connect(str(fresh), read_only=True) as warehouse:
        for table in CHAIN:
            columns = [row[0] for row in warehouse.execute(f"describe {table}").fetchall()]
            found = table_difference(warehouse, reader, table, columns, is_hash_column)
            if found:
                differences.append(found)
        cost_entry_id, old_cost = picked["cost"]
        ask = "select cost_amount from marts.fct_time_entries where time_entry_id = ?"
        assert reader.execute(ask, [cost_entry_id]).fetchone()[0] > old_cost, (
            "HR's raise reached Spark's fact"
        )
        gone = reader.execute(
            "select count(*) from marts.fct_time_entries where time_entry_id = ?", [picked["gone_id"]]
        )
        assert gone.fetchone()[0] == 0, "the deletion reached Spark's fact"
    reader.close()
    assert not differences, "\n".join(differences)
