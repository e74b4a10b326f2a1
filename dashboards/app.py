"""Billable's executive dashboards: `streamlit run dashboards/app.py` (or `make dashboard`).

The router: page setup, sign-in and the visitor's role (which pages, rows and columns they may
see: dashboards/queries/access.py), the global filters and the freshness panel (shared by
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
from dashboards.queries.connection import as_role, run_scope  # noqa: E402

PAGES = Path(__file__).resolve().parent / "app_pages"

st.set_page_config(page_title="Billable", page_icon=":material/monitoring:", layout="wide")

# page file -> (title, icon, section); the navigation lists only the pages the visitor's role may
# see, so any other page is neither in the menu nor reachable by its URL
PAGE_TABLE = {
    "overview": ("Overview", ":material/dashboard:", "Executive"),
    "utilisation": ("Utilisation", ":material/groups:", "Executive"),
    "wip_billing": ("WIP & billing", ":material/receipt_long:", "Executive"),
    "revenue_margin": ("Revenue & margin", ":material/payments:", "Executive"),
    "forecast": ("Forecast", ":material/trending_up:", "Executive"),
    "project_health": ("Project health", ":material/health_metrics:", "Executive"),
    "exceptions": ("Exceptions", ":material/report:", "Operations"),
    "reconciliation": ("Reconciliation", ":material/balance:", "Operations"),
    "pipeline_health": ("Pipeline health", ":material/monitor_heart:", "Operations"),
}


def navigation_for(pages: tuple[str, ...]) -> dict[str, list]:
    sections: dict[str, list] = {}
    for name, (title, icon, section) in PAGE_TABLE.items():
        if name in pages:
            sections.setdefault(section, []).append(
                st.Page(PAGES / f"{name}.py", title=title, icon=icon, default=name == pages[0])
            )
    return sections


def page_in_url() -> str | None:
    """The page a link asked for (its path), read while the sign-in form is up: no navigation is
    registered then, so Streamlit would otherwise forget it and open the default page."""
    name = (st.context.url or "").rstrip("/").rsplit("/", 1)[-1]
    return name if name in PAGE_TABLE else None


with run_scope():  # one snapshot and at most one read-only connection per run, closed at its end
    access = auth.signed_in()  # None: the sign-in form or a refusal is on the page, nothing else
    if access is None:
        st.session_state["_requested_page"] = page_in_url() or st.session_state.get("_requested_page")
    else:
        with as_role(access):  # every read of this run is limited to what the role may see
            navigation = st.navigation(navigation_for(access.pages))
            current = navigation.url_path or access.pages[0]
            st.session_state["filters"] = ui.sidebar_filters(access, current)
            # the page a link named (?page=..., or its path while the sign-in form was up); one the
            # role may not see stays closed. The request is kept until a run on that page starts:
            # the sign-in's own reruns (its cookie component) can supersede the switch's rerun,
            # and the next run would otherwise open the default page and forget the link's.
            requested = st.session_state.get("_requested_page")
            if requested in access.pages and requested != current:
                st.switch_page(PAGES / f"{requested}.py")
            st.session_state.pop("_requested_page", None)
            ui.freshness_panel()
            try:
                navigation.run()
            finally:
                # a marker that this run finished: browser tests and the benchmark wait for it
                run = st.session_state["_billable_run"] = st.session_state.get("_billable_run", 0) + 1
                st.html(f'<span id="billable-rendered" data-run="{run}" hidden></span>')
