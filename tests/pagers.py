"""Minimal clients that page each dialect to the end, the way a loader would (tests only)."""

from __future__ import annotations

from collections.abc import Iterator

import requests

HEADERS = {"Authorization": "Bearer test-token", "Harvest-Account-Id": "1", "Accept": "application/json"}


def salesforce(base_url: str, sobject: str, fields: str = "Id", where: str = "") -> Iterator[dict]:
    session = requests.Session()
    query = f"SELECT {fields} FROM {sobject} {where} ORDER BY SystemModstamp".replace("  ", " ")
    response = session.get(f"{base_url}/services/data/v60.0/query", params={"q": query}, headers=HEADERS)
    while True:
        response.raise_for_status()
        body = response.json()
        yield from body["records"]
        if body["done"]:
            return
        response = session.get(f"{base_url}{body['nextRecordsUrl']}", headers=HEADERS)


def kantata(base_url: str, resource: str, **params: str) -> Iterator[dict]:
    session = requests.Session()
    page = 1
    while True:
        response = session.get(
            f"{base_url}/api/v1/{resource}", params={**params, "page": page, "per_page": 200}, headers=HEADERS
        )
        response.raise_for_status()
        body = response.json()
        for reference in body["results"]:
            yield body[reference["key"]][reference["id"]]
        if page >= body["meta"]["page_count"]:
            return
        page += 1


def harvest(base_url: str, resource: str, **params: str) -> Iterator[dict]:
    session = requests.Session()
    url: str | None = f"{base_url}/v2/{resource}"
    first = True
    while url:
        response = session.get(url, params={**params, "per_page": 2000} if first else None, headers=HEADERS)
        first = False
        response.raise_for_status()
        body = response.json()
        yield from body[resource]
        url = body["links"]["next"]


def quickbooks(
    base_url: str, realm: str, entity: str, where: str = "", page_size: int = 1000
) -> Iterator[dict]:
    session = requests.Session()
    position = 1
    while True:
        query = f"SELECT * FROM {entity} {where} STARTPOSITION {position} MAXRESULTS {page_size}"
        response = session.get(
            f"{base_url}/v3/company/{realm}/query", params={"query": query}, headers=HEADERS
        )
        response.raise_for_status()
        page = response.json()["QueryResponse"].get(entity, [])
        yield from page
        if len(page) < page_size:
            return
        position += page_size
