"""Salesforce REST API (SOQL) → `raw_crm`: User, Account, Opportunity, Contract.

Each object is one SOQL query, `SELECT <its fields> FROM <Obj> [WHERE SystemModstamp > <cursor>]
ORDER BY SystemModstamp`, read batch by batch through `nextRecordsUrl` until the last batch
(which has none, and `done: true`). `SystemModstamp` is the change cursor: it moves on every
change, including system ones that `LastModifiedDate` misses. Each record's `attributes`
(`{type, url}`) is dropped: the type is the table and the url is derived from `Id`.

Records quarantined on an earlier run are asked for again by key after the changes:
`SELECT <its fields> FROM <Obj> WHERE Id IN ('…', …)`, 200 ids a query; an id not answered no
longer exists (the API's `/query` leaves deleted records out).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

import dlt
from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator
from requests import RequestException

from ingestion.auth import AuthConfigError, OAuth2, auth_for
from ingestion.context import cursor_since
from ingestion.http import OrjsonRESTClient, make_client
from ingestion.landing import Declared, land_pages, merge_hints, quarantine_declared
from ingestion.quarantine import Refetch, RefetchFailed
from ingestion.records import TableSpec
from ingestion.salesforce.objects import API_VERSION, BATCH_SIZE, CURSOR, OBJECTS


def soql(obj: str, spec: TableSpec, since: str | None) -> str:
    """The object's query: its declared fields, changed after `since` if given, oldest change first."""
    where = f" WHERE {CURSOR} > {since}" if since else ""  # SOQL dateTime literals are unquoted
    return f"SELECT {', '.join(spec.schema)} FROM {obj}{where} ORDER BY {CURSOR}"


# A Salesforce Id: 15 or 18 letters and digits. Anything else in a quarantined record's key never
# named a record, so it is not asked for (and resolves as not found).
SALESFORCE_ID = re.compile(r"[A-Za-z0-9]{15}(?:[A-Za-z0-9]{3})?")
IDS_PER_QUERY = 200  # keeps a query far below SOQL's 100,000-character limit


def by_id(client: OrjsonRESTClient, obj: str, spec: TableSpec, api_version: str) -> Refetch:
    """`refetch` for `land_pages`: outstanding quarantined ids, asked for with `Id IN (...)`."""

    def fetch(keys: list[str]) -> Iterator[list[dict]]:
        ids = [key for key in keys if SALESFORCE_ID.fullmatch(key)]
        for start in range(0, len(ids), IDS_PER_QUERY):
            chunk = ids[start : start + IDS_PER_QUERY]
            listed = ", ".join(f"'{key}'" for key in chunk)
            query = f"SELECT {', '.join(spec.schema)} FROM {obj} WHERE Id IN ({listed})"
            try:
                yield from query_batches(client, query, api_version)
            except RequestException as err:
                failed = f"salesforce {obj} Id IN ({len(chunk)} ids from {chunk[0]})"
                raise RefetchFailed(f"{failed}: {err}") from err

    return fetch


def query_batches(client: OrjsonRESTClient, query: str, api_version: str) -> Iterator[list[dict]]:
    """Every batch of a SOQL query's records, following `nextRecordsUrl` (relative to the host)."""
    paginator = JSONLinkPaginator(next_url_path="nextRecordsUrl")
    for batch in client.paginate(
        f"/services/data/{api_version}/query",
        params={"q": query},
        paginator=paginator,
        data_selector="records",
    ):
        records = list(batch)
        for record in records:
            record.pop("attributes", None)
        yield records


def object_resource(client: OrjsonRESTClient, obj: str, spec: TableSpec, api_version: str) -> Any:
    @dlt.resource(
        name=spec.name,
        **merge_hints(spec),
    )
    def changed() -> Iterator[Any]:
        batches = query_batches(client, soql(obj, spec, cursor_since()), api_version)
        refetch = by_id(client, obj, spec, api_version)
        yield from land_pages(batches, spec, source="salesforce", refetch=refetch)

    return changed


@dlt.source(name="salesforce", max_table_nesting=0)
def salesforce(
    base_url: str | None = None,
    api_version: str = API_VERSION,
    batch_size: int = BATCH_SIZE,
) -> Iterator[Any]:
    """Salesforce users, accounts, opportunities and contracts, incrementally on SystemModstamp."""
    # Records per batch: Salesforce's default and maximum is 2,000, its minimum 200.
    # API calls go to the `instance_url` an OAuth token answer names; a static token needs base_url.
    auth = auth_for("salesforce")
    api_base = auth.api_base_url(base_url) if isinstance(auth, OAuth2) else base_url
    if not api_base:
        raise AuthConfigError(
            "salesforce", "Salesforce: set sources.salesforce.base_url (static access_token)"
        )
    client = make_client(api_base, auth, headers={"Sforce-Query-Options": f"batchSize={batch_size}"})
    for obj, spec in OBJECTS.items():
        yield object_resource(client, obj, spec, api_version)


def declared_tables() -> list[Declared]:
    """Every table this source lands, created empty by the runner when nothing has landed in it."""
    return [*(Declared.from_spec(spec) for spec in OBJECTS.values()), quarantine_declared(tracked=True)]
