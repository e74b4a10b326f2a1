"""The shared landing path with real dlt and a real DuckDB: a table's first load appends (no staging
copy), a key read twice in that load turns it back into a merge, later loads merge, and a resumed
package's double-loaded rows are removed. Plus the runner on the real sandbox: a first load of
Harvest appends and still lands every record once, and the repair after a resumed package."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dlt
import duckdb
import polars as pl
import pytest
from dlt.pipeline.exceptions import PipelineStepFailed

from billable.sandbox_process import running_sandbox
from ingestion import landing
from ingestion.context import destination_tables
from ingestion.landing import land_pages, merge_hints
from ingestion.records import NUMBER, STRING, SchemaChangeRefused, TableSpec
from ingestion.run import MARKER, dataset_tables
from tests.ingest_helpers import copy_world, generate_world, ingest, query
from tests.test_ingest_time import assert_matches_world

SPEC = TableSpec(
    "things",
    ("id",),
    {"id": pl.Int64, "amount": pl.Float64, "updated_at": pl.String},
    cursor="updated_at",
    critical={"amount": NUMBER, "updated_at": STRING},
    finance_critical=True,
)


def record(index: int, stamp: str = "2026-01-01T00:00:00Z", amount: float = 1.0) -> dict:
    return {"id": index, "amount": amount, "updated_at": stamp}


def things(pages: list[list[dict]]) -> object:
    spec = TableSpec(SPEC.name, SPEC.primary_key, SPEC.schema, SPEC.cursor, dict(SPEC.critical), True)

    @dlt.resource(name="things", **merge_hints(spec))
    def resource() -> Iterator[object]:
        yield from land_pages(iter(pages), spec, source="test")

    return resource


def load(tmp_path: Path, pages: list[list[dict]], name: str = "landing") -> dlt.Pipeline:
    raw_db = tmp_path / "raw.duckdb"
    pipeline = dlt.pipeline(
        pipeline_name=name,
        destination=dlt.destinations.duckdb(str(raw_db)),
        dataset_name="raw_test",
        pipelines_dir=str(tmp_path / "dlt"),
    )
    with destination_tables(dataset_tables(raw_db, "raw_test")):
        pipeline.run(things(pages), loader_file_format="parquet")
    return pipeline


def staged(tmp_path: Path) -> bool:
    """Whether any load so far went through dlt's staging dataset (what a merge does)."""
    rows = query(
        tmp_path / "raw.duckdb",
        "select count(*) from information_schema.tables where table_schema = 'raw_test_staging' "
        "and table_name = 'things'",
    )
    return rows[0][0] > 0


def rows(tmp_path: Path) -> list[tuple]:
    return query(tmp_path / "raw.duckdb", "select id, amount, updated_at from raw_test.things order by id")


@pytest.fixture
def small_batches(monkeypatch: pytest.MonkeyPatch) -> None:
    # Several batches per load, so the held-back last batch is exercised.
    monkeypatch.setattr(landing, "BATCH_ROWS", 3)


@pytest.mark.usefixtures("small_batches")
def test_a_first_load_appends_and_later_loads_merge(tmp_path: Path) -> None:
    first = [[record(i) for i in range(0, 4)], [record(i) for i in range(4, 9)], [record(9)]]
    load(tmp_path, first)
    assert not staged(tmp_path), "a table's first load must not pay for a staged merge"
    assert [row[0] for row in rows(tmp_path)] == list(range(10))

    # The next run has a cursor: it merges, so records re-read by the lookback do not duplicate.
    later = [[record(8, "2026-01-02T00:00:00Z", 2.0), record(9), record(10, "2026-01-02T00:00:00Z")]]
    load(tmp_path, later)
    assert staged(tmp_path)
    landed = rows(tmp_path)
    assert [row[0] for row in landed] == list(range(11))
    assert landed[8] == (8, 2.0, "2026-01-02T00:00:00Z")


@pytest.mark.usefixtures("small_batches")
def test_a_key_read_twice_in_a_first_load_makes_it_a_merge(tmp_path: Path) -> None:
    # Record 2 changed while the list was paged and was served again on a later page.
    pages = [[record(i) for i in range(0, 4)], [record(i) for i in range(4, 8)], [record(2, amount=5.0)]]
    load(tmp_path, pages)
    assert staged(tmp_path), "a repeated key must send the whole table through merge"
    assert [row[0] for row in rows(tmp_path)] == list(range(8))


def test_no_append_when_the_table_exists_or_the_runner_did_not_say(tmp_path: Path) -> None:
    # Without the runner's list of destination tables (None), every load merges.
    pipeline = dlt.pipeline(
        pipeline_name="unknown",
        destination=dlt.destinations.duckdb(str(tmp_path / "raw.duckdb")),
        dataset_name="raw_test",
        pipelines_dir=str(tmp_path / "dlt"),
    )
    pipeline.run(things([[record(1), record(2)]]), loader_file_format="parquet")
    assert staged(tmp_path)
    # A new pipeline (no state) whose table already exists must merge too, never append.
    load(tmp_path, [[record(2, amount=3.0), record(3)]], name="stateless")
    assert rows(tmp_path) == [
        (1, 1.0, "2026-01-01T00:00:00Z"),
        (2, 3.0, "2026-01-01T00:00:00Z"),
        (3, 1.0, "2026-01-01T00:00:00Z"),
    ]


def declared_once(pages: list[list[dict]]) -> object:
    """A resource over the module-level SPEC itself, as a source's declarations are used: the same
    spec object on every run of the process."""

    @dlt.resource(name="things", **merge_hints(SPEC))
    def resource() -> Iterator[object]:
        yield from land_pages(iter(pages), SPEC, source="test")

    return resource


def run_things(tmp_path: Path, pages: list[list[dict]]) -> None:
    pipeline = dlt.pipeline(
        pipeline_name="declared_once",
        destination=dlt.destinations.duckdb(str(tmp_path / "raw.duckdb")),
        dataset_name="raw_test",
        pipelines_dir=str(tmp_path / "dlt"),
    )
    pipeline.run(declared_once(pages), loader_file_format="parquet")


def text_amount(index: int) -> dict:
    return {**record(index), "amount": "1.0"}


def test_each_run_judges_a_type_change_on_its_own_records(tmp_path: Path) -> None:
    # Run 1 sees 1,000 good records. Run 2, in the same process with the same declaration, gets
    # 30 records whose amount turned into text: 30 of 30 is a type change, refused. Counted
    # together with run 1 (30 of 1,030) it would pass as a few malformed records.
    run_things(tmp_path, [[record(index) for index in range(1000)]])
    with pytest.raises(PipelineStepFailed) as failed:
        run_things(tmp_path, [[text_amount(index) for index in range(2000, 2030)]])
    assert isinstance(failed.value.exception.__cause__, SchemaChangeRefused)
    assert "changed type from number to string in 30 of 30 records" in str(failed.value)

    # And the other way: 19 malformed of 19 on one run and 1 of 1 on the next are each a malformed
    # record or few (under TYPE_CHANGE_MIN_RECORDS), not together a refused change of 20 of 20.
    run_things(tmp_path / "second", [[text_amount(index) for index in range(19)]])
    run_things(tmp_path / "second", [[text_amount(19)]])
    quarantined = query(tmp_path / "second" / "raw.duckdb", "select count(*) from raw_test.quarantine")
    assert quarantined == [(20,)]


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(tmp_path_factory.mktemp("landing") / "tiny")


def test_harvest_first_load_appends_and_a_resumed_package_leaves_no_duplicates(
    tiny: Path, tmp_path: Path
) -> None:
    world = copy_world(tiny, tmp_path / "world")
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(world) as base_url:
        first = ingest(base_url, world, raw_db, "time")
        assert first.returncode == 0, first.stderr
        assert_matches_world(raw_db, world)
        staging = query(
            raw_db,
            "select count(*) from information_schema.tables where table_schema = 'raw_time_staging' "
            "and table_name = 'time_entries'",
        )[0][0]
        assert staging == 0, "the first load of time_entries should append, not merge"

        # A kill -9 an instant after an append job committed, before dlt marked it done, loads that
        # job's rows again when the package is resumed. Reproduce its effect, then let the next run
        # see the marker the runner leaves when it resumes a package.
        with duckdb.connect(str(raw_db)) as connection:
            connection.execute(
                "insert into raw_time.time_entries select * from raw_time.time_entries order by id limit 25"
            )
        marker = raw_db.parent / "dlt" / "billable_time" / MARKER
        marker.touch()
        again = ingest(base_url, world, raw_db, "time")
        assert again.returncode == 0, again.stderr
        assert "removed 25 rows loaded twice" in again.stdout
        assert not marker.exists()
    assert_matches_world(raw_db, world)
