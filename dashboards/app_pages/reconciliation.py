"""Reconciliation: time tool vs ERP vs invoices per month and project, with the differences explained."""

from __future__ import annotations

import streamlit as st

from dashboards import queries as q
from dashboards import ui

filters = ui.page(
    "Reconciliation",
    "Hours approved in the time tool, pushed to the ERP and invoiced, per project and month; every "
    "difference is matched, explained by an exception, or unexplained.",
)


def render(filters: q.Filters) -> None:
    q.reconciliation_rows(filters)
    st.write("Reconciliation mart pending.")


if filters is not None:
    ui.guarded(lambda: render(filters), "Reconciliation")
