"""Utilisation: by practice, grade, region and person; actual vs target; person x week; missing time."""

from __future__ import annotations

from functools import partial

import plotly.graph_objects as go
import streamlit as st

from dashboards import ui
from dashboards.queries import utilisation as q
from dashboards.queries.filters import Filters, add_months, month_start

filters = ui.page(
    "Utilisation",
    "Billable, productive and total hours over capacity (contracted hours less holidays and time "
    "off), against each grade's target; time-submission compliance and missing time. Rates of a "
    "group are its summed hours over its summed capacity.",
)


def headline(filters: Filters) -> None:
    now = q.utilisation_total(filters).iloc[0]
    before = q.utilisation_total(filters.previous()).iloc[0]
    columns = st.columns(5)
    specs = [
        ("Billable utilisation", "billable_utilization", True),
        ("Target", "target_billable_utilization", None),
        ("Productive utilisation", "productive_utilization", True),
        ("Submission compliance", "submission_compliance", True),
    ]
    for column, (label, key, better) in zip(columns, specs, strict=False):
        with column:
            ui.tile(
                label,
                now[key],
                before[key],
                ui.percent,
                delta_kind="points",
                higher_is_better=better,
                delta_description=None,
            )
    with columns[4]:
        ui.tile(
            "Missing time",
            now["missing_hours"],
            before["missing_hours"],
            lambda value: f"{ui.count(value)} h",
            delta_kind="count",
            higher_is_better=False,
            help="Capacity hours with nothing recorded.",
            delta_description=None,
        )
    st.caption("Changes are against the previous period of the same length.")


def trend(filters: Filters) -> None:
    start = add_months(month_start(filters.end), -11)
    monthly = q.utilisation_monthly(filters, start, filters.end)
    if ui.is_empty(monthly, "No capacity in these months for this selection."):
        return
    figure = go.Figure()
    figure.add_scatter(
        x=monthly["month_start_date"],
        y=monthly["billable_utilization"],
        name="billable",
        mode="lines+markers",
    )
    figure.add_scatter(
        x=monthly["month_start_date"],
        y=monthly["productive_utilization"],
        name="productive",
        mode="lines",
        line={"color": "#90caf9"},
    )
    figure.add_scatter(
        x=monthly["month_start_date"],
        y=monthly["target_billable_utilization"],
        name="target (billable)",
        mode="lines",
        line={"dash": "dash", "color": ui.NEUTRAL},
    )
    figure.update_layout(title="Utilisation by month, last 12 months (% of capacity)")
    figure.update_yaxes(tickformat=".0%", title="% of capacity hours")
    figure.update_xaxes(title="month")
    ui.show(figure, key="utilisation_trend", monthly=True)


def by_group(filters: Filters) -> None:
    group = st.segmented_control(
        "Break down by", list(q.UTILISATION_GROUPS), default="practice", key="utilisation_group"
    )
    group = group or "practice"
    frame = q.utilisation_by(filters, group)
    if ui.is_empty(frame, "No capacity in this period for this selection."):
        return
    figure = go.Figure()
    figure.add_bar(
        x=frame["group_value"], y=frame["billable_utilization"], name="actual", marker_color=ui.ACCENT
    )
    figure.add_scatter(
        x=frame["group_value"],
        y=frame["target_billable_utilization"],
        name="target",
        mode="markers",
        marker={"symbol": "line-ew-open", "size": 40, "line": {"width": 3, "color": ui.BAD}},
    )
    figure.update_layout(title=f"Billable utilisation vs target by {group}, {ui.period_label(filters)}")
    figure.update_yaxes(tickformat=".0%", title="billable hours / capacity")
    figure.update_xaxes(title=group)
    ui.show(figure, key="utilisation_by_group")
    st.dataframe(
        frame[
            [
                "group_value",
                "people",
                "capacity_hours",
                "billable_hours",
                "billable_utilization",
                "target_billable_utilization",
                "productive_utilization",
                "submission_compliance",
                "missing_hours",
            ]
        ],
        hide_index=True,
        column_config={
            "group_value": group,
            "capacity_hours": st.column_config.NumberColumn("capacity (h)", format="%.1f"),
            "billable_hours": st.column_config.NumberColumn("billable (h)", format="%.1f"),
            "billable_utilization": st.column_config.NumberColumn("billable", format="percent"),
            "target_billable_utilization": st.column_config.NumberColumn("target", format="percent"),
            "productive_utilization": st.column_config.NumberColumn("productive", format="percent"),
            "submission_compliance": st.column_config.NumberColumn("submitted on time", format="percent"),
            "missing_hours": st.column_config.NumberColumn("missing time (h)", format="%.1f"),
        },
    )


def heatmap(filters: Filters) -> None:
    weekly = q.utilisation_weekly_people(filters)
    if ui.is_empty(weekly, "No capacity in this period for this selection."):
        return
    people = q.utilisation_people(filters)[["employee_id", "full_name"]]
    weekly = weekly.merge(people, on="employee_id", how="left")
    weekly["person"] = weekly["full_name"].fillna(weekly["employee_id"])
    grid = weekly.pivot_table(index="person", columns="week_start_date", values="billable_utilization")
    limit = 60
    st.caption(
        f"{len(grid)} people" + (f"; the {limit} lowest by average are shown" if len(grid) > limit else "")
    )
    grid = grid.loc[grid.mean(axis=1).sort_values().index[:limit]]
    figure = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=list(grid.columns),
            y=list(grid.index),
            colorscale="RdYlGn",
            zmin=0,
            zmax=1,
            colorbar={"title": "utilisation", "tickformat": ".0%"},
            hovertemplate="%{y}<br>week of %{x|%d %b %Y}: %{z:.0%}<extra></extra>",
        )
    )
    figure.update_layout(
        title="Billable utilisation per person and week (% of capacity)",
        xaxis_title="week starting",
        yaxis_title="person",
    )
    figure.update_yaxes(dtick=1, autorange="reversed")
    ui.show(figure, key="utilisation_heatmap", height=max(360, 22 * len(grid) + 140))


def people_table(filters: Filters) -> None:
    people = q.utilisation_people(filters)
    if ui.is_empty(people, "Nobody with capacity in this period for this selection."):
        return
    percent = st.column_config.NumberColumn(format="percent")
    st.dataframe(
        people.drop(columns=["total_utilization"]),
        hide_index=True,
        column_config={
            "billable_utilization": percent,
            "productive_utilization": percent,
            "target_billable_utilization": percent,
            "billable_utilization_variance": percent,
            "submission_compliance": percent,
            "capacity_hours": st.column_config.NumberColumn(format="%.1f"),
            "billable_hours": st.column_config.NumberColumn(format="%.1f"),
        },
    )
    ui.download(people, "Download (CSV)", "billable-utilisation-people.csv", key="utilisation_people_csv")


if filters is not None:
    ui.not_applied(filters, {"legal_entity", "practice", "region"})
    ui.guarded(partial(headline, filters), "Utilisation")
    ui.guarded(partial(trend, filters), "Utilisation trend")
    ui.guarded(partial(by_group, filters), "Utilisation by group")
    st.subheader("People")
    ui.guarded(partial(heatmap, filters), "Person x week heatmap")
    ui.guarded(partial(people_table, filters), "Utilisation per person")
