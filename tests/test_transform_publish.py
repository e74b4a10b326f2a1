"""Write, audit, publish: `python -m billable.transform` on a tiny world, with real dbt and DuckDB.

One world is generated and ingested per module; every test builds under its own temporary
paths (never data/ or dbt_project/target), because other people run dbt in this checkout.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from billable.run_lock import run_lock
from billable.sandbox_process import running_sandbox
from tests.ingest_helpers import ROOT, generate_world, ingest

TRANSFORM_TIMEOUT_S = 300


def transform_command(raw_db: Path, place: Path, *extra: str, build_dir: Path | None = None) -> list[str]:
    """The real CLI, publishing to `place`/warehouse.duckdb, building in `place`/build."""
    build = build_dir or place / "build"
    return [
        sys.executable,
        "-m",
        "billable.transform",
        "--raw-db",
        str(raw_db),
        "--warehouse",
        str(place / "warehouse.duckdb"),
        "--build-dir",
        str(build),
        *extra,
    ]


def run_transform(raw_db: Path, place: Path, *extra: str, build_dir: Path | None = None):
    return subprocess.run(
        transform_command(raw_db, place, *extra, build_dir=build_dir),
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
        timeout=TRANSFORM_TIMEOUT_S,
    )


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def latest_passed_run(connection: duckdb.DuckDBPyConnection) -> str:
    return connection.execute(
        "select max(run_id) from ops.transform_runs where status = 'passed'"
    ).fetchone()[0]


def rows_in_every_table(connection: duckdb.DuckDBPyConnection) -> int:
    """Reads every built table to the end: proves a connection can still read its whole file."""
    tables = connection.execute(
        "select table_schema, table_name from information_schema.tables "
        "where table_schema in ('staging', 'intermediate', 'marts') and table_type = 'BASE TABLE'"
    ).fetchall()
    return sum(connection.execute(f'select count(*) from "{s}"."{t}"').fetchone()[0] for s, t in tables)


def read_in_new_process(warehouse: Path) -> str:
    """The latest published run as a new reader sees it. Another process, because DuckDB shares one
    database instance per path within a process: a new connection there would see the old file."""
    code = (
        "import duckdb, sys\n"
        "with duckdb.connect(sys.argv[1], read_only=True) as c:\n"
        "    print(c.execute(\"select max(run_id) from ops.transform_runs where status = 'passed'\")"
        ".fetchone()[0])\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code, str(warehouse)], capture_output=True, text=True, check=True, timeout=60
    )
    return result.stdout.strip()


def lock_holder(lock: Path) -> dict:
    text = lock.read_text().strip() if lock.exists() else ""
    return json.loads(text) if text else {}


@pytest.fixture(scope="module")
def raw_db(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny world, ingested once into a raw database the tests only read (or copy)."""
    base = tmp_path_factory.mktemp("wap")
    world = generate_world(base / "world", preset="tiny", seed=7)
    raw = base / "raw.duckdb"
    with running_sandbox(world) as base_url:
        result = ingest(base_url, world, raw, "")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return raw


@pytest.fixture(scope="module")
def published(raw_db: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A folder whose warehouse.duckdb has been published once; returns the folder."""
    place = tmp_path_factory.mktemp("published")
    result = run_transform(raw_db, place)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr
    return place


def test_transform_publishes_a_read_only_warehouse_with_its_metadata(published: Path) -> None:
    warehouse = published / "warehouse.duckdb"
    metadata = json.loads((published / "warehouse.json").read_text())
    assert metadata["published_at"]
    assert metadata["nodes"]["by_type"].get("model", 0) > 0
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        schemas = dict(
            connection.execute(
                "select table_schema, count(*) from information_schema.tables group by 1"
            ).fetchall()
        )
        assert schemas.get("staging", 0) > 0 and schemas.get("marts", 0) > 0, schemas
        assert latest_passed_run(connection) == metadata["run_id"], "the published file carries its own run"
    # Nothing half-done is left beside the published file.
    assert not list(published.glob("*.publishing")) and not list(published.glob("*.wal"))


def test_a_failing_test_names_itself_and_leaves_the_published_warehouse_alone(
    raw_db: Path, published: Path, tmp_path: Path
) -> None:
    """Bad source data (a time entry landed twice) fails the staging key's `unique` test.

    A fresh build folder also shows a lost working file starting from the published one, so the
    runs recorded before survive.
    """
    broken_raw = tmp_path / "raw.duckdb"
    shutil.copyfile(raw_db, broken_raw)
    with duckdb.connect(str(broken_raw)) as connection:
        connection.execute("insert into raw_time.time_entries select * from raw_time.time_entries limit 1")
    warehouse = published / "warehouse.duckdb"
    before = sha256(warehouse)
    metadata_before = (published / "warehouse.json").read_text()
    build_dir = tmp_path / "build"

    result = run_transform(broken_raw, published, build_dir=build_dir)

    assert result.returncode == 1, result.stdout[-4000:] + result.stderr
    assert "test unique_stg_time__time_entries_time_entry_id" in result.stderr
    assert "Got 1 result, configured to fail if != 0" in result.stderr
    assert "did not publish" in result.stderr
    assert sha256(warehouse) == before, "a failed audit must leave the published file byte for byte"
    assert (published / "warehouse.json").read_text() == metadata_before
    assert "starting it from the published" in result.stdout
    with duckdb.connect(str(build_dir / "warehouse.duckdb"), read_only=True) as connection:
        runs = connection.execute("select status, failed_nodes from ops.transform_runs order by run_id")
        history = runs.fetchall()
    assert history[0][0] == "passed", "the working file started from the published one, history included"
    status, failed_nodes = history[-1]
    assert status == "failed"
    assert any(
        node.startswith("test.billable.unique_stg_time__time_entries_time_entry_id") for node in failed_nodes
    )


def test_readers_keep_their_file_while_a_transform_publishes_the_next(
    raw_db: Path, published: Path, tmp_path: Path
) -> None:
    """A reader holding the published file is never blocked and keeps its snapshot; new readers
    see the next build.

    The next build also comes from data a warn-level test objects to: a non-billable GBP expense
    dated before the ERP's first rate quote, so its money cannot reach the reporting currency.
    It still publishes, and says so: on its output and in ops.transform_runs.
    """
    next_raw = tmp_path / "raw.duckdb"
    shutil.copyfile(raw_db, next_raw)
    with duckdb.connect(str(next_raw)) as connection:
        first_quote = connection.execute("select min(as_of_date) from raw_erp.exchange_rates").fetchone()[0]
        expense_id = connection.execute(
            "select min(id) from raw_time.expenses where client__currency = 'GBP' and not billable"
        ).fetchone()[0]
        connection.execute(
            "update raw_time.expenses set spent_date = cast(cast(? as date) - 20 as varchar) where id = ?",
            [first_quote, expense_id],
        )
    warehouse = published / "warehouse.duckdb"
    log = tmp_path / "transform.log"  # a file, not a pipe: dbt's output would fill an unread pipe
    reader = duckdb.connect(str(warehouse), read_only=True)
    try:
        old_run = latest_passed_run(reader)
        old_rows = rows_in_every_table(reader)
        with open(log, "w") as output:
            process = subprocess.Popen(
                transform_command(next_raw, published), cwd=ROOT, stdout=output, stderr=subprocess.STDOUT
            )
            reads_during_build = 0
            try:
                while process.poll() is None:  # the reader is never blocked by the build (a light
                    assert latest_passed_run(reader) == old_run  # query: the build needs both cores)
                    reads_during_build += 1
                    time.sleep(0.5)
            finally:
                returncode = process.wait(timeout=TRANSFORM_TIMEOUT_S)
        assert returncode == 0, log.read_text()[-6000:]
        new_run = json.loads((published / "warehouse.json").read_text())["run_id"]
        assert new_run != old_run
        assert reads_during_build > 0
        # The open connection still reads the file it opened, to the last page.
        assert latest_passed_run(reader) == old_run
        assert rows_in_every_table(reader) == old_rows
        # A new reader opens the new file.
        assert read_in_new_process(warehouse) == new_run
    finally:
        reader.close()
    output = log.read_text()
    assert "warning(s), published anyway" in output
    assert "test warn_money_without_a_reporting_rate" in output
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        nodes_warned, warnings = connection.execute(
            "select nodes_warned, warnings from ops.transform_runs where run_id = ?", [new_run]
        ).fetchone()
        unconverted = connection.execute(
            "select expense_id from marts.fct_expenses where amount <> 0 and amount_reporting is null"
        ).fetchall()
    assert nodes_warned == 1
    assert len(warnings) == 1 and warnings[0].startswith("test warn_money_without_a_reporting_rate"), warnings
    assert "Got 1 result" in warnings[0]
    assert unconverted == [(expense_id,)]


def test_a_second_transform_is_refused_while_the_lock_is_held(raw_db: Path, published: Path) -> None:
    """The lock a transform takes, held here so no dbt build is needed to hold it. (Two real
    transforms racing, and --wait queueing behind one, are in tests/test_warehouse_publish.py.)"""
    lock = published / "build" / "transform.lock"
    with run_lock(lock):
        refused = run_transform(raw_db, published)
        assert refused.returncode == 75, refused.stdout + refused.stderr
        assert f"transform: another run (pid {os.getpid()}, started " in refused.stderr
        assert f"holds {lock}; not starting" in refused.stderr

        started = time.monotonic()
        gave_up = run_transform(raw_db, published, "--wait", "1")
        assert gave_up.returncode == 75, gave_up.stdout + gave_up.stderr
        assert time.monotonic() - started >= 1.0
        assert "still held after waiting 1 s; not starting" in gave_up.stderr
    assert lock_holder(lock) == {}, "a released lock names nobody"


def test_missing_raw_database_is_a_usage_error(tmp_path: Path) -> None:
    result = run_transform(tmp_path / "absent.duckdb", tmp_path)
    assert result.returncode == 2
    assert "run `make ingest` first" in result.stderr
    assert not (tmp_path / "warehouse.duckdb").exists()


def test_pipeline_runs_one_at_a_time(tmp_path: Path) -> None:
    """`make daily` from cron while another run holds the data folder's lock: exit 75, named."""
    lock = tmp_path / "daily.lock"
    with run_lock(lock):
        result = subprocess.run(
            [sys.executable, "-m", "billable.pipeline", "--live", "--raw-db", str(tmp_path / "raw.duckdb")],
            cwd=ROOT,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
    assert result.returncode == 75, result.stdout + result.stderr
    assert f"daily: another run (pid {os.getpid()}, started " in result.stderr
