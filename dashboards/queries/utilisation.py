"""The Utilisation page's reads: rpt_utilization (employee x month) and fct_utilization_daily
(employee x day).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from dashboards.queries import semantic
from dashboards.queries.connection import latest, read, tables
from dashboards.queries.filters import Filters, where

_UTILISATION_FILTERS = {"legal_entity": "legal_entity", "practice": "practice", "region": "region"}
UTILISATION_GROUPS = {
    "practice": "practice",
    "grade": "grade",
    "region": "region",
    "legal entity": "legal_entity",
}

# The columns every utilisation query returns, each a metric of the semantic layer by the same
# name (sem_utilization.yml): the hour sums and the ratios of those sums over the group's rows.
UTILISATION_METRICS = (
    "capacity_hours",
    "billable_hours",
    "productive_hours",
    "total_hours",
    "target_billable_hours",
    "compliant_capacity_hours",
    "missing_hours",
    "billable_utilization",
    "productive_utilization",
    "total_utilization",
    "target_billable_utilization",
    "submission_compliance",
)


def utilisation_monthly(filters: Filters, start: date, end: date) -> pd.DataFrame:
    """Utilisation per month for the filtered people, months start..end."""
    t = tables("rpt_utilization")
    clause, params = where(
        filters, _UTILISATION_FILTERS, date_column="month_start_date", start=start, end=end
    )
    sums = semantic.definitions().select(UTILISATION_METRICS)
    return read(
        f"select month_start_date, {sums} from {t.rpt_utilization}"
        f" where {clause} group by month_start_date order by month_start_date",
        params,
        tables=t,
    )


def utilisation_total(filters: Filters) -> pd.DataFrame:
    """One row: utilisation over the whole period."""
    t = tables("rpt_utilization")
    clause, params = where(filters, _UTILISATION_FILTERS, date_column="month_start_date")
    sums = semantic.definitions().select(UTILISATION_METRICS)
    return read(
        f"select {sums}, count(distinct employee_id) as people from {t.rpt_utilization} where {clause}",
        params,
        tables=t,
    )


def utilisation_by(filters: Filters, group: str) -> pd.DataFrame:
    """Utilisation over the period by practice, grade, region or legal entity (allow-listed)."""
    t = tables("rpt_utilization")
    if group not in UTILISATION_GROUPS:
        raise ValueError(f"cannot group utilisation by {group!r}; choose one of {sorted(UTILISATION_GROUPS)}")
    column = UTILISATION_GROUPS[group]
    clause, params = where(filters, _UTILISATION_FILTERS, date_column="month_start_date")
    sums = semantic.definitions().select(UTILISATION_METRICS)
    return read(
        f"select {column} as group_value, {sums}, count(distinct employee_id) as people"
        f" from {t.rpt_utilization} where {clause} group by {column} order by {column}",
        params,
        tables=t,
    )


def utilisation_people(filters: Filters) -> pd.DataFrame:
    """Per person over the period: hours, utilisations, target, variance, compliance, missing time."""
    t = tables("rpt_utilization")
    clause, params = where(
        filters,
        {key: f"util.{column}" for key, column in _UTILISATION_FILTERS.items()},
        date_column="util.month_start_date",
    )
    definitions = semantic.definitions()
    sums = definitions.select((*UTILISATION_METRICS, "billable_utilization_variance"), table="util")
    return read(
        f"""
        with util as (select * from {t.rpt_utilization})
        select
            util.employee_id,
            min(util.employee_name) as full_name,
            {latest("util.practice", "util.month_start_date")} as practice,
            {latest("util.grade", "util.month_start_date")} as grade,
            {latest("util.region", "util.month_start_date")} as region,
            {latest("util.legal_entity", "util.month_start_date")} as legal_entity,
            {sums},
            sum(util.missing_day_count) as missing_days
        from util
        where {clause}
        group by util.employee_id
        order by billable_utilization nulls last
        """,
        params,
        tables=t,
    )


def utilisation_weekly_people(filters: Filters) -> pd.DataFrame:
    """Billable utilisation per person and ISO week (the heatmap), from fct_utilization_daily."""
    t = tables("fct_utilization_daily")
    clause, params = where(filters, _UTILISATION_FILTERS, date_column="date_day")
    sums = semantic.definitions().select(("capacity_hours", "billable_hours", "billable_utilization"))
    return read(
        f"""
        select
            employee_id,
            week_start_date,
            {sums}
        from {t.fct_utilization_daily}
        where {clause}
        group by employee_id, week_start_date
        order by employee_id, week_start_date
        """,
        params,
        tables=t,
    )


def utilisation_rows(filters: Filters) -> pd.DataFrame:
    """The rpt_utilization rows behind the utilisation figures (person x month): the grain of the
    mart, so its own ratio columns."""
    t = tables("rpt_utilization")
    clause, params = where(filters, _UTILISATION_FILTERS, date_column="month_start_date")
    return read(
        "select employee_id, employee_name, month_start_date, practice, grade, region, legal_entity,"
        " capacity_hours, billable_hours, productive_hours, total_hours, billable_utilization,"
        " target_billable_utilization, submission_compliance, missing_hours"
        f" from {t.rpt_utilization} where {clause} order by month_start_date, employee_id",
        params,
        tables=t,
    )
