"""The reverse ETL's state machine on a real SQLite ledger (issue 15).

Every allowed transition of `LINE_TRANSITIONS` is walked from each of its source states through
its ledger method; from every other state the method raises IllegalTransition and leaves the row
as it was. The CHECK constraints refuse a raw UPDATE to a state outside the enums. A ledger an
older release wrote (no CHECK) is upgraded on open with every row kept, and refused (exit 2,
untouched) when it holds a state the enum does not know.
"""

from __future__ import annotations

import re
import sqlite3
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from reverse_etl.ledger import Ledger, LedgerError, LedgerWriter
from reverse_etl.records import Batch, BatchItem, ErpCopy, LineFacts, PlannedLine
from reverse_etl.states import BATCH_TRANSITIONS, LINE_TRANSITIONS, IllegalTransition, LineState
from tests.ingest_helpers import ROOT

SYNC = (sys.executable, "-m", "reverse_etl")
KEY = "time:101"
AT = "2026-12-01T09:00:00.000000Z"
BATCH = Batch("billable-req-1", "R1", '{"BatchItemRequest":[]}', (BatchItem(KEY, "create", "TimeActivity"),))
FACTS = LineFacts("time", "TimeActivity", "R1", 101, None, "2026-11-30", "7.5", "120", "900", "EUR")
COPY = ErpCopy(
    "time", "TimeActivity", "R1", "77", "5", 101, None, "2026-11-30", "7.5000", "120", "900.00000000", "EUR"
)

# One call per transition (the event's ledger method with sample arguments).
CALLS: dict[str, Callable[[LedgerWriter], object]] = {
    "plan": lambda w: w.plan(PlannedLine(KEY, "update", "billable-req-2", 2, "hash-new", FACTS), AT),
    "mark_sent": lambda w: w.mark_sent(BATCH, AT),
    "acknowledge": lambda w: w.acknowledge(KEY, "77", "1", AT),
    "record_replayed_answer": lambda w: w.record_replayed_answer(KEY, "78", "0", "Hours 8 != 7", "replay"),
    "record_stale_token": lambda w: w.record_stale_token(KEY, "5010", "stale SyncToken"),
    "record_billed_refusal": lambda w: w.record_billed_refusal(KEY, "6000", "billed"),
    "record_deleted": lambda w: w.record_deleted(KEY, AT),
    "reject": lambda w: w.reject(KEY, "6210", "the period is closed", AT),
    "dead_letter": lambda w: w.dead_letter(BATCH, "HTTP 503 after 8 attempts"),
    "record_reread": lambda w: w.record_reread(KEY, "6"),
    "record_billed_on_reread": lambda w: w.record_billed_on_reread(KEY, "6"),
    "record_gone_on_reread": lambda w: w.record_gone_on_reread(KEY, "610", "object not found"),
    "record_reread_refused": lambda w: w.record_reread_refused(KEY, "2500", "invalid reference", "hash-new"),
    "mark_invoiced": lambda w: w.mark_invoiced(KEY, AT),
    "drop_rejected": lambda w: w.drop_rejected(KEY, AT),
    "adopt": lambda w: w.adopt(KEY, COPY, "hash-mart", "adopted from the ERP", AT),
    "record_erp_invoiced": lambda w: w.record_erp_invoiced(KEY, COPY, "hash-mart", "invoiced in the ERP", AT),
    "record_missing_from_erp": lambda w: w.record_missing_from_erp(KEY, AT),
    "refresh_sync_token": lambda w: w.refresh_sync_token(KEY, "9", AT),
}
EVERY_STATE: list[LineState | None] = [None, *LineState]


def ledger_with(path: Path, state: LineState | None) -> Ledger:
    """A ledger holding line KEY in `state` (None: not at all), of the pending batch BATCH."""
    ledger = Ledger(path)
    with sqlite3.connect(path) as conn:
        conn.execute(
            "INSERT INTO batches (requestid, realm_id, run_id, created_at, body, items, state)"
            " VALUES (?, 'R1', 'run-0', ?, ?, ?, 'pending')",
            (BATCH.requestid, AT, BATCH.body, BATCH.items_json()),
        )
        if state is not None:
            conn.execute(
                "INSERT INTO lines (line_key, line_kind, erp_entity, realm_id, state, updated_at, requestid,"
                " erp_id, sync_token, content_hash, pending_hash, attempts)"
                " VALUES (?, 'time', 'TimeActivity', 'R1', ?, ?, ?, '77', '4', 'hash-old', 'hash-new', 1)",
                (KEY, state.value, AT, BATCH.requestid),
            )
    return ledger


def line_row(path: Path) -> tuple | None:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT * FROM lines WHERE line_key = ?", (KEY,)).fetchone()


def state_of(path: Path) -> str | None:
    row = line_row(path)
    return None if row is None else row[6]


def test_every_transition_has_a_call_here() -> None:
    assert set(CALLS) == set(LINE_TRANSITIONS)
    assert all(hasattr(LedgerWriter, event) for event in LINE_TRANSITIONS)


@pytest.mark.parametrize(
    ("event", "source"),
    [
        (event, source)
        for event, t in LINE_TRANSITIONS.items()
        for source in EVERY_STATE
        if source in t.sources
    ],
)
def test_allowed_transition_moves_the_line(tmp_path: Path, event: str, source: LineState | None) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = ledger_with(path, source)
    with ledger.writing("run-1") as writer:
        CALLS[event](writer)
    ledger.close()
    assert state_of(path) == LINE_TRANSITIONS[event].target.value


@pytest.mark.parametrize(
    ("event", "source"),
    [
        (event, source)
        for event, t in LINE_TRANSITIONS.items()
        for source in EVERY_STATE
        if source not in t.sources
    ],
)
def test_forbidden_transition_is_refused_and_changes_nothing(
    tmp_path: Path, event: str, source: LineState | None
) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger = ledger_with(path, source)
    before = line_row(path)
    target = LINE_TRANSITIONS[event].target.value
    where = "not in the ledger" if source is None else source.value
    refused = pytest.raises(
        IllegalTransition, match=re.escape(f"line {KEY}: {where} -> {target} is not allowed")
    )
    with refused, ledger.writing("run-1") as writer:
        CALLS[event](writer)
    ledger.close()
    assert line_row(path) == before


def test_the_issue_example_sent_to_planned_is_refused(tmp_path: Path) -> None:
    ledger = ledger_with(tmp_path / "ledger.sqlite", LineState.SENT)
    with pytest.raises(IllegalTransition) as refused, ledger.writing("run-1") as writer:
        CALLS["plan"](writer)
    assert str(refused.value).startswith(f"line {KEY}: sent -> planned is not allowed")


def test_what_the_transitions_record(tmp_path: Path) -> None:
    """The columns the send path sets along the way: requestid first, hashes moved on answers."""
    path = tmp_path / "ledger.sqlite"
    ledger = ledger_with(path, None)
    columns = "state, requestid, attempts, pending_hash, content_hash, rejected_hash, erp_id, first_sent_at"

    def read() -> tuple:
        with sqlite3.connect(path) as conn:
            return conn.execute(f"SELECT {columns} FROM lines").fetchone()

    planned = PlannedLine(KEY, "create", BATCH.requestid, 1, "hash-1", FACTS)
    with ledger.writing("run-1") as writer:
        writer.plan(planned, AT)
    assert read() == ("planned", BATCH.requestid, 1, "hash-1", None, None, None, None)
    with ledger.writing("run-1") as writer:
        writer.mark_sent(BATCH, AT)
    assert read()[0] == "sent" and read()[7] == AT
    with ledger.writing("run-1") as writer:
        writer.reject(KEY, "6210", "closed", AT)
    assert read()[:6] == ("rejected", BATCH.requestid, 1, "hash-1", None, "hash-1")
    retry = Batch("billable-req-2", "R1", "{}", BATCH.items)
    with ledger.writing("run-1") as writer:
        writer.write_batch(retry, AT)
        writer.plan(PlannedLine(KEY, "create", retry.requestid, 2, "hash-2", FACTS), AT)
        writer.mark_sent(retry, AT)
        writer.acknowledge(KEY, "77", "0", AT)
    assert read()[:7] == ("acknowledged", "billable-req-2", 2, None, "hash-2", "hash-1", "77")
    ledger.close()


def test_a_batch_line_that_moved_on_to_another_request_is_left_alone(tmp_path: Path) -> None:
    """Resending an old batch does not touch a line now owned by a newer request (as before)."""
    path = tmp_path / "ledger.sqlite"
    ledger = ledger_with(path, LineState.PLANNED)
    sqlite3.connect(path, isolation_level=None).execute("UPDATE lines SET requestid = 'billable-other'")
    with ledger.writing("run-1") as writer:
        writer.mark_sent(BATCH, AT)
        writer.dead_letter(BATCH, "down")
    assert state_of(path) == "planned"
    ledger.close()


def test_batch_transitions(tmp_path: Path) -> None:
    assert set(BATCH_TRANSITIONS) == {"write_batch", "mark_sent", "record_answer"}
    path = tmp_path / "ledger.sqlite"
    ledger = ledger_with(path, LineState.SENT)

    def batch_state() -> tuple:
        with sqlite3.connect(path) as conn:
            return conn.execute("SELECT state, attempts FROM batches").fetchone()

    with ledger.writing("run-1") as writer:
        writer.write_batch(BATCH, AT)  # written again: kept as is
        writer.mark_sent(BATCH, AT)
    assert batch_state() == ("pending", 1)
    with ledger.writing("run-1") as writer:
        writer.acknowledge(KEY, "77", "0", AT)
        writer.record_answer(BATCH, AT)
    assert batch_state() == ("answered", 1)
    no_lines = Batch(BATCH.requestid, BATCH.realm_id, BATCH.body, ())
    for call in (lambda w: w.record_answer(BATCH, AT), lambda w: w.mark_sent(no_lines, AT)):
        refused = pytest.raises(IllegalTransition, match=re.escape("batch billable-req-1: answered -> "))
        with refused, ledger.writing("run-1") as writer:
            call(writer)
    assert batch_state() == ("answered", 1)
    assert ledger.pending_batches() == []
    ledger.close()


def test_check_constraints_refuse_a_state_outside_the_enum(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    ledger_with(path, LineState.ACKNOWLEDGED).close()
    with sqlite3.connect(path) as conn:
        for sql in (
            "UPDATE lines SET state = 'archived'",
            "UPDATE batches SET state = 'lost'",
            "INSERT INTO lines (line_key, line_kind, erp_entity, realm_id, state, updated_at)"
            " VALUES ('time:9', 'time', 'TimeActivity', 'R1', 'ACKNOWLEDGED', 'now')",
        ):
            with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
                conn.execute(sql)
        conn.execute("UPDATE lines SET state = 'deleted'")  # a raw update within the enum passes the CHECK
    assert state_of(path) == "deleted"


# The schema of the release before issue 15: states were bare strings, no CHECK.
OLD_SCHEMA = """
CREATE TABLE sync_runs (
    run_id TEXT PRIMARY KEY, started_at TEXT NOT NULL, finished_at TEXT, status TEXT NOT NULL,
    is_dry_run INTEGER NOT NULL DEFAULT 0, is_retry_rejected INTEGER NOT NULL DEFAULT 0,
    warehouse_run_id TEXT, lines_in_plan INTEGER, creates_planned INTEGER, updates_planned INTEGER,
    deletes_planned INTEGER, lines_held INTEGER, lines_skipped INTEGER, requests_sent INTEGER,
    lines_acknowledged INTEGER, lines_rejected INTEGER, lines_deleted INTEGER,
    lines_invoiced_untouched INTEGER, lines_dead_letter INTEGER, transport_failures INTEGER,
    realms_failed TEXT, message TEXT, duration_s REAL, pid INTEGER);
CREATE TABLE ledger_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE lines (
    line_key TEXT PRIMARY KEY, line_kind TEXT NOT NULL, erp_entity TEXT NOT NULL,
    realm_id TEXT NOT NULL, time_entry_id INTEGER, milestone_id TEXT, state TEXT NOT NULL,
    operation TEXT, erp_id TEXT, sync_token TEXT, content_hash TEXT, pending_hash TEXT,
    rejected_hash TEXT, txn_date TEXT, hours TEXT, rate TEXT, amount TEXT, currency_code TEXT,
    requestid TEXT, attempts INTEGER NOT NULL DEFAULT 0, error_code TEXT, error_message TEXT,
    first_sent_at TEXT, acknowledged_at TEXT, last_acknowledged_at TEXT, rejected_at TEXT,
    deleted_at TEXT, updated_at TEXT NOT NULL, last_run_id TEXT);
CREATE INDEX lines_state ON lines (state);
CREATE TABLE batches (
    requestid TEXT PRIMARY KEY, realm_id TEXT NOT NULL, run_id TEXT NOT NULL,
    created_at TEXT NOT NULL, body TEXT NOT NULL, items TEXT NOT NULL,
    state TEXT NOT NULL, answered_at TEXT, attempts INTEGER NOT NULL DEFAULT 0);
CREATE INDEX batches_state ON batches (state);
CREATE TABLE audit_log (
    seq INTEGER PRIMARY KEY AUTOINCREMENT, run_id TEXT NOT NULL, realm_id TEXT, requestid TEXT,
    line_key TEXT, operation TEXT, method TEXT, path TEXT, payload TEXT, status INTEGER,
    erp_id TEXT, erp_sync_token TEXT, error_code TEXT, error TEXT, attempt INTEGER,
    sent_at TEXT, received_at TEXT, duration_ms REAL);
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
CREATE TRIGGER audit_log_no_delete BEFORE DELETE ON audit_log
    BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END;
INSERT INTO ledger_meta VALUES ('ledger_id', 'old0ledger0id00');
INSERT INTO sync_runs (run_id, started_at, status) VALUES ('run-old', '2026-11-01T00:00:00Z', 'succeeded');
INSERT INTO batches (requestid, realm_id, run_id, created_at, body, items, state, attempts) VALUES
    ('billable-a', 'R1', 'run-old', '2026-11-01T00:00:01Z', '{}',
     '[{"line_key": "time:3", "operation": "create", "entity": "TimeActivity"}]', 'pending', 2),
    ('billable-b', 'R1', 'run-old', '2026-11-01T00:00:00Z', '{}', '[]', 'answered', 1);
INSERT INTO audit_log (run_id, line_key, status) VALUES ('run-old', 'time:1', 200);
"""


def old_ledger(path: Path, states: list[str]) -> sqlite3.Connection:
    conn = sqlite3.connect(path, isolation_level=None)
    conn.executescript(OLD_SCHEMA)
    for number, state in enumerate(states, 1):
        conn.execute(
            "INSERT INTO lines (line_key, line_kind, erp_entity, realm_id, state, erp_id, hours, attempts,"
            " error_message, updated_at) VALUES (?, 'time', 'TimeActivity', 'R1', ?, ?, '7.2500', ?, ?, ?)",
            (f"time:{number}", state, str(number * 10), number, f"note {number}", AT),
        )
    return conn


def dump(path: Path) -> dict[str, list]:
    with sqlite3.connect(path) as conn:
        return {
            table: conn.execute(f"SELECT * FROM {table} ORDER BY 1").fetchall()
            for table in ("lines", "batches", "audit_log", "ledger_meta")
        }


def table_sql(path: Path, table: str) -> str:
    with sqlite3.connect(path) as conn:
        return conn.execute("SELECT sql FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]


def test_an_old_ledger_is_upgraded_on_open_with_every_row_kept(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    old_ledger(path, [state.value for state in LineState]).close()
    before = dump(path)
    assert "CHECK" not in table_sql(path, "lines")

    ledger = Ledger(path)
    assert ledger.ledger_id == "old0ledger0id00"
    assert {line.state for line in ledger.lines().values()} == set(LineState)
    assert [b.requestid for b in ledger.pending_batches()] == ["billable-a"]
    assert ledger.pending_batches()[0].items == (BatchItem("time:3", "create", "TimeActivity"),)
    ledger.close()

    assert dump(path) == before
    assert "CHECK (state IN ('planned'" in table_sql(path, "lines")
    assert "CHECK (state IN ('pending', 'answered'))" in table_sql(path, "batches")
    with sqlite3.connect(path) as conn:
        names = {row[0] for row in conn.execute("SELECT name FROM sqlite_master")}
        assert {"lines_state", "batches_state", "audit_log_no_update", "audit_log_no_delete"} <= names
        assert not any(name.endswith("_upgrading") for name in names)
        with pytest.raises(sqlite3.IntegrityError, match="CHECK constraint failed"):
            conn.execute("UPDATE lines SET state = 'limbo' WHERE line_key = 'time:1'")
        with pytest.raises(sqlite3.IntegrityError, match="append-only"):
            conn.execute("DELETE FROM audit_log")
        # the sync_runs counters added by later releases are there too
        columns = {row[1] for row in conn.execute("PRAGMA table_info(sync_runs)")}
        assert {"lines_vanished", "erp_records_read"} <= columns

    Ledger(path).close()  # opening it again changes nothing
    assert dump(path) == before


def test_an_old_ledger_with_an_unknown_state_is_refused_and_left_untouched(tmp_path: Path) -> None:
    path = tmp_path / "ledger.sqlite"
    old_ledger(path, ["acknowledged", "archived", "archived", "sent"]).close()
    before, lines_sql, runs_sql = dump(path), table_sql(path, "lines"), table_sql(path, "sync_runs")

    with pytest.raises(LedgerError, match=r"'archived' \(2 row\(s\)\)") as refused:
        Ledger(path)
    assert str(path) in str(refused.value) and "left untouched" in str(refused.value)
    assert dump(path) == before and table_sql(path, "lines") == lines_sql
    assert table_sql(path, "sync_runs") == runs_sql

    # The sync stops on it with one line and exit 2 (before reading anything else).
    result = subprocess.run(
        [*SYNC, "--warehouse", str(tmp_path / "warehouse.duckdb"), "--ledger", str(path), "--dry-run"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    refusal = [line for line in result.stderr.splitlines() if "cannot be upgraded" in line]
    assert len(refusal) == 1 and "'archived'" in refusal[0], result.stderr
    assert dump(path) == before and table_sql(path, "lines") == lines_sql


def test_the_documented_transition_table_is_the_code() -> None:
    """docs/reverse_etl.md's table of line transitions: the same events, sources and targets."""
    text = (ROOT / "docs" / "reverse_etl.md").read_text()
    documented = {}
    for event, sources, target in re.findall(r"^\| `(\w+)` \| ([^|]+) \| (\w+) \|", text, re.MULTILINE):
        names = {name.strip() for name in sources.split(",")}
        documented[event] = (
            {None if name == "(new)" else LineState(name) for name in names},
            LineState(target),
        )
    assert documented == {event: (set(t.sources), t.target) for event, t in LINE_TRANSITIONS.items()}
