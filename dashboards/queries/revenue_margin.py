"""The Revenue & margin page's reads: rpt_revenue (contract x month), rpt_realization (client
project x month), rpt_ar_aging and rpt_dso (legal entity x month).
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from dashboards.queries import semantic
from dashboards.queries.connection import read, tables
from dashboards.queries.filters import Filters, month_start, where

# --- revenue and margin (rpt_revenue: contract x month), realisation (rpt_realization) ----------
# Margin exists at contract level and above only: cost inside rpt_revenue is summed over everyone
# who worked on the contract in the month.

_REVENUE_FILTERS = {
    "legal_entity": "revenue.legal_entity",
    "practice": "revenue.practice",
    "client": "revenue.client_id",
}
REVENUE_GROUPS = {
    "client": "clients.client_name",
    "contract": "revenue.contract_number",
    "practice": "revenue.practice",
    "legal entity": "revenue.legal_entity",
    "billing method": "revenue.billing_method",
}

# Column -> metric of the semantic layer (sem_finance.yml). Flows add up over months; balances
# are month-end positions (semi-additive), summed only within one month.
_REVENUE_FLOWS = {
    "recognized_revenue_reporting": "recognized_revenue",
    "billed_reporting": "contract_billed_amount",
    "cost_reporting": "direct_cost",
    "gross_margin_reporting": "gross_margin",
    "gross_margin_pct": "gross_margin_pct",
}
_REVENUE_BALANCES = {
    "unbilled_receivable_reporting": "unbilled_receivable",
    "deferred_revenue_reporting": "deferred_revenue",
    "backlog_reporting": "backlog",
}


def revenue_total(filters: Filters) -> pd.DataFrame:
    """One row: flows over the period, balances at the period's last month end."""
    t = tables("rpt_revenue")
    clause, params = where(filters, _REVENUE_FILTERS, date_column="revenue.month_start_date")
    definitions = semantic.definitions()
    flows = definitions.select(_REVENUE_FLOWS, table="revenue")
    balances = definitions.select(_REVENUE_BALANCES, table="revenue", snapshots=True)  # one month
    return read(
        f"""
        with scoped as (
            select revenue.* from {t.rpt_revenue} as revenue where {clause}
        ),
        flows as (
            select {flows} from scoped as revenue
        ),
        balances as (
            select {balances} from scoped as revenue where revenue.month_start_date = ?
        )
        select * from flows cross join balances
        """,
        [*params, month_start(filters.end)],
        tables=t,
    )


def revenue_monthly(filters: Filters, start: date, end: date) -> pd.DataFrame:
    """Flows and month-end balances per month, start..end."""
    t = tables("rpt_revenue")
    clause, params = where(
        filters, _REVENUE_FILTERS, date_column="revenue.month_start_date", start=start, end=end
    )
    definitions = semantic.definitions()
    flows = definitions.select(_REVENUE_FLOWS, table="revenue")
    balances = definitions.select(_REVENUE_BALANCES, table="revenue", snapshots=True)  # per month
    return read(
        f"select revenue.month_start_date, {flows}, {balances}"
        f" from {t.rpt_revenue} as revenue where {clause}"
        " group by revenue.month_start_date order by revenue.month_start_date",
        params,
        tables=t,
    )


def revenue_by(filters: Filters, group: str) -> pd.DataFrame:
    """Revenue, cost and margin over the period by client, contract, practice, entity or method."""
    t = tables("rpt_revenue", "dim_clients")
    if group not in REVENUE_GROUPS:
        raise ValueError(f"cannot group revenue by {group!r}; choose one of {sorted(REVENUE_GROUPS)}")
    column = REVENUE_GROUPS[group]
    clause, params = where(filters, _REVENUE_FILTERS, date_column="revenue.month_start_date")
    flows = semantic.definitions().select(_REVENUE_FLOWS, table="revenue")
    return read(
        f"""
        select coalesce({column}, '(none)') as group_value, {flows}
        from {t.rpt_revenue} as revenue
        left join {t.dim_clients} as clients on clients.client_id = revenue.client_id
        where {clause}
        group by 1
        order by recognized_revenue_reporting desc nulls last
        """,
        params,
        tables=t,
    )


def revenue_rows(filters: Filters) -> pd.DataFrame:
    """The rpt_revenue rows (contract x month) behind the revenue and margin figures."""
    t = tables("rpt_revenue", "dim_clients")
    clause, params = where(filters, _REVENUE_FILTERS, date_column="revenue.month_start_date")
    return read(
        "select revenue.contract_id, revenue.contract_number, clients.client_name, revenue.legal_entity,"
        " revenue.practice, revenue.billing_method, revenue.month_start_date, revenue.currency_code,"
        " revenue.recognized_amount, revenue.recognized_amount_reporting, revenue.billed_amount_reporting,"
        " revenue.cost_amount_reporting, revenue.gross_margin_amount_reporting, revenue.gross_margin_pct,"
        " revenue.unbilled_receivable_amount_reporting, revenue.deferred_revenue_amount_reporting,"
        " revenue.backlog_amount_reporting"
        f" from {t.rpt_revenue} as revenue left join {t.dim_clients} as clients"
        f" on clients.client_id = revenue.client_id where {clause}"
        " order by revenue.month_start_date, revenue.contract_number",
        params,
        tables=t,
    )


_REALIZATION_FILTERS = {"legal_entity": "legal_entity", "practice": "practice", "client": "client_id"}
# Column -> metric of the semantic layer (sem_billing.yml).
_REALIZATION_METRICS = {
    "standard_value_reporting": "standard_value",
    "billed_reporting": "billed_amount",
    "realization_rate": "realization_rate",
    "billed_standard_value_reporting": "billed_standard_value",
    "billed_time_realization_rate": "billed_time_realization_rate",
    "effective_bill_rate_reporting": "effective_bill_rate",
    "client_hours": "client_hours",
}
REALIZATION_GROUPS = {
    "practice": "practice",
    "legal entity": "legal_entity",
    "billing method": "billing_method",
}


def realization_by(filters: Filters, group: str) -> pd.DataFrame:
    """Realisation (billed / standard value, by month worked, and on billed time only) and the
    effective bill rate over the period by a group."""
    t = tables("rpt_realization")
    if group not in REALIZATION_GROUPS:
        raise ValueError(f"cannot group realisation by {group!r}; choose one of {sorted(REALIZATION_GROUPS)}")
    column = REALIZATION_GROUPS[group]
    clause, params = where(filters, _REALIZATION_FILTERS, date_column="month_start_date")
    figures = semantic.definitions().select(_REALIZATION_METRICS)
    return read(
        f"""
        select
            {column} as group_value,
            {figures}
        from {t.rpt_realization}
        where {clause}
        group by 1
        order by 1
        """,
        params,
        tables=t,
    )


def realization_total(filters: Filters) -> pd.DataFrame:
    t = tables("rpt_realization")
    clause, params = where(filters, _REALIZATION_FILTERS, date_column="month_start_date")
    rates = semantic.definitions().select(
        {
            column: _REALIZATION_METRICS[column]
            for column in (
                "realization_rate",
                "billed_time_realization_rate",
                "billed_standard_value_reporting",
                "effective_bill_rate_reporting",
            )
        }
    )
    return read(
        f"select {rates} from {t.rpt_realization} where {clause}",
        params,
        tables=t,
    )


# --- receivables (rpt_ar_aging, rpt_dso: legal entity x month) ------------------------------------

_ENTITY_FILTER = {"legal_entity": "legal_entity"}


def dso_months(filters: Filters, start: date, end: date) -> pd.DataFrame:
    """DSO per month for the chosen entities: summed receivables x 90 / summed 90-day invoicing
    (the semantic layer's `dso`)."""
    t = tables("rpt_dso")
    clause, params = where(filters, _ENTITY_FILTER, date_column="month_start_date", start=start, end=end)
    # one snapshot per entity and month (rpt_dso's grain), so the balances may be summed per month
    definitions = semantic.definitions()
    receivables = definitions.select({"open_receivables_reporting": "open_receivables"}, snapshots=True)
    invoiced = definitions.select(
        {"invoiced_90_days_reporting": "invoiced_90_days", "dso_days": "dso"}, snapshots=True
    )
    return read(
        f"""
        select
            month_start_date,
            max(as_of_date) as as_of_date,
            {receivables},
            sum(overdue_receivables_reporting) as overdue_receivables_reporting,
            {invoiced}
        from {t.rpt_dso}
        where {clause}
        group by month_start_date
        order by month_start_date
        """,
        params,
        tables=t,
    )


def ar_aging(filters: Filters, month: date) -> pd.DataFrame:
    """Open receivables by aging bucket and entity at a month's snapshot."""
    t = tables("rpt_ar_aging")
    clause, params = where(filters, _ENTITY_FILTER)
    return read(
        f"""
        select legal_entity, aging_bucket, aging_bucket_order, max(as_of_date) as as_of_date,
            sum(open_invoice_count) as open_invoice_count, sum(open_amount_reporting) as open_amount_reporting
        from {t.rpt_ar_aging}
        where month_start_date = ? and {clause}
        group by legal_entity, aging_bucket, aging_bucket_order
        order by aging_bucket_order, legal_entity
        """,
        [month, *params],
        tables=t,
    )


# --- receivables by client and the overdue invoices (fct_invoices, as of the warehouse's now) ---
# fct_invoices carries each invoice's balance, due date and days overdue at the warehouse's now;
# its open balances add up to rpt_ar_aging's snapshot of now.

_INVOICE_FILTERS = {"legal_entity": "invoices.legal_entity", "client": "invoices.client_id"}


def receivables_by_client(filters: Filters) -> pd.DataFrame:
    """Open receivables per client now: open and overdue balance (reporting currency), invoices,
    the oldest days overdue."""
    t = tables("fct_invoices", "dim_clients")
    clause, params = where(filters, _INVOICE_FILTERS)
    return read(
        f"""
        select
            invoices.client_id,
            coalesce(clients.client_name, '(client not in the CRM)') as client_name,
            count(*) as open_invoices,
            sum(invoices.balance_reporting) as open_amount_reporting,
            sum(case when invoices.is_overdue then 1 else 0 end) as overdue_invoices,
            sum(case when invoices.is_overdue then invoices.balance_reporting else 0 end)
                as overdue_amount_reporting,
            max(case when invoices.is_overdue then invoices.days_overdue end) as max_days_overdue
        from {t.fct_invoices} as invoices
        left join {t.dim_clients} as clients on clients.client_id = invoices.client_id
        where invoices.balance <> 0 and {clause}
        group by invoices.client_id, clients.client_name
        order by overdue_amount_reporting desc, open_amount_reporting desc, client_name
        """,
        params,
        tables=t,
    )


def overdue_invoices(filters: Filters) -> pd.DataFrame:
    """The invoices past their due date with a balance now, most overdue first."""
    t = tables("fct_invoices", "dim_clients")
    clause, params = where(filters, _INVOICE_FILTERS)
    return read(
        f"""
        select
            invoices.doc_number,
            invoices.client_id,
            coalesce(clients.client_name, '(client not in the CRM)') as client_name,
            invoices.legal_entity,
            invoices.invoice_date,
            invoices.due_date,
            invoices.days_overdue,
            invoices.currency_code,
            invoices.total_amount,
            invoices.balance,
            invoices.balance_reporting
        from {t.fct_invoices} as invoices
        left join {t.dim_clients} as clients on clients.client_id = invoices.client_id
        where invoices.is_overdue and invoices.balance <> 0 and {clause}
        order by invoices.days_overdue desc, invoices.balance_reporting desc, invoices.doc_number
        """,
        params,
        tables=t,
    )
