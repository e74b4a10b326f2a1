"""The ledger's records as typed values: lines, batches, audit rows, what the ERP holds, run counts."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields

from reverse_etl.states import LineState, RunStatus


@dataclass(frozen=True)
class Line:
    """A ledger row of `lines` as read by the plan and the sender."""

    line_key: str
    line_kind: str
    erp_entity: str
    realm_id: str
    state: LineState
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


@dataclass(frozen=True)
class BatchItem:
    """One item of a batch: the line, the operation, the ERP entity (stored as the batch's `items`)."""

    line_key: str
    operation: str
    entity: str


@dataclass(frozen=True)
class Batch:
    """A batch request exactly as written to the ledger and sent (and resent) byte for byte."""

    requestid: str
    realm_id: str
    body: str
    items: tuple[BatchItem, ...]

    def items_json(self) -> str:
        """`batches.items` (a JSON list of {line_key, operation, entity})."""
        return json.dumps([asdict(item) for item in self.items])

    @staticmethod
    def items_from_json(text: str) -> tuple[BatchItem, ...]:
        return tuple(
            BatchItem(item["line_key"], item["operation"], item["entity"]) for item in json.loads(text)
        )


@dataclass(frozen=True)
class FollowUp:
    """A line to re-read after its answer (5010 stale SyncToken, or an answer that was a replay)."""

    item: BatchItem
    realm_id: str
    replay: bool = False


@dataclass(frozen=True)
class LineFacts:
    """What a planned line carries besides its state (the mart's facts of the line)."""

    line_kind: str | None
    erp_entity: str
    realm_id: str
    time_entry_id: int | None = None
    milestone_id: str | None = None
    txn_date: str | None = None
    hours: str | None = None
    rate: str | None = None
    amount: str | None = None
    currency_code: str | None = None


@dataclass(frozen=True)
class PlannedLine:
    """A line's next operation as written with its batch (before anything is sent)."""

    line_key: str
    operation: str
    requestid: str
    number: int  # the line's operation number (part of the requestid)
    pending_hash: str | None  # the content hash the ERP will hold once acknowledged
    facts: LineFacts


@dataclass(frozen=True)
class ErpCopy:
    """An ERP object reconcile found for a line: what the ledger records of it."""

    line_kind: str
    erp_entity: str
    realm_id: str
    erp_id: str
    sync_token: str
    time_entry_id: int | None
    milestone_id: str | None
    txn_date: str | None
    hours: str | None
    rate: str | None
    amount: str | None
    currency_code: str | None


@dataclass(frozen=True)
class AuditRow:
    """One request item and attempt of the append-only audit log."""

    run_id: str
    realm_id: str
    requestid: str
    line_key: str
    operation: str
    payload: str | None
    status: int | None
    attempt: int
    sent_at: str
    received_at: str
    duration_ms: float | None = None
    erp_id: str | None = None
    erp_sync_token: str | None = None
    error_code: str | None = None
    error: str | None = None
    method: str = "POST"
    path: str | None = None


AUDIT_COLUMNS = tuple(f.name for f in fields(AuditRow))


@dataclass
class RunCounters:
    """A run's counts as `sync_runs` keeps them."""

    lines_in_plan: int = 0
    creates_planned: int = 0
    updates_planned: int = 0
    deletes_planned: int = 0
    lines_held: int = 0
    lines_skipped: int = 0
    requests_sent: int = 0
    lines_acknowledged: int = 0
    lines_rejected: int = 0
    lines_deleted: int = 0
    lines_invoiced_untouched: int = 0
    lines_dead_letter: int = 0
    transport_failures: int = 0
    lines_vanished: int = 0
    erp_duplicates: int = 0
    lines_adopted: int = 0
    erp_records_read: int = 0


RUN_COUNTERS = tuple(f.name for f in fields(RunCounters))


@dataclass(frozen=True)
class RunResult:
    """How a run ended, as `finish_run` records it."""

    status: RunStatus
    counters: RunCounters
    message: str
    duration_s: float
    realms_failed: tuple[str, ...] = field(default=())
