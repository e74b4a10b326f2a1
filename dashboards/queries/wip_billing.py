"""The WIP & billing page's reads: rpt_wip (as-of date x project x aging bucket) and
rpt_time_to_invoice (one row per invoiced time entry).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from dashboards.queries.connection import read, tables
from dashboards.queries.filters import Filters, month_start, where

WIP_AGE_BUCKETS = ("0-30", "31-60", "61-90", "90+")

# --- WIP (rpt_wip: as-of date x project x aging bucket) -----------------------------------------

_WIP_FILTERS = {"legal_entity": "wip.legal_entity", "practice": "wip.practice", "client": "wip.client_id"}


def wip_as_of_dates() -> list[date]:
    """The as-of dates rpt_wip holds (month ends, the last 90 days, the warehouse's now)."""
    t = tables("rpt_wip")
    frame = read(f"select distinct as_of_date from {t.rpt_wip} order by 1 desc nulls last", tables=t)
    return [pd.Timestamp(value).date() for value in frame["as_of_date"]]


def nearest_wip_date(on: date) -> date | None:
    """The latest as-of date rpt_wip holds on or before a day."""
    t = tables("rpt_wip")
    frame = read(
        f"select max(as_of_date) as as_of_date from {t.rpt_wip} where as_of_date <= ?", [on], tables=t
    )
    value = frame.iloc[0, 0] if not frame.empty else None
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def wip_by(filters: Filters, as_of: date | None) -> pd.DataFrame:
    """WIP as of a date by client, project and aging bucket, with the at-risk unapproved time
    (no rows for None: no WIP date yet)."""
    t = tables("rpt_wip")
    clause, params = where(filters, _WIP_FILTERS)
    return read(
        f"""
        select
            wip.client_id,
            wip.client_name,
            wip.project_id,
            wip.project_code,
            wip.project_name,
            wip.practice,
            wip.legal_entity,
            wip.aging_bucket,
            wip.aging_bucket_order,
            sum(wip.wip_hours) as wip_hours,
            sum(wip.wip_amount_reporting) as wip_amount_reporting,
            sum(wip.at_risk_hours) as at_risk_hours,
            sum(wip.at_risk_amount_reporting) as at_risk_amount_reporting,
            sum(wip.wip_item_count) as wip_item_count
        from {t.rpt_wip} as wip
        where wip.as_of_date = ? and {clause}
        group by wip.client_id, wip.client_name, wip.project_id, wip.project_code, wip.project_name,
            wip.practice, wip.legal_entity, wip.aging_bucket, wip.aging_bucket_order
        order by wip_amount_reporting desc nulls last, wip.project_id, wip.aging_bucket_order, wip.client_id
        """,
        [as_of, *params],
        tables=t,
    )


def wip_month_ends(filters: Filters, start: date, end: date) -> pd.DataFrame:
    """Total WIP and at-risk amount at each month end between two days."""
    t = tables("rpt_wip")
    clause, params = where(filters, _WIP_FILTERS)
    return read(
        f"""
        select
            wip.as_of_date,
            sum(wip.wip_amount_reporting) as wip_amount_reporting,
            sum(wip.at_risk_amount_reporting) as at_risk_amount_reporting
        from {t.rpt_wip} as wip
        where wip.is_month_end and wip.as_of_date between ? and ? and {clause}
        group by wip.as_of_date
        order by wip.as_of_date
        """,
        [start, end, *params],
        tables=t,
    )


# --- time to invoice (rpt_time_to_invoice: one row per invoiced time entry) ---------------------

_TTI_FILTERS = {"legal_entity": "legal_entity", "practice": "practice", "client": "client_id"}


def time_to_invoice_summary(filters: Filters, start: date, end: date) -> pd.DataFrame:
    """Median and p90 days worked -> invoiced per invoice month, for entries invoiced start..end."""
    t = tables("rpt_time_to_invoice")
    clause, params = where(filters, _TTI_FILTERS, date_column="invoice_date", start=start, end=end)
    return read(
        f"""
        select
            invoice_month,
            count(*) as invoiced_entry_count,
            sum(hours) as invoiced_hours,
            percentile_cont(0.5) within group (order by days_worked_to_invoice) as median_days,
            percentile_cont(0.9) within group (order by days_worked_to_invoice) as p90_days,
            percentile_cont(0.5) within group (order by days_approved_to_invoice) as median_days_from_approval
        from {t.rpt_time_to_invoice}
        where {clause}
        group by invoice_month
        order by invoice_month
        """,
        params,
        tables=t,
    )


def time_to_invoice_period(filters: Filters) -> pd.DataFrame:
    """One row: median and p90 over every entry invoiced in the period."""
    t = tables("rpt_time_to_invoice")
    clause, params = where(filters, _TTI_FILTERS, date_column="invoice_date")
    return read(
        f"""
        select
            count(*) as invoiced_entry_count,
            percentile_cont(0.5) within group (order by days_worked_to_invoice) as median_days,
            percentile_cont(0.9) within group (order by days_worked_to_invoice) as p90_days
        from {t.rpt_time_to_invoice}
        where {clause}
        """,
        params,
        tables=t,
    )


def time_to_invoice_by_practice(filters: Filters) -> pd.DataFrame:
    t = tables("rpt_time_to_invoice")
    clause, params = where(filters, _TTI_FILTERS, date_column="invoice_date")
    return read(
        f"""
        select
            practice,
            count(*) as invoiced_entry_count,
            percentile_cont(0.5) within group (order by days_worked_to_invoice) as median_days,
            percentile_cont(0.9) within group (order by days_worked_to_invoice) as p90_days,
            percentile_cont(0.5) within group (order by days_approved_to_invoice) as median_days_from_approval
        from {t.rpt_time_to_invoice}
        where {clause}
        group by practice
        order by median_days desc nulls last
        """,
        params,
        tables=t,
    )


def time_to_invoice_distribution(filters: Filters) -> pd.DataFrame:
    """Invoiced entries and hours by days worked -> invoiced (the histogram)."""
    t = tables("rpt_time_to_invoice")
    clause, params = where(filters, _TTI_FILTERS, date_column="invoice_date")
    return read(
        f"""
        select days_worked_to_invoice, count(*) as entries, sum(hours) as hours
        from {t.rpt_time_to_invoice}
        where {clause}
        group by days_worked_to_invoice
        order by days_worked_to_invoice
        """,
        params,
        tables=t,
    )


def time_to_invoice_rows(filters: Filters, limit: int = 5000) -> pd.DataFrame:
    t = tables("rpt_time_to_invoice")
    clause, params = where(filters, _TTI_FILTERS, date_column="invoice_date")
    return read(
        "select time_entry_id, spent_date, approved_date, invoice_date, erp_invoice_key, project_id,"
        " project_code, project_name, client_id, client_name, employee_name, practice, legal_entity, hours,"
        " days_worked_to_invoice, days_approved_to_invoice"
        f" from {t.rpt_time_to_invoice} where {clause}"
        " order by days_worked_to_invoice desc nulls last, time_entry_id limit ?",
        [*params, limit],
        tables=t,
    )


# --- from WIP to unbilled receivable (rpt_wip and rpt_revenue at one month end) ------------------

_REVENUE_FILTERS = {
    "legal_entity": "revenue.legal_entity",
    "practice": "revenue.practice",
    "client": "revenue.client_id",
}


def wip_and_unbilled_by_contract(filters: Filters, month_end_date: date) -> pd.DataFrame:
    """Per contract at a month end: WIP (rpt_wip, with its unbilled expenses) and the unbilled
    receivable (rpt_revenue), the same filters on both; WIP on projects without a contract-month
    in rpt_revenue is one row with `has_contract_month` false (contract_id null if none)."""
    t = tables("rpt_wip", "rpt_revenue", "dim_clients")
    wip_clause, wip_params = where(filters, _WIP_FILTERS)
    revenue_clause, revenue_params = where(filters, _REVENUE_FILTERS)
    return read(
        f"""
        with wip as (
            select
                wip.contract_id,
                sum(wip.wip_amount_reporting) as wip_amount_reporting,
                sum(wip.wip_expense_amount_reporting) as wip_expense_amount_reporting
            from {t.rpt_wip} as wip
            where wip.as_of_date = ? and {wip_clause}
            group by wip.contract_id
        ),
        revenue as (
            select
                revenue.contract_id,
                revenue.contract_number,
                revenue.client_id,
                revenue.billing_method,
                sum(revenue.unbilled_receivable_amount_reporting) as unbilled_receivable_amount_reporting
            from {t.rpt_revenue} as revenue
            where revenue.month_start_date = ? and {revenue_clause}
            group by revenue.contract_id, revenue.contract_number, revenue.client_id, revenue.billing_method
        )
        select
            coalesce(revenue.contract_id, wip.contract_id) as contract_id,
            revenue.contract_number,
            clients.client_name,
            revenue.billing_method,
            revenue.contract_id is not null as has_contract_month,
            coalesce(wip.wip_amount_reporting, 0) as wip_amount_reporting,
            coalesce(wip.wip_expense_amount_reporting, 0) as wip_expense_amount_reporting,
            coalesce(revenue.unbilled_receivable_amount_reporting, 0) as unbilled_receivable_amount_reporting
        from wip
        full outer join revenue on revenue.contract_id = wip.contract_id
        left join {t.dim_clients} as clients on clients.client_id = revenue.client_id
        order by revenue.contract_number nulls last, contract_id nulls last
        """,
        [month_end_date, *wip_params, month_start(month_end_date), *revenue_params],
        tables=t,
    )
