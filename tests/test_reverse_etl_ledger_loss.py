"""Issue 13, fault 4 and 12a: the ERP is the source of truth, the ledger only our memory of it.

The ledger deleted (or lost to `make clean`) and the sync re-run with another batch size, or after
a kill -9 with batches acknowledged, or with the mart a line shorter: the ERP holds every line
once. A line whose ERP copy has old hours while the ledger says acknowledged is updated. An
answer that is a replay of another request (not what was sent) is not taken as acknowledged.
A corrupt ledger is one line naming the file, exit 2, and the file is left as it was.
All against the sandbox ERP over HTTP, with the real sync CLI in a subprocess.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from decimal import Decimal

import requests

from billable.sandbox_process import running_sandbox
from reverse_etl.plan import payload_for
from reverse_etl.send import batch_requestid
from tests.reverse_etl_helpers import (
    assert_exactly_once,
    edit_mart,
    erp_copies,
    last_run,
    ledger_rows,
    lose_ledger,
    make_site,
    ready_lines,
    sync,
    sync_env,
)


def _duplicates(site) -> dict[str, int]:
    return {key: len(copies) for key, copies in erp_copies(site.world).items() if len(copies) > 1}


def test_ledger_lost_then_rerun_with_another_batch_size_and_a_shorter_mart_adds_no_duplicate(
    tiny_firm, tmp_path
):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    with running_sandbox(site.world) as base_url:
        first = sync(base_url, site)
        assert first.returncode == 0, first.stdout + first.stderr
        assert_exactly_once(site, plan)

        lose_ledger(site)
        again = sync(base_url, site, "--batch-size", "7")
        assert again.returncode == 0, again.stdout + again.stderr
        assert _duplicates(site) == {}, "the ERP holds lines twice after the ledger was lost"
        assert_exactly_once(site, plan)
        run = last_run(site)
        assert (run["creates_planned"], run["requests_sent"]) == (0, 0)
        assert run["lines_adopted"] == len(plan)
        states = dict(ledger_rows(site, "select state, count(*) from lines group by state"))
        assert states == {"acknowledged": len(plan)}  # the ledger rebuilt from the ERP

        # lost again, and now the mart is one line shorter (the batches shift): still no duplicate,
        # and the line missing from the mart is left in the ERP (no reason was given to delete it)
        lose_ledger(site)
        shorter = sorted(plan)[len(plan) // 2]
        edit_mart(site, "delete from marts.rpt_billable_lines where line_key = ?", shorter)
        third = sync(base_url, site, "--batch-size", "11")
        assert third.returncode == 0, third.stdout + third.stderr
        assert _duplicates(site) == {}
        assert_exactly_once(site, plan)
        assert last_run(site)["requests_sent"] == 0


def test_kill_9_after_answers_then_ledger_lost_adds_no_duplicate(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    with running_sandbox(site.world) as base_url:
        killed = sync(base_url, site, "--concurrency", "1", REVERSE_ETL_TEST_KILL_AFTER="3:after")
        assert killed.returncode == -9, killed.stdout + killed.stderr
        acknowledged = ledger_rows(site, "select count(*) from lines where state = 'acknowledged'")[0][0]
        in_erp = sum(len(copies) for copies in erp_copies(site.world).values())
        assert acknowledged >= 30 and in_erp > acknowledged  # the 3rd answer never reached the ledger
        lose_ledger(site)
        rerun = sync(base_url, site, "--batch-size", "13")
        assert rerun.returncode == 0, rerun.stdout + rerun.stderr
        assert _duplicates(site) == {}
        assert_exactly_once(site, plan)
        assert last_run(site)["lines_adopted"] == in_erp
        assert sync(base_url, site).returncode == 0 and last_run(site)["requests_sent"] == 0


def test_ledger_says_acknowledged_but_the_erp_holds_old_hours_is_updated(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    changed = sorted(plan)[5]
    with running_sandbox(site.world) as base_url:
        assert sync(base_url, site).returncode == 0
        # The hours changed in the time tool; the ledger recorded the change as acknowledged
        # (as a replayed answer made it do) while the ERP kept the old hours.
        edit_mart(
            site,
            "update marts.rpt_billable_lines set hours_whole = 7, minutes = 45, hours = 7.75,"
            " amount = 7.75 * rate, content_hash = 'changed-hours' where line_key = ?",
            changed,
        )
        with sqlite3.connect(site.ledger) as conn:
            conn.execute("update lines set content_hash = 'changed-hours' where line_key = ?", (changed,))
        dry = sync(base_url, site, "--dry-run")
        assert dry.returncode == 0, dry.stdout + dry.stderr
        assert "differ in the ERP from what the ledger recorded" in dry.stdout
        assert "update " in dry.stdout
        result = sync(base_url, site)
        assert result.returncode == 0, result.stdout + result.stderr
        assert last_run(site)["updates_planned"] == 1
        (record,) = erp_copies(site.world)[changed]
        assert (record["Hours"], record["Minutes"]) == (7, 45)
        expected = {**plan, changed: {**plan[changed], "amount": Decimal("7.75") * plan[changed]["rate"]}}
        assert_exactly_once(site, expected)
        assert sync(base_url, site).returncode == 0 and last_run(site)["requests_sent"] == 0


def _old_requestid(realm: str, items: list[tuple[str, str, int]]) -> str:
    """The requestid as the sync derived it before the fix (realm and items only)."""
    parts = [f"{key}\x1f{operation}\x1f{number}" for key, operation, number in items]
    text = realm + "\x1f" + "\x1e".join(parts)
    return "billable-" + hashlib.blake2b(text.encode(), digest_size=16).hexdigest()


def test_a_replayed_answer_that_is_not_what_was_sent_is_not_acknowledged(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    key = sorted(plan)[0]
    row = plan[key]
    realm = row["realm_id"]
    # only this line is ready: the sync sends one batch with one create
    edit_mart(
        site,
        "update marts.rpt_billable_lines set line_status = 'held'"
        " where line_status = 'ready' and line_key <> ?",
        key,
    )
    with running_sandbox(site.world) as base_url:
        assert sync(base_url, site, "--dry-run").returncode == 0  # creates the ledger (and its id)
        has_meta = ledger_rows(site, "select count(*) from sqlite_master where name = 'ledger_meta'")[0][0]
        ledger_id = (
            ledger_rows(site, "select value from ledger_meta where key = 'ledger_id'")[0][0]
            if has_meta
            else ""
        )
        sent = payload_for(row)
        body = json.dumps(
            {"BatchItemRequest": [{"bId": key, "operation": "create", "TimeActivity": sent}]},
            separators=(",", ":"),
            sort_keys=True,
        )
        items = [(key, "create", 1)]
        # Earlier requests with the requestids the sync will use (today's, and the one it derived
        # before the fix) carried other hours; their objects were deleted since. The ERP replays
        # their answers for those requestids.
        token = sync_env(base_url, site)["SOURCES__QUICKBOOKS__ACCESS_TOKEN"]
        session = requests.Session()
        session.headers["Authorization"] = f"Bearer {token}"
        url = f"{base_url}/v3/company/{realm}/batch"
        for requestid in (batch_requestid(realm, items, ledger_id, body), _old_requestid(realm, items)):
            other = {**sent, "Hours": sent["Hours"] + 3}
            made = session.post(
                url,
                params={"requestid": requestid},
                json={"BatchItemRequest": [{"bId": key, "operation": "create", "TimeActivity": other}]},
                timeout=30,
            )
            assert made.status_code == 200, made.text
            record = made.json()["BatchItemResponse"][0]["TimeActivity"]
            gone = session.post(
                url,
                params={"requestid": requestid + "-delete"},
                json={
                    "BatchItemRequest": [
                        {
                            "bId": key,
                            "operation": "delete",
                            "TimeActivity": {"Id": record["Id"], "SyncToken": record["SyncToken"]},
                        }
                    ]
                },
                timeout=30,
            )
            assert gone.status_code == 200, gone.text
        assert key not in erp_copies(site.world)

        first = sync(base_url, site)
        assert first.returncode == 0, first.stdout + first.stderr
        assert "did not match what was sent" in first.stdout
        (record,) = erp_copies(site.world).get(key, [None])
        assert record is not None, "acknowledged from a replayed answer: the ERP does not hold the line"
        assert (record["Hours"], record["Minutes"]) == (sent["Hours"], sent["Minutes"])
        assert_exactly_once(site, {key: row})
        audit = ledger_rows(site, "select error_code from audit_log where line_key = ? order by seq", key)
        assert ("replay",) in audit
        second = sync(base_url, site)
        assert second.returncode == 0, second.stdout + second.stderr
        assert last_run(site)["requests_sent"] == 0


def test_a_corrupt_ledger_is_one_line_naming_it_and_is_left_alone(tiny_firm, tmp_path):
    site = make_site(tmp_path, tiny_firm.world, tiny_firm.warehouse)
    garbage = b"this is not a ledger\n" * 200
    site.ledger.write_bytes(garbage)
    with running_sandbox(site.world) as base_url:
        for args in (("--dry-run",), ()):
            result = sync(base_url, site, *args)
            assert result.returncode == 2, result.stdout + result.stderr
            lines = result.stderr.strip().splitlines()
            assert len(lines) == 1 and "Traceback" not in result.stderr, result.stderr
            assert str(site.ledger) in lines[0] and "not a usable SQLite ledger" in lines[0]
            assert "make clean" not in result.stderr
            assert site.ledger.read_bytes() == garbage  # never deleted, never rewritten


def test_make_clean_keeps_the_ledger(tmp_path):
    import subprocess

    from tests.ingest_helpers import ROOT

    data = tmp_path / "data"
    (data / "worlds" / "tiny-7").mkdir(parents=True)
    kept = ["ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm", "ledger.lock", "ledger.duckdb"]
    for name in [*kept, "warehouse.duckdb", "raw.duckdb", "daily.log"]:
        (data / name).write_text(name)
    result = subprocess.run(
        ["make", "--no-print-directory", "clean", f"DATA={data}"], cwd=ROOT, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert sorted(path.name for path in data.iterdir()) == sorted(kept)
    assert "kept the reverse-ETL ledger" in result.stdout
    # and no message of the reverse ETL tells anyone to `make clean`
    for path in (ROOT / "reverse_etl").glob("*.py"):
        assert "make clean" not in path.read_text(), path
