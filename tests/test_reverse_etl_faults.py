"""The ERP misbehaving and the lines changing: 429 storms and 5xx bursts (every line arrives, the
rate stays under the limit), a poison line (closed period, 6210) quarantined while the rest go
through and retried with --retry-rejected, updates and deletes with SyncTokens, a draft milestone
invoice, and never touching a line the ERP has invoiced."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from decimal import Decimal

from billable.sandbox_process import running_sandbox
from tests.ingest_helpers import advance
from tests.reverse_etl_helpers import (
    assert_exactly_once,
    edit_mart,
    erp_objects,
    fault_log,
    faults,
    last_run,
    ledger_rows,
    make_site,
    ready_lines,
    sync,
)


def test_429_storm_and_5xx_bursts_every_line_arrives_under_the_limit(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    limit = {"requests": 12, "window_s": 2, "concurrent": 2}
    with running_sandbox(site.world) as base_url:
        # The server's limit is far below what the client is told it may do: a 429 storm.
        faults(base_url, rate_limit=True, limits={"quickbooks": limit}, error_rate=0.25, drop_rate=0.1)
        result = sync(base_url, site, "--batch-size", "5", "--max-rpm", "6000", "--concurrency", "4")
        assert result.returncode == 0, result.stdout + result.stderr
        assert_exactly_once(site, plan)
        injected = Counter(entry["fault"] for entry in fault_log(base_url))
        assert injected["rate_limit"] + injected["concurrency_limit"] >= 5, injected
        assert injected["server_error"] >= 3 and injected["drop"] >= 1, injected
        run = last_run(site)
        assert run["transport_failures"] >= sum(injected.values()) - injected["concurrency_limit"]
        # answered requests per realm never exceed the server's window (each one got through it)
        answered = ledger_rows(
            site,
            "select realm_id, requestid, min(received_at) from audit_log where status = 200 group by 1, 2",
        )
        for realm in {row[0] for row in answered}:
            moments = sorted(
                datetime.fromisoformat(row[2].rstrip("Z")) for row in answered if row[0] == realm
            )
            for index, moment in enumerate(moments):
                in_window = [m for m in moments[index:] if (m - moment).total_seconds() < limit["window_s"]]
                assert len(in_window) <= limit["requests"], (realm, moment, len(in_window))


def test_poison_line_is_quarantined_the_rest_go_through_and_retry_rejected(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    poison = sorted(plan)[0]
    # The ERP closed August; the warehouse did not know yet when it planned this line.
    edit_mart(
        site,
        "update marts.rpt_billable_lines set txn_date = date '2026-08-14', content_hash = 'poisoned' "
        "where line_key = ?",
        poison,
    )
    with running_sandbox(site.world) as base_url:
        first = sync(base_url, site)
        assert first.returncode == 0, first.stdout + first.stderr  # a business rejection is no crash
        assert "stand rejected by the ERP" in first.stdout
        healthy = {key: row for key, row in plan.items() if key != poison}
        assert_exactly_once(site, healthy)
        state, code, message, attempts = ledger_rows(
            site, "select state, error_code, error_message, attempts from lines where line_key = ?", poison
        )[0]
        assert (state, code, attempts) == ("rejected", "6210", 1)
        assert "closed" in message.lower() and "2026-08-14" in message
        assert last_run(site)["lines_rejected"] == 1

        again = sync(base_url, site)  # unchanged: quarantined, nothing sent
        assert again.returncode == 0 and last_run(site)["requests_sent"] == 0
        retried = sync(base_url, site, "--retry-rejected")
        assert retried.returncode == 0, retried.stderr
        assert last_run(site)["requests_sent"] == 1
        assert ledger_rows(site, "select state, attempts from lines where line_key = ?", poison)[0] == (
            "rejected",
            2,
        )
        # the cause fixed (the line's content changes): the next run retries on its own
        edit_mart(
            site,
            "update marts.rpt_billable_lines set txn_date = ?, content_hash = 'fixed' where line_key = ?",
            plan[poison]["txn_date"],
            poison,
        )
        fixed = sync(base_url, site)
        assert fixed.returncode == 0, fixed.stderr
        assert_exactly_once(site, plan)
        assert ledger_rows(site, "select state from lines where line_key = ?", poison)[0] == ("acknowledged",)
    snapshot_states = _snapshot_states(site)
    assert snapshot_states == {"acknowledged": len(plan)}


def _snapshot_states(site) -> dict:
    import duckdb

    with duckdb.connect(str(site.snapshot), read_only=True) as conn:
        return dict(conn.execute("select state, count(*) from line_states group by state").fetchall())


def test_updates_deletes_draft_invoice_and_never_touching_invoiced_lines(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    keys = sorted(plan)
    changed, withdrawn, vanished, later, deleted = keys[1], keys[2], keys[3], keys[4], keys[5]
    # a completed milestone ready to invoice, in the US realm (its job and item exist there)
    edit_mart(
        site,
        "insert into marts.rpt_billable_lines (line_key, line_kind, erp_entity, line_status, realm_id,"
        " milestone_id, project_id, erp_customer_id, erp_customer_name, erp_item_id, erp_item_name,"
        " txn_date, currency_code, amount, description, private_note, is_in_erp, is_invoiced, content_hash)"
        " values ('milestone:7199999', 'milestone', 'Invoice', 'ready', '9130350000000001', '7199999',"
        " 'P', '2', 'PRJ-00101', '8', 'Fixed Fee - Milestone', date '2026-09-30', 'USD', 12345.67,"
        " 'milestone:7199999 Go-live (PRJ-00101)', 'milestone:7199999', false, false, 'm1')",
    )
    with running_sandbox(site.world) as base_url:
        assert sync(base_url, site).returncode == 0
        invoices = erp_objects(site.world, "Invoice")
        assert [(i["PrivateNote"], i["TotalAmt"]) for i in invoices] == [("milestone:7199999", 12345.67)]

        # hours corrected (and the rate with them), one entry rejected, one deleted in the time tool
        edit_mart(
            site,
            "update marts.rpt_billable_lines set hours_whole = 9, minutes = 15, hours = 9.25,"
            " amount = 9.25 * rate, content_hash = 'changed' where line_key = ?",
            changed,
        )
        edit_mart(
            site,
            "update marts.rpt_billable_lines set line_status = 'withdrawn' where line_key = ?",
            withdrawn,
        )
        edit_mart(
            site,
            "update marts.rpt_billable_lines set line_status = 'withdrawn', status_reason = 'deleted in the"
            " time tool (confirmed)', hours_whole = null, minutes = null, amount = null where line_key = ?",
            deleted,
        )
        # a row that is just missing gives no reason: its ERP line stays (reported, not deleted)
        edit_mart(site, "delete from marts.rpt_billable_lines where line_key = ?", vanished)
        second = sync(base_url, site)
        assert second.returncode == 0, second.stdout + second.stderr
        run = last_run(site)
        realms = {plan[key]["realm_id"] for key in (changed, withdrawn, deleted)}
        assert (run["updates_planned"], run["deletes_planned"], run["requests_sent"]) == (1, 2, len(realms))
        assert run["lines_vanished"] == 1 and vanished in second.stderr
        expected = {k: v for k, v in plan.items() if k not in (withdrawn, deleted)}
        expected[changed] = {**plan[changed], "amount": Decimal("9.25") * plan[changed]["rate"]}
        assert_exactly_once(site, expected)
        record = next(
            r for r in erp_objects(site.world) if r["Description"].startswith("harvest:" + changed[5:])
        )
        assert (record["Hours"], record["Minutes"], record["SyncToken"]) == (9, 15, "1")
        states = dict(
            ledger_rows(
                site,
                "select line_key, state from lines where line_key in (?, ?, ?, ?)",
                changed,
                withdrawn,
                vanished,
                deleted,
            )
        )
        assert states == {
            changed: "acknowledged",
            withdrawn: "deleted",
            vanished: "acknowledged",
            deleted: "deleted",
        }

        # the month-end billing run invoices everything pushed; a later change is never sent to the ERP
        advance(site.world, days=31)
        billed = [r for r in erp_objects(site.world) if r["BillableStatus"] == "HasBeenBilled"]
        assert len(billed) == len(expected)
        before = next(
            r for r in erp_objects(site.world) if r["Description"].startswith("harvest:" + later[5:])
        )
        edit_mart(
            site,
            "update marts.rpt_billable_lines set hours_whole = 11, minutes = 0, hours = 11,"
            " content_hash = 'after-billing' where line_key = ?",
            later,
        )
        third = sync(base_url, site)
        assert third.returncode == 0, third.stdout + third.stderr
        after = next(
            r for r in erp_objects(site.world) if r["Description"].startswith("harvest:" + later[5:])
        )
        assert (after["Hours"], after["Minutes"]) == (before["Hours"], before["Minutes"])
        assert after["SyncToken"] == before["SyncToken"]  # untouched
        state, code = ledger_rows(site, "select state, error_code from lines where line_key = ?", later)[0]
        # seen invoiced when the sync read the ERP before planning ('erp'), or refused by the ERP
        assert state == "invoiced" and code in ("erp", "6000", "5010")
        sent_later = ledger_rows(
            site, "select count(*) from audit_log where line_key = ? and operation = 'update'", later
        )[0][0]
        assert sent_later == 0 or code != "erp"
        assert last_run(site)["lines_invoiced_untouched"] == 1
        assert sync(base_url, site).returncode == 0 and last_run(site)["requests_sent"] == 0
    audit = ledger_rows(site, "select operation, count(*) from audit_log group by 1")
    assert dict(audit)["update"] >= 1 and dict(audit)["delete"] == 2
    payload = ledger_rows(site, "select payload from audit_log where operation = 'update' limit 1")[0][0]
    assert json.loads(payload)["TimeActivity"]["SyncToken"] == "0"


def test_a_realm_that_is_down_does_not_stop_the_others(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    down = sorted({row["realm_id"] for row in plan.values()})[0]
    # this company refuses the connection (unknown to the ERP): every request to it fails
    edit_mart(site, "update marts.rpt_billable_lines set realm_id = 'R-DOWN' where realm_id = ?", down)
    with running_sandbox(site.world) as base_url:
        result = sync(base_url, site)
        assert result.returncode == 1, result.stdout + result.stderr  # a transport failure outlived retries
        assert "realm R-DOWN FAILED" in result.stderr
        others = {key: row for key, row in plan.items() if row["realm_id"] != down}
        assert_exactly_once(site, others)
        run = last_run(site)
        assert run["status"] == "failed" and run["realms_failed"] == "R-DOWN"
        # what the ERP holds there cannot be read, so nothing is written to it blind
        assert "cannot read what the ERP holds" in result.stderr
        assert ledger_rows(site, "select count(*) from lines where realm_id = 'R-DOWN'")[0][0] == 0
        again = sync(base_url, site)  # still down: still nothing sent there, nothing duplicated
        assert again.returncode == 1 and "realm R-DOWN FAILED" in again.stderr
        assert_exactly_once(site, others)
