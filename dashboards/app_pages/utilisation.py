"""Utilisation: by practice, grade, region and person; actual vs target; person x week; missing time."""

from __future__ import annotations

from functools import partial

import plotly.graph_objects as go
import streamlit as st

from dashboards import ui
from dashboards.queries import utilisation as q
from dashboards.queries.coverage import missing_comparison
from dashboards.queries.filters import Filters, add_months, month_start

filters = ui.page(
    "Utilisation",
    "Billable, productive and total hours over capacity (contracted hours less holidays and time "
    "off), against each grade's target; time-submission compliance and missing time. Rates of a "
    "group are its summed hours over its summed capacity.",
)


def headline(filters: Filters) -> None:
    now = q.utilisation_total(filters).iloc[0]
    note = missing_comparison(filters, "rpt_utilization")
    before = None if note else q.utilisation_total(filters.previous()).iloc[0]
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
                None if before is None else before[key],
                ui.percent,
                delta_kind="points",
                higher_is_better=better,
                delta_description=None,
                no_comparison=note,
            )
    with columns[4]:
        ui.tile(
            "Missing time",
            now["missing_hours"],
            None if before is None else before["missing_hours"],
            lambda value: f"{ui.count(value)} h",
            delta_kind="count",
            higher_is_better=False,
            help="Capacity hours with nothing recorded.",
            delta_description=None,
            no_comparison=note,
        )
    if note:
        st.caption(f"No changes shown: {note.removeprefix('no comparison: ')}, before the previous period.")
    else:
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
    figure.update_yaxes(tickformat=".1%", title="% of capacity hours")  # a narrow range: .0% repeats ticks
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
    groups = [ui.wrap(str(value), 14) for value in frame["group_value"]]
    figure.add_bar(x=groups, y=frame["billable_utilization"], name="actual", marker_color=ui.ACCENT)
    figure.add_scatter(
        x=groups,
        y=frame["target_billable_utilization"],
        name="target",
        mode="markers",
        marker={"symbol": "line-ew-open", "size": 40, "line": {"width": 3, "color": ui.BAD}},
    )
    figure.update_layout(title=f"Billable utilisation vs target by {group}, {ui.period_label(filters)}")
    figure.update_yaxes(tickformat=".0%", title="billable hours / capacity")
    figure.update_xaxes(title=group)
    ui.show(figure, key="utilisation_by_group")
    table = frame[
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
    ]
    st.dataframe(
        table,
        hide_index=True,
        column_config={
            **ui.column_formats(table, percent=ui.RATIO_COLUMNS),
            "group_value": group,
            "capacity_hours": ui.hours_column("capacity (h)"),
            "billable_hours": ui.hours_column("billable (h)"),
            "missing_hours": ui.hours_column("missing time (h)"),
        },
    )


def heatmap(filters: Filters) -> None:
    weekly = q.utilisation_weekly_people(filters)
    if ui.is_empty(weekly, "No capacity in this period for this selection."):
        return
    # Ranked by variance to the person's own target over the period (billable utilisation minus
    # target, the semantic layer's billable_utilization_variance): raw utilisation would list the
    # partners and directors, whose targets are low, as the "lowest".
    people = q.utilisation_people(filters)[["employee_id", "full_name", "billable_utilization_variance"]]
    people = people.sort_values(
        ["billable_utilization_variance", "employee_id"], ascending=[True, True], na_position="last"
    )
    limit = 60
    shown = people.head(limit)
    weekly = weekly[weekly["employee_id"].isin(shown["employee_id"])].merge(
        shown, on="employee_id", how="left"
    )
    weekly["person"] = weekly["full_name"].fillna(weekly["employee_id"])
    order = shown["full_name"].fillna(shown["employee_id"]).tolist()
    grid = weekly.pivot_table(index="person", columns="week_start_date", values="billable_utilization")
    grid = grid.reindex([person for person in order if person in grid.index])
    variance = dict(zip(order, shown["billable_utilization_variance"], strict=True))
    st.caption(
        f"{len(people)} people, ranked by billable utilisation minus their target over the period, "
        "furthest below target first"
        + (f"; the {limit} furthest below are shown" if len(people) > limit else "")
        + "."
    )
    labels = [f"{person} ({ui.points(variance.get(person))})" for person in grid.index]
    figure = go.Figure(
        go.Heatmap(
            z=grid.to_numpy(),
            x=list(grid.columns),
            y=labels,
            colorscale="RdYlGn",
            zmin=0,
            zmax=1,
            colorbar={"title": "utilisation", "tickformat": ".0%"},
            hovertemplate="%{y}<br>week of %{x|%d %b %Y}: %{z:.0%}<extra></extra>",
        )
    )
    figure.update_layout(
        title="Billable utilisation per person and week (% of capacity); "
        "in brackets the period's variance to target",
        xaxis_title="week starting",
        yaxis_title="person (variance to target)",
    )
    figure.update_yaxes(dtick=1, autorange="reversed")
    ui.show(figure, key="utilisation_heatmap", height=max(360, 22 * len(grid) + 140))


def people_table(filters: Filters) -> None:
    people = q.utilisation_people(filters)
    if ui.is_empty(people, "Nobody with capacity in this period for this selection."):
        return
    # the heatmap's order: furthest below their own target first
    people = people.sort_values(
        ["billable_utilization_variance", "employee_id"], na_position="last", ignore_index=True
    )
    table = people.drop(columns=["total_utilization"])
    st.dataframe(table, hide_index=True, column_config=ui.column_formats(table, percent=ui.RATIO_COLUMNS))
    ui.download(people, "Download (CSV)", "billable-utilisation-people.csv", key="utilisation_people_csv")


if filters is not None:
    ui.not_applied(filters, {"legal_entity", "practice", "region"})
    ui.guarded(partial(headline, filters), "Utilisation")
    ui.guarded(partial(trend, filters), "Utilisation trend")
    ui.guarded(partial(by_group, filters), "Utilisation by group")
    st.subheader("People")
    ui.guarded(partial(heatmap, filters), "Person x week heatmap")
    ui.guarded(partial(people_table, filters), "Utilisation per person")
