"""The sync under the ERP's batch limit (QuickBooks: 40 /batch calls per minute per realm), with the
sandbox enforcing it: the client's batch window keeps every realm under it (no 429 from it, every
line once); with the window off the sandbox answers 429 and the realm's pause for Retry-After
still gets every line in exactly once. The limit is scaled down (a few batches per 2 s) so the
tiny world needs several windows."""

from __future__ import annotations

import math
from collections import Counter
from datetime import datetime

from billable.sandbox_process import running_sandbox
from tests.reverse_etl_helpers import (
    assert_exactly_once,
    fault_log,
    faults,
    last_run,
    ledger_rows,
    make_site,
    ready_lines,
    sync,
)

SERVER = {"batch_requests": 3, "batch_window_s": 2}  # scaled down: 3 batches in any 2 s per realm


def batch_size_for(plan: dict[str, dict], batches: int) -> int:
    """The batch size that gives the busiest realm about `batches` batch requests."""
    per_realm = Counter(row["realm_id"] for row in plan.values())
    return max(1, min(30, -(-max(per_realm.values()) // batches)))


def densest_batches(site, window_s: float) -> int:
    """The most batch requests one realm sent within any `window_s` (every attempt, by send time)."""
    rows = ledger_rows(
        site, "select distinct realm_id, requestid, attempt, sent_at from audit_log where path like 'batch?%'"
    )
    by_realm: dict[str, list[datetime]] = {}
    for realm, _, _, sent_at in rows:
        by_realm.setdefault(realm, []).append(datetime.fromisoformat(sent_at.rstrip("Z")))
    best = 0
    for moments in by_realm.values():
        moments.sort()
        for index, moment in enumerate(moments):
            best = max(best, sum(1 for m in moments[index:] if (m - moment).total_seconds() < window_s))
    return best


def test_the_sync_paces_batches_under_the_batch_limit_and_never_meets_its_429(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    size = batch_size_for(plan, 10)  # ≈ 10 batches in the busiest realm: 4 windows of 3
    with running_sandbox(site.world) as base_url:
        faults(base_url, rate_limit=True, limits={"quickbooks": SERVER})
        started = datetime.now()
        result = sync(
            base_url,
            site,
            "--batch-size",
            str(size),
            "--concurrency",
            "4",
            REVERSE_ETL__QUICKBOOKS__MAX_BATCHES_PER_WINDOW="3",
            REVERSE_ETL__QUICKBOOKS__BATCH_WINDOW_S="2.3",
        )
        seconds = (datetime.now() - started).total_seconds()
        assert result.returncode == 0, result.stdout + result.stderr
        assert_exactly_once(site, plan)
        injected = Counter(entry["fault"] for entry in fault_log(base_url))
        assert injected["batch_rate_limit"] == 0, injected
    run = last_run(site)
    assert run["transport_failures"] == 0, run
    assert densest_batches(site, SERVER["batch_window_s"]) <= SERVER["batch_requests"]
    busiest = max(Counter(row["realm_id"] for row in plan.values()).values())
    batches = math.ceil(busiest / size)
    windows = math.ceil(batches / 3) - 1  # full windows the busiest realm must wait out
    assert seconds >= windows * 2.3, (seconds, windows)  # the window binds: the test is not vacuous


def test_without_the_client_window_the_erp_throttles_and_every_line_still_arrives_once(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    size = batch_size_for(plan, 10)
    with running_sandbox(site.world) as base_url:
        faults(base_url, rate_limit=True, limits={"quickbooks": SERVER})
        result = sync(
            base_url,
            site,
            "--batch-size",
            str(size),
            "--max-batches",
            "0",
        )
        assert result.returncode == 0, result.stdout + result.stderr
        assert_exactly_once(site, plan)
        injected = Counter(entry["fault"] for entry in fault_log(base_url))
    assert injected["batch_rate_limit"] >= 1, injected  # the ERP answered 429 for the batch limit
    throttled = ledger_rows(site, "select count(*) from audit_log where status = 429")[0][0]
    assert throttled >= 1  # each 429 is in the audit log
    assert last_run(site)["transport_failures"] >= injected["batch_rate_limit"]
