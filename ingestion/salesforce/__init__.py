"""Salesforce REST API (SOQL) → `raw_crm`: User, Account, Opportunity, Contract.

Each object is one SOQL query, `SELECT <its fields> FROM <Obj> [WHERE SystemModstamp > <cursor>]
ORDER BY SystemModstamp`, read batch by batch through `nextRecordsUrl` until the last batch
(which has none, and `done: true`). `SystemModstamp` is the change cursor: it moves on every
change, including system ones that `LastModifiedDate` misses. Each record's `attributes`
(`{type, url}`) is dropped: the type is the table and the url is derived from `Id`.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import dlt
from dlt.sources.helpers.rest_client.paginators import JSONLinkPaginator

from ingestion.http import OrjsonRESTClient, make_client
from ingestion.landing import cursor_since, land_pages, merge_hints
from ingestion.records import TableSpec
from ingestion.salesforce.objects import API_VERSION, BATCH_SIZE, CURSOR, OBJECTS


def soql(obj: str, spec: TableSpec, since: str | None) -> str:
    """The object's query: its declared fields, changed after `since` if given, oldest change first."""
    where = f" WHERE {CURSOR} > {since}" if since else ""  # SOQL dateTime literals are unquoted
    return f"SELECT {', '.join(spec.schema)} FROM {obj}{where} ORDER BY {CURSOR}"


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
        yield from land_pages(batches, spec, source="salesforce")

    return changed


@dlt.source(name="salesforce", max_table_nesting=0)
def salesforce(
    base_url: str = dlt.config.value,
    access_token: str = dlt.secrets.value,
    api_version: str = API_VERSION,
    batch_size: int = BATCH_SIZE,
) -> Iterator[Any]:
    """Salesforce users, accounts, opportunities and contracts, incrementally on SystemModstamp."""
    # Records per batch: Salesforce's default and maximum is 2,000, its minimum 200.
    client = make_client(base_url, access_token, headers={"Sforce-Query-Options": f"batchSize={batch_size}"})
    for obj, spec in OBJECTS.items():
        yield object_resource(client, obj, spec, api_version)
