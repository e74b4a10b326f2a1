"""Fixtures shared across test modules.

`tiny_firm` builds one tiny world (seed 7) end to end (sandbox over HTTP, the real loaders, the
real transform runner) once per test session. Tests that only *read* the published warehouse
(KPI marts, the semantic layer, the dashboards) share it, which keeps `make test` well inside
CI's budget; tests that change a world or a warehouse build their own.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

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
