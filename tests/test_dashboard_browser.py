"""The real dashboard server in a real browser: every page renders its key text and numbers, no error box.

One `streamlit run` server and one headless Chromium for the module, on the session's tiny warehouse
(tests/conftest.py). Screenshots of every page land in data/screenshots/ for a person to look at.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from tests.dashboard_helpers import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGES,
    SCREENSHOTS,
    running_dashboard,
    screenshot,
    wait_for_app,
)

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")


def scalar(warehouse: Path, sql: str, *params):
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchone()[0]


@pytest.fixture(scope="module")
def browser_page(tiny_firm, tmp_path_factory):
    log = tmp_path_factory.mktemp("dashboard") / "streamlit.log"
    with (
        running_dashboard(tiny_firm.warehouse, log) as base_url,
        playwright_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1000})
        page = context.new_page()
        try:
            yield base_url, page
        finally:
            context.close()
            browser.close()


def default_month(warehouse: Path) -> date:
    """The period the dashboard opens on: the last whole month before the warehouse's now."""
    as_of = scalar(warehouse, "select as_of_date from intermediate.int_as_of")
    return (as_of.replace(day=1) - timedelta(days=1)).replace(day=1)


def open_page(browser_page, name: str):
    base_url, page = browser_page
    path, title = PAGES[name]
    page.goto(f"{base_url}/{path}")
    wait_for_app(page)
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot(page, SCREENSHOTS / f"{name}.png")
    main = page.locator('[data-testid="stMain"]')
    assert page.locator('[data-testid="stException"]').count() == 0, main.inner_text()[:3000]
    assert page.locator('[data-testid="stAlertContentError"]').count() == 0, main.inner_text()[:3000]
    assert main.locator("h1").first.inner_text().strip() == title
    return page, main.inner_text()


def test_overview_shows_the_kpis_and_freshness(browser_page, tiny_firm):
    warehouse = tiny_firm.warehouse
    page, text = open_page(browser_page, "overview")
    month = default_month(warehouse)
    open_exceptions = scalar(warehouse, "select count(*) from marts.fct_exceptions")
    utilisation = scalar(
        warehouse,
        "select sum(billable_hours) / sum(capacity_hours) from marts.rpt_utilization"
        " where month_start_date = ?",
        month,
    )
    for label in ("Billable utilisation", "WIP (unbilled)", "Median time to invoice", "Open exceptions"):
        assert label in text
    assert f"{open_exceptions:,}" in text
    assert f"{float(utilisation) * 100:.1f}%" in text
    assert month.strftime("%b %Y") in text  # the period in the scope line
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "Data freshness" in sidebar and "Last successful load" in sidebar and "Warehouse built" in sidebar


def money(value) -> str:
    """The tiles' compact money format (dashboards.ui.money), restated to check the screen."""
    number = float(value)
    if abs(number) >= 1_000_000:
        return f"USD {number / 1_000_000:,.2f}M"
    if abs(number) >= 10_000:
        return f"USD {number / 1_000:,.1f}k"
    return f"USD {number:,.2f}"


def expected_on_page(warehouse: Path, name: str) -> list[str]:
    month = default_month(warehouse)
    end = (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)
    if name == "utilisation":
        compliance = scalar(
            warehouse,
            "select sum(compliant_capacity_hours) / sum(capacity_hours) from marts.rpt_utilization"
            " where month_start_date = ?",
            month,
        )
        return ["Submission compliance", f"{float(compliance) * 100:.1f}%", "Billable utilisation per person"]
    if name == "wip_billing":
        wip = scalar(
            warehouse, "select sum(wip_amount_reporting) from marts.rpt_wip where as_of_date = ?", end
        )
        return ["Work in progress", money(wip), "Time to invoice", "Billing cycle by practice"]
    if name == "revenue_margin":
        billed = scalar(
            warehouse,
            "select sum(billed_amount_reporting) from marts.rpt_revenue where month_start_date = ?",
            month,
        )
        return ["Billed", money(billed), "Margin by", "Receivables"]
    approved = scalar(
        warehouse,
        "select sum(approved_hours) from marts.rpt_reconciliation where month_start_date = ?",
        month,
    )
    return ["Approved hours (time tool)", f"{float(approved):,.0f} h", "Project-months"]


@pytest.mark.parametrize("name", ["utilisation", "wip_billing", "revenue_margin", "reconciliation"])
def test_kpi_pages_show_their_numbers(browser_page, tiny_firm, name):
    _page, text = open_page(browser_page, name)
    for expected in expected_on_page(tiny_firm.warehouse, name):
        assert expected in text, (name, expected)
    assert "Traceback" not in text


def test_exceptions_page_lists_the_queue(browser_page, tiny_firm):
    page, text = open_page(browser_page, "exceptions")
    blocking = scalar(
        tiny_firm.warehouse, "select count(*) from marts.rpt_exception_aging where is_open and is_blocking"
    )
    assert "Blocking billing" in text and f"{blocking:,}" in text
    assert "Download these" in text
    assert page.locator('[data-testid="stDataFrame"]').count() >= 1


def test_pipeline_health_shows_runs(browser_page, tiny_firm):
    _page, text = open_page(browser_page, "pipeline_health")
    rows = scalar(
        tiny_firm.warehouse,
        "select sum(row_count) from staging.stg_ops__load_log where source_name = 'time'"
        " and run_id = (select max(run_id) from staging.stg_ops__load_log)",
    )
    assert f"{int(rows):,} rows" in text
    assert "passed" in text


def test_forecast_page_shows_the_forecast_utilisation_of_its_mart(browser_page, tiny_firm):
    _page, text = open_page(browser_page, "forecast")
    utilisation = scalar(
        tiny_firm.warehouse,
        "select sum(billable_assigned_hours) / sum(capacity_hours)"
        " from marts.rpt_forecast_utilization_weekly",
    )
    assert "Forecast billable utilisation" in text
    assert f"{float(utilisation) * 100:.1f}%" in text
    assert "Demand against capacity" in text and "Revenue forecast" in text and "Forecast accuracy" in text


def test_project_health_page_counts_the_flagged_projects(browser_page, tiny_firm):
    _page, text = open_page(browser_page, "project_health")
    over_budget = scalar(
        tiny_firm.warehouse,
        "select count(*) from marts.rpt_project_health where is_forecast_over_budget_hours",
    )
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    label = lines.index("Forecast over budget hours")
    assert lines[label + 1] == f"{over_budget:,}", lines[label : label + 3]
    assert "By project lead" in text
