"""What every resource shares: pages → Arrow + quarantine, batched to dlt; the declared tables.

`land_pages` is the landing loop every API resource runs: it converts pages (checked by the run's
`TableCheck`), yields them to dlt in batches, quarantines bad records and follows up the ones
still outstanding (`ingestion.quarantine`), and moves the change cursor last (`ingestion.context`).
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any, Protocol

import dlt
import pyarrow as pa
import pyarrow.compute as pc
from dlt.common.destination.capabilities import DestinationCapabilitiesContext
from dlt.common.libs.pyarrow import columns_to_arrow

from ingestion.context import cursor_since, first_load
from ingestion.http import prefetched
from ingestion.quarantine import (
    QUARANTINE_COLUMNS,
    TRACKED_QUARANTINE_COLUMNS,
    QuarantineTracker,
    Refetch,
    RefetchFailed,
    Reread,
    to_quarantine,
)
from ingestion.records import QUARANTINE_TABLE, TableSpec, dotted

# Rows per Arrow table handed to dlt: big enough that dlt's per-item overhead vanishes, small
# enough to keep memory flat (measured in docs/benchmarks.md).
BATCH_ROWS = 50_000
# Pages fetched and parsed ahead of their conversion.
FETCH_AHEAD = 4


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
    def from_columns(cls, table: str, columns: Mapping[str, Mapping[str, Any]], **options: Any) -> Declared:
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


class Children(Protocol):
    """Child rows of a resource's landed records (QuickBooks invoice lines), landed beside them."""

    def rows(self, landed: pa.Table, typed: pa.StructArray | None) -> pa.Table | None:
        """The child rows of one converted page's landed rows: from `typed`, the records Arrow
        parsed, when the page took the typed path (its rows in the same order), else from `landed`."""
        ...

    def emit(self, rows: pa.Table, appended: bool) -> Iterator[Any]:
        """What to yield to dlt for a batch's child rows (`appended`: their parents were appended)."""
        ...


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


def land_pages(
    pages: Iterable[list[dict] | pa.StructArray],
    spec: TableSpec,
    source: str,
    *,
    table_hints: dict[str, Any] | None = None,
    merge_columns: dict[str, Any] | None = None,
    children: Children | None = None,
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
    `children` makes child rows of each converted page's landed rows (QuickBooks invoice lines,
    from the Arrow lists of a typed page), batched with their parents and yielded after them.

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
    ) -> Iterator[tuple[list[dict] | None, pa.Table, list[dict], pa.Table | None]]:
        for records in stream:
            if isinstance(records, pa.StructArray):  # typed by Arrow and checked: nothing to quarantine
                if len(records):
                    table = check.from_arrow(records)
                    yield None, table, [], children.rows(table, records) if children else None
            elif records:
                table, quarantined = check.convert(records, source)
                yield records, table, quarantined, children.rows(table, None) if children else None

    append = first_load(spec.name)
    keys: list[pa.Table] = []
    held: tuple[pa.Table, pa.Table | None] | None = None  # a batch and its child rows

    def emit(table: pa.Table, child_rows: pa.Table | None, appended: bool) -> Iterator[Any]:
        if appended:
            hints = dlt.mark.make_hints(**(table_hints or {}), write_disposition="append")
        else:
            hints = dlt.mark.make_hints(
                **(table_hints or {}), columns=merge_columns, write_disposition="merge"
            )
        yield dlt.mark.with_hints(table, hints, create_table_variant=bool(table_hints))
        if children and child_rows is not None and child_rows.num_rows:
            yield from children.emit(child_rows, appended)

    def ready(table: pa.Table, child_rows: pa.Table | None) -> Iterator[Any]:
        nonlocal held
        if not append:
            yield from emit(table, child_rows, False)
            return
        # a constant added to every row (QuickBooks' realm_id) cannot tell two keys apart. Copied
        # (`take` allocates new buffers): an imported column can share its memory owner with the
        # whole batch, and keeping it would then keep every batch of the load alive to the end.
        key_columns = table.select([key for key in spec.primary_key if key not in spec.extra_columns])
        keys.append(key_columns.take(pa.array(range(key_columns.num_rows), pa.int64())))
        if held is not None:
            yield from emit(*held, True)
        held = table, child_rows

    newest: str | None = None
    batch: list[pa.Table] = []
    child_batch: list[pa.Table] = []
    rows = landed = 0

    def flush() -> Iterator[Any]:
        nonlocal batch, child_batch, rows
        child_rows = pa.concat_tables(child_batch) if child_batch else None
        yield from ready(pa.concat_tables(batch, promote_options="permissive"), child_rows)
        batch, child_batch, rows = [], [], 0

    def take(
        converted_pages: Iterable[tuple[list[dict] | None, pa.Table, list[dict], pa.Table | None]],
        changes: bool,
    ) -> Iterator[Any]:
        """Batch and yield converted pages; `changes`: they are the change list, which moves the cursor."""
        nonlocal newest, rows, landed
        for records, table, quarantined, child_rows in converted_pages:
            if spec.cursor and changes:
                newest = newest_stamp(newest, table, records if quarantined else None, spec.cursor)
            tracker.saw(table, quarantined)
            if table.num_rows:
                batch.append(table)
                rows += table.num_rows
                landed += table.num_rows
            if child_rows is not None and child_rows.num_rows:
                child_batch.append(child_rows)
            if quarantined:
                yield to_quarantine(quarantined, tracked=True)
            if rows >= BATCH_ROWS:
                yield from flush()

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
        yield from flush()
    if held is not None:
        yield from emit(*held, not repeats_a_key(keys))
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
