"""Transform benchmark: `python -m billable.transform` on the raw databases the ingestion
benchmark loaded (`demo` and `large`): a first build (every model, every test, publish), a
rebuild with nothing changed (the daily cost when little moved), and the published file's size.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import duckdb

from benchmarks.ingest import loader_run
from billable.sandbox_process import running_sandbox

ROOT = Path(__file__).resolve().parent.parent


def timed_transform(raw_db: Path, out: Path, *extra: str) -> tuple[float, float]:
    """(wall seconds, peak RSS MiB of the runner and dbt) for one transform."""
    command = [sys.executable, "-m", "billable.transform", "--raw-db", str(raw_db)]
    command += ["--warehouse", str(out / "warehouse.duckdb"), "--build-dir", str(out / "build"), *extra]
    started = time.monotonic()
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL)
    # wait4's maxrss covers the child and the descendants it waited for (dbt, its DuckDB)
    _, status, usage = os.wait4(process.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"transform failed on {raw_db}; run it by hand to see why")
    return time.monotonic() - started, usage.ru_maxrss / 1024


def counts(warehouse: Path) -> tuple[int, int]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        entries = connection.execute("select count(*) from marts.fct_time_entries").fetchall()[0][0]
        exceptions = connection.execute("select count(*) from marts.fct_exceptions").fetchall()[0][0]
    return entries, exceptions


def bench_transform(bench_data: Path, presets: list[str]) -> str:
    lines = [
        "| world | time entries | open exceptions | first build | rebuild, nothing changed "
        "| peak RSS | warehouse file |",
        "|---|---|---|---|---|---|---|",
    ]
    for preset in presets:
        loaded = bench_data / f"ingest-{preset}"
        if not (loaded / "raw.duckdb").is_file():
            missing = "no raw database: run `make bench BENCH_ARGS='--only ingest'` first"
            lines.append(f"| {preset} | ({missing}) |")
            continue
        # bring the raw database up to today's loader (one incremental load: cheap, see above)
        with running_sandbox(loaded / "world", port=0) as base_url:
            loader_run(base_url, loaded / "world", loaded / "raw.duckdb")
        out = bench_data / f"transform-{preset}"
        shutil.rmtree(out, ignore_errors=True)
        first, first_peak = timed_transform(loaded / "raw.duckdb", out)
        again, again_peak = timed_transform(loaded / "raw.duckdb", out)
        entries, exceptions = counts(out / "warehouse.duckdb")
        size = (out / "warehouse.duckdb").stat().st_size / 2**20
        lines.append(
            f"| {preset} | {entries:,} | {exceptions:,} | {first:.1f} s | {again:.1f} s | "
            f"{max(first_peak, again_peak) / 1024:.2f} GiB | {size:,.0f} MiB |"
        )
        print(lines[-1], flush=True)
    lines.append("")
    lines.append(
        "Both builds run every model and every data and unit test and publish by copy and rename; "
        "the rebuild re-merges only changed time entries into `fct_time_entries` (the other "
        "tables are rebuilt, which DuckDB does at memory speed)."
    )
    return "\n".join(lines)
