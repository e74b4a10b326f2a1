"""The WIP page in a real browser: the bridge to unbilled receivable, and its Excel download.

One `streamlit run` server and headless Chromium on the session's tiny warehouse, as in
tests/test_dashboard_browser.py. The Excel file is the one the browser receives when the button
is clicked (built on click), read with the standard library: its WIP column holds numbers that
add up to rpt_wip's total.
"""

from __future__ import annotations

import re
import zipfile
from datetime import timedelta
from pathlib import Path
from xml.etree import ElementTree

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

MAIN = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def scalar(warehouse: Path, sql: str, *params):
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchone()[0]


def sheet_rows(path: Path) -> list[dict[str, str | float]]:
    """The first sheet's rows as {header: value}; numbers only from cells stored as numbers."""
    with zipfile.ZipFile(path) as archive:
        root = ElementTree.fromstring(archive.read("xl/worksheets/sheet1.xml"))
    table: list[dict[str, str]] = []
    for row in root.iter(f"{MAIN}row"):
        cells: dict[str, str | float] = {}
        for cell in row.iter(f"{MAIN}c"):
            column = re.sub(r"\d", "", cell.get("r", ""))
            if cell.get("t") == "inlineStr":
                cells[column] = "".join(cell.itertext())
            elif cell.get("t") is None and cell.find(f"{MAIN}v") is not None:
                cells[column] = float(cell.find(f"{MAIN}v").text or "nan")
        table.append(cells)
    header, *body = table
    return [{str(header[column]): value for column, value in cells.items()} for cells in body]


@pytest.fixture(scope="module")
def browser_page(tiny_firm, tmp_path_factory):
    log = tmp_path_factory.mktemp("dashboard-figures") / "streamlit.log"
    with (
        running_dashboard(tiny_firm.warehouse, log) as base_url,
        playwright_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
        page = context.new_page()
        try:
            yield base_url, page
        finally:
            context.close()
            browser.close()


def test_wip_page_bridges_and_downloads_excel_with_numbers(browser_page, tiny_firm, tmp_path):
    base_url, page = browser_page
    warehouse = tiny_firm.warehouse
    as_of = scalar(warehouse, "select as_of_date from intermediate.int_as_of")
    month_end = as_of.replace(day=1) - timedelta(days=1)
    wip = float(
        scalar(
            warehouse, "select sum(wip_amount_reporting) from marts.rpt_wip where as_of_date = ?", month_end
        )
    )
    page.goto(f"{base_url}/{PAGES['wip_billing'][0]}")
    wait_for_app(page)
    main = page.locator('[data-testid="stMain"]')
    text = main.inner_text()
    assert page.locator('[data-testid="stException"]').count() == 0, text[:3000]
    assert f"From WIP to unbilled receivable at {month_end:%d %b %Y}" in text
    # the waterfall's steps are SVG text (the table beside it is a canvas)
    chart = main.locator(".js-plotly-plot", has_text="From WIP to unbilled receivable")
    assert chart.locator("text", has_text="less unbilled expenses").count() >= 1
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    screenshot(page, SCREENSHOTS / "wip_billing_bridge.png")

    button = main.locator('[data-testid="stDownloadButton"] button', has_text="Excel").first
    with page.expect_download(timeout=30_000) as download:
        button.click()
    path = tmp_path / download.value.suggested_filename
    download.value.save_as(path)
    assert path.name == f"billable-wip-{month_end}.xlsx"
    rows = sheet_rows(path)
    projects = scalar(
        warehouse,
        "select count(*) from (select distinct project_id, client_id, aging_bucket from marts.rpt_wip"
        " where as_of_date = ?)",
        month_end,
    )
    assert len(rows) == projects
    assert all(isinstance(row["wip"], float) for row in rows if "wip" in row)
    assert abs(sum(float(row.get("wip", 0.0)) for row in rows) - wip) < 1e-6
