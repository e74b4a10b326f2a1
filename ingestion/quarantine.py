"""The `quarantine` table as its own dlt table, with its own key, beside any merge resource.

`dlt.mark.with_table_name` sends rows to another table but keeps the resource's hints: a merge
resource keyed on `id` then demands an `id` column in `quarantine` and the load fails
(`UnboundColumnException`). Quarantine rows are marked here as a table variant keyed on
`quarantine_id`, so replaying a run re-merges the same bad records instead of duplicating them.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import dlt
from dlt.extract.items import DataItemWithMeta, TableNameMeta

from ingestion.records import QUARANTINE_TABLE


def to_quarantine(rows: list[dict]) -> DataItemWithMeta:
    """Quarantine rows marked for the `quarantine` table, merged on `quarantine_id`."""
    hints = dlt.mark.make_hints(
        table_name=QUARANTINE_TABLE, write_disposition="merge", primary_key="quarantine_id"
    )
    return dlt.mark.with_hints(rows, hints, create_table_variant=True)


def with_quarantine_hints(items: Iterable[Any]) -> Iterator[Any]:
    """Pass items through, re-marking rows sent to `quarantine` by name only (see module doc)."""
    for item in items:
        if (
            isinstance(item, DataItemWithMeta)
            and isinstance(item.meta, TableNameMeta)
            and item.meta.table_name == QUARANTINE_TABLE
        ):
            yield to_quarantine(item.data)
        else:
            yield item
