"""Bare clients: page each dialect to the end and parse, nothing more.

They are the yardstick of the ingestion benchmark (the API's practical throughput) and the
tests' independent view of what the sandbox serves. Plain requests + orjson, no dlt.
"""

from __future__ import annotations

from collections.abc import Iterator

import requests

from ingestion.http import parse_json

HEADERS = {"Authorization": "Bearer bare-client", "Harvest-Account-Id": "1", "Accept": "application/json"}
SALESFORCE = ("User", "Account", "Opportunity", "Contract")
KANTATA = ("workspaces", "stories", "assignments", "rate_cards", "rate_card_versions")
HARVEST = ("users", "clients", "projects", "tasks", "time_entries", "expenses")
QUICKBOOKS = ("Customer", "Employee", "Item", "TimeActivity", "Invoice", "Payment", "ExchangeRate")


def salesforce(base_url: str, sobject: str, fields: str | None = None, where: str = "") -> Iterator[dict]:
    """Every record of a SOQL query, following `nextRecordsUrl`; fields default to the loader's."""
    if fields is None:
        from ingestion.salesforce.objects import OBJECTS

        fields = ", ".join(OBJECTS[sobject].schema)
    session = requests.Session()
    query = " ".join(
        part for part in (f"SELECT {fields} FROM {sobject}", where, "ORDER BY SystemModstamp") if part
    )
    response = session.get(f"{base_url}/services/data/v60.0/query", params={"q": query}, headers=HEADERS)
    while True:
        response.raise_for_status()
        body = parse_json(response.content)
        yield from body["records"]
        if body["done"]:
            return
        response = session.get(f"{base_url}{body['nextRecordsUrl']}", headers=HEADERS)


def kantata(base_url: str, resource: str, **params: str) -> Iterator[dict]:
    """Every record of a Kantata list, in `results` order, page by page."""
    session = requests.Session()
    page = 1
    while True:
        query: dict[str, str | int] = {**params, "page": page, "per_page": 200}
        response = session.get(f"{base_url}/api/v1/{resource}", params=query, headers=HEADERS)
        response.raise_for_status()
        body = parse_json(response.content)
        for reference in body["results"]:
            yield body[reference["key"]][reference["id"]]
        if page >= body["meta"]["page_count"]:
            return
        page += 1


def harvest(base_url: str, resource: str, **params: str) -> Iterator[dict]:
    """Every record of a Harvest list, following `links.next`."""
    session = requests.Session()
    url: str | None = f"{base_url}/v2/{resource}"
    first = True
    while url:
        query: dict[str, str | int] | None = {**params, "per_page": 2000} if first else None
        response = session.get(url, params=query, headers=HEADERS)
        first = False
        response.raise_for_status()
        body = parse_json(response.content)
        yield from body[resource]
        url = body["links"]["next"]


def quickbooks(
    base_url: str, realm: str, entity: str, where: str = "", page_size: int = 1000
) -> Iterator[dict]:
    """Every record of a QuickBooks query, by STARTPOSITION."""
    session = requests.Session()
    position = 1
    while True:
        query = f"SELECT * FROM {entity} {where} STARTPOSITION {position} MAXRESULTS {page_size}"
        url = f"{base_url}/v3/company/{realm}/query"
        response = session.get(url, params={"query": query}, headers=HEADERS)
        response.raise_for_status()
        page = parse_json(response.content)["QueryResponse"].get(entity, [])
        yield from page
        if len(page) < page_size:
            return
        position += page_size
