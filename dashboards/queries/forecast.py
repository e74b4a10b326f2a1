"""The Forecast and Project health pages' reads: the forecast marts (marts/forecast): forecast
utilisation by person-week, demand against capacity by practice-week, the revenue forecast by
month beside recognised revenue, forecast accuracy, and project health. Actual utilisation comes
from rpt_utilization, as on the Utilisation page.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from dashboards.queries.connection import read, tables
from dashboards.queries.filters import Filters, where

_PEOPLE_FILTERS = {"legal_entity": "legal_entity", "practice": "practice"}
_PRACTICE_FILTERS = {"practice": "practice"}
_PROJECT_FILTERS = {"legal_entity": "legal_entity", "practice": "practice", "client": "client_id"}

# the filters each forecast relation can apply (the page names the others)
PEOPLE_FILTERS_APPLY = {"legal_entity", "practice"}
PRACTICE_FILTERS_APPLY = {"practice"}
PROJECT_FILTERS_APPLY = {"legal_entity", "practice", "client"}

REVENUE_TYPES = (
    "time_and_materials",
    "fixed_fee_milestones",
    "fixed_fee_percent_complete",
    "retainer",
    "weighted_pipeline",
)


def horizon() -> pd.Series | None:
    """The forecast's window (int_forecast_horizon), one row; None when not built."""
    t = tables("forecast_horizon")
    frame = read(f"select * from {t.forecast_horizon}", tables=t)
    return None if frame.empty else frame.iloc[0]


def forecast_utilisation_weekly(filters: Filters) -> pd.DataFrame:
    """Per forecast week: capacity, assigned hours, forecast billable utilisation and target."""
    t = tables("rpt_forecast_utilization_weekly")
    clause, params = where(filters, _PEOPLE_FILTERS)
    return read(
        f"""
        select
            week_start_date,
            sum(capacity_hours) as capacity_hours,
            sum(assigned_hours) as assigned_hours,
            sum(billable_assigned_hours) as billable_assigned_hours,
            sum(billable_assigned_hours) / nullif(sum(capacity_hours), 0) as forecast_billable_utilization,
            sum(target_billable_hours) / nullif(sum(capacity_hours), 0) as target_billable_utilization,
            count(distinct employee_id) as people
        from {t.rpt_forecast_utilization_weekly}
        where {clause}
        group by week_start_date
        order by week_start_date
        """,
        params,
        tables=t,
    )


def forecast_utilisation_by_person(filters: Filters) -> pd.DataFrame:
    """Per person over the forecast weeks, lowest forecast against target first."""
    t = tables("rpt_forecast_utilization_weekly")
    clause, params = where(filters, _PEOPLE_FILTERS)
    return read(
        f"""
        select
            employee_name as person,
            practice,
            grade,
            sum(capacity_hours) as capacity_hours,
            sum(assigned_hours) as assigned_hours,
            sum(billable_assigned_hours) / nullif(sum(capacity_hours), 0) as forecast_billable_utilization,
            sum(target_billable_hours) / nullif(sum(capacity_hours), 0) as target_billable_utilization,
            (sum(billable_assigned_hours) - sum(target_billable_hours)) / nullif(sum(capacity_hours), 0)
                as variance_to_target
        from {t.rpt_forecast_utilization_weekly}
        where {clause}
        group by employee_id, employee_name, practice, grade
        order by variance_to_target nulls last, person
        """,
        params,
        tables=t,
    )


def actual_utilisation_monthly(filters: Filters, start: date, end: date) -> pd.DataFrame:
    """Actual billable utilisation and target per month (rpt_utilization), months start..end."""
    t = tables("rpt_utilization")
    clause, params = where(filters, _PEOPLE_FILTERS, date_column="month_start_date", start=start, end=end)
    return read(
        f"""
        select
            month_start_date,
            sum(billable_hours) / nullif(sum(capacity_hours), 0) as billable_utilization,
            sum(target_billable_hours) / nullif(sum(capacity_hours), 0) as target_billable_utilization
        from {t.rpt_utilization}
        where {clause}
        group by month_start_date
        order by month_start_date
        """,
        params,
        tables=t,
    )


def demand_capacity(filters: Filters) -> pd.DataFrame:
    """Per practice and forecast week: capacity, assigned, weighted pipeline, shortfall, bench."""
    t = tables("rpt_demand_capacity_weekly")
    clause, params = where(filters, _PRACTICE_FILTERS)
    return read(
        f"""
        select
            coalesce(practice, '(no practice)') as practice,
            week_start_date,
            headcount,
            capacity_hours,
            assigned_hours,
            pipeline_hours,
            demand_hours,
            shortfall_hours,
            bench_hours,
            pipeline_amount_reporting
        from {t.rpt_demand_capacity_weekly}
        where {clause}
        order by practice, week_start_date
        """,
        params,
        tables=t,
    )


def revenue_forecast(filters: Filters, start: date) -> pd.DataFrame:
    """Per month from `start` and revenue type: recognised and forecast revenue (reporting currency)."""
    t = tables("rpt_revenue_forecast_monthly")
    clause, params = where(filters, _PRACTICE_FILTERS)
    return read(
        f"""
        select
            month_start_date,
            revenue_type,
            -- unknown when any part is (no exchange rate): never a sum that leaves it out
            case when count(recognized_amount_reporting) = count(*) then sum(recognized_amount_reporting) end
                as recognized_amount_reporting,
            case when count(forecast_amount_reporting) = count(*) then sum(forecast_amount_reporting) end
                as forecast_amount_reporting,
            sum(unrated_hours) as unrated_hours
        from {t.rpt_revenue_forecast_monthly}
        where {clause} and month_start_date >= ?
        group by month_start_date, revenue_type
        order by month_start_date, revenue_type
        """,
        [*params, start],
        tables=t,
    )


def forecast_accuracy() -> pd.DataFrame:
    """Every closed month and lead time with the forecast kept then and the actual (firm-wide)."""
    t = tables("rpt_forecast_accuracy")
    return read(
        f"""
        select
            month_start_date,
            lead_weeks,
            snapshot_as_of_date,
            has_snapshot,
            forecast_revenue_reporting,
            actual_revenue_reporting,
            revenue_error_pct,
            forecast_billable_utilization,
            actual_billable_utilization
        from {t.rpt_forecast_accuracy}
        order by month_start_date, lead_weeks
        """,
        tables=t,
    )


PROJECT_HEALTH_COLUMNS = (
    "project_code",
    "project_name",
    "client_name",
    "project_lead_name",
    "billing_method",
    "project_status",
    "budget_hours",
    "hours_to_date",
    "remaining_hours",
    "eac_hours",
    "hours_burn",
    "eac_hours_to_budget",
    "budget_amount_reporting",
    "contract_value_reporting",
    "value_at_completion_reporting",
    "revenue_at_completion_reporting",
    "cost_at_completion_reporting",
    "margin_at_completion_reporting",
    "margin_at_completion_pct",
    "remaining_unrated_hours",
    "remaining_uncosted_hours",
    "is_forecast_over_budget_hours",
    "is_forecast_over_budget_amount",
    "is_forecast_over_contract_value",
    "is_forecast_loss",
)


def project_health(filters: Filters) -> pd.DataFrame:
    """Every client project with work recorded or assigned, flagged ones first."""
    t = tables("rpt_project_health")
    clause, params = where(filters, _PROJECT_FILTERS)
    columns = ", ".join(PROJECT_HEALTH_COLUMNS)
    return read(
        f"""
        select {columns}
        from {t.rpt_project_health}
        where {clause}
        order by
            (is_forecast_over_budget_hours or is_forecast_over_budget_amount
                or is_forecast_over_contract_value or is_forecast_loss) desc,
            eac_hours_to_budget desc nulls last,
            project_code
        """,
        params,
        tables=t,
    )


def project_health_by_lead(filters: Filters) -> pd.DataFrame:
    """Per project lead: projects, flagged projects, hours and margin at completion."""
    t = tables("rpt_project_health")
    clause, params = where(filters, _PROJECT_FILTERS)
    return read(
        f"""
        select
            coalesce(project_lead_name, '(no lead)') as project_lead,
            count(*) as projects,
            cast(sum(
                case
                    when is_forecast_over_budget_hours or is_forecast_over_budget_amount
                        or is_forecast_over_contract_value or is_forecast_loss then 1
                    else 0
                end
            ) as integer) as flagged_projects,
            sum(budget_hours) as budget_hours,
            sum(eac_hours) as eac_hours,
            sum(revenue_at_completion_reporting) as revenue_at_completion_reporting,
            sum(margin_at_completion_reporting) as margin_at_completion_reporting,
            sum(margin_at_completion_reporting) / nullif(sum(revenue_at_completion_reporting), 0)
                as margin_at_completion_pct
        from {t.rpt_project_health}
        where {clause}
        group by 1
        order by flagged_projects desc, project_lead
        """,
        params,
        tables=t,
    )
