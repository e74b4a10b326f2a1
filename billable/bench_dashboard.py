"""Dashboard page load times in a real browser (headless Chromium), on the demo and large warehouses.

For each preset it needs a published warehouse that holds the KPI marts. It uses, in order:
`data/bench/dashboard-<preset>/warehouse.duckdb` if it holds the KPI marts (delete it to measure a
newer build), else builds it from the
first raw database it finds (`data/bench/ingest-<preset>/raw.duckdb`, then
`data/dev-<preset>/raw.duckdb`) with the transform runner. A preset with neither is reported as
not measured. It then serves the dashboard (`streamlit run`, headless) and opens every page:

- **cold**: the first visit of each page after the server started (empty query cache), and
- **warm**: a second visit, as an executive moving between pages sees it.

The time is from navigation to the page's script having finished rendering (Streamlit's status
widget idle, no stale element), measured by `billable.dashboard_process.wait_until_rendered`.
"""

from __future__ import annotations

import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from billable.dashboard_process import CHROMIUM, CHROMIUM_ARGS, PAGES, running_dashboard, wait_until_rendered

ROOT = Path(__file__).resolve().parent.parent
TARGETS_S = {"demo": 2.0, "large": 3.0}
NEEDED = ("rpt_utilization", "rpt_wip", "rpt_revenue", "rpt_time_to_invoice")


def has_kpi_marts(warehouse: Path) -> bool:
    if not warehouse.is_file():
        return False
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        names = {
            row[0]
            for row in connection.execute("select table_name from information_schema.tables").fetchall()
        }
    return all(name in names for name in NEEDED)


def warehouse_for(bench_data: Path, preset: str) -> tuple[Path | None, str]:
    """(the warehouse to measure, where it came from) or (None, why not)."""
    out = bench_data / f"dashboard-{preset}"
    warehouse = out / "warehouse.duckdb"
    if has_kpi_marts(warehouse):
        return warehouse, f"`{warehouse.relative_to(ROOT)}`"
    for raw in (
        bench_data / f"ingest-{preset}" / "raw.duckdb",
        ROOT / "data" / f"dev-{preset}" / "raw.duckdb",
    ):
        if raw.is_file():
            command = [sys.executable, "-m", "billable.transform", "--raw-db", str(raw)]
            command += ["--warehouse", str(warehouse), "--build-dir", str(out / "build")]
            subprocess.run(command, cwd=ROOT, check=True, stdout=subprocess.DEVNULL)
            return warehouse, f"built from `{raw.relative_to(ROOT)}`"
    return None, f"no raw database for `{preset}` (data/bench/ingest-{preset}/ or data/dev-{preset}/)"


def time_warehouse(warehouse: Path, log: Path) -> dict[str, tuple[float, float]]:
    """Seconds per page: (cold, warm)."""
    from playwright.sync_api import sync_playwright

    cold: dict[str, float] = {}
    warm: dict[str, float] = {}
    with running_dashboard(warehouse, log) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        for visits in (cold, warm):
            for name, (path, _title) in PAGES.items():
                started = time.monotonic()
                page.goto(f"{base_url}/{path}")
                visits[name] = (time.monotonic() - started) + wait_until_rendered(page, timeout_s=120)
        browser.close()
    return {name: (cold[name], warm[name]) for name in PAGES}


def entries(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return int(connection.execute("select count(*) from marts.fct_time_entries").fetchone()[0])


def bench_dashboard(bench_data: Path, presets: list[str]) -> str:
    lines = [
        "Page load in headless Chromium: from navigation until the page's script finished rendering. "
        "Cold = first visit after the server started (empty query cache); warm = the next visit.",
        "",
    ]
    for preset in presets:
        warehouse, origin = warehouse_for(bench_data, preset)
        if warehouse is None:
            lines += [f"**{preset}**: not measured: {origin}.", ""]
            print(lines[-2], flush=True)
            continue
        timings = time_warehouse(warehouse, bench_data / f"dashboard-{preset}.log")
        target = TARGETS_S.get(preset)
        lines += [
            f"**{preset}** ({entries(warehouse):,} time entries; warehouse {origin}; target "
            f"{f'< {target:.0f} s' if target else 'none'}):",
            "",
            "| page | cold (s) | warm (s) |",
            "|---|---:|---:|",
        ]
        for name, (cold, warm) in timings.items():
            lines.append(f"| {PAGES[name][1]} | {cold:.2f} | {warm:.2f} |")
        worst_warm = max(warm for _cold, warm in timings.values())
        worst_cold = max(cold for cold, _warm in timings.values())
        median_cold = statistics.median(cold for cold, _warm in timings.values())
        verdict = (
            f"slowest warm page {worst_warm:.2f} s, slowest cold page {worst_cold:.2f} s "
            f"(median cold {median_cold:.2f} s)"
        )
        if target:
            verdict += (
                "; target met" if worst_cold < target else f"; cold loads miss the {target:.0f} s target"
            )
        lines += ["", verdict + ".", ""]
        print("\n".join(lines[-len(timings) - 6 :]), flush=True)
    return "\n".join(lines).rstrip()
