"""What every resource shares: pages → Arrow + quarantine, the change cursor, reading what landed.

The change cursor lives in dlt's resource state, which dlt commits in the same load package as the
data. A run that dies before its package is loaded leaves the cursor where it was, so the next run
asks for the same changes again (and `merge` makes the replay harmless): the cursor can never get
ahead of the data.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import dlt
import orjson
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.destination.capabilities import DestinationCapabilitiesContext
from dlt.common.libs.pyarrow import columns_to_arrow
from dlt.common.storages.exceptions import CurrentLoadPackageStateNotAvailable

from ingestion.http import prefetched
from ingestion.records import QUARANTINE_TABLE, TableSpec, dotted

# Re-ask for changes stamped this long before the cursor: a record committed at the source in the
# same instant as the last one we saw, but after our read, is not missed. Merge makes it harmless.
CURSOR_LOOKBACK = timedelta(minutes=5)

# Rows per Arrow table handed to dlt: big enough that dlt's per-item overhead vanishes, small
# enough to keep memory flat (measured in docs/benchmarks.md).
BATCH_ROWS = 50_000
# Pages fetched and parsed ahead of their conversion.
FETCH_AHEAD = 4


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


@dataclass(frozen=True)
class Declared:
    """A raw table a source always has after a successful load, rows or not.

    A system with nothing of an entity (no payments yet, no expenses, a realm without history)
    sends no records, and dlt creates no table without rows; the warehouse's staging would then
    fail on a missing table. So every source lists the tables it lands (`declared_tables()` in its
    package) with their columns exactly as rows land them (from the same `TableSpec`, so a table
    created empty later receives rows of the same types), and the runner creates the missing ones
    empty after the load (`empty_tables`). `row_key`: rows arrive as dicts, which dlt gives a
    `_dlt_id`; declared up front, so the first rows need no column added to an existing table.
    """

    table: str
    schema: pa.Schema
    primary_key: tuple[str, ...] = ()
    write_disposition: str = "merge"
    row_key: bool = False

    @classmethod
    def from_spec(cls, spec: TableSpec) -> Declared:
        """An API entity's table, its columns from its declared record schema."""
        return cls(spec.name, spec.to_arrow([]).schema, spec.primary_key)

    @classmethod
    def from_columns(cls, table: str, columns: dict[str, dict[str, Any]], **options: Any) -> Declared:
        """A table of dict rows, its columns declared as dlt column hints (`data_type`, `nullable`)."""
        hints: dict[str, Any] = {name: {**column, "name": name} for name, column in columns.items()}
        schema = columns_to_arrow(hints, DestinationCapabilitiesContext.generic_capabilities(), "UTC")
        return cls(table, schema, row_key=True, **options)

    def empty(self) -> pa.Table:
        schema = self.schema
        if self.row_key and "_dlt_id" not in schema.names:
            schema = schema.append(pa.field("_dlt_id", pa.string(), nullable=False))
        return schema.empty_table()


def quarantine_declared(tracked: bool, context: Iterable[str] = ()) -> Declared:
    """The dataset's `quarantine` table (`tracked`: with the columns of `TRACKED_QUARANTINE_HINTS`;
    `context`: the `context__<name>` columns its rows always carry, e.g. QuickBooks' realm_id)."""
    columns = dict(TRACKED_QUARANTINE_COLUMNS if tracked else QUARANTINE_COLUMNS)
    columns.update({f"context__{name}": {"data_type": "text"} for name in context})
    return Declared.from_columns(QUARANTINE_TABLE, columns, primary_key=("quarantine_id",))


def empty_tables(declared: Iterable[Declared]) -> Any:
    """A resource yielding each declared table empty, with its key and write disposition."""
    tables = list(declared)

    @dlt.resource(name="declared_tables")
    def empty() -> Iterator[Any]:
        for table in tables:
            hints = dlt.mark.make_hints(
                table_name=table.table,
                primary_key=list(table.primary_key) or None,
                write_disposition=table.write_disposition,  # type: ignore[arg-type]
            )
            yield dlt.mark.with_hints(table.empty(), hints, create_table_variant=True)

    return empty


def merge_hints(spec: TableSpec) -> dict[str, Any]:
    """`@dlt.resource` arguments for an entity: merged on its key; a finance-critical table's
    column types frozen (a new column may appear, an existing one may not change type)."""
    return {
        "primary_key": list(spec.primary_key),
        "write_disposition": "merge",
        "schema_contract": {
            "columns": "evolve",
            "data_type": "freeze" if spec.finance_critical else "evolve",
        },
    }


def cursor_since() -> str | None:
    """The cursor stored by the last loaded run of this resource, minus the lookback."""
    stored = dlt.current.resource_state().get("cursor")
    if not stored:
        return None
    return shift(stored, -CURSOR_LOOKBACK)


# The tables the runner found in the destination dataset before this run, when it found no load
# package pending; None (the default, e.g. a source run by other code) means "unknown": merge.
_DESTINATION_TABLES: ContextVar[frozenset[str] | None] = ContextVar("destination_tables", default=None)


@contextmanager
def destination_tables(names: Iterable[str] | None) -> Iterator[None]:
    """Tell `first_load` which tables the destination already has for the duration of the block."""
    token = _DESTINATION_TABLES.set(None if names is None else frozenset(names))
    try:
        yield
    finally:
        _DESTINATION_TABLES.reset(token)


# Parts of a source (QuickBooks realms) that failed alone while the rest of the source loaded; set up
# by the runner, which reports them as the source's failure once the rest has loaded.
_FAILED_PARTS: ContextVar[dict[str, str] | None] = ContextVar("failed_parts", default=None)


@contextmanager
def failed_parts() -> Iterator[dict[str, str]]:
    """Collect `part_failed` reports for the duration of the block: {part: message}."""
    failures: dict[str, str] = {}
    token = _FAILED_PARTS.set(failures)
    try:
        yield failures
    finally:
        _FAILED_PARTS.reset(token)


def part_failed(part: str, error: Exception) -> None:
    """Report that one part of a source (e.g. a realm) failed, so the rest can still load.

    Outside a `failed_parts` block nobody would report it, so the error is raised instead: a
    failure is never swallowed. The part's resources yield nothing more and leave their cursors
    where they were, so the next run asks for the same changes again.
    """
    failures = _FAILED_PARTS.get()
    if failures is None:
        raise error
    failures.setdefault(part, f"{type(error).__name__}: {error}")


def has_failed(part: str) -> bool:
    """Whether a part already failed in this run (its other resources then skip their calls)."""
    return part in (_FAILED_PARTS.get() or {})


def first_load(table: str) -> bool:
    """Whether this resource loads `table` for the very first time, so it may append, not merge.

    All three must hold: the runner saw no such table in the destination (and no load package
    pending, which could still create it), and this resource's state has neither a cursor nor a
    record of having landed rows (state is committed with the data, so a load that landed anything
    leaves one of them behind).
    """
    present = _DESTINATION_TABLES.get()
    if present is None or table in present:
        return False
    state = dlt.current.resource_state()
    return not state.get("cursor") and not state.get("landed")


def shift(stamp: str, delta: timedelta) -> str:
    """Move an ISO-8601 stamp, keeping its style (`Z`, or Salesforce's `.000+0000`)."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("+0000", "+00:00")) + delta
    if stamp.endswith("+0000"):
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def land_pages(
    pages: Iterable[list[dict] | pa.StructArray],
    spec: TableSpec,
    source: str,
    *,
    table_hints: dict[str, Any] | None = None,
    merge_columns: dict[str, Any] | None = None,
    children: Callable[[pa.Table, bool], Iterator[Any]] | None = None,
    refetch: Refetch | None = None,
    reread: Reread | None = None,
) -> Iterator[Any]:
    """Yield pages as Arrow tables (batched), bad records to `quarantine`; advance the cursor last.

    A page is a list of parsed JSON records, or records Arrow already parsed against the declared
    types and `TableSpec.fits` passed (`pa.StructArray`), which only need flattening.

    Three stages overlap: a thread fetches and parses pages (up to FETCH_AHEAD ahead, so the
    system is never idle while a page is converted), a second validates and converts them, and
    the caller's thread hands batches to dlt, which writes them. Pages are batched to about
    BATCH_ROWS rows because dlt's cost per yielded item is fixed.

    Every batch carries its write disposition: `merge` on the key, or `append` on the table's very
    first load (`first_load`), where there is nothing to merge with and merge would only cost a
    staging copy, a delete and a deduplicating insert. An appended load must not hold a key twice
    (a record changed while its list was paged is read twice): the keys are checked as batches
    go, and the last batch is held back until the end; if any key repeated, it is yielded with
    `merge`, which turns the whole table of this load package into a merge (staged, deduplicated).
    `table_hints` (e.g. `table_name`) make each batch a table variant with those hints,
    `merge_columns` are column hints that only mean something to a merge (`dedup_sort`);
    `children(batch, appended)` yields child rows after each batch (QuickBooks invoice lines).

    Quarantined records are not given up (`QuarantineTracker`): the keys still outstanding from
    earlier runs are re-requested after the changes, with `refetch(keys)` (pages of the records
    that still exist), and land like any other record; a key that lands resolves its quarantine
    rows, one the system no longer has resolves them as deleted upstream. Records without a
    readable key are listed again by what else identifies them (`reread`, e.g. Harvest's
    `spent_date`); those it cannot cover, and all of a resource that has no `refetch`, are read
    again by holding the cursor at their change stamp (at most REREAD_WINDOW behind).
    """
    tracker = QuarantineTracker.start(spec, refetchable=refetch is not None)
    check = spec.check()  # this run's counts: a type change is judged on this run's records alone

    def converted(
        stream: Iterable[list[dict] | pa.StructArray],
    ) -> Iterator[tuple[list[dict] | None, pa.Table, list[dict]]]:
        for records in stream:
            if isinstance(records, pa.StructArray):  # typed by Arrow and checked: nothing to quarantine
                if len(records):
                    yield None, check.from_arrow(records), []
            elif records:
                yield records, *check.convert(records, source)

    append = first_load(spec.name)
    keys: list[pa.Table] = []
    held: pa.Table | None = None

    def emit(table: pa.Table, appended: bool) -> Iterator[Any]:
        if appended:
            hints = dlt.mark.make_hints(**(table_hints or {}), write_disposition="append")
        else:
            hints = dlt.mark.make_hints(
                **(table_hints or {}), columns=merge_columns, write_disposition="merge"
            )
        yield dlt.mark.with_hints(table, hints, create_table_variant=bool(table_hints))
        if children:
            yield from children(table, appended)

    def ready(table: pa.Table) -> Iterator[Any]:
        nonlocal held
        if not append:
            yield from emit(table, False)
            return
        # a constant added to every row (QuickBooks' realm_id) cannot tell two keys apart. Copied
        # (`take` allocates new buffers): an imported column can share its memory owner with the
        # whole batch, and keeping it would then keep every batch of the load alive to the end.
        key_columns = table.select([key for key in spec.primary_key if key not in spec.extra_columns])
        keys.append(key_columns.take(pa.array(range(key_columns.num_rows), pa.int64())))
        if held is not None:
            yield from emit(held, True)
        held = table

    newest: str | None = None
    batch: list[pa.Table] = []
    rows = landed = 0

    def take(
        converted_pages: Iterable[tuple[list[dict] | None, pa.Table, list[dict]]], changes: bool
    ) -> Iterator[Any]:
        """Batch and yield converted pages; `changes`: they are the change list, which moves the cursor."""
        nonlocal newest, batch, rows, landed
        for records, table, quarantined in converted_pages:
            if spec.cursor and changes:
                newest = newest_stamp(newest, table, records if quarantined else None, spec.cursor)
            tracker.saw(table, quarantined)
            if table.num_rows:
                batch.append(table)
                rows += table.num_rows
                landed += table.num_rows
            if quarantined:
                yield to_quarantine(quarantined, tracked=True)
            if rows >= BATCH_ROWS:
                yield from ready(pa.concat_tables(batch, promote_options="permissive"))
                batch, rows = [], 0

    # converted() reads prefetched pages, itself prefetched: fetch, convert and write overlap
    yield from take(prefetched(converted(prefetched(iter(pages), depth=FETCH_AHEAD))), changes=True)
    wanted = tracker.to_refetch() if refetch else []
    if refetch and wanted:
        try:
            yield from take(converted(refetch(wanted)), changes=False)
        except RefetchFailed as err:  # they stay outstanding; the next run asks again
            tracker.refetch_failed = str(err)
        else:
            tracker.requested(wanted)
    again = tracker.to_reread(reread.covers) if reread else {}
    if reread and again:
        try:
            yield from take(converted(reread.fetch(list(again.values()))), changes=False)
        except RefetchFailed as err:
            tracker.refetch_failed = str(err)
        else:
            tracker.reread = set(again)
    if batch:
        yield from ready(pa.concat_tables(batch, promote_options="permissive"))
    if held is not None:
        yield from emit(held, not repeats_a_key(keys))
    state = dlt.current.resource_state()
    resolved, hold = tracker.finish(cursor_since(), newest, state.get("cursor"))
    if resolved:
        yield to_quarantine(resolved, tracked=True)
    if landed:
        state["landed"] = True
    latest = max(filter(None, (newest, state.get("cursor"))), default=None)
    if spec.cursor and latest:
        # held back (even behind the stored cursor, for rows quarantined before it moved on) to
        # read outstanding records again that cannot be asked for by key
        state["cursor"] = latest if hold is None else min(latest, hold)


def repeats_a_key(keys: list[pa.Table]) -> bool:
    """Whether any key occurs twice across these key tables."""
    if not keys:
        return False
    table = pa.concat_tables(keys, promote_options="permissive")
    if table.num_columns == 1:
        return pc.count_distinct(table.column(0), mode="all").as_py() < table.num_rows
    return table.group_by(table.column_names).aggregate([]).num_rows < table.num_rows


def newest_stamp(current: str | None, table: pa.Table, records: list[dict] | None, path: str) -> str | None:
    """The greatest change stamp seen so far. Read from the Arrow column when the whole page landed,
    from the raw records when some were quarantined (they count as seen: they are kept too)."""
    if records is not None:
        stamps = [stamp for record in records if isinstance(stamp := dotted(record, path), str)]
        page_max = max(stamps) if stamps else None
    else:
        column = path.replace(".", "__")
        page_max = pc.max(table.column(column)).as_py() if table.num_rows else None
    if page_max is None:
        return current
    return page_max if current is None or page_max > current else current


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
    present = _DESTINATION_TABLES.get()
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
