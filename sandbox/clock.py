"""`python -m sandbox advance`: move a world's clock forward, and let the world live meanwhile.

After the clock moves, the HR payroll export delivers the files that fell due and the live ERP
runs the billing runs that fell in the interval (see docs/sandbox.md, "The ERP, before and after
cutover"). Running servers pick the new clock up from world.json without a restart.
"""

from __future__ import annotations

import argparse
import sys
from datetime import datetime, timedelta

import polars as pl

from sandbox.world import ENTITIES, TS, World, iso, parse_ts


def changes_between(world: World, after: datetime, until: datetime) -> dict[str, int]:
    """How many stored versions become visible in (after, until], per `system/entity`."""
    counts: dict[str, int] = {}
    for system, entity in ENTITIES:
        path = world.entity_file(system, entity)
        if path is None:
            continue
        frame = pl.scan_parquet(path) if path.suffix == ".parquet" else pl.read_ndjson(path).lazy()
        stamp = pl.col("_valid_from")
        if frame.collect_schema()["_valid_from"] != TS:
            stamp = stamp.cast(pl.String).str.to_datetime(time_zone="UTC", time_unit="us")
        changed = frame.filter((stamp > after) & (stamp <= until)).select(pl.len()).collect().item()
        if changed:
            counts[f"{system}/{entity}"] = int(changed)
    return counts


def advance(world: World, delta: timedelta) -> dict:
    """Move the clock by `delta` (> 0) and run what falls due; returns a summary."""
    if delta <= timedelta(0):
        raise ValueError(f"the clock only moves forward; got {delta}")
    before = world.clock
    after = before + delta
    horizon = world.meta.get("horizon_end")
    world.set_clock(after)

    # Imported here: both modules are heavier than the clock itself and only needed now.
    from sandbox import erp_billing, hr_drop

    delivered = hr_drop.deliver(world)
    billing = erp_billing.run_billing(world, before, after)
    summary = {
        "clock_before": iso(before),
        "clock": iso(after),
        "changed_versions": changes_between(world, before, after),
        "hr_files_delivered": [path.name for path in delivered],
        "billing": billing,
    }
    if horizon and after > parse_ts(horizon):
        summary["warning"] = (
            f"the clock passed the world's horizon_end {horizon}: the generator wrote no versions "
            "beyond it, so only the live ERP changes from here on"
        )
    return summary


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(prog="python -m sandbox advance", description=__doc__)
    parser.add_argument("--world", required=True, help="world folder")
    parser.add_argument("--days", type=float, default=0, help="days to move forward")
    parser.add_argument("--hours", type=float, default=0, help="hours to move forward")
    args = parser.parse_args(argv)
    delta = timedelta(days=args.days, hours=args.hours)
    if delta <= timedelta(0):
        parser.error("give --days and/or --hours greater than zero")
    world = World(args.world)
    summary = advance(world, delta)
    print(f"clock {summary['clock_before']} → {summary['clock']}")
    for name, count in sorted(summary["changed_versions"].items()):
        print(f"  {name:<24} {count:>9,} new or changed")
    if summary["hr_files_delivered"]:
        print(f"  hr_drop: {len(summary['hr_files_delivered'])} file(s) delivered")
    print(f"  billing: {summary['billing']}")
    if "warning" in summary:
        print(f"warning: {summary['warning']}", file=sys.stderr)
    return 0
