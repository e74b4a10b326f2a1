"""Send: the plan's operations to the ERP in batches, exactly once, recording every step in the ledger.

The exactly-once argument (docs/reverse_etl.md):

1. Before anything is sent, each batch is written to the ledger with its body and a `requestid`
   derived from its realm and its items (line key, operation, the line's operation number), and
   its lines move to `planned`, in one transaction.
2. A batch is resent, byte for byte with the same `requestid`, until it gets an answer: within
   the run on transport failures, and by every later run (pending batches go first) if the
   process dies. QuickBooks applies a `requestid` once per realm and replays the first answer
   for any repeat, so however many times a batch is sent, its writes happen once.
3. Only an answer moves a line on (acknowledged with Id and SyncToken, rejected with the
   ERP's code and message, deleted, or invoiced), and the next operation on a line gets a new
   number, hence a new `requestid`.

Singles (`--singles`, off by default): QuickBooks allows 40 /batch calls a minute per realm but
500 requests, so a realm with more lines than one window of batches carries a share of them as
single-object requests
(`POST /timeactivity?requestid=…`), which QuickBooks replays per `requestid` like batches. A
single is written to the ledger exactly as a batch of one item; its requestid (prefix
`billable-s-`) is what makes every send and resend of it go to the single endpoint, so a resend
is always the same request. Its answer is read as that one item's answer.
"""

from __future__ import annotations

import hashlib
import json
import os
import signal
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from decimal import Decimal

import orjson

from reverse_etl.client import Answer, QuickBooksClient, TransportError, crash_hook
from reverse_etl.ledger import Ledger, now
from reverse_etl.plan import Op, payload_for
from reverse_etl.records import AuditRow, Batch, BatchItem, FollowUp, LineFacts, PlannedLine
from reverse_etl.states import Operation

BATCH_LIMIT = 30  # QuickBooks' maximum items per batch request
SINGLE_PREFIX = "billable-s-"  # the requestid of an operation sent alone, not in a /batch call


@dataclass
class Outcome:
    """What a run did, for the summary and the ledger's sync_runs row (lines by what their answer did)."""

    acknowledged: int = 0
    rejected: int = 0
    deleted: int = 0
    invoiced_untouched: int = 0
    dead_letter: int = 0
    replay_mismatch: int = 0  # answers that were not about what was sent (re-read, resent)
    realms_failed: dict[str, str] = field(default_factory=dict)
    batches_sent: int = 0  # answered write requests, batches and singles
    singles_sent: int = 0  # of which single-object requests


def batch_requestid(
    realm: str, items: list[tuple[str, str, int]], ledger_id: str = "", body: str = ""
) -> str:
    """Derived from the ledger's own random id, the realm, the items (line key, operation, operation
    number) and the exact body. Stored with the batch before it is sent, and resent as stored.

    The ledger id makes it unique to this ledger: a new ledger (the old one lost) restarts the
    operation numbers, and without it would reuse requestids the ERP answers with a replay of an
    old request (the old hours recorded as acknowledged). The body makes a different content a
    different request."""
    parts = [f"{key}\x1f{operation}\x1f{number}" for key, operation, number in items]
    text = ledger_id + "\x1d" + realm + "\x1f" + "\x1e".join(parts) + "\x1d" + body
    return "billable-" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def is_single(batch: Batch) -> bool:
    """Whether the batch is one operation sent alone (its requestid says so, from when it was written)."""
    return batch.requestid.startswith(SINGLE_PREFIX)


def batch_seconds(batches: int, per_window: int, window_s: float) -> float:
    """How long `batches` batch calls take under a window of `per_window` per `window_s`: the
    first window's go at once, each further window's after another `window_s`."""
    return max(0, -(-batches // per_window) - 1) * window_s if batches else 0.0


def singles_for(count: int, size: int, per_window: int, window_s: float, per_minute: float) -> int:
    """How many of a realm's `count` operations to send alone so that the batches (at most
    `per_window` in any `window_s`) and the singles (the rest of `per_minute` requests) end
    soonest; 0 when one window of batches holds them all, or pacing is off."""
    if per_window <= 0 or window_s <= 0 or per_minute <= 0 or count <= per_window * size:
        return 0
    single_rate = (per_minute - per_window * 60.0 / window_s) / 60.0  # singles a second
    if single_rate <= 0:
        return 0
    best, best_seconds = 0, batch_seconds(-(-count // size), per_window, window_s)
    for batches in range(-(-count // size) - 1, -1, -1):
        singles = count - batches * size
        seconds = max(batch_seconds(batches, per_window, window_s), singles / single_rate)
        if seconds < best_seconds:
            best, best_seconds = singles, seconds
    return best


def planned_line(op: Op, requestid: str, number: int) -> PlannedLine:
    """What the ledger records of an operation written with its batch."""
    row = op.row
    facts = LineFacts(
        line_kind=row.get("line_kind"),
        erp_entity=op.entity,
        realm_id=op.realm_id,
        time_entry_id=row.get("time_entry_id"),
        milestone_id=row.get("milestone_id"),
        txn_date=_text(row.get("txn_date")),
        hours=_text(row.get("hours")),
        rate=_text(row.get("rate")),
        amount=_text(row.get("amount")),
        currency_code=row.get("currency_code"),
    )
    return PlannedLine(op.line_key, op.operation, requestid, number, op.content_hash, facts)


class Sender:
    """Writes batches to the ledger, sends them per realm in parallel, and records the answers."""

    def __init__(
        self,
        ledger: Ledger,
        client: QuickBooksClient,
        run_id: str,
        batch_size: int = BATCH_LIMIT,
        singles: bool = False,
    ):
        if not 1 <= batch_size <= BATCH_LIMIT:
            raise ValueError(f"batch size must be 1..{BATCH_LIMIT}, got {batch_size}")
        self.ledger = ledger
        self.client = client
        self.run_id = run_id
        self.batch_size = batch_size
        self.singles = singles  # send a share of a big realm's operations alone (singles_for)
        self.outcome = Outcome()
        self._lock = threading.Lock()
        self._writes = 0
        self._crash = crash_hook()
        self._followups: list[FollowUp] = []

    # --- 1. write batches before sending ---------------------------------------------------
    def persist(self, ops: list[Op]) -> list[Batch]:
        """Group ops by realm into batches, write them and their lines' `planned` state; the batches."""
        attempts = {key: line.attempts for key, line in self.ledger.lines().items()}
        by_realm: dict[str, list[Op]] = {}
        for op in ops:
            by_realm.setdefault(op.realm_id, []).append(op)
        batches = []
        stamp = now()
        settings = self.client.settings
        with self.ledger.writing(self.run_id) as ledger:
            for realm, realm_ops in sorted(by_realm.items()):
                singles = 0
                if self.singles:
                    singles = singles_for(
                        len(realm_ops),
                        self.batch_size,
                        settings.max_batches_per_window,
                        settings.batch_window_s,
                        settings.max_requests_per_minute,
                    )
                split = len(realm_ops) - singles
                chunks = [
                    (realm_ops[i : min(i + self.batch_size, split)], False)
                    for i in range(0, split, self.batch_size)
                ]
                chunks += [([op], True) for op in realm_ops[split:]]
                for chunk, alone in chunks:
                    numbered = [(op.line_key, op.operation, attempts.get(op.line_key, 0) + 1) for op in chunk]
                    body = {
                        "BatchItemRequest": [
                            {"bId": op.line_key, "operation": op.operation, op.entity: op.payload}
                            for op in chunk
                        ]
                    }
                    body_text = json.dumps(body, separators=(",", ":"), sort_keys=True)
                    requestid = batch_requestid(realm, numbered, self.ledger.ledger_id, body_text)
                    if alone:  # sent alone, to the single endpoint (is_single)
                        requestid = SINGLE_PREFIX + requestid.removeprefix("billable-")
                    batch = Batch(
                        requestid=requestid,
                        realm_id=realm,
                        body=body_text,
                        items=tuple(BatchItem(op.line_key, op.operation, op.entity) for op in chunk),
                    )
                    ledger.write_batch(batch, stamp)
                    for op, (_, _, number) in zip(chunk, numbered, strict=True):
                        ledger.plan(planned_line(op, batch.requestid, number), stamp)
                    batches.append(batch)
        return batches

    # --- 2. send, per realm ------------------------------------------------------------------
    def send(self, batches: list[Batch]) -> None:
        by_realm: dict[str, list[Batch]] = {}
        for batch in batches:
            by_realm.setdefault(batch.realm_id, []).append(batch)
        if not by_realm:
            return
        workers = max(1, self.client.settings.concurrency)
        with ThreadPoolExecutor(max_workers=len(by_realm), thread_name_prefix="realm") as realms:
            futures = [
                realms.submit(self._send_realm, realm, realm_batches, workers)
                for realm, realm_batches in by_realm.items()
            ]
            for future in futures:
                future.result()

    def _send_realm(self, realm: str, batches: list[Batch], workers: int) -> None:
        failed = threading.Event()

        def one(batch: Batch) -> None:
            if failed.is_set():  # the realm is down: leave its batches for the next run
                self._dead_letter(batch, self.outcome.realms_failed.get(realm, "realm down"))
                return
            try:
                self._send_batch(batch)
            except TransportError as err:
                with self._lock:
                    self.outcome.realms_failed.setdefault(realm, str(err))
                failed.set()
                self._dead_letter(batch, str(err))

        # Batches and singles in workers of their own: batches waiting for the realm's batch
        # window hold no concurrency slot, and the singles use the request budget meanwhile.
        singles = [batch for batch in batches if is_single(batch)]
        grouped = [batch for batch in batches if not is_single(batch)]
        prefix = f"r{realm[-4:]}"
        with (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix=prefix + "b") as batch_pool,
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix=prefix + "s") as single_pool,
        ):
            futures = [batch_pool.submit(one, batch) for batch in grouped]
            futures += [single_pool.submit(one, batch) for batch in singles]
            for future in futures:
                future.result()

    def _send_batch(self, batch: Batch) -> None:
        with self.ledger.writing(self.run_id) as ledger:
            ledger.mark_sent(batch, now())
        with self._lock:
            self._writes += 1
            number = self._writes
        self._maybe_crash("before", number)
        payloads = {item["bId"]: item for item in orjson.loads(batch.body)["BatchItemRequest"]}
        path, body = f"batch?requestid={batch.requestid}", batch.body.encode()
        if is_single(batch):  # the one item's object to its entity's endpoint, same requestid
            (item,) = batch.items
            path = f"{item.entity.lower()}?requestid={batch.requestid}"
            if item.operation == Operation.DELETE:
                path += "&operation=delete"
            body = json.dumps(
                payloads[item.line_key][item.entity], separators=(",", ":"), sort_keys=True
            ).encode()

        def on_failure(attempt: int, status: int | None, error: str, sent_at: float) -> None:
            failure = AuditRow(
                run_id=self.run_id,
                realm_id=batch.realm_id,
                requestid=batch.requestid,
                line_key="",
                operation="",
                payload=None,
                status=status,
                attempt=attempt,
                sent_at=_iso(sent_at),
                received_at=now(),
                error_code="transport",
                error=error,
                path=path,
            )
            rows = [_for_item(failure, item, payloads) for item in batch.items]
            with self.ledger.writing(self.run_id) as ledger:
                ledger.audit(rows)

        sent_at = now()
        answer = self.client.request(
            batch.realm_id,
            "POST",
            path,
            body,
            on_failure=on_failure,
            after_send=lambda _answer: self._maybe_crash("after", number),
        )
        with self._lock:
            self.outcome.batches_sent += 1
            self.outcome.singles_sent += is_single(batch)
        # the audit's send time is the answered attempt's, after the client's pacing waits
        self._record(batch, answer, payloads, path, _iso(answer.sent_at) if answer.sent_at else sent_at)

    def _maybe_crash(self, phase: str, number: int) -> None:
        """The crash-test hook (client.crash_hook): SIGKILL at the N-th batch, before or after it."""
        if self._crash is not None and self._crash[1] == phase and number >= self._crash[0]:
            os.kill(os.getpid(), signal.SIGKILL)

    # --- 3. answers ------------------------------------------------------------------------------
    def _record(self, batch: Batch, answer: Answer, payloads: dict, path: str, sent_at: str) -> None:
        realm = batch.realm_id
        received = now()
        body = answer.body if isinstance(answer.body, dict) else {}
        results = {}
        if answer.status == 200 and isinstance(body.get("BatchItemResponse"), list):
            results = {str(item.get("bId")): item for item in body["BatchItemResponse"]}
        elif (
            is_single(batch)
            and answer.status not in (401, 403)
            and (batch.items[0].entity in body or "Fault" in body)
        ):  # a single's answer is its one item's: the object, or the ERP's fault for it
            results = {batch.items[0].line_key: body}
        elif answer.status in (401, 403):
            # Not the lines' fault: credentials or realm. Leave the batch pending for the next run.
            message = _fault_text(body) or f"HTTP {answer.status}"
            with self._lock:
                self.outcome.realms_failed.setdefault(realm, message)
            self._dead_letter(batch, f"HTTP {answer.status}: {message}")
            return
        whole_fault = (
            None
            if results
            else (body.get("Fault") or {"Error": [{"code": str(answer.status), "Message": str(body)[:500]}]})
        )
        exchange = AuditRow(
            run_id=self.run_id,
            realm_id=realm,
            requestid=batch.requestid,
            line_key="",
            operation="",
            payload=None,
            status=answer.status,
            attempt=answer.attempts,
            sent_at=sent_at,
            received_at=received,
            duration_ms=answer.elapsed_ms,
            path=path,
        )
        outcome = self.outcome
        audit_rows: list[AuditRow] = []
        followups: list[FollowUp] = []
        with self.ledger.writing(self.run_id) as ledger:
            for item in batch.items:
                key, operation, entity = item.line_key, item.operation, item.entity
                result = results.get(key) or {
                    "Fault": whole_fault
                    or {
                        "Error": [
                            {"code": "missing", "Message": "the batch answer has no item for this line"}
                        ]
                    }
                }
                record = result.get(entity)
                erp_id: str | None = None
                sync_token: str | None = None
                code: str | None = None
                error: str | None = None
                if record is not None:
                    erp_id = str(record.get("Id"))
                    if operation == Operation.DELETE:
                        ledger.record_deleted(key, received)
                        outcome.deleted += 1
                    elif mismatch := _answer_differs(entity, record, (payloads.get(key) or {}).get(entity)):
                        # The answer is not about what we sent (a replay of an older request with
                        # this requestid): not acknowledged. Record the ERP object, re-read it and
                        # send our content as an update.
                        sync_token = str(record.get("SyncToken"))
                        code, error = "replay", f"the ERP's answer does not match what was sent ({mismatch})"
                        ledger.record_replayed_answer(key, erp_id, sync_token, mismatch, error)
                        outcome.replay_mismatch += 1
                        followups.append(
                            FollowUp(replace(item, operation=Operation.UPDATE), realm, replay=True)
                        )
                    else:
                        sync_token = str(record.get("SyncToken"))
                        ledger.acknowledge(key, erp_id, sync_token, received)
                        outcome.acknowledged += 1
                else:
                    code, error = _fault(result.get("Fault"))
                    if code == "5010" and operation in (Operation.UPDATE, Operation.DELETE):
                        # The ERP still holds what we last wrote: back to acknowledged, then re-read.
                        followups.append(FollowUp(item, realm))
                        ledger.record_stale_token(key, code, error)
                    elif code == "6000" and operation in (Operation.UPDATE, Operation.DELETE):
                        ledger.record_billed_refusal(key, code, error)
                        outcome.invoiced_untouched += 1
                    elif code == "610" and operation == Operation.DELETE:
                        ledger.record_deleted(key, received, code, error)
                        outcome.deleted += 1
                    else:
                        ledger.reject(key, code, error, received)
                        outcome.rejected += 1
                audit_rows.append(
                    replace(
                        _for_item(exchange, item, payloads),
                        erp_id=erp_id,
                        erp_sync_token=sync_token,
                        error_code=code,
                        error=error,
                    )
                )
            ledger.record_answer(batch, received)
            ledger.audit(audit_rows)
        if followups:
            with self._lock:
                self._followups.extend(followups)

    def _dead_letter(self, batch: Batch, error: str) -> None:
        """No answer after every retry: the batch stays pending (resent as is next run)."""
        with self.ledger.writing(self.run_id) as ledger:
            ledger.dead_letter(batch, error)
        with self._lock:
            self.outcome.dead_letter += len(batch.items)

    # --- 4. stale SyncTokens ---------------------------------------------------------------------
    def take_followups(self) -> list[FollowUp]:
        with self._lock:
            followups, self._followups = self._followups, []
        return followups

    def refresh(self, followup: FollowUp, row: dict | None) -> Op | None:
        """A 5010 (stale SyncToken): re-read the object; invoiced → never touch; else the op again."""
        key, realm, entity = followup.item.line_key, followup.realm_id, followup.item.entity
        line = self.ledger.lines()[key]
        try:
            answer = self.client.request(realm, "GET", f"{entity.lower()}/{line.erp_id}")
        except TransportError as err:
            with self._lock:
                self.outcome.realms_failed.setdefault(realm, str(err))
            return None
        record = (answer.body or {}).get(entity) if isinstance(answer.body, dict) else None
        with self.ledger.writing(self.run_id) as ledger:
            if answer.status != 200 or record is None:
                body = answer.body if isinstance(answer.body, dict) else {}
                code, error = _fault(body.get("Fault"))
                if code == "610" and followup.replay and row is not None:
                    # The replayed answer named an object the ERP does not hold: the line is not in
                    # the ERP; create it (a new operation number, hence a new requestid).
                    ledger.record_gone_on_reread(
                        key,
                        "replay",
                        f"the replayed answer named {entity} {line.erp_id}, which the ERP "
                        "does not hold: created again",
                        forget_erp_object=True,
                    )
                    return Op(
                        key,
                        realm,
                        Operation.CREATE,
                        entity,
                        payload_for(row),
                        row["content_hash"],
                        row,
                        "replay",
                    )
                if code == "610" and followup.item.operation == Operation.DELETE:
                    ledger.record_gone_on_reread(key, code, error)
                    self.outcome.deleted += 1
                else:
                    ledger.record_reread_refused(key, code, error, row["content_hash"] if row else None)
                    self.outcome.rejected += 1
                return None
            if record.get("BillableStatus") == "HasBeenBilled":
                ledger.record_billed_on_reread(key, str(record.get("SyncToken")))
                self.outcome.invoiced_untouched += 1
                return None
            ledger.record_reread(key, str(record.get("SyncToken")))
        if followup.item.operation == Operation.DELETE:
            payload = {"Id": line.erp_id, "SyncToken": str(record.get("SyncToken"))}
            facts = {"line_kind": line.line_kind}
            return Op(key, realm, Operation.DELETE, entity, payload, None, facts, "retry after 5010")
        if row is None:
            return None
        payload = {**payload_for(row), "Id": line.erp_id, "SyncToken": str(record.get("SyncToken"))}
        return Op(key, realm, Operation.UPDATE, entity, payload, row["content_hash"], row, "retry after 5010")


def _for_item(exchange: AuditRow, item: BatchItem, payloads: dict) -> AuditRow:
    """The exchange's audit row for one item (its line, operation and the exact object sent)."""
    payload = payloads.get(item.line_key)
    text = json.dumps(payload, separators=(",", ":")) if payload is not None else None
    return replace(exchange, line_key=item.line_key, operation=item.operation, payload=text)


def _answer_differs(entity: str, record: dict, sent: dict | None) -> str:
    """The fields where an answered TimeActivity differs from the one sent ('' when it matches)."""
    if entity != "TimeActivity" or not sent:
        return ""
    diffs = []
    for name in ("TxnDate", "Hours", "Minutes"):
        if name in sent and str(record.get(name, 0 if name == "Minutes" else None)) != str(sent[name]):
            diffs.append(f"{name} {record.get(name)} != {sent[name]}")
    if "HourlyRate" in sent:
        try:
            same = Decimal(str(record.get("HourlyRate"))) == Decimal(str(sent["HourlyRate"]))
        except ArithmeticError:
            same = False
        if not same:
            diffs.append(f"HourlyRate {record.get('HourlyRate')} != {sent['HourlyRate']}")
    if "Id" in sent and str(record.get("Id")) != str(sent["Id"]):
        diffs.append(f"Id {record.get('Id')} != {sent['Id']}")
    return "; ".join(diffs)


def _fault(fault: dict | None) -> tuple[str, str]:
    errors = (fault or {}).get("Error") or [{}]
    first = errors[0] if isinstance(errors, list) and errors else {}
    code = str(first.get("code") or "unknown")
    message = " ".join(str(first.get(name)) for name in ("Message", "Detail") if first.get(name))
    return code, message or json.dumps(fault)[:500]


def _fault_text(body: dict) -> str:
    fault = body.get("Fault") if isinstance(body, dict) else None
    return _fault(fault)[1] if fault else ""


def _text(value: object) -> str | None:
    if value is None:
        return None
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return str(value)


def _iso(epoch: float) -> str:
    return datetime.fromtimestamp(epoch, UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
