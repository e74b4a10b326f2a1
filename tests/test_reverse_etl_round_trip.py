"""Round trip: push the approved lines, let the sandbox's clock pass the month-end billing run,
load the ERP back and rebuild the warehouse: the pushed lines show as invoiced in
fct_time_entries at their value, unbilled value falls by exactly that, time to invoice and
posting latency are computed, and the line the ERP refused is an ERP_REJECTED exception."""

from __future__ import annotations

import shutil
from datetime import date
from decimal import Decimal

from billable.sandbox_process import running_sandbox
from tests.ingest_helpers import advance, ingest
from tests.reverse_etl_helpers import edit_mart, make_site, ready_lines, sync
from tests.warehouse_helpers import built, rows

UNBILLED = (
    "select time_entry_id, bill_amount from marts.fct_time_entries "
    "where is_billable and is_approved and not is_invoiced and bill_amount is not null"
)


def test_push_bill_ingest_transform(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    poison = sorted(plan)[-1]
    edit_mart(
        site,
        "update marts.rpt_billable_lines set txn_date = date '2026-08-20', content_hash = 'x' "
        "where line_key = ?",
        poison,
    )
    pushed = {int(key[5:]): row for key, row in plan.items() if key != poison}
    unbilled_before = dict(rows(site.warehouse, UNBILLED))
    raw = shutil.copyfile(tiny_firm.raw_db, tmp_path / "raw.duckdb")
    with running_sandbox(site.world) as base_url:
        result = sync(base_url, site)
        assert result.returncode == 0, result.stdout + result.stderr
        advance(site.world, days=31)  # past the 31 October billing run
        loaded = ingest(base_url, site.world, raw, "erp")
        assert loaded.returncode == 0, loaded.stdout[-3000:] + loaded.stderr[-3000:]
    warehouse = built(raw, site.warehouse.parent)  # reads the ledger snapshot beside it

    facts = {
        entry_id: (invoiced, amount, invoiced_amount, invoice_date)
        for entry_id, invoiced, amount, invoiced_amount, invoice_date in rows(
            warehouse,
            "select time_entry_id, is_invoiced, bill_amount, invoiced_amount, invoice_date "
            "from marts.fct_time_entries where time_entry_id in (select unnest(?))",
            list(pushed),
        )
    }
    assert set(facts) == set(pushed)
    assert all(fact[0] for fact in facts.values()), "every pushed line is invoiced"
    for entry_id, row in pushed.items():
        _, _, invoiced_amount, invoice_date = facts[entry_id]
        assert invoiced_amount == round(Decimal(row["amount"]), 2), entry_id
        assert str(invoice_date) == "2026-10-31"

    # unbilled value of the entries that were unbilled before falls by exactly the pushed lines' value
    unbilled_after = dict(rows(warehouse, UNBILLED))
    still = {k: v for k, v in unbilled_after.items() if k in unbilled_before}
    fallen = sum(unbilled_before.values(), Decimal(0)) - sum(still.values(), Decimal(0))
    assert set(unbilled_before) - set(still) == set(pushed)
    assert fallen == sum((Decimal(row["amount"]) for row in pushed.values()), Decimal(0))

    to_invoice = dict(
        rows(
            warehouse,
            "select time_entry_id, days_worked_to_invoice from marts.rpt_time_to_invoice "
            "where time_entry_id in (select unnest(?))",
            list(pushed),
        )
    )
    assert set(to_invoice) == set(pushed)
    for entry_id, row in pushed.items():
        assert to_invoice[entry_id] == (date(2026, 10, 31) - row["txn_date"]).days

    latency = rows(
        warehouse,
        "select count(*), count(*) filter (where is_posted_by_sync), min(posting_latency_hours) "
        "from marts.rpt_posting_latency where time_entry_id in (select unnest(?))",
        list(pushed),
    )[0]
    assert latency[0] == latency[1] == len(pushed) and latency[2] is not None

    rejected = rows(
        warehouse,
        "select record_id, reason from marts.fct_exceptions where rule_code = 'ERP_REJECTED'",
    )
    assert len(rejected) == 1 and rejected[0][0] == poison and "6210" in rejected[0][1]
    runs = rows(warehouse, "select run_status, lines_acknowledged from staging.stg_ledger__sync_runs")
    assert runs == [("succeeded", len(pushed))]
