"""The WIP & billing page's reads: rpt_wip (as-of date x project x aging bucket) and
rpt_time_to_invoice (one row per invoiced time entry).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from dashboards.queries.connection import read, tables
from dashboards.queries.filters import Filters, where

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
        " client_id, practice, legal_entity, hours, days_worked_to_invoice, days_approved_to_invoice"
        f" from {t.rpt_time_to_invoice} where {clause}"
        " order by days_worked_to_invoice desc nulls last, time_entry_id limit ?",
        [*params, limit],
        tables=t,
    )
