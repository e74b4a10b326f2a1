"""Dashboard page load times in a real browser (headless Chromium), on the demo and large warehouses.

For each preset it needs a published warehouse that holds the KPI marts. It uses, in order:
`data/bench/dashboard-<preset>/warehouse.duckdb` (delete it to measure a newer build), the
transform bench's `data/bench/transform-<preset>/warehouse.duckdb`, or else builds the first from
the ready-made `data/dev-<preset>/raw.duckdb` with the transform runner. A preset with none of
these is reported as not measured (for large: run the transform bench first). It then serves
the dashboard (`streamlit run`, headless) and opens every page:

- **cold**: the page's first visit by URL (its queries not cached yet), after one other page
  (Pipeline health) has loaded the server's Python modules, which is reported apart;
- **warm**: the same URL again;
- **from the sidebar**: moving between pages within one browser session.

The time runs from navigation (or the click) until the app's end-of-run marker for that run is
on the page with Streamlit's status widget idle (`billable.dashboard_process.wait_until_rendered`).
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from billable.dashboard_process import (
    CHROMIUM,
    CHROMIUM_ARGS,
    PAGES,
    rendered_run,
    running_dashboard,
    wait_until_rendered,
)

ROOT = Path(__file__).resolve().parent.parent
TARGETS_S = {"demo": 2.0, "large": 3.0}
ROUNDS = 3
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
    for candidate in (warehouse, bench_data / f"transform-{preset}" / "warehouse.duckdb"):
        if has_kpi_marts(candidate):  # ours, else the transform bench's (make bench --only transform)
            return candidate, f"`{candidate.relative_to(ROOT)}`"
    # Only the ready-made dev raw database is built from here: the ingest bench's raw database may
    # be in the middle of a load (a reader's lock would get in its way); for large, run
    # `make bench BENCH_ARGS="--only transform"` first and its warehouse is measured.
    raw = ROOT / "data" / f"dev-{preset}" / "raw.duckdb"
    if raw.is_file():
        command = [sys.executable, "-m", "billable.transform", "--raw-db", str(raw)]
        command += ["--warehouse", str(warehouse), "--build-dir", str(out / "build")]
        result = subprocess.run(command, cwd=ROOT, check=False, capture_output=True, text=True)
        if result.returncode != 0:
            last = (result.stderr.strip().splitlines() or ["no output"])[-1]
            return None, f"building its warehouse from `{raw.relative_to(ROOT)}` failed ({last})"
        return warehouse, f"built from `{raw.relative_to(ROOT)}`"
    return None, (
        f"no warehouse with the KPI marts for `{preset}` (data/bench/dashboard-{preset}/, "
        f"data/bench/transform-{preset}/ from the transform bench) and no data/dev-{preset}/raw.duckdb"
    )


def load(page, url: str) -> float:
    """Seconds from navigation (a new browser session) to the page's script having rendered."""
    started = time.monotonic()
    page.goto(url)
    return (time.monotonic() - started) + wait_until_rendered(page, timeout_s=120)


def switch(page, title: str) -> float:
    """Seconds from a click on the page's link in the sidebar to the page having rendered."""
    before = rendered_run(page)
    started = time.monotonic()
    page.locator('[data-testid="stSidebarNav"] a').filter(has_text=title).first.click()
    return (time.monotonic() - started) + wait_until_rendered(page, timeout_s=120, after_run=before)


def time_warehouse(warehouse: Path, log: Path) -> tuple[float, dict[str, tuple[float, float, float]]]:
    """(first page after the server started, {page: (cold, warm by URL, warm by sidebar) seconds})."""
    from playwright.sync_api import sync_playwright

    cold: dict[str, float] = {}
    warm: dict[str, float] = {}
    clicked: dict[str, float] = {}
    with running_dashboard(warehouse, log) as base_url, sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        page = browser.new_page(viewport={"width": 1440, "height": 1000})
        # the server imports pandas, Plotly and the app on its first run: a one-off per process,
        # measured apart; it also warms the sidebar's queries, as any first page would
        first = load(page, f"{base_url}/pipeline_health")
        for visits in (cold, warm):
            for name, (path, _title) in PAGES.items():
                visits[name] = load(page, f"{base_url}/{path}")
        for name, (_path, title) in PAGES.items():
            clicked[name] = switch(page, title)
        browser.close()
    return first, {name: (cold[name], warm[name], clicked[name]) for name in PAGES}


def entries(warehouse: Path) -> int:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        row = connection.execute("select count(*) from marts.fct_time_entries").fetchone()
        return int(row[0]) if row else 0


def bench_dashboard(bench_data: Path, presets: list[str]) -> str:
    lines = [
        "Page load in headless Chromium: from navigation until the page's script finished rendering. "
        "Cold = the page's first visit (its queries not cached yet), opened by URL (a new browser "
        "session: the app's JavaScript loads and connects); warm = the same again; from the sidebar = "
        f"moving between pages within one session, as an executive does. Each figure is the median of "
        f"{ROUNDS} rounds, each on a freshly started server.",
        "",
    ]
    for preset in presets:
        warehouse, origin = warehouse_for(bench_data, preset)
        if warehouse is None:
            lines += [f"**{preset}**: not measured: {origin}.", ""]
            print(lines[-2], flush=True)
            continue
        load_before = os.getloadavg()[0]
        # a fresh server per round (cold means an empty cache); the median of the rounds damps the
        # noise of a shared machine
        rounds = [time_warehouse(warehouse, bench_data / f"dashboard-{preset}.log") for _ in range(ROUNDS)]
        first = statistics.median(round_first for round_first, _ in rounds)
        timings = {
            name: tuple(statistics.median(timing[name][i] for _, timing in rounds) for i in range(3))
            for name in PAGES
        }
        load_after = os.getloadavg()[0]
        target = TARGETS_S.get(preset)
        lines += [
            f"**{preset}** ({entries(warehouse):,} time entries; warehouse {origin}; target "
            f"{f'< {target:.0f} s' if target else 'none'}):",
            "",
            "| page | cold, opened by URL (s) | warm, opened by URL (s) | warm, from the sidebar (s) |",
            "|---|---:|---:|---:|",
        ]
        for name, (cold, warm, clicked) in timings.items():
            lines.append(f"| {PAGES[name][1]} | {cold:.2f} | {warm:.2f} | {clicked:.2f} |")
        worst_warm = max(max(warm, clicked) for _cold, warm, clicked in timings.values())
        worst_cold = max(cold for cold, _warm, _clicked in timings.values())
        median_cold = statistics.median(cold for cold, _warm, _clicked in timings.values())
        verdict = (
            f"slowest warm page {worst_warm:.2f} s, slowest cold page {worst_cold:.2f} s "
            f"(median cold {median_cold:.2f} s)"
        )
        if target:
            verdict += (
                "; target met" if worst_cold < target else f"; cold loads miss the {target:.0f} s target"
            )
        lines += [
            "",
            verdict + ".",
            "",
            f"First page after the server started (Python imports included, once per server process): "
            f"{first:.2f} s. Load average while measuring: {load_before:.1f} → {load_after:.1f} "
            f"on {os.cpu_count()} cores.",
            "",
        ]
        print("\n".join(lines[-len(timings) - 8 :]), flush=True)
    return "\n".join(lines).rstrip()
