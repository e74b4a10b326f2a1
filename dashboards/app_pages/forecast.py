"""Forecast: the next weeks' utilisation from the assignments against capacity and target, demand
(assigned work and weighted pipeline) against capacity by practice, the revenue forecast beside
recognised revenue, and how past forecasts compared with what happened."""

from __future__ import annotations

from functools import partial

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import ui
from dashboards.queries import forecast as q
from dashboards.queries.filters import Filters, add_months, currency_factor, month_start, reporting_currency

filters = ui.page(
    "Forecast",
    "What the assignments, the booked time off and the CRM pipeline say about the coming weeks "
    "and months, from the warehouse's as-of date: forecast billable utilisation against target, "
    "demand against capacity by practice, and revenue ahead on each contract's schedule plus "
    "weighted pipeline, beside what was recognised. Definitions: docs/dashboards.md, "
    '"The forward look".',
)

REVENUE_LABELS = {
    "time_and_materials": "T&M",
    "fixed_fee_milestones": "milestones",
    "fixed_fee_percent_complete": "% complete",
    "retainer": "retainers",
    "weighted_pipeline": "pipeline (weighted)",
}


READABLE = {
    "capacity_hours": "capacity (h)",
    "assigned_hours": "assigned (h)",
    "pipeline_hours": "weighted pipeline (h)",
    "shortfall_hours": "shortfall (h)",
    "bench_hours": "bench (h)",
    "forecast_billable_utilization": "forecast billable utilisation",
    "target_billable_utilization": "target",
    "variance_to_target": "forecast vs target",
    "month_start_date": "month",
    "lead_weeks": "weeks ahead",
    "snapshot_as_of_date": "forecast made on",
    "revenue_error_pct": "revenue error",
    "actual_billable_utilization": "actual billable utilisation",
}


def window() -> pd.Series | None:
    found = q.horizon()
    if found is None:
        st.info("The forecast has not been built yet.")
        return None
    st.caption(
        f"Forecast made as of **{pd.Timestamp(found['as_of_date']):%d %b %Y}**: weeks from "
        f"{pd.Timestamp(found['first_forecast_week_start_date']):%d %b} to the week of "
        f"{pd.Timestamp(found['last_forecast_week_start_date']):%d %b %Y}; revenue to "
        f"{pd.Timestamp(found['horizon_end_date']):%b %Y}."
    )
    return found


def utilisation(filters: Filters) -> None:
    weekly = q.forecast_utilisation_weekly(filters)
    if ui.is_empty(weekly, "No capacity or assigned work in the forecast weeks for this selection."):
        return
    capacity = weekly["capacity_hours"].astype(float).sum()
    billable = weekly["billable_assigned_hours"].astype(float).sum()
    target = (
        weekly["target_billable_utilization"].astype(float) * weekly["capacity_hours"].astype(float)
    ).sum()
    columns = st.columns(4)
    with columns[0]:
        ui.tile(
            "Forecast billable utilisation",
            billable / capacity if capacity else None,
            None,
            ui.percent,
            help="Next 12 weeks: billable assigned hours over capacity net of holidays and booked time off.",
        )
    with columns[1]:
        ui.tile("Target", target / capacity if capacity else None, None, ui.percent, higher_is_better=None)
    with columns[2]:
        ui.tile("Capacity (12 weeks)", capacity, None, lambda v: f"{ui.count(v)} h", higher_is_better=None)
    with columns[3]:
        ui.tile(
            "Unassigned capacity",
            max(capacity - weekly["assigned_hours"].astype(float).sum(), 0),
            None,
            lambda v: f"{ui.count(v)} h",
            higher_is_better=None,
        )
    actual_start = add_months(month_start(filters.end), -5)
    actual = q.actual_utilisation_monthly(filters, actual_start, filters.end)
    figure = go.Figure()
    if not actual.empty:
        figure.add_scatter(
            x=actual["month_start_date"],
            y=actual["billable_utilization"],
            name="actual billable (by month)",
            mode="lines+markers",
        )
    figure.add_scatter(
        x=weekly["week_start_date"],
        y=weekly["forecast_billable_utilization"],
        name="forecast billable (by week, assigned)",
        mode="lines+markers",
        line={"dash": "dot"},
    )
    target_x = list(actual["month_start_date"]) + list(weekly["week_start_date"])
    target_y = list(actual["target_billable_utilization"]) + list(weekly["target_billable_utilization"])
    figure.add_scatter(x=target_x, y=target_y, name="target", mode="lines", line={"color": "#9e9e9e"})
    figure.update_layout(
        title="Billable utilisation: actual by month, forecast by week, and target",
        xaxis_title="month / week",
        yaxis_title="utilisation",
        yaxis_tickformat=".0%",
    )
    ui.show(figure, key="forecast_utilisation")
    people = q.forecast_utilisation_by_person(filters)
    st.markdown("**People over the forecast weeks** (furthest below target first)")
    percent = ("forecast_billable_utilization", "target_billable_utilization", "variance_to_target")
    people = people.rename(columns=READABLE)
    st.dataframe(
        people,
        hide_index=True,
        column_config=ui.column_formats(people, percent=[READABLE[name] for name in percent]),
    )
    ui.download(people, "Download (CSV)", "billable-forecast-utilisation.csv", key="forecast_people_csv")


def demand(filters: Filters) -> None:
    ui.not_applied(filters, q.PRACTICE_FILTERS_APPLY)
    frame = q.demand_capacity(filters)
    if ui.is_empty(frame, "No capacity, assignments or pipeline in the forecast weeks for this selection."):
        return
    weekly = frame.groupby("week_start_date", as_index=False)[
        ["capacity_hours", "assigned_hours", "pipeline_hours"]
    ].sum(min_count=1)
    figure = go.Figure()
    figure.add_bar(x=weekly["week_start_date"], y=weekly["assigned_hours"], name="assigned")
    figure.add_bar(x=weekly["week_start_date"], y=weekly["pipeline_hours"], name="weighted pipeline")
    figure.add_scatter(
        x=weekly["week_start_date"], y=weekly["capacity_hours"], name="capacity", mode="lines+markers"
    )
    figure.update_layout(
        title="Demand against capacity by week (hours)",
        barmode="stack",
        xaxis_title="week",
        yaxis_title="hours",
    )
    ui.show(figure, key="forecast_demand")
    if frame["pipeline_hours"].isna().any():
        st.warning(
            "Some pipeline could not be turned into hours: its practice and the firm have no billed "
            "time to take a bill rate from. Those weeks show no shortfall or bench.",
            icon=":material/warning:",
        )
    by_practice = frame.groupby("practice", as_index=False)[
        ["capacity_hours", "assigned_hours", "pipeline_hours", "shortfall_hours", "bench_hours"]
    ].sum(min_count=1)
    st.markdown(
        "**By practice over the forecast weeks**: shortfall is demand beyond capacity in the weeks "
        "it happens (people to find), bench is capacity without demand."
    )
    by_practice = by_practice.rename(columns=READABLE)
    st.dataframe(by_practice, hide_index=True, column_config=ui.column_formats(by_practice))
    ui.download(frame, "Download by week (CSV)", "billable-demand-capacity.csv", key="forecast_demand_csv")


def revenue(filters: Filters, as_of: pd.Series) -> None:
    as_of_date = pd.Timestamp(as_of["as_of_date"]).date()
    factor = currency_factor(filters.currency, as_of_date)
    start = add_months(month_start(as_of_date), -6)
    ui.not_applied(filters, q.PRACTICE_FILTERS_APPLY)
    frame = q.revenue_forecast(filters, start)
    if ui.is_empty(frame, "No revenue recognised or forecast for this selection."):
        return
    frame["recognised"] = frame["recognized_amount_reporting"].astype(float) * factor
    frame["forecast"] = frame["forecast_amount_reporting"].astype(float) * factor
    ahead = frame[pd.to_datetime(frame["month_start_date"]) >= pd.Timestamp(month_start(as_of_date))]
    contracted = ahead.loc[ahead["revenue_type"] != "weighted_pipeline", "forecast"].sum()
    pipeline = ahead.loc[ahead["revenue_type"] == "weighted_pipeline", "forecast"].sum()
    columns = st.columns(2)
    with columns[0]:
        ui.tile("Contracted revenue ahead", contracted, None, lambda v: ui.money(v, filters.currency))
    with columns[1]:
        ui.tile("Weighted pipeline ahead", pipeline, None, lambda v: ui.money(v, filters.currency))
    figure = go.Figure()
    recognised = frame.groupby("month_start_date", as_index=False)["recognised"].sum()
    figure.add_bar(x=recognised["month_start_date"], y=recognised["recognised"], name="recognised")
    for revenue_type in q.REVENUE_TYPES:
        part = frame[frame["revenue_type"] == revenue_type]
        if part["forecast"].abs().sum() > 0:
            figure.add_bar(
                x=part["month_start_date"],
                y=part["forecast"],
                name=REVENUE_LABELS[revenue_type],
            )
    figure.update_layout(
        title=f"Revenue by month ({filters.currency}): recognised, then forecast",
        barmode="stack",
        xaxis_title="month",
        yaxis_title=filters.currency,
    )
    ui.show(figure, key="forecast_revenue", monthly=True)
    unrated = frame["unrated_hours"].astype(float).sum()
    if unrated > 0:
        st.warning(
            f"{ui.count(unrated)} assigned time-and-materials hours have no single bill rate on their "
            "rate card (no rate, or two conflicting ones) and are not in the forecast.",
            icon=":material/warning:",
        )
    if filters.currency != reporting_currency():
        st.caption(f"Translated to {filters.currency} at the ERP's rate on {as_of_date:%d %b %Y}.")


def accuracy(filters: Filters) -> None:
    ui.not_applied(filters, ())  # kept firm-wide: a snapshot has no entity or client
    frame = q.forecast_accuracy()
    kept = frame[frame["has_snapshot"]]
    if kept.empty:
        st.info(
            "No forecast kept so far was made 4, 8 or 12 weeks before a month that has closed. Each "
            "build keeps its forecast (rpt_forecast_snapshots); this fills in as the months pass.",
            icon=":material/hourglass_empty:",
        )
        return
    factor = currency_factor(filters.currency, filters.end)
    table = kept.assign(
        forecast_revenue=kept["forecast_revenue_reporting"].astype(float) * factor,
        actual_revenue=kept["actual_revenue_reporting"].astype(float) * factor,
    ).drop(columns=["has_snapshot", "forecast_revenue_reporting", "actual_revenue_reporting"])
    table = table.rename(
        columns={
            **READABLE,
            "forecast_revenue": f"forecast revenue ({filters.currency})",
            "actual_revenue": f"actual revenue ({filters.currency})",
        }
    )
    percent = ("revenue_error_pct", "forecast_billable_utilization", "actual_billable_utilization")
    st.dataframe(
        table,
        hide_index=True,
        column_config=ui.column_formats(table, percent=[READABLE[name] for name in percent]),
    )


if filters is not None:
    ui.not_applied(filters, q.PEOPLE_FILTERS_APPLY)
    found = ui.guarded(window, "Forecast window")
    st.subheader("Forecast utilisation")
    ui.guarded(partial(utilisation, filters), "Forecast utilisation")
    st.subheader("Demand against capacity")
    ui.guarded(partial(demand, filters), "Demand against capacity")
    if found is not None:
        st.subheader("Revenue forecast")
        ui.guarded(partial(revenue, filters, found), "Revenue forecast")
    st.subheader("Forecast accuracy")
    ui.guarded(partial(accuracy, filters), "Forecast accuracy")
