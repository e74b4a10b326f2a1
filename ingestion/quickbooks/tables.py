"""QuickBooks Online record shapes as they land: tables, keys, cursor, critical fields, child lines.

Every table holds all realms (one QuickBooks company per legal entity) unioned, with `realm_id` on
each row and in the primary key: QuickBooks ids are unique per realm only.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import polars as pl

from ingestion.records import NUMBER, STRING, TableSpec, json_type

S, F, INT, B = pl.String, pl.Float64, pl.Int64, pl.Boolean
REF = pl.Struct({"value": S, "name": S})
META = pl.Struct({"CreateTime": S, "LastUpdatedTime": S})
COMMON = {"domain": S, "sparse": B, "Id": S, "SyncToken": S, "MetaData": META}
LINKED_TXN = pl.List(pl.Struct({"TxnId": S, "TxnType": S, "TxnLineId": S}))
INVOICE_LINE = pl.Struct(
    {
        "Id": S,
        "LineNum": INT,
        "Amount": F,
        "DetailType": S,
        "Description": S,
        "SalesItemLineDetail": pl.Struct({"ItemRef": REF, "Qty": F, "UnitPrice": F, "ServiceDate": S}),
        "LinkedTxn": LINKED_TXN,
    }
)
PAYMENT_LINE = pl.Struct({"Amount": F, "LinkedTxn": LINKED_TXN})

API_VERSION = "v3"
MINOR_VERSION = 75  # the minor version Intuit requires from August 2025 (older ones are ignored)
MAX_PAGE_SIZE = 1000  # QuickBooks' cap on MAXRESULTS
CURSOR = "MetaData.LastUpdatedTime"  # the change stamp every queried entity carries
CURSOR_COLUMN = "MetaData__LastUpdatedTime"  # as it lands (before dlt's snake_case naming)
LINE_AMOUNT = "Line.Amount"  # a critical field inside each element of the `Line` list


class DocumentSpec(TableSpec):
    """A transaction with a `Line` list whose elements' `Amount` is critical too.

    `Line` is declared as its nested type, so a page whose amounts are all numbers converts in one
    go; when one does not, each record is checked here, and many wrong amounts in one run are a
    refused type change like any other critical field. The list lands on the parent row as JSON
    text (the declared line fields); the typed view is the child table.
    """

    def problems(self, record: dict) -> list[str]:
        reasons = super().problems(record)
        lines = record.get("Line")
        if lines is None:
            return reasons
        if not isinstance(lines, list):
            return [*reasons, f"Line is {json_type(lines)}, expected array"]
        for index, line in enumerate(lines):
            amount = line.get("Amount") if isinstance(line, dict) else line
            actual = json_type(amount)
            if actual not in (NUMBER, "null"):
                self._wrong_types[(LINE_AMOUNT, actual)] += 1
                reasons.append(f"Line[{index}].Amount is {actual} {amount!r}, expected number")
        return reasons


@dataclass(frozen=True)
class LineTable:
    """A child table of one row per (line, linked transaction) of a parent's `Line` list.

    Replaced wholesale for each parent that changes: merge key (realm_id, parent id) with the
    delete-insert strategy, so a changed invoice with fewer lines leaves no stale rows.
    """

    table: str
    parent_key: str  # e.g. invoice_id
    schema: dict[str, pl.DataType]

    @property
    def primary_key(self) -> tuple[str, ...]:
        return ("realm_id", self.parent_key, "line_index", "linked_txn_index")

    @property
    def merge_key(self) -> tuple[str, ...]:
        return ("realm_id", self.parent_key)

    def spec(self) -> TableSpec:
        return TableSpec(self.table, self.primary_key, self.schema)

    def rows(self, realm: str, parent: dict) -> list[dict]:
        """The parent's lines, one row per linked transaction (a line with none gives one row)."""
        out = []
        stamp = (parent.get("MetaData") or {}).get("LastUpdatedTime")
        for index, line in enumerate(parent.get("Line") or []):
            detail = line.get("SalesItemLineDetail") or {}
            item = detail.get("ItemRef") or {}
            base = {
                "realm_id": realm,
                self.parent_key: parent["Id"],
                "line_index": index,
                "line_id": line.get("Id"),
                "line_num": line.get("LineNum"),
                "amount": line.get("Amount"),
                "detail_type": line.get("DetailType"),
                "description": line.get("Description"),
                "item_ref__value": item.get("value"),
                "item_ref__name": item.get("name"),
                "qty": detail.get("Qty"),
                "unit_price": detail.get("UnitPrice"),
                "service_date": detail.get("ServiceDate"),
                "parent_updated_at": stamp,
            }
            linked = line.get("LinkedTxn") or [{}]
            for txn_index, txn in enumerate(linked):
                out.append(
                    {
                        **base,
                        "linked_txn_index": txn_index,
                        "linked_txn_id": txn.get("TxnId"),
                        "linked_txn_type": txn.get("TxnType"),
                    }
                )
        return [{name: row.get(name) for name in self.schema} for row in out]


LINE_COLUMNS = {
    "realm_id": S,
    "line_index": INT,
    "line_id": S,
    "line_num": INT,
    "amount": F,
    "detail_type": S,
    "description": S,
    "item_ref__value": S,
    "item_ref__name": S,
    "qty": F,
    "unit_price": F,
    "service_date": S,
    "linked_txn_index": INT,
    "linked_txn_id": S,
    "linked_txn_type": S,
    "parent_updated_at": S,
}
INVOICE_LINES = LineTable("invoice_lines", "invoice_id", {"invoice_id": S, **LINE_COLUMNS})
PAYMENT_LINES = LineTable(
    "payment_lines",
    "payment_id",
    {
        "payment_id": S,
        **{
            name: LINE_COLUMNS[name]
            for name in (
                *("realm_id", "line_index", "amount"),
                *("linked_txn_index", "linked_txn_id", "linked_txn_type", "parent_updated_at"),
            )
        },
    },
)


@dataclass(frozen=True)
class Entity:
    """One queryable QuickBooks entity and the raw table it lands in."""

    name: str  # as in `SELECT * FROM <name>`
    table: str
    key: tuple[str, ...]  # the record's key within a realm
    schema: dict[str, pl.DataType]
    critical: dict[str, str] = field(default_factory=dict)
    finance_critical: bool = False
    lines: LineTable | None = None

    @property
    def primary_key(self) -> tuple[str, ...]:
        return ("realm_id", *self.key)

    def spec(self, realm: str) -> TableSpec:
        """A fresh spec for one realm (its own type-change counters, `realm_id` on every row)."""
        kind = DocumentSpec if self.lines else TableSpec
        return kind(
            self.table,
            self.primary_key,
            self.schema,
            cursor=CURSOR,
            critical=dict(self.critical),
            finance_critical=self.finance_critical,
            extra_columns={"realm_id": realm},
        )


STAMP_CRITICAL = {CURSOR: STRING}

# Load order: reference data first, then the transactions that point at it.
ENTITIES = (
    Entity(
        "Customer",
        "customers",
        ("Id",),
        {
            "DisplayName": S,
            "CompanyName": S,
            "FullyQualifiedName": S,
            "Job": B,
            "ParentRef": REF,
            "Active": B,
            "CurrencyRef": REF,
            "Notes": S,
            **COMMON,
        },
    ),
    Entity(
        "Employee",
        "employees",
        ("Id",),
        {
            "DisplayName": S,
            "GivenName": S,
            "FamilyName": S,
            "PrimaryEmailAddr": pl.Struct({"Address": S}),
            "EmployeeNumber": S,
            "Active": B,
            **COMMON,
        },
    ),
    Entity("Item", "items", ("Id",), {"Name": S, "Type": S, "UnitPrice": F, "Active": B, **COMMON}),
    Entity(
        "ExchangeRate",
        "exchange_rates",
        ("SourceCurrencyCode", "TargetCurrencyCode", "AsOfDate"),
        {
            "SourceCurrencyCode": S,
            "TargetCurrencyCode": S,
            "AsOfDate": S,
            "Rate": F,
            **{name: dtype for name, dtype in COMMON.items() if name != "Id"},
        },
        critical={"Rate": NUMBER, "AsOfDate": STRING, **STAMP_CRITICAL},
        finance_critical=True,
    ),
    Entity(
        "TimeActivity",
        "time_activities",
        ("Id",),
        {
            "TxnDate": S,
            "NameOf": S,
            "EmployeeRef": REF,
            "CustomerRef": REF,
            "ItemRef": REF,
            "BillableStatus": S,
            "Taxable": B,
            "HourlyRate": F,
            "Hours": INT,
            "Minutes": INT,
            "Description": S,
            **COMMON,
        },
        critical={
            "Hours": NUMBER,
            "Minutes": NUMBER,
            "HourlyRate": NUMBER,
            "TxnDate": STRING,
            "BillableStatus": STRING,
            "EmployeeRef.value": STRING,
            "CustomerRef.value": STRING,
            **STAMP_CRITICAL,
        },
        finance_critical=True,
    ),
    Entity(
        "Invoice",
        "invoices",
        ("Id",),
        {
            "DocNumber": S,
            "TxnDate": S,
            "DueDate": S,
            "CustomerRef": REF,
            "CurrencyRef": REF,
            "ExchangeRate": F,
            "TotalAmt": F,
            "Balance": F,
            "PrivateNote": S,
            "Line": pl.List(INVOICE_LINE),
            **COMMON,
        },
        critical={
            "TotalAmt": NUMBER,
            "Balance": NUMBER,
            "TxnDate": STRING,
            "DueDate": STRING,
            "CustomerRef.value": STRING,
            LINE_AMOUNT: NUMBER,
            **STAMP_CRITICAL,
        },
        finance_critical=True,
        lines=INVOICE_LINES,
    ),
    Entity(
        "Payment",
        "payments",
        ("Id",),
        {
            "TxnDate": S,
            "CustomerRef": REF,
            "CurrencyRef": REF,
            "TotalAmt": F,
            "Line": pl.List(PAYMENT_LINE),
            **COMMON,
        },
        critical={
            "TotalAmt": NUMBER,
            "TxnDate": STRING,
            "CustomerRef.value": STRING,
            LINE_AMOUNT: NUMBER,
            **STAMP_CRITICAL,
        },
        finance_critical=True,
        lines=PAYMENT_LINES,
    ),
)

PREFERENCES = TableSpec(
    "preferences",
    ("realm_id",),
    {
        "realm_id": S,
        "book_close_date": S,
        "home_currency": S,
        "multi_currency_enabled": B,
        "first_month_of_fiscal_year": S,
        "sync_token": S,
        "server_time": S,
    },
)
