"""The live ERP's month-end billing runs (`advance` runs them as the clock passes a month's end):
each realm bills the time pushed to it, finalises the draft invoices of the closed period, and
schedules each invoice's payment, fixed by the seed and the invoice, to appear when the clock
reaches its date.
"""

from __future__ import annotations

import calendar
import hashlib
import json
from datetime import UTC, date, datetime, time, timedelta

from sandbox.erp_live import HistoryView, LiveStore, Txn, as_date, us_of
from sandbox.erp_writes import WriteContext, home_currency
from sandbox.world import World


def month_ends(after: datetime, until: datetime) -> list[datetime]:
    """Billing-run instants (the month's last day, 18:00 UTC) in (after, until]."""
    runs: list[datetime] = []
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


def _latest_rows(txn: Txn, realm: str, entity: str, as_of_us: int) -> list[dict]:
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


def _bill(txn: Txn, ctx: WriteContext, seed: int) -> dict:
    run_us = us_of(ctx.clock)
    period_end = ctx.clock.date()
    home = home_currency(ctx)
    result = {"invoices": 0, "time_activities": 0, "finalised": 0, "payments": 0}
    by_customer: dict[str, list[dict]] = {}
    for row in _latest_rows(txn, ctx.realm, "TimeActivity", run_us):
        record = row["record"]
        if record.get("BillableStatus") != "Billable" or not record.get("CustomerRef"):
            continue
        if as_date(record["TxnDate"]) > period_end:
            continue
        by_customer.setdefault(str(record["CustomerRef"]["value"]), []).append(row)
    floor = ctx.history.id_floor(ctx.realm)
    for customer, rows in sorted(by_customer.items()):
        rows.sort(key=lambda row: (row["record"]["TxnDate"], int(row["id"])))
        lines: list[dict] = []
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
        if not row["draft"] or as_date(row["record"]["TxnDate"]) > period_end:
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
    txn: Txn, ctx: WriteContext, seed: int, invoice: dict, token: int, created_us: int
) -> int:
    """Store the invoice's future Payment and the Invoice version with its reduced Balance."""
    total = float(invoice["TotalAmt"])
    if total <= 0:
        return 0
    days, amount = payment_plan(seed, ctx.realm, invoice["Id"], total)
    paid_on = as_date(invoice["TxnDate"]) + timedelta(days=days)
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
