"""Write-audit-publish on PostgreSQL (billable.publish_postgres), on a real throwaway PostgreSQL 15.

The build schemas here are made by hand (a few tables with known rows) so each property is checked
in isolation; tests/test_engine_postgres.py runs the whole pipeline on PostgreSQL.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path

import psycopg2
import pytest

from billable.engine import PostgresSettings
from billable.pg_cluster import ThrowawayCluster
from billable.publish_postgres import SCHEMAS, DatabaseLockHeld, PostgresWarehouse, advisory_lock

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    with ThrowawayCluster() as started:
        started.create_database("billable")
        started.create_reader()
        yield started


@pytest.fixture
def env(cluster: ThrowawayCluster, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    settings = cluster.environment()
    for key, value in settings.items():
        monkeypatch.setenv(key, value)
    connection = psycopg2.connect(cluster.dsn("billable"))
    connection.autocommit = True
    with connection.cursor() as cursor:  # every test starts from an empty warehouse
        cursor.execute("select schema_name from information_schema.schemata where schema_name like any(%s)",
                       [[*SCHEMAS, "build_%", "%__next", "%__old"]])  # fmt: skip
        for (schema,) in cursor.fetchall():
            cursor.execute(f'drop schema "{schema}" cascade')
    connection.close()
    return settings


def execute(dsn: str, *statements: str) -> list[tuple]:
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor() as cursor:
            rows: list[tuple] = []
            for statement in statements:
                cursor.execute(statement)
                rows = cursor.fetchall() if cursor.description else []
            return rows
    finally:
        connection.close()


def build(cluster: ThrowawayCluster, version: int) -> None:
    """A finished build: two marts tables and the run log, stamped with `version`."""
    execute(
        cluster.dsn("billable"),
        "create schema if not exists build_marts",
        "create schema if not exists build_ops",
        "drop table if exists build_marts.fct_a, build_marts.fct_b",
        f"create table build_marts.fct_a as select {version} as version, n from generate_series(1, 1000) n",
        f"create table build_marts.fct_b as select {version} as version, 12.34::numeric(18, 2) as amount",
        "create table if not exists build_ops.transform_runs (run_id varchar)",
        f"insert into build_ops.transform_runs values ('run-{version}')",
    )


def metadata(version: int) -> dict:
    return {
        "published_at": f"2026-12-0{version}T00:00:00+00:00",
        "run_id": f"run-{version}",
        "git_commit": "abc",
        "dbt_version": "1.11.16",
        "dbt_invocation_id": f"inv-{version}",
        "full_refresh": False,
        "duration_s": 1.5,
        "nodes": {"total": 3},
    }


def published_versions(dsn: str) -> set[int]:
    rows = execute(
        dsn, "select distinct version from marts.fct_a union select distinct version from marts.fct_b"
    )
    return {version for (version,) in rows}


def test_publish_swaps_every_schema_in_and_records_the_publication(cluster, env):
    store = PostgresWarehouse()
    build(cluster, 1)
    store.publish(metadata(1))
    dsn = cluster.dsn("billable")
    assert published_versions(dsn) == {1}
    assert execute(dsn, "select count(*) from marts.fct_a") == [(1000,)]
    assert execute(dsn, "select amount from marts.fct_b") == [(Decimal("12.34"),)]  # money stays exact
    build(cluster, 2)
    store.publish(metadata(2))
    assert published_versions(dsn) == {2}
    assert execute(dsn, "select run_id, engine from ops.publications order by published_at") == [
        ("run-1", "postgres"),
        ("run-2", "postgres"),
    ]
    schemas = {name for (name,) in execute(dsn, "select schema_name from information_schema.schemata")}
    assert not {name for name in schemas if name.endswith(("__next", "__old"))}, schemas
    # the build schemas stay: the next build's incremental state
    assert {"build_marts", "build_ops", "marts", "ops"} <= schemas


def test_the_reader_role_reads_the_published_schemas_and_nothing_else(cluster, env):
    build(cluster, 1)
    PostgresWarehouse().publish(metadata(1))
    reader = PostgresSettings.from_dsn(env["BILLABLE__POSTGRES__READER_CREDENTIALS"]).dsn()
    assert execute(reader, "select count(*) from marts.fct_a") == [(1000,)]
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        execute(reader, "select count(*) from build_marts.fct_a")
    with pytest.raises(psycopg2.errors.InsufficientPrivilege):
        execute(reader, "delete from marts.fct_a")


def test_a_reader_in_the_middle_of_a_query_is_not_blocked_and_never_sees_a_mixture(cluster, env):
    """A reader holds a transaction on yesterday's tables while today's are published: the publish
    does not wait for it, and the reader's next statement reads today's rows, whole. (Read committed,
    PostgreSQL's default and the dashboards': a repeatable-read transaction begun before the publish
    would see today's tables empty, as for any table created after its snapshot: docs/deploy.md.)"""
    dsn = cluster.dsn("billable")
    build(cluster, 1)
    PostgresWarehouse().publish(metadata(1))
    build(cluster, 2)
    reader = psycopg2.connect(dsn)
    try:
        with reader.cursor() as cursor:
            cursor.execute("begin")
            cursor.execute("select distinct version from marts.fct_a")
            assert cursor.fetchall() == [(1,)]
            started = time.monotonic()
            PostgresWarehouse().publish(metadata(2))  # would hang if the swap waited for the reader
            assert time.monotonic() - started < 30
            cursor.execute("select distinct version from marts.fct_a")  # new name lookup: today's
            assert cursor.fetchall() == [(2,)]
        reader.rollback()
    finally:
        reader.close()
    assert published_versions(dsn) == {2}


def test_a_publish_killed_at_any_moment_leaves_one_whole_warehouse(cluster, env, tmp_path):
    """SIGKILL the publishing process at several moments: readers see all of run 1 or all of run 2,
    and the next publish cleans up and succeeds."""
    dsn = cluster.dsn("billable")
    build(cluster, 1)
    PostgresWarehouse().publish(metadata(1))
    execute(dsn, "drop table if exists build_marts.big",
            "create table build_marts.big as select g from generate_series(1, 300000) g")  # fmt: skip
    build(cluster, 2)
    script = (
        "from billable.publish_postgres import PostgresWarehouse; import json, sys; "
        "PostgresWarehouse().publish(json.loads(sys.argv[1]))"
    )
    import json

    for delay in (0.05, 0.2, 0.5, 1.0):
        process = subprocess.Popen(
            [sys.executable, "-c", script, json.dumps(metadata(2))], cwd=ROOT, env={**os.environ, **env}
        )
        time.sleep(delay)
        process.send_signal(signal.SIGKILL)
        process.wait()
        assert published_versions(dsn) in ({1}, {2}), delay
    PostgresWarehouse().publish(metadata(2))
    assert published_versions(dsn) == {2}
    schemas = {name for (name,) in execute(dsn, "select schema_name from information_schema.schemata")}
    assert not {name for name in schemas if name.endswith(("__next", "__old"))}, schemas


def test_a_second_transform_on_the_same_database_is_refused_while_the_first_holds_the_lock(cluster, env):
    held = threading.Event()
    release = threading.Event()

    def first() -> None:
        with advisory_lock():
            held.set()
            release.wait(30)

    thread = threading.Thread(target=first)
    thread.start()
    try:
        assert held.wait(30)
        refused = pytest.raises(DatabaseLockHeld, match="another transform holds database billable's lock")
        with refused, advisory_lock(wait_s=0):
            pass
    finally:
        release.set()
        thread.join()
    with advisory_lock():  # released with the first one's session
        pass


def test_lost_build_schemas_start_from_the_published_warehouse(cluster, env):
    dsn = cluster.dsn("billable")
    build(cluster, 1)
    store = PostgresWarehouse()
    store.publish(metadata(1))
    execute(dsn, "drop schema build_marts cascade", "drop schema build_ops cascade")
    store.prepare()
    assert execute(dsn, "select count(*), min(version) from build_marts.fct_a") == [(1000, 1)]
    assert execute(dsn, "select run_id from build_ops.transform_runs") == [("run-1",)]
