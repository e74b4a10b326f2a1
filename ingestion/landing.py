"""What every resource shares: pages → Arrow + quarantine, the change cursor, reading what landed.

The change cursor lives in dlt's resource state, which dlt commits in the same load package as the
data. A run that dies before its package is loaded leaves the cursor where it was, so the next run
asks for the same changes again (and `merge` makes the replay harmless): the cursor can never get
ahead of the data.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
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


def shift(stamp: str, delta: timedelta) -> str:
    """Move an ISO-8601 stamp, keeping its style (`Z`, or Salesforce's `.000+0000`)."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("+0000", "+00:00")) + delta
    if stamp.endswith("+0000"):
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def land_pages(pages: Iterable[list[dict]], spec: TableSpec, source: str) -> Iterator[Any]:
    """Yield pages as Arrow tables (batched), bad records to `quarantine`; advance the cursor last.

    Fetching and validating run in a background thread, ahead of dlt writing the previous batch;
    pages are batched to about BATCH_ROWS rows because dlt's cost per yielded item is fixed.
    """

    def converted() -> Iterator[tuple[list[dict], pa.Table, list[dict]]]:
        for records in pages:
            if records:
                yield records, *spec.convert(records, source)

    newest: str | None = None
    batch: list[pa.Table] = []
    rows = 0
    for records, table, quarantined in prefetched(converted()):
        if spec.cursor:
            newest = newest_stamp(newest, table, records if quarantined else None, spec.cursor)
        if table.num_rows:
            batch.append(table)
            rows += table.num_rows
        if quarantined:
            yield to_quarantine(quarantined)
        if rows >= BATCH_ROWS:
            yield pa.concat_tables(batch, promote_options="permissive")
            batch, rows = [], 0
    if batch:
        yield pa.concat_tables(batch, promote_options="permissive")
    if spec.cursor and newest:
        state = dlt.current.resource_state()
        state["cursor"] = max(newest, state.get("cursor") or newest)


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
