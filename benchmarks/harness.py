"""`make bench`: measure what the project promises about speed and memory.

Results are written into docs/benchmarks.md between `<!-- bench:<name> -->` markers, with the
machine and the date, so a partial run (`BENCH_ARGS="--only sandbox"`) updates only its part.
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

import requests

from billable.sandbox_process import running_sandbox
from ingestion.http import parse_json

ROOT = Path(__file__).resolve().parent.parent
REPORT = ROOT / "docs" / "benchmarks.md"
BENCH_DATA = ROOT / "data" / "bench"


def machine() -> str:
    """One line naming the machine the numbers were taken on."""
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    memory_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} cores ({cpu}), {memory_gib:.0f} GiB RAM, Python {platform.python_version()}"


def timed_child(command: list[str]) -> tuple[float, float]:
    """Run a command; return (wall seconds, peak RSS of that child in MiB)."""
    started = time.monotonic()
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    # wait4 gives this child's own rusage (RUSAGE_CHILDREN would be the max over all children).
    _, status, usage = os.wait4(process.pid, 0)
    process.returncode = os.waitstatus_to_exitcode(status)
    if process.returncode != 0:
        raise subprocess.CalledProcessError(process.returncode, command)
    return time.monotonic() - started, usage.ru_maxrss / 1024


def generate(preset: str, seed: int = 7) -> tuple[Path, float, float]:
    """Generate a fresh world in its own process; returns (path, seconds, peak MiB)."""
    out = BENCH_DATA / f"{preset}-{seed}"
    command = [sys.executable, "-m", "sandbox", "generate", "--preset", preset, "--seed", str(seed)]
    seconds, peak = timed_child([*command, "--out", str(out), "--force"])
    return out, seconds, peak


def page_harvest(base_url: str, resource_name: str = "time_entries") -> tuple[int, float]:
    """Fetch and parse every page of a Harvest list; returns (records, seconds)."""
    session = requests.Session()
    session.headers.update({"Authorization": "Bearer bench", "Harvest-Account-Id": "1"})
    url: str | None = f"{base_url}/v2/{resource_name}?per_page=2000"
    records = 0
    started = time.monotonic()
    while url:
        response = session.get(url, timeout=60)
        response.raise_for_status()
        body = parse_json(response.content)
        records += len(body[resource_name])
        url = body["links"]["next"]
    return records, time.monotonic() - started


def page_quickbooks(base_url: str, realm: str, entity: str = "TimeActivity") -> tuple[int, float]:
    """Fetch and parse every page of a QuickBooks query; returns (records, seconds)."""
    session = requests.Session()
    session.headers.update({"Authorization": "Bearer bench", "Accept": "application/json"})
    records, position, page_size = 0, 1, 1000
    started = time.monotonic()
    while True:
        query = f"SELECT * FROM {entity} STARTPOSITION {position} MAXRESULTS {page_size}"
        response = session.get(f"{base_url}/v3/company/{realm}/query", params={"query": query}, timeout=60)
        response.raise_for_status()
        page = parse_json(response.content)["QueryResponse"].get(entity, [])
        records += len(page)
        if len(page) < page_size:
            break
        position += page_size
    return records, time.monotonic() - started


def bench_sandbox(presets: list[str]) -> str:
    """Generation time and memory per preset; list-page throughput on the largest."""
    lines = [
        "| preset | time-entry rows (all versions) | generate (s) | peak RSS (MiB) |",
        "|---|---:|---:|---:|",
    ]
    world = None
    for preset in presets:
        world, seconds, peak = generate(preset)
        import polars as pl

        entries = pl.scan_parquet(world / "time" / "time_entries.parquet").select(pl.len()).collect().item()
        lines.append(f"| {preset} | {entries:,} | {seconds:.1f} | {peak:,.0f} |")
        print(lines[-1], flush=True)
    assert world is not None
    from sandbox.world import World

    realm = next(iter(World(world).realms))
    lines += ["", f"List-page throughput, one client, keep-alive, on the `{presets[-1]}` world:", ""]
    lines += ["| endpoint | records | seconds | records/s |", "|---|---:|---:|---:|"]
    with running_sandbox(world, timeout_s=600) as base_url:
        for name, run in (
            ("Harvest /v2/time_entries (per_page 2000)", lambda: page_harvest(base_url)),
            (f"QuickBooks TimeActivity, realm {realm}", lambda: page_quickbooks(base_url, realm)),
        ):
            records, seconds = run()
            lines.append(f"| {name} | {records:,} | {seconds:.1f} | {records / seconds:,.0f} |")
            print(lines[-1], flush=True)
    return "\n".join(lines)


def world_for(preset: str, seed: int = 7) -> Path:
    """The benchmark's world for a preset, generated on first use."""
    out = BENCH_DATA / f"{preset}-{seed}"
    if not (out / "world.json").is_file():
        generate(preset, seed)
    return out


def bench_ingest(args: argparse.Namespace) -> str:
    from benchmarks.ingest import bench_ingest as run

    return run(world_for, BENCH_DATA, large_preset=args.presets[-1])


def bench_transform(args: argparse.Namespace) -> str:
    from benchmarks.transform import bench_transform as run

    return run(BENCH_DATA, [preset for preset in args.presets if preset != "tiny"])


def bench_dashboard(args: argparse.Namespace) -> str:
    from benchmarks.dashboard import bench_dashboard as run

    return run(BENCH_DATA, [preset for preset in args.presets if preset != "tiny"])


def bench_sync(args: argparse.Namespace) -> str:
    from benchmarks.sync import bench_sync as run

    return run(BENCH_DATA)


def bench_engines(args: argparse.Namespace) -> str:
    from benchmarks.engines import bench_engines as run

    return run(world_for, BENCH_DATA, preset=args.engine_preset, engines=args.engines)


def bench_daily(args: argparse.Namespace) -> str:
    from benchmarks.daily import bench_daily as run

    return run(world_for, BENCH_DATA, args.presets, args.runs)


def bench_limit(args: argparse.Namespace) -> str:
    from benchmarks.limit import bench_limit as run

    # the presets asked for, and every other the daily bench has measured (their rows stay)
    order = ["tiny", "demo", "large", "xl"]
    measured = [preset for preset in order if (BENCH_DATA / f"daily-{preset}.json").is_file()]
    presets = sorted(set(args.presets) | set(measured), key=lambda p: order.index(p) if p in order else 9)
    return run(BENCH_DATA, presets)


BENCHES: dict[str, Callable[[argparse.Namespace], str]] = {
    "sandbox": lambda args: bench_sandbox(args.presets),
    "ingest": bench_ingest,
    "transform": bench_transform,
    "dashboard": bench_dashboard,
    "sync": bench_sync,
    "engines": bench_engines,
    "daily": bench_daily,
    "limit": bench_limit,  # after daily: it reads the data the daily bench left
}
ORDER = ["sandbox", "ingest", "transform", "dashboard", "sync", "engines", "daily", "limit"]


def write_section(name: str, body: str) -> None:
    """Replace (or append) the marked section `name` of docs/benchmarks.md."""
    stamp = f"_Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}._"
    section = f"<!-- bench:{name} -->\n{stamp}\n\n{body}\n<!-- /bench:{name} -->"
    text = REPORT.read_text() if REPORT.exists() else "# Benchmarks\n\nWritten by `make bench`.\n"
    pattern = re.compile(rf"<!-- bench:{name} -->.*?<!-- /bench:{name} -->", re.S)
    text = pattern.sub(lambda _: section, text) if pattern.search(text) else f"{text.rstrip()}\n\n{section}\n"
    REPORT.write_text(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument("--only", choices=sorted(BENCHES), action="append", help="run only these benches")
    parser.add_argument("--presets", nargs="+", default=["tiny", "demo", "large"], help="world presets")
    parser.add_argument("--engine-preset", default="demo", help="the world the engines bench builds")
    engines = ["duckdb", "postgres", "spark"]
    parser.add_argument("--engines", nargs="+", choices=engines, help="the engines bench: which engines")
    parser.add_argument(
        "--runs",
        type=int,
        default=3,
        help="the daily bench: runs per preset (large, xl: 1; 0: only redraw from the recorded runs)",
    )
    args = parser.parse_args(argv)
    for name in [name for name in ORDER if name in (args.only or ORDER)]:
        print(f"bench {name} …", flush=True)
        write_section(name, BENCHES[name](args))
    print(f"results written to {REPORT.relative_to(ROOT)}")
    return 0
