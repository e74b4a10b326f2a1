"""Single-object writes beside the batches (`--singles`: a realm with more lines than one window of
batches sends a share alone, on the general request budget): exactly once like the batches. Every line lands
once with the plan's money, a second run sends nothing; kill -9 after an answer and under
commit-then-drop, then a re-run: each unanswered single is resent to the same endpoint with the
same requestid (the ERP replays it), every line once. The split itself: none while one window of
batches holds the realm, and the modelled time with singles beats batches alone.

The client is told a scaled-down batch limit (2 batches in any 2 s) and a high request rate, so
the tiny world's realms get mostly singles and a few batches."""

from __future__ import annotations

import pytest

from billable.sandbox_process import running_sandbox
from reverse_etl.send import SINGLE_PREFIX, batch_seconds, singles_for
from tests.reverse_etl_helpers import (
    assert_exactly_once,
    erp_objects,
    erp_requests,
    fault_log,
    faults,
    last_run,
    ledger_rows,
    make_site,
    ready_lines,
    sync,
)

SPLIT = {  # the client's batch window, scaled down: singles carry most lines
    "REVERSE_ETL__QUICKBOOKS__MAX_BATCHES_PER_WINDOW": "2",
    "REVERSE_ETL__QUICKBOOKS__BATCH_WINDOW_S": "2",
}
ARGS = ("--singles", "--batch-size", "5", "--max-rpm", "3000")


def sent_paths(site) -> dict[str, set[str]]:
    """Each requestid's endpoints over all its attempts (the part of the path before '?')."""
    paths: dict[str, set[str]] = {}
    for requestid, path in ledger_rows(site, "select distinct requestid, path from audit_log"):
        paths.setdefault(requestid, set()).add(path.partition("?")[0])
    return paths


def assert_one_endpoint_each(site) -> None:
    for requestid, endpoints in sent_paths(site).items():
        expected = {"timeactivity"} if requestid.startswith(SINGLE_PREFIX) else {"batch"}
        assert endpoints == expected, (requestid, endpoints)


def test_singles_and_batches_leave_every_line_once(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    with running_sandbox(site.world) as base_url:
        first = sync(base_url, site, *ARGS, **SPLIT)
        assert first.returncode == 0, first.stdout + first.stderr
        assert_exactly_once(site, plan)
        run = last_run(site)
        assert run["status"] == "succeeded" and run["lines_acknowledged"] == len(plan)
        requests = sent_paths(site)
        singles = [rid for rid in requests if rid.startswith(SINGLE_PREFIX)]
        batches = [rid for rid in requests if not rid.startswith(SINGLE_PREFIX)]
        assert len(singles) > len(batches) >= 2, (len(singles), len(batches))
        assert f"and {len(singles)} single-object writes answered" in first.stdout
        assert_one_endpoint_each(site)
        # every request applied once by the ERP; each line's audit row names its request
        assert erp_requests(site.world) == run["requests_sent"] == len(requests)
        assert ledger_rows(site, "select count(*) from audit_log")[0][0] == len(plan)
        applied = erp_requests(site.world)
        second = sync(base_url, site, *ARGS, **SPLIT)
        assert second.returncode == 0, second.stderr
        assert last_run(site)["requests_sent"] == 0 and erp_requests(site.world) == applied
        assert_exactly_once(site, plan)


@pytest.mark.parametrize(
    ("kill_after", "commit_drop"),
    [("12:after", 0.0), ("6:after", 0.4)],
    ids=["after-12th-answer", "commit-then-drop-and-after-6th-answer"],
)
def test_kill_9_with_singles_in_flight_then_rerun_leaves_each_line_once(
    tiny_firm, tmp_path, kill_after, commit_drop
):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    with running_sandbox(site.world) as base_url:
        if commit_drop:
            faults(base_url, commit_drop_rate=commit_drop)
        killed = sync(base_url, site, *ARGS, REVERSE_ETL_TEST_KILL_AFTER=kill_after, **SPLIT)
        assert killed.returncode == -9, killed.stdout + killed.stderr
        unanswered = ledger_rows(
            site,
            "select requestid from batches where state = 'pending' and requestid like ?",
            SINGLE_PREFIX + "%",
        )
        assert unanswered, "the kill should leave singles unanswered"
        assert erp_objects(site.world), "the ERP committed writes before the kill"
        rerun = sync(base_url, site, *ARGS, **SPLIT)
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert "left unanswered (same requestids)" in rerun.stdout
        assert_exactly_once(site, plan)
        assert_one_endpoint_each(site)  # a resent single went to the single endpoint again
        resent = {rid for (rid,) in unanswered}
        answered = {
            rid for (rid,) in ledger_rows(site, "select requestid from batches where state = 'answered'")
        }
        assert resent <= answered
        assert ledger_rows(site, "select count(*) from batches where state = 'pending'")[0][0] == 0
        if commit_drop:
            assert any(entry["fault"] == "commit_then_drop" for entry in fault_log(base_url))
        assert sync(base_url, site, *ARGS, **SPLIT).returncode == 0 and last_run(site)["requests_sent"] == 0


def test_the_split_sends_singles_only_when_batches_alone_take_longer() -> None:
    # QuickBooks' limits with the client's margins: 36 batches in 61 s, 450 requests a minute.
    assert singles_for(1_000, 30, 36, 61.0, 450.0) == 0  # one window of batches holds it
    assert singles_for(36 * 30, 30, 36, 61.0, 450.0) == 0
    assert singles_for(5_000, 30, 0, 61.0, 450.0) == 0  # batch pacing off
    assert singles_for(5_000, 30, 36, 61.0, 0.0) == 0  # request pacing off
    for lines in (5_000, 20_000, 60_000):
        singles = singles_for(lines, 30, 36, 61.0, 450.0)
        assert 0 < singles < lines
        batches = -(-(lines - singles) // 30)
        with_singles = max(batch_seconds(batches, 36, 61.0), singles / ((450 - 36 * 60 / 61) / 60))
        alone = batch_seconds(-(-lines // 30), 36, 61.0)
        assert with_singles < alone, (lines, with_singles, alone)
    # 20,000 lines: batches alone wait out 18 windows (1,098 s); with about a quarter alone, less
    singles = singles_for(20_000, 30, 36, 61.0, 450.0)
    assert 0.2 < singles / 20_000 < 0.35, singles
