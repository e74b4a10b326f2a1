"""Engine benchmark (`make bench BENCH_ARGS="--only engines"`): one world built on DuckDB, on
PostgreSQL (a throwaway PostgreSQL 15 on this machine) and on Spark (local pyspark), in the same
run, as ratios to DuckDB:

- initial load: `python -m billable.pipeline --only ingest` from a fresh copy of the world;
- full build with tests: `--only transform` (every model, unit and data test, and the publish);
- daily run: the world's clock one day on, then the whole daily run (`--advance-days 1`: ingest,
  build, sync, ERP ingest, build), as `make demo-day` does;
- one dashboard page (Overview) opened in headless Chromium, warm (the second visit), over the
  published warehouse of that engine.

An engine whose step fails is reported with its error, not left out silently.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
ENGINES = ("duckdb", "postgres", "spark")


@contextmanager
def engine_settings(engine: str) -> Iterator[dict[str, str]]:
    """The environment that runs the pipeline on `engine` (a throwaway cluster for PostgreSQL)."""
    base = {key: value for key, value in os.environ.items() if key != "BILLABLE_ENGINE"}
    if engine != "postgres":
        yield {**base, "BILLABLE_ENGINE": engine}
        return
    from billable.pg_cluster import ThrowawayCluster

    with ThrowawayCluster() as cluster:
        cluster.create_database("billable")
        cluster.create_reader()
        yield {**base, **cluster.environment()}


def timed(command: list[str], env: dict[str, str], log: Path) -> float:
    started = time.monotonic()
    with log.open("a") as output:
        result = subprocess.run(
            command, cwd=ROOT, env=env, stdout=output, stderr=subprocess.STDOUT, check=False
        )
    if result.returncode != 0:
        tail = log.read_text().strip().splitlines()[-3:]
        raise RuntimeError(f"exit {result.returncode}: {' / '.join(tail)[-300:]}")
    return time.monotonic() - started


def page_seconds(env: dict[str, str], warehouse: Path, log: Path) -> float:
    """Overview's warm load (second visit by URL) in headless Chromium, on this engine's warehouse."""
    from playwright.sync_api import sync_playwright

    from benchmarks.dashboard import load
    from billable.dashboard_process import CHROMIUM, CHROMIUM_ARGS, running_dashboard

    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update(env)
    try:
        with running_dashboard(warehouse, log) as base_url, sync_playwright() as playwright:
            browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            load(page, f"{base_url}/")
            seconds = load(page, f"{base_url}/")
            browser.close()
    finally:
        os.environ.clear()
        os.environ.update(saved)
    return seconds


def measure(engine: str, world: Path, bench_data: Path) -> dict[str, float | str]:
    folder = bench_data / f"engine-{engine}"
    shutil.rmtree(folder, ignore_errors=True)
    folder.mkdir(parents=True)
    copy = folder / "world"
    shutil.copytree(world, copy, ignore=shutil.ignore_patterns("sandbox-*.log"))
    data = folder / "data"
    log = folder / "run.log"
    pipeline = [sys.executable, "-m", "billable.pipeline", "--world", str(copy), "--port", "0"]
    pipeline += ["--raw-db", str(data / "raw.duckdb")]
    figures: dict[str, float | str] = {}
    with engine_settings(engine) as env:
        for name, extra in (
            ("initial load", ["--only", "ingest"]),
            ("full build with tests", ["--only", "transform"]),
            ("daily run", ["--advance-days", "1"]),
        ):
            try:
                figures[name] = timed([*pipeline, *extra], env, log)
            except RuntimeError as err:
                figures[name] = f"failed ({err})"
                return figures
            print(f"bench engines: {engine} {name}: {figures[name]:.1f} s", flush=True)
        try:
            figures["dashboard page"] = page_seconds(env, data / "warehouse.duckdb", folder / "dashboard.log")
        except Exception as err:  # a reader that cannot serve this engine is a finding, shown as such
            figures["dashboard page"] = f"failed ({type(err).__name__}: {str(err)[:200]})"
    return figures


def bench_engines(world_for, bench_data: Path, preset: str = "demo", engines: list[str] | None = None) -> str:
    world = world_for(preset)
    load_before = os.getloadavg()[0]
    results = {
        engine: measure(engine, world, bench_data) if engine in (engines or ENGINES) else {}
        for engine in ENGINES
    }
    load_after = os.getloadavg()[0]
    steps = ("initial load", "full build with tests", "daily run", "dashboard page")
    lines = [
        f"The `{preset}` world on each engine, one after another in the same run (seconds; in brackets "
        "the ratio to DuckDB). PostgreSQL 15 is a throwaway local cluster (fsync off); Spark is "
        "pyspark in local mode (`local[2]`) through dbt-spark's session method.",
        "",
        "| step | " + " | ".join(ENGINES) + " |",
        "|---|" + "---:|" * len(ENGINES),
    ]
    for step in steps:
        cells = []
        base = results["duckdb"].get(step)
        for engine in ENGINES:
            value = results[engine].get(step, "not reached" if results[engine] else "not measured")
            if isinstance(value, float):
                ratio = f" ({value / base:.1f}×)" if isinstance(base, float) and engine != "duckdb" else ""
                cells.append(f"{value:.1f}{ratio}")
            else:
                cells.append(str(value))
        lines.append(f"| {step} | " + " | ".join(cells) + " |")
    lines += ["", f"Load average {load_before:.1f} → {load_after:.1f} on {os.cpu_count()} cores."]
    return "\n".join(lines)
