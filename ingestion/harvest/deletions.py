"""Finding Harvest records that vanished, confirming it before anyone acts, and clearing records
that come back.

Harvest has no feed of deletions, so a loader must compare what it holds with what Harvest still
lists. Listing the whole recent window every run costs as much as the firm is big. Instead the
window is bisected by date: a date range whose count in Harvest (`total_entries` of a one-record
page) equals the count expected (loaded, minus known deletions) holds no change and is skipped; a
range that differs is split, and only small ranges are listed in full. Every candidate is then
fetched by id: a 404 makes it a *suspected* deletion, anything else moved (say, to another date)
and is not.

A single 404 proves little: a time tool restored from a backup, or a blip, answers 404 for records
that come back. So a deletion is *confirmed* only when the record was missing on at least two
checks at least `deletion_confirm_hours` apart (default 20: a nightly run confirms the next
night). Every run fetches each suspected id by id again; a record that is served again (by id, in
a listed range, or loaded again after it was last found missing) is marked *reappeared* and is not
deleted. Only confirmed deletions mark records deleted in the warehouse.

`<table>_deletions` holds one row per vanished id (merge on `id`): `spent_date`, `window_from`,
`detected_at` (first found missing), `last_confirmed_at` (last found missing), `confirmations`
(checks that found it missing), `status` (`suspected`, `confirmed`, `reappeared`), `confirmed_at`,
`reappeared_at`. Rows written before confirmation existed have only `detected_at`: they count as
suspected with one check at `detected_at`, and are re-checked by id on the next run.

A deletion masked by an insertion (or a reappearance) in the same range is found on the next run,
once the insertion has been loaded. A confirmed deletion is not fetched by id again; it is cleared
if its record is listed again in the window or loaded again.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from enum import StrEnum
from typing import Any

import dlt
from dlt.common.schema.typing import TColumnSchema, TTableSchemaColumns
from requests import HTTPError

from ingestion.http import OrjsonRESTClient

# Ranges with at most this many records are listed in full rather than split further.
LIST_IN_FULL = 2000

# Two checks that found a record missing must be at least this far apart to confirm its deletion.
DEFAULT_CONFIRM_HOURS = 20.0
CONFIRM_HOURS_KEY = "sources.harvest.deletion_confirm_hours"

TIMESTAMP: TColumnSchema = {"data_type": "timestamp", "timezone": True}
COLUMNS: TTableSchemaColumns = {
    "id": {"data_type": "bigint", "nullable": False},
    "spent_date": {"data_type": "text"},
    "window_from": {"data_type": "text"},
    "detected_at": TIMESTAMP,
    "last_confirmed_at": TIMESTAMP,
    "confirmations": {"data_type": "bigint"},
    "status": {"data_type": "text"},
    "confirmed_at": TIMESTAMP,
    "reappeared_at": TIMESTAMP,
}


class DeletionStatus(StrEnum):
    SUSPECTED = "suspected"  # found missing; not yet acted on
    CONFIRMED = "confirmed"  # missing on checks far enough apart: the warehouse marks it deleted
    REAPPEARED = "reappeared"  # served again after it was found missing: not deleted


ACTIVE = (DeletionStatus.SUSPECTED, DeletionStatus.CONFIRMED)


@dataclass(frozen=True)
class Deletion:
    """One row of `<table>_deletions`."""

    id: int
    spent_date: str | None
    window_from: str | None
    detected_at: datetime
    last_confirmed_at: datetime
    confirmations: int
    status: DeletionStatus
    confirmed_at: datetime | None = None
    reappeared_at: datetime | None = None

    @classmethod
    def stored(cls, row: dict[str, Any]) -> Deletion:
        """A stored row; one written before confirmation existed is a suspicion with one check."""
        detected = row["detected_at"] or datetime.now(UTC)
        return cls(
            id=int(row["id"]),
            spent_date=row.get("spent_date"),
            window_from=row.get("window_from"),
            detected_at=detected,
            last_confirmed_at=row.get("last_confirmed_at") or detected,
            confirmations=int(row.get("confirmations") or 1),
            status=DeletionStatus(row.get("status") or DeletionStatus.SUSPECTED),
            confirmed_at=row.get("confirmed_at"),
            reappeared_at=row.get("reappeared_at"),
        )

    def as_row(self) -> dict[str, Any]:
        return {name: getattr(self, name) for name in COLUMNS}


# The allowed transitions; nothing else writes a row.
def suspect(key: int, spent_date: str | None, window_from: str | None, now: datetime) -> Deletion:
    """First found missing (or missing again after it had reappeared): a new suspicion."""
    return Deletion(key, spent_date, window_from, now, now, 1, DeletionStatus.SUSPECTED)


def missing_again(known: Deletion, now: datetime, confirm_after: timedelta) -> Deletion:
    """A suspected record is missing on another check: confirmed once the checks are far apart."""
    if known.status is not DeletionStatus.SUSPECTED:
        raise ValueError(f"deletion of {known.id}: only a suspected deletion is re-checked ({known.status})")
    confirmations = known.confirmations + 1
    confirmed = confirmations >= 2 and now - known.detected_at >= confirm_after
    return Deletion(
        known.id,
        known.spent_date,
        known.window_from,
        known.detected_at,
        now,
        confirmations,
        DeletionStatus.CONFIRMED if confirmed else DeletionStatus.SUSPECTED,
        confirmed_at=now if confirmed else None,
    )


def served_again(known: Deletion, now: datetime) -> Deletion:
    """A suspected or confirmed record is served again: it was not deleted."""
    if known.status not in ACTIVE:
        raise ValueError(f"deletion of {known.id}: {known.status} cannot reappear")
    return Deletion(
        known.id,
        known.spent_date,
        known.window_from,
        known.detected_at,
        known.last_confirmed_at,
        known.confirmations,
        DeletionStatus.REAPPEARED,
        confirmed_at=known.confirmed_at,
        reappeared_at=now,
    )


def confirm_hours(configured: float | str | None = None) -> float:
    """`deletion_confirm_hours`: the value given, else dlt config / environment, else 20; a clear
    error naming the setting when it is not a number of hours >= 0."""
    if configured is None:
        configured = dlt.config.get(CONFIRM_HOURS_KEY)
    if configured is None or configured == "":
        return DEFAULT_CONFIRM_HOURS
    try:
        hours = float(configured)
    except (TypeError, ValueError):
        hours = -1.0
    if not hours >= 0:
        raise ValueError(
            f"harvest: deletion_confirm_hours must be a number of hours >= 0, got {configured!r} "
            "(SOURCES__HARVEST__DELETION_CONFIRM_HOURS or [sources.harvest] in .dlt/config.toml)"
        )
    return hours


def table_columns(client: Any, dataset: str, table: str) -> set[str]:
    rows = client.execute_sql(
        "select column_name from information_schema.columns where table_schema = %s and table_name = %s",
        dataset,
        table,
    )
    return {row[0] for row in rows or []}


def known_deletions(dataset: str, table: str) -> dict[int, Deletion]:
    """Every row of `<table>_deletions`, whatever version of the loader wrote it."""
    pipeline = dlt.current.pipeline()
    with pipeline.sql_client() as client:
        present = table_columns(client, dataset, f"{table}_deletions")
        if "id" not in present:
            return {}
        names = [name for name in COLUMNS if name in present]
        listed = ", ".join(f'"{name}"' for name in names)
        rows = client.execute_sql(f'select {listed} from "{dataset}"."{table}_deletions"')
    return {int(row[0]): Deletion.stored(dict(zip(names, row, strict=True))) for row in rows or []}


def loaded_since(dataset: str, table: str, active: dict[int, Deletion]) -> set[int]:
    """Active deletions whose record was loaded again after it was last found missing (it was
    listed as changed: it exists). dlt's load id is the load's start, in seconds since the epoch."""
    if not active:
        return set()
    pipeline = dlt.current.pipeline()
    with pipeline.sql_client() as client:
        rows = client.execute_sql(
            f'select id, max(cast("_dlt_load_id" as double precision)) from "{dataset}"."{table}" '
            "where id in (select unnest(%s::bigint[])) group by id",
            sorted(active),
        )
    return {
        int(key)
        for key, loaded in rows or []
        if loaded is not None and datetime.fromtimestamp(loaded, UTC) > active[int(key)].last_confirmed_at
    }


def loaded_window(
    dataset: str, table: str, window_days: int, exclude: set[int] | None = None
) -> tuple[str, str, dict[str, dict[int, str]]] | None:
    """(window start, latest spent_date, {spent_date: {id: spent_date}}) of what is loaded in the
    window, minus the ids in `exclude` (known deletions); None before the first load."""
    pipeline = dlt.current.pipeline()
    with pipeline.sql_client() as client:
        listed = client.execute_sql(
            "select table_name from information_schema.tables where table_schema = %s", dataset
        )
        tables = {row[0] for row in listed or []}
        if table not in tables:
            return None
        found = client.execute_sql(f'select max(spent_date) from "{dataset}"."{table}"')
        latest = found[0][0] if found else None
        if latest is None:
            return None
        window_from = (date.fromisoformat(latest) - timedelta(days=window_days)).isoformat()
        rows = client.execute_sql(
            f'select id, spent_date from "{dataset}"."{table}" where spent_date >= %s', window_from
        )
    by_day: dict[str, dict[int, str]] = {}
    for key, spent in rows or []:
        if exclude is None or key not in exclude:
            by_day.setdefault(spent, {})[key] = spent
    return window_from, latest, by_day


def served_count(client: OrjsonRESTClient, resource: str, low: str, high: str) -> int:
    response = client.get(f"/v2/{resource}", params={"from": low, "to": high, "per_page": 1})
    response.raise_for_status()
    return int(response.json()["total_entries"])


def served_ids(client: OrjsonRESTClient, resource: str, low: str, high: str, per_page: int) -> set[int]:
    from ingestion.harvest import list_pages  # the module that owns Harvest paging

    params = {"from": low, "to": high, "per_page": per_page}
    # A listed record without an id is quarantined by the load; it cannot vouch for any stored
    # id, so a stored id it might have been is only suspected and then asked for by its own URL.
    return {
        record["id"]
        for page in list_pages(client, resource, params)
        for record in page
        if record.get("id") is not None
    }


def still_exists(client: OrjsonRESTClient, resource: str, key: int) -> bool:
    response = client.get(f"/v2/{resource}/{key}")
    if response.status_code == 404:
        return False
    response.raise_for_status()
    return True


def days(low: str, high: str) -> list[str]:
    start, end = date.fromisoformat(low), date.fromisoformat(high)
    return [(start + timedelta(days=offset)).isoformat() for offset in range((end - start).days + 1)]


def listed_ranges(
    client: OrjsonRESTClient,
    resource: str,
    loaded: dict[str, dict[int, str]],
    low: str,
    high: str,
    per_page: int,
) -> Iterator[tuple[set[int], set[int]]]:
    """(ids expected, ids served) of each range in [low, high] whose count differs and that was
    listed in full; ranges whose counts agree are skipped."""
    span = days(low, high)
    held = {key for day in span for key in loaded.get(day, {})}
    count = served_count(client, resource, low, high)
    if count == len(held):
        return
    if count <= LIST_IN_FULL or len(span) == 1:
        yield held, served_ids(client, resource, low, high, per_page)
        return
    middle = len(span) // 2
    yield from listed_ranges(client, resource, loaded, span[0], span[middle - 1], per_page)
    yield from listed_ranges(client, resource, loaded, span[middle], span[-1], per_page)


def check_deletions(
    client: OrjsonRESTClient,
    resource: str,
    window_days: int,
    per_page: int,
    confirm_after: timedelta,
    dataset: str = "raw_time",
) -> list[Deletion]:
    """The deletion rows this run changes: new suspicions, re-checked suspicions (still suspected
    or now confirmed) and records served again."""
    known = known_deletions(dataset, resource)
    active = {key: row for key, row in known.items() if row.status in ACTIVE}
    window = loaded_window(dataset, resource, window_days, exclude=set(active))
    if window is None:
        return []  # nothing loaded yet: nothing can have vanished
    window_from, latest, loaded = window
    spent_of = {key: spent for ids in loaded.values() for key, spent in ids.items()}
    candidates: set[int] = set()
    back: set[int] = loaded_since(dataset, resource, active)
    for held, served in listed_ranges(client, resource, loaded, window_from, latest, per_page):
        candidates |= held - served
        back |= served & set(active)
    suspected = {key for key, row in active.items() if row.status is DeletionStatus.SUSPECTED}
    to_check = sorted((candidates | suspected) - back)
    try:
        missing = {key for key in to_check if not still_exists(client, resource, key)}
    except HTTPError as err:
        raise RuntimeError(f"harvest {resource}: could not check deletions: {err}") from err
    back |= suspected - missing
    now = datetime.now(UTC)
    changed = [served_again(active[key], now) for key in sorted(back)]
    for key in sorted(missing):
        if key in active:
            changed.append(missing_again(active[key], now, confirm_after))
        else:
            changed.append(suspect(key, spent_of.get(key), window_from, now))
    if changed:
        counts = {status: sum(row.status is status for row in changed) for status in DeletionStatus}
        print(
            f"ingest:   harvest {resource}: deletions suspected {counts[DeletionStatus.SUSPECTED]}, "
            f"confirmed {counts[DeletionStatus.CONFIRMED]}, served again (not deleted) "
            f"{counts[DeletionStatus.REAPPEARED]}",
            flush=True,
        )
    return changed


def deletions_resource(
    client: OrjsonRESTClient,
    resource: str,
    window_days: int,
    per_page: int,
    deletion_confirm_hours: float | None = None,
) -> Any:
    """`<resource>_deletions`: loaded ids Harvest no longer has, suspected until confirmed.

    `deletion_confirm_hours` None reads `sources.harvest.deletion_confirm_hours` (default 20);
    a bad value fails here, before any request."""
    confirm_after = timedelta(hours=confirm_hours(deletion_confirm_hours))

    @dlt.resource(
        name=f"{resource}_deletions",
        primary_key="id",
        write_disposition="merge",
        columns=COLUMNS,
    )
    def vanished() -> Iterator[list[dict]]:
        changed = check_deletions(client, resource, window_days, per_page, confirm_after)
        if changed:
            yield [row.as_row() for row in changed]

    return vanished
