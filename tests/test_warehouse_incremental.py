"""The time-entry chain built incrementally equals a full refresh: after two days of new, approved,
corrected and billed time, a rate-card amendment (re-rates unbilled time only), a correction
whose change stamp lies outside the lookback window, a deletion the time tool never announces,
an HR cost-rate change, a corrected exchange rate, a project's new status and a time user whose
identity match changes. The chain's models follow change by fingerprints
(macros/follow_change.sql): each of those inputs must reach exactly the entries it affects. dbt is
called directly (not the publishing runner) on the fact and its parents."""

from __future__ import annotations

from pathlib import Path

import pytest

from billable.sandbox_process import running_sandbox
from tests.ingest_helpers import advance, ingest
from tests.warehouse_helpers import UPLIFT, change_every_input, dbt_build, load_tiny_world, rows


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

    picked = change_every_input(incremental, raw_db)

    dbt_build(raw_db, incremental)
    fresh = folder / "fresh" / "warehouse.duckdb"
    fresh.parent.mkdir()
    dbt_build(raw_db, fresh, "--full-refresh")
    return {"incremental": incremental, "fresh": fresh, "before": before, "raw_db": raw_db, **picked}


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


def test_a_code_change_recomputes_every_row_with_the_plain_query(changed: dict) -> None:
    """A new project fingerprint (a deploy) makes every row's code stale: the chain recomputes
    them all without comparing fingerprints (that comparison ran out of memory on `large`), and
    the tables still equal a full refresh. Runs after the tests above: it rebuilds the chain."""
    incremental = changed["incremental"]
    dbt_build(changed["raw_db"], incremental, code="a deploy")
    compiled = incremental.parent / "target" / "compiled" / "billable" / "models" / "intermediate" / "time"
    for model in CHAIN:
        sql = (compiled / f"{model}.sql").read_text()
        assert "changed as (" not in sql, f"{model} compared fingerprints after a code change"
        codes = rows(
            incremental, f"select count(distinct code_fingerprint), count(*) from intermediate.{model}"
        )
        assert codes[0][0] == 1 and codes[0][1] > 0
    dbt_build(changed["raw_db"], incremental, code="a deploy")  # the same code again: follows change
    assert "changed as (" in (compiled / "int_time_entries_resolved.sql").read_text()
    for model in CHAIN:
        # the values; the fingerprints that cover the code differ by design
        values = "columns(lambda c: c not like 'fingerprint%' and c <> 'code_fingerprint')"
        sql = f"select {values} from intermediate.{model} order by time_entry_id"
        assert rows(incremental, sql) == rows(changed["fresh"], sql), model
