"""`python -m ingestion`: load every source (or some) into the raw DuckDB, one dlt pipeline each.

Sources run one after another into the same DuckDB file (one writer at a time). A source that
fails (down, refused schema change, ...) fails alone: the others still load, the failure is
written to the load log with its message, and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import importlib
import importlib.util
import os
import sys
import time
import traceback
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dlt
import duckdb

from ingestion.landing import destination_tables, failed_parts
from ingestion.load_log import LoadLogEntry, write_load_log

DEFAULT_RAW_DB = Path("data") / "raw.duckdb"


@dataclass(frozen=True)
class SourceEntry:
    """One system: the dataset it lands in and the module and function of its dlt source."""

    name: str
    dataset: str
    module: str
    function: str

    def build(self) -> Any:
        return getattr(importlib.import_module(self.module), self.function)()

    @property
    def built(self) -> bool:
        return importlib.util.find_spec(self.module) is not None


# Load order: reference data first, so a run that stops early has the dimensions of what it loaded.
SOURCES = {
    entry.name: entry
    for entry in (
        SourceEntry("crm", "raw_crm", "ingestion.salesforce", "salesforce"),
        SourceEntry("psa", "raw_psa", "ingestion.kantata", "kantata"),
        SourceEntry("time", "raw_time", "ingestion.harvest", "harvest"),
        SourceEntry("hr", "raw_hr", "ingestion.hr", "hr_drop"),
        SourceEntry("erp", "raw_erp", "ingestion.quickbooks", "quickbooks"),
    )
}


def make_pipeline(entry: SourceEntry, raw_db: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=f"billable_{entry.name}",
        destination=dlt.destinations.duckdb(str(raw_db)),
        dataset_name=entry.dataset,
        pipelines_dir=str(raw_db.parent / "dlt"),
        # dlt's progress collectors: log, tqdm, enlighten, alive_progress; "" for none.
        progress=os.environ.get("BILLABLE_PROGRESS", "log") or None,
    )


def run_source(entry: SourceEntry, raw_db: Path, run_id: str) -> list[LoadLogEntry]:
    """Load one source; returns its load-log rows (one per table, or one failure row).

    A part of the source that failed alone (a QuickBooks realm that is down) adds a failure row
    naming it, after the rows of what did load: the source counts as failed, the rest is in.
    """
    started = datetime.now(UTC)
    clock = time.monotonic()
    pipeline = make_pipeline(entry, raw_db)
    try:
        present = None if resuming(pipeline) else dataset_tables(raw_db, entry.dataset)
        with destination_tables(present), failed_parts() as failures:
            pipeline.run(entry.build(), loader_file_format="parquet")
        repair_after_resume(pipeline)
    except Exception as err:  # any failure of this source is reported, the others go on
        reason = describe_failure(err)
        elapsed = time.monotonic() - clock
        return [LoadLogEntry(run_id, entry.name, entry.dataset, None, 0, started, elapsed, "failed", reason)]
    rows = (pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace else {}) or {}
    elapsed = time.monotonic() - clock
    loaded = [
        LoadLogEntry(run_id, entry.name, entry.dataset, table, count, started, elapsed, "loaded", None)
        for table, count in sorted(rows.items())
        if not table.startswith("_dlt")
    ]
    failed = [
        LoadLogEntry(run_id, entry.name, entry.dataset, None, 0, started, elapsed, "failed", message)
        for _, message in sorted(failures.items())
    ]
    if loaded or failed:
        return [*loaded, *failed]
    return [LoadLogEntry(run_id, entry.name, entry.dataset, None, 0, started, elapsed, "loaded", None)]


def dataset_tables(raw_db: Path, dataset: str) -> set[str]:
    """The tables the dataset already has in the raw database (none if the file does not exist)."""
    if not raw_db.exists():
        return set()
    with duckdb.connect(str(raw_db), read_only=True) as connection:
        rows = connection.execute(
            "select table_name from information_schema.tables where table_schema = ?", [dataset]
        ).fetchall()
    return {name for (name,) in rows}


MARKER = "resumed-package.marker"


def repair_marker(pipeline: dlt.Pipeline) -> Path:
    return Path(pipeline.working_dir) / MARKER


def resuming(pipeline: dlt.Pipeline) -> bool:
    """Whether this run first finishes a load package an earlier run left behind (it was killed).

    dlt then loads that package before extracting anew. A first load appends its tables, and a job
    whose data was committed an instant before the kill, but not yet marked done, is loaded again:
    the marker asks `repair_after_resume` to remove such duplicates once the run has loaded.
    """
    if not pipeline.has_pending_data:
        return repair_marker(pipeline).exists()
    repair_marker(pipeline).touch()
    return True


def repair_after_resume(pipeline: dlt.Pipeline) -> None:
    """After a resumed package loaded: keep one row per primary key in every table of the dataset."""
    marker = repair_marker(pipeline)
    if not marker.exists():
        return
    removed = remove_duplicate_keys(pipeline)
    if removed:
        print(f"ingest:   removed {removed:,} rows loaded twice by the resumed package", flush=True)
    marker.unlink()


def remove_duplicate_keys(pipeline: dlt.Pipeline) -> int:
    """Delete all but one row of each primary key in each of the pipeline's tables; rows deleted.

    Duplicates here can only be the same row loaded twice (an append job re-run after a kill), so
    which copy stays does not matter.
    """
    removed = 0
    schema = pipeline.default_schema
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            return 0
        dataset = client.dataset_name
        present = {
            name
            for (name,) in client.execute_sql(
                "select table_name from information_schema.tables where table_schema = %s", dataset
            )
        }
        for table in schema.data_tables():
            name = table["name"]
            keys = [column for column, hints in table["columns"].items() if hints.get("primary_key")]
            if not keys or name not in present:
                continue
            qualified = client.make_qualified_table_name(name)
            key_list = ", ".join(client.escape_column_name(key) for key in keys)
            rows = client.execute_sql(
                f"delete from {qualified} where rowid in (select rowid from (select rowid, row_number() "
                f"over (partition by {key_list}) as copy from {qualified}) where copy > 1) returning 1"
            )
            removed += len(rows or [])
    return removed


def describe_failure(err: BaseException) -> str:
    """The root cause's message: dlt wraps a resource's exception in pipeline-step errors.

    Follows explicit causes (`raise ... from`) and implicit context, but not into the
    StopIteration / GeneratorExit that dlt's generator plumbing leaves as context.
    """
    current = err
    while True:
        nested = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if nested is None or isinstance(nested, StopIteration | GeneratorExit):
            break
        current = nested
    return f"{type(current).__name__}: {current}".strip()[:4000]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion", description=__doc__)
    parser.add_argument("--sources", default="", help="comma-separated subset of crm,psa,time,hr,erp")
    default_db = Path(os.environ.get("BILLABLE_RAW_DB", DEFAULT_RAW_DB))
    parser.add_argument("--raw-db", type=Path, default=default_db, help="the raw DuckDB file")
    args = parser.parse_args(argv)

    wanted = [name.strip() for name in args.sources.split(",") if name.strip()] or list(SOURCES)
    unknown = [name for name in wanted if name not in SOURCES]
    if unknown:
        parser.error(f"unknown source(s) {unknown}; choose from {', '.join(SOURCES)}")
    args.raw_db.parent.mkdir(parents=True, exist_ok=True)
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    log: list[LoadLogEntry] = []
    for name in wanted:
        if not SOURCES[name].built:
            print(f"ingest: source {name!r} is not built yet; skipped")
            continue
        print(f"ingest: {name} …", flush=True)
        entries = run_source(SOURCES[name], args.raw_db, run_id)
        log.extend(entries)
        for entry in entries:
            print(f"ingest:   {entry.describe()}", flush=True)
    write_load_log(args.raw_db, log)
    failed = sorted({entry.source for entry in log if entry.status == "failed"})
    if failed:
        names = ", ".join(failed)
        print(f"ingest: FAILED source(s): {names} (details above and in ops.load_log)", file=sys.stderr)
        return 1
    print(f"ingest: run {run_id} loaded {sum(entry.rows for entry in log):,} rows")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except KeyboardInterrupt:
        traceback.print_exc()
        sys.exit(130)
