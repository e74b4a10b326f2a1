"""The world generator: speed, determinism, the manifest against independent recomputation,
referential integrity and money that adds up."""

from __future__ import annotations

import hashlib
import json
import re
import time
from datetime import date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from sandbox.generate import generate_world
from sandbox.generate.cli import main as cli_main
from sandbox.world import ENTITIES, World, parse_ts

SEED = 7


@pytest.fixture(scope="session")
def tiny(tmp_path_factory) -> tuple[Path, float]:
    out = tmp_path_factory.mktemp("gen") / "tiny"
    started = time.perf_counter()
    generate_world("tiny", SEED, out)
    return out, time.perf_counter() - started


@pytest.fixture(scope="session")
def world(tiny) -> World:
    return World(tiny[0])


@pytest.fixture(scope="session")
def manifest(tiny) -> dict:
    return json.loads((tiny[0] / "manifest.json").read_text())


@pytest.fixture(scope="session")
def horizon(world) -> datetime:
    return parse_ts(world.meta["horizon_end"])


def _digests(root: Path) -> dict[str, str]:
    return {
        str(path.relative_to(root)): hashlib.sha256(path.read_bytes()).hexdigest()
        for path in sorted(root.rglob("*"))
        if path.is_file()
    }


def _ids(manifest: dict, kind: str) -> set:
    return {record["id"] for record in manifest["defects"][kind]["records"]}


def _norm_code(code: str) -> str:
    return re.sub(r"(?<=[A-Z])0+(?=\d)", "", re.sub(r"[^A-Z0-9]", "", code.upper()))


def test_same_seed_same_bytes_different_seed_different(tiny, tmp_path):
    again = tmp_path / "again"
    other = tmp_path / "other"
    generate_world("tiny", SEED, again)
    generate_world("tiny", SEED + 1, other)
    first = _digests(tiny[0])
    assert first == _digests(again)
    changed = _digests(other)
    # which HR snapshots have arrived by the clock depends on the seed (late deliveries)
    assert {k for k in changed if "hr_drop" not in k} == {k for k in first if "hr_drop" not in k}
    assert changed["time/time_entries.parquet"] != first["time/time_entries.parquet"]
    assert changed["manifest.json"] != first["manifest.json"]


def test_cli_refuses_non_empty_folder_without_force(tmp_path, capsys):
    target = tmp_path / "w"
    target.mkdir()
    (target / "keep.txt").write_text("mine")
    assert cli_main(["--preset", "tiny", "--seed", "1", "--out", str(target)]) == 2
    assert "not empty" in capsys.readouterr().err
    assert (target / "keep.txt").exists()
    assert cli_main(["--preset", "tiny", "--seed", "1", "--out", str(target), "--force"]) == 0
    assert "defects=" in capsys.readouterr().out
    assert not (target / "keep.txt").exists()


def test_world_meta(world):
    meta = world.meta
    assert meta["clock"] == meta["cutover_at"] == "2026-10-01T00:00:00Z"
    assert meta["horizon_end"] == "2026-10-31T00:00:00Z"
    assert meta["start_date"] == "2026-07-01"
    assert [e["currency"] for e in meta["legal_entities"]] == ["USD", "GBP", "EUR"]
    assert len(set(world.realms)) == 3


def test_state_works_on_every_entity(world, horizon):
    for system, entity in ENTITIES:
        now = world.state(system, entity)
        later = world.state(system, entity, as_of=horizon)
        assert now.height > 0, f"{system}/{entity} is empty at the clock"
        assert later.height > 0


def test_the_future_holds_new_and_changed_records(world, horizon):
    versions = world.read("time", "time_entries")
    after = versions.filter(pl.col("_valid_from") > world.clock)
    assert after.height > 0
    ids_now = set(world.state("time", "time_entries")["id"].to_list())
    assert set(after["id"].to_list()) - ids_now, "advancing shows new entries"
    assert set(after["id"].to_list()) & ids_now, "advancing changes existing entries"
    assert versions.filter(pl.col("_valid_from") > horizon).height == 0


def test_manifest_shape_and_every_kind_at_least_twice(manifest, horizon):
    assert manifest["seed"] == SEED and manifest["preset"] == "tiny"
    assert len(manifest["defects"]) == 16
    for kind, block in manifest["defects"].items():
        assert block["count"] == len(block["records"]), kind
        assert block["count"] >= 2, f"{kind} has {block['count']} cases"
        for record in block["records"]:
            assert parse_ts(record["visible_at"]) <= horizon, (kind, record)


def test_manifest_records_exist_when_visible(world, manifest):
    """A defect visible at the clock refers to a record the servers show at the clock."""
    for kind, block in manifest["defects"].items():
        system, entity = block["system"], block["entity"]
        state = world.state(system, entity)
        if entity == "Customer":
            keys = {f"{r}:{i}" for r, i in state.select("_realm", "Id").iter_rows()}
        else:
            keys = set(state["Id" if system == "crm" else "id"].to_list())
        for record in block["records"]:
            if parse_ts(record["visible_at"]) <= world.clock:
                assert record["id"] in keys, (kind, record)


def test_duplicates_recomputed(world, manifest, horizon):
    entries = world.state("time", "time_entries", as_of=horizon).with_columns(
        pl.col("user").struct.field("id").alias("uid"), pl.col("project").struct.field("id").alias("pid")
    )
    keys = ["uid", "pid", "spent_date", "hours", "notes"]
    later = (
        entries.sort("id").with_columns(pl.int_range(pl.len()).over(keys).alias("n")).filter(pl.col("n") > 0)
    )
    assert set(later["id"].to_list()) == _ids(manifest, "duplicate_time_entry")


def test_invalid_hours_recomputed(world, manifest, horizon):
    entries = world.state("time", "time_entries", as_of=horizon).with_columns(
        pl.col("user").struct.field("id").alias("uid")
    )
    flagged = entries.with_columns(pl.col("hours").sum().over("uid", "spent_date").alias("day")).filter(
        (pl.col("hours") <= 0) | (pl.col("day") > 24)
    )
    assert set(flagged["id"].to_list()) == _ids(manifest, "invalid_hours")


def test_unknown_employees_recomputed(world, manifest, horizon):
    hr = {m.lower() for m in world.state("hr", "employees", as_of=horizon)["email"].to_list()}
    users = world.state("time", "users", as_of=horizon)
    strangers = {uid for uid, mail in users.select("id", "email").iter_rows() if mail.lower() not in hr}
    assert strangers == _ids(manifest, "unknown_employee")


def test_project_codes_recomputed(world, manifest, horizon):
    psa = set(world.state("psa", "workspaces", as_of=horizon)["project_code"].to_list())
    normal = {_norm_code(c) for c in psa}
    projects = world.state("time", "projects", as_of=horizon).select("id", "code")
    variants = {pid for pid, code in projects.iter_rows() if code not in psa and _norm_code(code) in normal}
    unknown_projects = {pid for pid, code in projects.iter_rows() if _norm_code(code) not in normal}
    assert variants == _ids(manifest, "project_code_variant")
    entries = world.state("time", "time_entries", as_of=horizon)
    on_unknown = entries.filter(pl.col("project").struct.field("id").is_in(list(unknown_projects)))
    assert set(on_unknown["id"].to_list()) == _ids(manifest, "unknown_project")


def test_rate_card_overlaps_recomputed(world, manifest, horizon):
    versions = world.state("psa", "rate_card_versions", as_of=horizon)
    far = "9999-12-31"
    rows = versions.select("id", "rate_card_id", "role", "effective_from", "effective_to").rows()
    overlapping = set()
    for a in rows:
        for b in rows:
            same_role = a[0] < b[0] and a[1:3] == b[1:3]
            if same_role and a[3] <= (b[4] or far) and b[3] <= (a[4] or far):
                overlapping |= {a[0], b[0]}
    assert overlapping == _ids(manifest, "rate_card_overlap")


def test_billable_never_approved_recomputed(world, manifest, horizon):
    holidays = world.state("hr", "holidays", as_of=horizon)
    by_entity: dict[str, set[str]] = {}
    for entity, day in holidays.select("legal_entity", "date").iter_rows():
        by_entity.setdefault(entity, set()).add(day)
    employees = world.state("hr", "employees", as_of=horizon)
    entity_of = {m.lower(): e for m, e in employees.select("email", "legal_entity").iter_rows()}
    users = world.state("time", "users", as_of=horizon)
    user_entity = {uid: entity_of.get(mail.lower()) for uid, mail in users.select("id", "email").iter_rows()}
    entries = world.state("time", "time_entries", as_of=horizon).filter(
        pl.col("billable") & (pl.col("approval_status") != "approved")
    )
    late = set()
    for eid, spent, user in entries.select("id", "spent_date", "user").iter_rows():
        closed = by_entity.get(user_entity[user["id"]], set())
        day, counted = date.fromisoformat(spent), 0
        while counted < 5:
            day += timedelta(days=1)
            if day.weekday() < 5 and day.isoformat() not in closed:
                counted += 1
        deadline = datetime(day.year, day.month, day.day, tzinfo=horizon.tzinfo) + timedelta(days=1)
        if deadline <= horizon:
            late.add(eid)
    assert late == _ids(manifest, "billable_never_approved")


def test_time_entries_reference_existing_users_and_projects(world):
    entries = world.state("time", "time_entries")
    users = set(world.state("time", "users")["id"].to_list())
    projects = set(world.state("time", "projects")["id"].to_list())
    clients = set(world.state("time", "clients")["id"].to_list())
    assert set(entries["user"].struct.field("id").to_list()) <= users
    assert set(entries["project"].struct.field("id").to_list()) <= projects
    assert set(entries["client"].struct.field("id").to_list()) <= clients


def test_invoices_link_to_time_activities_and_add_up(world):
    activities = world.state("erp", "TimeActivity")
    known = {(r, i) for r, i in activities.select("_realm", "Id").iter_rows()}
    billed = {
        (r, i)
        for r, i, s in activities.select("_realm", "Id", "BillableStatus").iter_rows()
        if s == "HasBeenBilled"
    }
    invoices = world.state("erp", "Invoice")
    assert invoices.height > 0
    linked = set()
    for realm, total, balance, lines in invoices.select("_realm", "TotalAmt", "Balance", "Line").iter_rows():
        assert round(sum(line["Amount"] for line in lines), 2) == total
        assert 0 <= balance <= total
        for line in lines:
            detail = line["SalesItemLineDetail"]
            assert round(detail["Qty"] * detail["UnitPrice"], 2) == line["Amount"]
            assert round(line["Amount"], 2) == line["Amount"]
            for link in line["LinkedTxn"]:
                assert link["TxnType"] == "TimeActivity"
                assert (realm, link["TxnId"]) in known
                linked.add((realm, link["TxnId"]))
    assert linked == billed
    customers = {(r, i) for r, i in world.state("erp", "Customer").select("_realm", "Id").iter_rows()}
    for realm, ref in invoices.select("_realm", "CustomerRef").iter_rows():
        assert (realm, ref["value"]) in customers


def test_payments_link_to_invoices_and_balances_follow(world, horizon):
    invoices = world.state("erp", "Invoice", as_of=horizon)
    totals = {
        (r, i): (t, b) for r, i, t, b in invoices.select("_realm", "Id", "TotalAmt", "Balance").iter_rows()
    }
    paid: dict[tuple[str, str], float] = {}
    payments = world.state("erp", "Payment", as_of=horizon)
    assert payments.height > 0
    for realm, amount, lines in payments.select("_realm", "TotalAmt", "Line").iter_rows():
        assert round(sum(line["Amount"] for line in lines), 2) == amount
        for line in lines:
            for link in line["LinkedTxn"]:
                assert (realm, link["TxnId"]) in totals
                paid[(realm, link["TxnId"])] = paid.get((realm, link["TxnId"]), 0.0) + line["Amount"]
    for key, (total, balance) in totals.items():
        assert round(total - paid.get(key, 0.0), 2) == balance


def test_time_activities_trace_back_to_harvest(world, horizon):
    entries = set(world.state("time", "time_entries", as_of=horizon)["id"].to_list())
    for description in world.state("erp", "TimeActivity")["Description"].to_list():
        assert description.startswith("harvest:")
        assert int(description.split()[0].split(":")[1]) in entries


def test_client_customers_carry_the_crm_id(world):
    accounts = set(world.state("crm", "Account")["Id"].to_list())
    customers = world.state("erp", "Customer")
    for job, notes, parent in customers.select("Job", "Notes", "ParentRef").iter_rows():
        if job:
            assert parent is not None
        elif notes:
            assert notes.startswith("sfdc:") and notes[5:] in accounts


def test_all_billing_methods_and_period_closes(world):
    methods = set(world.state("crm", "Contract")["BillingMethod__c"].to_list())
    assert methods == {
        "Time and Materials",
        "Fixed Fee - Milestones",
        "Fixed Fee - Percent Complete",
        "Retainer",
    }
    closes = world.state("erp", "period_closes")
    for period_end, closed_at in closes.select("period_end", "closed_at").iter_rows():
        assert date.fromisoformat(period_end) < parse_ts(closed_at).date()


def test_a_preset_too_big_for_this_machine_is_refused_up_front(tmp_path: Path, capsys) -> None:
    from sandbox.generate.presets import PRESETS, available_gib, estimated_peak_gib

    too_big = [name for name, preset in PRESETS.items() if estimated_peak_gib(preset) > 0.9 * available_gib()]
    if not too_big:
        pytest.skip("this machine has the memory for every preset")
    out = tmp_path / "w"
    assert cli_main(["--preset", too_big[0], "--seed", "1", "--out", str(out)]) == 2
    assert "GiB of memory to generate" in capsys.readouterr().err
    assert not out.exists()
