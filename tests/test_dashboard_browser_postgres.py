"""The real dashboard server in a real browser, once against PostgreSQL (issue 16).

The session's tiny warehouse (tests/conftest.py) is copied into a throwaway PostgreSQL 15 cluster
(tests/readers_pg_helpers.py); the server runs with BILLABLE_ENGINE=postgres and the connection in
dlt's usual variable, and BILLABLE_WAREHOUSE pointing at no file, so every figure on screen came
from PostgreSQL. The figures are checked against the DuckDB warehouse the copy came from.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, SCREENSHOTS, running_dashboard, screenshot
from tests.readers_pg_helpers import cluster_with
from tests.test_dashboard_browser import default_month, expected_on_page, open_page, scalar

playwright_api = pytest.importorskip("playwright.sync_api")

pytestmark = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")


@pytest.fixture(scope="module")
def pg_browser_page(tiny_firm, tmp_path_factory) -> Iterator[tuple[str, Any]]:
    folder = tmp_path_factory.mktemp("dashboard_postgres")
    with cluster_with(tiny_firm.warehouse) as cluster:
        saved = {key: os.environ.get(key) for key in cluster.environment()}
        os.environ.update(cluster.environment())  # the server inherits them
        try:
            with (
                running_dashboard(folder / "no-such-warehouse.duckdb", folder / "streamlit.log") as base_url,
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
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value


def test_the_dashboard_on_postgres_shows_duckdbs_figures(pg_browser_page, tiny_firm):
    warehouse = tiny_firm.warehouse
    page, text = open_page(pg_browser_page, "overview")
    screenshot(page, SCREENSHOTS / "overview-postgres.png")
    assert "No warehouse has been published" not in text
    month = default_month(warehouse)
    open_exceptions = scalar(warehouse, "select count(*) from marts.fct_exceptions")
    utilisation = scalar(
        warehouse,
        "select sum(billable_hours) / sum(capacity_hours) from marts.rpt_utilization"
        " where month_start_date = ?",
        month,
    )
    assert f"{open_exceptions:,}" in text
    assert f"{float(utilisation) * 100:.1f}%" in text
    sidebar = page.locator('[data-testid="stSidebar"]').inner_text()
    assert "Data freshness" in sidebar and "Warehouse built" in sidebar
    for name in ("wip_billing", "revenue_margin", "reconciliation"):
        _page, text = open_page(pg_browser_page, name)
        for expected in expected_on_page(warehouse, name):
            assert expected in text, (name, expected)
    _page, text = open_page(pg_browser_page, "pipeline_health")
    assert "passed" in text and "Traceback" not in text
