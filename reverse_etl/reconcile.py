"""Reconcile: the ERP is the source of truth for what it holds; the ledger is our memory of it.

Before anything is planned, the sync reads what each realm holds (QuickBooks' query API over
HTTP, every TimeActivity, and every Invoice when milestone lines are in play) and finds the lines
it knows by the mark each pushed object carries: a TimeActivity's Description starts with
`harvest:<time entry id>`, a milestone's draft Invoice has PrivateNote `milestone:<story id>`.
Then, per line:

- the ERP holds it and the ledger does not know it (the ledger was lost, restored from an older
  backup, or a kill struck between the ERP's commit and the ledger's write): the ledger adopts the
  ERP object (its Id and SyncToken), so the line is never created a second time; if the ERP's
  content differs from the mart's, the line is updated;
- the ledger says acknowledged, but the ERP's content is not what the ledger believes was sent
  (e.g. a replayed answer to an older request): the line is updated to the mart's content;
- the ERP holds it more than once: reported loudly (no line gets another copy; the run fails so
  a person removes the extra copies in the ERP); the ledger keeps (or adopts) one of them;
- the ledger says acknowledged but the ERP no longer holds it: the ledger records that, and a
  ready line is created again;
- the ERP object has been invoiced (BillableStatus HasBeenBilled): the ledger marks it invoiced.

Reading every object costs as much as the ERP's history, so after the first full read a realm is
read by change: only objects whose `MetaData.LastUpdatedTime` is at or after the ERP's own clock
at the previous read, minus a lookback. That covers everything the ledger can have missed since:
an object a killed run created before its ledger write, one an accountant changed, one invoiced.
What it cannot see is an object deleted in the ERP (QuickBooks' query leaves deleted ones out), so
a full read still runs when the ledger is new or has never been reconciled, and every
`full_reconcile_days` (default 7): then a line acknowledged in the ledger but gone from the ERP is
found and, if still ready, created again.

ERP objects that the warehouse already knows as the ERP's own history (the mart's `is_in_erp`
with the same record) are not adopted: they are the ERP's, not this sync's (as before).
A realm the sync cannot read is not written to in this run (writing blind is what duplicates).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from urllib.parse import quote

from reverse_etl.client import QuickBooksClient, TransportError
from reverse_etl.ledger import Ledger, LedgerWriter, Line, now
from reverse_etl.plan import payload_for
from reverse_etl.records import ErpCopy
from reverse_etl.states import LineState

PAGE = 1000  # QuickBooks' maximum MAXRESULTS
# Objects changed this long before the previous read's ERP clock are read again: a write committed
# while that read was paging, or stamped a little earlier than it landed, is not missed.
LOOKBACK = timedelta(minutes=10)
FULL_RECONCILE_DAYS = 7.0


@dataclass
class Reconciliation:
    realms_read: list[str] = field(default_factory=list)
    realms_failed: dict[str, str] = field(default_factory=dict)
    records_read: int = 0
    adopted: list[str] = field(default_factory=list)  # lines the ledger learnt from the ERP
    drifted: list[tuple[str, str]] = field(default_factory=list)  # (line, fields) ERP ≠ what we sent
    missing: list[str] = field(default_factory=list)  # acknowledged in the ledger, absent in the ERP
    invoiced: list[str] = field(default_factory=list)
    duplicates: dict[str, list[str]] = field(default_factory=dict)  # line → "realm:Id" of each copy
    changed_since: dict[str, str] = field(default_factory=dict)  # realm → read by change from (ERP time)

    def describe(self) -> str:
        full, by_change = len(self.realms_read) - len(self.changed_since), len(self.changed_since)
        how = f"{full} read in full, {by_change} by change" if by_change else "read in full"
        parts = [f"{self.records_read:,} ERP records read in {len(self.realms_read)} realm(s) ({how})"]
        for label, items in (
            ("adopted from the ERP (the ledger did not know them)", self.adopted),
            ("differ in the ERP from what the ledger recorded (to update)", self.drifted),
            ("acknowledged in the ledger but gone from the ERP", self.missing),
            ("invoiced in the ERP meanwhile", self.invoiced),
        ):
            if items:
                parts.append(f"{len(items):,} {label}")
        return "; ".join(parts)


def line_key_of(entity: str, record: dict) -> str | None:
    """The line a pushed ERP object carries: `harvest:<id>` first in a TimeActivity's Description,
    `milestone:<id>` as an Invoice's PrivateNote."""
    if entity == "TimeActivity":
        first = str(record.get("Description") or "").split(" ", 1)[0]
        if first.startswith("harvest:") and first[8:].isdigit():
            return "time:" + first[8:]
        return None
    note = str(record.get("PrivateNote") or "").strip()
    return note if note.startswith("milestone:") and len(note) > 10 else None


def read_pages(
    client: QuickBooksClient, realm: str, entity: str, since: datetime | None = None
) -> Iterator[tuple[list[dict], datetime | None]]:
    """Every object of `entity` the realm holds now (changed at or after `since`, when given), one
    page at a time, each with the ERP's clock when the read began (its answers' `time`): a caller
    that keeps only the records it needs holds one page (1,000 objects), not the realm's history.
    Raises TransportError."""
    start = 1
    began: datetime | None = None
    where = f" WHERE MetaData.LastUpdatedTime >= '{since.strftime('%Y-%m-%dT%H:%M:%SZ')}'" if since else ""
    while True:
        sql = f"SELECT * FROM {entity}{where} STARTPOSITION {start} MAXRESULTS {PAGE}"
        answer = client.request(realm, "GET", f"query?query={quote(sql)}", count_as="read")
        body = answer.body if isinstance(answer.body, dict) else {}
        if answer.status != 200 or "QueryResponse" not in body:
            fault = (body.get("Fault") or {}).get("Error") or [{}]
            detail = fault[0].get("Detail") or fault[0].get("Message") or str(body)[:200]
            raise TransportError(f"reading {entity} in realm {realm}: HTTP {answer.status}: {detail}")
        began = began or erp_clock(body)
        page = body["QueryResponse"].get(entity) or []
        yield page, began
        if len(page) < PAGE:
            return
        start += len(page)


def erp_clock(body: dict) -> datetime | None:
    """The ERP's clock as an answer states it (`time`), in UTC; None when absent or unreadable."""
    try:
        return datetime.fromisoformat(str(body["time"]).replace("Z", "+00:00")).astimezone(UTC)
    except (KeyError, ValueError):
        return None


def read_from(ledger: Ledger, realm: str, full_every: timedelta) -> datetime | None:
    """Where this run reads `realm` from: None for a full read (never reconciled, or the last full
    read is older than `full_every`), else the previous read's ERP clock minus the lookback."""
    through, full_at = ledger.meta(f"reconciled_through:{realm}"), ledger.meta(f"full_read_at:{realm}")
    if through is None or full_at is None:
        return None
    if datetime.now(UTC) - datetime.fromisoformat(full_at) >= full_every:
        return None
    return datetime.fromisoformat(through) - LOOKBACK


def differences(record: dict, row: dict) -> list[str]:
    """Fields where the ERP's object differs from what the mart row would send (TimeActivity)."""
    wanted = payload_for(row)
    diffs = []
    for name in ("TxnDate", "Hours", "Minutes", "Description"):
        if str(record.get(name) if record.get(name) is not None else 0 if name == "Minutes" else "") != str(
            wanted.get(name)
        ):
            diffs.append(name)
    if _decimal(record.get("HourlyRate")) != _decimal(wanted.get("HourlyRate")):
        diffs.append("HourlyRate")
    for ref in ("CustomerRef", "EmployeeRef", "ItemRef"):
        if str((record.get(ref) or {}).get("value")) != str(wanted[ref]["value"]):
            diffs.append(ref)
    return diffs


def _decimal(value: object) -> Decimal | None:
    try:
        return Decimal(str(value)).normalize()
    except ArithmeticError:  # anything unreadable simply differs
        return None


def reconcile(
    ledger: Ledger,
    client: QuickBooksClient,
    rows: list[dict],
    run_id: str,
    full_every: timedelta = timedelta(days=FULL_RECONCILE_DAYS),
) -> Reconciliation:
    """Read what the ERP holds for the plan's realms (in full, or what changed since the last read)
    and bring the ledger in line with it."""
    result = Reconciliation()
    lines = ledger.lines()
    by_key = {
        row["line_key"]: row for row in rows if row.get("line_kind") and row["line_status"] != "invoiced"
    }
    realms: dict[str, set[str]] = {}
    for row in by_key.values():
        if row.get("realm_id"):
            realms.setdefault(row["realm_id"], set()).add(row["erp_entity"])
    for line in lines.values():
        if line.state in (LineState.ACKNOWLEDGED, LineState.REJECTED, LineState.DELETED):
            realms.setdefault(line.realm_id, set()).add(line.erp_entity)
    for realm, entities in sorted(realms.items()):
        index: dict[str, list[dict]] = {}
        since = read_from(ledger, realm, full_every)
        began: datetime | None = None
        try:
            for entity in sorted(entities):
                # page by page, keeping only the objects of lines in play: memory stays one page
                # plus those lines, whatever the ERP's history (large: 1.5 M TimeActivities)
                for records, clock in read_pages(client, realm, entity, since):
                    began = began or clock
                    result.records_read += len(records)
                    for record in records:
                        key = line_key_of(entity, record)
                        if key is not None and (key in by_key or key in lines):
                            index.setdefault(key, []).append({**record, "_entity": entity})
        except TransportError as err:
            result.realms_failed[realm] = f"cannot read what the ERP holds: {err}"
            continue
        result.realms_read.append(realm)
        if since is not None:
            result.changed_since[realm] = since.isoformat()
        keys = set(index)
        if since is None:  # a full read: a line it does not hold is not in the ERP
            keys |= {k for k, row in by_key.items() if row.get("realm_id") == realm}
            keys |= {k for k, line in lines.items() if line.realm_id == realm}
        with ledger.writing(run_id) as writer:
            for key in sorted(keys):
                _apply(writer, realm, key, index.get(key, []), lines.get(key), by_key.get(key), result)
        if began is not None:  # an ERP that states no clock is read in full every time
            ledger.set_meta(f"reconciled_through:{realm}", began.isoformat())
            if since is None:
                ledger.set_meta(f"full_read_at:{realm}", datetime.now(UTC).isoformat())
    return result


def erp_copy(key: str, realm: str, record: dict, row: dict | None) -> ErpCopy:
    """What the ledger records of an ERP object found for line `key` (hours and money as the ERP
    holds them: whole hours and minutes, minutes × rate)."""
    entity = record["_entity"]
    row = row or {}
    hours = None
    if entity == "TimeActivity":
        hours = str(
            (Decimal(int(record.get("Hours") or 0)) + Decimal(int(record.get("Minutes") or 0)) / 60).quantize(
                Decimal("0.0001")
            )
        )
    amount = record.get("TotalAmt")
    if entity == "TimeActivity" and record.get("HourlyRate") is not None:
        minutes = Decimal(int(record.get("Hours") or 0) * 60 + int(record.get("Minutes") or 0))
        amount = (minutes * Decimal(str(record["HourlyRate"])) / 60).quantize(Decimal("0.00000001"))
    return ErpCopy(
        line_kind="time" if entity == "TimeActivity" else "milestone",
        erp_entity=entity,
        realm_id=realm,
        erp_id=str(record.get("Id")),
        sync_token=str(record.get("SyncToken")),
        time_entry_id=row.get("time_entry_id") or (int(key[5:]) if key.startswith("time:") else None),
        milestone_id=row.get("milestone_id") or (key[10:] if key.startswith("milestone:") else None),
        txn_date=record.get("TxnDate"),
        hours=hours,
        rate=None if record.get("HourlyRate") is None else str(record.get("HourlyRate")),
        amount=None if amount is None else str(amount),
        currency_code=row.get("currency_code"),
    )


def _apply(
    writer: LedgerWriter,
    realm: str,
    key: str,
    records: list[dict],
    line: Line | None,
    row: dict | None,
    result: Reconciliation,
) -> None:
    """Bring line `key` of `realm` in line with `records`, the ERP objects read that carry its mark.
    A read by change holds only what changed, so it calls this only for the lines it read."""
    stamp = now()
    if line is not None and line.state in (LineState.PLANNED, LineState.SENT, LineState.DEAD_LETTER):
        return  # an unanswered request owns the line (resent first, same requestid)
    if line is not None and line.state == LineState.INVOICED:
        return
    if not records:
        if line is not None and line.state == LineState.ACKNOWLEDGED:
            result.missing.append(key)
            writer.record_missing_from_erp(key, stamp)
        return
    if len(records) > 1:
        result.duplicates[key] = [f"{realm}:{r.get('Id')}" for r in records]
    ours = [r for r in records if line is not None and str(r.get("Id")) == line.erp_id]
    known_history = (
        row is not None
        and row.get("is_in_erp")
        and (line is None or line.state == LineState.DELETED)
        and any(f"{realm}:{r.get('Id')}" == row.get("erp_record_key") for r in records)
    )
    if known_history and len(records) == 1:
        return  # the ERP's own record, known to the warehouse: not this sync's (skipped)
    record = (
        ours or sorted(records, key=lambda r: int(str(r.get("Id"))) if str(r.get("Id")).isdigit() else 0)
    )[0]
    entity = record["_entity"]
    if line is not None and line.state == LineState.REJECTED and ours:
        return  # the ERP refused our last change to it: quarantined as it is
    if record.get("BillableStatus") == "HasBeenBilled":
        result.invoiced.append(key)
        writer.record_erp_invoiced(
            key,
            erp_copy(key, realm, record, row),
            line.content_hash if line else None,
            "invoiced in the ERP (BillableStatus HasBeenBilled): never changed",
            stamp,
        )
        return
    diffs = differences(record, row) if (row and entity == "TimeActivity" and _sendable(row)) else []
    if line is None or line.state in (LineState.DELETED, LineState.REJECTED) or not ours:
        # The ledger does not know this ERP object: adopt it (never create a second one).
        result.adopted.append(key)
        content = (row or {}).get("content_hash") if not diffs else "erp-differs:" + ",".join(diffs)
        if row is None or entity != "TimeActivity":
            content = (row or {}).get("content_hash")
        writer.adopt(
            key,
            erp_copy(key, realm, record, row),
            content,
            "adopted from the ERP: the ledger had no record of it",
            stamp,
        )
        if diffs:
            result.drifted.append((key, ",".join(diffs)))
        return
    # The ledger knows it as acknowledged: refresh the SyncToken, and if the ERP does not hold
    # what the ledger believes (the mart's current content), plan an update.
    if diffs and row is not None and line.content_hash == row.get("content_hash"):
        result.drifted.append((key, ",".join(diffs)))
        writer.adopt(
            key,
            erp_copy(key, realm, record, row),
            "erp-differs:" + ",".join(diffs),
            "the ERP holds other content",
            stamp,
        )
    elif str(record.get("SyncToken")) != line.sync_token:
        writer.refresh_sync_token(key, str(record.get("SyncToken")), stamp)


def _sendable(row: dict) -> bool:
    """A mart row complete enough to compare with the ERP (ready lines; held/withdrawn may lack refs)."""
    return row.get("line_status") == "ready" and all(
        row.get(name) is not None
        for name in (
            "erp_customer_id",
            "erp_employee_id",
            "erp_item_id",
            "txn_date",
            "hours_whole",
            "minutes",
            "rate",
        )
    )
