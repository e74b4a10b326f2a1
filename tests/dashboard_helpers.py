"""Running the dashboard in tests: Streamlit's AppTest in-process, or the real server for a browser."""

from __future__ import annotations

import os
from pathlib import Path

from streamlit.testing.v1 import AppTest

from billable.dashboard_process import (
    APP,
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGES,
    running_dashboard,
    wait_until_rendered,
)
from tests.ingest_helpers import ROOT

__all__ = ["CHROMIUM", "CHROMIUM_ARGS", "PAGES", "running_dashboard"]

SCREENSHOTS = ROOT / "data" / "screenshots"


def run_page(warehouse: Path, page: str = "overview", *, setup=None, timeout: float = 90) -> AppTest:
    """Run the app on a warehouse and switch to a page; `setup(at)` may set widgets first."""
    os.environ["BILLABLE_WAREHOUSE"] = str(warehouse)
    at = AppTest.from_file(str(APP), default_timeout=timeout)
    at.run()
    if page != "overview":
        at.switch_page(f"app_pages/{page}.py")
        at.run()
    if setup is not None:
        setup(at)
        at.run()
    return at


def messages(at: AppTest) -> str:
    """Every info, warning, error, success and markdown text on the page, for assertions."""
    parts = []
    for kind in ("info", "warning", "error", "success", "markdown", "caption"):
        parts += [element.value for element in getattr(at, kind)]
    return "\n".join(str(part) for part in parts)


def metrics(at: AppTest) -> dict[str, str]:
    return {metric.label: metric.value for metric in at.metric}


def wait_for_app(page, timeout_s: float = 60) -> None:
    """Wait until Streamlit has rendered the page and its script has finished."""
    wait_until_rendered(page, timeout_s=timeout_s, settle_s=0.5)


def screenshot(page, path: Path) -> None:
    """The whole page: Streamlit scrolls inside its main block, so grow the viewport to fit it first."""
    height = page.evaluate(
        """() => {
            const main = document.querySelector('[data-testid="stMain"]');
            const sidebar = document.querySelector('[data-testid="stSidebarContent"]');
            return Math.max(main ? main.scrollHeight : 0, sidebar ? sidebar.scrollHeight : 0);
        }"""
    )
    width = page.viewport_size["width"] if page.viewport_size else 1440
    original = page.viewport_size
    page.set_viewport_size({"width": width, "height": max(800, min(int(height) + 40, 8000))})
    page.wait_for_timeout(300)
    page.screenshot(path=str(path))
    if original:
        page.set_viewport_size(original)
