"""The payroll CSV drop folder → `raw_hr`: every snapshot of employees, cost rates, time off, holidays.

Files are listed and read with dlt's fsspec helpers (those behind its `filesystem` source), so the
folder may be local or any fsspec URL; each new file is read in full (ingestion/hr/snapshots.py).
Every snapshot lands, keyed by (snapshot_date, natural key), with the file it came from; the
`files` table records each file's content (sha256), kind, row counts and modification time. A
file whose (name, sha256) is already in `files` is skipped, so a re-run or a re-sent file with
the same content loads nothing twice. Content hashes rather than modification times decide,
because a late file copied with its original (older) mtime must still load, and a re-sent one
must not load again. A plain resource rather than a transformer over `filesystem`: an error
raised in a transformer carries dlt's internal StopIteration as context, which hides it from the
runner's failure message.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator
from typing import Any

import dlt
from dlt.common.storages.fsspec_filesystem import FileItemDict, fsspec_filesystem, glob_files

from ingestion.hr.snapshots import FILES_TABLE, identify, read_snapshot
from ingestion.http import gc_paused
from ingestion.landing import to_quarantine


def loaded_files() -> set[tuple[str, str]]:
    """(file_name, sha256) of every file already in the dataset's `files` (empty before the first load)."""
    pipeline = dlt.current.pipeline()
    dataset = pipeline.dataset_name
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


def snapshot_files(drop_folder: str, file_glob: str) -> Any:
    """A resource: each new or changed drop file as typed rows, quarantine rows and a `files` row."""

    @dlt.resource(name="snapshot_files", max_table_nesting=0)
    def new_files() -> Iterator[Any]:
        fs_client, _ = fsspec_filesystem(drop_folder)
        if not fs_client.isdir(drop_folder):
            raise FileNotFoundError(
                f"the HR drop folder {drop_folder!r} does not exist; set sources.hr_drop.drop_folder "
                "(env SOURCES__HR_DROP__DROP_FOLDER) to the payroll export folder"
            )
        listed = sorted(glob_files(fs_client, drop_folder, file_glob), key=lambda file: file["file_name"])
        for file in listed:
            identify(file["file_name"])  # a stray file fails the run before anything is read
        loaded = loaded_files()
        for file in listed:
            content = FileItemDict(file, fs_client).read_bytes()
            if (file["file_name"], hashlib.sha256(content).hexdigest()) in loaded:
                continue
            with gc_paused():  # a list per row, none in a cycle, all freed when the file is read
                snapshot = read_snapshot(file["file_name"], content, file.get("modification_date"))
            kind = snapshot.kind
            if snapshot.rows.num_rows:
                hints = table_hints(kind.table, kind.primary_key)
                yield dlt.mark.with_hints(snapshot.rows, hints, create_table_variant=True)
            if snapshot.quarantined:
                yield to_quarantine(snapshot.quarantined)
            hints = table_hints(FILES_TABLE, ("file_name", "sha256"))
            yield dlt.mark.with_hints([snapshot.file_row], hints, create_table_variant=True)

    return new_files


@dlt.source(name="hr_drop", section="hr_drop", max_table_nesting=0)
def hr_drop(drop_folder: str = dlt.config.value, file_glob: str = "*.csv") -> Any:
    """Every payroll snapshot file in `drop_folder` not loaded yet (config `sources.hr_drop.drop_folder`)."""
    return snapshot_files(drop_folder, file_glob)
