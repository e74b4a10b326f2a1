"""Finding Harvest records that vanished, at a cost that follows the change, not the window.

Harvest has no feed of deletions, so a loader must compare what it holds with what Harvest still
lists. Listing the whole recent window every run costs as much as the firm is big. Instead the
window is bisected by date: a date range whose count in Harvest (`total_entries` of a one-record
page) equals the count loaded holds no deletion and is skipped; a range that differs is split,
and only small ranges are listed in full. Every candidate is then fetched by id: a 404 is a
deletion, anything else moved (say, to another date) and is not.

A deletion masked by an insertion in the same range is found on the next run, once the insertion
has been loaded.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import dlt
from requests import HTTPError

from ingestion.http import OrjsonRESTClient

# Ranges with at most this many records are listed in full rather than split further.
LIST_IN_FULL = 2000


def loaded_window(
    dataset: str, table: str, window_days: int
) -> tuple[str, str, dict[str, dict[int, str]]] | None:
    """(window start, latest spent_date, {spent_date: {id: spent_date}}) of what is loaded in the
    window, minus known deletions; None before the first load."""
    pipeline = dlt.current.pipeline()
    with pipeline.sql_client() as client:
        listed = client.execute_sql(
            "select table_name from information_schema.tables where table_schema = ?", dataset
        )
        tables = {row[0] for row in listed or []}
        if table not in tables:
            return None
        latest = client.execute_sql(f'select max(spent_date) from "{dataset}"."{table}"')[0][0]
        if latest is None:
            return None
        window_from = (date.fromisoformat(latest) - timedelta(days=window_days)).isoformat()
        known = f"{table}_deletions"
        exclude = f'and id not in (select id from "{dataset}"."{known}")' if known in tables else ""
        rows = client.execute_sql(
            f'select id, spent_date from "{dataset}"."{table}" where spent_date >= ? {exclude}', window_from
        )
    by_day: dict[str, dict[int, str]] = {}
    for key, spent in rows or []:
        by_day.setdefault(spent, {})[key] = spent
    return window_from, latest, by_day


def served_count(client: OrjsonRESTClient, resource: str, low: str, high: str) -> int:
    response = client.get(f"/v2/{resource}", params={"from": low, "to": high, "per_page": 1})
    response.raise_for_status()
    return int(response.json()["total_entries"])


def served_ids(client: OrjsonRESTClient, resource: str, low: str, high: str, per_page: int) -> set[int]:
    from ingestion.harvest import list_pages  # the module that owns Harvest paging

    params = {"from": low, "to": high, "per_page": per_page}
    return {record["id"] for page in list_pages(client, resource, params) for record in page}


def still_exists(client: OrjsonRESTClient, resource: str, key: int) -> bool:
    response = client.get(f"/v2/{resource}/{key}")
    if response.status_code == 404:
        return False
    response.raise_for_status()
    return True


def days(low: str, high: str) -> list[str]:
    start, end = date.fromisoformat(low), date.fromisoformat(high)
    return [(start + timedelta(days=offset)).isoformat() for offset in range((end - start).days + 1)]


def vanished_ids(
    client: OrjsonRESTClient,
    resource: str,
    loaded: dict[str, dict[int, str]],
    low: str,
    high: str,
    per_page: int,
) -> Iterator[int]:
    """Loaded ids in [low, high] that Harvest no longer lists there (candidates, not yet confirmed)."""
    span = days(low, high)
    held = {key for day in span for key in loaded.get(day, {})}
    count = served_count(client, resource, low, high)
    if count == len(held):
        return
    if count <= LIST_IN_FULL or len(span) == 1:
        yield from held - served_ids(client, resource, low, high, per_page)
        return
    middle = len(span) // 2
    yield from vanished_ids(client, resource, loaded, span[0], span[middle - 1], per_page)
    yield from vanished_ids(client, resource, loaded, span[middle], span[-1], per_page)


def deletions_resource(client: OrjsonRESTClient, resource: str, window_days: int, per_page: int) -> Any:
    """`<resource>_deletions`: loaded ids in the recent window that Harvest no longer has."""

    @dlt.resource(name=f"{resource}_deletions", primary_key="id", write_disposition="merge")
    def vanished() -> Iterator[list[dict]]:
        window = loaded_window("raw_time", resource, window_days)
        if window is None:
            return  # nothing loaded yet: nothing can have vanished
        window_from, latest, loaded = window
        spent_of = {key: spent for ids in loaded.values() for key, spent in ids.items()}
        candidates = sorted(set(vanished_ids(client, resource, loaded, window_from, latest, per_page)))
        try:
            gone = [key for key in candidates if not still_exists(client, resource, key)]
        except HTTPError as err:
            raise RuntimeError(f"harvest {resource}: could not confirm deletions: {err}") from err
        if gone:
            detected_at = datetime.now(UTC)
            yield [
                {
                    "id": key,
                    "spent_date": spent_of[key],
                    "window_from": window_from,
                    "detected_at": detected_at,
                }
                for key in gone
            ]

    return vanished
