"""The readers follow the engine (issue 16): on PostgreSQL the dashboards, the reverse ETL's plan
and the semantic layer give the same answers as on DuckDB for the same warehouse; the dashboard's
sessions are read-only; the ledger's snapshot is replaced atomically; on Spark the dashboards read
the published Parquet with DuckDB and `make metrics` says in one line that MetricFlow has no Spark
engine.

One tiny-world warehouse (tests/conftest.py `tiny_firm`) is copied into a throwaway PostgreSQL 15
cluster (tests/readers_pg_helpers.py); every query then runs on both engines.
"""

from __future__ import annotations

import inspect
import os
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg2
import psycopg2.errors
import pytest

from billable.metrics import SPARK_UNSUPPORTED, SemanticLayer
from dashboards.queries import (
    connection,
    postgres,
    wip_billing,
)
from dashboards.queries.access import Access, NotPermitted, Role
from dashboards.queries.filters import Filters
from reverse_etl.ledger import export_snapshot
from reverse_etl.plan import diff, read_lines
from tests.ingest_helpers import ROOT
from tests.readers_helpers import (
    NOT_READS,
    QUERY_MODULES,
    dashboard_reads,
    engine,
    ledger_snapshot_rows,
    ledger_snapshot_types,
    ledger_with,
    read_all,
    same,
    wait_for_lock_waiter,
)
from tests.readers_pg_helpers import cluster_with, spark_snapshot


@pytest.fixture(scope="module")
def cluster(tiny_firm) -> Iterator[Any]:
    with cluster_with(tiny_firm.warehouse) as running:
        yield running
        postgres.close_pools()


# --- every dashboard read, on both engines ------------------------------------------------------


@pytest.fixture(scope="module")
def both(cluster, tiny_firm) -> tuple[dict[str, Any], dict[str, Any]]:
    return read_all("duckdb", cluster, tiny_firm.warehouse), read_all(
        "postgres", cluster, tiny_firm.warehouse
    )


def test_every_read_of_the_query_modules_is_compared():
    """A new read in a query module must join dashboard_reads (else PostgreSQL could break unseen)."""
    defined = {
        name
        for module in QUERY_MODULES
        for name, function in inspect.getmembers(module, inspect.isfunction)
        if function.__module__ == module.__name__ and not name.startswith("_")
    }
    source = inspect.getsource(dashboard_reads)
    uncovered = sorted(name for name in defined - NOT_READS if not re.search(rf"\.{name}\b", source))
    assert len(defined) > 40 and uncovered == []


def test_every_dashboard_read_returns_the_same_on_postgres_as_on_duckdb(both):
    duck, pg = both
    assert duck.keys() == pg.keys()
    # the comparison means something: the pages' main reads hold rows
    for key in (
        "utilisation_rows",
        "wip_by",
        "reconciliation_rows",
        "time_to_invoice_rows",
        "revenue_monthly",
    ):
        assert len(duck[key]) > 1, key
    assert len(duck["exception_queue.Oldest first"]) > 0 and len(duck["freshness.sources"]) > 3
    for key in (
        "utilisation_weekly_people",
        "reconciliation_rows.statuses",
        "reconciliation_monthly",
        "revenue_rows",
        "realization_by.practice",
        "open_exceptions_at_month_ends",
    ):
        assert len(duck[key]) > 0, key
    assert len(duck["utilisation_weekly_people"]) > 5 and len(duck["reconciliation_rows.statuses"]) > 0
    for key in duck:
        same(pg[key], duck[key], key)


def test_the_same_frame_types_reach_the_pages(both):
    """Dates arrive as datetimes, numerics as floats, on both engines (the pages use .dt and maths)."""
    duck, pg = both
    for key in ("revenue_monthly", "wip_by", "utilisation_rows", "time_to_invoice_rows"):
        for column in duck[key].columns:
            left, right = duck[key][column].dtype, pg[key][column].dtype
            assert left.kind == right.kind or {left.kind, right.kind} <= {"i", "u", "f"}, (key, column)


def test_published_metadata_comes_from_the_engine(cluster, tiny_firm):
    """On PostgreSQL what was published is ops.publications' latest row (the publish step's),
    falling back to the latest passed build; a new publication is a new cache key."""
    with engine("postgres", cluster, tiny_firm.warehouse):
        before = connection.snapshot()
        assert before.published.get("run_id")  # from ops.transform_runs: no publications yet
        admin = psycopg2.connect(cluster.dsn("billable"))
        try:
            with admin, admin.cursor() as cursor:
                # as billable/publish_postgres.py records it: naive UTC, one row per publication
                cursor.execute(
                    "create table ops.publications (published_at timestamp not null, run_id varchar not null,"
                    " engine varchar, git_commit varchar, dbt_version varchar, dbt_invocation_id varchar,"
                    " full_refresh boolean, duration_s double precision, nodes varchar)"
                )
                cursor.execute(
                    "insert into ops.publications values ('2026-01-01 00:00:00', 'run-0', 'postgres', 'abc',"
                    " '1.11', 'inv-0', false, 1.0, '{}'), ('2026-01-02 03:04:05', 'run-a', 'postgres', 'def',"
                    " '1.11', 'inv-a', false, 1.0, '{}')"
                )
            after = connection.snapshot()
            assert after.published["run_id"] == "run-a" and after.published["engine"] == "postgres"
            assert after.published["published_at"] == "2026-01-02T03:04:05+00:00"
            assert after.published["dbt_invocation_id"] == "inv-a"
            assert read_lines(Path("/nonexistent/warehouse.duckdb"))[1] == "run-a"  # the sync's build id too
            assert after.version != before.version
            assert connection.freshness().run_id == "run-a"
        finally:
            with admin, admin.cursor() as cursor:
                cursor.execute("drop table ops.publications")
            admin.close()


# --- the dashboard's sessions -----------------------------------------------------------------


def test_the_dashboard_session_is_read_only_even_for_a_writer_role(cluster, tiny_firm):
    with engine("postgres", cluster, tiny_firm.warehouse):
        assert postgres.settings().user == "postgres"  # a superuser: only the session stops writes
        for write in (
            "create table marts.intruder (id int)",
            "delete from marts.dim_clients",
            "update ops.transform_runs set status = 'failed'",
        ):
            with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                postgres.fetch(write, ())
        settings = postgres.fetch(
            "select current_setting('default_transaction_read_only') as read_only,"
            " current_setting('statement_timeout') as timeout",
            (),
        )
        assert settings.iloc[0]["read_only"] == "on" and settings.iloc[0]["timeout"] == "1min"
        assert postgres.fetch("select count(*) as n from marts.dim_clients", ()).iloc[0]["n"] > 0


def test_the_configured_reader_role_is_used_and_sees_the_next_builds_schemas(cluster, tiny_firm, monkeypatch):
    """[billable.postgres] reader_credentials: the dashboards connect as that role. Default
    privileges (docs/dashboards.md) give it the schemas and tables a later build creates."""
    admin = psycopg2.connect(cluster.dsn("billable"))
    admin.autocommit = True
    with admin.cursor() as cursor:
        cursor.execute("create role billable_reader login password 'reader-pw'")
        for schema in connection_schemas():
            cursor.execute(f"grant usage on schema {schema} to billable_reader")
            cursor.execute(f"grant select on all tables in schema {schema} to billable_reader")
        cursor.execute("alter default privileges for role postgres grant usage on schemas to billable_reader")
        cursor.execute("alter default privileges for role postgres grant select on tables to billable_reader")
        cursor.execute("create schema build_next; create table build_next.t as select 1 as x")
    monkeypatch.setenv(
        "BILLABLE__POSTGRES__READER_CREDENTIALS",
        f"postgresql://billable_reader:reader-pw@127.0.0.1:{cluster.port}/billable",
    )
    postgres.close_pools()
    try:
        with engine("postgres", cluster, tiny_firm.warehouse):
            assert postgres.fetch("select current_user as who", ()).iloc[0]["who"] == "billable_reader"
            assert postgres.fetch("select count(*) as n from build_next.t", ()).iloc[0]["n"] == 1
            with connection.run_scope():
                assert connection.unreadable() is None and connection.available("rpt_wip", "transform_runs")
                assert not wip_billing.wip_by(
                    Filters(start=date(1900, 1, 1), end=date(2999, 12, 31)),
                    wip_billing.nearest_wip_date(date.today()),
                ).empty
            with pytest.raises(psycopg2.errors.ReadOnlySqlTransaction):
                postgres.fetch("create table build_next.u (x int)", ())
    finally:
        postgres.close_pools()
        with admin.cursor() as cursor:
            cursor.execute("drop schema build_next cascade")
            cursor.execute("drop owned by billable_reader; drop role billable_reader")
        admin.close()


def connection_schemas() -> tuple[str, ...]:
    return postgres.PUBLISHED_SCHEMAS


def test_sessions_are_pooled_per_process(cluster, tiny_firm):
    with engine("postgres", cluster, tiny_firm.warehouse):
        pids = {int(postgres.fetch("select pg_backend_pid() as pid", ()).iloc[0]["pid"]) for _ in range(5)}
        assert len(pids) == 1  # one after another: the same pooled session
        assert len(postgres._pools) == 1


def test_a_statement_over_the_timeout_is_cancelled(cluster, tiny_firm, monkeypatch):
    monkeypatch.setenv(postgres.STATEMENT_TIMEOUT_ENV, "0.2")
    postgres.close_pools()
    try:
        with engine("postgres", cluster, tiny_firm.warehouse), pytest.raises(psycopg2.errors.QueryCanceled):
            postgres.fetch("select pg_sleep(2)", ())
    finally:
        monkeypatch.delenv(postgres.STATEMENT_TIMEOUT_ENV)
        postgres.close_pools()


def test_on_spark_the_pages_read_the_published_parquet_with_duckdb(tiny_firm, tmp_path, monkeypatch):
    """A Spark build's published snapshot (Parquet per table, CURRENT naming the run) read with
    DuckDB gives every read the DuckDB warehouse gives; a new snapshot is a new cache key."""
    duck = read_all("duckdb", None, tiny_firm.warehouse)
    monkeypatch.setenv("BILLABLE_WAREHOUSE", str(tmp_path / "warehouse.duckdb"))  # no such file
    monkeypatch.setenv("BILLABLE_ENGINE", "spark")
    with connection.run_scope():
        assert not connection.snapshot().exists  # nothing published yet: the page says so
    spark_snapshot(tiny_firm.warehouse, tmp_path, "run-1")
    with connection.run_scope():
        snap = connection.snapshot()
        assert snap.exists and snap.engine == "spark" and snap.published["run_id"] == "run-1"
        assert connection.unreadable() is None
        on_spark = {key: read() for key, read in dashboard_reads().items()}
    for key in duck:
        same(on_spark[key], duck[key], key)
    spark_snapshot(tiny_firm.warehouse, tmp_path, "run-2")
    with connection.run_scope():
        assert connection.snapshot().version == "spark:run-2" and connection.freshness().run_id == "run-2"


# --- the reverse ETL ---------------------------------------------------------------------------


def test_the_reverse_etl_plan_on_postgres_and_spark_equals_duckdbs(cluster, tiny_firm, tmp_path, monkeypatch):
    with engine("duckdb", cluster, tiny_firm.warehouse):
        rows, _ = read_lines(tiny_firm.warehouse)
        ours = {row["line_key"] for row in rows if row["line_status"] == "invoiced"}
        ours = set(sorted(ours)[:7]) | {"time:does-not-exist"}
        duck_rows, duck_run = read_lines(tiny_firm.warehouse, ours)
    with engine("postgres", cluster, tiny_firm.warehouse):
        pg_rows, pg_run = read_lines(Path("/nonexistent/warehouse.duckdb"), ours)
    assert len(duck_rows) > 100 and pg_rows == duck_rows
    assert pg_run is not None and pg_run == duck_run  # the latest passed build (no ops.publications here)
    duck_plan, pg_plan = diff(duck_rows, {}, False), diff(pg_rows, {}, False)
    assert len(duck_plan.ops) + len(duck_plan.skipped) + len(duck_plan.held) > 100
    assert [(op.line_key, op.operation, op.payload, op.content_hash) for op in pg_plan.ops] == [
        (op.line_key, op.operation, op.payload, op.content_hash) for op in duck_plan.ops
    ]
    assert (pg_plan.held, pg_plan.skipped) == (duck_plan.held, duck_plan.skipped)
    # Spark: the published Parquet snapshot beside the (absent) warehouse file, read with DuckDB
    spark_snapshot(tiny_firm.warehouse, tmp_path, "run-s")
    monkeypatch.setenv("BILLABLE_ENGINE", "spark")
    spark_rows, spark_run = read_lines(tmp_path / "warehouse.duckdb", ours)
    assert spark_rows == duck_rows and spark_run == "run-s"


# --- the ledger's snapshot ---------------------------------------------------------------------


def test_the_ledger_snapshot_on_postgres_has_the_duckdb_snapshots_columns(cluster, tiny_firm, tmp_path):
    import duckdb

    ledger = tmp_path / "ledger.sqlite"
    ledger_with(ledger, runs=3, lines=4)
    with engine("duckdb", cluster, tiny_firm.warehouse):
        export_snapshot(ledger, tmp_path / "ledger.duckdb")
    with engine("postgres", cluster, tiny_firm.warehouse):
        export_snapshot(ledger, tmp_path / "ledger.duckdb")
    pg = ledger_snapshot_rows(cluster.dsn("billable"))
    with duckdb.connect(str(tmp_path / "ledger.duckdb"), read_only=True) as duck:
        for table in ("line_states", "sync_runs"):
            assert pg[table] == duck.execute(f"select * from {table} order by 1").fetchall()
            columns = duck.execute(
                "select column_name, data_type from information_schema.columns where table_name = ?"
                " order by ordinal_position",
                [table],
            ).fetchall()
            pg_types = ledger_snapshot_types(cluster.dsn("billable"))[table]
            assert list(pg_types) == [name for name, _ in columns]
            for name, kind in columns:
                expected = {"VARCHAR": "character varying", "DOUBLE": "double precision"}.get(
                    kind, kind.lower()
                )
                expected = "timestamp without time zone" if kind == "TIMESTAMP" else expected
                assert pg_types[name].replace("numeric", "decimal") == expected.split("(")[0], (table, name)
    assert len(pg["line_states"]) == 4 and len(pg["sync_runs"]) == 3


def test_the_ledger_snapshot_is_replaced_in_one_transaction(cluster, tiny_firm, tmp_path):
    """An export that dies after replacing line_states (waiting for sync_runs) leaves BOTH tables
    as they were; readers never see the new line_states with the old sync_runs."""
    dsn = cluster.dsn("billable")
    ledger = tmp_path / "ledger.sqlite"
    ledger_with(ledger, runs=2, lines=3)
    with engine("postgres", cluster, tiny_firm.warehouse):
        export_snapshot(ledger, tmp_path / "ledger.duckdb")
        first = ledger_snapshot_rows(dsn)
        ledger_with(ledger, runs=5, lines=0, first_run=2)  # more runs: the next snapshot differs
        holder = psycopg2.connect(dsn)
        outcome: list[BaseException | None] = []
        try:
            with holder.cursor() as cursor:  # a long reader of sync_runs (a build) holds its lock
                cursor.execute("select count(*) from raw_ledger.sync_runs")

            def export() -> None:
                try:
                    export_snapshot(ledger, tmp_path / "ledger.duckdb")
                    outcome.append(None)
                except BaseException as error:  # the exporter's session is terminated below
                    outcome.append(error)

            thread = threading.Thread(target=export)
            thread.start()
            waiting = wait_for_lock_waiter(dsn)
            assert waiting is not None, "the export never waited for the held sync_runs"
            reader = psycopg2.connect(dsn)
            try:
                with reader.cursor() as cursor:  # meanwhile a reader does not see the new line_states
                    cursor.execute("set lock_timeout = '200ms'")
                    with pytest.raises(psycopg2.errors.LockNotAvailable):
                        cursor.execute("select count(*) from raw_ledger.line_states")
            finally:
                reader.close()
            admin = psycopg2.connect(dsn)
            admin.autocommit = True
            with admin.cursor() as cursor:
                cursor.execute("select pg_terminate_backend(%s)", [waiting])
            admin.close()
            thread.join(30)
            assert outcome and isinstance(outcome[0], psycopg2.Error)
        finally:
            holder.rollback()
            holder.close()
        assert ledger_snapshot_rows(dsn) == first  # nothing of the dead export is visible
        export_snapshot(ledger, tmp_path / "ledger.duckdb")
    second = ledger_snapshot_rows(dsn)
    assert len(second["sync_runs"]) == 7 and second["line_states"] == first["line_states"]


def test_the_ledger_snapshot_on_spark_is_parquet_swapped_in(cluster, tiny_firm, tmp_path, monkeypatch):
    import duckdb

    ledger = tmp_path / "ledger.sqlite"
    ledger_with(ledger, runs=2, lines=3)
    monkeypatch.setenv("BILLABLE_ENGINE", "spark")
    where = export_snapshot(ledger, tmp_path / "ledger.duckdb")
    assert where == tmp_path / "lake" / "raw_ledger"
    ledger_with(ledger, runs=1, lines=0, first_run=2)
    export_snapshot(ledger, tmp_path / "ledger.duckdb")  # replaces: one file per table, no leftovers
    assert sorted(path.name for path in (tmp_path / "lake" / "raw_ledger").iterdir()) == [
        "line_states",
        "sync_runs",
    ]
    runs = tmp_path / "lake" / "raw_ledger" / "sync_runs"
    assert [path.name for path in runs.iterdir()] == ["snapshot.parquet"]
    with duckdb.connect() as duck:
        assert duck.execute(f"select count(*) from '{runs}/*.parquet'").fetchall() == [(3,)]
        kinds = dict(
            duck.execute(
                f"select column_name, column_type from (describe select * from '{runs}/*.parquet')"
            ).fetchall()
        )
    assert (
        kinds["started_at"] == "TIMESTAMP"
        and kinds["is_dry_run"] == "BOOLEAN"
        and kinds["duration_s"] == "DOUBLE"
    )
    assert not (tmp_path / "ledger.duckdb").exists()


# --- the semantic layer ---------------------------------------------------------------------------

METRIC_QUERIES = (
    (("billable_utilization", "billable_hours"), ("metric_time__month", "employee__practice")),
    (("recognized_revenue", "gross_margin_pct"), ("metric_time__month",)),
    (("dso",), ("metric_time__month",)),
)


def test_metricflow_on_postgres_returns_duckdbs_numbers(cluster, tiny_firm):
    answers = {}
    for name in ("duckdb", "postgres"):
        with engine(name, cluster, tiny_firm.warehouse), SemanticLayer(tiny_firm.warehouse) as layer:
            answers[name] = [
                layer.query(metrics, group_by, order_by=group_by) for metrics, group_by in METRIC_QUERIES
            ]
            if name == "postgres":  # the published schema, through a read-only session
                assert '"billable"."marts".' in answers[name][0].sql
                with layer._session_environ():
                    shown = layer.config.sql_client.query(
                        "select current_setting('default_transaction_read_only')"
                    )
                    assert list(shown.rows) == [("on",)]
                    with pytest.raises(Exception, match="read-only transaction"):
                        layer.config.sql_client.query("create table marts.intruder as select 1 as x")
    for duck, pg in zip(answers["duckdb"], answers["postgres"], strict=True):
        assert pg.columns == duck.columns and len(pg.rows) == len(duck.rows) > 0
        for pg_row, duck_row in zip(pg.rows, duck.rows, strict=True):
            for left, right in zip(pg_row, duck_row, strict=True):
                if isinstance(right, int | float) or hasattr(right, "as_tuple"):
                    assert left is not None and float(left) == pytest.approx(
                        float(right), rel=1e-9, abs=0.005
                    )
                elif hasattr(right, "date") and hasattr(left, "date"):
                    assert pd.Timestamp(left).tz_localize(None) == pd.Timestamp(right).tz_localize(None)
                else:
                    assert left == right


def test_make_metrics_on_spark_is_one_clear_line_and_exit_2():
    environ = {**os.environ, "BILLABLE_ENGINE": "spark"}
    done = subprocess.run(
        [sys.executable, "-m", "billable.metrics", "query", "--metrics", "billable_utilization"],
        cwd=ROOT, env=environ, capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 2
    assert done.stderr.strip().splitlines() == [f"metrics: {SPARK_UNSUPPORTED}"]
    assert "Databricks" in done.stderr and "dbt-databricks" in done.stderr and done.stdout == ""


# --- the role scopes (dashboards/queries/access.py) on both engines -------------------------------


def read_all_as(name: str, cluster: Any, warehouse: Path, access: Access) -> dict[str, Any]:
    """Every dashboard read as one role; a relation the role may not read is recorded as refused."""
    with engine(name, cluster, warehouse), connection.run_scope(), connection.as_role(access):
        found: dict[str, Any] = {}
        for key, read in dashboard_reads().items():
            try:
                found[key] = read()
            except NotPermitted:
                found[key] = "not permitted"
        return found


@pytest.mark.parametrize(
    "access", [Access(Role.PRACTICE_LEAD, ("Strategy",)), Access(Role.DELIVERY)], ids=["lead", "delivery"]
)
def test_every_read_as_a_restricted_role_is_the_same_on_postgres(cluster, tiny_firm, access):
    """The scoped relations (common table expressions, quoted columns, the people count per
    contract-month) run on PostgreSQL 15 and give DuckDB's answers."""
    duck = read_all_as("duckdb", cluster, tiny_firm.warehouse, access)
    pg = read_all_as("postgres", cluster, tiny_firm.warehouse, access)
    assert duck.keys() == pg.keys()
    refused = {key for key, value in duck.items() if isinstance(value, str) and value == "not permitted"}
    assert {"quarantine_summary", "sync_runs"} <= refused, refused  # the operations tables
    assert ({"ar_aging", "dso_months"} <= refused) == bool(access.practices), refused  # by entity only
    assert len(duck["revenue_rows"]) > 0 and len(duck["wip_by"]) > 0
    for key in duck:
        same(pg[key], duck[key], key)
