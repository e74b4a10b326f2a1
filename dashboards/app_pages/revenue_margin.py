"""Revenue & margin: recognised vs billed, balances, margin by client/contract/practice, realisation."""

from __future__ import annotations

from functools import partial

import plotly.graph_objects as go
import streamlit as st

from dashboards import ui
from dashboards.queries import revenue_margin as q
from dashboards.queries.connection import current_access, finite
from dashboards.queries.coverage import missing_comparison
from dashboards.queries.filters import Filters, add_months, as_of_date, currency_factor, month_start

filters = ui.page(
    "Revenue & margin",
    "Revenue recognised by each contract's method against what was billed; unbilled receivable "
    "and deferred revenue; gross margin at contract level and above (never per person); "
    "realisation and backlog; receivables by age and DSO.",
)


def headline(filters: Filters) -> None:
    factor = currency_factor(filters.currency, filters.end)
    now = q.revenue_total(filters).iloc[0]
    # compare only with a period rpt_revenue covers: flows need all of it, balances its last month
    flows_note = missing_comparison(filters, "rpt_revenue")
    balances_note = missing_comparison(filters, "rpt_revenue", balance=True)
    before = q.revenue_total(filters.previous()).iloc[0] if not balances_note else None

    def money(value):
        return ui.money(value, filters.currency)

    def scaled(row, key):
        number = None if row is None else finite(row[key])
        return None if number is None else number * factor

    def pct(row, key):
        return None if row is None else row[key]

    first = st.columns(4)
    with first[0]:
        ui.tile(
            "Recognised revenue",
            scaled(now, "recognized_revenue_reporting"),
            scaled(before, "recognized_revenue_reporting"),
            money,
            no_comparison=flows_note,
        )
    with first[1]:
        ui.tile(
            "Billed",
            scaled(now, "billed_reporting"),
            scaled(before, "billed_reporting"),
            money,
            no_comparison=flows_note,
        )
    access = current_access()  # a role without cost sees no margin; without cost rates, no margin %
    with first[2]:
        if access.sees_cost:
            ui.tile(
                "Gross margin",
                scaled(now, "gross_margin_reporting"),
                scaled(before, "gross_margin_reporting"),
                money,
                no_comparison=flows_note,
                help=None if access.sees_cost_rates else COST_RULE.format(k=access.cost_min_people),
            )
    with first[3]:
        if access.sees_cost_rates:
            ui.tile(
                "Gross margin %",
                now["gross_margin_pct"],
                pct(before, "gross_margin_pct"),
                ui.percent,
                delta_kind="points",
                no_comparison=flows_note,
            )
    second = st.columns(4)
    end_label = f"at {filters.end:%d %b %Y}"
    with second[0]:
        ui.tile(
            f"Unbilled receivable {end_label}",
            scaled(now, "unbilled_receivable_reporting"),
            scaled(before, "unbilled_receivable_reporting"),
            money,
            no_comparison=balances_note,
            higher_is_better=False,
        )
    with second[1]:
        ui.tile(
            f"Deferred revenue {end_label}",
            scaled(now, "deferred_revenue_reporting"),
            scaled(before, "deferred_revenue_reporting"),
            money,
            no_comparison=balances_note,
            higher_is_better=None,
        )
    with second[2]:
        ui.tile(
            f"Backlog {end_label}",
            scaled(now, "backlog_reporting"),
            scaled(before, "backlog_reporting"),
            money,
            no_comparison=balances_note,
            help="Contract value not yet recognised (fixed fee and capped T&M; retainers excluded).",
        )
    with second[3]:
        ui.guarded(partial(realisation_tile, filters), "Realisation", compact=True)


def realisation_tile(filters: Filters) -> None:
    # The headline is realisation on billed time: what was invoiced for the hours already billed
    # against their standard value. By month worked (realization_rate), hours not invoiced yet
    # count as unbilled, so the latest months always look low; that view is the chart below.
    now = q.realization_total(filters).iloc[0]
    note = missing_comparison(filters, "rpt_realization")
    if finite(now["billed_standard_value_reporting"]) in (None, 0.0):
        # nothing of the period invoiced yet: say so, rather than a rate of nothing
        note = "no hours invoiced yet"
    before = None if note else q.realization_total(filters.previous()).iloc[0]["billed_time_realization_rate"]
    ui.tile(
        "Realisation (billed time)",
        now["billed_time_realization_rate"],
        before,
        ui.percent,
        delta_kind="points",
        no_comparison=note,
        help="Invoiced amount of the hours already billed / their standard value (hours x rate-card "
        "rate), for the hours worked in the period (rpt_realization, billed_time_realization_rate). "
        "Fee lines and hours not invoiced yet are left out. By month worked, counting unbilled hours "
        f"and fees: {ui.percent(now['realization_rate'])} (the chart below).",
    )


def trend(filters: Filters) -> None:
    factor = currency_factor(filters.currency, filters.end)
    start = add_months(month_start(filters.end), -11)
    monthly = q.revenue_monthly(filters, start, filters.end)
    if ui.is_empty(monthly, "No contract activity in the last 12 months for this selection."):
        return
    figure = go.Figure()
    figure.add_bar(
        x=monthly["month_start_date"],
        y=monthly["recognized_revenue_reporting"] * factor,
        name="recognised",
        marker_color=ui.ACCENT,
    )
    figure.add_bar(
        x=monthly["month_start_date"],
        y=monthly["billed_reporting"] * factor,
        name="billed",
        marker_color="#90caf9",
    )
    margin = current_access().sees_cost_rates
    if margin:
        figure.add_scatter(
            x=monthly["month_start_date"],
            y=monthly["gross_margin_pct"],
            name="gross margin %",
            yaxis="y2",
            mode="lines+markers",
            line={"color": ui.GOOD},
        )
    figure.update_layout(
        title=f"Recognised vs billed by month{', with gross margin %' * margin} ({filters.currency})",
        barmode="group",
        yaxis={"title": filters.currency},
        yaxis2={"title": "gross margin %", "overlaying": "y", "side": "right", "tickformat": ".0%"},
    )
    ui.show(figure, key="revenue_trend", monthly=True)


def breakdown(filters: Filters) -> None:
    factor = currency_factor(filters.currency, filters.end)
    group = st.segmented_control("Margin by", list(q.REVENUE_GROUPS), default="client", key="revenue_group")
    group = group or "client"
    frame = q.revenue_by(filters, group)
    if ui.is_empty(frame, "No revenue or cost in this period for this selection."):
        return
    access = current_access()
    if not access.sees_cost_rates:
        st.caption(COST_RULE.format(k=access.cost_min_people))
        frame = frame.drop(columns=["gross_margin_pct"])
    for column in (
        "recognized_revenue_reporting",
        "billed_reporting",
        "cost_reporting",
        "gross_margin_reporting",
    ):
        frame[column] = frame[column] * factor
    top = frame.head(25)
    parts = top.melt(
        id_vars="group_value",
        value_vars=["gross_margin_reporting", "cost_reporting"],
        var_name="part",
        value_name="amount",
    ).replace({"part": {"gross_margin_reporting": "margin", "cost_reporting": "cost"}})
    figure = ui.stacked_bars(
        parts,
        "group_value",
        "part",
        "amount",
        title=f"Recognised revenue split into margin and cost by {group}, {ui.period_label(filters)} "
        f"({filters.currency}{'; top 25' if len(frame) > 25 else ''})",
        category_title=group,
        value_title=filters.currency,
        stack_order=("margin", "cost"),
        colours={"margin": ui.GOOD, "cost": ui.NEUTRAL},
        horizontal=True,
    )
    figure.update_layout(barmode="relative")  # a negative margin shows left of zero
    ui.show(figure, key="revenue_breakdown")
    st.dataframe(
        frame.rename(columns={"group_value": group}),
        hide_index=True,
        column_config={
            "recognized_revenue_reporting": ui.money_column(f"recognised ({filters.currency})"),
            "billed_reporting": ui.money_column(f"billed ({filters.currency})"),
            "cost_reporting": ui.money_column(f"cost ({filters.currency})"),
            "gross_margin_reporting": ui.money_column(f"margin ({filters.currency})"),
            "gross_margin_pct": ui.percent_column("margin %"),
        },
    )


def realisation(filters: Filters) -> None:
    group = st.segmented_control(
        "Realisation by", list(q.REALIZATION_GROUPS), default="practice", key="realization_group"
    )
    group = group or "practice"
    frame = q.realization_by(filters, group)
    if ui.is_empty(frame, "No billable time with a standard value in this period."):
        return
    figure = ui.series_figure(
        "bar",
        frame["group_value"],
        {
            "on billed time": frame["billed_time_realization_rate"],
            "by month worked (all billable hours and fees)": frame["realization_rate"],
        },
        title=f"Realisation by {group}: billed / standard value, {ui.period_label(filters)}",
        x_title=group,
        y_title="billed / standard value",
    )
    figure.add_hline(y=1, line_dash="dash", line_color=ui.NEUTRAL)
    st.caption(
        "**On billed time** compares what was invoiced for the hours already billed with their "
        "standard value: the rate actually achieved. **By month worked** divides everything billed "
        "for the period's work (time and fee lines) by the standard value of all its billable hours, "
        "invoiced or not: hours worked but not invoiced yet count as unbilled, so the latest months "
        "look low until their invoices are issued, and fixed fees billed above or below the hours' "
        "value move it too."
    )
    figure.update_yaxes(tickformat=".0%")
    ui.show(figure, key="realization_by")


def rows(filters: Filters) -> None:
    if st.toggle("Show the contract-month rows behind these figures (rpt_revenue)", key="revenue_rows"):
        frame = q.revenue_rows(filters)
        st.dataframe(
            frame,
            hide_index=True,
            column_config=ui.column_formats(frame, percent=ui.RATIO_COLUMNS, currency=filters.currency),
        )
        ui.download(frame, "Download (CSV)", "billable-revenue.csv", key="revenue_csv")


def receivables(filters: Filters) -> None:
    month = month_start(filters.end)
    factor = currency_factor(filters.currency, filters.end)
    aging = q.ar_aging(filters, month)
    left, right = st.columns(2)
    with left:
        if not ui.is_empty(aging, f"No open receivables at the end of {month:%b %Y}."):
            aging["open"] = aging["open_amount_reporting"] * factor
            buckets = aging.sort_values("aging_bucket_order")["aging_bucket"].unique()
            figure = ui.stacked_bars(
                aging,
                "aging_bucket",
                "legal_entity",
                "open",
                title=f"Open receivables by age past due, {month:%b %Y} ({filters.currency})",
                category_title="days past due",
                value_title=filters.currency,
                colours=ui.categorical_colours(aging["legal_entity"]),
            )
            figure.update_xaxes(categoryorder="array", categoryarray=list(buckets))
            ui.show(figure, key="ar_aging")
    with right:
        start = add_months(month, -11)
        dso = q.dso_months(filters, start, filters.end)
        if not ui.is_empty(dso, "No DSO in the last 12 months."):
            figure = ui.series_figure(
                "line",
                dso["month_start_date"],
                {"DSO": dso["dso_days"]},
                title="DSO by month (open receivables / last 90 days' invoicing x 90)",
                x_title="month",
                y_title="days",
            )
            ui.show(figure, key="dso_trend", monthly=True)


def receivables_by_client(filters: Filters) -> None:
    as_of = as_of_date()
    factor = currency_factor(filters.currency, as_of or filters.end)
    clients = q.receivables_by_client(filters)
    st.markdown(f"**By client, as of {as_of:%d %b %Y}** (the warehouse's now, not the period's end)")
    ui.not_applied(filters, {"legal_entity", "client"})
    if ui.is_empty(clients, "No open invoices now for this selection."):
        return
    for column in ("open_amount_reporting", "overdue_amount_reporting"):
        clients[column] = clients[column] * factor
    money = filters.currency
    st.dataframe(
        clients,
        hide_index=True,
        column_config={
            "client_id": None,
            "client_name": "client",
            "open_invoices": st.column_config.NumberColumn("open invoices", format=ui.COUNT_FORMAT),
            "open_amount_reporting": ui.money_column(f"open ({money})"),
            "overdue_invoices": st.column_config.NumberColumn("overdue invoices", format=ui.COUNT_FORMAT),
            "overdue_amount_reporting": ui.money_column(f"overdue ({money})"),
            "max_days_overdue": st.column_config.NumberColumn("most days overdue", format=ui.COUNT_FORMAT),
        },
    )
    overdue = q.overdue_invoices(filters)
    st.markdown(f"**Overdue invoices** ({len(overdue):,}), most overdue first")
    if ui.is_empty(overdue, "No invoice is past its due date."):
        ui.downloads({"Receivables by client": clients}, "billable-receivables", key="receivables")
        return
    overdue["balance_reporting"] = overdue["balance_reporting"] * factor
    st.dataframe(
        overdue,
        hide_index=True,
        column_config={
            "doc_number": "invoice",
            "client_id": None,
            "client_name": "client",
            "legal_entity": "legal entity",
            "invoice_date": st.column_config.DateColumn("invoiced", format="DD MMM YYYY"),
            "due_date": st.column_config.DateColumn("due", format="DD MMM YYYY"),
            "days_overdue": st.column_config.NumberColumn("days overdue", format=ui.COUNT_FORMAT),
            "currency_code": "currency",
            "total_amount": ui.money_column("total (invoice currency)"),
            "balance": ui.money_column("open (invoice currency)"),
            "balance_reporting": ui.money_column(f"open ({money})"),
        },
    )
    ui.downloads(
        {"Receivables by client": clients, "Overdue invoices": overdue},
        "billable-receivables",
        key="receivables",
    )


COST_RULE = (
    "Cost and margin here sum only contract-months that at least {k} people worked on: with fewer, "
    "cost / hours would reveal a person's cost rate, so those months' cost and margin are withheld."
)

if filters is not None:
    ui.not_applied(filters, {"legal_entity", "practice", "client"})
    ui.guarded(partial(headline, filters), "Revenue and margin")
    ui.guarded(partial(trend, filters), "Revenue trend")
    if current_access().sees_cost:  # sections a role may not see are not drawn at all
        ui.guarded(partial(breakdown, filters), "Margin breakdown")
    ui.guarded(partial(realisation, filters), "Realisation")
    ui.guarded(partial(rows, filters), "Revenue rows")
    if not current_access().practices:  # receivables are by legal entity: no practice to limit by
        st.subheader("Receivables")
        ui.not_applied(filters, {"legal_entity"})
        ui.guarded(partial(receivables, filters), "Receivables")
        ui.guarded(partial(receivables_by_client, filters), "Receivables by client")
