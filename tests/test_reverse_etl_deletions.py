"""Issue 13, fault 1 (the sync's side): ERP lines are deleted only for a stated reason.

A transient gap upstream (an entry answering 404 once, a partial load) makes rows vanish from
rpt_billable_lines; that used to delete their TimeActivities from the ERP. Now only a
`withdrawn` row with its reason (e.g. the entry confirmed deleted in the time tool) deletes; a row
that is just missing is reported with its hours and money, counted, and left in the ERP. The
dry-run plan shows hours and money for deletes as for creates. Sandbox ERP over HTTP, real CLI.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal

from billable.sandbox_process import running_sandbox
from tests.reverse_etl_helpers import (
    edit_mart,
    erp_copies,
    last_run,
    ledger_rows,
    make_site,
    ready_lines,
    sync,
)


def test_lines_missing_from_the_mart_are_reported_with_hours_and_never_deleted(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    keys = sorted(plan)
    step = len(keys) // 4
    vanished = [keys[step], keys[2 * step], keys[3 * step]]  # spread over the realms
    confirmed = keys[1]
    with running_sandbox(site.world) as base_url:
        first = sync(base_url, site)
        assert first.returncode == 0, first.stdout + first.stderr
        assert set(erp_copies(site.world)) == set(plan)

        # the time tool blinked: three entries are missing from the mart, with no reason given;
        # one entry is confirmed deleted in the time tool: a withdrawn row with its reason
        for key in vanished:
            edit_mart(site, "delete from marts.rpt_billable_lines where line_key = ?", key)
        edit_mart(
            site,
            "update marts.rpt_billable_lines set line_status = 'withdrawn', status_reason = 'deleted in the"
            " time tool (confirmed, detected 2026-09-30)', hours_whole = null, minutes = null, amount = null"
            " where line_key = ?",
            confirmed,
        )

        dry = sync(base_url, site, "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        by_realm: dict[str, list[str]] = defaultdict(list)
        for key in vanished:
            by_realm[plan[key]["realm_id"]].append(key)
        for realm_keys in by_realm.values():
            hours = sum((Decimal(plan[key]["hours"]) for key in realm_keys), Decimal(0))
            assert f"vanished {len(realm_keys):>6,} lines  {hours:>10,.2f} h" in dry.stdout, dry.stdout
        assert "NOT deleted" in dry.stdout
        # the delete shows the hours and the money it removes (what the ERP holds from us)
        row = plan[confirmed]
        money = f"{Decimal(row['amount']):,.2f} {row['currency_code']}"
        delete_line = f"delete   {1:>6,} lines  {Decimal(row['hours']):>10,.2f} h  {money}"
        assert delete_line in dry.stdout, dry.stdout
        assert "deleted in the time tool (confirmed" in dry.stdout
        assert "1 deletes" in dry.stdout and "3 missing from the mart with no reason" in dry.stdout

        second = sync(base_url, site)
        assert second.returncode == 0, second.stdout + second.stderr
        run = last_run(site)
        assert (run["deletes_planned"], run["lines_deleted"], run["lines_vanished"]) == (1, 1, 3)
        assert "missing from the mart with no reason" in run["message"]
        assert all(key in second.stderr for key in vanished)
        held = erp_copies(site.world)
        assert [len(held.get(key, [])) for key in vanished] == [1, 1, 1]  # still in the ERP, once
        assert confirmed not in held
        assert set(held) == set(plan) - {confirmed}
        states = dict(ledger_rows(site, "select line_key, state from lines where line_key <> ''"))
        assert [states[key] for key in vanished] == ["acknowledged"] * 3
        assert states[confirmed] == "deleted"
