"""The sandbox server's peak memory while a load reads it: `python -m benchmarks.sandbox_memory`.

python -m benchmarks.sandbox_memory --world data/worlds/large-7 --port 9101 --load ingest
python -m benchmarks.sandbox_memory --world data/worlds/xl-7 --port 9102 --load bare

Starts `python -m sandbox serve` on the world, then runs the load against it: `ingest` is a full
initial load of Harvest and QuickBooks (`python -m ingestion --sources time,erp` into a fresh raw
database, with the settings the sandbox answers at `/_sandbox/settings`); `bare` pages every
Harvest time entry with the bare client (no dlt). Prints the load's wall time, the server's peak
RSS (the kernel's high-water mark, VmHWM, read before the server is stopped) and the load average
before and after. Environment variables (SANDBOX_MEMORY_ROWS, SANDBOX_CACHE_DIR) reach the server.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from benchmarks import bare_clients
from billable.sandbox_process import sandbox_settings

ROOT = Path(__file__).resolve().parent.parent


def high_water_mib(pid: int) -> float:
    """The process's peak resident set so far (VmHWM), in MiB."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmHWM for process {pid}")


def wait_up(base_url: str, server: subprocess.Popen, timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the sandbox exited with {server.returncode} before answering")
        try:
            if requests.get(f"{base_url}/_sandbox/health", timeout=2).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.3)
    raise RuntimeError(f"the sandbox did not answer at {base_url} within {timeout_s} s")


def run_load(kind: str, base_url: str, scratch: Path) -> str:
    if kind == "bare":
        records = sum(1 for _ in bare_clients.harvest(base_url, "time_entries"))
        return f"{records} time entries"
    env = {**os.environ, **sandbox_settings(base_url), "BILLABLE_PROGRESS": ""}
    command = [
        sys.executable,
        "-m",
        "ingestion",
        "--raw-db",
        str(scratch / "raw.duckdb"),
        "--sources",
        "time,erp",
    ]
    subprocess.run(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, check=True)
    return "time,erp loaded"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--world", type=Path, required=True)
    parser.add_argument("--port", type=int, default=9101)
    parser.add_argument("--load", choices=("ingest", "bare"), default="ingest")
    args = parser.parse_args(argv)
    base_url = f"http://127.0.0.1:{args.port}"
    load_before = os.getloadavg()[0]
    server = subprocess.Popen(
        [sys.executable, "-m", "sandbox", "serve", "--world", str(args.world), "--port", str(args.port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
    )
    try:
        wait_up(base_url, server)
        with tempfile.TemporaryDirectory(prefix="sandbox-memory-") as scratch:
            started = time.monotonic()
            what = run_load(args.load, base_url, Path(scratch))
            wall = time.monotonic() - started
        peak = high_water_mib(server.pid)
    finally:
        server.terminate()
        server.wait(timeout=60)
    print(
        f"{args.world} load={args.load} ({what}): {wall:.0f} s, server peak RSS {peak:,.0f} MiB, "
        f"load average {load_before:.1f} -> {os.getloadavg()[0]:.1f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
