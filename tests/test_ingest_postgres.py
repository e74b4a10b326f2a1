"""The loaders on PostgreSQL (BILLABLE_ENGINE=postgres) under the faults tests/test_ingest_runner_faults.py
puts them through on DuckDB: the real sandbox over HTTP, real `python -m ingestion` processes
writing through dlt's postgres destination into a throwaway PostgreSQL 15, kill -9.

- a clean load lands every table DuckDB's does, with the same rows per table;
- a resumed package's repair removes exact copies (by ctid) and keeps append-only history;
- kill -9 in a source's load step, then a re-run: it resumes and equals a clean load.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import psycopg2
import pytest

from billable.pg_cluster import ThrowawayCluster
from billable.sandbox_process import running_sandbox
from ingestion.run import MARKER
from tests.engine_compare import normalise
from tests.ingest_helpers import ROOT, copy_world, generate_world, ingest, ingest_command, ingest_env
from tests.test_ingest_runner_faults import ALL, APPEND_ONLY, LOAD_TIME_COLUMNS, contents, kill_in_load_step

DATASETS = ("raw_crm", "raw_psa", "raw_time", "raw_hr", "raw_erp")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("ingest_postgres")
    return copy_world(generate_world(folder / "tiny"), folder / "world")


@pytest.fixture(scope="module")
def base_url(world: Path) -> Iterator[str]:
    with running_sandbox(world) as url:
        yield url


@pytest.fixture(scope="module")
def cluster() -> Iterator[ThrowawayCluster]:
    with ThrowawayCluster() as started:
        yield started


def database(cluster: ThrowawayCluster, name: str) -> dict[str, str]:
    cluster.create_database(name)
    return cluster.environment(name)


def pg_rows(dsn: str, sql: str, *params: object) -> list[tuple]:
    connection = psycopg2.connect(dsn)
    try:
        with connection, connection.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description else []
    finally:
        connection.close()


def pg_contents(dsn: str) -> dict[str, list[tuple]]:
    """Every raw table's rows without dlt's bookkeeping columns and load times, normalised, sorted
    (append-only history aside: it grows with every run)."""
    tables = pg_rows(
        dsn,
        "select table_schema, table_name from information_schema.tables where table_schema = any(%s)"
        " and table_name not like '\\_dlt%%'",
        list(DATASETS),
    )
    found = {}
    for schema, name in tables:
        if (schema, name) in APPEND_ONLY:
            continue
        columns = [
            column
            for (column,) in pg_rows(
                dsn,
                "select column_name from information_schema.columns"
                " where table_schema = %s and table_name = %s order by column_name",
                schema,
                name,
            )
            if not column.startswith("_dlt") and column not in LOAD_TIME_COLUMNS
        ]
        listed = ", ".join(f'"{column}"' for column in columns)
        rows = pg_rows(dsn, f'select {listed} from {schema}."{name}"')
        found[f"{schema}.{name}"] = sorted(
            (tuple(normalise(value) for value in row) for row in rows), key=repr
        )
    return found


def duckdb_contents(raw_db: Path) -> dict[str, list[tuple]]:
    return {
        f"{schema}.{name}": sorted((tuple(normalise(value) for value in row) for row in rows), key=repr)
        for (schema, name), rows in (
            (tuple(key.split(".", 1)), rows) for key, rows in contents(raw_db).items()
        )
        if schema in DATASETS
    }


@pytest.fixture(scope="module")
def clean(
    world: Path, base_url: str, cluster: ThrowawayCluster, tmp_path_factory: pytest.TempPathFactory
) -> str:
    """One clean load of every source into PostgreSQL; checked against the same load into DuckDB."""
    settings = database(cluster, "clean")
    folder = tmp_path_factory.mktemp("clean_pg")
    loaded = ingest(base_url, world, folder / "raw.duckdb", ALL, **settings)
    assert loaded.returncode == 0, loaded.stdout[-3000:] + loaded.stderr[-3000:]
    assert not (folder / "raw.duckdb").exists(), "nothing lands in a DuckDB file on PostgreSQL"
    duck = tmp_path_factory.mktemp("clean_duckdb") / "raw.duckdb"
    reference = ingest(base_url, world, duck, ALL)
    assert reference.returncode == 0, reference.stderr[-3000:]
    dsn = settings["DESTINATION__POSTGRES__CREDENTIALS"]
    got, want = pg_contents(dsn), duckdb_contents(duck)
    assert sorted(got) == sorted(want), "the same tables"
    for table, rows in want.items():
        assert got[table] == rows, f"{table}: PostgreSQL's rows differ from DuckDB's"
    logged = pg_rows(dsn, "select distinct source from raw_ops.load_log where status = 'loaded'")
    assert sorted(name for (name,) in logged) == sorted(ALL.split(","))
    return dsn


def test_a_clean_load_lands_every_table_with_duckdbs_rows(clean: str) -> None:
    loaded = pg_contents(clean)  # the fixture compared them; here: it compared something
    assert len(loaded["raw_time.time_entries"]) > 1000 and loaded["raw_erp.invoice_lines"]


def test_the_resume_repair_removes_copies_by_ctid_and_keeps_history(
    world: Path, base_url: str, cluster: ThrowawayCluster, tmp_path: Path
) -> None:
    settings = database(cluster, "repair")
    dsn = settings["DESTINATION__POSTGRES__CREDENTIALS"]
    raw_db = tmp_path / "raw.duckdb"
    for _ in range(2):
        run = ingest(base_url, world, raw_db, "erp", **settings)
        assert run.returncode == 0, run.stderr[-3000:]
    realms = pg_rows(dsn, "select count(distinct realm_id) from raw_erp.preferences_history")[0][0]
    pg_rows(
        dsn,
        "insert into raw_erp.preferences_history select * from raw_erp.preferences_history"
        " where _dlt_load_id = (select max(_dlt_load_id) from raw_erp.preferences_history)",
    )
    pg_rows(
        dsn, "insert into raw_erp.time_activities select * from raw_erp.time_activities order by id limit 7"
    )
    (raw_db.parent / "dlt" / "billable_erp" / MARKER).touch()
    again = ingest(base_url, world, raw_db, "erp", **settings)
    assert again.returncode == 0, again.stderr[-3000:]
    assert f"removed {realms + 7} rows loaded twice" in again.stdout, again.stdout[-3000:]
    history = pg_rows(dsn, "select count(*), count(distinct _dlt_load_id) from raw_erp.preferences_history")[
        0
    ]
    assert history == (3 * realms, 3)
    duplicates = pg_rows(dsn, "select count(*) - count(distinct (realm_id, id)) from raw_erp.time_activities")
    assert duplicates == [(0,)]


@pytest.mark.parametrize(("source", "stage"), [("time", "completed"), ("erp", "completed")])
def test_kill_9_in_a_load_step_then_a_rerun_equals_a_clean_load(
    world: Path, base_url: str, cluster: ThrowawayCluster, clean: str, tmp_path: Path, source: str, stage: str
) -> None:
    settings = database(cluster, f"killed_{source}")
    raw_db = tmp_path / "raw.duckdb"
    victim = subprocess.Popen(
        ingest_command(raw_db, ALL),
        cwd=ROOT,
        env=ingest_env(base_url, world, BILLABLE_PROGRESS="", **settings),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    load_dir = raw_db.parent / "dlt" / f"billable_{source}" / "load"
    assert kill_in_load_step(victim, load_dir, stage), f"the run ended before {source}'s load step"
    rerun = ingest(base_url, world, raw_db, ALL, **settings)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "resumed the load package" in rerun.stdout, rerun.stdout[-3000:]
    dsn = settings["DESTINATION__POSTGRES__CREDENTIALS"]
    assert pg_contents(dsn) == pg_contents(clean)
    realms, rows, loads = pg_rows(
        dsn,
        "select count(distinct realm_id), count(*), count(distinct _dlt_load_id)"
        " from raw_erp.preferences_history",
    )[0]
    assert rows == realms * loads and loads >= 1, "every load's history row kept, none removed"
