"""Revenue & margin: recognised vs billed, balances, margin by client/contract/practice, realisation."""

from __future__ import annotations

from functools import partial

import plotly.graph_objects as go
import streamlit as st

from dashboards import ui
from dashboards.queries import revenue_margin as q
from dashboards.queries.connection import current_access, finite
from dashboards.queries.filters import Filters, add_months, currency_factor, month_start

filters = ui.page(
    "Revenue & margin",
    "Revenue recognised by each contract's method against what was billed; unbilled receivable "
    "and deferred revenue; gross margin at contract level and above (never per person); "
    "realisation and backlog; receivables by age and DSO.",
)


def headline(filters: Filters) -> None:
    factor = currency_factor(filters.currency, filters.end)
    now = q.revenue_total(filters).iloc[0]
    before = q.revenue_total(filters.previous()).iloc[0]

    def money(value):
        return ui.money(value, filters.currency)

    def scaled(row, key):
        number = finite(row[key])
        return None if number is None else number * factor

    first = st.columns(4)
    with first[0]:
        ui.tile(
            "Recognised revenue",
            scaled(now, "recognized_revenue_reporting"),
            scaled(before, "recognized_revenue_reporting"),
            money,
        )
    with first[1]:
        ui.tile("Billed", scaled(now, "billed_reporting"), scaled(before, "billed_reporting"), money)
    access = current_access()  # a role without cost sees no margin; without cost rates, no margin %
    with first[2]:
        if access.sees_cost:
            ui.tile(
                "Gross margin",
                scaled(now, "gross_margin_reporting"),
                scaled(before, "gross_margin_reporting"),
                money,
                help=None if access.sees_cost_rates else COST_RULE.format(k=access.cost_min_people),
            )
    with first[3]:
        if access.sees_cost_rates:
            ui.tile(
                "Gross margin %",
                now["gross_margin_pct"],
                before["gross_margin_pct"],
                ui.percent,
                delta_kind="points",
            )
    second = st.columns(4)
    end_label = f"at {filters.end:%d %b %Y}"
    with second[0]:
        ui.tile(
            f"Unbilled receivable {end_label}",
            scaled(now, "unbilled_receivable_reporting"),
            scaled(before, "unbilled_receivable_reporting"),
            money,
            higher_is_better=False,
        )
    with second[1]:
        ui.tile(
            f"Deferred revenue {end_label}",
            scaled(now, "deferred_revenue_reporting"),
            scaled(before, "deferred_revenue_reporting"),
            money,
            higher_is_better=None,
        )
    with second[2]:
        ui.tile(
            f"Backlog {end_label}",
            scaled(now, "backlog_reporting"),
            scaled(before, "backlog_reporting"),
            money,
            help="Contract value not yet recognised (fixed fee and capped T&M; retainers excluded).",
        )
    with second[3]:
        ui.guarded(partial(realisation_tile, filters), "Realisation", compact=True)


def realisation_tile(filters: Filters) -> None:
    now = q.realization_total(filters).iloc[0]
    before = q.realization_total(filters.previous()).iloc[0]
    ui.tile(
        "Realisation",
        now["realization_rate"],
        before["realization_rate"],
        ui.percent,
        delta_kind="points",
        help="Billed amount / standard value of the billable hours, by month worked (rpt_realization). "
        "Hours not invoiced yet lower the latest months until they are billed.",
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
            "recognized_revenue_reporting": st.column_config.NumberColumn(
                f"recognised ({filters.currency})", format="%.2f"
            ),
            "billed_reporting": st.column_config.NumberColumn(f"billed ({filters.currency})", format="%.2f"),
            "cost_reporting": st.column_config.NumberColumn(f"cost ({filters.currency})", format="%.2f"),
            "gross_margin_reporting": st.column_config.NumberColumn(
                f"margin ({filters.currency})", format="%.2f"
            ),
            "gross_margin_pct": st.column_config.NumberColumn("margin %", format="percent"),
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
        {"realisation": frame["realization_rate"]},
        title=f"Realisation by {group}: billed / standard value, {ui.period_label(filters)}",
        x_title=group,
        y_title="billed / standard value",
    )
    figure.add_hline(y=1, line_dash="dash", line_color=ui.NEUTRAL)
    st.caption("By month worked: hours not invoiced yet lower the latest months until they are billed.")
    figure.update_yaxes(tickformat=".0%")
    ui.show(figure, key="realization_by")


def rows(filters: Filters) -> None:
    if st.toggle("Show the contract-month rows behind these figures (rpt_revenue)", key="revenue_rows"):
        frame = q.revenue_rows(filters)
        st.dataframe(frame, hide_index=True, column_config=ui.column_formats(frame, percent=ui.RATIO_COLUMNS))
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
