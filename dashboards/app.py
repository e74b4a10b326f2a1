"""Billable's executive dashboards: `streamlit run dashboards/app.py` (or `make dashboard`).

The router: page setup, optional sign-in, the global filters and the freshness panel (shared by
every page, so they live here), then the page the visitor chose.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:  # `streamlit run` puts only this folder on the path
    sys.path.insert(0, str(ROOT))

import streamlit as st  # noqa: E402

from dashboards import auth, ui  # noqa: E402
from dashboards.queries.connection import run_scope  # noqa: E402

PAGES = Path(__file__).resolve().parent / "app_pages"

st.set_page_config(page_title="Billable", page_icon=":material/monitoring:", layout="wide")

with run_scope():  # one snapshot and at most one read-only connection per run, closed at its end
    if auth.signed_in():
        navigation = st.navigation(
            {
                "Executive": [
                    st.Page(
                        PAGES / "overview.py", title="Overview", icon=":material/dashboard:", default=True
                    ),
                    st.Page(PAGES / "utilisation.py", title="Utilisation", icon=":material/groups:"),
                    st.Page(PAGES / "wip_billing.py", title="WIP & billing", icon=":material/receipt_long:"),
                    st.Page(
                        PAGES / "revenue_margin.py", title="Revenue & margin", icon=":material/payments:"
                    ),
                    st.Page(PAGES / "forecast.py", title="Forecast", icon=":material/trending_up:"),
                    st.Page(
                        PAGES / "project_health.py", title="Project health", icon=":material/health_metrics:"
                    ),
                ],
                "Operations": [
                    st.Page(PAGES / "exceptions.py", title="Exceptions", icon=":material/report:"),
                    st.Page(PAGES / "reconciliation.py", title="Reconciliation", icon=":material/balance:"),
                    st.Page(
                        PAGES / "pipeline_health.py", title="Pipeline health", icon=":material/monitor_heart:"
                    ),
                ],
            }
        )
        st.session_state["filters"] = ui.sidebar_filters()
        ui.freshness_panel()
        try:
            navigation.run()
        finally:
            # a marker that this run finished: browser tests and the benchmark wait for it
            run = st.session_state["_billable_run"] = st.session_state.get("_billable_run", 0) + 1
            st.html(f'<span id="billable-rendered" data-run="{run}" hidden></span>')
