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

A new file is also checked as a whole before anything of it lands (ingestion/hr/snapshots.py,
`shrinkage` and `cut_mid_line`): against the previous snapshot of its kind (the latest snapshot
date before its own, loaded earlier or earlier in this run), it must keep `min_snapshot_share`
(default 80 %) of the rows and of the distinct employees (legal entities for holidays), and it
must end with a line end. A file that does not is refused alone: none of its rows, quarantine or
`files` row lands, a `refused_files` row records its counts and the reason, the source reports it
as failed (the runner exits 1 naming it) and the next run checks it again. Every kind is checked:
each is a full snapshot and the warehouse reads each person's rates, roster, time off (and each
legal entity's holidays) from their latest one, so a truncated file of any kind changes the
numbers. The other files of the run still load: each is a snapshot of its own kind and date, and
holding them back would protect nothing. A shrink that is real (a divestment, a purge of old
rows) is loaded once the operator names the file in `accept_shrink`.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterator, Sequence
from datetime import UTC, date, datetime
from typing import Any

import dlt
from dlt.common.storages.fsspec_filesystem import FileItemDict, fsspec_filesystem, glob_files

from ingestion.context import part_failed
from ingestion.hr.snapshots import (
    DEFAULT_MIN_SHARE,
    FILES_TABLE,
    KINDS,
    RefusedDropFile,
    Snapshot,
    SnapshotSize,
    identify,
    read_snapshot,
    shrinkage,
)
from ingestion.http import gc_paused
from ingestion.landing import Declared, quarantine_declared
from ingestion.quarantine import to_quarantine

REFUSED_TABLE = "refused_files"
REFUSED_COLUMNS = (
    "file_name",
    "sha256",
    "kind",
    "snapshot_date",
    "rows",
    "people",
    "previous_file_name",
    "previous_snapshot_date",
    "previous_rows",
    "previous_people",
    "reason",
    "status",
    "refused_at",
    "resolved_at",
)
ACCEPT_SETTING = "SOURCES__HR_DROP__ACCEPT_SHRINK"


def dataset_rows(table: str, select: str, rest: str = "") -> list[tuple]:
    """`select <select> from <dataset>.<table> <rest>`'s rows, none when the table does not exist yet."""
    pipeline = dlt.current.pipeline()
    dataset = pipeline.dataset_name
    try:
        with pipeline.sql_client() as client:
            exists = client.execute_sql(
                "select count(*) from information_schema.tables where table_schema = %s and table_name = %s",
                dataset,
                table,
            )
            if not exists or not exists[0][0]:
                return []
            rows = client.execute_sql(f'select {select} from "{dataset}"."{table}" {rest}') or []
            return [tuple(row) for row in rows]
    except Exception as err:  # a destination that cannot be read yet has nothing loaded
        if "does not exist" in str(err) or "Catalog Error" in str(err):
            return []
        raise


def dataset_columns(table: str) -> list[str]:
    """The columns the dataset's `table` has (none when it does not exist yet)."""
    pipeline = dlt.current.pipeline()
    with pipeline.sql_client() as client:
        rows = client.execute_sql(
            "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
            pipeline.dataset_name,
            table,
        )
    return [name for (name,) in rows or []]


def loaded_files() -> set[tuple[str, str]]:
    """(file_name, sha256) of every file already in the dataset's `files` (empty before the first load)."""
    return {(name, sha) for name, sha in dataset_rows(FILES_TABLE, "file_name, sha256")}


def loaded_sizes() -> dict[str, dict[date, SnapshotSize]]:
    """Per kind, per snapshot date already loaded: what that snapshot holds in raw (0 rows for an
    empty file that loaded)."""
    sizes: dict[str, dict[date, SnapshotSize]] = {}
    names = dataset_rows(FILES_TABLE, "kind, snapshot_date, max(file_name)", "group by kind, snapshot_date")
    for kind, snapshot_date, file_name in names:
        sizes.setdefault(kind, {})[snapshot_date] = SnapshotSize(file_name, snapshot_date, 0, 0)
    for kind, known in sizes.items():
        people = KINDS[kind].people
        select = f'snapshot_date, count(*), count(distinct "{people}")'
        counts = dataset_rows(kind, select, "group by snapshot_date")
        for snapshot_date, rows, distinct in counts:
            if snapshot_date in known:
                known[snapshot_date] = SnapshotSize(
                    known[snapshot_date].file_name, snapshot_date, rows, distinct
                )
    return sizes


def previous_snapshot(known: dict[date, SnapshotSize], snapshot_date: date) -> SnapshotSize | None:
    """The snapshot of the latest date before `snapshot_date`, if any."""
    earlier = [day for day in known if day < snapshot_date]
    return known[max(earlier)] if earlier else None


def open_refusals() -> dict[tuple[str, str], dict]:
    """The `refused_files` rows still refused, by (file_name, sha256)."""
    # dlt creates a column when a value first arrives: resolved_at only once something resolved.
    present = set(dataset_columns(REFUSED_TABLE))
    columns = [name for name in REFUSED_COLUMNS if name in present]
    if not columns:
        return {}
    rows = dataset_rows(REFUSED_TABLE, ", ".join(f'"{c}"' for c in columns), "where status = 'refused'")
    refusals: dict[tuple[str, str], dict] = {}
    for row in rows:
        values: dict[str, Any] = dict.fromkeys(REFUSED_COLUMNS) | dict(zip(columns, row, strict=True))
        refusals[(values["file_name"], values["sha256"])] = values
    return refusals


def refusal(snapshot: Snapshot, previous: SnapshotSize | None, reason: str) -> dict:
    """A `refused_files` row: the file, what it holds, what the snapshot before it held, why."""
    size = snapshot.size
    return {
        "file_name": size.file_name,
        "sha256": snapshot.file_row["sha256"],
        "kind": snapshot.kind.table,
        "snapshot_date": size.snapshot_date,
        "rows": size.rows,
        "people": size.people,
        "previous_file_name": previous.file_name if previous else None,
        "previous_snapshot_date": previous.snapshot_date if previous else None,
        "previous_rows": previous.rows if previous else None,
        "previous_people": previous.people if previous else None,
        "reason": reason,
        "status": "refused",
        "refused_at": datetime.now(UTC),
        "resolved_at": None,
    }


def refusal_message(snapshot: Snapshot, reason: str, acceptable: bool) -> str:
    """One line for the operator: the file, why, that nothing landed, and exactly what to do."""
    name = snapshot.file_row["file_name"]
    if acceptable:
        remedy = (
            "if the payroll export is incomplete, replace the file with the complete one; if the "
            f"{snapshot.kind.table} snapshot really is this small, accept it with "
            f"{ACCEPT_SETTING}='[\"{name}\"]' (or accept_shrink in [sources.hr_drop] of "
            ".dlt/config.toml) and re-run"
        )
    else:
        remedy = (
            "replace it with the complete file (if it is complete and only lacks the final line end, "
            "add one) and re-run"
        )
    return (
        f"HR drop file {name!r} refused: {reason}. Nothing from it was loaded (see "
        f"raw_hr.{REFUSED_TABLE}); it is checked again on every run: {remedy}"
    )


def table_hints(table: str, primary_key: tuple[str, ...]) -> Any:
    return dlt.mark.make_hints(table_name=table, write_disposition="merge", primary_key=list(primary_key))


def refused_rows(rows: list[dict]) -> Any:
    """`refused_files` rows, their null values left out: dlt creates a column when a value arrives
    (resolved_at with the first resolution; the readers above cope with a column not there yet)."""
    present = [{name: value for name, value in row.items() if value is not None} for row in rows]
    return dlt.mark.with_hints(
        present, table_hints(REFUSED_TABLE, ("file_name", "sha256")), create_table_variant=True
    )


def snapshot_files(
    drop_folder: str,
    file_glob: str,
    accept_shrink: Sequence[str] = (),
    min_snapshot_share: float = DEFAULT_MIN_SHARE,
) -> Any:
    """A resource: each new or changed drop file as typed rows, quarantine rows and a `files` row;
    a refused file as a `refused_files` row and a failed part of the source."""
    if isinstance(accept_shrink, str) or not all(isinstance(name, str) for name in accept_shrink):
        raise ValueError(
            f"sources.hr_drop.accept_shrink ({ACCEPT_SETTING}) must be a list of file names, "
            f"e.g. '[\"cost_rates_2026-11-01.csv\"]', not {accept_shrink!r}"
        )
    if not 0 <= min_snapshot_share <= 1:
        raise ValueError(
            "sources.hr_drop.min_snapshot_share (SOURCES__HR_DROP__MIN_SNAPSHOT_SHARE) must be a share "
            f"between 0 and 1 (default {DEFAULT_MIN_SHARE}), not {min_snapshot_share!r}"
        )
    accepted = set(accept_shrink)

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
        names = {file["file_name"] for file in listed}
        for name in sorted(accepted - names):
            print(f"ingest:   hr: accept_shrink names {name!r}, which is not in the drop folder", flush=True)
        loaded = loaded_files()
        sizes = loaded_sizes()
        refusals = open_refusals()
        refused_now: set[tuple[str, str]] = set()
        for file in listed:
            content = FileItemDict(file, fs_client).read_bytes()
            if (file["file_name"], hashlib.sha256(content).hexdigest()) in loaded:
                continue
            with gc_paused():  # a list per row, none in a cycle, all freed when the file is read
                snapshot = read_snapshot(file["file_name"], content, file.get("modification_date"))
            kind, size, name = snapshot.kind, snapshot.size, snapshot.file_row["file_name"]
            known = sizes.setdefault(kind.table, {})
            previous = previous_snapshot(known, size.snapshot_date)
            shrunk = shrinkage(kind, size, previous, min_snapshot_share)
            if shrunk and not snapshot.cut and name in accepted:
                print(
                    f"ingest:   hr: {name}: {shrunk}; accepted as intended (accept_shrink), loaded",
                    flush=True,
                )
            elif snapshot.cut or shrunk:
                reason = snapshot.cut or shrunk
                refused_now.add((name, snapshot.file_row["sha256"]))
                yield refused_rows([refusal(snapshot, previous, reason)])
                part_failed(name, RefusedDropFile(refusal_message(snapshot, reason, not snapshot.cut)))
                continue
            if snapshot.rows.num_rows:
                hints = table_hints(kind.table, kind.primary_key)
                yield dlt.mark.with_hints(snapshot.rows, hints, create_table_variant=True)
            if snapshot.quarantined:
                yield to_quarantine(snapshot.quarantined)
            hints = table_hints(FILES_TABLE, ("file_name", "sha256"))
            file_row = {**snapshot.file_row, "shrink_accepted": bool(shrunk)}
            yield dlt.mark.with_hints([file_row], hints, create_table_variant=True)
            loaded.add((name, file_row["sha256"]))
            known[size.snapshot_date] = size
        resolved = resolve_refusals(refusals, refused_now, loaded, names)
        if resolved:
            yield refused_rows(resolved)

    return new_files


def resolve_refusals(
    refusals: dict[tuple[str, str], dict],
    refused_now: set[tuple[str, str]],
    loaded: set[tuple[str, str]],
    listed: set[str],
) -> list[dict]:
    """Earlier refusals this run settled: the same content loaded ("accepted"), the name loaded or
    present with other content ("replaced"), or the file gone from the drop folder ("removed")."""
    settled = []
    for (name, sha), row in sorted(refusals.items()):
        if (name, sha) in refused_now:
            continue
        if (name, sha) in loaded:
            status = "accepted"
        elif name in listed:
            status = "replaced"
        else:
            status = "removed"
        settled.append({**row, "status": status, "resolved_at": datetime.now(UTC)})
    return settled


@dlt.source(name="hr_drop", section="hr_drop", max_table_nesting=0)
def hr_drop(
    drop_folder: str = dlt.config.value,
    file_glob: str = "*.csv",
    accept_shrink: list[str] | None = None,
    min_snapshot_share: float = DEFAULT_MIN_SHARE,
) -> Any:
    """Every payroll snapshot file in `drop_folder` not loaded yet (config `sources.hr_drop.drop_folder`);
    `accept_shrink` names files loaded although they shrank below `min_snapshot_share`."""
    return snapshot_files(drop_folder, file_glob, accept_shrink or (), min_snapshot_share)


# The `files` rows' columns (`read_snapshot`'s file row, with `shrink_accepted`).
FILES_COLUMNS: dict[str, dict[str, Any]] = {
    **{name: {"data_type": "text", "nullable": False} for name in ("file_name", "sha256")},
    "kind": {"data_type": "text"},
    "snapshot_date": {"data_type": "date"},
    **{name: {"data_type": "bigint"} for name in ("rows", "quarantined_rows", "size_bytes")},
    **{name: {"data_type": "timestamp"} for name in ("modified_at", "loaded_at")},
    "shrink_accepted": {"data_type": "bool"},
}


def declared_tables() -> list[Declared]:
    """Every table the drop lands, created empty by the runner when nothing has landed in it (no
    time off this year, no holidays, nothing delivered yet). A kind's columns are those of a
    header-only file read like any other, so they are the types its rows land with."""
    tables = []
    for kind in KINDS.values():
        header = (",".join(kind.columns) + "\n").encode()
        rows = read_snapshot(f"{kind.table}_2000-01-01.csv", header, None).rows
        tables.append(Declared(kind.table, rows.schema, kind.primary_key))
    tables.append(Declared.from_columns(FILES_TABLE, FILES_COLUMNS, primary_key=("file_name", "sha256")))
    return [*tables, quarantine_declared(tracked=False, context=("file_name", "line"))]
