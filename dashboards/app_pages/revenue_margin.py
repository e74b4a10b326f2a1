"""Revenue & margin: recognised vs billed, balances, margin by client/project/practice, realisation."""

from __future__ import annotations

import streamlit as st

from dashboards import queries as q
from dashboards import ui

filters = ui.page(
    "Revenue & margin",
    "Revenue recognised by each contract's method against what was billed; unbilled receivable "
    "and deferred revenue; margin at project level and above; realisation and backlog.",
)


def render(filters: q.Filters) -> None:
    q.revenue_total(filters)
    st.write("Revenue marts pending.")


if filters is not None:
    ui.guarded(lambda: render(filters), "Revenue and margin")
