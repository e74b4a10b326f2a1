"""Quarantine rows: how they land, and how a run follows up the ones still outstanding.

A record that fails its checks lands in its dataset's `quarantine` table with its raw payload and
the reason (`TableSpec.quarantine_row`). It is not given up: `QuarantineTracker` re-requests it by
key on later runs, or re-reads it through its change stamp, until a valid record lands in its
place or the system no longer has it.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.storages.exceptions import CurrentLoadPackageStateNotAvailable

from ingestion.context import known_tables, shift
from ingestion.records import QUARANTINE_TABLE, TableSpec, dotted

# Quarantine rows have their own key: the same bad payload seen again (a re-run) is one row.
QUARANTINE_HINTS = dlt.mark.make_hints(
    table_name=QUARANTINE_TABLE, primary_key="quarantine_id", write_disposition="merge"
)


# Quarantine rows of the API sources also say whether they are still outstanding: declared, so
# `where resolved_at is null` works from the first load on (dlt creates no column for nulls).
TRACKED_QUARANTINE_HINTS = dlt.mark.make_hints(
    table_name=QUARANTINE_TABLE,
    primary_key="quarantine_id",
    write_disposition="merge",
    columns=[
        {"name": "record_key", "data_type": "text", "nullable": True},
        {"name": "resolved_at", "data_type": "timestamp", "nullable": True},
        {"name": "resolved_by_load", "data_type": "text", "nullable": True},
        {"name": "resolution", "data_type": "text", "nullable": True},
    ],
)


# The quarantine rows' columns as they land (`TableSpec.quarantine_row`, the HR drop's
# `quarantine_row`); a source adds the context columns its rows carry (`quarantine_declared`).
QUARANTINE_COLUMNS: dict[str, dict[str, Any]] = {
    "quarantine_id": {"data_type": "text", "nullable": False},
    **{name: {"data_type": "text"} for name in ("source", "table_name", "record_key", "reason", "payload")},
    "quarantined_at": {"data_type": "timestamp"},
}
TRACKED_QUARANTINE_COLUMNS: dict[str, dict[str, Any]] = {
    **QUARANTINE_COLUMNS,
    **{name: dict(column) for name, column in TRACKED_QUARANTINE_HINTS["columns"].items()},  # type: ignore[union-attr]
}


def to_quarantine(rows: list[dict], tracked: bool = False) -> Any:
    """Mark quarantine rows (from `TableSpec.quarantine_row`) for the dataset's quarantine table;
    `tracked`: with the columns that say whether each is still outstanding (`QuarantineTracker`)."""
    hints = TRACKED_QUARANTINE_HINTS if tracked else QUARANTINE_HINTS
    return dlt.mark.with_hints(rows, hints, create_table_variant=True)


# Quarantined records whose key cannot be read, or whose system is not asked by key, are found again
# by re-reading their changes: the cursor is held at the oldest one's change stamp, at most this far
# behind the newest change seen (older ones stay outstanding and are reported as not re-read).
REREAD_WINDOW = timedelta(days=35)
# Keys re-requested per table (and realm) and run; the rest on the next run.
REFETCH_LIMIT = 5_000


class RefetchFailed(Exception):
    """Re-requesting quarantined keys failed after the retries; they stay outstanding."""


# `refetch(keys)`: pages of the records with these keys (record_key text) that the system still
# has; a key that does not come back no longer exists there. Raises RefetchFailed.
Refetch = Callable[[list[str]], Iterable[list[dict]]]


@dataclass(frozen=True)
class Reread:
    """How a resource lists quarantined records that have no readable key again, by other fields:
    `covers(payload)` says whether it can, `fetch(payloads)` yields pages of the records now
    served there (all of them land as usual). Raises RefetchFailed."""

    covers: Callable[[dict], bool]
    fetch: Callable[[list[dict]], Iterable[list[dict]]]


def readable_key(row: dict) -> str | None:
    """A quarantine row's record key, or None when the record's key could not be read."""
    key = row.get("record_key")
    if key is None or "None" in str(key).split("|"):  # rows written before keys were checked
        return None
    return str(key)


def table_keys(spec: TableSpec, table: pa.Table) -> pa.Array:
    """The landed rows' keys as `TableSpec.record_key` writes them (`a|b` for composite keys)."""
    columns = [
        pc.cast(table.column(name), pa.string())
        for name in spec.primary_key
        if name not in spec.extra_columns
    ]
    return columns[0] if len(columns) == 1 else pc.binary_join_element_wise(*columns, "|")


def current_load_id() -> str | None:
    """The id of the load package being extracted (None outside an extract)."""
    try:
        return dlt.current.load_package_state()["load_id"]
    except CurrentLoadPackageStateNotAvailable:
        return None


def outstanding_rows(spec: TableSpec) -> list[dict]:
    """This table's (and part's, e.g. realm's) quarantine rows not yet resolved, as stored."""
    present = known_tables()
    if present is not None and QUARANTINE_TABLE not in present:
        return []
    with dlt.current.pipeline().sql_client() as client:
        if not client.has_dataset():
            return []
        columns = {
            name
            for (name,) in client.execute_sql(
                "select column_name from information_schema.columns where table_schema = %s "
                "and table_name = %s",
                client.dataset_name,
                QUARANTINE_TABLE,
            )
            or []
        }
        if "table_name" not in columns:
            return []
        where, params = ["table_name = %s"], [spec.name]
        if "resolved_at" in columns:
            where.append("resolved_at is null")
        for name, value in spec.extra_columns.items():
            if f"context__{name}" in columns:
                where.append(f"context__{name} = %s")
                params.append(str(value))
        table = client.make_qualified_table_name(QUARANTINE_TABLE)
        with client.execute_query(f"select * from {table} where {' and '.join(where)}", *params) as cursor:
            names = [column[0] for column in cursor.description]
            rows = cursor.fetchall()
    return [{n: v for n, v in zip(names, row, strict=True) if not n.startswith("_dlt")} for row in rows]


@dataclass
class QuarantineTracker:
    """One run's view of a table's quarantine: what was outstanding, what landed, what to resolve.

    A quarantine row is outstanding until a later load lands a valid record with its key
    (`landed`), the system answers that the key no longer exists (`deleted upstream`), or, for a
    record re-read through its change stamp rather than asked for by key, a re-read that covers
    that stamp no longer serves it as it was (`re-read`). The same bad payload seen again is the
    same row (its id hashes table and payload) and stays outstanding; a key quarantined again
    with another payload resolves its older rows as superseded, so each key has one open row.
    """

    spec: TableSpec
    refetchable: bool
    before: dict[str, dict]  # quarantine_id -> row outstanding when the run started
    wanted: set[str]  # their readable keys
    landed: set[str] = field(default_factory=set)  # of `wanted`, the keys that landed this run
    now: dict[str, dict] = field(default_factory=dict)  # quarantine_id -> row quarantined this run
    absent: set[str] = field(default_factory=set)  # keys asked for by key that did not come back
    reread: set[str] = field(default_factory=set)  # keyless rows whose records were listed again
    rereadable: set[str] = field(default_factory=set)  # keyless rows a `Reread` covers
    refetch_failed: str | None = None

    @classmethod
    def start(cls, spec: TableSpec, refetchable: bool) -> QuarantineTracker:
        rows = outstanding_rows(spec)
        before = {row["quarantine_id"]: row for row in rows}
        wanted = {key for row in rows if (key := readable_key(row)) is not None}
        return cls(spec, refetchable, before, wanted)

    def by_key(self, row: dict) -> bool:
        """Whether the row's record can be asked for by key (else it is re-read by change stamp)."""
        return self.refetchable and readable_key(row) is not None

    def saw(self, table: pa.Table, quarantined: list[dict]) -> None:
        """Note what a converted page landed (of the keys outstanding) and quarantined."""
        if self.wanted and table.num_rows:
            keys = table_keys(self.spec, table)
            hits = keys.filter(pc.is_in(keys, value_set=pa.array(sorted(self.wanted), pa.string())))
            self.landed.update(hits.to_pylist())
        for row in quarantined:
            earlier = self.before.get(row["quarantine_id"])
            if earlier is not None and earlier.get("quarantined_at") is not None:
                row["quarantined_at"] = earlier["quarantined_at"]  # first quarantined then, still is
            self.now[row["quarantine_id"]] = row

    def keys_quarantined_now(self) -> set[str]:
        return {key for row in self.now.values() if (key := readable_key(row)) is not None}

    def to_refetch(self) -> list[str]:
        """Outstanding keys this run's changes neither landed nor quarantined again (bounded)."""
        seen = self.landed | self.keys_quarantined_now()
        keys = {readable_key(row) for row in self.before.values() if self.by_key(row)}
        return sorted(key for key in keys - seen if key is not None)[:REFETCH_LIMIT]

    def requested(self, keys: list[str]) -> None:
        """All of `keys` were asked for: those that came back neither valid nor malformed are gone."""
        self.absent = set(keys) - self.landed - self.keys_quarantined_now()

    def to_reread(self, covers: Callable[[dict], bool]) -> dict[str, dict]:
        """{quarantine_id: payload} of the keyless rows outstanding from earlier runs that a
        `Reread` can list again and this run's changes did not serve as they were."""
        covered = {}
        for qid, row in {**self.before, **self.now}.items():
            if readable_key(row) is None:
                payload = self.payload(row)
                if isinstance(payload, dict) and covers(payload):
                    covered[qid] = payload
        self.rereadable = set(covered)  # not held by the cursor: listed again on the next run
        return {
            qid: payload for qid, payload in covered.items() if qid in self.before and qid not in self.now
        }

    def payload(self, row: dict) -> Any:
        try:
            return orjson.loads(row["payload"])
        except (orjson.JSONDecodeError, TypeError, KeyError):
            return None

    def stamp(self, row: dict) -> str | None:
        """The record's change stamp (cursor value) from its payload, if readable."""
        if not self.spec.cursor:
            return None
        try:
            value = dotted(orjson.loads(row["payload"]), self.spec.cursor)
        except (orjson.JSONDecodeError, TypeError, AttributeError):
            return None
        return value if isinstance(value, str) else None

    def resolution(self, row: dict, since: str | None) -> str | None:
        key = readable_key(row)
        if key is not None and key in self.landed:
            return "landed"
        if key is not None and key in self.absent:
            return "deleted upstream: not found when asked for by key"
        newer = [qid for qid, new in self.now.items() if key is not None and readable_key(new) == key]
        if newer:
            return f"superseded by quarantine row {newer[0]} (quarantined again)"
        if self.by_key(row):
            return None  # asked for by key on a later run (failed, or over this run's limit)
        if row["quarantine_id"] in self.reread:
            return "re-read: no longer served without a key"
        if row["quarantine_id"] in self.rereadable:
            return None  # listing it again failed; the next run tries again
        stamp = self.stamp(row)
        if since is not None and (stamp is None or stamp <= since):
            return None  # this run's changes did not cover it
        if key is None:
            return "re-read from its change stamp: no longer served without a key"
        return "deleted upstream: absent when re-read from its change stamp"

    def finish(
        self, since: str | None, newest: str | None, cursor: str | None
    ) -> tuple[list[dict], str | None]:
        """(rows resolved this run, the change stamp to hold the cursor at, or None); prints a line
        per table with what is still outstanding."""
        resolved_at, load_id = datetime.now(UTC), current_load_id()
        resolved: list[dict] = []
        outstanding = dict(self.now)
        for qid, row in self.before.items():
            if qid in self.now:
                continue  # the same bad payload again: still outstanding
            how = self.resolution(row, since)
            if how is None:
                outstanding[qid] = row
            else:
                resolved.append(
                    {**row, "resolved_at": resolved_at, "resolved_by_load": load_id, "resolution": how}
                )
        hold, too_old = self.hold(outstanding.values(), max(filter(None, (newest, cursor)), default=None))
        self.report(outstanding, resolved, too_old)
        return resolved, hold

    def hold(self, rows: Iterable[dict], reference: str | None) -> tuple[str | None, int]:
        """(the oldest change stamp of the rows to re-read within REREAD_WINDOW, how many are older)."""
        stamps = [
            self.stamp(row)
            for row in rows
            if not self.by_key(row) and row["quarantine_id"] not in self.rereadable
        ]
        if not stamps or reference is None:
            return None, 0
        oldest = shift(reference, -REREAD_WINDOW)
        within = [stamp for stamp in stamps if stamp is not None and stamp >= oldest]
        return min(within, default=None), len(stamps) - len(within)

    def report(self, outstanding: dict[str, dict], resolved: list[dict], too_old: int) -> None:
        if not outstanding and not resolved:
            return
        part = "".join(f" {name} {value}" for name, value in self.spec.extra_columns.items())
        keyless = sum(readable_key(row) is None for row in outstanding.values())
        kinds = Counter(row["resolution"].split(":")[0].split(" (")[0] for row in resolved)
        done = ", ".join(f"{count} {kind}" for kind, count in sorted(kinds.items())) or "none"
        notes = [f"{keyless} without a readable key"] if keyless else []
        if too_old:
            window = f"{REREAD_WINDOW.days} days of changes"
            notes.append(f"{too_old} not re-read: no change stamp, or older than {window}")
        if self.refetch_failed:
            notes.append(f"re-requesting failed: {self.refetch_failed}")
        extra = f" ({'; '.join(notes)})" if notes else ""
        print(
            f"ingest:   quarantine {self.spec.name}{part}: {len(outstanding)} outstanding{extra}; "
            f"resolved this run: {done}",
            flush=True,
        )
