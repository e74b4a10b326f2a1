"""`python -m ingestion`: load every source (or some) into the raw DuckDB, one dlt pipeline each.

Sources run one after another into the same DuckDB file (one writer at a time). A source that
fails (down, refused schema change, an unexpected error) fails alone: the others still load, the
failure is written to the load log with its message, and the exit code is non-zero.

After a source loads without failing, every table it declares (`declared_tables()` in its package:
its entities, child tables, quarantine, deletion records) exists, with zero rows when the system
has none of that entity: the ones still missing are created empty (`create_declared`), so the
warehouse never meets a missing table where it should see zero rows.

One run at a time per raw database: the run holds `<raw db>.lock` (exit 75 naming the holder when
another run has it, or wait for it with `--wait`). A load package an earlier run left behind
(killed in its load step) is finished first, repaired and counted; then the source loads as usual.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
import traceback
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import dlt
from dlt.common.runtime.collector import NULL_COLLECTOR
from dlt.pipeline.progress import TCollectorArg

from billable.run_lock import EX_TEMPFAIL, LockHeld, raw_db_lock, run_lock
from ingestion.config_errors import (
    config_missing,
    credentials_problem,
    missing_key_message,
    source_config_problem,
)
from ingestion.context import destination_tables, failed_parts
from ingestion.destination import (
    dataset_tables,
    engine_problem,
    lake_path,
    loader_file_format,
    raw_destination,
    row_identity,
)
from ingestion.firm.declaration import KEY as DECLARATION_KEY
from ingestion.firm.declaration import declared_legal_entities, declared_realms, is_declared
from ingestion.http import SystemUnreachable
from ingestion.landing import Declared, empty_tables
from ingestion.load_log import LoadLogEntry, write_load_log
from ingestion.quickbooks import parse_realms, realms_to_load

REALMS_KEY = "sources.quickbooks.realms"
AUTH_ERRORS = ("AuthError: ", "AuthConfigError: ", "ReauthorizationNeeded: ")  # describe_failure's prefixes

DEFAULT_RAW_DB = Path("data") / "raw.duckdb"


@dataclass(frozen=True)
class SourceEntry:
    """One system: the dataset it lands in and the module and function of its dlt source."""

    name: str
    dataset: str
    module: str
    function: str
    system: str  # what an operator calls it, for messages

    def build(self) -> Any:
        return getattr(importlib.import_module(self.module), self.function)()

    def declared(self) -> list[Declared]:
        """The tables the source always has after a successful load (`declared_tables()`)."""
        return importlib.import_module(self.module).declared_tables()


# Load order: reference data first, so a run that stops early has the dimensions of what it loaded.
# `firm` is the firm's own declaration of its legal entities (configuration, not a system).
SOURCES = {
    entry.name: entry
    for entry in (
        SourceEntry("firm", "raw_firm", "ingestion.firm", "firm", "the firm's declaration"),
        SourceEntry("crm", "raw_crm", "ingestion.salesforce", "salesforce", "Salesforce"),
        SourceEntry("psa", "raw_psa", "ingestion.kantata", "kantata", "Kantata"),
        SourceEntry("time", "raw_time", "ingestion.harvest", "harvest", "Harvest"),
        SourceEntry("hr", "raw_hr", "ingestion.hr", "hr_drop", "the HR drop folder"),
        SourceEntry("erp", "raw_erp", "ingestion.quickbooks", "quickbooks", "QuickBooks"),
    )
}


def make_pipeline(entry: SourceEntry, raw_db: Path) -> dlt.Pipeline:
    return dlt.pipeline(
        pipeline_name=f"billable_{entry.name}",
        destination=raw_destination(raw_db),
        dataset_name=entry.dataset,
        pipelines_dir=str(raw_db.parent / "dlt"),
        # dlt's progress collectors: log, tqdm, enlighten, alive_progress; "" for none. The name is
        # the operator's, passed as given: dlt checks it.
        progress=cast(TCollectorArg, os.environ.get("BILLABLE_PROGRESS", "log") or NULL_COLLECTOR),
    )


def run_source(entry: SourceEntry, raw_db: Path, run_id: str) -> list[LoadLogEntry]:
    """Load one source; returns its load-log rows (one per table, or one failure row).

    A load package an earlier run left behind is finished first (`finish_pending`), its rows
    counted with this run's. A part of the source that failed alone (a QuickBooks realm that is
    down) adds a failure row naming it, after the rows of what did load: the source counts as
    failed, the rest is in. Any exception is this source's failure: logged, and the next goes on.
    """
    started = datetime.now(UTC)
    clock = time.monotonic()
    failures: dict[str, str] = {}
    rows: Counter[str] = Counter()
    try:
        pipeline = make_pipeline(entry, raw_db)
        rows.update(finish_pending(pipeline))
        present = dataset_tables(raw_db, entry.dataset)
        with destination_tables(present), failed_parts() as failures:
            pipeline.run(entry.build(), loader_file_format=loader_file_format())
        rows.update(normalized_rows(pipeline))
        if not failures:  # a failed part may hold rows: its tables are not declared empty
            create_declared(pipeline, entry, raw_db)
    except Exception as err:  # any failure of this source is reported, the others go on
        # What a resumed package landed before the failure is in, and logged as such.
        failures[""] = describe_failure(err, entry)
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


def create_declared(pipeline: dlt.Pipeline, entry: SourceEntry, raw_db: Path) -> list[str]:
    """Create, empty, the tables the source declares that are not in the dataset after its load
    (the system has none of that entity yet); the names created.

    Empty Arrow tables of the declared columns, merged on their keys: the columns' types are the
    ones rows land with (declared by the same specs), so a later load merges into the table as if
    it had created it, and a table that exists is never touched.
    """
    naming = pipeline.default_schema.naming
    present = dataset_tables(raw_db, entry.dataset)
    missing = [
        table for table in entry.declared() if naming.normalize_table_identifier(table.table) not in present
    ]
    if not missing:
        return []
    pipeline.run(empty_tables(missing), loader_file_format=loader_file_format())
    names = [naming.normalize_table_identifier(table.table) for table in missing]
    print(f"ingest:   created empty (nothing of them yet): {', '.join(names)}", flush=True)
    return names


def normalized_rows(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows per table of the run that just finished, from its normalize step (none if it had none)."""
    trace = pipeline.last_trace
    info = trace.last_normalize_info if trace else None
    return dict(info.row_counts) if info and info.row_counts else {}


MARKER = "resumed-package.marker"


def repair_marker(pipeline: dlt.Pipeline) -> Path:
    return Path(pipeline.working_dir) / MARKER


def finish_pending(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Load the packages an earlier run left behind (it was killed), repair, and count their rows.

    dlt's `run` would load such a package and return without extracting anything, and its trace
    has no normalize step; finishing it here first makes the run that follows an ordinary one.
    A job whose data was committed an instant before the kill, but not yet marked done, is loaded
    again by the resume: the marker (holding the packages' load ids) asks `repair_after_resume`
    to remove such copies, and survives until it has, so a kill during the repair repeats it.
    """
    marker = repair_marker(pipeline)
    if not pipeline.has_pending_data and not marker.exists():
        return {}
    load_ids = recorded_load_ids(marker)
    drop_committed_extracts(pipeline)
    if pipeline.has_pending_data:
        if pipeline.list_extracted_load_packages():
            pipeline.normalize()
        pending = list(pipeline.list_normalized_load_packages())
        load_ids += [load_id for load_id in pending if load_id not in load_ids]
        marker.write_text("".join(f"{load_id}\n" for load_id in load_ids))
        print(f"ingest:   resuming the load package {', '.join(pending)} an earlier run left", flush=True)
        pipeline.load()
    repair_after_resume(pipeline, load_ids)
    rows = rows_of_loads(pipeline, load_ids)
    marker.unlink()
    if load_ids:
        print(
            f"ingest:   resumed the load package {', '.join(load_ids)}: {sum(rows.values()):,} rows",
            flush=True,
        )
    return rows


def drop_committed_extracts(pipeline: dlt.Pipeline) -> None:
    """Finish dlt's normalize commit that a kill interrupted.

    dlt commits a normalized package by renaming it into the load folder (atomic), then deleting
    the extracted package it came from (dlt logs "Committing storage, do not kill this process").
    Killed between the two, the package is both extracted and normalized, and every later
    normalize of it fails (`Directory not empty`), in dlt's own `run` too. The normalized copy is
    complete (the rename comes after every file is written), so the extracted one is only what
    dlt would have deleted next.
    """
    extracted = set(pipeline.list_extracted_load_packages())
    if not extracted:
        return
    # dlt's storages have no public accessor; these are the ones `list_*_load_packages` read.
    load_storage = pipeline._get_load_storage()
    if not load_storage.is_storage_ready():
        # Killed after the extract, before dlt's first normalize created its load folders: nothing
        # was committed, and the package is normalized below as usual.
        return
    committed = extracted & {*load_storage.list_normalized_packages(), *load_storage.list_loaded_packages()}
    if not committed:
        return
    normalize_storage = pipeline._get_normalize_storage()
    for load_id in sorted(committed):
        normalize_storage.extracted_packages.delete_package(load_id)
        load_storage.new_packages.delete_package(load_id, not_exists_ok=True)
        print(f"ingest:   finished committing package {load_id}, normalized before the kill", flush=True)


def recorded_load_ids(marker: Path) -> list[str]:
    """The load ids a marker names; none for a marker without them (then whole tables are checked)."""
    if not marker.exists():
        return []
    return [line.strip() for line in marker.read_text().splitlines() if line.strip()]


def repair_after_resume(pipeline: dlt.Pipeline, load_ids: list[str] | None = None) -> None:
    """After a resumed package loaded: remove what it loaded twice (`remove_double_loads`)."""
    removed = remove_double_loads(pipeline, load_ids or [])
    if removed:
        print(f"ingest:   removed {removed:,} rows loaded twice by the resumed package", flush=True)


def remove_double_loads(pipeline: dlt.Pipeline, load_ids: list[str]) -> int:
    """Delete the rows a resumed package loaded twice; the number deleted.

    What a resume duplicates is an append job's file loaded a second time: every row of it again,
    identical in every column, `_dlt_load_id` included (arrow rows carry no `_dlt_id`). A merge
    job cannot duplicate (its staged rows are deduplicated on the key), so:

    - a table whose schema says `merge`: one row per primary key (a merge table's invariant);
    - any other table (`append`: a table's first load, and append-only history such as
      `raw_erp.preferences_history`, whose inherited key is not unique by design): only exact copies
      of a row within one load id. Never by key: that deleted the history of earlier loads.

    `load_ids` limits the exact-copy search to the resumed packages' rows (empty: every row).
    """
    removed = 0
    schema = pipeline.default_schema
    row_id = row_identity()
    if row_id is None:  # the lake is append-only: Spark's views read one row per key (billable.spark_engine)
        return 0
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            return 0
        dataset = client.dataset_name
        columns: dict[str, list[str]] = {}
        for name, column in (
            client.execute_sql(
                "select table_name, column_name from information_schema.columns where table_schema = %s "
                "order by table_name, ordinal_position",
                dataset,
            )
            or []
        ):
            columns.setdefault(name, []).append(column)
        for table in schema.data_tables():
            name = table["name"]
            if name not in columns:
                continue
            qualified = client.make_qualified_table_name(name)
            keys = [column for column, hints in table["columns"].items() if hints.get("primary_key")]
            params: list[str] = []
            if table.get("write_disposition") == "merge" and keys:
                partition, where = keys, ""
            elif "_dlt_load_id" in columns[name]:
                partition, params = columns[name], load_ids
                where = f"where _dlt_load_id in ({', '.join('%s' for _ in params)})" if params else ""
            else:
                continue
            key_list = ", ".join(client.escape_column_name(column) for column in partition)
            rows = client.execute_sql(
                f"delete from {qualified} where {row_id} in (select {row_id} from (select {row_id}, "
                f"row_number() over (partition by {key_list}) as copy from {qualified} {where}) as copies "
                "where copy > 1) returning 1",
                *params,
            )
            removed += len(rows or [])
    return removed


def rows_of_loads(pipeline: dlt.Pipeline, load_ids: list[str]) -> dict[str, int]:
    """Rows per table that these loads landed (and that are still theirs), read in the destination:
    a resumed package's normalize step ran in the process that was killed."""
    if not load_ids:
        return {}
    if row_identity() is None:
        return lake_rows_of_loads(pipeline, load_ids)
    counts: dict[str, int] = {}
    with pipeline.sql_client() as client:
        if not client.has_dataset():
            return {}
        with_load_id = {
            name
            for (name,) in client.execute_sql(
                "select table_name from information_schema.columns where table_schema = %s "
                "and column_name = '_dlt_load_id'",
                client.dataset_name,
            )
            or []
        }
        placeholders = ", ".join("%s" for _ in load_ids)
        for table in pipeline.default_schema.data_tables():
            name = table.get("name")
            if name is None or name not in with_load_id:
                continue
            qualified = client.make_qualified_table_name(name)
            found = client.execute_sql(
                f"select count(*) from {qualified} where _dlt_load_id in ({placeholders})", *load_ids
            )
            count = found[0][0] if found else 0
            if count:
                counts[name] = int(count)
    return counts


def lake_rows_of_loads(pipeline: dlt.Pipeline, load_ids: list[str]) -> dict[str, int]:
    """`rows_of_loads` on the lake: the rows of each table's files these loads wrote
    (`<dataset>/<table>/<load_id>.<file_id>.parquet`, dlt's default layout)."""
    import pyarrow.parquet as pq

    root = lake_path(Path(pipeline.pipelines_dir).parent) / pipeline.dataset_name
    counts: dict[str, int] = {}
    for table in pipeline.default_schema.data_tables():
        name = table.get("name")
        if name is None:
            continue
        files = [path for load_id in load_ids for path in (root / name).glob(f"{load_id}.*.parquet")]
        count = sum(pq.ParquetFile(path).metadata.num_rows for path in files)
        if count:
            counts[name] = count
    return counts


def describe_failure(err: BaseException, entry: SourceEntry | None = None) -> str:
    """The root cause's message, in one line: dlt wraps a resource's exception in pipeline-step errors.

    Follows explicit causes (`raise ... from`) and implicit context, but not into the
    StopIteration / GeneratorExit that dlt's generator plumbing leaves as context. A system that
    did not answer is named (the message already holds the URL and the cause).
    """
    missing = config_missing(err)
    if missing is not None:  # one line naming the key, not dlt's 30-line lookup trace
        return missing_key_message(missing, entry.system if entry else "source")
    current = err
    while True:
        nested = current.__cause__ or (None if current.__suppress_context__ else current.__context__)
        if nested is None or isinstance(nested, StopIteration | GeneratorExit):
            break
        current = nested
    message = f"{type(current).__name__}: {current}".strip()
    if isinstance(current, SystemUnreachable) and entry is not None:
        message = f"{entry.system} unreachable: {current}"
    return message[:4000]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion", description=__doc__)
    parser.add_argument("--sources", default="", help="comma-separated subset of firm,crm,psa,time,hr,erp")
    default_db = Path(os.environ.get("BILLABLE_RAW_DB", DEFAULT_RAW_DB))
    where = "the raw DuckDB file (other engines: dlt's local state goes beside it)"
    parser.add_argument("--raw-db", type=Path, default=default_db, help=where)
    parser.add_argument(
        "--wait",
        type=float,
        default=0,
        help="wait up to this many seconds for a run in progress (default: none; exit 75)",
    )
    args = parser.parse_args(argv)

    wanted = [name.strip() for name in args.sources.split(",") if name.strip()] or list(SOURCES)
    unknown = [name for name in wanted if name not in SOURCES]
    if unknown:
        parser.error(f"unknown source(s) {unknown}; choose from {', '.join(SOURCES)}")
    problem = (
        engine_problem(args.raw_db.parent)
        or declaration_problem(wanted)
        or source_config_problem((SOURCES[name].system, SOURCES[name].build) for name in wanted)
        or credentials_problem((SOURCES[name].system, SOURCES[name].function) for name in wanted)
    )
    if problem:  # configuration: one line, nothing loaded
        print(f"ingest: {problem}", file=sys.stderr)
        return 2
    args.raw_db.parent.mkdir(parents=True, exist_ok=True)
    try:
        with run_lock(raw_db_lock(args.raw_db), args.wait):
            return run_sources(wanted, args.raw_db)
    except LockHeld as held:
        print(f"ingest: {held}", file=sys.stderr)
        return EX_TEMPFAIL


def declaration_problem(wanted: list[str]) -> str | None:
    """What is wrong with the firm's declaration (firm.legal_entities) for these sources, or None.

    Checked before anything loads, for the sources that read it: `firm`, and `erp` when
    `sources.quickbooks.realms` does not override the declared realms (an override must name
    declared realms when there is a declaration, or their data would match no legal entity).
    """
    override: Any = dlt.config.get(REALMS_KEY)
    needed = "firm" in wanted or ("erp" in wanted and override is None)
    if not needed and not ("erp" in wanted and is_declared()):
        return None
    try:
        entities = declared_legal_entities()
        if "erp" not in wanted:
            return None
        if override is None:
            realms_to_load(None)
            return None
        undeclared = [realm for realm in parse_realms(override) if realm not in declared_realms(entities)]
    except ValueError as err:  # DeclarationError, or a malformed realms override
        return str(err)
    if undeclared:
        return (
            f"{REALMS_KEY} names realm(s) {undeclared} that no legal entity in {DECLARATION_KEY} has; "
            "their data would belong to no legal entity: declare them, or load only declared realms"
        )
    return None


def run_sources(wanted: list[str], raw_db: Path) -> int:
    """Load the sources one after another, logging each as soon as it is done; the exit code."""
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    log: list[LoadLogEntry] = []
    unlogged: list[str] = []
    for name in wanted:
        print(f"ingest: {name} …", flush=True)
        entries = run_source(SOURCES[name], raw_db, run_id)
        log.extend(entries)
        for entry in entries:
            print(f"ingest:   {entry.describe()}", flush=True)
        try:  # logged per source: a run killed later still leaves the sources it finished logged
            write_load_log(raw_db, entries)
        except Exception as err:
            unlogged.append(name)
            print(f"ingest: could not write {name}'s ops.load_log rows in {raw_db}: {err}", file=sys.stderr)
    failed = sorted({entry.source for entry in log if entry.status == "failed"} | set(unlogged))
    # Credentials the operator must fix (ingestion.auth.AuthError): one line each, exit 2.
    operator = [e.error for e in log if e.status == "failed" and (e.error or "").startswith(AUTH_ERRORS)]
    for message in operator:
        print(f"ingest: {str(message).split(': ', 1)[1]}", file=sys.stderr)
    if operator:
        return 2
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
