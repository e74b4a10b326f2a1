"""The payroll CSV drop folder → `raw_hr`: every snapshot of employees, cost rates, time off, holidays.

Files are listed with dlt's `filesystem` resource (so the folder may be local or any fsspec URL)
and each is read in full (ingestion/hr/snapshots.py). Every snapshot lands, keyed by
(snapshot_date, natural key), with the file it came from; the `files` table records each file's
content (sha256), kind, row counts and modification time. A file whose (name, sha256) is already
in `files` is skipped, so a re-run or a re-sent file with the same content loads nothing twice.
Content hashes rather than modification times decide, because a late file copied with its
original (older) mtime must still load, and a re-sent one must not load again.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import dlt
from dlt.common.storages.fsspec_filesystem import FileItemDict
from dlt.sources.filesystem import filesystem

from ingestion.hr.snapshots import FILES_TABLE, identify, read_snapshot
from ingestion.landing import QUARANTINE_HINTS

DATASET = "raw_hr"


def loaded_files(dataset: str) -> set[tuple[str, str]]:
    """(file_name, sha256) of every file already landed in `dataset.files` (empty before the first load)."""
    pipeline = dlt.current.pipeline()
    try:
        with pipeline.sql_client() as client:
            exists = client.execute_sql(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                dataset,
                FILES_TABLE,
            )
            if not exists or not exists[0][0]:
                return set()
            rows = client.execute_sql(f'select file_name, sha256 from "{dataset}"."{FILES_TABLE}"')
    except Exception as err:  # a destination that cannot be read yet has nothing loaded
        if "does not exist" in str(err) or "Catalog Error" in str(err):
            return set()
        raise
    return {(name, sha) for name, sha in rows or []}


def table_hints(table: str, primary_key: tuple[str, ...]) -> Any:
    return dlt.mark.make_hints(table_name=table, write_disposition="merge", primary_key=list(primary_key))


def snapshot_files(dataset: str) -> Any:
    """A transformer: each new or changed drop file as typed rows, quarantine rows and a `files` row."""
    loaded: set[tuple[str, str]] | None = None

    @dlt.transformer(name="snapshot_files", max_table_nesting=0)
    def read_new(items: list[FileItemDict]) -> Iterator[Any]:
        nonlocal loaded
        if loaded is None:  # once per run; the transformer is called once per page of listed files
            loaded = loaded_files(dataset)
        for item in sorted(items, key=lambda item: item["file_name"]):
            identify(item["file_name"])  # a stray file fails the run even when unchanged
            content = item.read_bytes()
            if (item["file_name"], hashlib.sha256(content).hexdigest()) in loaded:
                continue
            snapshot = read_snapshot(item["file_name"], content, item.get("modification_date"))
            kind = snapshot.kind
            if snapshot.rows.num_rows:
                hints = table_hints(kind.table, kind.primary_key)
                yield dlt.mark.with_hints(snapshot.rows, hints, create_table_variant=True)
            if snapshot.quarantined:
                yield dlt.mark.with_hints(snapshot.quarantined, QUARANTINE_HINTS, create_table_variant=True)
            hints = table_hints(FILES_TABLE, ("file_name", "sha256"))
            yield dlt.mark.with_hints([snapshot.file_row], hints, create_table_variant=True)

    return read_new


@dlt.source(name="hr_drop", section="hr_drop", max_table_nesting=0)
def hr_drop(drop_folder: str = dlt.config.value, file_glob: str = "*.csv") -> Any:
    """Every payroll snapshot file in `drop_folder` not loaded yet (config `sources.hr_drop.drop_folder`)."""
    listing = filesystem(bucket_url=drop_folder, file_glob=file_glob).with_name("drop_folder_listing")
    return listing | snapshot_files(DATASET)
