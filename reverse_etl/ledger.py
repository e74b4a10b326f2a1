"""The ledger: every billable line's state, every batch sent, every sync run, and the audit log.

One SQLite file (`data/ledger.sqlite`), in WAL mode with synchronous=FULL: each state change is a
committed transaction before the next step happens, so a `kill -9` at any instant leaves a
consistent ledger, and readers (a person with `sqlite3`, the snapshot export) never block the
sync. It lives apart from the warehouse, so rebuilds and full refreshes never touch it.

A line's state changes only through `LedgerWriter` (what `Ledger.writing` yields inside one
transaction): one method per allowed transition of `reverse_etl.states.LINE_TRANSITIONS`, each an
UPDATE guarded by the transition's source states, raising `IllegalTransition` otherwise. A CHECK
constraint keeps `lines.state` and `batches.state` within their enums (`reverse_etl.schema`, which
also upgrades a ledger an older release wrote).

The warehouse cannot read SQLite here (DuckDB's sqlite extension would have to be downloaded),
so after each run `export_snapshot` publishes `sync_runs` and `line_states` as a DuckDB file
(`data/ledger.duckdb`) by write-then-rename; the transform attaches that read-only. On
PostgreSQL the snapshot is schema raw_ledger of the warehouse's database, on Spark Parquet under
data/lake/raw_ledger/ (reverse_etl/ledger_snapshot.py); the ledger stays in SQLite on every engine.

The audit log is append-only: triggers refuse UPDATE and DELETE on it.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from reverse_etl.records import (
    AUDIT_COLUMNS,
    RUN_COUNTERS,
    AuditRow,
    Batch,
    ErpCopy,
    Line,
    PlannedLine,
    RunResult,
)
from reverse_etl.schema import SNAPSHOT_LINES, SNAPSHOT_RUNS, LedgerError, create_or_upgrade
from reverse_etl.states import (
    BATCH_TRANSITIONS,
    LINE_TRANSITIONS,
    BatchState,
    IllegalTransition,
    LineState,
    Operation,
    RunStatus,
    sources_sql,
)

__all__ = ["IllegalTransition", "Ledger", "LedgerError", "LedgerWriter", "Line", "export_snapshot", "now"]


def now() -> str:
    """UTC now as ISO text with microseconds (sorts as text)."""
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


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
            create_or_upgrade(self.conn, self.path)  # LedgerError if an old ledger cannot be upgraded
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
    def _transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: committed on exit, rolled back on error."""
        with self._lock:
            self.conn.execute("BEGIN IMMEDIATE")
            try:
                yield self.conn
            except BaseException:
                self.conn.execute("ROLLBACK")
                raise
            self.conn.execute("COMMIT")

    @contextmanager
    def writing(self, run_id: str) -> Iterator[LedgerWriter]:
        """One atomic set of state changes by run `run_id`: committed on exit, rolled back on error
        (an IllegalTransition included: nothing of the transaction is kept)."""
        with self._transaction() as conn:
            yield LedgerWriter(conn, run_id)

    # --- reads --------------------------------------------------------------------------
    def meta(self, key: str) -> str | None:
        """A value of `ledger_meta` (the ledger's own facts: its id, how far it is reconciled)."""
        row = self.conn.execute("SELECT value FROM ledger_meta WHERE key = ?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        with self._transaction() as conn:
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
        return {row[0]: Line(row[0], row[1], row[2], row[3], LineState(row[4]), *row[5:]) for row in rows}

    def pending_batches(self) -> list[Batch]:
        """Batches written but never answered, oldest first: they are resent before anything new."""
        with self._lock:
            rows = self.conn.execute(
                "SELECT requestid, realm_id, body, items FROM batches WHERE state = ? ORDER BY created_at",
                (BatchState.PENDING.value,),
            ).fetchall()
        return [Batch(r[0], r[1], r[2], Batch.items_from_json(r[3])) for r in rows]

    def count_lines(self, state: LineState) -> int:
        with self._lock:
            return int(
                self.conn.execute("SELECT count(*) FROM lines WHERE state = ?", (state.value,)).fetchone()[0]
            )

    # --- runs ---------------------------------------------------------------------------
    def start_run(
        self, run_id: str, dry_run: bool, retry_rejected: bool, warehouse_run_id: str | None
    ) -> None:
        with self._transaction() as conn:
            # We hold the sync lock, so any run still marked running died without finishing.
            conn.execute(
                "UPDATE sync_runs SET status = ?, message = coalesce(message, '') || "
                "'the process ended without finishing (killed?); a later run resumed its work' "
                "WHERE status = ?",
                (RunStatus.ABANDONED.value, RunStatus.RUNNING.value),
            )
            conn.execute(
                "INSERT INTO sync_runs (run_id, started_at, status, is_dry_run, is_retry_rejected,"
                " warehouse_run_id, pid) VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    run_id,
                    now(),
                    RunStatus.RUNNING.value,
                    int(dry_run),
                    int(retry_rejected),
                    warehouse_run_id,
                    os.getpid(),
                ),
            )

    def finish_run(self, run_id: str, result: RunResult) -> None:
        sets = ", ".join(f"{name} = ?" for name in RUN_COUNTERS)
        with self._transaction() as conn:
            conn.execute(
                f"UPDATE sync_runs SET finished_at = ?, status = ?, {sets}, realms_failed = ?, message = ?,"
                " duration_s = ? WHERE run_id = ?",
                (
                    now(),
                    result.status.value,
                    *[int(getattr(result.counters, name)) for name in RUN_COUNTERS],
                    ",".join(result.realms_failed) or None,
                    result.message,
                    result.duration_s,
                    run_id,
                ),
            )


class LedgerWriter:
    """The ledger's writes inside one transaction: one method per allowed transition of a line
    (`LINE_TRANSITIONS`, same names) or a batch, and the audit log. Each line method's UPDATE is
    guarded by the transition's source states; a line in another state raises IllegalTransition."""

    def __init__(self, conn: sqlite3.Connection, run_id: str):
        self.conn = conn
        self.run_id = run_id

    # --- the machinery ------------------------------------------------------------------
    def _move(self, event: str, key: str, sets: str, args: tuple, requestid: str | None = None) -> bool:
        """Move line `key` by `event`: `state = <target>, <sets>` if its state is one of the event's
        sources (and, with `requestid`, it still belongs to that request: else False, unchanged)."""
        transition = LINE_TRANSITIONS[event]
        guard = f"state IN ({sources_sql(transition.sources)})"
        extra, extra_args = ("", ()) if requestid is None else (" AND requestid = ?", (requestid,))
        cursor = self.conn.execute(
            f"UPDATE lines SET state = ?, {sets} WHERE line_key = ? AND {guard}{extra}",
            (transition.target.value, *args, key, *extra_args),
        )
        if cursor.rowcount == 1:
            return True
        row = self.conn.execute("SELECT state FROM lines WHERE line_key = ?", (key,)).fetchone()
        current = None if row is None else str(row[0])
        if requestid is not None and current in transition.sources:
            return False  # the line has moved on to another request: not this batch's to change
        raise IllegalTransition("line", key, current, transition.target.value, event)

    def _insert_or_move(
        self, event: str, key: str, identity: tuple[str, str, str], sets: str, args: tuple, at: str
    ) -> None:
        """`_move` for an event that may also insert the line (NEW among its sources)."""
        transition = LINE_TRANSITIONS[event]
        assert None in transition.sources, event
        exists = self.conn.execute("SELECT 1 FROM lines WHERE line_key = ?", (key,)).fetchone()
        if exists is None:
            kind, entity, realm = identity
            self.conn.execute(
                "INSERT INTO lines (line_key, line_kind, erp_entity, realm_id, state, updated_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (key, kind, entity, realm, transition.target.value, at),
            )
            self.conn.execute(f"UPDATE lines SET {sets} WHERE line_key = ?", (*args, key))
            return
        self._move(event, key, sets, args)

    def _batch(self, event: str, requestid: str, sets: str, args: tuple) -> None:
        sources, target = BATCH_TRANSITIONS[event]
        cursor = self.conn.execute(
            f"UPDATE batches SET state = ?, {sets} WHERE requestid = ? AND state IN ({sources_sql(sources)})",
            (target.value, *args, requestid),
        )
        if cursor.rowcount != 1:
            row = self.conn.execute("SELECT state FROM batches WHERE requestid = ?", (requestid,)).fetchone()
            raise IllegalTransition("batch", requestid, None if row is None else row[0], target.value, event)

    # --- send: requestid first ----------------------------------------------------------
    def write_batch(self, batch: Batch, at: str) -> None:
        """A new batch, pending (a batch with the same requestid already written is kept as is)."""
        self.conn.execute(
            "INSERT OR IGNORE INTO batches (requestid, realm_id, run_id, created_at, body, items, state)"
            " VALUES (?, ?, ?, ?, ?, ?, ?)",
            (
                batch.requestid,
                batch.realm_id,
                self.run_id,
                at,
                batch.body,
                batch.items_json(),
                BATCH_TRANSITIONS["write_batch"][1].value,
            ),
        )

    def plan(self, planned: PlannedLine, at: str) -> None:
        """The line's next operation, written with its batch (a delete keeps the facts it removes)."""
        facts = planned.facts
        sets = ["operation = ?", "requestid = ?", "attempts = ?", "pending_hash = ?"]
        sets += ["updated_at = ?", "last_run_id = ?"]
        args: list[object] = [planned.operation, planned.requestid, planned.number, planned.pending_hash]
        args += [at, self.run_id]
        keep = planned.operation == Operation.DELETE
        for name, value in vars(facts).items():
            if keep and name not in ("erp_entity", "realm_id"):
                continue
            if value is not None:
                sets.append(f"{name} = ?")
                args.append(value)
        identity = (facts.line_kind or "time", facts.erp_entity, facts.realm_id)
        self._insert_or_move("plan", planned.line_key, identity, ", ".join(sets), tuple(args), at)

    def mark_sent(self, batch: Batch, at: str) -> None:
        """The batch goes out (again): its lines are sent, its attempt counted."""
        for item in batch.items:
            self._move(
                "mark_sent",
                item.line_key,
                "first_sent_at = coalesce(first_sent_at, ?), updated_at = ?, last_run_id = ?",
                (at, at, self.run_id),
                requestid=batch.requestid,
            )
        self._batch("mark_sent", batch.requestid, "attempts = attempts + 1", ())

    def dead_letter(self, batch: Batch, error: str) -> None:
        """No answer: the batch stays pending (resent as is next run); its lines are dead letters."""
        for item in batch.items:
            self._move(
                "dead_letter",
                item.line_key,
                "error_code = 'transport', error_message = ?, updated_at = ?, last_run_id = ?",
                (error[:2000], now(), self.run_id),
                requestid=batch.requestid,
            )

    # --- answers --------------------------------------------------------------------------
    def record_answer(self, batch: Batch, at: str) -> None:
        """The batch's answer is recorded (its lines moved in the same transaction)."""
        self._batch("record_answer", batch.requestid, "answered_at = ?", (at,))

    def acknowledge(self, key: str, erp_id: str, sync_token: str, at: str) -> None:
        self._move(
            "acknowledge",
            key,
            "erp_id = ?, sync_token = ?, content_hash = pending_hash, pending_hash = NULL, error_code = NULL,"
            " error_message = NULL, acknowledged_at = coalesce(acknowledged_at, ?), last_acknowledged_at = ?,"
            " updated_at = ?, last_run_id = ?",
            (erp_id, sync_token, at, at, at, self.run_id),
        )

    def record_replayed_answer(
        self, key: str, erp_id: str, sync_token: str, mismatch: str, error: str
    ) -> None:
        """The answer named an object unlike the one sent: recorded as held, with a content that
        differs from every mart content (so it is updated), and re-read."""
        self._move(
            "record_replayed_answer",
            key,
            "erp_id = ?, sync_token = ?, content_hash = ?, pending_hash = NULL, error_code = 'replay',"
            " error_message = ?, updated_at = ?, last_run_id = ?",
            (erp_id, sync_token, "erp-differs:" + mismatch, error, now(), self.run_id),
        )

    def record_stale_token(self, key: str, code: str, error: str) -> None:
        """5010: the ERP still holds what we last wrote (a crash before the re-read leaves a line the
        next plan picks up again)."""
        self._move(
            "record_stale_token",
            key,
            "pending_hash = NULL, error_code = ?, error_message = ?, updated_at = ?, last_run_id = ?",
            (code, error, now(), self.run_id),
        )

    def record_billed_refusal(self, key: str, code: str, error: str) -> None:
        self._move(
            "record_billed_refusal",
            key,
            "error_code = ?, error_message = ?, pending_hash = NULL, updated_at = ?, last_run_id = ?",
            (code, error, now(), self.run_id),
        )

    def record_deleted(self, key: str, at: str, code: str | None = None, error: str | None = None) -> None:
        """A delete answered: with the deleted object (no fault), or 610 (`code`: it was gone)."""
        if code is None:
            sets = "deleted_at = ?, sync_token = NULL, error_code = NULL, error_message = NULL,"
            sets += " pending_hash = NULL"
            args: tuple = (at,)
        else:
            sets = "deleted_at = ?, error_code = ?, error_message = ?, pending_hash = NULL"
            args = (at, code, error)
        self._move(
            "record_deleted", key, sets + ", updated_at = ?, last_run_id = ?", (*args, now(), self.run_id)
        )

    def reject(self, key: str, code: str, error: str, at: str) -> None:
        self._move(
            "reject",
            key,
            "error_code = ?, error_message = ?, rejected_hash = pending_hash, rejected_at = ?,"
            " updated_at = ?, last_run_id = ?",
            (code, error, at, at, self.run_id),
        )

    # --- the re-read after a 5010 or a replayed answer ------------------------------------
    def record_reread(self, key: str, sync_token: str) -> None:
        self._move(
            "record_reread",
            key,
            "sync_token = ?, updated_at = ?, last_run_id = ?",
            (sync_token, now(), self.run_id),
        )

    def record_billed_on_reread(self, key: str, sync_token: str) -> None:
        self._move(
            "record_billed_on_reread",
            key,
            "sync_token = ?, error_code = '6000',"
            " error_message = 'invoiced in the ERP meanwhile: not changed', updated_at = ?, last_run_id = ?",
            (sync_token, now(), self.run_id),
        )

    def record_gone_on_reread(self, key: str, code: str, error: str, forget_erp_object: bool = False) -> None:
        """610 on the re-read; `forget_erp_object` when the object was one a replayed answer named."""
        forget = "erp_id = NULL, sync_token = NULL, " if forget_erp_object else ""
        stamp = now()
        self._move(
            "record_gone_on_reread",
            key,
            forget + "deleted_at = ?, error_code = ?, error_message = ?, updated_at = ?, last_run_id = ?",
            (stamp, code, error, stamp, self.run_id),
        )

    def record_reread_refused(self, key: str, code: str, error: str, rejected_hash: str | None) -> None:
        stamp = now()
        self._move(
            "record_reread_refused",
            key,
            "error_code = ?, error_message = ?, rejected_hash = ?, rejected_at = ?, updated_at = ?,"
            " last_run_id = ?",
            (code, error, rejected_hash, stamp, stamp, self.run_id),
        )

    # --- the plan's ledger-only changes -----------------------------------------------------
    def mark_invoiced(self, key: str, at: str) -> None:
        self._move("mark_invoiced", key, "updated_at = ?, last_run_id = ?", (at, self.run_id))

    def drop_rejected(self, key: str, at: str) -> None:
        self._move(
            "drop_rejected",
            key,
            "deleted_at = ?, updated_at = ?, last_run_id = ?,"
            " error_message = coalesce(error_message, '') || ' (line no longer ready: not retried)'",
            (at, at, self.run_id),
        )

    # --- reconcile ---------------------------------------------------------------------------
    def _erp_copy(
        self, event: str, key: str, copy: ErpCopy, content_hash: str | None, note: str, at: str
    ) -> None:
        self._insert_or_move(
            event,
            key,
            (copy.line_kind, copy.erp_entity, copy.realm_id),
            "erp_id = ?, sync_token = ?, content_hash = ?, pending_hash = NULL, erp_entity = ?, realm_id = ?,"
            " time_entry_id = coalesce(time_entry_id, ?), milestone_id = coalesce(milestone_id, ?),"
            " txn_date = ?, hours = ?, rate = ?, amount = ?, currency_code = coalesce(?, currency_code),"
            " error_code = 'erp', error_message = ?, acknowledged_at = coalesce(acknowledged_at, ?),"
            " updated_at = ?, last_run_id = ?",
            (
                copy.erp_id,
                copy.sync_token,
                content_hash,
                copy.erp_entity,
                copy.realm_id,
                copy.time_entry_id,
                copy.milestone_id,
                copy.txn_date,
                copy.hours,
                copy.rate,
                copy.amount,
                copy.currency_code,
                note,
                at,
                at,
                self.run_id,
            ),
            at,
        )

    def adopt(self, key: str, copy: ErpCopy, content_hash: str | None, note: str, at: str) -> None:
        """The ERP's copy becomes the ledger's (never created a second time)."""
        self._erp_copy("adopt", key, copy, content_hash, note, at)

    def record_erp_invoiced(
        self, key: str, copy: ErpCopy, content_hash: str | None, note: str, at: str
    ) -> None:
        self._erp_copy("record_erp_invoiced", key, copy, content_hash, note, at)

    def record_missing_from_erp(self, key: str, at: str) -> None:
        self._move(
            "record_missing_from_erp",
            key,
            "deleted_at = ?, error_code = 'erp',"
            " error_message = 'not found in the ERP on reconciliation: created again if ready',"
            " updated_at = ?, last_run_id = ?",
            (at, at, self.run_id),
        )

    def refresh_sync_token(self, key: str, sync_token: str, at: str) -> None:
        self._move("refresh_sync_token", key, "sync_token = ?, updated_at = ?", (sync_token, at))

    # --- audit ----------------------------------------------------------------------------------
    def audit(self, rows: list[AuditRow]) -> None:
        """Append audit rows (in this transaction)."""
        placeholders = ", ".join("?" for _ in AUDIT_COLUMNS)
        self.conn.executemany(
            f"INSERT INTO audit_log ({', '.join(AUDIT_COLUMNS)}) VALUES ({placeholders})",
            [tuple(getattr(row, name) for name in AUDIT_COLUMNS) for row in rows],
        )


def export_snapshot(ledger_path: Path, snapshot_path: Path) -> Path | str:
    """Publish sync_runs and line_states for the warehouse's build to read; readers never see a part.

    DuckDB (the default): a DuckDB file at `snapshot_path` by write-then-rename. PostgreSQL: schema
    raw_ledger, replaced in one transaction. Spark: Parquet under data/lake/raw_ledger/<table>/
    (the lake beside `snapshot_path`), folder by folder swapped in (reverse_etl/ledger_snapshot.py).
    The ledger itself stays in SQLite on every engine. Returns where the snapshot went.
    """
    import duckdb

    from billable.engine import engine_name
    from reverse_etl import ledger_snapshot

    engine = engine_name()
    tables = _snapshot_tables(ledger_path)
    if engine != "duckdb":
        with duckdb.connect() as conn:  # in memory: the same typed tables as the DuckDB snapshot
            _create_snapshot_tables(conn, tables)
            if engine == "postgres":
                return ledger_snapshot.to_postgres(conn, {name: cols for name, (_, cols) in tables.items()})
            return ledger_snapshot.to_parquet(conn, list(tables), snapshot_path.parent / "lake")
    staging = snapshot_path.with_name(snapshot_path.name + ".publishing")
    for leftover in (staging, staging.with_name(staging.name + ".wal")):
        leftover.unlink(missing_ok=True)
    with duckdb.connect(str(staging)) as conn:
        _create_snapshot_tables(conn, tables)
        conn.execute("CHECKPOINT")
    fd = os.open(staging, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(staging, snapshot_path)
    return snapshot_path


def _snapshot_tables(ledger_path: Path) -> dict[str, tuple[Any, dict[str, str]]]:
    """The two tables read from the ledger as Arrow text columns, with their snapshot types."""
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
            data: list[tuple[object, ...]] = list(zip(*rows, strict=True)) if rows else [() for _ in columns]
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
    return tables


def _create_snapshot_tables(conn: Any, tables: dict[str, tuple[Any, dict[str, str]]]) -> None:
    for name, (table, columns) in tables.items():
        conn.register("incoming", table)
        casts = ", ".join(_cast(col, sql_type) for col, sql_type in columns.items())
        conn.execute(f"CREATE TABLE {name} AS SELECT {casts} FROM incoming")
        conn.unregister("incoming")


def _cast(column: str, sql_type: str) -> str:
    if sql_type == "timestamp":  # stored as ISO text with a Z: a naive UTC timestamp in the warehouse
        return f"cast(replace(replace({column}, 'T', ' '), 'Z', '') as timestamp) as {column}"
    if sql_type == "boolean":
        return f"cast(cast({column} as integer) as boolean) as {column}"
    return f"cast({column} as {sql_type}) as {column}"
