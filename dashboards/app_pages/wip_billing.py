"""WIP & billing: WIP as of a chosen date by aging bucket and client, at-risk time, time to invoice."""

from __future__ import annotations

from functools import partial

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import ui
from dashboards.queries import wip_billing as q
from dashboards.queries.filters import Filters, add_months, currency_factor, month_start

filters = ui.page(
    "WIP & billing",
    "Work in progress: approved billable time and expenses not yet invoiced and completed "
    "milestones not yet billed, aged by work date. Unapproved billable time is shown beside it "
    "as at risk, not in it. Then how long work takes to reach an invoice.",
)


def wip(filters: Filters) -> None:
    dates = q.wip_as_of_dates()
    if not dates:
        st.info("WIP has not been computed for any date yet.")
        return
    default = q.nearest_wip_date(filters.end) or dates[0]
    as_of = st.selectbox(
        "WIP as of",
        dates,
        index=dates.index(default),
        format_func=lambda day: day.strftime("%d %b %Y"),
        key="wip_as_of",
        help="Month ends and every day of the last 90 days.",
    )
    factor = currency_factor(filters.currency, as_of)
    frame = q.wip_by(filters, as_of)
    frame["wip"] = frame["wip_amount_reporting"].fillna(0) * factor
    frame["at_risk"] = frame["at_risk_amount_reporting"].fillna(0) * factor
    total, at_risk = frame["wip"].sum(), frame["at_risk"].sum()
    old = frame.loc[frame["aging_bucket"] == "90+", "wip"].sum()
    columns = st.columns(4)
    with columns[0]:
        ui.tile("WIP", total, None, lambda v: ui.money(v, filters.currency))
    with columns[1]:
        ui.tile("of which older than 90 days", old, None, lambda v: ui.money(v, filters.currency))
    with columns[2]:
        ui.tile("At risk (unapproved billable time)", at_risk, None, lambda v: ui.money(v, filters.currency))
    with columns[3]:
        ui.tile("Unbilled hours", frame["wip_hours"].sum(), None, lambda v: f"{ui.count(v)} h")
    if ui.is_empty(frame[frame["wip"] != 0], f"No WIP as of {as_of:%d %b %Y} for this selection."):
        return
    by_client = frame.groupby(["client_name", "aging_bucket"], dropna=False, as_index=False)["wip"].sum()
    by_client["client_name"] = by_client["client_name"].fillna("(no client)")
    totals = by_client.groupby("client_name")["wip"].sum().sort_values(ascending=False)
    top = 15
    if len(totals) > top:  # the largest clients, the rest as one bar
        others = f"{len(totals) - top} other clients"
        by_client.loc[~by_client["client_name"].isin(totals.index[:top]), "client_name"] = others
        by_client = by_client.groupby(["client_name", "aging_bucket"], as_index=False)["wip"].sum()
    figure = ui.stacked_bars(
        by_client,
        "client_name",
        "aging_bucket",
        "wip",
        title=f"WIP by client and age (days since work), as of {as_of:%d %b %Y} ({filters.currency}"
        f"{f'; the {top} largest clients' if len(totals) > top else ''})",
        category_title="client",
        value_title=f"WIP ({filters.currency})",
        stack_order=q.WIP_AGE_BUCKETS,
        colours=ui.BUCKET_COLOURS,
        horizontal=True,
    )
    ui.show(figure, key="wip_by_client")
    st.markdown("**Projects** (the rows behind the totals)")
    table = frame.drop(columns=["wip_amount_reporting", "at_risk_amount_reporting", "aging_bucket_order"])
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            **ui.column_formats(table),
            "aging_bucket": "age (days since work)",
            "wip_item_count": st.column_config.NumberColumn("items", format=ui.COUNT_FORMAT),
            "wip": ui.money_column(f"WIP ({filters.currency})"),
            "at_risk": ui.money_column(f"at risk ({filters.currency})"),
        },
    )
    ui.download(table, "Download (CSV)", f"billable-wip-{as_of}.csv", key="wip_csv")


def wip_trend(filters: Filters) -> None:
    start = add_months(month_start(filters.end), -11)
    factor = currency_factor(filters.currency, filters.end)
    frame = q.wip_month_ends(filters, start, filters.end)
    if ui.is_empty(frame, "No month-end WIP in the last 12 months."):
        return
    figure = ui.series_figure(
        "line",
        pd.to_datetime(frame["as_of_date"]).dt.to_period("M").dt.to_timestamp(),  # labelled by month
        {
            "WIP": frame["wip_amount_reporting"] * factor,
            "at risk": frame["at_risk_amount_reporting"] * factor,
        },
        title=f"WIP and at-risk time at each month end ({filters.currency})",
        x_title="month end",
        y_title=filters.currency,
    )
    ui.show(figure, key="wip_trend", monthly=True)


# Billing methods whose revenue is recognised by progress or by month, not from unbilled items.
BY_PROGRESS = ("fixed_fee_percent_complete", "retainer")


def bridge_lines(contracts: pd.DataFrame) -> pd.DataFrame:
    """The steps from WIP to unbilled receivable, from per-contract rows: each contract's
    difference (unbilled receivable - WIP) falls in exactly one step (its unbilled expenses
    apart), so the steps add up to the difference exactly."""
    wip = contracts["wip_amount_reporting"].astype(float)
    expenses = contracts["wip_expense_amount_reporting"].astype(float)
    unbilled = contracts["unbilled_receivable_amount_reporting"].astype(float)
    no_contract = ~contracts["has_contract_month"].astype(bool)
    by_progress = ~no_contract & contracts["billing_method"].isin(BY_PROGRESS) & (unbilled != 0)
    ahead = ~no_contract & ~by_progress & (unbilled == 0)
    items = ~no_contract & ~by_progress & ~ahead  # T&M and milestones with an unbilled receivable
    steps = [
        ("WIP", "unbilled time, expenses and completed milestones at bill value", wip.sum(), "total"),
        (
            "less WIP on projects without a contract",
            "unbilled work no contract's revenue counts",
            -wip[no_contract].sum() + 0.0,
            "step",
        ),
        (
            "less WIP on contracts billed at or ahead of revenue",
            "billed to date ≥ recognised to date: no unbilled receivable (any excess is deferred revenue)",
            -wip[ahead].sum() + 0.0,
            "step",
        ),
        (
            "less unbilled expenses",
            "expenses are WIP until invoiced but never recognised revenue",
            -expenses[items].sum() + 0.0,
            "step",
        ),
        (
            "plus revenue by progress or by month not yet billed",
            "fixed fee by percent complete and retainers: recognised by progress or monthly, not from items",
            (unbilled[by_progress] - wip[by_progress]).sum(),
            "step",
        ),
        (
            "plus/less valuation differences on T&M and milestone contracts",
            "recognised less billed to date vs the unbilled time and milestones: invoices at other than "
            "the recognised value, expenses already billed, closing rate vs the work's dates' rates",
            (unbilled[items] - wip[items] + expenses[items]).sum(),
            "step",
        ),
        (
            "Unbilled receivable",
            "recognised less billed to date, per contract, when positive",
            unbilled.sum(),
            "total",
        ),
    ]
    return pd.DataFrame(steps, columns=["step", "what it is", "amount", "kind"])


def bridge(filters: Filters) -> None:
    day = filters.end
    if q.nearest_wip_date(day) != day:
        st.info(f"No WIP computed for {day:%d %b %Y}, so no bridge to the unbilled receivable.")
        return
    factor = currency_factor(filters.currency, day)
    contracts = q.wip_and_unbilled_by_contract(filters, day)
    if ui.is_empty(contracts, f"Neither WIP nor unbilled receivable at {day:%d %b %Y} for this selection."):
        return
    lines = bridge_lines(contracts)
    lines["amount"] = lines["amount"] * factor
    st.caption(
        "**WIP** is work not yet invoiced, item by item (approved billable time at its bill rate, "
        "expenses, completed milestones). **Unbilled receivable** is each contract's revenue "
        "recognised to date less what it billed to date, when positive (rpt_revenue), at the month "
        "end's rate. The steps below take one to the other contract by contract and add up exactly."
    )
    measures = ["absolute", *["relative"] * (len(lines) - 2), "total"]
    labels = [ui.wrap(step, 22) for step in lines["step"]]
    figure = go.Figure(
        go.Waterfall(
            x=labels,
            y=lines["amount"],
            measure=measures,
            connector={"line": {"color": ui.NEUTRAL}},
            increasing={"marker": {"color": ui.ACCENT}},
            decreasing={"marker": {"color": "#90caf9"}},
            totals={"marker": {"color": ui.NEUTRAL}},
            hovertemplate="%{x}: %{y:,.0f}<extra></extra>",
        )
    )
    figure.update_layout(
        title=f"From WIP to unbilled receivable at {day:%d %b %Y} ({filters.currency})",
        yaxis_title=filters.currency,
        showlegend=False,
    )
    figure.update_xaxes(tickangle=0, automargin=True)
    ui.show(figure, key="wip_bridge", height=420)
    table = lines.drop(columns=["kind"]).rename(columns={"amount": f"amount ({filters.currency})"})
    st.dataframe(
        table,
        hide_index=True,
        column_config={f"amount ({filters.currency})": ui.money_column(f"amount ({filters.currency})")},
    )


def time_to_invoice(filters: Filters) -> None:
    period = q.time_to_invoice_period(filters).iloc[0]
    columns = st.columns(3)
    with columns[0]:
        ui.tile("Entries invoiced", period["invoiced_entry_count"], None, ui.count)
    with columns[1]:
        ui.tile("Median days worked → invoiced", period["median_days"], None, ui.days)
    with columns[2]:
        ui.tile("p90 days worked → invoiced", period["p90_days"], None, ui.days)
    left, right = st.columns(2)
    with left:
        distribution = q.time_to_invoice_distribution(filters)
        if not ui.is_empty(distribution, "Nothing was invoiced in this period for this selection."):
            figure = ui.series_figure(
                "bar",
                distribution["days_worked_to_invoice"],
                {"hours": distribution["hours"]},
                title="Invoiced hours by days from work to invoice",
                x_title="days from day worked to invoice",
                y_title="hours",
            )
            ui.show(figure, key="tti_distribution")
    with right:
        start = add_months(month_start(filters.end), -11)
        trend = q.time_to_invoice_summary(filters, start, filters.end)
        if not ui.is_empty(trend, "Nothing was invoiced in the last 12 months."):
            figure = ui.series_figure(
                "line",
                trend["invoice_month"],
                {"median": trend["median_days"], "p90": trend["p90_days"]},
                title="Days from work to invoice by invoice month (median, p90)",
                x_title="invoice month",
                y_title="days",
            )
            ui.show(figure, key="tti_trend", monthly=True)
    practice = q.time_to_invoice_by_practice(filters)
    if not ui.is_empty(practice, "No invoiced time for this selection."):
        figure = ui.series_figure(
            "bar",
            practice["practice"],
            {"median": practice["median_days"], "p90": practice["p90_days"]},
            title="Billing cycle by practice: days from work to invoice",
            x_title="practice",
            y_title="days",
        )
        ui.show(figure, key="tti_practice")
    if st.toggle("Show the invoiced time entries behind these figures (slowest first)", key="tti_rows"):
        rows = q.time_to_invoice_rows(filters)
        st.dataframe(rows, hide_index=True, column_config=ui.column_formats(rows, currency=filters.currency))
        ui.download(rows, "Download (CSV)", "billable-time-to-invoice.csv", key="tti_csv")


if filters is not None:
    ui.not_applied(filters, {"legal_entity", "practice", "client"})
    st.subheader("Work in progress")
    ui.guarded(partial(wip, filters), "WIP")
    ui.guarded(partial(wip_trend, filters), "WIP trend")
    st.subheader(f"From WIP to unbilled receivable at {filters.end:%d %b %Y}")
    ui.guarded(partial(bridge, filters), "WIP to unbilled receivable")
    st.subheader("Time to invoice")
    ui.guarded(partial(time_to_invoice, filters), "Time to invoice")
