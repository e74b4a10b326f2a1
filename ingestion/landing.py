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

from ingestion.records import QUARANTINE_TABLE, TableSpec, dotted

# Re-ask for changes stamped this long before the cursor: a record committed at the source in the
# same instant as the last one we saw, but after our read, is not missed. Merge makes it harmless.
CURSOR_LOOKBACK = timedelta(minutes=5)


# Quarantine rows have their own key: the same bad payload seen again (a re-run) is one row.
QUARANTINE_HINTS = dlt.mark.make_hints(
    table_name=QUARANTINE_TABLE, primary_key="quarantine_id", write_disposition="merge"
)


def cursor_since(default: str | None = None) -> str | None:
    """The cursor stored by the last loaded run of this resource, minus the lookback."""
    stored = dlt.current.resource_state().get("cursor")
    if not stored:
        return default
    return shift(stored, -CURSOR_LOOKBACK)


def shift(stamp: str, delta: timedelta) -> str:
    """Move an ISO-8601 stamp, keeping its style (`Z`, or Salesforce's `.000+0000`)."""
    moment = datetime.fromisoformat(stamp.replace("Z", "+00:00").replace("+0000", "+00:00")) + delta
    if stamp.endswith("+0000"):
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}+0000"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def land_pages(pages: Iterable[list[dict]], spec: TableSpec, source: str) -> Iterator[Any]:
    """Yield each page as an Arrow table, its bad records to `quarantine`; advance the cursor last."""
    newest: str | None = None
    for records in pages:
        if not records:
            continue
        table, quarantined = spec.convert(records, source)
        if spec.cursor:
            newest = max_stamp(newest, records, spec.cursor)
        if table.num_rows:
            yield table
        if quarantined:
            yield dlt.mark.with_hints(quarantined, QUARANTINE_HINTS, create_table_variant=True)
    if spec.cursor and newest:
        state = dlt.current.resource_state()
        state["cursor"] = max(newest, state.get("cursor") or newest)


def max_stamp(current: str | None, records: list[dict], path: str) -> str | None:
    """The greatest change stamp seen so far, including quarantined records (they are kept too)."""
    stamps = [stamp for record in records if isinstance(stamp := dotted(record, path), str)]
    if not stamps:
        return current
    page_max = max(stamps)
    return page_max if current is None or page_max > current else current


def loaded_keys(dataset: str, table: str, key: str, column: str) -> dict[Any, Any]:
    """`{key: column}` for every row already landed in `dataset.table` (empty before the first load)."""
    pipeline = dlt.current.pipeline()
    try:
        with pipeline.sql_client() as client:
            exists = client.execute_sql(
                "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
                dataset,
                table,
            )
            if not exists or not exists[0][0]:
                return {}
            rows = client.execute_sql(f'select "{key}", "{column}" from "{dataset}"."{table}"')
    except Exception as err:  # a destination that cannot be read yet has nothing loaded
        if "does not exist" in str(err) or "Catalog Error" in str(err):
            return {}
        raise
    return dict(rows or [])
