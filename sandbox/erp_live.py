"""The live ERP after cutover: what was written to QuickBooks, kept in `<world>/erp_live.sqlite`.

Every object is stored as versions (one row per SyncToken) with the instant it becomes visible,
so a payment scheduled at a billing run appears only when the clock reaches its date. Writes run
in one `BEGIN IMMEDIATE` transaction each, so the server's threads and a separate `advance`
process can share the file (WAL). Requests are remembered per realm by `requestid`: a replay
returns the stored response and changes nothing.

Stamps: every write gets `LastUpdatedTime = max(floor, last stamp + 1 ms)` with floor the clock
plus 1 ms (API writes) or the billing run's instant, so live stamps strictly increase and exceed
anything served before: an incremental load with `> last cursor` never misses a write.
"""

from __future__ import annotations

import calendar
import hashlib
import json
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import ClassVar

import polars as pl

from sandbox.world import World, parse_ts

FILE_NAME = "erp_live.sqlite"
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
SCHEMA = """
CREATE TABLE IF NOT EXISTS objects (
    realm TEXT NOT NULL, entity TEXT NOT NULL, id TEXT NOT NULL, sync_token INTEGER NOT NULL,
    created_us INTEGER NOT NULL, updated_us INTEGER NOT NULL, visible_us INTEGER NOT NULL,
    deleted INTEGER NOT NULL DEFAULT 0, draft INTEGER NOT NULL DEFAULT 0, json TEXT NOT NULL,
    PRIMARY KEY (realm, entity, id, sync_token));
CREATE INDEX IF NOT EXISTS objects_visible ON objects (realm, entity, visible_us);
CREATE TABLE IF NOT EXISTS requests (
    realm TEXT NOT NULL, requestid TEXT NOT NULL, status INTEGER NOT NULL, response TEXT NOT NULL,
    created_us INTEGER NOT NULL, PRIMARY KEY (realm, requestid));
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS ids (realm TEXT PRIMARY KEY, next_id INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS billing_runs (
    realm TEXT NOT NULL, run_us INTEGER NOT NULL, invoices INTEGER NOT NULL, PRIMARY KEY (realm, run_us));
"""


# --- time ---------------------------------------------------------------------------------
def us_of(moment: datetime) -> int:
    return round(moment.timestamp() * 1_000_000)


def moment_of(us: int) -> datetime:
    return datetime(1970, 1, 1, tzinfo=UTC) + timedelta(microseconds=us)


def qbo_time(us: int) -> str:
    """A stamp as QuickBooks serves it here: ISO UTC, milliseconds only when there are any."""
    moment = moment_of(us)
    if us % 1_000_000:
        return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


# --- errors -------------------------------------------------------------------------------
class QboError(Exception):
    """A QuickBooks validation fault: code, Message, Detail (naming the field and value)."""

    MESSAGES: ClassVar[dict[str, str]] = {
        "610": "Object Not Found",
        "2010": "Request has invalid or unsupported property",
        "2020": "Required param missing, need to supply the required value for the API",
        "2500": "Invalid Reference Id",
        "5010": "Stale Object Error",
        "6000": "A business validation error has occurred while processing your request",
        "6210": "Account Period Closed, Cannot Update Through Services API",
    }

    def __init__(self, code: str, detail: str, element: str | None = None, status: int = 400):
        super().__init__(f"{code}: {detail}")
        self.code, self.detail, self.element, self.status = code, detail, element, status

    def fault(self) -> dict:
        error = {
            "Message": self.MESSAGES.get(self.code, "Validation error"),
            "Detail": self.detail,
            "code": self.code,
        }
        if self.element:
            error["element"] = self.element
        return {"Error": [error], "type": "ValidationFault"}


def missing(field: str) -> QboError:
    return QboError("2020", f"Required parameter {field} is missing in the request", field)


def invalid(field: str, why: str) -> QboError:
    return QboError("2010", f"Property Name:{field} specified is unsupported or invalid: {why}", field)


# --- the world's history, as the write validations need it ---------------------------------
class HistoryView:
    """What the generated ERP history says, as of the clock: references, book close, id floors."""

    def __init__(self, world: Callable[[], World]):
        self._world = world
        self._lock = threading.Lock()
        self._cache: dict[tuple, object] = {}

    @property
    def world(self) -> World:
        return self._world()

    def _cached(self, key: tuple, entity: str, build: Callable[[World], object]) -> object:
        world = self.world
        path = world.entity_file("erp", entity)
        signature = (
            world.meta["clock"],
            os.fspath(path) if path else None,
            os.stat(path).st_mtime_ns if path else None,
        )
        with self._lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == signature:
                return hit[1]
        value = build(world)
        with self._lock:
            self._cache[key] = (signature, value)
        return value

    def _state(self, world: World, entity: str, realm: str) -> pl.DataFrame:
        frame = world.state("erp", entity)
        if frame.height == 0:
            return frame
        return frame.filter(pl.col("_realm").cast(pl.String) == realm)

    def ids(self, realm: str, entity: str) -> frozenset[str]:
        """Ids of the realm's `entity` records existing (and Active unless unknown) as of the clock."""

        def build(world: World) -> frozenset[str]:
            frame = self._state(world, entity, realm)
            if frame.height == 0:
                return frozenset()
            if "Active" in frame.columns:
                frame = frame.filter(pl.col("Active").fill_null(True))
            return frozenset(frame["Id"].cast(pl.String).to_list())

        return self._cached(("ids", realm, entity), entity, build)  # type: ignore[return-value]

    def record(self, realm: str, entity: str, record_id: str) -> tuple[dict, int, int] | None:
        """A history record's current fields, version number and creation stamp (µs), or None."""
        frame = self._state(self.world, entity, realm)
        if frame.height == 0:
            return None
        frame = frame.filter(pl.col("Id").cast(pl.String) == record_id)
        if frame.height == 0:
            return None
        row = frame.row(0, named=True)
        fields = {k: _plain(v) for k, v in row.items() if not k.startswith("_")}
        return fields, int(row["_version"]), us_of(row["_created_at"])

    def id_floor(self, realm: str) -> int:
        """The greatest numeric Id of any history record of the realm, any entity, any version."""

        def build(world: World) -> int:
            best = 0
            for entity in ("Customer", "Employee", "Item", "TimeActivity", "Invoice", "Payment"):
                frame = world.read("erp", entity)
                if frame.height == 0 or "Id" not in frame.columns:
                    continue
                ids = frame.filter(pl.col("_realm").cast(pl.String) == realm)["Id"].cast(pl.String)
                numeric = ids.str.extract(r"^(\d+)$").cast(pl.Int64, strict=False).max()
                best = max(best, int(numeric or 0))
            return best

        return self._cached(("floor", realm), "Invoice", build)  # type: ignore[return-value]

    def book_close(self, realm: str) -> date | None:
        """The latest period end whose close happened by the clock (QuickBooks' BookCloseDate)."""

        def build(world: World) -> date | None:
            frame = self._state(world, "period_closes", realm)
            if frame.height == 0:
                return None
            clock = world.clock
            ends = [
                _as_date(row["period_end"])
                for row in frame.iter_rows(named=True)
                if row.get("closed_at") is not None and _as_moment(row["closed_at"]) <= clock
            ]
            return max(ends) if ends else None

        return self._cached(("close", realm), "period_closes", build)  # type: ignore[return-value]

    def customer_currency(self, realm: str, customer_id: str) -> str | None:
        found = self.record(realm, "Customer", customer_id)
        if found is None:
            return None
        currency = found[0].get("CurrencyRef") or {}
        return currency.get("value")


def _plain(value: object) -> object:
    """A polars row value as JSON-ready data (dates and datetimes as ISO strings)."""
    if isinstance(value, datetime):
        return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _as_date(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    return date.fromisoformat(str(value)[:10])


def _as_moment(value: object) -> datetime:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    return parse_ts(str(value))


# --- the store ----------------------------------------------------------------------------
@dataclass(frozen=True)
class LiveRow:
    id: str
    stamp_us: int
    sync_token: int
    json: str


class LiveStore:
    """The live ERP's objects and remembered requests, in one SQLite file shared by processes."""

    def __init__(self, world_path: str | os.PathLike[str]):
        self.path = Path(world_path) / FILE_NAME
        self._local = threading.local()
        self._cache_lock = threading.Lock()
        self._cache: dict[tuple, tuple[int, list[LiveRow]]] = {}
        self.connection()

    def connection(self) -> sqlite3.Connection:
        """This thread's connection (created on first use, schema ensured)."""
        conn = getattr(self._local, "conn", None)
        if conn is None:
            conn = sqlite3.connect(self.path, timeout=30, isolation_level=None, check_same_thread=False)
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
            conn.executescript(SCHEMA)
            self._local.conn = conn
        return conn

    def generation(self) -> int:
        row = self.connection().execute("SELECT value FROM meta WHERE key = 'generation'").fetchone()
        return int(row[0]) if row else 0

    def current(self, realm: str, entity: str, clock_us: int) -> list[LiveRow]:
        """Each live object's latest version visible at the clock (deleted ones left out)."""
        generation = self.generation()
        key = (realm, entity, clock_us)
        with self._cache_lock:
            hit = self._cache.get(key)
        if hit is not None and hit[0] == generation:
            return hit[1]
        rows = (
            self.connection()
            .execute(
                """SELECT o.id, o.updated_us, o.sync_token, o.json, o.deleted FROM objects o
               JOIN (SELECT id, MAX(sync_token) AS st FROM objects
                     WHERE realm = ? AND entity = ? AND visible_us <= ? GROUP BY id) m
                 ON o.id = m.id AND o.sync_token = m.st
               WHERE o.realm = ? AND o.entity = ?""",
                (realm, entity, clock_us, realm, entity),
            )
            .fetchall()
        )
        live = [LiveRow(r[0], r[1], r[2], r[3]) for r in rows if not r[4]]
        live.sort(key=lambda row: (row.stamp_us, row.id))
        with self._cache_lock:
            self._cache[key] = (generation, live)
        return live

    def transaction(self) -> _Txn:
        return _Txn(self.connection())

    def execute(
        self, realm: str, requestid: str | None, operation: Callable[[_Txn], tuple[int, dict]]
    ) -> tuple[int, dict, bool]:
        """Run a write once per (realm, requestid); a replay returns the first answer, unchanged."""
        with self.transaction() as txn:
            if requestid:
                row = txn.conn.execute(
                    "SELECT status, response FROM requests WHERE realm = ? AND requestid = ?",
                    (realm, requestid),
                ).fetchone()
                if row:
                    return int(row[0]), json.loads(row[1]), True
            status, body = operation(txn)
            if requestid:
                txn.conn.execute(
                    "INSERT INTO requests (realm, requestid, status, response, created_us) "
                    "VALUES (?, ?, ?, ?, ?)",
                    (realm, requestid, status, json.dumps(body), txn.floor_us),
                )
            return status, body, False


class _Txn:
    """One write transaction: version reads and inserts, id and stamp allocation."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.floor_us = 0
        self.changed = False

    def __enter__(self) -> _Txn:
        self.conn.execute("BEGIN IMMEDIATE")
        return self

    def __exit__(self, kind: object, error: object, trace: object) -> None:
        if kind is None:
            if self.changed:
                self.conn.execute(
                    "INSERT INTO meta (key, value) VALUES ('generation', 1) "
                    "ON CONFLICT (key) DO UPDATE SET value = value + 1"
                )
            self.conn.execute("COMMIT")
        else:
            self.conn.execute("ROLLBACK")

    def latest(self, realm: str, entity: str, record_id: str, as_of_us: int | None = None) -> dict | None:
        """The latest stored version (visible by `as_of_us` when given) as a dict of columns."""
        sql = (
            "SELECT sync_token, created_us, updated_us, visible_us, deleted, draft, json FROM objects "
            "WHERE realm = ? AND entity = ? AND id = ?"
        )
        args: list = [realm, entity, record_id]
        if as_of_us is not None:
            sql += " AND visible_us <= ?"
            args.append(as_of_us)
        row = self.conn.execute(sql + " ORDER BY sync_token DESC LIMIT 1", args).fetchone()
        if row is None:
            return None
        keys = ("sync_token", "created_us", "updated_us", "visible_us", "deleted", "draft", "json")
        found = dict(zip(keys, row, strict=True))
        found["record"] = json.loads(found.pop("json"))
        return found

    def stamp(self, floor_us: int) -> int:
        """The next live stamp: >= floor and strictly after every earlier live stamp."""
        row = self.conn.execute("SELECT value FROM meta WHERE key = 'last_stamp_us'").fetchone()
        stamp = max(floor_us, (int(row[0]) + 1000) if row else floor_us)
        self.conn.execute(
            "INSERT INTO meta (key, value) VALUES ('last_stamp_us', ?) "
            "ON CONFLICT (key) DO UPDATE SET value = excluded.value",
            (stamp,),
        )
        return stamp

    def new_id(self, realm: str, floor: int) -> str:
        """A fresh numeric Id for the realm, above every history Id (`floor`) and earlier live ones."""
        row = self.conn.execute("SELECT next_id FROM ids WHERE realm = ?", (realm,)).fetchone()
        next_id = max(floor + 1, int(row[0]) if row else 0)
        self.conn.execute(
            "INSERT INTO ids (realm, next_id) VALUES (?, ?) "
            "ON CONFLICT (realm) DO UPDATE SET next_id = excluded.next_id",
            (realm, next_id + 1),
        )
        return str(next_id)

    def put(
        self,
        realm: str,
        entity: str,
        record: dict,
        *,
        sync_token: int,
        created_us: int,
        stamp_us: int,
        visible_us: int,
        deleted: bool = False,
        draft: bool = False,
    ) -> dict:
        """Store a version visible from `visible_us`; returns the record as served (Id, SyncToken, MetaData).

        API writes are visible at once (the clock) though stamped a little after it (see the module doc).
        """
        served = {
            **{
                k: v
                for k, v in record.items()
                if k not in ("Id", "SyncToken", "MetaData", "domain", "sparse")
            },
            "domain": "QBO",
            "sparse": False,
            "Id": str(record["Id"]),
            "SyncToken": str(sync_token),
            "MetaData": {"CreateTime": qbo_time(created_us), "LastUpdatedTime": qbo_time(stamp_us)},
        }
        self.conn.execute(
            "INSERT INTO objects (realm, entity, id, sync_token, created_us, updated_us, visible_us, deleted,"
            " draft,"
            " json) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (
                realm,
                entity,
                served["Id"],
                sync_token,
                created_us,
                stamp_us,
                visible_us,
                int(deleted),
                int(draft),
                json.dumps(served, separators=(",", ":")),
            ),
        )
        self.changed = True
        return served


# --- writes (QuickBooks semantics) ---------------------------------------------------------
@dataclass
class WriteContext:
    """Everything a write needs besides the transaction: the realm, the clock, the history."""

    realm: str
    clock: datetime
    history: HistoryView

    @property
    def clock_us(self) -> int:
        return us_of(self.clock)


def _exists(txn: _Txn, ctx: WriteContext, entity: str, record_id: str) -> bool:
    found = txn.latest(ctx.realm, entity, record_id, ctx.clock_us)
    if found is not None:
        return not found["deleted"]
    return record_id in ctx.history.ids(ctx.realm, entity)


def _check_refs(txn: _Txn, ctx: WriteContext, record: dict, fields: tuple[str, ...]) -> None:
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
    if close is not None and _as_date(txn_date) <= close:
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


def _validate_time_activity(txn: _Txn, ctx: WriteContext, record: dict) -> dict:
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
        _as_date(record["TxnDate"])
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


def _current(txn: _Txn, ctx: WriteContext, entity: str, record_id: str) -> tuple[dict, int, int, bool]:
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


def _check_change(txn: _Txn, ctx: WriteContext, entity: str, body: dict) -> tuple[dict, int, int]:
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


def write_time_activity(txn: _Txn, ctx: WriteContext, body: object, operation: str) -> tuple[int, dict]:
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


def write_invoice(txn: _Txn, ctx: WriteContext, body: object, operation: str) -> tuple[int, dict]:
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
    record.setdefault("DueDate", (_as_date(record["TxnDate"]) + timedelta(days=30)).isoformat())
    customer = str(body["CustomerRef"]["value"])
    home = _home_currency(ctx)
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


def _home_currency(ctx: WriteContext) -> str:
    entity = ctx.history.world.realms.get(ctx.realm) or {}
    return str(entity.get("currency") or ctx.history.world.meta.get("reporting_currency") or "USD")


def write(txn: _Txn, ctx: WriteContext, entity: str, body: object, operation: str) -> tuple[int, dict]:
    """One write of `entity`; a validation problem becomes a 400 Fault response."""
    try:
        return WRITERS[entity](txn, ctx, body, operation)
    except QboError as err:
        return err.status, {"Fault": err.fault()}


def batch(txn: _Txn, ctx: WriteContext, body: object) -> tuple[int, dict]:
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


# --- billing runs ---------------------------------------------------------------------------
def month_ends(after: datetime, until: datetime) -> list[datetime]:
    """Billing-run instants (the month's last day, 18:00 UTC) in (after, until]."""
    runs = []
    year, month = after.year, after.month
    while True:
        last = calendar.monthrange(year, month)[1]
        run = datetime.combine(date(year, month, last), time(18, 0), tzinfo=UTC)
        if run > until:
            return runs
        if run > after:
            runs.append(run)
        year, month = (year + 1, 1) if month == 12 else (year, month + 1)


def _unit(*parts: object) -> float:
    digest = hashlib.blake2b("\x1f".join(map(str, parts)).encode(), digest_size=8).digest()
    return int.from_bytes(digest, "big") / 2**64


def payment_plan(seed: int, realm: str, invoice_id: str, total: float) -> tuple[int, float]:
    """(days after the invoice date, amount) of an invoice's payment, fixed by seed and invoice."""
    draw = _unit(seed, "payment", realm, invoice_id)
    days = 20 + int(_unit(seed, "payment-days", realm, invoice_id) * 56)  # 20..75
    if draw < 0.85:
        return days, total
    if draw < 0.95:  # late payers
        return 76 + int(_unit(seed, "late-days", realm, invoice_id) * 60), total
    share = 0.4 + 0.1 * int(_unit(seed, "partial", realm, invoice_id) * 5)  # part paid: 40..80 %
    return days, round(total * share, 2)


def _hours(record: dict) -> float:
    return float(record.get("Hours") or 0) + float(record.get("Minutes") or 0) / 60


def run_billing(world: World, after: datetime, until: datetime) -> dict:
    """Run each realm's billing runs in (after, until]: bill pushed time, finalise drafts, plan payments.

    Idempotent: a run already done (realm, instant) is skipped, so calling twice changes nothing.
    Returns counts of what was done.
    """
    store = LiveStore(world.path)
    history = HistoryView(lambda: world)
    counts = {"runs": 0, "invoices": 0, "time_activities": 0, "finalised": 0, "payments": 0}
    for realm in world.realms:
        for run in month_ends(max(after, world.cutover_at), until):  # before cutover: history
            with store.transaction() as txn:
                done = txn.conn.execute(
                    "SELECT 1 FROM billing_runs WHERE realm = ? AND run_us = ?", (realm, us_of(run))
                ).fetchone()
                if done:
                    continue
                ctx = WriteContext(realm, run, history)
                result = _bill(txn, ctx, world.seed)
                txn.conn.execute(
                    "INSERT INTO billing_runs (realm, run_us, invoices) VALUES (?, ?, ?)",
                    (realm, us_of(run), result["invoices"] + result["finalised"]),
                )
                txn.changed = True
            counts["runs"] += 1
            for name, value in result.items():
                counts[name] += value
    return counts


def _latest_rows(txn: _Txn, realm: str, entity: str, as_of_us: int) -> list[dict]:
    rows = txn.conn.execute(
        """SELECT o.id, o.sync_token, o.created_us, o.deleted, o.draft, o.json FROM objects o
           JOIN (SELECT id, MAX(sync_token) AS st FROM objects
                 WHERE realm = ? AND entity = ? AND visible_us <= ?
                 GROUP BY id) m ON o.id = m.id AND o.sync_token = m.st
           WHERE o.realm = ? AND o.entity = ? ORDER BY CAST(o.id AS INTEGER)""",
        (realm, entity, as_of_us, realm, entity),
    ).fetchall()
    return [
        {"id": r[0], "sync_token": r[1], "created_us": r[2], "draft": r[4], "record": json.loads(r[5])}
        for r in rows
        if not r[3]
    ]


def _bill(txn: _Txn, ctx: WriteContext, seed: int) -> dict:
    run_us = us_of(ctx.clock)
    period_end = ctx.clock.date()
    home = _home_currency(ctx)
    result = {"invoices": 0, "time_activities": 0, "finalised": 0, "payments": 0}
    by_customer: dict[str, list[dict]] = {}
    for row in _latest_rows(txn, ctx.realm, "TimeActivity", run_us):
        record = row["record"]
        if record.get("BillableStatus") != "Billable" or not record.get("CustomerRef"):
            continue
        if _as_date(record["TxnDate"]) > period_end:
            continue
        by_customer.setdefault(str(record["CustomerRef"]["value"]), []).append(row)
    floor = ctx.history.id_floor(ctx.realm)
    for customer, rows in sorted(by_customer.items()):
        rows.sort(key=lambda row: (row["record"]["TxnDate"], int(row["id"])))
        lines = []
        for number, row in enumerate(rows, start=1):
            ta = row["record"]
            qty = round(_hours(ta), 4)
            rate = float(ta.get("HourlyRate") or 0)
            employee = (ta.get("EmployeeRef") or {}).get("name") or (ta.get("EmployeeRef") or {}).get("value")
            lines.append(
                {
                    "Id": str(number),
                    "LineNum": number,
                    "Amount": round(qty * rate, 2),
                    "DetailType": "SalesItemLineDetail",
                    "Description": f"{employee} {ta['TxnDate']} {ta.get('Description') or ''}".strip(),
                    "SalesItemLineDetail": {
                        "ItemRef": ta.get("ItemRef"),
                        "Qty": qty,
                        "UnitPrice": rate,
                        "ServiceDate": ta["TxnDate"],
                    },
                    "LinkedTxn": [{"TxnId": row["id"], "TxnType": "TimeActivity"}],
                }
            )
        total = round(sum(line["Amount"] for line in lines), 2)
        invoice_id = txn.new_id(ctx.realm, floor)
        stamp = txn.stamp(run_us)
        customer_ref = dict(rows[0]["record"]["CustomerRef"])
        invoice = {
            "Id": invoice_id,
            "DocNumber": invoice_id,
            "TxnDate": period_end.isoformat(),
            "DueDate": (period_end + timedelta(days=30)).isoformat(),
            "CustomerRef": customer_ref,
            "CurrencyRef": {"value": ctx.history.customer_currency(ctx.realm, customer) or home},
            "ExchangeRate": 1.0,
            "TotalAmt": total,
            "Balance": total,
            "PrivateNote": None,
            "Line": lines,
        }
        txn.put(
            ctx.realm, "Invoice", invoice, sync_token=0, created_us=stamp, stamp_us=stamp, visible_us=run_us
        )
        result["invoices"] += 1
        for row in rows:
            ta_stamp = txn.stamp(run_us)
            txn.put(
                ctx.realm,
                "TimeActivity",
                {**row["record"], "BillableStatus": "HasBeenBilled"},
                sync_token=row["sync_token"] + 1,
                created_us=row["created_us"],
                stamp_us=ta_stamp,
                visible_us=run_us,
            )
            result["time_activities"] += 1
        result["payments"] += _schedule_payment(txn, ctx, seed, invoice, 0, stamp)
    for row in _latest_rows(txn, ctx.realm, "Invoice", run_us):
        if not row["draft"] or _as_date(row["record"]["TxnDate"]) > period_end:
            continue
        invoice = {**row["record"]}
        invoice["DocNumber"] = invoice.get("DocNumber") or row["id"]
        stamp = txn.stamp(run_us)
        txn.put(
            ctx.realm,
            "Invoice",
            invoice,
            sync_token=row["sync_token"] + 1,
            created_us=row["created_us"],
            stamp_us=stamp,
            visible_us=run_us,
        )
        result["finalised"] += 1
        result["payments"] += _schedule_payment(
            txn, ctx, seed, invoice, row["sync_token"] + 1, row["created_us"]
        )
    return result


def _schedule_payment(
    txn: _Txn, ctx: WriteContext, seed: int, invoice: dict, token: int, created_us: int
) -> int:
    """Store the invoice's future Payment and the Invoice version with its reduced Balance."""
    total = float(invoice["TotalAmt"])
    if total <= 0:
        return 0
    days, amount = payment_plan(seed, ctx.realm, invoice["Id"], total)
    paid_on = _as_date(invoice["TxnDate"]) + timedelta(days=days)
    visible = us_of(datetime.combine(paid_on, time(15, 0), tzinfo=UTC))
    payment_id = txn.new_id(ctx.realm, ctx.history.id_floor(ctx.realm))
    payment = {
        "Id": payment_id,
        "TxnDate": paid_on.isoformat(),
        "CustomerRef": invoice["CustomerRef"],
        "CurrencyRef": invoice["CurrencyRef"],
        "TotalAmt": amount,
        "Line": [{"Amount": amount, "LinkedTxn": [{"TxnId": invoice["Id"], "TxnType": "Invoice"}]}],
    }
    txn.put(
        ctx.realm, "Payment", payment, sync_token=0, created_us=visible, stamp_us=visible, visible_us=visible
    )
    txn.put(
        ctx.realm,
        "Invoice",
        {**invoice, "Balance": round(total - amount, 2)},
        sync_token=token + 1,
        created_us=created_us,
        stamp_us=visible,
        visible_us=visible,
    )
    return 1
