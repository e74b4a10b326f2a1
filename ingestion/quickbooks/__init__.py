"""QuickBooks Online v3 (ERP) → `raw_erp`, every realm (one company per legal entity) unioned.

Each entity is read with the query endpoint, incrementally on `MetaData.LastUpdatedTime`, paged by
`STARTPOSITION`. There is one dlt resource per (entity, realm), named `<table>_<realm>`, all of an
entity's resources writing to one table: each keeps its own cursor in its own resource state, so
the shared `land_pages` / `cursor_since` work unchanged and a realm can be reloaded on its own
(`source.with_resources("invoices_9130350000000001")`). Invoice and Payment `Line` lists also land
as child tables, replaced wholesale whenever their parent changes; their pages take the typed path
too (`Line` parsed by Arrow as a list of the declared line structs, the child rows flattened from it).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import dlt
import orjson
import pyarrow as pa

from ingestion.auth import auth_for
from ingestion.context import cursor_since, has_failed, part_failed
from ingestion.firm.declaration import KEY as DECLARATION_KEY
from ingestion.firm.declaration import DeclarationError, declared_legal_entities, declared_realms
from ingestion.http import OrjsonRESTClient, make_client
from ingestion.landing import Declared, land_pages, quarantine_declared
from ingestion.quarantine import to_quarantine
from ingestion.quickbooks.query import (
    RealmUnavailable,
    check_page_size,
    get_company_object,
    query_pages,
    records_by_id,
)
from ingestion.quickbooks.tables import CURSOR_COLUMN, ENTITIES, PREFERENCES, Entity, LineTable

SOURCE = "quickbooks"


def parse_realms(realms: Any) -> list[str]:
    """Realm ids from config: a TOML/JSON list, a JSON list as text, or a comma-separated string."""
    if isinstance(realms, str):
        text = realms.strip()
        realms = orjson.loads(text) if text.startswith("[") else text.split(",")
    if isinstance(realms, int | float):
        realms = [realms]
    ids = [str(realm).strip() for realm in realms or [] if str(realm).strip()]
    if not ids:
        raise ValueError(
            "sources.quickbooks.realms is empty: set it to the realm (company) ids to load, e.g. "
            'SOURCES__QUICKBOOKS__REALMS=\'["9130350000000001","9130350000000002"]\' or "id1,id2", '
            "or leave it unset to load every realm the firm declares (firm.legal_entities)"
        )
    return list(dict.fromkeys(ids))


def realms_to_load(realms: Any) -> list[str]:
    """The realms this run loads: `sources.quickbooks.realms` when set (an override, e.g. a subset),
    else the realm ids of the firm's declared legal entities (firm.legal_entities)."""
    if realms is not None:
        return parse_realms(realms)
    declared = declared_realms(declared_legal_entities())
    if not declared:
        raise DeclarationError(
            f"{DECLARATION_KEY} declares no realm_id, and sources.quickbooks.realms is not set: "
            "the ERP has no realm to load; give the entities with ERP books their realm_id"
        )
    return declared


@dataclass(frozen=True)
class LandedLines:
    """The child rows of a realm's landed invoices or payments (never of quarantined parents).

    Made page by page from the rows that landed, so the children always match the parent rows
    dlt receives, however the shared landing batches or prefetches the pages: from the `Line`
    lists Arrow parsed when the page took the typed path (`LineTable.from_lists`, column-wise),
    else from the landed `Line` JSON (`LineTable.arrow`). Appended when their parents were (a
    first load whose parent keys are all distinct), else replaced per parent (delete-insert on
    the merge key).
    """

    lines: LineTable
    realm: str

    def rows(self, landed: pa.Table, typed: pa.StructArray | None) -> pa.Table | None:
        if "Line" not in landed.column_names or not landed.num_rows:
            return None
        ids, stamps = landed.column("Id"), landed.column(CURSOR_COLUMN)
        if typed is not None:
            line_lists = typed.flatten()[typed.type.get_field_index("Line")]
            return self.lines.from_lists(self.realm, ids, stamps, line_lists)
        texts = landed.column("Line").to_pylist()
        return self.lines.arrow(self.realm, ids.to_pylist(), stamps.to_pylist(), texts)

    def emit(self, rows: pa.Table, appended: bool) -> Iterator[Any]:
        if appended:
            hints = dlt.mark.make_hints(
                table_name=self.lines.table,
                write_disposition="append",
                primary_key=list(self.lines.primary_key),
            )
        else:
            hints = dlt.mark.make_hints(
                table_name=self.lines.table,
                write_disposition={"disposition": "merge", "strategy": "delete-insert"},
                primary_key=list(self.lines.primary_key),
                merge_key=list(self.lines.merge_key),
                columns={"parent_updated_at": {"dedup_sort": "desc"}},
            )
        yield dlt.mark.with_hints(rows, hints, create_table_variant=True)


def entity_resource(client: OrjsonRESTClient, entity: Entity, realm: str, page_size: int) -> Any:
    """One realm's changes to one entity, merged into the entity's table on (realm_id, key)."""
    spec = entity.spec(realm)
    # A record changed while its entity is being paged is read twice in one run: the newest wins.
    # (A table variant, not a resource column hint, which dlt would copy to the child tables too.)
    newest_wins = {CURSOR_COLUMN: {"dedup_sort": "desc"}}

    def by_id(keys: list[str]) -> Iterator[list[dict]]:
        return records_by_id(client, realm, entity.name, keys)

    # quarantined records are re-requested by Id; an entity keyed otherwise (ExchangeRate) is
    # re-read through its change stamp instead (`land_pages`)
    refetch = by_id if entity.key == ("Id",) else None

    @dlt.resource(
        name=f"{entity.table}_{realm}",
        table_name=entity.table,
        primary_key=list(entity.primary_key),
        write_disposition="merge",
        schema_contract={"columns": "evolve", "data_type": "freeze" if spec.finance_critical else "evolve"},
    )
    def changed() -> Iterator[Any]:
        if has_failed(realm):
            return  # reported once, by the first of this realm's calls that failed
        pages = query_pages(client, realm, entity.name, cursor_since(), page_size, spec)
        try:
            yield from land_pages(
                pages,
                spec,
                source=SOURCE,
                table_hints={"table_name": entity.table},
                merge_columns=newest_wins,
                children=LandedLines(entity.lines, realm) if entity.lines else None,
                refetch=refetch,
            )
        except RealmUnavailable as err:  # this realm fails alone; the others still load
            part_failed(realm, err)

    return changed


PREFERENCES_HISTORY_HINTS = dlt.mark.make_hints(table_name="preferences_history", write_disposition="append")


def preferences_resource(client: OrjsonRESTClient, realms: list[str]) -> Any:
    """Each realm's company preferences: book close date and home currency, one row per realm."""

    @dlt.resource(name="preferences", primary_key="realm_id", write_disposition="merge")
    def preferences() -> Iterator[Any]:
        rows = []
        for realm in realms:
            try:
                response = get_company_object(client, realm, "preferences")
            except RealmUnavailable as err:
                part_failed(realm, err)
                continue
            prefs = response.get("Preferences") or {}
            accounting = prefs.get("AccountingInfoPrefs") or {}
            currency = prefs.get("CurrencyPrefs") or {}
            rows.append(
                {
                    "realm_id": realm,
                    "book_close_date": accounting.get("BookCloseDate"),
                    "home_currency": (currency.get("HomeCurrency") or {}).get("value"),
                    "multi_currency_enabled": currency.get("MultiCurrencyEnabled"),
                    "first_month_of_fiscal_year": accounting.get("FirstMonthOfFiscalYear"),
                    "sync_token": prefs.get("SyncToken"),
                    # the ERP's clock when it answered: the warehouse's "now" and when a close was seen
                    "server_time": response.get("time"),
                }
            )
        if not rows:
            return
        table, quarantined = PREFERENCES.convert(rows, SOURCE)
        yield table
        # QuickBooks only tells the current close date; the history of closes (when each month
        # was closed) exists only as a record of what each load saw, so it is kept append-only.
        yield dlt.mark.with_hints(table, PREFERENCES_HISTORY_HINTS, create_table_variant=True)
        if quarantined:
            yield to_quarantine(quarantined)

    return preferences


@dlt.source(name="quickbooks", max_table_nesting=0)
def quickbooks(
    base_url: str = dlt.config.value,
    realms: Any = None,
    page_size: int = 1000,
) -> Iterator[Any]:
    """QuickBooks customers, employees, items, exchange rates, time, invoices and payments of every realm
    (`realms`, default: the firm's declared legal entities' realms)."""
    realm_ids = realms_to_load(realms)
    size = check_page_size(page_size)
    client = make_client(base_url, auth_for("quickbooks"))  # sources.quickbooks.* (ingestion.auth)
    yield preferences_resource(client, realm_ids)
    for entity in ENTITIES:
        for realm in realm_ids:
            yield entity_resource(client, entity, realm, size)


def declared_tables() -> list[Declared]:
    """Every table this source lands (invoice and payment lines, the record of preferences
    included), created empty by the runner when nothing has landed in it: a realm with no
    payments yet still has `payments` and `payment_lines`."""
    tables = [Declared.from_spec(PREFERENCES)]
    tables.append(Declared("preferences_history", tables[0].schema, write_disposition="append"))
    for entity in ENTITIES:
        tables.append(Declared.from_spec(entity.spec(realm="")))
        if entity.lines:
            empty_lines = entity.lines.arrow("", [], [], [])
            tables.append(Declared(entity.lines.table, empty_lines.schema, entity.lines.primary_key))
    return [*tables, quarantine_declared(tracked=True, context=("realm_id",))]
