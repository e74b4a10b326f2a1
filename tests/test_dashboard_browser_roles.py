"""Roles in a real browser: one `streamlit run` server with sign-in on (users written by
`python -m dashboards.users add --role ...`), headless Chromium signing in as each role and checking
the menu, the figures, the CSV a user downloads and a link that tries to widen a practice lead's
scope (docs/dashboards.md, "Sign-in and roles").
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dashboards.queries.access import COST_COLUMN
from tests.dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, running_dashboard, wait_for_app
from tests.ingest_helpers import ROOT

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")

PRACTICE = "Strategy"
USERS = {
    "ceo": ("executive", ()),
    "lead": ("practice_lead", (PRACTICE,)),
    "dev": ("delivery", ()),
}


def password(username: str) -> str:
    return f"password-{username}-1"


@pytest.fixture(scope="module")
def server(tiny_firm, tmp_path_factory):
    folder = tmp_path_factory.mktemp("roles_dashboard")
    users = folder / "users.yaml"
    for username, (role, practices) in USERS.items():
        command = [sys.executable, "-m", "dashboards.users", "add", username, "--role", role]
        command += ["--file", str(users)] + [f"--practice={practice}" for practice in practices]
        env = {**os.environ, "BILLABLE_DASHBOARD_NEW_PASSWORD": password(username)}
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
        assert result.returncode == 0, result.stderr
    with pytest.MonkeyPatch.context() as patch:  # the server inherits this environment
        patch.setenv("BILLABLE_DASHBOARD_USERS", str(users))
        patch.setenv("BILLABLE_DASHBOARD_COOKIE_KEY", "a-browser-test-secret-long-enough-0123456789")
        with (
            running_dashboard(tiny_firm.warehouse, folder / "streamlit.log") as base_url,
            playwright_api.sync_playwright() as playwright,
        ):
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            try:
                yield base_url, browser
            finally:
                browser.close()


def sign_in(server, username: str, path: str = ""):
    """A fresh browser context (no cookie) on `path`, signed in as `username`; the page."""
    base_url, browser = server
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.goto(f"{base_url}/{path}")
    page.get_by_role("textbox", name="Username").fill(username, timeout=60_000)
    page.get_by_role("textbox", name="Password").fill(password(username))
    page.get_by_role("button", name="Login").click()
    wait_for_app(page)
    assert page.locator('[data-testid="stException"]').count() == 0
    return page


def navigation(page) -> str:
    return page.locator('[data-testid="stSidebarNav"]').inner_text()


def main_text(page) -> str:
    return page.locator('[data-testid="stMain"]').inner_text()


def trace_csv(page, choice: str) -> pd.DataFrame:
    """Choose a figure under 'Trace a number' and download its rows as a user would."""
    page.locator('[data-testid="stSelectbox"]', has_text="Trace a number").click()
    page.get_by_role("option", name=choice).click()
    wait_for_app(page)
    with page.expect_download() as download:
        page.get_by_role("button", name="Download these rows (CSV)").click()
    return pd.read_csv(io.BytesIO(Path(download.value.path()).read_bytes()))


def test_an_executive_sees_every_page_and_figure(server):
    page = sign_in(server, "ceo")
    try:
        assert "Pipeline health" in navigation(page)
        text = main_text(page)
        assert "Gross margin" in text and "DSO" in text
        rows = trace_csv(page, "Recognised revenue and margin (contract x month)")
        assert "cost_amount_reporting" in rows and rows["cost_amount_reporting"].notna().any()
    finally:
        page.context.close()


def test_a_practice_lead_sees_only_their_practice_and_no_operations_page(server, tiny_firm):
    page = sign_in(server, "lead")
    try:
        assert "Pipeline health" not in navigation(page)
        text = main_text(page)
        assert "practice: Strategy" in text and "DSO" not in text
        for choice in ("WIP (project x aging bucket)", "Recognised revenue and margin (contract x month)"):
            rows = trace_csv(page, choice)
            assert not rows.empty and set(rows["practice"]) == {PRACTICE}, choice
        with duckdb.connect(str(tiny_firm.warehouse), read_only=True) as connection:
            practices = {
                row[0] for row in connection.execute("select distinct practice from marts.rpt_wip").fetchall()
            }
        assert len(practices) > 1  # the firm has other practices the lead does not see
        # the hidden page's URL does not open it, by path or by a link's page parameter
        base_url, _ = server
        for link in ("pipeline_health", "?page=pipeline_health"):
            page.goto(f"{base_url}/{link}")
            wait_for_app(page)
            assert page.locator("h1").first.inner_text().strip() == "Overview", link
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert "Ignored from the link: page=pipeline_health" in sidebar
    finally:
        page.context.close()


def test_a_link_cannot_widen_a_practice_leads_scope(server):
    page = sign_in(server, "lead", "?practice=Technology&period=3-months")
    try:
        sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
        assert "Ignored from the link: practice=Technology" in sidebar
        assert "practice: Strategy" in main_text(page) and "Technology" not in main_text(page)
        assert "period=3-months" in page.url  # the rest of the link still applies
    finally:
        page.context.close()


def test_a_link_reproduces_the_view_for_an_executive(server, tiny_firm):
    with duckdb.connect(str(tiny_firm.warehouse), read_only=True) as connection:
        as_of = connection.execute("select as_of_date from intermediate.int_as_of").fetchone()[0]
    end = (as_of.replace(day=1) - timedelta(days=1)).replace(day=1) - timedelta(days=1)  # not the default
    start = (end.replace(day=1) - timedelta(days=40)).replace(day=1)
    link = f"?page=wip_billing&practice=Technology&period=3-months&end={end:%Y-%m}"
    page = sign_in(server, "ceo", link)
    try:
        # the app switches to the linked page in a run after the sign-in's, and the sign-in makes
        # several runs (the cookie component's among them): wait for the heading, not the first
        # settled run
        playwright_api.expect(page.locator("h1").first).to_have_text("WIP & billing", timeout=60_000)
        wait_for_app(page)
        text = main_text(page)
        assert f"Period {start:%b %Y} – {end:%b %Y} · practice: Technology" in text
        assert "practice=Technology" in page.url and "page=wip_billing" in page.url
    finally:
        page.context.close()


def test_a_delivery_user_sees_no_cost_or_margin(server):
    page = sign_in(server, "dev")
    try:
        assert "Pipeline health" not in navigation(page)
        assert "Gross margin" not in main_text(page)
        rows = trace_csv(page, "Recognised revenue and margin (contract x month)")
        assert not rows.empty and not [column for column in rows.columns if COST_COLUMN.search(column)]
        base_url, _ = server
        page.goto(f"{base_url}/revenue_margin?page=revenue_margin")
        wait_for_app(page)
        text = main_text(page)
        assert "Recognised revenue" in text
        assert "margin" not in text.split("Revenue recognised by each")[1].split("\n", 1)[1].lower()
    finally:
        page.context.close()
