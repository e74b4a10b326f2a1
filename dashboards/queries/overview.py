"""The Overview page's reads: the tiles' figures and the rows behind them. The figures other pages
show too come from those pages' query modules (one query, one cache entry for both pages); the
open-exception counts are the Overview's own.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from dashboards.queries.connection import read, tables
from dashboards.queries.filters import Filters, where
from dashboards.queries.revenue_margin import dso_months, revenue_monthly, revenue_rows, revenue_total
from dashboards.queries.utilisation import utilisation_monthly, utilisation_rows, utilisation_total
from dashboards.queries.wip_billing import (
    nearest_wip_date,
    time_to_invoice_period,
    time_to_invoice_rows,
    time_to_invoice_summary,
    wip_by,
    wip_month_ends,
)

__all__ = [
    "dso_months",
    "nearest_wip_date",
    "open_exception_count",
    "open_exceptions_at_month_ends",
    "revenue_monthly",
    "revenue_rows",
    "revenue_total",
    "time_to_invoice_period",
    "time_to_invoice_rows",
    "time_to_invoice_summary",
    "utilisation_monthly",
    "utilisation_rows",
    "utilisation_total",
    "wip_by",
    "wip_month_ends",
]


def open_exception_count(filters: Filters) -> int:
    """Open exceptions now, for the entity, client and (through the project) practice filters."""
    t = tables("fct_exceptions", "dim_projects")
    clause, params = where(
        filters,
        {
            "legal_entity": "exceptions.legal_entity",
            "client": "exceptions.client_id",
            "practice": "projects.practice",
        },
    )
    frame = read(
        f"select count(*) as n from {t.fct_exceptions} as exceptions"
        f" left join {t.dim_projects} as projects on projects.project_id = exceptions.project_id"
        f" where {clause}",
        params,
        tables=t,
    )
    return int(frame.iloc[0, 0])


def open_exceptions_at_month_ends(start: date, end: date) -> pd.DataFrame:
    """Exceptions open at each month end start..end (all entities), from the history across builds.

    Only month ends on or after the first build the history knows: before it nobody was looking,
    and zero would be a false "better".
    """
    t = tables("exception_history")
    return read(
        f"""
        with bounds as (
            select min(first_detected_at) as first_build from {t.exception_history}
        ),
        month_ends as (
            select cast(months.month_start + interval '1 month' - interval '1 day' as date) as month_end
            from generate_series(cast(? as timestamp), cast(? as timestamp), interval '1 month')
                as months (month_start)
        )
        select
            month_ends.month_end,
            count(history.exception_id) as open_exceptions
        from month_ends
        cross join bounds
        left join {t.exception_history} as history
            on history.first_detected_at < month_ends.month_end + interval '1 day'
            and (history.resolved_at is null
                or history.resolved_at >= month_ends.month_end + interval '1 day')
        where month_ends.month_end >= cast(bounds.first_build as date)
        group by month_ends.month_end
        order by month_ends.month_end
        """,
        [start, end],
        tables=t,
    )
