"""Fixtures shared across test modules.

`tiny_firm` builds one tiny world (seed 7) end to end (sandbox over HTTP, the real loaders, the
real transform runner) once per test session. Tests that only *read* the published warehouse
(KPI marts, the semantic layer, the dashboards) share it, which keeps `make test` well inside
CI's budget; `handwritten_firm` does the same for the hand-written world in tests/worlds/handwritten
(a few records per system, small enough to work KPIs out by hand); tests that change a world or
a warehouse build their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from billable.sandbox_process import running_sandbox
from sandbox import hr_drop
from sandbox.world import World
from tests.ingest_helpers import ROOT, copy_world, ingest
from tests.warehouse_helpers import built, load_tiny_world


@dataclass(frozen=True)
class Firm:
    world: Path
    raw_db: Path
    warehouse: Path  # the published, read-only warehouse
    build_dir: Path  # dbt's target/ lives in build_dir / "target"


@pytest.fixture(scope="session")
def tiny_firm(tmp_path_factory: pytest.TempPathFactory) -> Firm:
    folder = tmp_path_factory.mktemp("tiny_firm")
    world, raw_db = load_tiny_world(folder, seed=7)
    warehouse = built(raw_db, folder / "wh")
    return Firm(world=world, raw_db=raw_db, warehouse=warehouse, build_dir=folder / "wh" / "build")


@pytest.fixture(scope="session")
def handwritten_firm(tmp_path_factory: pytest.TempPathFactory) -> Firm:
    folder = tmp_path_factory.mktemp("handwritten_firm")
    world = copy_world(ROOT / "tests" / "worlds" / "handwritten", folder / "world")
    hr_drop.deliver(World(world))  # the generator does this for generated worlds
    raw_db = folder / "raw.duckdb"
    with running_sandbox(world) as base_url:
        result = ingest(base_url, world, raw_db, "")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    warehouse = built(raw_db, folder / "wh")
    return Firm(world=world, raw_db=raw_db, warehouse=warehouse, build_dir=folder / "wh" / "build")
