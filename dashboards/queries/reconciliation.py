"""The Reconciliation page's reads: rpt_reconciliation (project x month) and the records behind a
row (fct_reconciliation_items).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import date

import pandas as pd

from dashboards.queries.connection import read, tables
from dashboards.queries.filters import Filters, where

# --- reconciliation (rpt_reconciliation: project x month; fct_reconciliation_items: its records) ---

_RECON_FILTERS = {
    "legal_entity": "recon.legal_entity",
    "client": "recon.client_id",
    "practice": "projects.practice",
}
RECON_STATUSES = ("matched", "not_yet_billed", "explained_by_exception", "unexplained")


def reconciliation_rows(filters: Filters, statuses: Sequence[str] = ()) -> pd.DataFrame:
    """Project x month rows worked in the period: approved vs ERP vs invoiced, differences, status."""
    t = tables("rpt_reconciliation", "dim_clients", "dim_projects")
    clause, params = where(filters, _RECON_FILTERS, date_column="recon.month_start_date")
    if statuses:
        clause += f" and recon.reconciliation_status in ({', '.join('?' for _ in statuses)})"
        params += list(statuses)
    return read(
        f"""
        select
            recon.reconciliation_key, recon.month_start_date, recon.project_id, recon.project_code,
            clients.client_name, recon.legal_entity, recon.currency_code, recon.reconciliation_status,
            recon.approved_hours, recon.erp_hours, recon.invoiced_hours,
            recon.hours_not_in_erp, recon.hours_not_invoiced,
            recon.approved_amount, recon.erp_amount, recon.invoiced_amount,
            recon.amount_not_in_erp, recon.amount_not_invoiced,
            recon.approved_amount_reporting, recon.erp_amount_reporting, recon.invoiced_amount_reporting,
            recon.exception_rule_codes, recon.differing_item_count, recon.unexplained_item_count
        from {t.rpt_reconciliation} as recon
        left join {t.dim_clients} as clients on clients.client_id = recon.client_id
        left join {t.dim_projects} as projects on projects.project_id = recon.project_id
        where {clause}
        order by
            case recon.reconciliation_status when 'unexplained' then 0 when 'explained_by_exception' then 1
                when 'not_yet_billed' then 2 else 3 end,
            abs(recon.hours_not_in_erp) + abs(recon.hours_not_invoiced) desc nulls last,
            recon.month_start_date, recon.project_code
        """,
        params,
        tables=t,
    )


def reconciliation_monthly(filters: Filters, start: date, end: date) -> pd.DataFrame:
    t = tables("rpt_reconciliation", "dim_projects")
    clause, params = where(
        filters, _RECON_FILTERS, date_column="recon.month_start_date", start=start, end=end
    )
    return read(
        f"""
        select
            recon.month_start_date,
            sum(recon.approved_hours) as approved_hours,
            sum(recon.erp_hours) as erp_hours,
            sum(recon.invoiced_hours) as invoiced_hours,
            sum(recon.approved_amount_reporting) as approved_amount_reporting,
            sum(recon.erp_amount_reporting) as erp_amount_reporting,
            sum(recon.invoiced_amount_reporting) as invoiced_amount_reporting,
            count(*) filter (where recon.reconciliation_status = 'unexplained') as unexplained_rows
        from {t.rpt_reconciliation} as recon
        left join {t.dim_projects} as projects on projects.project_id = recon.project_id
        where {clause}
        group by recon.month_start_date
        order by recon.month_start_date
        """,
        params,
        tables=t,
    )


def reconciliation_items(project_id: str | None, month: date) -> pd.DataFrame:
    """The records behind one reconciliation row: time entries, TimeActivities, invoice lines."""
    t = tables("fct_reconciliation_items")
    return read(
        f"""
        select item_key, item_type, time_entry_id, work_date, currency_code, approved_hours, erp_hours,
            invoiced_hours, approved_amount, erp_amount, invoiced_amount, erp_time_activity_count,
            invoice_line_count, exception_rule_codes, difference_reason, reconciliation_status
        from {t.fct_reconciliation_items}
        where project_id is not distinct from ? and month_start_date = ?
        order by reconciliation_status = 'matched', work_date, item_key
        """,
        [project_id, month],
        tables=t,
    )
