"""QuickBooks' query endpoint: the SQL-like query, STARTPOSITION paging, UTC stamps, realm failures.

`GET /v3/company/{realm}/query?query=SELECT * FROM Invoice WHERE MetaData.LastUpdatedTime > '…'
ORDERBY MetaData.LastUpdatedTime STARTPOSITION 1 MAXRESULTS 1000` answers
`{"QueryResponse": {"Invoice": [...], "startPosition": 1, "maxResults": n}}`, or an empty
`QueryResponse` past the end. Paging is by position inside the query text itself.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
from requests import RequestException

from ingestion.http import OrjsonRESTClient, raise_for_status
from ingestion.pages import Page, json_pages
from ingestion.quarantine import RefetchFailed
from ingestion.quickbooks.tables import API_VERSION, CURSOR, MAX_PAGE_SIZE, MINOR_VERSION
from ingestion.records import TableSpec

START = re.compile(r"STARTPOSITION\s+(\d+)", re.IGNORECASE)


class RealmUnavailable(Exception):
    """A realm (company) could not be read, after dlt's retries; the message names it."""


@dataclass(frozen=True)
class StartPosition:
    """The `NextPage` rule of a QuickBooks query: `STARTPOSITION` moved on by a page in the `query`
    parameter. QuickBooks gives no total or next link: a page shorter than MAXRESULTS is the last."""

    page_size: int

    def __call__(self, page: Page, url: str, params: dict[str, Any]) -> tuple[str, dict[str, Any]] | None:
        if len(page.records) < self.page_size:
            return None
        found = START.search(params["query"])
        start = int(found.group(1)) if found else 1
        query = START.sub(f"STARTPOSITION {start + self.page_size}", params["query"])
        return url, {**params, "query": query}


def changes_query(entity: str, since: str | None, page_size: int) -> str:
    """The query for every record of `entity` changed after `since` (all when None), oldest first."""
    where = f" WHERE {CURSOR} > '{since}'" if since else ""
    return f"SELECT * FROM {entity}{where} ORDERBY {CURSOR} STARTPOSITION 1 MAXRESULTS {page_size}"


def check_page_size(page_size: int) -> int:
    """QuickBooks caps MAXRESULTS at 1000: a larger page would look short and stop paging early."""
    if not 1 <= int(page_size) <= MAX_PAGE_SIZE:
        raise ValueError(
            f"sources.quickbooks.page_size must be between 1 and {MAX_PAGE_SIZE}, got {page_size!r}"
        )
    return int(page_size)


def company_path(realm: str, resource: str) -> str:
    return f"/{API_VERSION}/company/{realm}/{resource}"


def query_pages(
    client: OrjsonRESTClient,
    realm: str,
    entity: str,
    since: str | None,
    page_size: int,
    spec: TableSpec | None = None,
) -> Iterator[pa.StructArray | list[dict]]:
    """Every page of a realm's changes to `entity`, stamps normalised to UTC. With `spec`: as Arrow
    records of the declared types when the whole page fits them, else as parsed JSON for
    `land_pages`' record-by-record checks (`json_pages`); without, always parsed JSON. A dead
    realm raises `RealmUnavailable`."""
    params = {"query": changes_query(entity, since, page_size), "minorversion": MINOR_VERSION}
    pages = json_pages(
        client,
        company_path(realm, "query"),
        params,
        f"QueryResponse.{entity}",
        StartPosition(page_size),
        spec,
    )
    failure: RealmUnavailable | None = None
    try:
        for page in pages:
            if isinstance(page.records, pa.StructArray):
                yield utc_meta(page.records)
            else:
                yield [utc_stamps(record) for record in page.records]
    except RequestException as err:
        failure = realm_unavailable(realm, f"{entity} query", err)
    if failure:  # raised outside the handler so the runner reports this message, not the HTTP error
        raise failure


# Ids per `Id IN (...)` query: the query travels in the URL, which servers cap at a few KB.
IDS_PER_QUERY = 100


def records_by_id(client: OrjsonRESTClient, realm: str, entity: str, ids: list[str]) -> Iterator[list[dict]]:
    """The records of `entity` with these ids that the realm still has, stamps in UTC, queried
    `SELECT * FROM <Entity> WHERE Id IN ('1', '2', ...)` in chunks (an id not served no longer
    exists). For re-requesting quarantined records; a failure raises `RefetchFailed`."""
    for start in range(0, len(ids), IDS_PER_QUERY):
        listed = ", ".join("'" + key.replace("'", "\\'") + "'" for key in ids[start : start + IDS_PER_QUERY])
        query = f"SELECT * FROM {entity} WHERE Id IN ({listed}) STARTPOSITION 1 MAXRESULTS {MAX_PAGE_SIZE}"
        try:
            response = client.get(
                company_path(realm, "query"), params={"query": query, "minorversion": MINOR_VERSION}
            )
            raise_for_status(response)
        except RequestException as err:
            raise RefetchFailed(str(realm_unavailable(realm, f"{entity} by Id", err))) from err
        page = ((response.json() or {}).get("QueryResponse") or {}).get(entity) or []
        yield [utc_stamps(record) for record in page]


def utc_meta(records: pa.StructArray) -> pa.StructArray:
    """`utc_stamps` for Arrow records: MetaData's CreateTime and LastUpdatedTime in UTC."""
    if "MetaData" not in records.type.names:
        return records
    meta = records.field("MetaData")
    stamps = [
        utc_column(column)
        if column.type == pa.string() and name in ("CreateTime", "LastUpdatedTime")
        else column
        for name, column in zip(meta.type.names, meta.flatten(), strict=True)
    ]
    meta = pa.StructArray.from_arrays(stamps, fields=list(meta.type), mask=meta.is_null())
    columns = [
        meta if name == "MetaData" else column
        for name, column in zip(records.type.names, records.flatten(), strict=True)
    ]
    return pa.StructArray.from_arrays(columns, fields=list(records.type))


# A stamp `to_utc` leaves as it is: UTC with `Z`, whole seconds or non-zero milliseconds.
UTC_STAMP = r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{3})?Z$"


def utc_column(stamps: pa.Array) -> pa.Array:
    """`to_utc` of every stamp of a column, column-wise: the stamps already written as `to_utc`
    writes them (a company on UTC; the sandbox) are kept in one pass over the column, and only
    the others (an offset such as `-08:00`, `.000` milliseconds, anything unparsable, which
    `to_utc` keeps) are converted one by one."""
    kept = pc.and_(pc.match_substring_regex(stamps, UTC_STAMP), pc.invert(pc.ends_with(stamps, ".000Z")))
    convert = pc.invert(pc.fill_null(kept, True))  # nulls stay null
    if not pc.any(convert).as_py():
        return stamps
    others = stamps.filter(convert).to_pylist()
    return pc.replace_with_mask(stamps, convert, pa.array([to_utc(stamp) for stamp in others], pa.string()))


def get_company_object(client: OrjsonRESTClient, realm: str, resource: str) -> dict:
    """`GET /v3/company/{realm}/{resource}` (e.g. preferences); a dead realm raises."""
    failure: RealmUnavailable | None = None
    try:
        return client.get(company_path(realm, resource), params={"minorversion": MINOR_VERSION}).json()
    except RequestException as err:
        failure = realm_unavailable(realm, resource, err)
    raise failure


def realm_unavailable(realm: str, what: str, err: RequestException) -> RealmUnavailable:
    """Name the realm, the call and the HTTP error, with QuickBooks' own fault detail when sent."""
    response = err.response
    if response is None:
        return RealmUnavailable(
            f"QuickBooks realm {realm}: reading {what} failed: {type(err).__name__}: {err}"
        )
    detail = ""
    try:
        errors = (response.json() or {}).get("Fault", {}).get("Error", [])
        detail = "; ".join(f"{e.get('code')} {e.get('Message')}: {e.get('Detail')}" for e in errors)
    except (ValueError, AttributeError):
        detail = response.text[:300]
    return RealmUnavailable(
        f"QuickBooks realm {realm}: reading {what} failed after retries with HTTP "
        f"{response.status_code} {response.reason} ({detail or 'no detail'}) at {response.url}"
    )


def utc_stamps(record: dict) -> dict:
    """MetaData stamps in UTC with `Z`: QuickBooks serves the company's offset (`-07:00`, which
    changes with daylight saving), so raw strings would not compare in time order for the cursor."""
    meta = record.get("MetaData")
    if isinstance(meta, dict):
        for name in ("CreateTime", "LastUpdatedTime"):
            if isinstance(meta.get(name), str):
                meta[name] = to_utc(meta[name])
    return record


@lru_cache(maxsize=65_536)
def to_utc(stamp: str) -> str:
    """`2026-03-04T09:20:00-08:00` → `2026-03-04T17:20:00Z` (milliseconds kept); unparsable as is.

    Runs twice per record, for millions of records: `isoformat` rather than `strftime` (five times
    faster), and cached, since a record's CreateTime often equals its LastUpdatedTime and a batch
    run stamps many records alike.
    """
    try:
        moment = datetime.fromisoformat(stamp.replace("Z", "+00:00"))
    except ValueError:
        return stamp
    if moment.tzinfo is None:
        return stamp
    moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.isoformat(timespec="milliseconds" if moment.microsecond else "seconds") + "Z"
