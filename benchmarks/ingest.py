"""Ingestion benchmark: the dlt loaders against a bare client, on the same sandbox, in one run.

The bare client fetches and parses every page every loader reads (the API's practical limit);
the loaders also validate, write Parquet and merge into DuckDB. The two are paired source by
source (bare pass, then that source's loader), so load from other work on a shared machine, which
changes over a run of several minutes, falls on both sides of each comparison alike; CPU seconds
of each side are reported too, as they hardly depend on that load. Then the clock moves one day
and the incremental run of all sources is timed, on `large` and on `demo`, to show cost follows
the change.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from functools import partial
from pathlib import Path

import duckdb

from benchmarks import bare_clients
from billable.sandbox_process import running_sandbox, sandbox_settings
from ingestion.run import SOURCES
from sandbox.world import World

ROOT = Path(__file__).resolve().parent.parent


def bare_readers(base_url: str, world: Path) -> dict[str, list[Callable[[], Iterator[dict]]]]:
    """Per source, the bare readers of every list its loader reads."""
    readers: dict[str, list[Callable[[], Iterator[dict]]]] = {
        "crm": [partial(bare_clients.salesforce, base_url, name) for name in bare_clients.SALESFORCE],
        "psa": [partial(bare_clients.kantata, base_url, name) for name in bare_clients.KANTATA],
        "time": [partial(bare_clients.harvest, base_url, name) for name in bare_clients.HARVEST],
        "erp": [
            partial(bare_clients.quickbooks, base_url, realm, name)
            for realm in World(world).realms
            for name in bare_clients.QUICKBOOKS
        ],
    }
    return readers


def bare_pass(readers: list[Callable[[], Iterator[dict]]]) -> tuple[int, float, float]:
    """(records, wall seconds, CPU seconds) of a client that only fetches and parses."""
    started, cpu = time.monotonic(), time.process_time()
    records = sum(sum(1 for _ in read()) for read in readers)
    return records, time.monotonic() - started, time.process_time() - cpu


def loader_run(base_url: str, world: Path, raw_db: Path, sources: str = "") -> dict:
    """Run `python -m ingestion` (all sources, or some); wall, CPU and peak RSS of the process and,
    per source, the rows loaded and seconds from `ops.load_log`."""
    env = {**os.environ, **sandbox_settings(base_url), "BILLABLE_PROGRESS": ""}
    command = [sys.executable, "-m", "ingestion", "--raw-db", str(raw_db)]
    if sources:
        command += ["--sources", sources]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    _, status, usage = os.wait4(process.pid, 0)
    wall = time.monotonic() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"ingestion failed on {world}; run it by hand to see why")
    with duckdb.connect(str(raw_db), read_only=True) as connection:
        rows = connection.execute(
            """
            select source, sum(rows) filter (where table_name <> 'quarantine'), max(duration_s)
            from ops.load_log where run_id = (select max(run_id) from ops.load_log) group by source
            """
        ).fetchall()
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "peak": usage.ru_maxrss / 1024,
        "per_source": {source: (int(count or 0), seconds) for source, count, seconds in rows},
    }


def paired(base_url: str, world: Path, raw_db: Path) -> dict[str, dict]:
    """Each source's bare pass, then its loader (a process of its own), in the runner's order."""
    readers = bare_readers(base_url, world)
    results: dict[str, dict] = {}
    for source in SOURCES:
        result: dict = {"load": os.getloadavg()[0]}  # the machine's 1-minute load as the pair starts
        if source in readers:
            result["records"], result["bare_s"], result["bare_cpu"] = bare_pass(readers[source])
        run = loader_run(base_url, world, raw_db, source)
        result["rows"], result["loader_s"] = run["per_source"][source]
        result.update(wall=run["wall"], cpu=run["cpu"], peak=run["peak"])
        results[source] = result
        print(f"bench ingest: {source} {result}", flush=True)
    return results


def warm(base_url: str, world: Path) -> None:
    """Read one page of every list, so the sandbox rebuilds its as-of-clock state before the timed
    run: that recompute is the emulator's cost, which a real system does not have."""
    lists = [
        *(bare_clients.salesforce(base_url, name) for name in bare_clients.SALESFORCE),
        *(bare_clients.kantata(base_url, name) for name in bare_clients.KANTATA),
        *(bare_clients.harvest(base_url, name) for name in bare_clients.HARVEST),
        *(
            bare_clients.quickbooks(base_url, realm, name)
            for realm in World(world).realms
            for name in bare_clients.QUICKBOOKS
        ),
    ]
    for records in lists:
        next(records, None)


def advance_one_day(world: Path) -> None:
    subprocess.run(
        [sys.executable, "-m", "sandbox", "advance", "--world", str(world), "--days", "1"],
        cwd=ROOT,
        check=True,
        stdout=subprocess.DEVNULL,
    )


def initial_and_incremental(world: Path, scratch: Path) -> dict:
    """Full load, bare pass and a one-day incremental on a copy of `world`."""
    if scratch.exists():
        shutil.rmtree(scratch)
    copy = scratch / "world"
    shutil.copytree(world, copy, ignore=shutil.ignore_patterns("sandbox-*.log"))
    raw_db = scratch / "raw.duckdb"
    with running_sandbox(copy, timeout_s=900) as base_url:
        warm(base_url, copy)
        sources = paired(base_url, copy, raw_db)
        advance_one_day(copy)
        warm(base_url, copy)
        load = os.getloadavg()[0]
        incremental = loader_run(base_url, copy, raw_db)
    return {
        "sources": sources,
        "incremental_load": load,
        "incremental_wall": incremental["wall"],
        "incremental_rows": sum(rows for rows, _ in incremental["per_source"].values()),
    }


def report(large: dict, demo: dict, large_name: str) -> str:
    lines = [
        f"Initial load of the `{large_name}` world, source by source: a bare client that only fetches",
        "and parses the pages, then that source's loader (`python -m ingestion --sources <source>`), on",
        "the same sandbox. Throughput is counted in API records (what both read); the loaders' rows",
        "also count child rows such as invoice lines. Loader seconds are the source's load as the load",
        "log times it (extract, normalise, load); CPU seconds are each client's own (the sandbox's are",
        "not counted on either side).",
        "",
        "| source | API records | rows loaded | loader s | loader records/s | bare s | bare records/s "
        "| loader / bare | loader CPU s | bare CPU s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    total_records = total_loader_s = total_bare_s = 0.0
    for source, result in large["sources"].items():
        rows, seconds = result["rows"], result["loader_s"]
        if "records" not in result:
            lines.append(
                f"| {source} (files) | – | {rows:,} | {seconds:.1f} | {rows / seconds:,.0f} rows/s "
                f"| – | – | – | {result['cpu']:.1f} | – |"
            )
            continue
        records, bare_s = result["records"], result["bare_s"]
        total_records += records
        total_loader_s += seconds
        total_bare_s += bare_s
        loader_rate, bare_rate = records / seconds, records / bare_s
        lines.append(
            f"| {source} | {records:,} | {rows:,} | {seconds:.1f} | {loader_rate:,.0f} | {bare_s:.1f} | "
            f"{bare_rate:,.0f} | {loader_rate / bare_rate:.0%} | {result['cpu']:.1f} "
            f"| {result['bare_cpu']:.1f} |"
        )
    share = total_bare_s / total_loader_s
    loads = ", ".join(f"{source} {result['load']:.1f}" for source, result in large["sources"].items())
    peak = max(result["peak"] for result in large["sources"].values())
    wall = sum(result["wall"] for result in large["sources"].values())
    lines += [
        f"| **HTTP sources** | {total_records:,.0f} | | {total_loader_s:.1f} | "
        f"{total_records / total_loader_s:,.0f} | {total_bare_s:.1f} | {total_records / total_bare_s:,.0f} "
        f"| **{share:.0%}** | | |",
        "",
        f"Loader processes: {wall:.1f} s wall in all, peak RSS {peak:,.0f} MiB (the largest of the five;"
        " target < 4 GiB).",
        "",
        f"Load average (1 minute) as each source's pair started: {loads}. A busy machine slows the",
        "bare client's pass (mostly the sandbox answering) more than the loader: compare ratios at like",
        "loads.",
        "",
        "Incremental run of all sources in one process after the clock moved one day (nothing else",
        "changed; the sandbox's own recompute of its as-of-clock state is done before the timer starts):",
        "",
        "| world | rows loaded | wall s |",
        "|---|---:|---:|",
        f"| {large_name} | {large['incremental_rows']:,} | {large['incremental_wall']:.1f} |",
        f"| demo | {demo['incremental_rows']:,} | {demo['incremental_wall']:.1f} |",
        "",
        f"Load average (1 minute) as each incremental run started: {large_name} "
        f"{large['incremental_load']:.1f}, demo {demo['incremental_load']:.1f}.",
        "",
        f"{large_name} / demo incremental time: {large['incremental_wall'] / demo['incremental_wall']:.2f}× "
        "(targets: ≤ 2×, and < 60 s on large).",
    ]
    return "\n".join(lines)


def bench_ingest(world_for: Callable[[str], Path], scratch_root: Path, large_preset: str = "large") -> str:
    """Run the benchmark on the `large` and `demo` worlds (`world_for(preset)` gives their folders)."""
    large = initial_and_incremental(world_for(large_preset), scratch_root / "ingest-large")
    demo = initial_and_incremental(world_for("demo"), scratch_root / "ingest-demo")
    return report(large, demo, large_preset)
