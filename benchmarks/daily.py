"""Daily-run bench: `make pipeline` (the initial run: ingest, build, sync, ERP re-ingest, build)
and the daily run (`python -m billable.pipeline --world W --advance-days 1`, what `make demo-day`
runs), per preset: wall time, the largest process's peak RSS, the two dbt builds' share, load.

Each run starts from a fresh copy of the preset's generated world (the daily run moves the
world's clock, so a world is used once) and an empty data folder of its own.
"""

from __future__ import annotations

import json
import shutil
import statistics
import sys
from collections.abc import Callable
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from benchmarks.procmon import RunFigures, watched_run

ROOT = Path(__file__).resolve().parent.parent
BUILDS = ("transform", "transform-after-sync")
PORT = 8961  # the sandbox port of the runs (make bench)


def history_size(warehouse: Path) -> int:
    """Time entries in the published warehouse (the history a run carries)."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        row = connection.execute("select count(*) from marts.fct_time_entries").fetchone()
    return int(row[0]) if row else 0


def pipeline_command(world: Path, raw_db: Path, port: int, *extra: str) -> list[str]:
    command = [sys.executable, "-m", "billable.pipeline", "--world", str(world), "--port", str(port)]
    return [*command, "--raw-db", str(raw_db), *extra]


def one_run(source_world: Path, out: Path, port: int) -> tuple[RunFigures, RunFigures]:
    """(initial pipeline, daily run) on a fresh copy of the world in `out`."""
    shutil.rmtree(out, ignore_errors=True)
    world = out / "world"
    shutil.copytree(source_world, world)
    raw_db = out / "data" / "raw.duckdb"
    initial = watched_run(pipeline_command(world, raw_db, port), ROOT, out / "initial.log")
    daily = watched_run(pipeline_command(world, raw_db, port, "--advance-days", "1"), ROOT, out / "daily.log")
    return initial, daily


def measure(world_for: Callable[[str], Path], bench_data: Path, preset: str, runs: int, port: int) -> dict:
    """Measure a preset `runs` times; the record written to data/bench/daily-<preset>.json."""
    source = world_for(preset)
    record: dict = {"preset": preset, "time_entries": 0, "initial": [], "daily": []}
    for number in range(runs):
        out = bench_data / f"daily-{preset}"
        initial, daily = one_run(source, out, port)
        record["time_entries"] = history_size(out / "data" / "warehouse.duckdb")
        record["initial"].append(asdict(initial))
        record["daily"].append(asdict(daily))
        print(
            f"{preset} run {number + 1}/{runs}: initial {initial.seconds:.1f} s "
            f"({initial.peak_mib:,.0f} MiB), daily {daily.seconds:.1f} s ({daily.peak_mib:,.0f} MiB)",
            flush=True,
        )
    record["measured_at"] = f"{datetime.now(UTC):%Y-%m-%d %H:%M} UTC"
    (bench_data / f"daily-{preset}.json").write_text(json.dumps(record, indent=1))
    return record


def spread(values: list[float], unit: str, digits: int = 1) -> str:
    """'median (min–max) unit', or one value when there was one run."""
    middle = statistics.median(values)
    if len(values) == 1:
        return f"{middle:,.{digits}f} {unit}"
    return f"{middle:,.{digits}f} {unit} ({min(values):,.{digits}f}–{max(values):,.{digits}f})"


def summary(runs: list[dict]) -> dict[str, str]:
    """Table cells for one kind of run (initial or daily) over its repetitions."""
    builds = [sum(run["steps"].get(name, 0.0) for name in BUILDS) for run in runs]
    share = [build / run["seconds"] for build, run in zip(builds, runs, strict=True)]
    loads = [f"{run['load_before']:.1f}→{run['load_after']:.1f}" for run in runs]
    return {
        "time": spread([run["seconds"] for run in runs], "s"),
        "peak": spread([run["peak_mib"] / 1024 for run in runs], "GiB", 2),
        "builds": f"{spread(builds, 's')} ({statistics.median(share):.0%})",
        "load": ", ".join(loads),
        "process": max(runs, key=lambda run: run["peak_mib"])["peak_process"],
    }


def median_of(runs: list[dict], pick: Callable[[dict], float]) -> float:
    return statistics.median(pick(run) for run in runs)


def issue_table(records: list[dict]) -> list[str]:
    """The issue's figures (median of the runs), one column per preset, with the issue's targets."""
    by_preset = {record["preset"]: record for record in records}
    presets = list(by_preset)

    def row(figure: str, pick: Callable[[dict], str], target: str) -> str:
        cells = [pick(by_preset[preset]) for preset in presets]
        return f"| {figure} | " + " | ".join(cells) + f" | {target} |"

    def seconds(kind: str, step: str | None = None) -> Callable[[dict], str]:
        def pick(record: dict) -> str:
            if step is None:
                return f"{median_of(record[kind], lambda run: run['seconds']):,.0f} s"
            return f"{median_of(record[kind], lambda run: run['steps'].get(step, 0.0)):,.0f} s"

        return pick

    def builds(record: dict) -> str:
        first = median_of(record["initial"], lambda run: run["steps"].get("transform", 0.0))
        second = median_of(record["initial"], lambda run: run["steps"].get("transform-after-sync", 0.0))
        return f"{first:,.0f} s + {second:,.0f} s"

    def peak(record: dict) -> str:
        runs = record["initial"] + record["daily"]
        return f"{max(run['peak_mib'] for run in runs) / 1024:.2f} GiB"

    def entries(record: dict) -> str:
        return f"{record['time_entries']:,}"

    def daily_builds(record: dict) -> str:
        return (
            f"{median_of(record['daily'], lambda run: sum(run['steps'].get(n, 0.0) for n in BUILDS)):,.0f} s"
        )

    def against_demo(record: dict) -> str:
        if "demo" not in by_preset:
            return "–"
        mine = median_of(record["daily"], lambda run: run["seconds"])
        demo = median_of(by_preset["demo"]["daily"], lambda run: run["seconds"])
        return f"{mine / demo:.2f}×"

    def load(record: dict) -> str:
        runs = record["initial"] + record["daily"]
        return f"{min(run['load_before'] for run in runs):.1f}–{max(run['load_after'] for run in runs):.1f}"

    return [
        "| figure | " + " | ".join(f"`{preset}`" for preset in presets) + " | target |",
        "|---|" + "---:|" * len(presets) + "---:|",
        row("time entries (fct_time_entries, after the daily run)", entries, "–"),
        row(
            "`make pipeline` (ingest, build, sync, ERP re-ingest, build)", seconds("initial"), "large ≤ 360 s"
        ),
        row("of which the two dbt builds with tests", builds, "–"),
        row("of which the first sync", seconds("initial", "sync"), "–"),
        row("peak memory of one process (any run)", peak, "≤ 4 GiB"),
        row("daily run (clock +1 day, `make demo-day`)", seconds("daily"), "large ≤ 60 s, demo ≤ 30 s"),
        row("of which its two dbt builds", daily_builds, "–"),
        row("daily run / daily run on `demo`", against_demo, "large ≤ 1.5×"),
        row("load average during the runs (2 cores)", load, "–"),
        row("measured (the runs ended)", lambda record: record.get("measured_at", "–"), "–"),
    ]


def table(records: list[dict]) -> str:
    lines = [*issue_table(records), "", "Every run:", ""]
    lines += [
        "| preset | run | N | wall time, median (min–max) | peak RSS, one process "
        "| the two dbt builds (share) | load average before→after each run |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for record in records:
        for kind, label in (("initial", "`make pipeline` (initial)"), ("daily", "daily run (+1 day)")):
            cells = summary(record[kind])
            lines.append(
                f"| {record['preset']} | {label} | {len(record[kind])} "
                f"| {cells['time']} | {cells['peak']} | {cells['builds']} | {cells['load']} |"
            )
    biggest = {
        record["preset"]: summary(record["initial"] + record["daily"])["process"] for record in records
    }
    lines += [
        "",
        "Largest process per preset: " + "; ".join(f"{k}: `{v}`" for k, v in biggest.items()) + ".",
    ]
    return "\n".join(lines)


def load_records(bench_data: Path, presets: list[str]) -> list[dict]:
    """The recorded measurements of these presets (a preset never measured is skipped)."""
    found = [bench_data / f"daily-{preset}.json" for preset in presets]
    return [json.loads(path.read_text()) for path in found if path.is_file()]


def bench_daily(world_for: Callable[[str], Path], bench_data: Path, presets: list[str], runs: int) -> str:
    """Measure every preset (N runs; one for large and xl; xl only when its world exists), draw the
    growth chart, and return the section's text."""
    from benchmarks.chart import draw_growth

    for preset in presets if runs > 0 else []:  # --runs 0: redraw from the recorded figures only
        if preset == "xl" and not (bench_data / "xl-7" / "world.json").is_file():
            print("daily: no xl world at data/bench/xl-7 (generate it first); xl not measured", flush=True)
            continue
        measure(world_for, bench_data, preset, 1 if preset in ("large", "xl") else runs, PORT)
    order = ["tiny", "demo", "large", "xl"]
    records = sorted(load_records(bench_data, order), key=lambda record: order.index(record["preset"]))
    chart = draw_growth(records, ROOT / "docs" / "bench-growth.png")
    return "\n".join(
        [
            "Each run starts from a fresh copy of the preset's world (seed 7) and an empty data folder: "
            "first `make pipeline` (ingest, dbt build, sync, ERP re-ingest, dbt build), then the daily "
            "run on it (`python -m billable.pipeline --world W --advance-days 1`, what `make demo-day` "
            "runs). Peak RSS is the largest single process of the run's tree, sampled with psutil every "
            "0.2 s; the dbt builds are the pipeline's own `transform` and `transform-after-sync` step "
            "times. Presets measured in earlier runs of this bench are kept "
            "(data/bench/daily-<preset>.json), "
            "each with its load average.",
            "",
            table(records),
            "",
            f"![growth: time and peak memory against history size]({chart.name})",
        ]
    )
