"""Entities served from disk (sandbox/servers/paged_store.py) answer exactly as from memory.

Two sandboxes serve the same tiny world over real HTTP, one holding every entity in memory, the
other with the on-disk path forced (SANDBOX_MEMORY_ROWS=0): every page of every dialect's lists,
with and without their filters, must be the same bytes. In process: a page reads only its own
rows, a half-written or damaged copy is rebuilt (never served), a moved clock builds a new copy.
"""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
import requests

from billable.sandbox_process import running_sandbox
from sandbox.servers import harvest, quickbooks
from sandbox.servers.encode import json_rows_joined
from sandbox.servers.paged_store import PagedFrame
from sandbox.servers.state import WorldState
from sandbox.world import World, iso
from tests.ingest_helpers import ROOT, copy_world, generate_world

HEADERS = {"Authorization": "Bearer paging-test", "Harvest-Account-Id": "1", "Accept": "application/json"}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(tmp_path_factory.mktemp("paging") / "tiny-7", "tiny", seed=7)


@pytest.fixture(scope="module")
def servers(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, str]]:
    """(in memory, from disk): two sandboxes on the same world, the second with threshold 0."""
    cache = tmp_path_factory.mktemp("paging-cache")
    with ExitStack() as stack, pytest.MonkeyPatch.context() as patch:
        patch.setenv("SANDBOX_MEMORY_ROWS", str(10**12))
        memory = stack.enter_context(running_sandbox(world))
        patch.setenv("SANDBOX_MEMORY_ROWS", "0")
        patch.setenv("SANDBOX_CACHE_DIR", str(cache))
        disk = stack.enter_context(running_sandbox(world))
        patch.undo()
        yield memory, disk
    assert list(cache.glob("time.time_entries.*.parquet")), "the disk server wrote no served copy"


def same(servers: tuple[str, str], path: str, **params: object) -> bytes:
    """The answer of both servers to one GET, asserted identical byte for byte (but the host)."""
    answers = [requests.get(f"{base}{path}", params=params, headers=HEADERS, timeout=60) for base in servers]
    assert answers[0].status_code == answers[1].status_code, (path, params)
    # Harvest's links name the server they came from; everything else must be the same bytes
    bodies = [
        answer.content.replace(base.encode(), b"BASE") for answer, base in zip(answers, servers, strict=True)
    ]
    assert bodies[0] == bodies[1], (path, params)
    return bodies[0]


def middle_stamp(world: Path, system: str, entity: str) -> str:
    stamps = World(world).state(system, entity)["_updated_at"].sort()
    return iso(stamps[len(stamps) // 2])


def test_harvest_pages_are_identical(servers: tuple[str, str], world: Path) -> None:
    since = middle_stamp(world, "time", "time_entries")
    for resource in ("time_entries", "users", "projects", "expenses"):
        for params in ({}, {"updated_since": since}, {"from": "2025-02-01", "to": "2025-03-15"}):
            page, pages = 1, 0
            while True:
                body = same(servers, f"/v2/{resource}", per_page=97, page=page, **params)
                answer = requests.Response()
                answer._content = body
                meta = answer.json()
                pages += 1
                if meta["next_page"] is None:
                    break
                page += 1
            assert pages == meta["total_pages"]
    entries = requests.get(f"{servers[0]}/v2/time_entries", params={"per_page": 5}, headers=HEADERS).json()
    for entry in entries["time_entries"]:
        same(servers, f"/v2/time_entries/{entry['id']}")
    same(servers, "/v2/time_entries/999999999")


def test_kantata_pages_are_identical(servers: tuple[str, str], world: Path) -> None:
    after = middle_stamp(world, "psa", "rate_card_versions")
    for resource in ("workspaces", "stories", "assignments", "rate_cards", "rate_card_versions"):
        for params in ({}, {"updated_after": after}):
            page = 1
            while True:
                body = requests.Response()
                body._content = same(servers, f"/api/v1/{resource}", per_page=9, page=page, **params)
                if page >= body.json()["meta"]["page_count"]:
                    break
                page += 1
        ids = requests.get(f"{servers[0]}/api/v1/{resource}", headers=HEADERS).json()["results"][:3]
        same(servers, f"/api/v1/{resource}", only=",".join(ref["id"] for ref in ids))


def test_salesforce_queries_are_identical(servers: tuple[str, str], world: Path) -> None:
    since = middle_stamp(world, "crm", "Opportunity")
    for sobject in ("User", "Account", "Opportunity", "Contract"):
        for soql in (
            f"SELECT Id, Name FROM {sobject} ORDER BY SystemModstamp",
            f"SELECT Id FROM {sobject} WHERE LastModifiedDate > {since} ORDER BY SystemModstamp DESC",
            f"SELECT Id, CreatedDate FROM {sobject} WHERE CreatedDate <= {since} ORDER BY CreatedDate DESC",
            f"SELECT Id FROM {sobject} ORDER BY Name LIMIT 4",
            f"SELECT COUNT() FROM {sobject}",
        ):
            same(servers, "/services/data/v60.0/query", q=soql)


def test_quickbooks_queries_are_identical(servers: tuple[str, str], world: Path) -> None:
    since = middle_stamp(world, "erp", "TimeActivity")
    for realm in World(world).realms:
        for entity in ("TimeActivity", "Customer", "Invoice", "ExchangeRate"):
            for where in (
                "",
                f"WHERE MetaData.LastUpdatedTime > '{since}'",
                f"WHERE MetaData.CreateTime <= '{since}' ORDERBY MetaData.LastUpdatedTime DESC",
            ):
                position = 1
                while True:
                    text = f"SELECT * FROM {entity} {where} STARTPOSITION {position} MAXRESULTS 40"
                    body = same(servers, f"/v3/company/{realm}/query", query=text)
                    if body.count(b'"Id"') < 40:
                        break
                    position += 40
            same(servers, f"/v3/company/{realm}/query", query=f"SELECT COUNT(*) FROM {entity}")
        ids = re.findall(
            rb'"Id":"([^"]+)"',
            same(servers, f"/v3/company/{realm}/query", query="SELECT * FROM TimeActivity MAXRESULTS 3"),
        )
        for record_id in ids:
            same(servers, f"/v3/company/{realm}/timeactivity/{record_id.decode()}")


def test_pages_read_only_their_rows(world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Paging the disk copy reads a page's rows, never the entity, and matches memory page by page."""
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path))
    disk = WorldState(world, memory_rows=0).served("time", "time_entries", harvest.shape)
    memory = WorldState(world, memory_rows=10**12).served("time", "time_entries", harvest.shape)
    assert isinstance(disk.frame, PagedFrame) and not isinstance(memory.frame, PagedFrame)
    assert np.array_equal(disk.stamps, memory.stamps)
    store = disk.frame._store
    per_page = 100
    for offset in range(0, memory.height, per_page):
        page = disk.frame.slice(offset, per_page)
        assert json_rows_joined(page) == json_rows_joined(memory.frame.slice(offset, per_page))  # type: ignore[arg-type]
    assert store.largest_read == per_page
    assert memory.height > 10 * per_page


def cache_file(directory: Path, entity: str) -> Path:
    [found] = directory.glob(f"erp.{entity}.*.parquet")
    return found


def test_a_damaged_copy_is_rebuilt_not_served(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path))
    realm = next(iter(World(world).realms))
    expected = WorldState(world, memory_rows=10**12).served("erp", "TimeActivity", quickbooks.shape, realm)
    WorldState(world, memory_rows=0).served("erp", "TimeActivity", quickbooks.shape, realm)
    built = cache_file(tmp_path, "TimeActivity")
    whole = built.read_bytes()
    # what a writer killed mid-file leaves (had it written in place): the head of the file, no footer
    built.write_bytes(whole[: len(whole) // 2])
    # and a temporary file of a build whose process is gone
    leftover = built.with_name(f"{built.name}.tmp-999999999-1")
    leftover.write_bytes(whole[:100])
    served = WorldState(world, memory_rows=0).served("erp", "TimeActivity", quickbooks.shape, realm)
    assert "is not usable" in capfd.readouterr().err
    assert isinstance(served.frame, PagedFrame)
    assert served.frame.materialize().equals(expected.frame)
    assert np.array_equal(served.stamps, expected.stamps)
    assert cache_file(tmp_path, "TimeActivity").read_bytes() == whole  # rebuilt whole, same bytes
    assert not leftover.exists()


def test_a_copy_for_another_clock_is_not_trusted(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capfd: pytest.CaptureFixture[str]
) -> None:
    """A moved clock builds a new copy and drops the old one; a copy under a name it was not
    built for (its digest names another clock) is rebuilt."""
    own = copy_world(world, tmp_path / "world")
    cache = tmp_path / "cache"
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(cache))
    realm = next(iter(World(own).realms))
    state = WorldState(own, memory_rows=0)
    state.served("erp", "Invoice", quickbooks.shape, realm)
    first = cache_file(cache, "Invoice")
    moved = World(own)
    moved.set_clock(moved.clock + timedelta(days=40))
    later = state.served("erp", "Invoice", quickbooks.shape, realm)
    second = cache_file(cache, "Invoice")
    assert second != first and not first.exists()
    expected = WorldState(own, memory_rows=10**12).served("erp", "Invoice", quickbooks.shape, realm)
    assert later.frame.materialize().equals(expected.frame)  # type: ignore[attr-defined]
    moved.set_clock(moved.clock - timedelta(days=40))
    first.write_bytes(second.read_bytes())  # the later clock's copy under the earlier clock's name
    capfd.readouterr()
    served = WorldState(own, memory_rows=0).served("erp", "Invoice", quickbooks.shape, realm)
    assert "built for" in capfd.readouterr().err
    expected = WorldState(own, memory_rows=10**12).served("erp", "Invoice", quickbooks.shape, realm)
    assert served.frame.materialize().equals(expected.frame)  # type: ignore[attr-defined]
    assert np.array_equal(served.stamps, expected.stamps)


def test_a_copy_is_reused_by_the_next_server(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restarted server (another process) finds the copy built for this clock and file."""
    monkeypatch.setenv("SANDBOX_CACHE_DIR", str(tmp_path))
    WorldState(world, memory_rows=0).served("time", "time_entries", harvest.shape)
    [built] = tmp_path.glob("time.time_entries.*.parquet")
    before = built.stat()
    script = (
        "import sys; from sandbox.servers.state import WorldState; from sandbox.servers import harvest; "
        "print(WorldState(sys.argv[1], memory_rows=0).served('time', 'time_entries', harvest.shape).height)"
    )
    result = subprocess.run(
        [sys.executable, "-c", script, str(world)], cwd=ROOT, capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    assert int(result.stdout) == World(world).state("time", "time_entries").height
    assert list(tmp_path.glob("time.time_entries.*.parquet")) == [built]
    after = built.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)
