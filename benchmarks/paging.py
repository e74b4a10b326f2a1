"""Page an endpoint to the end and print records/s: `python -m benchmarks.paging`.

python -m benchmarks.paging --make-world /tmp/bench-world --entries 1000000
python -m benchmarks.paging --world /tmp/bench-world            # starts a server, pages both
python -m benchmarks.paging --base-url http://127.0.0.1:8800 --realm 9130350000000001
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import socket
import subprocess
import sys
import time
from datetime import UTC, date, datetime
from pathlib import Path

import numpy as np
import polars as pl
import requests

from sandbox.world import write_entity, write_meta

HEADERS = {"Authorization": "Bearer bench", "Harvest-Account-Id": "1"}
REALM = "9130350000000001"


def make_world(path: Path, entries: int, seed: int = 7) -> Path:
    """A synthetic world with `entries` Harvest time entries and as many QuickBooks TimeActivities."""
    rng = np.random.default_rng(seed)
    start = datetime(2023, 1, 1, tzinfo=UTC)
    clock = datetime(2025, 1, 1, tzinfo=UTC)
    path.mkdir(parents=True, exist_ok=True)
    write_meta(
        path,
        {
            "format_version": 1,
            "seed": seed,
            "preset": "bench",
            "start_date": "2023-01-01",
            "cutover_at": "2025-01-01T00:00:00Z",
            "clock": "2025-01-01T00:00:00Z",
            "horizon_end": "2025-01-01T00:00:00Z",
            "reporting_currency": "USD",
            "legal_entities": [
                {"code": "US", "name": "Bench Inc.", "country": "US", "currency": "USD", "realm_id": REALM}
            ],
        },
    )
    span_s = int((clock - start).total_seconds())
    offsets = np.sort(rng.integers(0, span_s, entries))
    ids = np.arange(1, entries + 1, dtype=np.int64)
    hours = np.round(rng.uniform(0.25, 9, entries) * 4) / 4
    base = pl.DataFrame(
        {
            "offset_us": offsets * 1_000_000,
            "day": (offsets // 86400).astype(np.int32),
            "id": ids,
            "hours": hours,
            "user_id": rng.integers(1, 300, entries),
            "project_id": rng.integers(1, 500, entries),
            "notes": rng.choice(["Workshop", "Analysis", "Status meeting", "Modelling"], entries),
            "is_locked": rng.random(entries) < 0.5,
            "is_billed": rng.random(entries) < 0.3,
            "billable": rng.random(entries) < 0.8,
            "billable_rate": np.round(rng.uniform(100, 300, entries)),
            "cost_rate": np.round(rng.uniform(40, 120, entries)),
            "approval_status": rng.choice(["unsubmitted", "submitted", "approved"], entries),
            "status": rng.choice(["Billable", "HasBeenBilled", "NotBillable"], entries),
        }
    ).with_columns(
        (pl.lit(start) + pl.duration(microseconds=pl.col("offset_us"))).alias("_valid_from"),
        (pl.lit(date(2023, 1, 1)) + pl.duration(days=pl.col("day"))).cast(pl.Date).alias("spent_date"),
    )
    frame = base.select(
        "_valid_from",
        "id",
        "spent_date",
        "hours",
        pl.col("hours").alias("rounded_hours"),
        "notes",
        "is_locked",
        "is_billed",
        "billable",
        "billable_rate",
        "cost_rate",
        "approval_status",
        pl.struct(pl.col("user_id").alias("id"), pl.format("User {}", "user_id").alias("name")).alias("user"),
        pl.struct(
            pl.col("project_id").alias("id"),
            pl.format("Project {}", "project_id").alias("name"),
            pl.format("PRJ-{}", "project_id").alias("code"),
        ).alias("project"),
        pl.struct(pl.lit(1).alias("id"), pl.lit("Consulting").alias("name")).alias("task"),
    )
    write_entity(path, "time", "time_entries", frame)
    activities = base.select(
        "_valid_from",
        pl.lit(REALM).alias("_realm"),
        pl.col("id").cast(pl.String).alias("Id"),
        pl.col("spent_date").alias("TxnDate"),
        pl.lit("Employee").alias("NameOf"),
        pl.struct(pl.col("user_id").cast(pl.String).alias("value")).alias("EmployeeRef"),
        pl.struct(pl.col("project_id").cast(pl.String).alias("value")).alias("CustomerRef"),
        pl.col("status").alias("BillableStatus"),
        pl.col("billable_rate").alias("HourlyRate"),
        pl.col("hours").floor().cast(pl.Int64).alias("Hours"),
        ((pl.col("hours") % 1) * 60).cast(pl.Int64).alias("Minutes"),
        pl.format("harvest:{} {}", "id", "notes").alias("Description"),
    )
    write_entity(path, "erp", "TimeActivity", activities)
    return path


def page_harvest(base_url: str, per_page: int = 2000) -> int:
    session = requests.Session()
    url: str | None = f"{base_url}/v2/time_entries?per_page={per_page}"
    count = 0
    while url:
        response = session.get(url, headers=HEADERS)
        response.raise_for_status()
        body = response.json()
        count += len(body["time_entries"])
        url = body["links"]["next"]
    return count


def page_quickbooks(base_url: str, realm: str, page_size: int = 1000) -> int:
    session = requests.Session()
    position, count = 1, 0
    while True:
        query = f"SELECT * FROM TimeActivity STARTPOSITION {position} MAXRESULTS {page_size}"
        response = session.get(
            f"{base_url}/v3/company/{realm}/query", params={"query": query}, headers=HEADERS
        )
        response.raise_for_status()
        page = response.json()["QueryResponse"].get("TimeActivity", [])
        count += len(page)
        if len(page) < page_size:
            return count
        position += page_size


def measure(name: str, run) -> dict:
    started = time.perf_counter()
    records = run()
    seconds = time.perf_counter() - started
    result = {
        "endpoint": name,
        "records": records,
        "seconds": round(seconds, 2),
        "records_per_s": round(records / seconds) if seconds else None,
    }
    print(json.dumps(result), flush=True)
    return result


def _serve(world: Path) -> tuple[subprocess.Popen, str]:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    process = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--world", str(world), "--port", str(port)],
        stdout=subprocess.DEVNULL,
        env=os.environ.copy(),
    )
    base_url = f"http://127.0.0.1:{port}"
    for _ in range(600):
        try:
            if requests.get(f"{base_url}/_sandbox/health", timeout=1).ok:
                return process, base_url
        except requests.RequestException:
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("the sandbox did not come up within 60 s")


def main(argv: list[str]) -> int:
    """Benchmark paging; prints one JSON line per endpoint (records, seconds, records_per_s)."""
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks.paging",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--make-world", type=Path, help="write a synthetic world here first")
    parser.add_argument("--entries", type=int, default=1_000_000)
    parser.add_argument("--world", type=Path, help="serve this world for the run")
    parser.add_argument("--base-url", help="page an already running sandbox instead")
    parser.add_argument("--realm", default=REALM)
    parser.add_argument("--endpoint", choices=("harvest", "quickbooks", "both"), default="both")
    args = parser.parse_args(argv)
    world = args.world
    if args.make_world:
        started = time.perf_counter()
        world = make_world(args.make_world, args.entries)
        print(f"wrote {args.entries} entries to {world} in {time.perf_counter() - started:.1f} s", flush=True)
    process = None
    base_url = args.base_url
    if base_url is None:
        if world is None:
            parser.error("give --world, --make-world or --base-url")
        process, base_url = _serve(world)
    try:
        if args.endpoint in ("harvest", "both"):
            measure(
                "harvest time_entries per_page=2000 (first pass, builds the cache)",
                lambda: page_harvest(base_url),
            )
            measure("harvest time_entries per_page=2000", lambda: page_harvest(base_url))
        if args.endpoint in ("quickbooks", "both"):
            measure(
                "quickbooks TimeActivity MAXRESULTS 1000 (first pass)",
                lambda: page_quickbooks(base_url, args.realm),
            )
            measure("quickbooks TimeActivity MAXRESULTS 1000", lambda: page_quickbooks(base_url, args.realm))
    finally:
        if process is not None:
            process.send_signal(signal.SIGTERM)
            process.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
