"""Writes to the live ERP with QuickBooks semantics: create, full and sparse update, delete of time
activities and invoices, references and closed books checked against the world's history and the
store, optimistic locking by SyncToken, and `/batch` (each item in its own savepoint).

Each writer runs inside the store's transaction (`LiveStore.execute`), which remembers the answer
per `requestid`; a validation problem is a `QboError`, answered as QuickBooks' 400 Fault.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta

from sandbox.erp_live import (
    HistoryView,
    QboError,
    Txn,
    as_date,
    invalid,
    missing,
    us_of,
)

WRITABLE = ("TimeActivity", "Invoice")
REFERENCES = {"EmployeeRef": "Employee", "CustomerRef": "Customer", "ItemRef": "Item"}
TA_FIELDS = (
    "TxnDate",
    "NameOf",
    "EmployeeRef",
    "CustomerRef",
    "ItemRef",
    "BillableStatus",
    "Taxable",
    "HourlyRate",
    "Hours",
    "Minutes",
    "Description",
)
INVOICE_FIELDS = (
    "DocNumber",
    "TxnDate",
    "DueDate",
    "CustomerRef",
    "CurrencyRef",
    "ExchangeRate",
    "PrivateNote",
    "Line",
)


@dataclass
class WriteContext:
    """Everything a write needs besides the transaction: the realm, the clock, the history."""

    realm: str
    clock: datetime
    history: HistoryView

    @property
    def clock_us(self) -> int:
        return us_of(self.clock)


def _exists(txn: Txn, ctx: WriteContext, entity: str, record_id: str) -> bool:
    found = txn.latest(ctx.realm, entity, record_id, ctx.clock_us)
    if found is not None:
        return not found["deleted"]
    return record_id in ctx.history.ids(ctx.realm, entity)


def _check_refs(txn: Txn, ctx: WriteContext, record: dict, fields: tuple[str, ...]) -> None:
    for field in fields:
        ref = record.get(field)
        if ref is None:
            continue
        if not isinstance(ref, dict) or not str(ref.get("value") or "").strip():
            raise invalid(field, f"expected an object with a value, got {json.dumps(ref)}")
        value = str(ref["value"])
        if not _exists(txn, ctx, REFERENCES[field], value):
            raise QboError(
                "2500",
                f"Invalid Reference Id : {REFERENCES[field]} {value} in {field} does not exist or is "
                "inactive "
                f"in company {ctx.realm}",
                field,
            )


def _check_period(ctx: WriteContext, txn_date: str, entity: str) -> None:
    close = ctx.history.book_close(ctx.realm)
    if close is not None and as_date(txn_date) <= close:
        raise QboError(
            "6210",
            f"The account period has closed and the books are locked: {entity} TxnDate {txn_date} is on or "
            f"before the closing date {close.isoformat()} of company {ctx.realm}",
            "TxnDate",
        )


def _number(
    record: dict, field: str, *, integer: bool = False, low: float = 0, high: float | None = None
) -> None:
    value = record.get(field)
    if value is None:
        return
    if isinstance(value, bool) or not isinstance(value, int | float) or (integer and int(value) != value):
        raise invalid(field, f"expected {'an integer' if integer else 'a number'}, got {json.dumps(value)}")
    if value < low or (high is not None and value > high):
        raise invalid(field, f"{value} is out of range [{low}, {high if high is not None else 'inf'}]")


def _validate_time_activity(txn: Txn, ctx: WriteContext, record: dict) -> dict:
    unknown = sorted(set(record) - {*TA_FIELDS, "Id", "SyncToken", "sparse", "MetaData", "domain"})
    if unknown:
        raise invalid(unknown[0], "TimeActivity has no such property")
    record.setdefault("TxnDate", ctx.clock.date().isoformat())
    if not record.get("NameOf"):
        raise missing("NameOf")
    if record["NameOf"] != "Employee":
        raise invalid("NameOf", f"only Employee time is accepted, got {json.dumps(record['NameOf'])}")
    if not record.get("EmployeeRef"):
        raise missing("EmployeeRef")
    if record.get("Hours") is None and record.get("Minutes") is None:
        raise missing("Hours")
    try:
        as_date(record["TxnDate"])
    except ValueError:
        raise invalid("TxnDate", f"expected a date YYYY-MM-DD, got {json.dumps(record['TxnDate'])}") from None
    _number(record, "Hours", integer=True, high=24)
    _number(record, "Minutes", integer=True, high=59)
    _number(record, "HourlyRate")
    status = record.setdefault("BillableStatus", "NotBillable")
    if status not in ("Billable", "NotBillable"):
        raise QboError(
            "6000",
            f"Business Validation Error: BillableStatus {status} cannot be set through the API; "
            "use Billable or NotBillable",
            "BillableStatus",
        )
    if status == "Billable" and not record.get("CustomerRef"):
        raise missing("CustomerRef")
    _check_refs(txn, ctx, record, ("EmployeeRef", "CustomerRef", "ItemRef"))
    _check_period(ctx, record["TxnDate"], "TimeActivity")
    return record


def _current(txn: Txn, ctx: WriteContext, entity: str, record_id: str) -> tuple[dict, int, int, bool]:
    """(record, SyncToken, created µs, from live store) of an existing object, else fault 610."""
    found = txn.latest(ctx.realm, entity, record_id, ctx.clock_us)
    if found is not None:
        if found["deleted"]:
            found = None
        else:
            return found["record"], found["sync_token"], found["created_us"], True
    history = ctx.history.record(ctx.realm, entity, record_id)
    if history is None:
        raise QboError(
            "610",
            f"Object Not Found : {entity} {record_id} does not exist in company {ctx.realm} "
            "(or it was deleted)",
            "Id",
        )
    return history[0], history[1], history[2], False


def _check_change(txn: Txn, ctx: WriteContext, entity: str, body: dict) -> tuple[dict, int, int]:
    record_id = str(body.get("Id") or "")
    if not record_id:
        raise missing("Id")
    if body.get("SyncToken") is None:
        raise missing("SyncToken")
    current, token, created_us, _ = _current(txn, ctx, entity, record_id)
    if str(body["SyncToken"]) != str(token):
        raise QboError(
            "5010",
            f"Stale Object Error : You and another user were working on {entity} {record_id} at the same "
            f"time; SyncToken {body['SyncToken']} was sent but the current SyncToken is {token}, so your "
            "change was "
            "not saved",
            "SyncToken",
        )
    if current.get("BillableStatus") == "HasBeenBilled":
        raise QboError(
            "6000",
            f"Business Validation Error: {entity} {record_id} has been billed (BillableStatus "
            "HasBeenBilled) and cannot be changed or deleted",
            "BillableStatus",
        )
    if current.get("TxnDate"):
        _check_period(ctx, str(current["TxnDate"]), entity)
    return current, token, created_us


def write_time_activity(txn: Txn, ctx: WriteContext, body: object, operation: str) -> tuple[int, dict]:
    """Create, update (full or sparse) or delete a TimeActivity; (status, {"TimeActivity": ...})."""
    if not isinstance(body, dict):
        raise invalid("TimeActivity", "the request body must be a JSON object")
    stamp_floor = ctx.clock_us + 1000
    txn.floor_us = stamp_floor
    if operation == "delete":
        current, token, created_us = _check_change(txn, ctx, "TimeActivity", body)
        stamp = txn.stamp(stamp_floor)
        txn.put(
            ctx.realm,
            "TimeActivity",
            {**current, "Id": body["Id"]},
            sync_token=token + 1,
            created_us=created_us,
            stamp_us=stamp,
            visible_us=ctx.clock_us,
            deleted=True,
        )
        return 200, {"TimeActivity": {"domain": "QBO", "status": "Deleted", "Id": str(body["Id"])}}
    if body.get("Id") is not None:
        current, token, created_us = _check_change(txn, ctx, "TimeActivity", body)
        fields = {k: v for k, v in body.items() if k not in ("SyncToken", "sparse", "MetaData", "domain")}
        merged = (
            {**{k: current.get(k) for k in TA_FIELDS if current.get(k) is not None}, **fields}
            if body.get("sparse")
            else fields
        )
        record = _validate_time_activity(txn, ctx, {k: v for k, v in merged.items() if v is not None})
        stamp = txn.stamp(stamp_floor)
        served = txn.put(
            ctx.realm,
            "TimeActivity",
            {**record, "Id": str(body["Id"])},
            sync_token=token + 1,
            created_us=created_us,
            stamp_us=stamp,
            visible_us=ctx.clock_us,
        )
        return 200, {"TimeActivity": served}
    record = _validate_time_activity(txn, ctx, {k: v for k, v in body.items() if v is not None})
    stamp = txn.stamp(stamp_floor)
    record["Id"] = txn.new_id(ctx.realm, ctx.history.id_floor(ctx.realm))
    served = txn.put(
        ctx.realm,
        "TimeActivity",
        record,
        sync_token=0,
        created_us=stamp,
        stamp_us=stamp,
        visible_us=ctx.clock_us,
    )
    return 200, {"TimeActivity": served}


def write_invoice(txn: Txn, ctx: WriteContext, body: object, operation: str) -> tuple[int, dict]:
    """Create a draft invoice (milestone and retainer billing); finalised at the next billing run."""
    if not isinstance(body, dict):
        raise invalid("Invoice", "the request body must be a JSON object")
    if operation != "create" or body.get("Id") is not None:
        raise invalid("Id", "only creating invoices is supported by this company's integration")
    unknown = sorted(set(body) - {*INVOICE_FIELDS, "sparse", "domain"})
    if unknown:
        raise invalid(unknown[0], "Invoice has no such property")
    if not body.get("CustomerRef"):
        raise missing("CustomerRef")
    lines = body.get("Line")
    if not lines:
        raise missing("Line")
    if not isinstance(lines, list):
        raise invalid("Line", "expected an array of lines")
    _check_refs(txn, ctx, body, ("CustomerRef",))
    record = {k: v for k, v in body.items() if k in INVOICE_FIELDS and v is not None}
    record.setdefault("TxnDate", ctx.clock.date().isoformat())
    _check_period(ctx, record["TxnDate"], "Invoice")
    clean_lines = []
    for number, line in enumerate(lines, start=1):
        if not isinstance(line, dict):
            raise invalid("Line", f"line {number} is not an object")
        if line.get("Amount") is None:
            raise missing(f"Line[{number}].Amount")
        _number(line, "Amount", low=-1e12)
        detail = line.get("SalesItemLineDetail") or {}
        _check_refs(txn, ctx, {"ItemRef": detail.get("ItemRef")}, ("ItemRef",))
        clean_lines.append(
            {"Id": str(number), "LineNum": number, "DetailType": "SalesItemLineDetail", **line}
        )
    record["Line"] = clean_lines
    total = round(sum(float(line["Amount"]) for line in clean_lines), 2)
    record.setdefault("DueDate", (as_date(record["TxnDate"]) + timedelta(days=30)).isoformat())
    customer = str(body["CustomerRef"]["value"])
    home = home_currency(ctx)
    record.setdefault("CurrencyRef", {"value": ctx.history.customer_currency(ctx.realm, customer) or home})
    record.setdefault("ExchangeRate", 1.0)
    record.update(TotalAmt=total, Balance=total)
    txn.floor_us = ctx.clock_us + 1000
    stamp = txn.stamp(txn.floor_us)
    record["Id"] = txn.new_id(ctx.realm, ctx.history.id_floor(ctx.realm))
    served = txn.put(
        ctx.realm,
        "Invoice",
        record,
        sync_token=0,
        created_us=stamp,
        stamp_us=stamp,
        visible_us=ctx.clock_us,
        draft=True,
    )
    return 200, {"Invoice": served}


WRITERS = {"TimeActivity": write_time_activity, "Invoice": write_invoice}


def home_currency(ctx: WriteContext) -> str:
    entity = ctx.history.world.realms.get(ctx.realm) or {}
    return str(entity.get("currency") or ctx.history.world.meta.get("reporting_currency") or "USD")


def write(txn: Txn, ctx: WriteContext, entity: str, body: object, operation: str) -> tuple[int, dict]:
    """One write of `entity`; a validation problem becomes a 400 Fault response."""
    try:
        return WRITERS[entity](txn, ctx, body, operation)
    except QboError as err:
        return err.status, {"Fault": err.fault()}


def batch(txn: Txn, ctx: WriteContext, body: object) -> tuple[int, dict]:
    """A `/batch` request: each item on its own, one item's fault leaves the others done."""
    items = body.get("BatchItemRequest") if isinstance(body, dict) else None
    if not isinstance(items, list) or not items:
        return 400, {"Fault": missing("BatchItemRequest").fault()}
    if len(items) > 30:
        return 400, {
            "Fault": invalid(
                "BatchItemRequest", f"{len(items)} items sent; at most 30 are allowed per batch request"
            ).fault()
        }
    answers = []
    for item in items:
        bid = str(item.get("bId", "")) if isinstance(item, dict) else ""
        entity = next((name for name in WRITERS if isinstance(item, dict) and name in item), None)
        operation = str(item.get("operation") or "create").lower() if isinstance(item, dict) else "create"
        if entity is None:
            answers.append(
                {
                    "bId": bid,
                    "Fault": invalid(
                        "BatchItemRequest", "each item needs a TimeActivity or Invoice object"
                    ).fault(),
                }
            )
            continue
        savepoint = f"item_{len(answers)}"
        txn.conn.execute(f"SAVEPOINT {savepoint}")
        _, answer = write(txn, ctx, entity, item[entity], operation)
        if "Fault" in answer:  # undo any partial work of the failed item only
            txn.conn.execute(f"ROLLBACK TO {savepoint}")
        txn.conn.execute(f"RELEASE {savepoint}")
        answers.append({"bId": bid, **answer})
    return 200, {"BatchItemResponse": answers}
