"""The live ERP after cutover: what was written to QuickBooks, kept in `<world>/erp_live.sqlite`.

Every object is stored as versions (one row per SyncToken) with the instant it becomes visible,
so a payment scheduled at a billing run appears only when the clock reaches its date. Writes run
in one `BEGIN IMMEDIATE` transaction each, so the server's threads and a separate `advance`
process can share the file (WAL). Requests are remembered per realm by `requestid`: a replay
returns the stored response and changes nothing.

This module is the store (the file, its versions, the history the validations read, the errors);
what a write does is `sandbox.erp_writes`, what a month-end billing run does is
`sandbox.erp_billing`.

Stamps: every write gets `LastUpdatedTime = max(floor, last stamp + 1 ms)` with floor the clock
plus 1 ms (API writes) or the billing run's instant, so live stamps strictly increase and exceed
anything served before: an incremental load with `> last cursor` never misses a write.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import ClassVar

import polars as pl

from sandbox.world import World, parse_ts

FILE_NAME = "erp_live.sqlite"
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
        self._cache: dict[tuple, tuple[tuple, object]] = {}

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
                best = max(best, numeric if isinstance(numeric, int) else 0)
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
                as_date(row["period_end"])
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


def as_date(value: object) -> date:
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

    def transaction(self) -> Txn:
        return Txn(self.connection())

    def execute(
        self, realm: str, requestid: str | None, operation: Callable[[Txn], tuple[int, dict]]
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


class Txn:
    """One write transaction: version reads and inserts, id and stamp allocation."""

    def __init__(self, conn: sqlite3.Connection):
        self.conn = conn
        self.floor_us = 0
        self.changed = False

    def __enter__(self) -> Txn:
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
