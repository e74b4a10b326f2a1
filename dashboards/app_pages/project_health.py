"""Project health: budget burn, estimate to complete and at completion from the hours recorded and
the hours still assigned, margin at completion, and the projects forecast to overrun, by lead."""

from __future__ import annotations

from functools import partial

import streamlit as st

from dashboards import ui
from dashboards.queries import forecast as q
from dashboards.queries.filters import Filters, as_of_date, currency_factor

filters = ui.page(
    "Project health",
    "Every client project with work recorded or still assigned, as of the warehouse's now: hours "
    "burnt against budget, the estimate at completion (hours to date plus the hours assigned "
    "ahead), revenue, cost and margin at completion, and the projects forecast to pass their "
    "budget or contract value or to lose money. Definitions: docs/dashboards.md, "
    '"The forward look".',
    needs_period=False,
)

FLAGS = {
    "is_forecast_over_budget_hours": "over budget hours",
    "is_forecast_over_budget_amount": "over budget amount",
    "is_forecast_over_contract_value": "over contract value",
    "is_forecast_loss": "loss at completion",
}
MONEY_COLUMNS = (
    "budget_amount_reporting",
    "contract_value_reporting",
    "value_at_completion_reporting",
    "revenue_at_completion_reporting",
    "cost_at_completion_reporting",
    "margin_at_completion_reporting",
)


def projects(filters: Filters) -> None:
    frame = q.project_health(filters)
    if ui.is_empty(frame, "No client project with work recorded or assigned for this selection."):
        return
    flagged = frame[list(FLAGS)].any(axis=1)
    columns = st.columns(len(FLAGS) + 1)
    with columns[0]:
        ui.tile("Projects", len(frame), None, ui.count, higher_is_better=None)
    for column, (flag, label) in zip(columns[1:], FLAGS.items(), strict=True):
        with column:
            ui.tile(f"Forecast {label}", int(frame[flag].sum()), None, ui.count, higher_is_better=None)
    factor = currency_factor(filters.currency, as_of_date() or filters.end)
    table = frame.copy()
    for name in MONEY_COLUMNS:
        table[name] = table[name].astype(float) * factor
    table.insert(
        4,
        "flags",
        [", ".join(label for flag, label in FLAGS.items() if row[flag]) for _, row in frame.iterrows()],
    )
    table = table.drop(columns=list(FLAGS)).rename(
        columns={name: name.replace("_reporting", f" ({filters.currency})") for name in MONEY_COLUMNS}
    )
    st.markdown(f"**Projects** ({int(flagged.sum())} flagged, listed first)")
    table = table.rename(columns=lambda name: name.replace("_", " "))
    st.dataframe(
        table,
        hide_index=True,
        column_config=ui.column_formats(
            table, percent=("hours burn", "eac hours to budget", "margin at completion pct")
        ),
    )
    ui.download(table, "Download (CSV)", "billable-project-health.csv", key="health_csv")
    uncosted = frame["remaining_uncosted_hours"].astype(float).sum()
    unrated = frame["remaining_unrated_hours"].astype(float).sum()
    if uncosted or unrated:
        st.warning(
            f"Hours assigned ahead that cannot be valued: {ui.count(unrated)} h without a single bill "
            f"rate, {ui.count(uncosted)} h of people without a cost rate. They count in hours, not "
            "in value, revenue or cost.",
            icon=":material/warning:",
        )


def by_lead(filters: Filters) -> None:
    frame = q.project_health_by_lead(filters)
    if ui.is_empty(frame, "No projects for this selection."):
        return
    factor = currency_factor(filters.currency, as_of_date() or filters.end)
    for name in ("revenue_at_completion_reporting", "margin_at_completion_reporting"):
        frame[name] = frame[name].astype(float) * factor
    frame = frame.rename(
        columns={
            "revenue_at_completion_reporting": f"revenue_at_completion ({filters.currency})",
            "margin_at_completion_reporting": f"margin_at_completion ({filters.currency})",
        }
    )
    frame = frame.rename(columns=lambda name: name.replace("_", " "))
    st.dataframe(
        frame, hide_index=True, column_config=ui.column_formats(frame, percent=("margin at completion pct",))
    )


if filters is not None:
    ui.not_applied(filters, q.PROJECT_FILTERS_APPLY)
    st.subheader("By project lead")
    ui.guarded(partial(by_lead, filters), "Project health by lead")
    st.subheader("Projects")
    ui.guarded(partial(projects, filters), "Project health")
