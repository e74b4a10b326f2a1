"""The hand-written KPI limit (benchmarks/limit_sql) against the marts, on the tiny world: a real
check of both, since the SQL was written from the spec without reading the models.

Agreement is exact (within 0.005 per figure) except for one documented finding
(docs/benchmarks.md, "Reading the limit"): the marts count approved billable time on project
codes the PSA does not know as unpriced WIP hours and as billable hours without a currency; the
limit leaves time without a PSA project out. No money figure differs.
"""

from __future__ import annotations

import shutil

import duckdb
import pytest

from benchmarks import limit
from benchmarks.quick import worse

EXACT = (
    "utilisation per person and month",
    "billed revenue per month (USD, invoice lines)",
    "billed revenue per month (USD, rpt_revenue)",
    "time to invoice per invoiced entry",
)
MONEY = {
    "WIP as of the clock per currency": (
        "wip_time_amount",
        "wip_expense_amount",
        "wip_milestone_amount",
        "wip_amount",
    ),
    "realisation per month worked and currency": (
        "standard_value",
        "billed_time_amount",
        "billed_fee_amount",
    ),
}


@pytest.fixture(scope="module")
def agreements(tiny_firm) -> dict[str, limit.Agreement]:
    seconds, found = limit.measure(tiny_firm.raw_db, tiny_firm.warehouse)
    assert seconds < 30
    return {agreement.name: agreement for agreement in found}


@pytest.mark.parametrize("name", EXACT)
def test_limit_agrees_with_the_marts(agreements, name):
    agreement = agreements[name]
    assert agreement.compared > 0, f"{name}: no rows to compare"
    assert agreement.differing == 0, f"{name}: {agreement.example}"


@pytest.mark.parametrize("name", sorted(MONEY))
def test_limit_money_agrees_and_only_unknown_project_hours_differ(agreements, name):
    agreement = agreements[name]
    assert agreement.compared > 0
    for column in MONEY[name]:
        assert agreement.largest[column] <= 0.005, f"{name}: {column} differs by {agreement.largest[column]}"
    # the only disagreement: hours without a currency (time on projects the PSA does not know)
    assert all(key[-1] is None for key in agreement.differing_keys), agreement.example


def test_comparison_catches_a_changed_mart(tiny_firm, tmp_path):
    """One employee-month's billable hours nudged in a copy of the warehouse: exactly one row differs."""
    warehouse = shutil.copyfile(tiny_firm.warehouse, tmp_path / "warehouse.duckdb")
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "update marts.rpt_utilization set billable_hours = billable_hours + 1 "
            "where rowid = (select min(rowid) from marts.rpt_utilization)"
        )
    _, found = limit.measure(tiny_firm.raw_db, warehouse)
    utilisation = next(a for a in found if a.name == "utilisation per person and month")
    assert utilisation.differing == 1
    assert utilisation.largest["billable_hours"] == pytest.approx(1.0)


def test_bench_quick_names_a_figure_twice_as_bad():
    baseline = {"daily_s": 100.0, "daily_peak_mib": 800, "daily_dbt_builds_s": 60.0, "limit_s": 0.5}
    baseline["limit_rows_differing"] = 0
    same = dict(baseline)
    assert worse(same, baseline) == []
    slower = {**baseline, "daily_s": 201.0, "limit_rows_differing": 1}
    failures = worse(slower, baseline)
    assert [failure.split(" ")[0] for failure in failures] == ["daily_s", "limit_rows_differing"]
    assert worse({**baseline, "daily_s": 200.0}, baseline) == []
    # twice a tiny figure is within a shared machine's noise: 0.5 s -> 1.4 s passes, 1.6 s fails
    assert worse({**baseline, "limit_s": 1.4}, baseline) == []
    assert [f.split(" ")[0] for f in worse({**baseline, "limit_s": 1.6}, baseline)] == ["limit_s"]
