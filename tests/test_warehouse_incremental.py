"""The time-entry chain built incrementally equals a full refresh: after two days of new, approved,
corrected and billed time, a rate-card amendment (re-rates unbilled time only), a correction
whose change stamp lies outside the lookback window, a deletion the time tool never announces,
an HR cost-rate change, a corrected exchange rate, a project's new status and a time user whose
identity match changes. The chain's models follow change by fingerprints
(macros/follow_change.sql): each of those inputs must reach exactly the entries it affects. dbt is
called directly (not the publishing runner) on the fact and its parents."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import duckdb
import pytest

from billable.sandbox_process import running_sandbox
from billable.transform import dbt_executable
from tests.ingest_helpers import ROOT, advance, ingest
from tests.warehouse_helpers import load_tiny_world, rows

PROJECT = ROOT / "dbt_project"
UPLIFT = 10  # added to the amended rate-card version's bill rate


def dbt_build(raw_db: Path, build_db: Path, *extra: str) -> None:
    """Build fct_time_entries and everything it reads (no tests) into build_db."""
    work = build_db.parent
    command = [*dbt_executable(), "build", "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
    command += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    command += ["--select", "+fct_time_entries", "--exclude-resource-type", "test", "unit_test", *extra]
    env = {
        **os.environ,
        "BILLABLE_RAW_DB": str(raw_db),
        "BILLABLE_BUILD_DB": str(build_db),
        "DBT_USE_COLORS": "false",
    }
    result = subprocess.run(command, cwd=PROJECT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def fact(build_db: Path) -> list[tuple]:
    return rows(build_db, "select * from marts.fct_time_entries order by time_entry_id")


@pytest.fixture(scope="module")
def changed(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """Build, then change the world and the raw data in every way that must reach the fact,
    then build again incrementally and once more from scratch."""
    folder = tmp_path_factory.mktemp("incremental")
    world, raw_db = load_tiny_world(folder)
    incremental = folder / "incremental" / "warehouse.duckdb"
    incremental.parent.mkdir()
    dbt_build(raw_db, incremental)
    before = {
        row[0]: row
        for row in rows(incremental, "select time_entry_id, hours, bill_rate from marts.fct_time_entries")
    }

    # two days pass in the firm: new time, approvals, corrections, ERP posts and invoices
    advance(world, days=2)
    with running_sandbox(world) as base_url:
        result = ingest(base_url, world, raw_db, "")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]

    with duckdb.connect(str(incremental), read_only=True) as connection:
        # a version pricing both invoiced and not yet invoiced time
        version_id, old_rate = connection.execute(
            """
            select rate_card_version_id, min(standard_bill_rate)
            from marts.fct_time_entries
            where rate_card_version_id is not null
            group by rate_card_version_id
            having bool_or(is_rated_from_invoice) and bool_or(not is_rated_from_invoice)
            order by count(*) desc, rate_card_version_id
            limit 1
            """
        ).fetchone()
        gone_id = connection.execute(
            "select max(time_entry_id) from marts.fct_time_entries where spent_date < date '2026-09-01'"
        ).fetchone()[0]

        # one entry's employee, the practice-month it works in, and a non-USD day it was worked
        employee_id, cost_entry_id, old_cost = connection.execute(
            """
            select employee_id, time_entry_id, cost_amount from marts.fct_time_entries
            where is_known_employee and cost_amount > 0
            order by time_entry_id limit 1
            """
        ).fetchone()
        fx_day, fx_currency, fx_entry_id, old_fx = connection.execute(
            """
            select spent_date, currency_code, time_entry_id, fx_rate_to_reporting from marts.fct_time_entries
            where currency_code <> 'USD' and bill_amount > 0
            order by time_entry_id limit 1
            """
        ).fetchone()
        psa_project_id, project_id = connection.execute(
            """
            select projects.psa_project_id, projects.project_id
            from intermediate.int_projects as projects
            inner join marts.fct_time_entries as entries on projects.project_id = entries.project_id
            where projects.psa_project_id is not null and entries.time_entry_id not in (?, ?)
            order by projects.project_id limit 1
            """,
            [cost_entry_id, fx_entry_id],
        ).fetchone()
        time_user_id = connection.execute(
            """
            select time_user_id from marts.fct_time_entries
            where is_known_employee and employee_id <> ?
            order by time_user_id desc limit 1
            """,
            [employee_id],
        ).fetchone()[0]

        # an old, unbilled entry, changed far outside the lookback window
        corrected_id, corrected_hours = connection.execute(
            """
            select time_entry_id, hours from marts.fct_time_entries
            where not is_invoiced and time_entry_id <> ?
                and updated_at < (select max(updated_at) - interval 30 day from marts.fct_time_entries)
            order by time_entry_id limit 1
            """,
            [gone_id],
        ).fetchone()
    with duckdb.connect(str(raw_db)) as connection:
        # the PSA amends the rate (its change stamp moves, as Kantata's would)
        connection.execute(
            "update raw_psa.rate_card_versions set bill_rate = bill_rate + ?, "
            "updated_at = '2026-10-03T09:00:00Z' where id = ?",
            [UPLIFT, version_id],
        )
        # a correction that keeps an old stamp (a back-dated fix): only the row hash sees it
        connection.execute("update raw_time.time_entries set hours = hours + 1 where id = ?", [corrected_id])
        # a deletion found by the loader's re-scan and confirmed by a later check (the table is
        # there, empty, after any load: every column dlt requires is given)
        connection.execute(
            "insert into raw_time.time_entries_deletions (id, detected_at, last_confirmed_at, "
            "confirmations, status, confirmed_at, _dlt_load_id, _dlt_id) "
            "values (?, now() - interval 1 day, now(), 2, 'confirmed', now(), 'test', 'test-deletion')",
            [gone_id],
        )

        # HR re-issues the employee's cost rates with a raise (in the latest snapshot, which rules)
        connection.execute(
            "update raw_hr.cost_rates set hourly_cost = hourly_cost + 7 where employee_id = ? "
            "and snapshot_date = (select max(snapshot_date) from raw_hr.cost_rates)",
            [employee_id],
        )
        # the ERP corrects a day's quote of the currency to the reporting currency
        connection.execute(
            "update raw_erp.exchange_rates set rate = rate * 1.01 where as_of_date = ? "
            "and source_currency_code = ? and target_currency_code = 'USD'",
            [fx_day, fx_currency],
        )
        # the PSA puts a project on hold
        connection.execute(
            "update raw_psa.workspaces set status__message = 'On Hold (incremental test)' where id = ?",
            [psa_project_id],
        )
        # a time user's e-mail no longer matches anyone in HR: their entries lose the employee
        connection.execute(
            "update raw_time.users set email = 'left-the-firm-' || email, first_name = 'Someone', "
            "last_name = 'Else' where id = ?",
            [time_user_id],
        )

    dbt_build(raw_db, incremental)
    fresh = folder / "fresh" / "warehouse.duckdb"
    fresh.parent.mkdir()
    dbt_build(raw_db, fresh, "--full-refresh")
    return {
        "incremental": incremental,
        "fresh": fresh,
        "before": before,
        "version_id": version_id,
        "old_rate": old_rate,
        "corrected": (corrected_id, corrected_hours),
        "gone_id": gone_id,
        "cost": (cost_entry_id, old_cost),
        "fx": (fx_entry_id, old_fx),
        "project_id": project_id,
        "time_user_id": time_user_id,
    }


CHAIN = ("int_time_entries_resolved", "int_time_entries_rated", "int_time_entries")


def test_an_incremental_run_gives_exactly_the_full_refresh(changed: dict) -> None:
    left, right = fact(changed["incremental"]), fact(changed["fresh"])
    columns = [
        name
        for (name,) in rows(changed["fresh"], "select column_name from (describe marts.fct_time_entries)")
    ]
    assert len(left) == len(right) > 0
    differing = sorted(set(left) ^ set(right))[:3]
    assert set(left) == set(right), f"columns {columns}; first differing rows {differing}"
    new_days = rows(
        changed["incremental"], "select count(*) from marts.fct_time_entries where spent_date > '2026-09-30'"
    )
    assert new_days[0][0] > 0, "the two days' new time arrived"


def test_a_rate_amendment_re_rates_only_unbilled_time(changed: dict) -> None:
    rated = rows(
        changed["incremental"],
        "select is_rated_from_invoice, min(bill_rate), max(bill_rate), min(standard_bill_rate), count(*) "
        "from marts.fct_time_entries where rate_card_version_id = ? group by 1 order by 1",
        changed["version_id"],
    )
    by_billed = {billed: (low, high, standard) for billed, low, high, standard, _count in rated}
    new_rate = changed["old_rate"] + UPLIFT
    assert by_billed[False] == (new_rate, new_rate, new_rate), "unbilled time takes the amended rate"
    low, high, standard = by_billed[True]
    assert (low, high) == (changed["old_rate"], changed["old_rate"]), (
        "invoiced time keeps the rate it was billed at"
    )
    assert standard == new_rate


def test_an_old_correction_and_a_silent_deletion_reach_the_fact(changed: dict) -> None:
    corrected_id, hours = changed["corrected"]
    now = rows(
        changed["incremental"],
        "select hours from marts.fct_time_entries where time_entry_id = ?",
        corrected_id,
    )
    assert now == [(hours + 1,)]
    gone = rows(
        changed["incremental"],
        "select count(*) from marts.fct_time_entries where time_entry_id = ?",
        changed["gone_id"],
    )
    assert gone == [(0,)]
    assert changed["gone_id"] in changed["before"]


@pytest.mark.parametrize("model", CHAIN)
def test_each_model_of_the_chain_equals_its_full_refresh(changed: dict, model: str) -> None:
    """Every column, the fingerprints included: a row not recomputed must hold what a full
    refresh computes, and no row is left over or missing."""
    sql = f"select * from intermediate.{model} order by time_entry_id"
    left, right = rows(changed["incremental"], sql), rows(changed["fresh"], sql)
    assert len(left) == len(right) > 0
    differing = sorted(set(left) ^ set(right), key=str)[:2]
    assert left == right, f"{model}: first differing rows {differing}"


def test_each_kind_of_input_reaches_the_entries_it_affects(changed: dict) -> None:
    cost_entry_id, old_cost = changed["cost"]
    fx_entry_id, old_fx = changed["fx"]
    warehouse = changed["incremental"]
    ask = "select {} from marts.fct_time_entries where time_entry_id = ?"
    assert rows(warehouse, ask.format("cost_amount"), cost_entry_id)[0][0] > old_cost, "HR's raise"
    assert rows(warehouse, ask.format("fx_rate_to_reporting"), fx_entry_id)[0][0] != old_fx, "the new quote"
    on_hold = rows(
        warehouse,
        "select distinct project_status from intermediate.int_time_entries_resolved where project_id = ?",
        changed["project_id"],
    )
    assert on_hold == [("On Hold (incremental test)",)]
    unknown = rows(
        warehouse,
        "select distinct is_known_employee from marts.fct_time_entries where time_user_id = ?",
        changed["time_user_id"],
    )
    assert unknown == [(False,)], "the entries of a user HR no longer matches"
