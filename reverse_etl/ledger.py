"""The ledger: every billable line's state, every batch sent, every sync run, and the audit log.

One SQLite file (`data/ledger.sqlite`), in WAL mode with synchronous=FULL: each state change is a
committed transaction before the next step happens, so a `kill -9` at any instant leaves a
consistent ledger, and readers (a person with `sqlite3`, the snapshot export) never block the
sync. It lives apart from the warehouse, so rebuilds and full refreshes never touch it.

The warehouse cannot read SQLite here (DuckDB's sqlite extension would have to be downloaded),
so after each run `export_snapshot` publishes `sync_runs` and `line_states` as a DuckDB file
(`data/ledger.duckdb`) by write-then-rename; the transform attaches that read-only.

The audit log is append-only: triggers refuse UPDATE and DELETE on it.
"""

from __future__ import annotations

import json
import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

SCHEMA = """
CREATE TABLE IF NOT EXISTS sync_runs (
    run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
    is_dry_run INTEGER NOT NULL DEFAULT 0, is_retry_rejected INTEGER NOT NULL DEFAULT 0,
    warehouse_run_id TEXT, lines_in_plan INTEGER, creates_planned INTEGER, updates_planned INTEGER,
    deletes_planned INTEGER, lines_held INTEGER, lines_skipped INTEGER, requests_sent INTEGER,
    lines_acknowledged INTEGER, lines_rejected INTEGER, lines_deleted INTEGER,
    lines_invoiced_untouched INTEGER, lines_dead_letter INTEGER, transport_failures INTEGER,
    realms_failed TEXT, message TEXT, duration_s REAL, pid INTEGER);
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS lines (
    line_key TEXT PRIMARY KEY, line_kind TEXT NOT NULL, erp_entity TEXT NOT NULL,
    realm_id TEXT NOT NULL, time_entry_id INTEGER, milestone_id TEXT, state TEXT NOT NULL,
    operation TEXT, erp_id TEXT, sync_token TEXT, content_hash TEXT, pending_hash TEXT,
    rejected_hash TEXT, txn_date TEXT, hours TEXT, rate TEXT, amount TEXT, currency_code TEXT,
    requestid TEXT, attempts INTEGER NOT NULL DEFAULT 0, error_code TEXT, error_message TEXT,
    first_sent_at TEXT, acknowledged_at TEXT, last_acknowledged_at TEXT, rejected_at TEXT,
    deleted_at TEXT, updated_at TEXT NOT NULL, last_run_id TEXT);
CREATE INDEX IF NOT EXISTS lines_state ON lines (state);
CREATE TABLE IF NOT EXISTS batches (
    requestid TEXT PRIMARY KEY, realm_id TEXT NOT NULL, run_id TEXT NOT NULL,
    created_at TEXT NOT NULL, body TEXT NOT NULL, items TEXT NOT NULL,
    state TEXT NOT NULL, answered_at TEXT, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX IF NOT EXISTS batches_state ON batches (state);
CREATE TABLE IF NOT EXISTS audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, realm_id TEXT, requestid TEXT,
    line_key TEXT, operation TEXT, method TEXT, path TEXT, payload TEXT, status INTEGER,
    erp_id TEXT, erp_sync_token TEXT, error_code TEXT, error TEXT, attempt INTEGER,
    sent_at TEXT, received_at TEXT, duration_ms REAL);
CREATE TRIGGER IF NOT EXISTS audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER IF NOT EXISTS audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
"""

LINE_COLUMNS = (
    "line_key",
    "line_kind",
    "erp_entity",
    "realm_id",
    "time_entry_id",
    "milestone_id",
    "state",
    "operation",
    "erp_id",
    "sync_token",
    "content_hash",
    "pending_hash",
    "rejected_hash",
    "txn_date",
    "hours",
    "rate",
    "amount",
    "currency_code",
    "requestid",
    "attempts",
    "error_code",
    "error_message",
    "first_sent_at",
    "acknowledged_at",
    "last_acknowledged_at",
    "rejected_at",
    "deleted_at",
    "updated_at",
    "last_run_id",
)
AUDIT_COLUMNS = (
    "run_id",
    "realm_id",
    "requestid",
    "line_key",
    "operation",
    "method",
    "path",
    "payload",
    "status",
    "erp_id",
    "erp_sync_token",
    "error_code",
    "error",
    "attempt",
    "sent_at",
    "received_at",
    "duration_ms",
)
RUN_COUNTERS = (
    "lines_in_plan",
    "creates_planned",
    "updates_planned",
    "deletes_planned",
    "lines_held",
    "lines_skipped",
    "requests_sent",
    "lines_acknowledged",
    "lines_rejected",
    "lines_deleted",
    "lines_invoiced_untouched",
    "lines_dead_letter",
    "transport_failures",
    "lines_vanished",
    "erp_duplicates",
    "lines_adopted",
    "erp_records_read",
)
# Counters added after the first release: an older ledger gets the columns on open.
ADDED_RUN_COLUMNS = ("lines_vanished", "erp_duplicates", "lines_adopted", "erp_records_read")
# Snapshot columns and their warehouse types (stg_ledger__* read these).
SNAPSHOT_LINES = {
    "line_key": "varchar",
    "line_kind": "varchar",
    "erp_entity": "varchar",
    "realm_id": "varchar",
    "time_entry_id": "bigint",
    "milestone_id": "varchar",
    "state": "varchar",
    "operation": "varchar",
    "erp_id": "varchar",
    "sync_token": "varchar",
    "content_hash": "varchar",
    "txn_date": "date",
    "hours": "decimal(12,4)",
    "rate": "decimal(18,4)",
    "amount": "decimal(24,8)",
    "currency_code": "varchar",
    "requestid": "varchar",
    "attempts": "integer",
    "error_code": "varchar",
    "error_message": "varchar",
    "first_sent_at": "timestamp",
    "acknowledged_at": "timestamp",
    "last_acknowledged_at": "timestamp",
    "rejected_at": "timestamp",
    "deleted_at": "timestamp",
    "updated_at": "timestamp",
    "last_run_id": "varchar",
}
SNAPSHOT_RUNS = {
    "run_id": "varchar",
    "started_at": "timestamp",
    "finished_at": "timestamp",
    "status": "varchar",
    "is_dry_run": "boolean",
    "is_retry_rejected": "boolean",
    "warehouse_run_id": "varchar",
    **{name: "integer" for name in RUN_COUNTERS},
    "realms_failed": "varchar",
    "message": "varchar",
    "duration_s": "double",
}


def now() -> str:
    """UTC now as ISO text with microseconds (sorts as text)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass
class Line:
    """A ledger row as a plain record."""

    line_key: str
    line_kind: str
    erp_entity: str
    realm_id: str
    state: str
    time_entry_id: int | None = None
    milestone_id: str | None = None
    operation: str | None = None
    erp_id: str | None = None
    sync_token: str | None = None
    content_hash: str | None = None
    pending_hash: str | None = None
    rejected_hash: str | None = None
    requestid: str | None = None
    attempts: int = 0
    error_code: str | None = None
    error_message: str | None = None
    txn_date: str | None = None
    hours: str | None = None
    amount: str | None = None
    currency_code: str | None = None


class LedgerError(RuntimeError):
    """The ledger file cannot be used; the message names it, says what is wrong and what to do."""


def unreadable(path: Path, err: Exception) -> LedgerError:
    return LedgerError(
        f"the ledger {path} is not a usable SQLite ledger ({err}); it was left untouched. Restore it "
        "from a backup, or move it aside (keep it for the record) and re-run: the sync then starts a "
        "new ledger from what the ERP holds"
    )


class Ledger:
    """The ledger file; thread-safe (one connection, writes serialised by a lock)."""

    def __init__(self, path: Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.RLock()
        self.is_new = not self.path.exists() or self.path.stat().st_size == 0
        try:
            self.conn = sqlite3.connect(self.path, timeout=60, isolation_level=None, check_same_thread=False)
            self.conn.execute("PRAGMA journal_mode=WAL")
            self.conn.execute("PRAGMA synchronous=FULL")  # a committed state survives a power cut
            self.conn.executescript(SCHEMA)
            columns = {row[1] for row in self.conn.execute("PRAGMA table_info(sync_runs)")}
            for name in ADDED_RUN_COLUMNS:
                if name not in columns:
                    self.conn.execute(f"ALTER TABLE sync_runs ADD COLUMN {name} INTEGER")
            # A random id per ledger: requestids derive from it, so a new ledger (the old one
            # lost) never reuses a requestid the ERP would answer with an old, replayed answer.
            self.conn.execute(
                "INSERT OR IGNORE INTO ledger_meta (key, value) VALUES ('ledger_id', ?)",
                (secrets.token_hex(8),),
            )
            self.ledger_id = self.conn.execute(
                "SELECT value FROM ledger_meta WHERE key = 'ledger_id'"
            ).fetchone()[0]
            self.conn.execute("SELECT count(*) FROM lines").fetchone()
        except sqlite3.DatabaseError as err:
            raise unreadable(self.path, err) from err

    def close(self) -> None:
        with self._lock:
            self.conn.close()

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: committed on exit, rolled back on error."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    # --- reads --------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        """A value of `ledger_meta` (the ledger's own facts: its id, how far it is reconciled)."""
        row = self.conn.execute("SELECT value FROM ledger_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self.transaction() as conn:
            conn.execute(
                "INSERT INTO ledger_meta (key, value) VALUES (?, ?)"
                " ON CONFLICT (key) DO UPDATE SET value = excluded.value",
                (key, value),
            )

    def lines(self) -> dict[str, Line]:
        with self._lock:
            rows = self.conn.execute(
                "SELECT line_key, line_kind, erp_entity, realm_id, state, time_entry_id, milestone_id,"
                " operation, erp_id, sync_token, content_hash, pending_hash, rejected_hash, requestid,"
                " attempts, error_code, error_message, txn_date, hours, amount, currency_code FROM lines"
            ).fetchall()
        return {row[0]: Line(*row) for row in rows}

    def pending_batches(self) -> list[dict]:
        """Batches written but never answered, oldest first: they are resent before anything new."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT requestid, realm_id, body, items FROM batches WHERE state = 'pending'"
                " ORDER BY created_at"
            ).fetchall()
        return [{"requestid": r[0], "realm_id": r[1], "body": r[2], "items": json.loads(r[3])} for r in rows]

    def count(self, sql: str, args: tuple = ()) -> int:
        with self._lock:
            return int(self.conn.execute(sql, args).fetchone()[0])

    # --- runs ---------------------------------------------------------------------------
    def start_run(
        self, run_id: str, dry_run: bool, retry_rejected: bool, warehouse_run_id: str | None
    ) -> None:
        with self.transaction() as conn:
            # We hold the sync lock, so any run still marked running died without finishing.
            conn.execute(
                "UPDATE sync_runs SET status = 'abandoned', message = coalesce(message, '') || "
                "'the process ended without finishing (killed?); a later run resumed its work' "
                "WHERE status = 'running'"
            )
            conn.execute(
                "INSERT INTO sync_runs (run_id, started_at, status, is_dry_run, is_retry_rejected,"
                " warehouse_run_id, pid) VALUES (?, ?, 'running', ?, ?, ?, ?)",
                (run_id, now(), int(dry_run), int(retry_rejected), warehouse_run_id, os.getpid()),
            )

    def finish_run(
        self,
        run_id: str,
        status: str,
        counters: dict,
        realms_failed: list[str],
        message: str,
        duration_s: float,
    ) -> None:
        sets = ", ".join(f"{name} = ?" for name in RUN_COUNTERS)
        with self.transaction() as conn:
            conn.execute(
                f"UPDATE sync_runs SET finished_at = ?, status = ?, {sets}, realms_failed = ?, message = ?,"
                " duration_s = ? WHERE run_id = ?",
                (
                    now(),
                    status,
                    *[int(counters.get(name, 0)) for name in RUN_COUNTERS],
                    ",".join(realms_failed) or None,
                    message,
                    duration_s,
                    run_id,
                ),
            )

    # --- audit --------------------------------------------------------------------------
    def audit(self, conn: sqlite3.Connection, rows: list[dict]) -> None:
        """Append audit rows inside the caller's transaction."""
        placeholders = ", ".join("?" for _ in AUDIT_COLUMNS)
        conn.executemany(
            f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)}) VALUES ({placeholders})",
            [[row.get(name) for name in AUDIT_COLUMNS] for row in rows],
        )


def export_snapshot(ledger_path: Path, snapshot_path: Path) -> Path:
    """Publish sync_runs and line_states as a DuckDB file by write-then-rename (readers never see a part)."""
    import duckdb
    import pyarrow as pa

    source = sqlite3.connect(f"file:{ledger_path}?mode=ro", uri=True, timeout=60)
    try:
        tables = {}
        for name, sql_table, columns in (
            ("line_states", "lines", SNAPSHOT_LINES),
            ("sync_runs", "sync_runs", SNAPSHOT_RUNS),
        ):
            cursor = source.execute(f"SELECT {', '.join(columns)} FROM {sql_table}")
            rows = cursor.fetchall()
            data = list(zip(*rows, strict=True)) if rows else [[] for _ in columns]
            tables[name] = (
                pa.table(
                    {
                        col: pa.array([None if v is None else str(v) for v in values], pa.string())
                        for col, values in zip(columns, data, strict=True)
                    }
                ),
                columns,
            )
    finally:
        source.close()
    staging = snapshot_path.with_name(snapshot_path.name + ".publishing")
    for leftover in (staging, staging.with_name(staging.name + ".wal")):
        leftover.unlink(missing_ok=True)
    with duckdb.connect(str(staging)) as conn:
        for name, (table, columns) in tables.items():
            conn.register("incoming", table)
            casts = ", ".join(_cast(col, sql_type) for col, sql_type in columns.items())
            conn.execute(f"CREATE TABLE {name} AS SELECT {casts} FROM incoming")
            conn.unregister("incoming")
        conn.execute("CHECKPOINT")
    fd = os.open(staging, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(staging, snapshot_path)
    return snapshot_path


def _cast(column: str, sql_type: str) -> str:
    if sql_type == "timestamp":  # stored as ISO text with a Z: a naive UTC timestamp in the warehouse
        return f"cast(replace(replace({column}, 'T', ' '), 'Z', '') as timestamp) as {column}"
    if sql_type == "boolean":
        return f"cast(cast({column} as integer) as boolean) as {column}"
    return f"cast({column} as {sql_type}) as {column}"
