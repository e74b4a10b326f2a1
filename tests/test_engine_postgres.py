"""The same warehouse on PostgreSQL as on DuckDB (issue 16; docs/deploy.md).

A throwaway PostgreSQL 15 cluster (billable.pg_cluster: initdb in a temporary folder, a free port,
removed at the end) holds one database per world. The real pipeline (`python -m billable.pipeline`:
sandbox over HTTP, the loaders into PostgreSQL through dlt, dbt build with every test, publish by
schema swap, the sync reading PostgreSQL and pushing to the sandbox's ERP, the ERP loaded again,
the second build) runs with nothing but BILLABLE_ENGINE and dlt's connection setting changed,
and every mart it publishes is compared row by row with the same world's DuckDB warehouse.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date
from decimal import Decimal as D
from pathlib import Path

import duckdb
import psycopg2
import pytest

from billable.pg_cluster import ThrowawayCluster
from tests.conftest import Firm
from tests.engine_compare import RUN_VOLATILE, compare_rows
from tests.ingest_helpers import ROOT, copy_world, generate_world
from tests.test_build_scope import is_after_sync

PIPELINE_TIMEOUT_S = 1800


@dataclass(frozen=True)
class PostgresFirm:
    world: Path
    data: Path
    dsn: str
    reader_dsn: str
    stdout: str


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    with ThrowawayCluster() as started:
        started.create_reader()
        yield started


def run_pipeline(world: Path, data: Path, env: dict[str, str], *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "billable.pipeline", "--world", str(world), "--port", "0"]
    command += ["--raw-db", str(data / "raw.duckdb"), *extra]
    return subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=PIPELINE_TIMEOUT_S
    )


def duckdb_env() -> dict[str, str]:
    return {key: value for key, value in os.environ.items() if key != "BILLABLE_ENGINE"}


def on_postgres(cluster: ThrowawayCluster, database: str, world: Path, data: Path) -> PostgresFirm:
    cluster.create_database(database)
    settings = cluster.environment(database)
    result = run_pipeline(world, data, {**duckdb_env(), **settings})
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    assert "transform-after-sync done" in result.stdout, result.stdout[-4000:]
    return PostgresFirm(
        world, data, cluster.dsn(database), settings["BILLABLE__POSTGRES__READER_CREDENTIALS"], result.stdout
    )


@pytest.fixture(scope="module")
def tiny_on_both(
    tmp_path_factory: pytest.TempPathFactory, cluster: ThrowawayCluster
) -> tuple[Path, PostgresFirm]:
    """The tiny world (seed 7) through the whole pipeline on DuckDB and on PostgreSQL."""
    folder = tmp_path_factory.mktemp("engines_tiny")
    generated = generate_world(folder / "generated", seed=7)
    duck_world = copy_world(generated, folder / "duckdb" / "world")
    result = run_pipeline(duck_world, folder / "duckdb" / "data", duckdb_env())
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    pg = on_postgres(
        cluster, "tiny", copy_world(generated, folder / "postgres" / "world"), folder / "postgres" / "data"
    )
    return folder / "duckdb" / "data" / "warehouse.duckdb", pg


@pytest.fixture(scope="module")
def handwritten_on_postgres(
    tmp_path_factory: pytest.TempPathFactory, cluster: ThrowawayCluster
) -> PostgresFirm:
    folder = tmp_path_factory.mktemp("engines_handwritten")
    world = copy_world(ROOT / "tests" / "worlds" / "handwritten", folder / "world")
    return on_postgres(cluster, "handwritten", world, folder / "data")


def pg_rows(dsn: str, sql: str, *params: object) -> list[tuple]:
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall()
    finally:
        connection.close()


def differences(warehouse: Path, dsn: str, schema: str = "marts") -> list[str]:
    """Every difference between a schema of a DuckDB warehouse and the same schema on PostgreSQL."""
    found: list[str] = []
    with duckdb.connect(str(warehouse), read_only=True) as duck:

        def duck_tables() -> set[str]:
            listed = "select table_name from information_schema.tables where table_schema = ?"
            return {name for (name,) in duck.execute(listed, [schema]).fetchall()}

        pg_tables = {
            name
            for (name,) in pg_rows(
                dsn, "select table_name from information_schema.tables where table_schema = %s", schema
            )
        }
        ours = duck_tables()
        found += [
            f"{schema}.{name}: only on {'DuckDB' if name in ours else 'PostgreSQL'}"
            for name in sorted(ours ^ pg_tables)
        ]
        for name in sorted(ours & pg_tables):
            duck_columns = [row[0] for row in duck.execute(f'describe {schema}."{name}"').fetchall()]
            pg_columns = [
                column
                for (column,) in pg_rows(
                    dsn,
                    "select column_name from information_schema.columns"
                    " where table_schema = %s and table_name = %s order by ordinal_position",
                    schema,
                    name,
                )
            ]
            if duck_columns != pg_columns:
                found.append(
                    f"{schema}.{name}: columns differ: DuckDB {duck_columns}, PostgreSQL {pg_columns}"
                )
                continue
            quoted = ", ".join(f'"{column}"' for column in duck_columns)
            left = duck.execute(f'select {quoted} from {schema}."{name}"').fetchall()
            right = pg_rows(dsn, f'select {quoted} from {schema}."{name}"')
            found += compare_rows(
                f"{schema}.{name}", duck_columns, left, right, RUN_VOLATILE.get(name, set())
            )
    return found


def test_every_mart_of_the_tiny_world_is_the_same_on_postgres(tiny_on_both):
    warehouse, pg = tiny_on_both
    found = differences(warehouse, pg.dsn)
    assert not found, "\n".join(found)
    # the comparison compared something: the KPI marts are there and hold rows
    for mart in (
        "rpt_utilization",
        "rpt_wip",
        "rpt_revenue",
        "rpt_realization",
        "rpt_ar_aging",
        "rpt_reconciliation",
    ):
        assert pg_rows(pg.dsn, f"select count(*) from marts.{mart}")[0][0] > 0, mart


def test_the_sync_pushed_the_same_lines_from_postgres(tiny_on_both):
    """The reverse ETL read its plan from PostgreSQL and pushed the same lines, with the same keys."""
    warehouse, pg = tiny_on_both
    sql = "select line_key, content_hash, state from line_states order by line_key"
    duck_ledger = Path(warehouse).with_name("ledger.duckdb")
    with duckdb.connect(str(duck_ledger), read_only=True) as connection:
        duck_lines = connection.execute(sql).fetchall()
    pg_lines = pg_rows(pg.dsn, sql.replace("from line_states", "from raw_ledger.line_states"))
    assert duck_lines and pg_lines == duck_lines
    assert "plan from the published marts at postgresql://billable_reader@" in pg.stdout, pg.stdout[-3000:]


def test_every_dbt_test_ran_and_passed_on_postgres(tiny_on_both):
    warehouse, pg = tiny_on_both
    sql = "select status, nodes_total, nodes_failed, nodes_skipped from {}transform_runs order by started_at"
    pg_runs = pg_rows(pg.dsn, sql.format("ops."))
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        duck_runs = connection.execute(sql.format("ops.")).fetchall()
    assert [run[0] for run in pg_runs] == ["passed", "passed"]
    assert pg_runs == duck_runs, "the same nodes (models, seeds, unit and data tests) on both engines"
    published = pg_rows(pg.dsn, "select engine, count(*) from ops.publications group by engine")
    assert published == [("postgres", 2)]


def test_the_hand_worked_figures_hold_on_postgres(handwritten_on_postgres, handwritten_firm: Firm):
    pg = handwritten_on_postgres
    found = differences(handwritten_firm.warehouse, pg.dsn)
    assert not found, "\n".join(found)
    # and the revenue schedule directly, as tests/test_kpi_finance.py works it out
    revenue = pg_rows(
        pg.dsn,
        """select contract_id, month_start_date, recognized_amount, billed_amount, unbilled_receivable_amount,
                  deferred_revenue_amount, cost_amount, gross_margin_amount, backlog_amount
           from marts.rpt_revenue order by contract_id, month_start_date""",
    )
    nov, dec, jan, feb = date(2024, 11, 1), date(2024, 12, 1), date(2025, 1, 1), date(2025, 2, 1)
    tm, retainer = "8005g00000NwCo1AAD", "8005g00000NwCo2AAD"
    assert revenue == [
        (tm, nov, D("900"), 0, D("900"), 0, D("330"), D("570"), D("119100")),
        (tm, dec, D("1312.5"), D("1312.5"), D("900"), 0, D("865"), D("447.5"), D("117787.5")),
        (tm, jan, 0, 0, D("900"), 0, 0, 0, D("117787.5")),
        (tm, feb, 0, 0, D("900"), 0, D("872.6"), D("-872.6"), D("117787.5")),
        (retainer, dec, D("4000"), D("4000"), 0, 0, 0, D("4000"), None),
        (retainer, jan, D("4000"), D("8000"), 0, D("4000"), 0, D("4000"), None),
        (retainer, feb, D("1285.71"), 0, 0, D("2714.29"), 0, D("1285.71"), None),
    ]  # fmt: skip


def test_a_failing_test_on_postgres_leaves_yesterdays_warehouse_published(handwritten_on_postgres):
    pg = handwritten_on_postgres
    before = pg_rows(pg.dsn, "select run_id from ops.publications order by published_at")
    marts_before = pg_rows(pg.dsn, "select count(*), sum(recognized_amount) from marts.rpt_revenue")
    # the time tool sends one entry twice under the same id: the key is no longer unique
    pg_rows(
        pg.dsn, "insert into raw_time.time_entries select * from raw_time.time_entries limit 1 returning 1"
    )
    env = {**duckdb_env(), "BILLABLE_ENGINE": "postgres", "DESTINATION__POSTGRES__CREDENTIALS": pg.dsn}
    command = [sys.executable, "-m", "billable.transform", "--raw-db", str(pg.data / "raw.duckdb")]
    command += ["--warehouse", str(pg.data / "warehouse.duckdb"), "--build-dir", str(pg.data / "build")]
    result = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=900
    )
    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    assert "unique_stg_time__time_entries_time_entry_id" in result.stderr
    assert "still holds the last published build" in result.stderr
    assert pg_rows(pg.dsn, "select run_id from ops.publications order by published_at") == before
    assert pg_rows(pg.dsn, "select count(*), sum(recognized_amount) from marts.rpt_revenue") == marts_before
    statuses = pg_rows(pg.dsn, "select status from build_ops.transform_runs order by started_at")
    assert [status for (status,) in statuses][-1] == "failed"


def test_the_next_day_builds_only_what_changed_and_stays_equal_on_postgres(tiny_on_both, cluster):
    """A day later, on both engines: each build selects what changed since the last (the second,
    after the sync, only the ERP's side: billable.build_scope), and every mart is still the same
    on PostgreSQL as on DuckDB. tests/test_build_scope.py shows DuckDB's daily builds equal a full
    refresh, so PostgreSQL's do too. Runs last: it moves the tiny firm a day on."""
    warehouse, pg = tiny_on_both
    duck = warehouse.parent.parent
    result = run_pipeline(duck / "world", duck / "data", duckdb_env(), "--advance-days", "1")
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    result = run_pipeline(
        pg.world, pg.data, {**duckdb_env(), **cluster.environment("tiny")}, "--advance-days", "1"
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-6000:]
    found = differences(warehouse, pg.dsn)
    assert not found, "\n".join(found)
    sql = "select status, selection, nodes_total from ops.transform_runs order by started_at"
    pg_runs = pg_rows(pg.dsn, sql)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        assert pg_runs == connection.execute(sql).fetchall()
    assert is_after_sync(pg_runs[-1][1]), pg_runs
    assert "source:time.time_entries+" in pg_runs[-2][1] and pg_runs[-1][2] < pg_runs[-2][2], pg_runs
