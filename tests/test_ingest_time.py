"""Harvest → raw_time against the real sandbox over HTTP and a real DuckDB: completeness,
incremental change, deletions, and the faults a production load has to survive."""

from __future__ import annotations

import signal
import subprocess
import time
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest
import requests

from billable.sandbox_process import running_sandbox
from ingestion.harvest import list_pages, typed_pages
from ingestion.harvest.tables import TABLES
from ingestion.http import make_client
from sandbox.world import World
from tests.ingest_helpers import (
    ROOT,
    advance,
    copy_world,
    generate_world,
    ingest,
    ingest_command,
    ingest_env,
    query,
)

ENTITIES = ("users", "clients", "projects", "tasks", "time_entries", "expenses")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(tmp_path_factory.mktemp("time") / "tiny")


@pytest.fixture
def world(tiny: Path, tmp_path: Path) -> Path:
    return copy_world(tiny, tmp_path / "world")


def landed(raw_db: Path, table: str, columns: str = "id") -> list[tuple]:
    return query(raw_db, f"select {columns} from raw_time.{table} order by 1")


def last_run_rows(raw_db: Path, table: str | None = None) -> int:
    """Rows the latest run loaded (into one table, or all), from the load log."""
    latest = "run_id = (select max(run_id) from ops.load_log)"
    where = f"{latest} and table_name = ?" if table else latest
    return query(
        raw_db, f"select coalesce(sum(rows), 0) from ops.load_log where {where}", *([table] if table else [])
    )[0][0]


def assert_matches_world(raw_db: Path, world: Path) -> None:
    """Every record of every Harvest entity, exactly once, in its current version."""
    state = World(world)
    for entity in ENTITIES:
        expected = state.state("time", entity)
        rows = landed(raw_db, entity, "id, updated_at")
        ids = [row[0] for row in rows]
        assert len(ids) == len(set(ids)), f"{entity}: duplicated ids"
        assert sorted(ids) == sorted(expected["id"].to_list()), f"{entity}: ids differ from the world"
    entries = World(world).state("time", "time_entries").select("id", "hours", "approval_status")
    loaded = pl.DataFrame(
        landed(raw_db, "time_entries", "id, hours, approval_status"),
        schema=["id", "hours", "approval_status"],
        orient="row",
    )
    assert loaded.sort("id").equals(entries.sort("id")), "current versions differ from the world"


def test_full_load_then_incremental_after_the_clock_moves(world: Path, tmp_path: Path) -> None:
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(world) as base_url:
        first = ingest(base_url, world, raw_db, "time")
        assert first.returncode == 0, first.stderr
        assert_matches_world(raw_db, world)

        again = ingest(base_url, world, raw_db, "time")
        assert again.returncode == 0, again.stderr
        assert_matches_world(raw_db, world)
        # Nothing changed: the second run re-reads at most the cursor's 5-minute lookback.
        reread = last_run_rows(raw_db)
        assert reread < 20, f"an unchanged source re-read {reread} rows"

        clock = World(world).clock
        advance(world, 4)
        changed = World(world).state("time", "time_entries").filter(pl.col("_updated_at") > clock).height
        third = ingest(base_url, world, raw_db, "time")
        assert third.returncode == 0, third.stderr
    assert_matches_world(raw_db, world)
    loaded_now = last_run_rows(raw_db, "time_entries")
    assert changed <= loaded_now <= changed + 20, "the incremental run should read only what changed"


def test_vanished_time_entries_are_recorded_as_deletions(world: Path, tmp_path: Path) -> None:
    versions = World(world).read("time", "time_entries")
    clock = World(world).clock
    lifetimes = versions.group_by("id").agg(
        pl.col("_valid_from").min().alias("created"),
        pl.col("_valid_from").filter(pl.col("_deleted")).min().alias("deleted"),
    )
    doomed = lifetimes.filter(pl.col("deleted").is_not_null() & (pl.col("created") > clock)).sort("deleted")
    assert doomed.height, "the tiny world should delete some time entries after its clock"
    victim = doomed.row(0, named=True)
    hours = lambda moment: (moment - World(world).clock).total_seconds() / 3600  # noqa: E731
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(world) as base_url:
        # Load while the entry exists, then again after it vanished from Harvest.
        advance(world, hours=hours(victim["created"] + (victim["deleted"] - victim["created"]) / 2))
        assert ingest(base_url, world, raw_db, "time").returncode == 0
        assert victim["id"] in {row[0] for row in landed(raw_db, "time_entries")}
        advance(world, hours=hours(victim["deleted"]) + 1)
        result = ingest(base_url, world, raw_db, "time")
        assert result.returncode == 0, result.stderr
    recorded = {row[0] for row in landed(raw_db, "time_entries_deletions")}
    assert victim["id"] in recorded
    gone = set(lifetimes.filter(pl.col("deleted") <= World(world).clock)["id"].to_list())
    assert recorded <= gone, "only records that really vanished are marked deleted"
    still_there = World(world).state("time", "time_entries")["id"].to_list()
    assert not recorded & set(still_there)


def test_rate_limits_5xx_and_dropped_connections_lose_and_duplicate_nothing(
    world: Path, tmp_path: Path
) -> None:
    raw_db = tmp_path / "raw.duckdb"
    flags = ["--rate-limit", "--error-rate", "0.2", "--drop-rate", "0.1"]
    with running_sandbox(world, flags=flags) as base_url:
        # The real limit (100 per 15 s) would make the test slow; 8 per 2 s forces many 429s.
        limits = {"limits": {"harvest": {"requests": 8, "window_s": 2}}}
        requests.post(f"{base_url}/_sandbox/faults", json=limits, timeout=5).raise_for_status()
        result = ingest(base_url, world, raw_db, "time", SOURCES__HARVEST__PER_PAGE="200")
        log = requests.get(f"{base_url}/_sandbox/faults/log", timeout=5).json()["entries"]
    assert result.returncode == 0, result.stderr
    kinds = {entry["fault"] for entry in log}
    assert {"rate_limit", "server_error", "drop"} <= kinds, f"all three faults should have fired: {kinds}"
    assert_matches_world(raw_db, world)


def test_malformed_records_are_quarantined_with_their_payload(world: Path, tmp_path: Path) -> None:
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(world, flags=["--malformed-rate", "0.03"]) as base_url:
        result = ingest(base_url, world, raw_db, "time")
    assert result.returncode == 0, result.stderr
    quarantined = query(raw_db, "select record_key, reason, payload from raw_time.quarantine order by 1")
    assert quarantined, "malformed records should be quarantined"
    assert all("expected number" in reason or reason.startswith("missing id") for _, reason, _ in quarantined)
    assert any('"hours":"' in payload for _, _, payload in quarantined), "the raw payload is kept"
    expected = World(world).state("time", "time_entries").height
    loaded = query(raw_db, "select count(*) from raw_time.time_entries")[0][0]
    assert loaded + len(quarantined) == expected, "every served entry is either loaded or quarantined"


def test_a_record_without_an_id_does_not_stop_the_next_run(world: Path, tmp_path: Path) -> None:
    """The second run checks the window for deletions against the ids Harvest lists; a listed
    record without an id (quarantined on the first run) must not crash that check."""
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(world, flags=["--malformed-rate", "0.05"]) as base_url:
        first = ingest(base_url, world, raw_db, "time")
        second = ingest(base_url, world, raw_db, "time")
    assert first.returncode == 0, first.stderr
    assert second.returncode == 0, second.stdout + second.stderr
    missing = query(raw_db, "select count(*) from raw_time.quarantine where reason like 'missing id%'")[0][0]
    assert missing > 0, "the sandbox should have served records without an id"
    flagged = query(
        raw_db,
        "select count(*) from raw_time.time_entries_deletions where status in ('suspected', 'confirmed')",
    )[0][0]
    assert flagged == 0, "nothing was deleted in the world: no entry may be suspected or confirmed deleted"


def test_a_type_change_on_money_or_hours_is_refused_loudly(world: Path, tmp_path: Path) -> None:
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(world, flags=["--drift-from", "2026-01-01"]) as base_url:
        result = ingest(base_url, world, raw_db, "time")
    assert result.returncode == 1
    assert "table time_entries: column hours changed type from number to string" in result.stdout
    failures = query(raw_db, "select source, status, error from ops.load_log where status = 'failed'")
    assert failures and failures[0][0] == "time" and "SchemaChangeRefused" in failures[0][2]
    loaded = query(
        raw_db, "select count(*) from information_schema.tables where table_name = 'time_entries'"
    )[0][0]
    assert loaded == 0, "nothing of the refused table may land"


@pytest.mark.parametrize("kill_after_s", [0.6, 1.5, 3.0])
def test_kill_9_mid_load_then_rerun_gives_exactly_a_clean_runs_rows(
    world: Path, tmp_path: Path, kill_after_s: float
) -> None:
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(world, flags=["--slow-ms", "15"]) as base_url:
        victim = subprocess.Popen(
            ingest_command(raw_db, "time"),
            cwd=ROOT,
            env=ingest_env(base_url, world, SOURCES__HARVEST__PER_PAGE="50"),
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        time.sleep(kill_after_s)
        victim.send_signal(signal.SIGKILL)
        victim.wait()
        rerun = ingest(base_url, world, raw_db, "time")
        assert rerun.returncode == 0, rerun.stderr
    assert_matches_world(raw_db, world)


def typed_and_parsed(base_url: str, spec, per_page: int = 500) -> tuple[list, list]:
    """One Harvest list read both ways over HTTP: (typed pages as `land_pages` gets them, pages of
    parsed JSON records)."""
    client = make_client(base_url, "sandbox-token", headers={"Harvest-Account-Id": "1"})
    typed = list(typed_pages(client, spec, {"per_page": per_page}))
    parsed = list(list_pages(client, spec.name, {"per_page": per_page}))
    return typed, parsed


def test_clean_pages_take_the_typed_path_and_land_as_the_python_path_would(world: Path) -> None:
    """Against the sandbox: every page of every clean list is typed by Arrow (none falls back),
    and the rows are exactly those of the record-by-record conversion."""
    with running_sandbox(world) as base_url:
        for spec in TABLES:
            typed, parsed = typed_and_parsed(base_url, spec)
            assert typed and all(isinstance(page, pa.StructArray) for page in typed), spec.name
            via_arrow = pa.concat_tables([spec.from_arrow(page) for page in typed])
            via_python = pa.concat_tables([spec.convert(page, "harvest")[0] for page in parsed])
            assert via_arrow.num_rows == sum(len(page) for page in parsed) > 0
            assert via_arrow.equals(via_python), spec.name


def test_a_page_with_a_malformed_record_takes_the_python_path(world: Path) -> None:
    entries = next(spec for spec in TABLES if spec.name == "time_entries")
    with running_sandbox(world, flags=["--malformed-rate", "0.03"]) as base_url:
        typed, _parsed = typed_and_parsed(base_url, entries)
    kinds = {type(page) for page in typed}
    assert list in kinds, "pages holding a malformed record must be checked record by record"
    quarantined = [row for page in typed if isinstance(page, list) for row in entries.convert(page, "t")[1]]
    assert quarantined and all(row["reason"] for row in quarantined)
