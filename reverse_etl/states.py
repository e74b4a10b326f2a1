"""The reverse ETL's state machines: a line's state, a batch's state, a run's status.

A line of the ledger is always in one `LineState`; it moves only by one of the events of
`LINE_TRANSITIONS`, each from an explicit set of states (None: the ledger does not hold the line
yet) to one state. The ledger (`reverse_etl.ledger.LedgerWriter`) has one method per event, named
as the event, whose UPDATE is guarded by `WHERE state IN (<the event's sources>)`: a line in any
other state raises `IllegalTransition`, and a CHECK constraint refuses any state outside the enum.
docs/reverse_etl.md draws the same table.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum


class LineState(StrEnum):
    """Where a line stands between the warehouse and the ERP."""

    PLANNED = "planned"  # its next operation is written in a pending batch (requestid first)
    SENT = "sent"  # that batch went out; no answer recorded yet
    ACKNOWLEDGED = "acknowledged"  # the ERP holds it (Id and SyncToken known)
    REJECTED = "rejected"  # the ERP refused the last operation: quarantined
    DEAD_LETTER = "dead_letter"  # no answer after every retry: the batch is resent next run
    DELETED = "deleted"  # not in the ERP (deleted by us, or found gone)
    INVOICED = "invoiced"  # the ERP invoiced it: never touched again


class BatchState(StrEnum):
    """A batch request: written before it is sent, answered once."""

    PENDING = "pending"  # written; resent (same requestid) until answered
    ANSWERED = "answered"  # the ERP's answer is recorded for every item


class RunStatus(StrEnum):
    """A sync run (`sync_runs.status`)."""

    RUNNING = "running"
    ABANDONED = "abandoned"  # ended without finishing (killed); a later run resumed its work
    DRY_RUN = "dry_run"
    SUCCEEDED = "succeeded"
    FAILED = "failed"


class Operation(StrEnum):
    """What a batch item asks the ERP to do with a line."""

    CREATE = "create"
    UPDATE = "update"
    DELETE = "delete"


NEW = None  # as a source state: the ledger does not hold the line yet (the event inserts it)


@dataclass(frozen=True)
class Transition:
    """An allowed move: from any of `sources` to `target`, caused by `cause`."""

    sources: frozenset[LineState | None]
    target: LineState
    cause: str


def _t(sources: set[LineState | None], target: LineState, cause: str) -> Transition:
    return Transition(frozenset(sources), target, cause)


S = LineState
# Every move a line makes, by event (the ledger method of the same name). Nothing else writes a
# line's state.
LINE_TRANSITIONS: dict[str, Transition] = {
    # send: requestid first, then the request, then only an answer moves a line on
    "plan": _t(
        {NEW, S.ACKNOWLEDGED, S.REJECTED, S.DELETED},
        S.PLANNED,
        "its next operation (create, update, delete) is written in a batch before anything is sent",
    ),
    "mark_sent": _t(
        {S.PLANNED, S.SENT, S.DEAD_LETTER},
        S.SENT,
        "its batch is sent (a resend keeps the requestid: after a crash, or the next run)",
    ),
    "acknowledge": _t({S.SENT}, S.ACKNOWLEDGED, "answer: the ERP object as sent (Id, SyncToken)"),
    "record_replayed_answer": _t(
        {S.SENT},
        S.ACKNOWLEDGED,
        "answer: an object other than the one sent (a replayed older request): re-read, resent",
    ),
    "record_stale_token": _t(
        {S.SENT},
        S.ACKNOWLEDGED,
        "answer: 5010 stale SyncToken to an update or delete: re-read, resent",
    ),
    "record_billed_refusal": _t(
        {S.SENT}, S.INVOICED, "answer: 6000 to an update or delete, the ERP invoiced it"
    ),
    "record_deleted": _t(
        {S.SENT}, S.DELETED, "answer to a delete: the deleted object, or 610 (already gone)"
    ),
    "reject": _t({S.SENT}, S.REJECTED, "answer: any other fault (6210, 2500, 2020, ...): quarantined"),
    "dead_letter": _t(
        {S.PLANNED, S.SENT, S.DEAD_LETTER},
        S.DEAD_LETTER,
        "no answer after every retry, its realm down, or 401/403: the batch stays pending",
    ),
    # the re-read after a 5010 or a replayed answer
    "record_reread": _t(
        {S.ACKNOWLEDGED}, S.ACKNOWLEDGED, "re-read: the current SyncToken (the operation is planned again)"
    ),
    "record_billed_on_reread": _t({S.ACKNOWLEDGED}, S.INVOICED, "re-read: HasBeenBilled, never changed"),
    "record_gone_on_reread": _t(
        {S.ACKNOWLEDGED},
        S.DELETED,
        "re-read: 610 for a delete, or for the object a replayed answer named (created again)",
    ),
    "record_reread_refused": _t({S.ACKNOWLEDGED}, S.REJECTED, "re-read: any other fault"),
    # the plan's ledger-only changes
    "mark_invoiced": _t({S.ACKNOWLEDGED}, S.INVOICED, "the mart says the ERP invoiced it"),
    "drop_rejected": _t(
        {S.REJECTED}, S.DELETED, "a rejected line never in the ERP is no longer ready: not retried"
    ),
    # reconcile: the ERP is the source of truth
    "adopt": _t(
        {NEW, S.ACKNOWLEDGED, S.REJECTED, S.DELETED},
        S.ACKNOWLEDGED,
        "reconcile: the ERP holds it and the ledger did not know that copy, or the ERP holds other content",
    ),
    "record_erp_invoiced": _t(
        {NEW, S.ACKNOWLEDGED, S.REJECTED, S.DELETED},
        S.INVOICED,
        "reconcile: the ERP's copy is HasBeenBilled",
    ),
    "record_missing_from_erp": _t(
        {S.ACKNOWLEDGED}, S.DELETED, "reconcile: the ERP no longer holds it (created again if ready)"
    ),
    "refresh_sync_token": _t(
        {S.ACKNOWLEDGED}, S.ACKNOWLEDGED, "reconcile: the ERP's copy has another SyncToken"
    ),
}
del S

# A batch: written pending (INSERT, kept if the same requestid is written again), each send counts
# an attempt, its answer moves it to answered.
BATCH_TRANSITIONS: dict[str, tuple[frozenset[BatchState | None], BatchState]] = {
    "write_batch": (frozenset({None}), BatchState.PENDING),
    "mark_sent": (frozenset({BatchState.PENDING}), BatchState.PENDING),
    "record_answer": (frozenset({BatchState.PENDING}), BatchState.ANSWERED),
}


class IllegalTransition(RuntimeError):
    """A ledger write the state machine does not allow (a bug, or a ledger edited by hand)."""

    def __init__(self, kind: str, key: str, current: str | None, target: str, event: str):
        self.key, self.current, self.target, self.event = key, current, target, event
        where = "not in the ledger" if current is None else str(current)
        super().__init__(f"{kind} {key}: {where} -> {target} is not allowed ({event})")


def check_clause(column: str, enum: type[StrEnum]) -> str:
    """The CHECK constraint that keeps `column` within the enum's values."""
    values = ", ".join(f"'{member.value}'" for member in enum)
    return f"CHECK ({column} IN ({values}))"


def sources_sql(sources: frozenset) -> str:
    """The existing-row states of a transition, as an SQL list for `state IN (...)`."""
    return ", ".join(f"'{state.value}'" for state in sorted(s for s in sources if s is not None))
