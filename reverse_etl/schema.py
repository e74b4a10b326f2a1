"""The ledger's schema, its CHECK constraints, and the upgrade of a ledger an older release wrote.

`data/ledger.sqlite` outlives releases (cleaning `data/` keeps it), so opening a ledger brings its
schema up to this one: missing `sync_runs` counters are added, and tables written before the
states had a CHECK constraint are rebuilt with it in one transaction (SQLite cannot add a CHECK in
place), their rows copied. A row whose state is outside the enum stops that (nothing is changed)
with a `LedgerError` naming the file, the states and what to do.
"""

from __future__ import annotations

import sqlite3
from enum import StrEnum
from pathlib import Path

from reverse_etl.records import RUN_COUNTERS
from reverse_etl.states import BatchState, LineState, check_clause


class LedgerError(RuntimeError):
    """The ledger file cannot be used; the message names it, says what is wrong and what to do."""


LINES_TABLE = f"""CREATE TABLE IF NOT EXISTS {{name}} (
    line_key TEXT PRIMARY KEY, line_kind TEXT NOT NULL, erp_entity TEXT NOT NULL,
    realm_id TEXT NOT NULL, time_entry_id INTEGER, milestone_id TEXT,
    state TEXT NOT NULL {check_clause("state", LineState)},
    operation TEXT, erp_id TEXT, sync_token TEXT, content_hash TEXT, pending_hash TEXT,
    rejected_hash TEXT, txn_date TEXT, hours TEXT, rate TEXT, amount TEXT, currency_code TEXT,
    requestid TEXT, attempts INTEGER NOT NULL DEFAULT 0, error_code TEXT, error_message TEXT,
    first_sent_at TEXT, acknowledged_at TEXT, last_acknowledged_at TEXT, rejected_at TEXT,
    deleted_at TEXT, updated_at TEXT NOT NULL, last_run_id TEXT)"""
BATCHES_TABLE = f"""CREATE TABLE IF NOT EXISTS {{name}} (
    requestid TEXT PRIMARY KEY, realm_id TEXT NOT NULL, run_id TEXT NOT NULL,
    created_at TEXT NOT NULL, body TEXT NOT NULL, items TEXT NOT NULL,
    state TEXT NOT NULL {check_clause("state", BatchState)}, answered_at TEXT,
    attempts INTEGER NOT NULL DEFAULT 0)"""
INDEXES = {
    "lines": "CREATE INDEX IF NOT EXISTS lines_state ON lines (state)",
    "batches": "CREATE INDEX IF NOT EXISTS batches_state ON batches (state)",
}

SCHEMA = f"""
CREATE TABLE IF NOT EXISTS sync_runs (
    run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
    is_dry_run INTEGER NOT NULL DEFAULT 0, is_retry_rejected INTEGER NOT NULL DEFAULT 0,
    warehouse_run_id TEXT, lines_in_plan INTEGER, creates_planned INTEGER, updates_planned INTEGER,
    deletes_planned INTEGER, lines_held INTEGER, lines_skipped INTEGER, requests_sent INTEGER,
    lines_acknowledged INTEGER, lines_rejected INTEGER, lines_deleted INTEGER,
    lines_invoiced_untouched INTEGER, lines_dead_letter INTEGER, transport_failures INTEGER,
    realms_failed TEXT, message TEXT, duration_s REAL, pid INTEGER);
CREATE TABLE IF NOT EXISTS ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
{LINES_TABLE.format(name="lines")};
{INDEXES["lines"]};
{BATCHES_TABLE.format(name="batches")};
{INDEXES["batches"]};
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

# Counters added after the first release: an older ledger gets the columns on open.
ADDED_RUN_COLUMNS = ("lines_vanished", "erp_duplicates", "lines_adopted", "erp_records_read")
# Tables whose `state` has a CHECK since the states became an enum (issue 15): (DDL, enum).
CHECKED_TABLES: dict[str, tuple[str, type[StrEnum]]] = {
    "lines": (LINES_TABLE, LineState),
    "batches": (BATCHES_TABLE, BatchState),
}

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


def create_or_upgrade(conn: sqlite3.Connection, path: Path) -> None:
    """Create the schema in a new ledger, or bring an older ledger's up to it (see the module doc)."""
    conn.executescript(SCHEMA)
    add_state_checks(conn, path)  # first: a ledger it refuses is left as it was
    columns = {row[1] for row in conn.execute("PRAGMA table_info(sync_runs)")}
    for name in ADDED_RUN_COLUMNS:
        if name not in columns:
            conn.execute(f"ALTER TABLE sync_runs ADD COLUMN {name} INTEGER")


def _table_sql(conn: sqlite3.Connection, table: str) -> str:
    row = conn.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = ?", (table,)).fetchone()
    return "" if row is None else str(row[0])


def add_state_checks(conn: sqlite3.Connection, path: Path) -> list[str]:
    """Rebuild the tables whose `state` lacks this release's CHECK, in one transaction; the tables
    rebuilt. Refuses (LedgerError, nothing changed) when a row's state is outside the enum."""
    stale = [
        table
        for table, (_, enum) in CHECKED_TABLES.items()
        if check_clause("state", enum) not in _table_sql(conn, table)
    ]
    if not stale:
        return []
    conn.execute("BEGIN IMMEDIATE")
    try:
        for table in stale:
            ddl, enum = CHECKED_TABLES[table]
            values = ", ".join(f"'{member.value}'" for member in enum)
            bad = conn.execute(
                f"SELECT coalesce(state, 'NULL'), count(*) FROM {table}"
                f" WHERE state IS NULL OR state NOT IN ({values}) GROUP BY 1 ORDER BY 1"
            ).fetchall()
            if bad:
                found = ", ".join(f"{state!r} ({count} row(s))" for state, count in bad)
                raise LedgerError(
                    f"the ledger {path} cannot be upgraded: its table {table} has states this release "
                    f"does not know: {found} (known: {values}); it was left untouched. Fix those rows "
                    "by hand (sqlite3), or restore the ledger from a backup, then re-run"
                )
            new = f"{table}_upgrading"
            conn.execute(f"DROP TABLE IF EXISTS {new}")
            conn.execute(ddl.format(name=new))
            wanted = [row[1] for row in conn.execute(f"PRAGMA table_info({new})")]
            have = {row[1] for row in conn.execute(f"PRAGMA table_info({table})")}
            copied = ", ".join(name for name in wanted if name in have)
            conn.execute(f"INSERT INTO {new} ({copied}) SELECT {copied} FROM {table}")
            conn.execute(f"DROP TABLE {table}")
            conn.execute(f"ALTER TABLE {new} RENAME TO {table}")
            conn.execute(INDEXES[table])
    except BaseException:
        conn.execute("ROLLBACK")
        raise
    conn.execute("COMMIT")
    return stale
