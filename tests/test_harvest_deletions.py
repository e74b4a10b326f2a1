"""Harvest deletions are confirmed before anything downstream acts on them (issue 13, fault 1).

Over the real sandbox over HTTP, the real ingestion runner (a subprocess), real DuckDB and a real
`dbt build` of the two staging models: the time tool is restored six days back (every entry of
those six days answers 404 once) and then forward again; an entry is really deleted from the
world's store. A record seen again is never flagged deleted; a real deletion is suspected first
and confirmed only by a later check at least `deletion_confirm_hours` after the first.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pytest

from billable.sandbox_process import running_sandbox
from sandbox.world import World, write_entity
from tests.ingest_helpers import generate_world, ingest
from tests.warehouse_helpers import build_models

BLIP_DAYS = 6


def table(raw_db: Path, name: str) -> dict[int, dict]:
    """A raw_time table as {id: row}; empty when the table does not exist."""
    with duckdb.connect(str(raw_db), read_only=True) as connection:
        found = connection.execute(
            "select count(*) from information_schema.tables where table_schema = 'raw_time' "
            "and table_name = ?",
            [name],
        ).fetchone()[0]
        if not found:
            return {}
        cursor = connection.execute(f"select * from raw_time.{name}")
        columns = [column[0] for column in cursor.description]
        return {row[0]: dict(zip(columns, row, strict=True)) for row in cursor.fetchall()}


def build_staging(raw_db: Path, folder: Path) -> Path:
    """`dbt build` of the Harvest time entry and expense staging models (and their tests)."""
    return build_models(raw_db, folder, "stg_time__time_entries", "stg_time__expenses")


def staged(build_db: Path, sql: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(build_db), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


def flagged_deleted(build_db: Path) -> tuple[int, float]:
    """(entries, hours) the staging model flags deleted."""
    count, hours = staged(
        build_db,
        "select count(*), coalesce(sum(hours), 0) from staging.stg_time__time_entries where is_deleted",
    )[0]
    return count, float(hours)


def delete_from_store(world: Path, entry_id: int) -> None:
    """Delete one time entry in the world's store, as of the clock (a version marked `_deleted`)."""
    store = World(world)
    versions = store.read("time", "time_entries")
    latest = versions.filter(pl.col("id") == entry_id).sort("_valid_from").tail(1)
    gone = latest.with_columns(pl.lit(store.clock).alias("_valid_from"), pl.lit(True).alias("_deleted"))
    write_entity(world, "time", "time_entries", pl.concat([versions, gone], how="vertical_relaxed"))


@pytest.fixture(scope="module")
def scenario(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """One tiny world through a restore-and-return of the time tool, then a real deletion."""
    folder = tmp_path_factory.mktemp("harvest_deletions")
    world = generate_world(folder / "world")
    raw_db = folder / "raw.duckdb"
    now = World(world).clock
    current = World(world).state("time", "time_entries")
    restored = World(world).state("time", "time_entries", as_of=now - timedelta(days=BLIP_DAYS))
    blipped = current.filter(~pl.col("id").is_in(restored["id"].implode()))
    expenses = World(world).state("time", "expenses")["id"]
    expenses_back = World(world).state("time", "expenses", as_of=now - timedelta(days=BLIP_DAYS))["id"]
    blipped_expenses = set(expenses.to_list()) - set(expenses_back.to_list())
    # The entry really deleted later: well inside the deletion window, and not one of the blipped.
    # (by date: entry ids follow the generator's blocks of employees, not the calendar)
    early = current.filter(pl.col("spent_date").cast(pl.String) < "2026-09-15")
    victim = early.sort(["spent_date", "id"])["id"][-1]
    seen: dict = {
        "world": world,
        "raw_db": raw_db,
        "blipped": blipped,
        "blipped_expenses": blipped_expenses,
        "victim": victim,
    }

    def run(step: str, **extra: str) -> None:
        result = ingest(base_url, world, raw_db, "time", **extra)
        assert result.returncode == 0, f"{step}: {result.stdout[-3000:]}{result.stderr[-3000:]}"
        seen[step] = table(raw_db, "time_entries_deletions")
        seen[f"{step}_expenses"] = table(raw_db, "expenses_deletions")

    with running_sandbox(world) as base_url:
        run("loaded")
        # The time tool is restored six days back (the CLI only moves the clock forward, so the
        # store's clock is set directly, as `advance` does): those days' entries answer 404.
        World(world).set_clock(now - timedelta(days=BLIP_DAYS))
        run("restored_back")
        seen["staging_restored_back"] = build_staging(raw_db, folder / "staging_restored_back")
        World(world).set_clock(now)
        # Even with no minimum time between checks, an entry served again is not deleted.
        run("served_again", SOURCES__HARVEST__DELETION_CONFIRM_HOURS="0")
        delete_from_store(world, victim)
        run("first_check")
        run("second_check_too_soon")  # the default 20 h have not passed
        run("confirmed", SOURCES__HARVEST__DELETION_CONFIRM_HOURS="0")
        run("after_confirmed", SOURCES__HARVEST__DELETION_CONFIRM_HOURS="0")
        seen["bad_setting"] = ingest(
            base_url, world, raw_db, "time", SOURCES__HARVEST__DELETION_CONFIRM_HOURS="a day"
        )
    seen["staging_end"] = build_staging(raw_db, folder / "staging_end")
    return seen


def test_a_restore_of_the_time_tool_is_only_suspected_then_cleared(scenario: dict) -> None:
    blipped = set(scenario["blipped"]["id"].to_list())
    assert len(blipped) > 100, "six days of the tiny world's time should answer 404"
    suspected = scenario["restored_back"]
    assert set(suspected) == blipped, "exactly the entries the restore lost are noticed"
    assert {row["status"] for row in suspected.values()} == {"suspected"}
    assert {row["confirmations"] for row in suspected.values()} == {1}

    # Nothing downstream acts on a suspicion: staging shows it, but does not flag it deleted.
    build_db = scenario["staging_restored_back"]
    assert flagged_deleted(build_db) == (0, 0.0)
    shown = staged(
        build_db,
        "select time_entry_id from staging.stg_time__time_entries where deletion_status = 'suspected'",
    )
    assert {row[0] for row in shown} == blipped

    # Served again: cleared by the next run, never confirmed, and staging flags none of them.
    again = scenario["served_again"]
    assert {again[key]["status"] for key in blipped} == {"reappeared"}
    assert all(again[key]["reappeared_at"] is not None for key in blipped)
    still = staged(
        scenario["staging_end"],
        "select count(*) from staging.stg_time__time_entries "
        "where (is_deleted or deletion_status is not null) and time_entry_id in "
        "(select unnest(?::bigint[]))",
        sorted(blipped),
    )
    assert still == [(0,)]

    # Expenses alike: the restore's expense was suspected, then served again; none is flagged.
    blipped_expenses = scenario["blipped_expenses"]
    assert blipped_expenses, "the tiny world adds an expense in the restored days"
    assert {key: row["status"] for key, row in scenario["restored_back_expenses"].items()} == dict.fromkeys(
        blipped_expenses, "suspected"
    )
    assert {row["status"] for row in scenario["served_again_expenses"].values()} == {"reappeared"}
    expenses = staged(
        scenario["staging_end"],
        "select count(*) from staging.stg_time__expenses where is_deleted or deletion_status is not null",
    )
    assert expenses == [(0,)]


def test_a_real_deletion_is_suspected_then_confirmed_a_check_later(scenario: dict) -> None:
    victim = scenario["victim"]
    first = scenario["first_check"][victim]
    assert (first["status"], first["confirmations"]) == ("suspected", 1)
    soon = scenario["second_check_too_soon"][victim]
    assert (soon["status"], soon["confirmations"]) == ("suspected", 2), (
        "two checks minutes apart do not confirm a deletion (default 20 h apart)"
    )
    confirmed = scenario["confirmed"][victim]
    assert (confirmed["status"], confirmed["confirmations"]) == ("confirmed", 3)
    assert confirmed["confirmed_at"] is not None
    assert confirmed["detected_at"] == first["detected_at"], "the first detection is kept"
    # A confirmed deletion is not re-fetched by id on every run.
    assert scenario["after_confirmed"][victim] == confirmed

    build_db = scenario["staging_end"]
    hours = float(scenario["blipped"].filter(pl.col("id") == victim)["hours"].sum() or 0)
    rows = staged(
        build_db,
        "select is_deleted, deletion_status, hours from staging.stg_time__time_entries "
        "where time_entry_id = ?",
        victim,
    )
    assert rows and rows[0][:2] == (True, "confirmed")
    assert flagged_deleted(build_db) == (1, float(rows[0][2])), "only the real deletion is flagged"
    assert hours == 0, "the victim is not one of the restored entries"
    # Nothing is invented: only entries the world really deleted are flagged.
    world_ids = set(World(scenario["world"]).state("time", "time_entries")["id"].to_list())
    flagged = staged(build_db, "select time_entry_id from staging.stg_time__time_entries where is_deleted")
    assert not {row[0] for row in flagged} & world_ids


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory: pytest.TempPathFactory) -> dict:
    """A raw database whose deletions table the loader before confirmation wrote: one row for an
    entry that a blip made answer 404 once (it exists), one for an entry really deleted."""
    folder = tmp_path_factory.mktemp("harvest_deletions_upgrade")
    world = generate_world(folder / "world", seed=6)
    raw_db = folder / "raw.duckdb"
    # the newest entry, and the newest well inside the window (ids do not follow the calendar)
    entries = World(world).state("time", "time_entries").sort(["spent_date", "id"])
    blipped, gone = (
        entries["id"][-1],
        entries.filter(pl.col("spent_date").cast(pl.String) < "2026-09-15")["id"][-1],
    )
    seen: dict = {"world": world, "blipped": blipped, "gone": gone}
    # The old loader's table (the columns it wrote, and dlt's), there before the current loader
    # runs: it creates every declared table it does not find, so it would otherwise create this one.
    with duckdb.connect(str(raw_db)) as connection:
        connection.execute("create schema raw_time")
        connection.execute(
            "create table raw_time.time_entries_deletions (id bigint not null, spent_date varchar, "
            "window_from varchar, detected_at timestamp with time zone, _dlt_load_id varchar not null, "
            "_dlt_id varchar not null)"
        )
    with running_sandbox(world) as base_url:
        result = ingest(base_url, world, raw_db, "time")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        # The old loader's rows, found two days ago, for entries last loaded three days ago.
        with duckdb.connect(str(raw_db)) as connection:
            connection.execute(
                "update raw_time.time_entries set _dlt_load_id = "
                "cast(epoch(now() - interval 3 day) as varchar) where id in (?, ?)",
                [blipped, gone],
            )
            connection.execute(
                "insert into raw_time.time_entries_deletions select id, spent_date, '2026-08-26', "
                "now() - interval 2 day, '1700000000.0', 'old' || id from raw_time.time_entries "
                "where id in (?, ?)",
                [blipped, gone],
            )
        seen["staging_old_rows"] = build_staging(raw_db, folder / "staging_old_rows")
        delete_from_store(world, gone)
        result = ingest(base_url, world, raw_db, "time")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        seen["stdout"] = result.stdout
    seen["after"] = table(raw_db, "time_entries_deletions")
    return seen


def test_old_deletion_rows_are_suspicions_and_are_re_checked_on_upgrade(upgraded: dict) -> None:
    blipped, gone = upgraded["blipped"], upgraded["gone"]
    # Before the loader re-checks them, the old rows are suspicions: shown, not acted on.
    old = staged(
        upgraded["staging_old_rows"],
        "select time_entry_id, is_deleted, deletion_status from staging.stg_time__time_entries "
        "where deletion_status is not null or is_deleted order by 1",
    )
    assert old == sorted([(blipped, False, "suspected"), (gone, False, "suspected")])
    # The first run of the new loader fetches both by id: one is served, one is gone for good
    # (found missing two days apart: confirmed).
    after = upgraded["after"]
    assert after[blipped]["status"] == "reappeared" and after[blipped]["reappeared_at"] is not None
    assert (after[gone]["status"], after[gone]["confirmations"]) == ("confirmed", 2)
    assert "deletions suspected 0, confirmed 1, served again (not deleted) 1" in upgraded["stdout"]


def test_a_bad_confirmation_setting_fails_the_source_naming_it(scenario: dict) -> None:
    result = scenario["bad_setting"]
    assert result.returncode == 1
    assert "deletion_confirm_hours must be a number of hours >= 0, got 'a day'" in result.stdout
    assert "SOURCES__HARVEST__DELETION_CONFIRM_HOURS" in result.stdout
