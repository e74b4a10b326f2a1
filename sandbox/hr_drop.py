"""The HR drop folder: payroll snapshots written as CSV files when their delivery time comes.

For every `hr/deliveries` row with `delivered_at <= clock` not delivered yet, four files are
written into `<world>/hr_drop/` (employees, cost rates, time off, holidays), each a full snapshot
as of the end of the snapshot date. What has been delivered is remembered in
`<world>/hr_drop.state.json` (outside the drop folder, which belongs to the "payroll system").

Whatever reads a world delivers first: `generate`, `advance` and `serve` (which the pipeline starts)
call `deliver`, so a hand-written world, which has no `hr_drop/` of its own, gets its drop
as of its clock. Delivering is idempotent: files already delivered are not written again.
"""

from __future__ import annotations

import json
import os
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl

from sandbox.world import World, parse_ts

STATE_FILE = "hr_drop.state.json"
DROP_DIR = "hr_drop"
# entity → (file prefix, columns in order, sort key)
FILES: dict[str, tuple[list[str], list[str]]] = {
    "employees": (
        [
            "employee_id",
            "email",
            "first_name",
            "last_name",
            "grade",
            "practice",
            "region",
            "legal_entity",
            "cost_centre",
            "hire_date",
            "termination_date",
            "weekly_standard_hours",
            "manager_id",
        ],
        ["employee_id"],
    ),
    "cost_rates": (
        ["employee_id", "effective_from", "hourly_cost", "currency"],
        ["employee_id", "effective_from"],
    ),
    "time_off": (["employee_id", "date", "hours", "type"], ["employee_id", "date"]),
    "holidays": (["legal_entity", "date", "name"], ["legal_entity", "date"]),
}


def _state_at(versions: pl.DataFrame, key: list[str], moment: datetime) -> pl.DataFrame:
    """Each record's version current at `moment` (deleted ones dropped)."""
    if versions.height == 0:
        return versions
    visible = versions.filter(pl.col("_valid_from") <= moment).sort(
        [*key, "_valid_from"], maintain_order=True
    )
    return visible.group_by(key, maintain_order=True).last().filter(~pl.col("_deleted"))


def _snapshot_csv(frame: pl.DataFrame, columns: list[str], key: list[str]) -> bytes:
    present = [c for c in columns if c in frame.columns]
    if frame.height == 0:
        return (",".join(columns) + "\n").encode()
    table = frame.sort(key).select(present)
    return table.write_csv(include_header=True, line_terminator="\n", float_precision=None).encode("utf-8")


def _load_state(world: World) -> dict:
    path = world.path / STATE_FILE
    if not path.is_file():
        return {"delivered": []}
    try:
        return json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise ValueError(f"{path} is not valid JSON ({err}); delete it to re-deliver the HR drop") from None


def _save_state(world: World, state: dict) -> None:
    path = world.path / STATE_FILE
    temporary = path.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(state, indent=1, sort_keys=True) + "\n")
    os.replace(temporary, path)


def deliver(world: World) -> list[Path]:
    """Write the snapshot files whose delivery time has come; return the paths written (none if
    everything due was already delivered). The drop folder exists afterwards, empty when nothing
    is due yet (a payroll folder nothing was exported to yet, not a missing one)."""
    folder = world.path / DROP_DIR
    folder.mkdir(exist_ok=True)
    deliveries = world.read("hr", "deliveries")
    if deliveries.height == 0:
        return []
    state = _load_state(world)
    done = set(state["delivered"])
    clock = world.clock
    due = []
    for snapshot, delivered_at in deliveries.select("snapshot_date", "delivered_at").unique().iter_rows():
        token = f"{snapshot}|{delivered_at}"
        if token not in done and parse_ts(str(delivered_at)) <= clock:
            due.append((parse_ts(str(delivered_at)), str(snapshot), token))
    if not due:
        return []
    due.sort()
    versions = {entity: world.read("hr", entity) for entity in FILES}
    written: list[Path] = []
    for _when, snapshot, token in due:
        day = datetime.fromisoformat(snapshot).replace(tzinfo=clock.tzinfo)
        end_of_day = day + timedelta(days=1) - timedelta(microseconds=1)
        for entity, (columns, key) in FILES.items():
            frame = _state_at(versions[entity], key, end_of_day)
            target = folder / f"{entity}_{snapshot}.csv"
            temporary = target.with_suffix(".csv.tmp")
            temporary.write_bytes(_snapshot_csv(frame, columns, key))
            os.replace(temporary, target)
            written.append(target)
        done.add(token)
        state["delivered"] = sorted(done)
        _save_state(world, state)
    return written
