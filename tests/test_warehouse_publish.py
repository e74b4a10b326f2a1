"""Write, audit, publish: only a fully tested build is published, atomically; readers and the
build never block each other; two builds never run at once. (Incremental = full refresh:
tests/test_warehouse_incremental.py.)"""

from __future__ import annotations

import subprocess
import sys
import time
from pathlib import Path

import duckdb
import pytest

from tests.ingest_helpers import ROOT
from tests.warehouse_helpers import built, copy_raw, load_tiny_world, rows, sha256, transform


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return load_tiny_world(tmp_path_factory.mktemp("publish"))


def test_a_failing_test_publishes_nothing_and_names_the_test(
    loaded: tuple[Path, Path], tmp_path: Path
) -> None:
    raw_db = copy_raw(loaded[1], tmp_path / "raw.duckdb")
    out = tmp_path / "wh"
    warehouse = built(raw_db, out)
    metadata = (out / "warehouse.json").read_text()
    before = sha256(warehouse)

    # the time tool sends one entry twice under the same id: the key is no longer unique
    with duckdb.connect(str(raw_db)) as connection:
        connection.execute("insert into raw_time.time_entries select * from raw_time.time_entries limit 1")
    result = transform(raw_db, out)

    assert result.returncode == 1, result.stdout[-3000:] + result.stderr
    assert "unique_stg_time__time_entries_time_entry_id" in result.stderr
    assert "did not publish" in result.stderr and "still holds the last published build" in result.stderr
    assert sha256(warehouse) == before, "the published warehouse is untouched"
    assert (out / "warehouse.json").read_text() == metadata
    failed_runs = rows(
        out / "build" / "warehouse.duckdb", "select status from ops.transform_runs order by started_at"
    )
    assert [status for (status,) in failed_runs] == ["passed", "failed"]


def test_readers_keep_their_snapshot_and_new_readers_see_the_new_build(
    loaded: tuple[Path, Path], tmp_path: Path
) -> None:
    out = tmp_path / "wh"
    warehouse = built(loaded[1], out, "--vars", "{as_of_at: '2026-10-01T00:00:00'}")
    reader = duckdb.connect(str(warehouse), read_only=True)
    try:
        # the build runs and publishes while a reader holds the published file open
        built(loaded[1], out, "--vars", "{as_of_at: '2026-10-20T00:00:00'}")
        old = reader.execute("select as_of_at from intermediate.int_as_of").fetchall()
        assert str(old[0][0]) == "2026-10-01 00:00:00"
    finally:
        reader.close()
    assert str(rows(warehouse, "select as_of_at from intermediate.int_as_of")[0][0]) == "2026-10-20 00:00:00"


def test_a_second_transform_exits_75_naming_the_first(loaded: tuple[Path, Path], tmp_path: Path) -> None:
    out = tmp_path / "wh"
    command = [sys.executable, "-m", "billable.transform", "--raw-db", str(loaded[1])]
    command += ["--warehouse", str(out / "warehouse.duckdb"), "--build-dir", str(out / "build")]
    first = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        lock = out / "build" / "transform.lock"
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (lock.exists() and lock.read_text().strip()):
            time.sleep(0.05)
        second = transform(loaded[1], out)
        assert second.returncode == 75, second.stderr
        assert f"another run (pid {first.pid}" in second.stderr and "not starting" in second.stderr
        # --wait: the second one queues behind the first and then publishes
        waiting = transform(loaded[1], out, "--wait", "300")
        assert waiting.returncode == 0, waiting.stderr
    finally:
        first.wait(timeout=300)
    assert first.returncode == 0
