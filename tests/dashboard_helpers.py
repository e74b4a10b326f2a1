"""Running the dashboard in tests: Streamlit's AppTest in-process, or the real server for a browser."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from streamlit.testing.v1 import AppTest

from tests.ingest_helpers import ROOT

APP = ROOT / "dashboards" / "app.py"
SCREENSHOTS = ROOT / "data" / "screenshots"

# page file -> (URL path, title shown on the page)
PAGES = {
    "overview": ("", "Overview"),
    "utilisation": ("utilisation", "Utilisation"),
    "wip_billing": ("wip_billing", "WIP & billing"),
    "revenue_margin": ("revenue_margin", "Revenue & margin"),
    "exceptions": ("exceptions", "Exceptions"),
    "reconciliation": ("reconciliation", "Reconciliation"),
    "pipeline_health": ("pipeline_health", "Pipeline health"),
}

CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]


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


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def dashboard_server(warehouse: Path, log: Path) -> Iterator[str]:
    """`streamlit run dashboards/app.py` headless on a free port; yields its base URL."""
    port = free_port()
    env = {**os.environ, "BILLABLE_WAREHOUSE": str(warehouse)}
    command = [
        sys.executable,
        "-m",
        "streamlit",
        "run",
        str(APP),
        "--server.port",
        str(port),
        "--server.address",
        "127.0.0.1",
        "--server.headless",
        "true",
        "--browser.gatherUsageStats",
        "false",
        "--server.fileWatcherType",
        "none",
        "--client.toolbarMode",
        "viewer",
    ]
    with log.open("w") as output:
        process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT)
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 60
            while True:
                try:
                    with urllib.request.urlopen(f"{base}/_stcore/health", timeout=2) as response:
                        if response.status == 200:
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError(f"dashboard server did not start: {log.read_text()[-3000:]}")
                time.sleep(0.3)
            yield base
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def wait_for_app(page, timeout_ms: int = 60000) -> None:
    """Wait until Streamlit has rendered a page and finished running its script."""
    page.wait_for_selector('[data-testid="stMain"] h1', timeout=timeout_ms)
    page.wait_for_function(
        """() => {
            const widget = document.querySelector('[data-testid="stStatusWidget"]');
            return !widget || !/Running|Stop/.test(widget.innerText);
        }""",
        timeout=timeout_ms,
    )
    # the script may rerun once as widgets settle; then charts draw
    page.wait_for_timeout(500)
    page.wait_for_function(
        """() => {
            const widget = document.querySelector('[data-testid="stStatusWidget"]');
            return !widget || !/Running|Stop/.test(widget.innerText);
        }""",
        timeout=timeout_ms,
    )


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
