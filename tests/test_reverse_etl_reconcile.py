"""Reconciling with the ERP costs what changed: a full read first, then reads by change, and a
periodic full read for what a read by change cannot see (an object deleted in the ERP).

Real sync CLI, real sandbox ERP over HTTP, the tiny firm's published warehouse.
"""

from __future__ import annotations

import re

import requests

from billable.sandbox_process import running_sandbox
from tests.reverse_etl_helpers import (
    assert_exactly_once,
    erp_objects,
    ledger_rows,
    make_site,
    ready_lines,
    sync,
)


def records_read(output: str) -> int:
    found = re.search(r"reconciled with the ERP: ([\d,]+) ERP records read", output)
    assert found, output
    return int(found[1].replace(",", ""))


def test_reads_by_change_after_a_full_read_and_a_full_read_finds_what_the_erp_lost(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    with running_sandbox(site.world) as base_url:
        first = sync(base_url, site)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "(read in full)" in first.stdout
        assert_exactly_once(site, plan)

        # The ledger is behind the ERP (a kill between the ERP's commit and the ledger's write, or
        # yesterday's ledger restored): a read by change still sees the object and adopts it.
        behind = sorted(plan)[0]
        assert ledger_rows(site, "delete from lines where line_key = ? returning 1", behind)
        second = sync(base_url, site)
        assert second.returncode == 0, second.stdout + second.stderr
        assert "(0 read in full, 3 by change)" in second.stdout
        assert records_read(second.stdout) < records_read(first.stdout), "a read by change reads less"
        assert "1 adopted from the ERP" in second.stdout
        assert ledger_rows(site, "select state from lines where line_key = ?", behind) == [("acknowledged",)]
        assert_exactly_once(site, plan)

        # Someone deletes a pushed TimeActivity in the ERP. A read by change cannot see a deletion;
        # the next full read does, and the line (still ready) is created again.
        gone = next(r for r in erp_objects(site.world) if r["Description"].startswith("harvest:"))
        key = "time:" + gone["Description"].split()[0].removeprefix("harvest:")
        deleted = requests.post(
            f"{base_url}/v3/company/{gone['_realm']}/timeactivity?operation=delete",
            json={"Id": gone["Id"], "SyncToken": gone["SyncToken"]},
            headers={"Authorization": "Bearer sandbox-token"},
            timeout=10,
        )
        assert deleted.status_code == 200, deleted.text
        by_change = sync(base_url, site)
        assert by_change.returncode == 0 and "(0 read in full, 3 by change)" in by_change.stdout
        assert key not in {
            "time:" + r["Description"].split()[0].removeprefix("harvest:") for r in erp_objects(site.world)
        }
        full = sync(base_url, site, REVERSE_ETL__QUICKBOOKS__FULL_RECONCILE_DAYS="0")
        assert full.returncode == 0, full.stdout + full.stderr
        assert "(read in full)" in full.stdout
        assert "1 acknowledged in the ledger but gone from the ERP" in full.stdout
    assert_exactly_once(site, plan)


def test_a_bad_full_reconcile_setting_is_one_line_naming_it(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    with running_sandbox(site.world) as base_url:
        result = sync(base_url, site, REVERSE_ETL__QUICKBOOKS__FULL_RECONCILE_DAYS="weekly")
    assert result.returncode == 2
    assert "full_reconcile_days must be a number >= 0, got 'weekly'" in result.stderr
    assert "Traceback" not in result.stderr
