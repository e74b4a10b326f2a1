"""`make bench-quick`: the `demo` figures in a few minutes, checked against benchmarks/baseline.json.

Figures: the daily run (clock +1 day) wall time and its largest process's peak RSS, the two dbt
builds of that run, and the hand-written limit SQL over its raw data (with the number of KPI rows
that disagree with the marts). It fails (exit 1) naming each figure more than 2x worse than the
baseline (and worse by more than a noise floor: 1 s, 50 MiB); `--record-baseline` (make
bench-quick BASELINE=1) writes the baseline instead, with the machine, the date and the load.

The daily run needs a demo warehouse after its initial pipeline: prepared once in
data/bench/quick-demo.initial/ (a `make pipeline` on a fresh demo world, slow: minutes) and
copied for each quick run to data/bench/quick-demo/ (the same paths, so the raw database's world
marker and dbt's build folder stay valid). A dashboard page load is not part of it: a browser
and a Streamlit server per run would cost more than the rest (see the dashboard bench).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from datetime import UTC, datetime
from pathlib import Path

from benchmarks import limit
from benchmarks.daily import BUILDS, pipeline_command
from benchmarks.harness import BENCH_DATA, machine, world_for
from benchmarks.procmon import watched_run

ROOT = Path(__file__).resolve().parent.parent
BASELINE = Path(__file__).resolve().parent / "baseline.json"
PORT = 8962
WORSE = 2.0
# below these a figure's change is a shared machine's noise, not a regression: a 1.8 s limit
# query measured 1.2-2.5 s within minutes at load 12; a figure fails only beyond both bounds
NOISE = {"s": 1.0, "MiB": 50.0, "rows": 0.0}
# figure: (what it is, unit); all are "lower is better"
FIGURES = {
    "daily_s": ("daily run on demo (clock +1 day), wall time", "s"),
    "daily_peak_mib": ("daily run on demo, largest process's peak RSS", "MiB"),
    "daily_dbt_builds_s": ("daily run on demo, its two dbt builds", "s"),
    "limit_s": ("hand-written KPI SQL over demo's raw tables", "s"),
    "limit_rows_differing": ("KPI rows where the limit and the marts disagree", "rows"),
}


def prepared(preset: str = "demo") -> tuple[Path, Path]:
    """(the scratch folder for this run, its world): a fresh copy of the prepared initial state."""
    work = BENCH_DATA / f"quick-{preset}"
    initial = BENCH_DATA / f"quick-{preset}.initial"
    if not (initial / "data" / "warehouse.duckdb").is_file():
        print(
            f"bench-quick: preparing {initial} once (make pipeline on a fresh {preset} world) …", flush=True
        )
        shutil.rmtree(work, ignore_errors=True)
        shutil.copytree(world_for(preset), work / "world")
        command = pipeline_command(work / "world", work / "data" / "raw.duckdb", PORT)
        watched_run(command, ROOT, BENCH_DATA / f"quick-{preset}-initial.log")
        shutil.rmtree(initial, ignore_errors=True)
        shutil.copytree(work, initial)
    shutil.rmtree(work, ignore_errors=True)
    shutil.copytree(initial, work)
    return work, work / "world"


def measure(preset: str = "demo") -> dict[str, float]:
    work, world = prepared(preset)
    raw_db = work / "data" / "raw.duckdb"
    command = pipeline_command(world, raw_db, PORT, "--advance-days", "1")
    daily = watched_run(command, ROOT, BENCH_DATA / f"quick-{preset}-daily.log")
    seconds, agreements = limit.measure(raw_db, work / "data" / "warehouse.duckdb")
    return {
        "daily_s": round(daily.seconds, 1),
        "daily_peak_mib": round(daily.peak_mib),
        "daily_dbt_builds_s": round(sum(daily.steps.get(name, 0.0) for name in BUILDS), 1),
        "limit_s": round(seconds, 2),
        "limit_rows_differing": sum(agreement.differing for agreement in agreements),
        "load_before": round(daily.load_before, 2),
        "load_after": round(daily.load_after, 2),
    }


def worse(figures: dict[str, float], baseline: dict[str, float]) -> list[str]:
    """The figures more than WORSE times their baseline, each as a sentence."""
    failures = []
    for name, (what, unit) in FIGURES.items():
        now, then = figures[name], baseline.get(name)
        if then is None:
            continue
        # a count of disagreeing rows may be 0: any new disagreement is then worse
        bound = max(then * WORSE, then + NOISE[unit])
        if now > bound:
            failures.append(f"{name} ({what}): {now:,} {unit} against a baseline of {then:,} {unit}")
    return failures


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.quick", description=__doc__)
    parser.add_argument("--record-baseline", action="store_true", help=f"write {BASELINE.name} from this run")
    args = parser.parse_args(argv)
    figures = measure()
    for name, (what, unit) in FIGURES.items():
        print(f"bench-quick: {what}: {figures[name]:,} {unit}")
    print(
        f"bench-quick: load average {figures['load_before']} → {figures['load_after']} "
        f"on {os.cpu_count()} cores"
    )
    if args.record_baseline:
        record = {
            "machine": machine(),
            "measured_at": f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "figures": figures,
        }
        BASELINE.write_text(json.dumps(record, indent=1) + "\n")
        print(f"bench-quick: baseline written to {BASELINE.relative_to(ROOT)}")
        return 0
    if not BASELINE.is_file():
        print(f"bench-quick: no baseline at {BASELINE}; run `make bench-quick BASELINE=1`", file=sys.stderr)
        return 2
    baseline = json.loads(BASELINE.read_text())
    failures = worse(figures, baseline["figures"])
    for failure in failures:
        print(f"bench-quick: more than {WORSE:.0f}x worse: {failure}", file=sys.stderr)
    if failures:
        return 1
    print(f"bench-quick: every figure within {WORSE:.0f}x of the baseline ({baseline['measured_at']})")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
