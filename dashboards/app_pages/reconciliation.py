"""Reconciliation: time tool vs ERP vs invoices per month and project, with the differences explained."""

from __future__ import annotations

from functools import partial

import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboards import ui
from dashboards.queries import reconciliation as q
from dashboards.queries.connection import finite
from dashboards.queries.filters import Filters, add_months, month_start

filters = ui.page(
    "Reconciliation",
    "Hours approved in the time tool, pushed to the ERP and invoiced, per project and month worked; "
    "every difference is matched, waiting for billing, explained by an exception, or unexplained. "
    "(The PSA holds no actual hours, so there is no PSA column.)",
)

STATUS_LABELS = {
    "matched": "matched",
    "not_yet_billed": "not yet billed",
    "explained_by_exception": "explained by an exception",
    "unexplained": "unexplained",
}
STATUS_COLOURS = {
    "matched": "#e8f5e9",
    "not_yet_billed": "#e3f2fd",
    "explained_by_exception": "#fff3e0",
    "unexplained": "#ffebee",
}


def headline(rows: pd.DataFrame) -> None:
    columns = st.columns(4)
    totals = rows[["approved_hours", "erp_hours", "invoiced_hours"]].sum()
    with columns[0]:
        ui.tile("Approved hours (time tool)", totals["approved_hours"], None, lambda v: f"{ui.count(v)} h")
    with columns[1]:
        ui.tile("Hours in the ERP", totals["erp_hours"], None, lambda v: f"{ui.count(v)} h")
    with columns[2]:
        ui.tile("Hours invoiced", totals["invoiced_hours"], None, lambda v: f"{ui.count(v)} h")
    with columns[3]:
        unexplained = int((rows["reconciliation_status"] == "unexplained").sum())
        ui.tile("Unexplained project-months", unexplained, None, ui.count, higher_is_better=False)
    counts = rows["reconciliation_status"].value_counts()
    st.caption(
        " · ".join(
            f"{STATUS_LABELS[status]}: **{int(counts.get(status, 0))}**" for status in q.RECON_STATUSES
        )
        + " project-months"
    )


def trend(filters: Filters) -> None:
    start = add_months(month_start(filters.end), -11)
    monthly = q.reconciliation_monthly(filters, start, filters.end)
    if ui.is_empty(monthly, "Nothing to reconcile in the last 12 months for this selection."):
        return
    figure = go.Figure()
    for column, name, colour in (
        ("approved_hours", "approved (time tool)", ui.ACCENT),
        ("erp_hours", "in the ERP", "#42a5f5"),
        ("invoiced_hours", "invoiced", "#90caf9"),
    ):
        figure.add_bar(x=monthly["month_start_date"], y=monthly[column], name=name, marker_color=colour)
    figure.update_layout(title="Hours approved, in the ERP and invoiced, by month worked", barmode="group")
    figure.update_yaxes(title="hours")
    ui.show(figure, key="recon_trend", monthly=True)


def table(filters: Filters) -> None:
    statuses = st.multiselect(
        "Status",
        list(q.RECON_STATUSES),
        format_func=lambda status: STATUS_LABELS.get(status, status),
        placeholder="All statuses",
        key="recon_status",
    )
    rows = q.reconciliation_rows(filters, statuses)
    if ui.is_empty(rows, "No project-month to reconcile in this period for this selection."):
        return
    shown = rows.drop(columns=["reconciliation_key", "differing_item_count", "project_id"])

    def colour(row: pd.Series) -> list[str]:
        return [f"background-color: {STATUS_COLOURS.get(row['reconciliation_status'], '')}"] * len(row)

    def differences(value) -> str:
        number = finite(value)
        return "color: #c62828; font-weight: 600" if number else ""

    styled = shown.style.apply(colour, axis=1).map(
        differences,
        subset=["hours_not_in_erp", "hours_not_invoiced", "amount_not_in_erp", "amount_not_invoiced"],
    )
    st.dataframe(
        styled,
        hide_index=True,
        column_config={
            **{
                column: st.column_config.NumberColumn(column.replace("_", " "), format="%.2f")
                for column in shown.columns
                if column.endswith(("_hours", "_amount", "_in_erp", "_invoiced", "_reporting"))
            },
            "month_start_date": st.column_config.DateColumn("month worked", format="MMM YYYY"),
            "reconciliation_status": "status",
            "exception_rule_codes": st.column_config.TextColumn("explained by", width="medium"),
        },
    )
    ui.download(rows, "Download (CSV)", "billable-reconciliation.csv", key="recon_csv")

    labels = {
        index: f"{row.project_code or '(no project)'} · {pd.Timestamp(row.month_start_date):%b %Y} · "
        f"{STATUS_LABELS.get(row.reconciliation_status, row.reconciliation_status)}"
        for index, row in rows.head(2000).iterrows()
    }
    chosen = st.selectbox(
        "The records behind a row",
        list(labels),
        index=None,
        format_func=lambda key: labels.get(key, str(key)),
        placeholder="Pick a project-month",
        key="recon_drill",
    )
    if chosen is not None:
        row = rows.loc[chosen]
        items = q.reconciliation_items(row["project_id"], pd.Timestamp(row["month_start_date"]).date())
        st.caption(
            f"{len(items):,} items (time entries, ERP TimeActivities, invoice lines), differing ones first."
        )
        st.dataframe(items, hide_index=True, column_config=ui.column_formats(items))


def render(filters: Filters) -> None:
    rows = q.reconciliation_rows(filters)
    if ui.is_empty(rows, "No project-month to reconcile in this period for this selection."):
        return
    headline(rows)
    trend(filters)
    st.subheader("Project-months")
    table(filters)


if filters is not None:
    ui.not_applied(filters, {"legal_entity", "client", "practice"})
    ui.guarded(partial(render, filters), "Reconciliation")
