"""Start the dashboard server as a child process and drive it in headless Chromium (tests, bench)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil

from billable.child_process import die_with_parent
from billable.sandbox_process import free_port, port_in_use

ROOT = Path(__file__).resolve().parent.parent
APP = ROOT / "dashboards" / "app.py"

CHROMIUM = "/usr/bin/chromium"  # Debian's package; Playwright never downloads a browser here
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

# page file -> (URL path, title shown on the page)
PAGES = {
    "overview": ("", "Overview"),
    "utilisation": ("utilisation", "Utilisation"),
    "wip_billing": ("wip_billing", "WIP & billing"),
    "revenue_margin": ("revenue_margin", "Revenue & margin"),
    "forecast": ("forecast", "Forecast"),
    "project_health": ("project_health", "Project health"),
    "exceptions": ("exceptions", "Exceptions"),
    "reconciliation": ("reconciliation", "Reconciliation"),
    "pipeline_health": ("pipeline_health", "Pipeline health"),
}


class DashboardStartError(RuntimeError):
    """The dashboard server did not come up; the message carries its output."""


@contextmanager
def running_dashboard(
    warehouse: Path, log: Path, timeout_s: float = 60.0, port: int | None = None
) -> Iterator[str]:
    """`streamlit run dashboards/app.py` headless on `port` (default: a free one) over a warehouse;
    yields the base URL. A port another program holds is a DashboardStartError naming it."""
    if port:
        busy = port_in_use(port, flag="port")
        if busy:
            raise DashboardStartError(str(busy))
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    env = {**os.environ, "BILLABLE_WAREHOUSE": str(warehouse)}
    command = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.port", str(port), "--server.address", "127.0.0.1", "--server.headless", "true",
        "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
        "--client.toolbarMode", "viewer",
    ]  # fmt: skip
    with log.open("w") as output:
        process = subprocess.Popen(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, preexec_fn=die_with_parent()
        )
        try:
            deadline = time.monotonic() + timeout_s
            while True:
                try:
                    with urllib.request.urlopen(f"{base_url}/_stcore/health", timeout=2) as response:
                        # Streamlit's health answer carries no identity: it counts only if the
                        # listener on the port is the process we started (not whoever else took it).
                        if response.status == 200 and listens_on(process.pid, port):
                            break
                except OSError:
                    pass
                if process.poll() is not None or time.monotonic() > deadline:
                    busy = None if listens_on(process.pid, port) else port_in_use(port, flag="port")
                    if busy:  # someone took the port between our check and the server's start
                        raise DashboardStartError(str(busy))
                    raise DashboardStartError(f"dashboard server did not start: {log.read_text()[-3000:]}")
                time.sleep(0.2)
            yield base_url
        finally:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def listens_on(pid: int, port: int) -> bool:
    """Whether process `pid` itself holds a listening TCP socket on `port`."""
    try:
        connections = psutil.Process(pid).net_connections(kind="tcp")
    except psutil.Error:
        return False
    return any(c.status == psutil.CONN_LISTEN and c.laddr and c.laddr.port == port for c in connections)


# The app draws a hidden marker (#billable-rendered, data-run = the session's run count) when a
# run has finished (dashboards/app.py): a newer marker, an idle status widget and nothing stale
# means the page is done.
_STATE = """() => {
    const marker = document.getElementById('billable-rendered');
    const widget = document.querySelector('[data-testid="stStatusWidget"]');
    const stale = document.querySelector('[data-stale="true"]');
    const busy = Boolean(widget) && /Running|Stop/.test(widget.innerText);
    return {run: marker ? Number(marker.dataset.run || 0) : 0, idle: !busy && !stale};
}"""


def rendered_run(page) -> int:
    """The run count of the last finished run on the page (0 before the first)."""
    return int(page.evaluate(_STATE)["run"])


def wait_until_rendered(page, timeout_s: float = 60.0, settle_s: float = 0.3, after_run: int = 0) -> float:
    """Wait until a run newer than `after_run` has finished and the page stayed idle for `settle_s`.

    Returns the seconds from the call to the first moment of that idle stretch, so a page
    measured right after `goto` or a click gives its load time without the settling wait.
    """
    started = time.monotonic()
    idle_since: float | None = None
    while True:
        now = time.monotonic()
        state = page.evaluate(_STATE)
        if state["run"] > after_run and state["idle"]:
            idle_since = idle_since or now
            if now - idle_since >= settle_s:
                return idle_since - started
        else:
            idle_since = None
        if now - started > timeout_s:
            raise TimeoutError(f"the page did not finish rendering within {timeout_s} s")
        time.sleep(0.05)
