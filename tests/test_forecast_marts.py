"""The forward look (marts/forecast) on the tiny world, checked against figures worked out here
from the staging and intermediate tables, independently of the forecast models' SQL:

- a person-week's forecast utilisation: capacity (standard hours, holidays, booked time off)
  and assigned hours recomputed day by day from dim_employees, the entity calendar, the
  current time off and the PSA assignments themselves;
- a project's estimate at completion: hours to date + the PSA assignments' remaining days;
- the weighted pipeline: amount x probability of the CRM's open opportunities;
- the revenue forecast's percent-complete and retainer rules;
- forecast snapshots kept across builds (two as-of dates, the second a --full-refresh) and the
  accuracy report reading them.
"""

from __future__ import annotations

from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from tests.warehouse_helpers import built, copy_raw

D = Decimal


def query(warehouse: Path, sql: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


def as_of_date(warehouse: Path) -> date:
    return query(warehouse, "select as_of_date from intermediate.int_as_of")[0][0]


def weekdays(start: date, end: date) -> list[date]:
    days = (start + timedelta(n) for n in range((end - start).days + 1))
    return [day for day in days if day.weekday() < 5]


def holidays(warehouse: Path) -> set[tuple[str, date]]:
    found = query(
        warehouse,
        "select legal_entity, date_day from intermediate.int_legal_entity_working_days where is_holiday",
    )
    return {(entity, day) for entity, day in found}


def version_on(warehouse: Path, employee_id: str, day: date) -> tuple | None:
    """(weekly_standard_hours, legal_entity, email, hire_date, termination_date) of the version in force."""
    found = query(
        warehouse,
        """select weekly_standard_hours, legal_entity, email, hire_date, termination_date
        from marts.dim_employees
        where employee_id = ? and valid_from <= ? and (valid_to is null or ? < valid_to)""",
        employee_id,
        day,
        day,
    )
    assert len(found) <= 1, found
    return found[0] if found else None


def assigned_hours_by_hand(warehouse: Path, email: str, days: list[date], holiday_set: set) -> Decimal:
    """hours_per_week / 5 on each of `days` inside an assignment of `email`, except the assignee's
    holidays."""
    assignments = query(
        warehouse,
        "select hours_per_week, start_date, end_date from staging.stg_psa__assignments"
        " where assignee_email = ?",
        email,
    )
    employee_id = query(
        warehouse, "select employee_id from marts.dim_employees where email = ? limit 1", email
    )
    total = D(0)
    for hours_per_week, start, end in assignments:
        for day in days:
            version = version_on(warehouse, employee_id[0][0], day) if employee_id else None
            entity = version[1] if version else None
            if start <= day <= end and (entity, day) not in holiday_set:
                total += D(hours_per_week) / 5
    return total


# --- forecast utilisation --------------------------------------------------------------------
def test_a_person_week_of_forecast_utilisation_by_hand(tiny_firm) -> None:
    warehouse = tiny_firm.warehouse
    now = as_of_date(warehouse)
    # a week with time off or a holiday and assigned work, so every rule is exercised
    picked = query(
        warehouse,
        """select employee_id, week_start_date, capacity_hours, assigned_hours, forecast_total_utilization
        from marts.rpt_forecast_utilization_weekly
        where assigned_hours > 0 and capacity_hours > 0 and (time_off_hours > 0 or holiday_count > 0)
        order by week_start_date, employee_id limit 1""",
    )
    assert picked, "the tiny world has no forecast week with time off and assigned work"
    employee_id, week_start, capacity, assigned, utilisation = picked[0]
    assert week_start > now  # a forecast week starts after the as-of date
    days = weekdays(week_start, week_start + timedelta(4))
    holiday_set = holidays(warehouse)
    time_off = dict(
        query(
            warehouse,
            "select time_off_date, time_off_hours from intermediate.int_time_off_current"
            " where employee_id = ?",
            employee_id,
        )
    )
    expected_capacity = D(0)
    email = None
    for day in days:
        version = version_on(warehouse, employee_id, day)
        if version is None:
            continue
        weekly_hours, entity, email, hire, termination = version
        if (hire and day < hire) or (termination and day > termination):
            continue
        standard = D(weekly_hours) / 5
        if (entity, day) not in holiday_set:
            expected_capacity += max(standard - D(time_off.get(day, 0)), D(0))
    assert email is not None
    expected_assigned = assigned_hours_by_hand(warehouse, email, days, holiday_set)
    assert capacity == expected_capacity
    assert assigned == expected_assigned
    assert utilisation == round(expected_assigned / expected_capacity, 6)


def test_forecast_weeks_are_the_twelve_after_the_as_of_week(tiny_firm) -> None:
    warehouse = tiny_firm.warehouse
    now = as_of_date(warehouse)
    weeks = [
        row[0]
        for row in query(
            warehouse, "select distinct week_start_date from marts.rpt_forecast_utilization_weekly order by 1"
        )
    ]
    first = now - timedelta(now.weekday()) + timedelta(7)
    assert weeks == [first + timedelta(7 * n) for n in range(12)]


def test_assignment_days_sum_to_the_weekly_plan(tiny_firm) -> None:
    """The daily forecast and fct_assignments_weekly agree on every forecast week."""
    mismatches = query(
        tiny_firm.warehouse,
        """with daily as (
            select assignment_id, week_start_date, sum(planned_hours) as hours
            from marts.fct_forecast_assignment_days group by 1, 2
        )
        select weekly.assignment_id, weekly.week_start_date, weekly.planned_hours, daily.hours
        from marts.fct_assignments_weekly as weekly
        cross join intermediate.int_forecast_horizon as horizon
        left join daily using (assignment_id, week_start_date)
        where weekly.week_start_date >= horizon.first_forecast_week_start_date
            and weekly.planned_hours is distinct from coalesce(daily.hours, 0)""",
    )
    assert mismatches == []
    assert query(tiny_firm.warehouse, "select count(*) from marts.fct_forecast_assignment_days")[0][0] > 0


# --- project health --------------------------------------------------------------------------
def test_a_projects_estimate_at_completion_by_hand(tiny_firm) -> None:
    warehouse = tiny_firm.warehouse
    now = as_of_date(warehouse)
    project_id, psa_project_id, to_date, remaining, eac, budget, burn = query(
        warehouse,
        """select health.project_id, projects.psa_project_id, health.hours_to_date, health.remaining_hours,
            health.eac_hours, health.budget_hours, health.hours_burn
        from marts.rpt_project_health as health
        inner join marts.dim_projects as projects using (project_id)
        where health.remaining_hours > 0 and health.hours_to_date > 0
        order by health.remaining_hours desc limit 1""",
    )[0]
    expected_to_date = query(
        warehouse,
        """select sum(hours) from marts.fct_time_entries
        where project_id = ? and approval_status != 'rejected' and hours > 0 and spent_date <= ?""",
        project_id,
        now,
    )[0][0]
    holiday_set = holidays(warehouse)
    expected_remaining = D(0)
    for hours_per_week, start, end, email in query(
        warehouse,
        """select hours_per_week, start_date, end_date, assignee_email
        from staging.stg_psa__assignments where psa_project_id = ?""",
        psa_project_id,
    ):
        employee = query(
            warehouse, "select employee_id from marts.dim_employees where email = ? limit 1", email
        )
        for day in weekdays(max(start, now + timedelta(1)), end):
            version = version_on(warehouse, employee[0][0], day) if employee else None
            if version is None or (version[1], day) not in holiday_set:
                expected_remaining += D(hours_per_week) / 5
    assert to_date == expected_to_date
    assert remaining == expected_remaining
    assert eac == expected_to_date + expected_remaining
    assert burn == round(expected_to_date / budget, 6)


def test_overrun_flags_follow_their_figures(tiny_firm) -> None:
    wrong = query(
        tiny_firm.warehouse,
        """select project_id from marts.rpt_project_health
        where is_forecast_over_budget_hours != coalesce(budget_hours > 0 and eac_hours > budget_hours, false)
            or is_forecast_loss != coalesce(margin_at_completion_reporting < 0, false)""",
    )
    assert wrong == []
    flagged = query(
        tiny_firm.warehouse,
        "select count(*) from marts.rpt_project_health where is_forecast_over_budget_hours",
    )
    assert flagged[0][0] >= 1  # the tiny world has projects whose assignments pass their budget


# --- pipeline and revenue --------------------------------------------------------------------
def test_weighted_pipeline_is_amount_times_probability_of_open_opportunities(tiny_firm) -> None:
    warehouse = tiny_firm.warehouse
    expected = dict(
        query(
            warehouse,
            """select opportunity_id, amount * probability / 100 from staging.stg_crm__opportunities
            where not is_closed""",
        )
    )
    assert expected, "the tiny world has no open opportunity"
    spread = dict(
        query(
            warehouse,
            "select opportunity_id, sum(daily_weighted_amount)"
            " from marts.fct_pipeline_forecast_daily group by 1",
        )
    )
    assert spread.keys() == expected.keys()
    for opportunity_id, weighted in expected.items():
        assert abs(D(spread[opportunity_id]) - D(str(weighted))) < D("0.0001"), opportunity_id
    in_horizon = query(
        warehouse,
        "select sum(daily_weighted_amount_reporting) from marts.fct_pipeline_forecast_daily"
        " where is_in_horizon",
    )[0][0]
    in_report = query(
        warehouse,
        "select sum(forecast_amount_reporting) from marts.rpt_revenue_forecast_monthly where is_pipeline",
    )[0][0]
    assert in_report == in_horizon


def test_percent_complete_forecast_adds_assigned_hours_to_progress(tiny_firm) -> None:
    """fee x (min(1, (approved + assigned) / budget) - min(1, approved / budget)), summed over contracts."""
    warehouse = tiny_firm.warehouse
    contracts = query(
        warehouse,
        """select contracts.contract_id, coalesce(contracts.contract_value, sum(projects.budget_amount)),
            sum(projects.budget_hours), fx.rate_to_reporting
        from marts.dim_contracts as contracts
        inner join marts.dim_projects as projects using (contract_id)
        cross join intermediate.int_as_of as as_of
        inner join intermediate.int_fx_rates_daily as fx
            on fx.currency_code = contracts.currency_code and fx.rate_date = as_of.as_of_date
        where contracts.billing_method = 'fixed_fee_percent_complete'
        group by contracts.contract_id, contracts.contract_value, fx.rate_to_reporting""",
    )
    expected_total = D(0)
    for contract_id, fee, budget, rate in contracts:
        approved = query(
            warehouse,
            """select coalesce(sum(hours), 0) from marts.fct_time_entries cross join intermediate.int_as_of
            where contract_id = ? and is_approved and approved_at <= as_of_at and hours > 0""",
            contract_id,
        )[0][0]
        planned = query(
            warehouse,
            """select coalesce(sum(planned_hours), 0) from marts.fct_forecast_assignment_days
            where contract_id = ? and is_in_horizon""",
            contract_id,
        )[0][0]
        expected_total += (
            fee * rate * (min(D(1), (approved + planned) / budget) - min(D(1), approved / budget))
        )
    assert expected_total > 0  # the tiny world has a percent-complete contract with work assigned ahead
    got = query(
        warehouse,
        """select sum(forecast_amount_reporting) from marts.rpt_revenue_forecast_monthly
        where revenue_type = 'fixed_fee_percent_complete'""",
    )[0][0]
    assert abs(got - expected_total) < D("0.000001")


def test_retainers_forecast_their_fee_in_every_month_they_run(tiny_firm) -> None:
    warehouse = tiny_firm.warehouse
    rows = query(
        warehouse,
        """select forecast.month_start_date, forecast.forecast_amount_reporting, (
                select coalesce(sum(contracts.monthly_fee * fx.rate_to_reporting), 0)
                from marts.dim_contracts as contracts
                inner join intermediate.int_fx_rates_daily as fx
                    on fx.currency_code = contracts.currency_code and fx.rate_date = horizon.as_of_date
                where contracts.billing_method = 'retainer'
                    and contracts.start_date <= last_day(forecast.month_start_date)
                    and (contracts.end_date is null or contracts.end_date >= forecast.month_start_date)
            )
        from (
            select month_start_date, sum(forecast_amount_reporting) as forecast_amount_reporting
            from marts.rpt_revenue_forecast_monthly where revenue_type = 'retainer' group by 1
        ) as forecast
        cross join intermediate.int_forecast_horizon as horizon
        where forecast.month_start_date > horizon.as_of_month_start_date""",
    )
    assert rows, "the tiny world has no retainer running after the as-of month"
    for month, forecast, expected in rows:
        assert forecast == expected, month


# --- snapshots kept across builds ------------------------------------------------------------
FIRST, LATER = date(2026, 10, 1), date(2026, 12, 1)


@pytest.fixture(scope="module")
def two_builds(tiny_firm, tmp_path_factory: pytest.TempPathFactory) -> dict:
    """The tiny world built as of its own now (2026-10-01), then again into the same build, a
    --full-refresh as of 2026-12-01: what rpt_forecast_snapshots holds after each."""
    folder = tmp_path_factory.mktemp("rpt_forecast_snapshots")
    raw = copy_raw(tiny_firm.raw_db, folder / "raw.duckdb")
    out = folder / "wh"
    snapshot_sql = "select * from marts.rpt_forecast_snapshots order by snapshot_row_id"
    first = built(raw, out)
    assert as_of_date(first) == FIRST
    after_first = query(first, snapshot_sql)
    later = built(raw, out, "--full-refresh", "--vars", "{as_of_at: '2026-12-01T00:00:00'}")
    return {"after_first": after_first, "after_later": query(later, snapshot_sql), "warehouse": later}


def test_a_full_refresh_keeps_the_older_snapshot(two_builds) -> None:
    after_first, after_later, warehouse = (
        two_builds["after_first"],
        two_builds["after_later"],
        two_builds["warehouse"],
    )
    assert after_first and {row[1] for row in after_first} == {FIRST}
    assert {row[1] for row in after_later} == {FIRST, LATER}
    # the older snapshot is kept as it was, row for row (its build's invocation id included)
    assert [row for row in after_later if row[1] == FIRST] == after_first
    # the later snapshot is that build's own revenue forecast
    mine = [row for row in after_later if row[1] == LATER]
    assert len({row[3] for row in mine}) == 1
    revenue_now = query(
        warehouse,
        """select sum(forecast_amount_reporting) from marts.rpt_revenue_forecast_monthly
        where month_start_date >= (select as_of_month_start_date from intermediate.int_forecast_horizon)""",
    )[0][0]
    assert sum(row[7] + row[8] for row in mine) == revenue_now


def test_accuracy_sets_the_kept_forecast_against_the_actual(two_builds) -> None:
    warehouse = two_builds["warehouse"]
    # November 2026, 4 weeks ahead: the snapshot of 2026-10-01 (28 to 42 days before 11-01)
    found = query(
        warehouse,
        """select snapshot_as_of_date, forecast_revenue_reporting, actual_revenue_reporting,
            forecast_billable_utilization
        from marts.rpt_forecast_accuracy where month_start_date = date '2026-11-01' and lead_weeks = 4""",
    )
    assert len(found) == 1
    snapshot_date, forecast, actual, utilisation = found[0]
    assert snapshot_date == FIRST
    kept = [row for row in two_builds["after_first"] if row[4] == date(2026, 11, 1)]
    assert kept
    assert forecast == sum(row[7] + row[8] for row in kept)
    assert utilisation == round(sum(row[10] for row in kept) / sum(row[9] for row in kept), 6)
    expected_actual = query(
        warehouse,
        "select sum(recognized_amount_reporting) from marts.rpt_revenue"
        " where month_start_date = date '2026-11-01'",
    )[0][0]
    assert actual == expected_actual
    # 8 weeks ahead of November is before the first snapshot: no forecast, not a zero
    none = query(
        warehouse,
        """select has_snapshot, forecast_revenue_reporting from marts.rpt_forecast_accuracy
        where month_start_date = date '2026-11-01' and lead_weeks = 8""",
    )
    assert none == [(False, None)]
