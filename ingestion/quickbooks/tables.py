"""QuickBooks Online record shapes as they land: tables, keys, cursor, critical fields, child lines.

Every table holds all realms (one QuickBooks company per legal entity) unioned, with `realm_id` on
each row and in the primary key: QuickBooks ids are unique per realm only.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from itertools import chain, repeat
from typing import Any

import numpy as np
import orjson
import polars as pl
import pyarrow as pa
import pyarrow.compute as pc

from ingestion.records import (
    NUMBER,
    STRING,
    DType,
    Schema,
    TableCheck,
    TableSpec,
    arrow_type,
    frozen_mapping,
    json_type,
    misfit,
    types_fit,
)

S, F, INT, B = pl.String, pl.Float64, pl.Int64, pl.Boolean
REF = pl.Struct({"value": S, "name": S})
META = pl.Struct({"CreateTime": S, "LastUpdatedTime": S})
COMMON: Schema = {"domain": S, "sparse": B, "Id": S, "SyncToken": S, "MetaData": META}
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


@dataclass(frozen=True, eq=False)
class DocumentSpec(TableSpec):
    """A transaction with a `Line` list, landed on the parent row as JSON text; the typed view of
    the lines is the child table (`LineTable`).

    Typed path: a page is parsed by Arrow against `record_type`, where `Line` is a list of the
    declared line structs (`line_type`), and lands from Arrow (`from_arrow`: `Line` written as
    JSON of the declared fields; the child rows from `LineTable.from_lists`). Record path (`convert`,
    a page that does not fit): converting nested lists of objects through Polars costs about a
    millisecond per invoice, so `Line` is checked against its declared element type with
    `types_fit`, a page at a time, and kept as the JSON text QuickBooks sent (unknown line fields
    included). A record whose lines do not fit, or hold a null line or linked transaction, is
    quarantined with the first misfit named; a line `Amount` that is not a number counts toward a
    refused type change like any other critical field (`Line.Amount`).
    """

    line_type: DType = pl.Null

    def __post_init__(self) -> None:
        super().__post_init__()
        # A page is parsed against the record with `Line` a list of the declared line structs.
        record = {**self.schema, "Line": pl.List(self.line_type)}
        typed = pa.struct([(name, arrow_type(dtype)) for name, dtype in record.items()])
        object.__setattr__(self, "record_type", typed)

    def fits(self, records: pa.Array) -> bool:
        """`TableSpec.fits`, and no line or linked transaction null (the record-by-record path
        quarantines those). The strict parse against `record_type` has checked every line's types
        column-wise: `Line.Amount` a number (or null) in every element, as `line_problems` wants."""
        if not super().fits(records):
            return False
        lines = records.flatten()[records.type.get_field_index("Line")].flatten()
        if lines.null_count:
            return False
        names = lines.type.names
        return "LinkedTxn" not in names or not lines.flatten()[names.index("LinkedTxn")].flatten().null_count

    def convert(
        self, records: list[dict], source: str, check: TableCheck | None = None
    ) -> tuple[pa.Table, list[dict]]:
        check = check or self.check()
        lines = [record.get("Line") if isinstance(record, dict) else None for record in records]
        quarantined: list[dict] = []
        if types_fit(lines, pl.List(self.line_type)) and not null_elements(lines):
            landing = records
        else:
            landing = []
            for record in records:
                reasons = self.line_problems(record, check) if isinstance(record, dict) else []
                if reasons:
                    reasons = [*super().problems(record, check), *reasons]
                    quarantined.append(self.quarantine_row(record, "; ".join(reasons), source))
                else:
                    landing.append(record)
            check.seen += len(quarantined)
            check.refuse_type_changes()
        as_text = [
            {**record, "Line": orjson.dumps(record["Line"]).decode()}
            if isinstance(record, dict) and record.get("Line") is not None
            else record
            for record in landing
        ]
        table, more = super().convert(as_text, source, check)
        return table, [*quarantined, *more]

    def line_problems(self, record: dict, check: TableCheck) -> list[str]:
        """Why this record's `Line` does not fit (counting wrong `Amount` types); empty when it does."""
        lines = record.get("Line")
        if lines is None:
            return []
        if not isinstance(lines, list):
            return [f"Line is {json_type(lines)}, expected array"]
        reasons = []
        for index, line in enumerate(lines):
            if line is None:
                reasons.append(f"Line[{index}] is null, expected object")
                continue
            linked = line.get("LinkedTxn") if isinstance(line, dict) else None
            if isinstance(linked, list) and None in linked:
                reasons.append(f"Line[{index}].LinkedTxn[{linked.index(None)}] is null, expected object")
            amount = line.get("Amount") if isinstance(line, dict) else line
            actual = json_type(amount)
            if actual not in (NUMBER, "null"):
                check.wrong_types[(LINE_AMOUNT, actual)] += 1
                reasons.append(f"Line[{index}].Amount is {actual} {amount!r}, expected number")
        if not reasons and (reason := misfit(lines, pl.List(self.line_type), "Line")):
            reasons.append(f"does not fit the declared schema: {reason}")
        return reasons

    def expected_type(self, path: str) -> str:
        return NUMBER if path == LINE_AMOUNT else super().expected_type(path)

    def quarantine_row(self, record: dict, reason: str, source: str) -> dict:
        # Records reach the shared conversion with `Line` as text; quarantine the list as sent.
        if isinstance(record.get("Line"), str):
            record = {**record, "Line": orjson.loads(record["Line"])}
        return super().quarantine_row(record, reason, source)


def null_elements(lines: list) -> bool:
    """Whether any of these `Line` lists (already checked to fit) holds a null line, or a line a
    null linked transaction: neither can become a child row, so such a record is quarantined."""
    every_line = list(chain.from_iterable(filter(None, lines)))
    if None in every_line:
        return True
    linked = filter(None, map(dict.get, every_line, repeat("LinkedTxn")))
    return None in chain.from_iterable(linked)


@dataclass(frozen=True)
class LineTable:
    """A child table of one row per (line, linked transaction) of a parent's `Line` list.

    Replaced wholesale for each parent that changes: merge key (realm_id, parent id) with the
    delete-insert strategy, so a changed invoice with fewer lines leaves no stale rows.
    """

    table: str
    parent_key: str  # e.g. invoice_id
    schema: Schema

    def __post_init__(self) -> None:
        object.__setattr__(self, "schema", frozen_mapping(self.schema))

    @property
    def primary_key(self) -> tuple[str, ...]:
        return ("realm_id", self.parent_key, "line_index", "linked_txn_index")

    @property
    def merge_key(self) -> tuple[str, ...]:
        return ("realm_id", self.parent_key)

    def spec(self) -> TableSpec:
        return TableSpec(self.table, self.primary_key, self.schema)

    def arrow(self, realm: str, parent_ids: list, stamps: list, line_texts: list) -> pa.Table:
        """The child rows of these parents (ids, change stamps, `Line` JSON texts), column-wise.

        One row per line and linked transaction; a line without any has one row with
        `linked_txn_index` 0 and nulls. Built as tuples and transposed, with no per-row dicts:
        invoices carry about sixty lines each, so this runs for every line QuickBooks sends.
        """
        rows: list[tuple] = []
        no_link: tuple[dict, ...] = ({},)
        for parent_id, stamp, text in zip(parent_ids, stamps, line_texts, strict=True):
            if not text:
                continue
            for index, line in enumerate(orjson.loads(text)):
                detail = line.get("SalesItemLineDetail") or _NONE
                item = detail.get("ItemRef") or _NONE
                base = (
                    realm,
                    parent_id,
                    index,
                    line.get("Id"),
                    line.get("LineNum"),
                    line.get("Amount"),
                    line.get("DetailType"),
                    line.get("Description"),
                    item.get("value"),
                    item.get("name"),
                    detail.get("Qty"),
                    detail.get("UnitPrice"),
                    detail.get("ServiceDate"),
                    stamp,
                )
                for txn_index, txn in enumerate(line.get("LinkedTxn") or no_link):
                    rows.append((*base, txn_index, txn.get("TxnId"), txn.get("TxnType")))
        columns = list(zip(*rows, strict=True)) if rows else [()] * len(_ROW_FIELDS)
        return self._table({name: columns[_ROW_FIELDS.index(name)] for name in _ROW_FIELDS})

    def from_lists(self, realm: str, parent_ids: pa.Array, stamps: pa.Array, lines: pa.Array) -> pa.Table:
        """The rows `arrow` makes, from the parents' `Line` lists as Arrow parsed them (a list of
        the declared line structs per parent), column-wise: no Python object per line.

        A parent whose list is null or empty has no rows; a line whose `LinkedTxn` is null or
        empty has one row, `linked_txn_index` 0 and nulls, as in `arrow`. The caller has checked
        that no line and no linked transaction is null (`DocumentSpec.fits`).
        """
        parent_ids, stamps, lines = _plain(parent_ids), _plain(stamps), _plain(lines)
        line_values = lines.flatten()  # the lines of every parent, in order
        parents = pc.list_parent_indices(lines).to_numpy()  # per line: its parent's position
        line_index = _positions_within(parents, len(lines))
        fields = dict(zip(line_values.type.names, line_values.flatten(), strict=True))
        txns = _plain(fields.get("LinkedTxn", pa.nulls(len(line_values), arrow_type(LINKED_TXN))))
        txn_values = txns.flatten()
        # one row per linked transaction, or one row for a line with none (null or empty list)
        counts = pc.fill_null(pc.list_value_length(txns), 0).to_numpy()
        per_line = np.maximum(counts, 1)
        row_line = np.repeat(np.arange(len(line_values), dtype=np.int64), per_line)
        txn_index = np.arange(len(row_line), dtype=np.int64) - (np.cumsum(per_line) - per_line)[row_line]
        txn_parents = pc.list_parent_indices(txns).to_numpy()
        first_txn = np.searchsorted(txn_parents, np.arange(len(line_values)))
        no_txn = counts[row_line] == 0
        txn_take = pa.array(np.where(no_txn, 0, first_txn[row_line] + txn_index), mask=no_txn)
        txn_fields = dict(zip(txn_values.type.names, txn_values.flatten(), strict=True))
        row_parent = pa.array(parents[row_line])
        row_line_arrow = pa.array(row_line)
        columns: dict[str, Any] = {
            "realm_id": pa.array(np.full(len(row_line), realm, dtype=object), pa.string()),
            "parent_id": parent_ids.take(row_parent),
            "line_index": pa.array(line_index[row_line]),
            "parent_updated_at": stamps.take(row_parent),
            "linked_txn_index": pa.array(txn_index),
        }
        for name, path in _LINE_PATHS.items():
            columns[name] = _at(fields, path, len(line_values)).take(row_line_arrow)
        for name, source in (("linked_txn_id", "TxnId"), ("linked_txn_type", "TxnType")):
            values = txn_fields.get(source, pa.nulls(len(txn_values), pa.string()))
            columns[name] = values.take(txn_take)
        return self._table(columns)

    def _table(self, columns: Mapping[str, Any]) -> pa.Table:
        """The declared columns (`parent_id` named as the parent key) with their Arrow types."""
        keys = set(self.primary_key)
        fields, arrays = [], []
        for name, dtype in self.schema.items():
            values = columns["parent_id" if name == self.parent_key else name]
            arrow_type = pl.Series([], dtype=dtype).to_arrow().type
            fields.append(pa.field(name, arrow_type, nullable=name not in keys))
            arrays.append(
                values.cast(arrow_type) if isinstance(values, pa.Array) else pa.array(values, type=arrow_type)
            )
        return pa.Table.from_arrays(arrays, schema=pa.schema(fields))


def _positions_within(parents: np.ndarray, groups: int) -> np.ndarray:
    """Each element's position within its group, for sorted group numbers (`list_parent_indices`)."""
    first = np.searchsorted(parents, np.arange(groups))
    return np.arange(len(parents), dtype=np.int64) - first[parents] if len(parents) else parents


def _plain(values: pa.Array | pa.ChunkedArray) -> pa.Array:
    """One contiguous array (a chunked column combined)."""
    return values.combine_chunks() if isinstance(values, pa.ChunkedArray) else values


def _at(fields: Mapping[str, pa.Array], path: str, length: int) -> pa.Array:
    """The values at a dotted path below the lines' fields (`SalesItemLineDetail.Qty`), null where
    a struct on the way is null (`flatten` carries each parent's nulls down); all null when the
    lines have no such field."""
    first, *rest = path.split(".")
    values = fields.get(first)
    for part in rest:
        if values is None or not pa.types.is_struct(values.type) or part not in values.type.names:
            return pa.nulls(length)
        values = values.flatten()[values.type.get_field_index(part)]
    return values if values is not None else pa.nulls(length)


_NONE: dict = {}
# Where `from_lists` reads each column of a line's row, below the line struct.
_LINE_PATHS = {
    "line_id": "Id",
    "line_num": "LineNum",
    "amount": "Amount",
    "detail_type": "DetailType",
    "description": "Description",
    "item_ref__value": "SalesItemLineDetail.ItemRef.value",
    "item_ref__name": "SalesItemLineDetail.ItemRef.name",
    "qty": "SalesItemLineDetail.Qty",
    "unit_price": "SalesItemLineDetail.UnitPrice",
    "service_date": "SalesItemLineDetail.ServiceDate",
}
# The order of the values `LineTable.arrow` collects per row ("parent_id" is the parent key).
_ROW_FIELDS = (
    "realm_id",
    "parent_id",
    "line_index",
    "line_id",
    "line_num",
    "amount",
    "detail_type",
    "description",
    "item_ref__value",
    "item_ref__name",
    "qty",
    "unit_price",
    "service_date",
    "parent_updated_at",
    "linked_txn_index",
    "linked_txn_id",
    "linked_txn_type",
)


LINE_COLUMNS: Schema = {
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
    schema: Schema
    critical: Mapping[str, str] = field(default_factory=dict)
    finance_critical: bool = False
    lines: LineTable | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "schema", frozen_mapping(self.schema))
        object.__setattr__(self, "critical", frozen_mapping(self.critical))

    @property
    def primary_key(self) -> tuple[str, ...]:
        return ("realm_id", *self.key)

    def spec(self, realm: str) -> TableSpec:
        """The spec of one realm's table: `realm_id` on every row and in the quarantine context."""
        realm_id = {"realm_id": realm}
        if not self.lines:
            return TableSpec(
                self.table,
                self.primary_key,
                self.schema,
                cursor=CURSOR,
                critical=self.critical,
                finance_critical=self.finance_critical,
                extra_columns=realm_id,
            )
        line_list = self.schema["Line"]
        assert isinstance(line_list, pl.List)
        return DocumentSpec(
            self.table,
            self.primary_key,
            {**self.schema, "Line": pl.String},  # lands as the JSON text sent
            critical={path: kind for path, kind in self.critical.items() if path != LINE_AMOUNT},
            line_type=line_list.inner,
            cursor=CURSOR,
            finance_critical=self.finance_critical,
            extra_columns=realm_id,
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
