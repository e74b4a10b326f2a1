"""What every resource shares: pages → Arrow + quarantine, the change cursor, reading what landed.

The change cursor lives in dlt's resource state, which dlt commits in the same load package as the
data. A run that dies before its package is loaded leaves the cursor where it was, so the next run
asks for the same changes again (and `merge` makes the replay harmless): the cursor can never get
ahead of the data.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from datetime import datetime, timedelta
from typing import Any

import dlt
import pyarrow as pa
import pyarrow.compute as pc

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


def to_quarantine(rows: list[dict]) -> Any:
    """Mark quarantine rows (from `TableSpec.quarantine_row`) for the dataset's quarantine table."""
    return dlt.mark.with_hints(rows, QUARANTINE_HINTS, create_table_variant=True)


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
    """

    def converted() -> Iterator[tuple[list[dict] | None, pa.Table, list[dict]]]:
        for records in prefetched(iter(pages), depth=FETCH_AHEAD):
            if isinstance(records, pa.StructArray):  # typed by Arrow and checked: nothing to quarantine
                if len(records):
                    yield None, spec.from_arrow(records), []
            elif records:
                yield records, *spec.convert(records, source)

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
    for records, table, quarantined in prefetched(converted()):  # converted() reads prefetched pages
        if spec.cursor:
            newest = newest_stamp(newest, table, records if quarantined else None, spec.cursor)
        if table.num_rows:
            batch.append(table)
            rows += table.num_rows
            landed += table.num_rows
        if quarantined:
            yield to_quarantine(quarantined)
        if rows >= BATCH_ROWS:
            yield from ready(pa.concat_tables(batch, promote_options="permissive"))
            batch, rows = [], 0
    if batch:
        yield from ready(pa.concat_tables(batch, promote_options="permissive"))
    if held is not None:
        yield from emit(held, not repeats_a_key(keys))
    state = dlt.current.resource_state()
    if landed:
        state["landed"] = True
    if spec.cursor and newest:
        state["cursor"] = max(newest, state.get("cursor") or newest)


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
