"""Harvest API v2 (time tracking) → `raw_time`.

Lists are paged by following `links.next`; every list is incremental on `updated_at` through
`updated_since`. Harvest has no feed of deletions, so `time_entries` and `expenses` are also
re-scanned over a recent window of `spent_date` and records that vanished are written to
`<table>_deletions`, suspected until a later check confirms them (the warehouse marks only
confirmed deletions deleted; nothing is removed from raw); see deletions.py for how that stays
cheap and how a record served again is cleared.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import date
from typing import Any

import dlt
import pyarrow as pa
from requests import RequestException

from ingestion.auth import auth_for
from ingestion.context import cursor_since
from ingestion.harvest.deletions import COLUMNS as DELETION_COLUMNS
from ingestion.harvest.deletions import deletions_resource
from ingestion.harvest.tables import DATED, TABLES
from ingestion.http import OrjsonRESTClient, make_client, raise_for_status
from ingestion.landing import Declared, land_pages, merge_hints, quarantine_declared
from ingestion.pages import NextLink, json_pages
from ingestion.quarantine import RefetchFailed, Reread
from ingestion.records import TableSpec

# Harvest's next page: the URL in `links.next`, which carries the query parameters.
NEXT_LINK = NextLink("links.next")


def list_pages(client: OrjsonRESTClient, resource: str, params: dict[str, Any]) -> Iterator[list[dict]]:
    """Every page of a Harvest list as parsed JSON, following `links.next` to the end."""
    for page in json_pages(client, f"/v2/{resource}", params, resource, NEXT_LINK):
        assert isinstance(page.records, list)  # without a spec, always parsed JSON
        yield page.records


def typed_pages(
    client: OrjsonRESTClient, spec: TableSpec, params: dict[str, Any]
) -> Iterator[pa.StructArray | list[dict]]:
    """Every page of a Harvest list, following `links.next`: as Arrow records of the declared types
    when the whole page fits them (most pages), else as parsed JSON (`json_pages`)."""
    pages = json_pages(client, f"/v2/{spec.name}", params, spec.name, NEXT_LINK, spec, NEXT_LINK.fields)
    for page in pages:
        yield page.records


# Records re-requested by id are handed on in pages of this many.
REFETCH_PAGE = 500


def by_id(client: OrjsonRESTClient, resource: str) -> Any:
    """`refetch` for `land_pages`: `GET /v2/{resource}/{id}` for each quarantined id still outstanding
    (Harvest lists cannot filter by id); a 404 means the record no longer exists."""

    def fetch(keys: list[str]) -> Iterator[list[dict]]:
        page: list[dict] = []
        for key in keys:
            try:
                response = client.get(f"/v2/{resource}/{key}")
                if response.status_code == 404:
                    continue
                raise_for_status(response)
            except RequestException as err:
                raise RefetchFailed(f"harvest {resource} {key}: {err}") from err
            page.append(response.json())
            if len(page) >= REFETCH_PAGE:
                yield page
                page = []
        if page:
            yield page

    return fetch


def spent_day(payload: dict) -> str | None:
    """A record's `spent_date` if it is a real date (what a keyless record can be listed by)."""
    value = payload.get("spent_date")
    try:
        return date.fromisoformat(value).isoformat() if isinstance(value, str) else None
    except ValueError:
        return None


def by_day(client: OrjsonRESTClient, resource: str, per_page: int) -> Reread:
    """`reread` for `land_pages`: a quarantined record without a readable id is found again by
    listing its `spent_date` (`from`/`to`, one day: one page, whatever the cursor)."""

    def fetch(payloads: list[dict]) -> Iterator[list[dict]]:
        for day in sorted({day for payload in payloads if (day := spent_day(payload)) is not None}):
            try:
                yield from list_pages(client, resource, {"from": day, "to": day, "per_page": per_page})
            except RequestException as err:
                raise RefetchFailed(f"harvest {resource} of {day}: {err}") from err

    return Reread(covers=lambda payload: spent_day(payload) is not None, fetch=fetch)


def harvest_resource(client: OrjsonRESTClient, spec: TableSpec, per_page: int) -> Any:
    @dlt.resource(
        name=spec.name,
        **merge_hints(spec),
    )
    def changed() -> Iterator[Any]:
        params: dict[str, Any] = {"per_page": per_page}
        since = cursor_since()
        if since:
            params["updated_since"] = since
        pages = typed_pages(client, spec, params)
        yield from land_pages(
            pages,
            spec,
            source="harvest",
            refetch=by_id(client, spec.name),
            reread=by_day(client, spec.name, per_page) if spec.name in DATED else None,
        )

    return changed


@dlt.source(name="harvest", max_table_nesting=0)
def harvest(
    base_url: str = dlt.config.value,
    account_id: str = dlt.config.value,
    per_page: int = 2000,
    deletion_window_days: int = 35,
) -> Iterator[Any]:
    """Harvest users, clients, projects, tasks, time entries and expenses, incrementally."""
    client = make_client(base_url, auth_for("harvest"), headers={"Harvest-Account-Id": str(account_id)})
    for spec in TABLES:
        yield harvest_resource(client, spec, per_page)
    for spec in TABLES:
        if spec.name in DATED:
            yield deletions_resource(client, spec.name, deletion_window_days, per_page)


def declared_tables() -> list[Declared]:
    """Every table this source lands (deletion records included), created empty by the runner when
    nothing has landed in it."""
    return [
        *(Declared.from_spec(spec) for spec in TABLES),
        *(
            Declared.from_columns(f"{name}_deletions", DELETION_COLUMNS, primary_key=("id",))
            for name in DATED
        ),
        quarantine_declared(tracked=True),
    ]
