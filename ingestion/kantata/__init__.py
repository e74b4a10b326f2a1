"""Kantata OX API v1 → `raw_psa`: workspaces, stories, assignments, rate cards and their versions.

Lists are paged with `page` / `per_page` until `meta.page_count`, and are incremental on
`updated_at` through `updated_after`. A Kantata page is an envelope, not a list:
`{"count", "results": [{"key", "id"}], "<key>": {"<id>": {...}}, "meta"}`; the records are the
side-loaded objects looked up in `results` order (the order the API sorted them in).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
from dlt.sources.helpers.rest_client.paginators import PageNumberPaginator
from requests import RequestException

from ingestion.auth import auth_for
from ingestion.context import cursor_since
from ingestion.http import OrjsonRESTClient, make_client, raise_for_status
from ingestion.kantata.tables import MAX_PER_PAGE, TABLES
from ingestion.landing import Declared, land_pages, merge_hints, quarantine_declared
from ingestion.quarantine import RefetchFailed, to_quarantine
from ingestion.records import TableSpec


def resolve(envelope: dict, refs: list[dict]) -> tuple[list[dict], list[dict]]:
    """(records found for `results` in order, references whose side-loaded object is missing)."""
    found, missing = [], []
    for ref in refs:
        record = (envelope.get(ref.get("key")) or {}).get(str(ref.get("id")))
        if isinstance(record, dict):
            found.append(record)
        else:
            missing.append(ref)
    return found, missing


def list_pages(
    client: OrjsonRESTClient, spec: TableSpec, params: dict[str, Any], orphans: list[dict]
) -> Iterator[list[dict]]:
    """Every page of a Kantata list as records; `results` entries without an object go to `orphans`."""
    paginator = PageNumberPaginator(base_page=1, page_param="page", total_path="meta.page_count")
    for page in client.paginate(
        f"/api/v1/{spec.name}", params=params, paginator=paginator, data_selector="results"
    ):
        records, missing = resolve(page.response.json(), list(page))
        orphans.extend(missing)
        yield records


def by_id(client: OrjsonRESTClient, resource: str) -> Any:
    """`refetch` for `land_pages`: quarantined ids still outstanding, asked for with
    `GET /api/v1/{resource}?only=<ids>` (a page of ids at a time); an id not listed no longer exists."""

    def fetch(keys: list[str]) -> Iterator[list[dict]]:
        numeric = [key for key in keys if key.isdigit()]  # Kantata ids are numbers: others never existed
        for start in range(0, len(numeric), MAX_PER_PAGE):
            only = ",".join(numeric[start : start + MAX_PER_PAGE])
            try:
                response = client.get(f"/api/v1/{resource}", params={"only": only, "per_page": MAX_PER_PAGE})
                raise_for_status(response)
            except RequestException as err:
                raise RefetchFailed(f"kantata {resource} only={only}: {err}") from err
            envelope = response.json()
            records, missing = resolve(envelope, envelope.get("results") or [])
            if missing:  # listed but not sent: neither there nor gone; asked again next run
                ids = ", ".join(str(ref.get("id")) for ref in missing)
                raise RefetchFailed(f"kantata {resource}: {ids} listed without their objects")
            yield records

    return fetch


def kantata_resource(client: OrjsonRESTClient, spec: TableSpec, per_page: int) -> Any:
    @dlt.resource(
        name=spec.name,
        **merge_hints(spec),
    )
    def changed() -> Iterator[Any]:
        params: dict[str, Any] = {"per_page": min(per_page, MAX_PER_PAGE)}
        since = cursor_since()
        if since:
            params["updated_after"] = since
        orphans: list[dict] = []
        pages = list_pages(client, spec, params, orphans)
        yield from land_pages(pages, spec, "kantata", refetch=by_id(client, spec.name))
        if orphans:
            reason = "listed in results but missing from the side-loaded objects"
            rows = [spec.quarantine_row(ref, reason, "kantata") for ref in orphans]
            yield to_quarantine(rows, tracked=True)

    return changed


@dlt.source(name="kantata", max_table_nesting=0)
def kantata(
    base_url: str = dlt.config.value,
    per_page: int = MAX_PER_PAGE,
) -> Iterator[Any]:
    """Kantata workspaces, stories, assignments, rate cards and rate-card versions, incrementally."""
    client = make_client(base_url, auth_for("kantata"))  # sources.kantata.access_token or OAuth
    for spec in TABLES:
        yield kantata_resource(client, spec, per_page)


def declared_tables() -> list[Declared]:
    """Every table this source lands, created empty by the runner when nothing has landed in it."""
    return [*(Declared.from_spec(spec) for spec in TABLES), quarantine_declared(tracked=True)]
