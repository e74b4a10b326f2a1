"""The generated tiny world, served over HTTP: every record of every entity exactly once, in each
dialect, and the clock moving it forward. Generator, world store, servers and clock together."""

from __future__ import annotations

import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import bare_clients as pagers
from billable.sandbox_process import running_sandbox
from sandbox.world import World, iso

ROOT = Path(__file__).resolve().parent.parent


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True, check=False, timeout=1200
    )


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("e2e") / "tiny"
    result = run_cli("sandbox", "generate", "--preset", "tiny", "--seed", "11", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


@pytest.fixture(scope="module")
def served(tiny_world: Path) -> Iterator[tuple[World, str]]:
    with running_sandbox(tiny_world) as base_url:
        yield World(tiny_world), base_url


def served_ids(system: str, entity: str, base_url: str, realm: str | None) -> list:
    if system == "crm":
        return [record["Id"] for record in pagers.salesforce(base_url, entity)]
    if system == "psa":
        return [record["id"] for record in pagers.kantata(base_url, entity)]
    if system == "time":
        return [record["id"] for record in pagers.harvest(base_url, entity)]
    assert realm is not None
    return [record["Id"] for record in pagers.quickbooks(base_url, realm, entity)]


SERVED = [
    *(("crm", name) for name in ("User", "Account", "Opportunity", "Contract")),
    *(("psa", name) for name in ("workspaces", "stories", "assignments", "rate_cards", "rate_card_versions")),
    *(("time", name) for name in ("users", "clients", "projects", "tasks", "time_entries", "expenses")),
    *(("erp", name) for name in ("Customer", "Employee", "Item", "TimeActivity", "Invoice", "Payment")),
]


@pytest.mark.parametrize(("system", "entity"), SERVED, ids=[f"{s}/{e}" for s, e in SERVED])
def test_paging_serves_every_record_exactly_once(served: tuple[World, str], system: str, entity: str) -> None:
    world, base_url = served
    state = world.state(system, entity)
    assert state.height > 0, f"the tiny world should have some {system}/{entity}"
    realms = list(world.realms) if system == "erp" else [None]
    for realm in realms:
        expected = state.filter(state["_realm"] == realm) if realm else state
        ids = served_ids(system, entity, base_url, realm)
        duplicates = [key for key, count in Counter(ids).items() if count > 1]
        assert not duplicates, f"{system}/{entity} served twice: {duplicates[:5]}"
        assert sorted(map(str, ids)) == sorted(map(str, expected[world_key(system)].to_list()))


def world_key(system: str) -> str:
    return {"crm": "Id", "psa": "id", "time": "id", "erp": "Id"}[system]


def test_advancing_the_clock_serves_exactly_the_changed_time_entries(
    tiny_world: Path, tmp_path: Path
) -> None:
    world_path = tmp_path / "world"
    shutil.copytree(tiny_world, world_path)
    before = World(world_path)
    old_clock = before.clock
    with running_sandbox(world_path) as base_url:
        old_ids = {record["id"] for record in pagers.harvest(base_url, "time_entries")}
        result = run_cli("sandbox", "advance", "--world", str(world_path), "--days", "3")
        assert result.returncode == 0, result.stderr
        now = World(world_path).state("time", "time_entries")
        expected_changed = now.filter(now["_updated_at"] > old_clock)
        changed = list(pagers.harvest(base_url, "time_entries", updated_since=iso(old_clock)))
    assert expected_changed.height > 0, "three working days of a firm should change some time entries"
    assert sorted(record["id"] for record in changed) == sorted(expected_changed["id"].to_list())
    new_ids = {record["id"] for record in changed} - old_ids
    assert new_ids, "new time entries should appear as the clock moves"
    assert all(record["updated_at"] > iso(old_clock) for record in changed)


def test_pipeline_runs_every_step(tiny_world: Path, tmp_path: Path) -> None:
    world = tmp_path / "world"  # the sync writes to the world's ERP: a copy
    shutil.copytree(tiny_world, world)
    raw_db = tmp_path / "raw.duckdb"
    result = run_cli("billable.pipeline", "--world", str(world), "--port", "0", "--raw-db", str(raw_db))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "sandbox up at http://127.0.0.1:" in result.stdout
    for step in ("ingest", "transform", "sync", "ingest-erp", "transform-after-sync"):
        assert f"pipeline: {step} done" in result.stdout
    assert "sync: succeeded" in result.stdout
    assert "not built yet" not in result.stdout
    assert raw_db.exists()
    assert (tmp_path / "ledger.sqlite").exists() and (tmp_path / "ledger.duckdb").exists()
    assert (tmp_path / "warehouse.duckdb").exists(), "the warehouse is published next to the raw database"


def test_pipeline_refuses_to_mix_two_worlds_in_one_raw_database(tiny_world: Path, tmp_path: Path) -> None:
    raw_db = tmp_path / "raw.duckdb"
    raw_db.with_suffix(".world").write_text("/somewhere/else\n")
    result = run_cli("billable.pipeline", "--world", str(tiny_world), "--port", "0", "--raw-db", str(raw_db))
    assert result.returncode == 2
    assert "holds data loaded from the world /somewhere/else" in result.stderr
