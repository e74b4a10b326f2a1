"""Fixtures shared across test modules.

`tiny_firm` builds one tiny world (seed 7) end to end (sandbox over HTTP, the real loaders, the
real transform runner) once per test session. Tests that only *read* the published warehouse
(KPI marts, the semantic layer, the dashboards) share it, which keeps `make test` well inside
CI's budget; `handwritten_firm` runs the hand-written world in tests/worlds/handwritten (a few
records per system, small enough to work KPIs out by hand) through the real pipeline
(`python -m billable.pipeline`: ingest, transform, sync, ingest the ERP, transform); tests that
change a world or a warehouse build their own.
"""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from billable.metrics import SemanticLayer
from tests.ingest_helpers import ROOT, copy_world
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
    # the models' unit tests run here, once a session: production builds leave them out
    warehouse = built(raw_db, folder / "wh", "--unit-tests")
    return Firm(world=world, raw_db=raw_db, warehouse=warehouse, build_dir=folder / "wh" / "build")


@pytest.fixture(scope="module")
def layer(tiny_firm: Firm) -> Iterator[SemanticLayer]:
    """MetricFlow's semantic layer over the tiny firm's published warehouse, one session a module."""
    with SemanticLayer(tiny_firm.warehouse) as session:
        yield session


@pytest.fixture(scope="session")
def handwritten_firm(tmp_path_factory: pytest.TempPathFactory) -> Firm:
    """The hand-written world through the real pipeline, as an operator runs it (`make pipeline
    WORLD=...`): ingest, transform, sync, ingest the ERP, transform. Its figures are documented
    in docs/sandbox.md ("A hand-written world") and asserted by tests/test_kpi_*.py."""
    folder = tmp_path_factory.mktemp("handwritten_firm")
    world = copy_world(ROOT / "tests" / "worlds" / "handwritten", folder / "world")
    # no hr_drop/ here: the pipeline delivers the HR drop as of the world's clock itself
    assert not (world / "hr_drop").exists()
    data = folder / "data"
    command = [sys.executable, "-m", "billable.pipeline", "--world", str(world), "--port", "0"]
    command += ["--raw-db", str(data / "raw.duckdb")]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    assert "transform-after-sync done" in result.stdout, result.stdout[-4000:]
    return Firm(
        world=world, raw_db=data / "raw.duckdb", warehouse=data / "warehouse.duckdb", build_dir=data / "build"
    )
