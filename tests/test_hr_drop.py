"""The HR drop folder: the right snapshots as of the clock, idempotent delivery, resent files."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from sandbox.generate import generate_world
from sandbox.hr_drop import FILES, STATE_FILE, deliver
from sandbox.world import World, parse_ts


@pytest.fixture(scope="session")
def tiny_hr(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("hr") / "tiny"
    generate_world("tiny", 11, out)
    return out


@pytest.fixture()
def world(tiny_hr, tmp_path) -> World:
    """A private copy, so tests may move its clock."""
    copy = tmp_path / "world"
    shutil.copytree(tiny_hr, copy)
    return World(copy)


def _due(world: World) -> set[str]:
    deliveries = world.read("hr", "deliveries")
    return {
        snapshot
        for snapshot, delivered_at in deliveries.select("snapshot_date", "delivered_at").iter_rows()
        if parse_ts(delivered_at) <= world.clock
    }


def _files(world: World) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted((world.path / "hr_drop").glob("*.csv"))}


def test_fresh_world_has_the_drop_as_of_the_clock(world):
    expected = {f"{entity}_{snapshot}.csv" for snapshot in _due(world) for entity in FILES}
    assert set(_files(world)) == expected
    assert (world.path / STATE_FILE).is_file()
    assert not (world.path / "hr_drop" / STATE_FILE).exists()


def test_deliveries_plan_has_monthly_daily_late_and_resent(world):
    deliveries = world.read("hr", "deliveries")
    kinds = set(deliveries["kind"].to_list())
    assert {"on_time", "late", "resent"} <= kinds
    snapshots = sorted(set(deliveries["snapshot_date"].to_list()))
    assert "2026-07-31" in snapshots and "2026-08-31" in snapshots
    assert all(f"2026-09-{d:02d}" in snapshots for d in range(17, 31))


def test_redelivering_is_a_no_op(world):
    before = _files(world)
    state = (world.path / STATE_FILE).read_bytes()
    assert deliver(world) == []
    assert _files(world) == before
    assert (world.path / STATE_FILE).read_bytes() == state


def test_snapshot_is_the_state_at_the_end_of_its_day(world):
    snapshot = sorted(_due(world))[0]
    moment = datetime.fromisoformat(snapshot).replace(tzinfo=world.clock.tzinfo) + timedelta(days=1)
    moment -= timedelta(microseconds=1)
    for entity, (columns, key) in FILES.items():
        csv = pl.read_csv(world.path / "hr_drop" / f"{entity}_{snapshot}.csv", infer_schema=False)
        assert csv.columns == columns
        state = world.state("hr", entity, as_of=moment).sort(key)
        assert csv.height == state.height
        assert csv[key[0]].to_list() == [str(v) for v in state[key[0]].to_list()]
    employees = pl.read_csv(world.path / "hr_drop" / f"employees_{snapshot}.csv", infer_schema=False)
    assert (employees["hire_date"] <= "9999").all()


def test_advancing_delivers_new_files_and_resends_identically(world):
    before = _files(world)
    horizon = parse_ts(world.meta["horizon_end"])
    world.set_clock(horizon)
    written = deliver(world)
    assert written, "later deliveries arrive when the clock moves"
    after = _files(world)
    assert set(before) < set(after)
    for name, content in before.items():
        assert after[name] == content, f"{name} changed on re-delivery"
    expected = {f"{entity}_{snapshot}.csv" for snapshot in _due(world) for entity in FILES}
    assert set(after) == expected
    assert deliver(world) == []
