"""The world store: versions resolve to the right state as of any instant, bad worlds say why."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import polars as pl
import pytest

from sandbox.world import World, WorldError, iso, parse_ts, write_entity, write_meta

META = {
    "format_version": 1,
    "seed": 1,
    "preset": "handwritten",
    "start_date": "2025-01-01",
    "cutover_at": "2025-03-01T00:00:00Z",
    "clock": "2025-03-05T00:00:00Z",
    "legal_entities": [
        {"code": "US", "name": "Acme US", "country": "US", "currency": "USD", "realm_id": "1"}
    ],
}


def make_world(root: Path, entity_rows: dict[tuple[str, str], list[dict]]) -> World:
    root.mkdir(parents=True, exist_ok=True)
    write_meta(root, dict(META))
    for (system, entity), rows in entity_rows.items():
        (root / system).mkdir(exist_ok=True)
        (root / system / f"{entity}.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    return World(root)


def test_state_takes_latest_version_and_hides_future_and_deleted(tmp_path: Path) -> None:
    world = make_world(
        tmp_path / "w",
        {
            ("time", "time_entries"): [
                {"_valid_from": "2025-03-01T10:00:00Z", "id": 1, "hours": 2.0},
                {"_valid_from": "2025-03-02T10:00:00Z", "id": 1, "hours": 3.0},
                {"_valid_from": "2025-03-09T10:00:00Z", "id": 1, "hours": 4.0},
                {"_valid_from": "2025-03-01T10:00:00Z", "id": 2, "hours": 1.0},
                {"_valid_from": "2025-03-03T10:00:00Z", "id": 2, "_deleted": True},
                {"_valid_from": "2025-03-08T10:00:00Z", "id": 3, "hours": 5.0},
            ]
        },
    )
    now = world.state("time", "time_entries")
    assert now.select("id", "hours", "_version").rows() == [(1, 3.0, 1)]
    assert now["_created_at"][0] == datetime(2025, 3, 1, 10, tzinfo=UTC)
    assert now["_updated_at"][0] == datetime(2025, 3, 2, 10, tzinfo=UTC)

    later = world.state("time", "time_entries", as_of=parse_ts("2025-03-10T00:00:00Z"))
    assert sorted(later.select("id", "hours", "_version").rows()) == [(1, 4.0, 2), (3, 5.0, 0)]

    before_delete = world.state("time", "time_entries", as_of=parse_ts("2025-03-02T12:00:00Z"))
    assert sorted(before_delete["id"].to_list()) == [1, 2]


def test_erp_keys_are_per_realm(tmp_path: Path) -> None:
    world = make_world(
        tmp_path / "w",
        {
            ("erp", "Customer"): [
                {"_valid_from": "2025-01-02T00:00:00Z", "_realm": "1", "Id": "1", "DisplayName": "A"},
                {"_valid_from": "2025-01-02T00:00:00Z", "_realm": "2", "Id": "1", "DisplayName": "B"},
            ]
        },
    )
    state = world.state("erp", "Customer")
    assert sorted(state.select("_realm", "DisplayName").rows()) == [("1", "A"), ("2", "B")]


def test_missing_entity_file_is_an_empty_entity(tmp_path: Path) -> None:
    world = make_world(tmp_path / "w", {})
    assert world.state("crm", "Account").height == 0


def test_set_clock_round_trips(tmp_path: Path) -> None:
    world = make_world(tmp_path / "w", {})
    world.set_clock(parse_ts("2025-04-01T06:30:00Z"))
    assert iso(World(world.path).clock) == "2025-04-01T06:30:00Z"


def test_parquet_written_twice_is_byte_identical(tmp_path: Path) -> None:
    frame = pl.DataFrame({"_valid_from": ["2025-01-01T00:00:00Z"], "id": [1], "name": ["x"]})
    first = write_entity(tmp_path / "a", "time", "clients", frame).read_bytes()
    second = write_entity(tmp_path / "b", "time", "clients", frame).read_bytes()
    assert first == second


def put_meta(root: Path, meta: dict) -> None:
    (root / "world.json").write_text(json.dumps(meta))


WITHOUT_CLOCK = {key: value for key, value in META.items() if key != "clock"}


@pytest.mark.parametrize(
    ("setup", "message"),
    [
        (lambda root: None, "world.json is missing"),
        (lambda root: (root / "world.json").write_text("{nope"), "not valid JSON"),
        (lambda root: put_meta(root, {**META, "format_version": 9}), "format_version"),
        (lambda root: put_meta(root, WITHOUT_CLOCK), "'clock' is missing"),
    ],
)
def test_bad_world_folders_say_what_is_wrong(tmp_path: Path, setup, message: str) -> None:
    root = tmp_path / "bad"
    root.mkdir()
    setup(root)
    with pytest.raises(WorldError, match=message):
        World(root)


def test_rows_without_valid_from_are_refused_with_the_file_named(tmp_path: Path) -> None:
    world = make_world(tmp_path / "w", {("crm", "Account"): [{"Id": "001", "Name": "Acme"}]})
    with pytest.raises(WorldError, match=r"Account\.jsonl: every row needs a _valid_from"):
        world.state("crm", "Account")


def test_unknown_entity_names_the_known_ones(tmp_path: Path) -> None:
    world = make_world(tmp_path / "w", {})
    with pytest.raises(KeyError, match="crm/Account"):
        world.read("crm", "Lead")
