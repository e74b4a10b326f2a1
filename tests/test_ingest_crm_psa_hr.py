"""Salesforce → raw_crm, Kantata → raw_psa and the payroll drop → raw_hr, against the real sandbox
over HTTP and a real DuckDB, through the real runner: completeness, incremental change, idempotent
HR snapshots, quarantined rows and a refused HR file."""

from __future__ import annotations

import json
from pathlib import Path

import polars as pl
import pytest

from billable.sandbox_process import running_sandbox
from ingestion.context import CURSOR_LOOKBACK
from sandbox import hr_drop
from sandbox.world import World, parse_ts
from tests.ingest_helpers import ROOT, advance, copy_world, generate_world, ingest, query

SOURCES = "crm,psa,hr"
# (system, entity, dataset.table, key, compared columns as world name → landed name)
API_TABLES = (
    ("crm", "User", "raw_crm.user", {"Id": "id", "Email": "email", "IsActive": "is_active"}),
    ("crm", "Account", "raw_crm.account", {"Id": "id", "Name": "name", "Type": "type"}),
    (
        "crm",
        "Opportunity",
        "raw_crm.opportunity",
        {"Id": "id", "StageName": "stage_name", "Amount": "amount", "CloseDate": "close_date"},
    ),
    (
        "crm",
        "Contract",
        "raw_crm.contract",
        {
            "Id": "id",
            "EndDate": "end_date",
            "ContractValue__c": "contract_value__c",
            "MonthlyFee__c": "monthly_fee__c",
            "Status": "status",
        },
    ),
    (
        "psa",
        "workspaces",
        "raw_psa.workspaces",
        {"id": "id", "budget_amount": "budget_amount", "status_changed_on": "status_changed_on"},
    ),
    ("psa", "stories", "raw_psa.stories", {"id": "id", "state": "state", "completed_on": "completed_on"}),
    ("psa", "assignments", "raw_psa.assignments", {"id": "id", "hours_per_week": "hours_per_week"}),
    ("psa", "rate_cards", "raw_psa.rate_cards", {"id": "id", "title": "title"}),
    (
        "psa",
        "rate_card_versions",
        "raw_psa.rate_card_versions",
        {"id": "id", "bill_rate": "bill_rate", "effective_to": "effective_to"},
    ),
)
HR_TABLES = {
    "employees": ("employee_id",),
    "cost_rates": ("employee_id", "effective_from"),
    "time_off": ("employee_id", "date"),
    "holidays": ("legal_entity", "date"),
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(tmp_path_factory.mktemp("crm_psa_hr") / "tiny")


@pytest.fixture
def world(tiny: Path, tmp_path: Path) -> Path:
    return copy_world(tiny, tmp_path / "world")


def run(base_url: str, world: Path, raw_db: Path, sources: str = SOURCES, ok: bool = True, **env: str):
    # Small Kantata pages, so every list of the tiny world spans several pages.
    result = ingest(base_url, world, raw_db, sources, **{"SOURCES__KANTATA__PER_PAGE": "40", **env})
    if ok:
        assert result.returncode == 0, result.stdout + result.stderr
    return result


def landed(raw_db: Path, table: str, columns: list[str]) -> pl.DataFrame:
    rows = query(raw_db, f"select {', '.join(columns)} from {table}")
    return pl.DataFrame(rows, schema=columns, orient="row")


def assert_api_matches_world(raw_db: Path, world: Path) -> None:
    """Every CRM and PSA record of the world's current state, exactly once, with current values."""
    state = World(world)
    for system, entity, table, columns in API_TABLES:
        expected = state.state(system, entity).select(list(columns)).rename(columns)
        actual = landed(raw_db, table, list(columns.values()))
        key = next(iter(columns.values()))
        assert actual[key].is_unique().all(), f"{table}: duplicated ids"
        assert sorted(actual[key]) == sorted(expected[key]), f"{table}: ids differ from the world"
        expected = expected.with_columns(pl.col(pl.Int64).cast(pl.Float64))
        assert actual.sort(key).equals(expected.sort(key)), f"{table}: values differ from the world"
    status = landed(raw_db, "raw_psa.workspaces", ["id", "status__message"]).sort("id")
    served = (
        state.state("psa", "workspaces").select("id", pl.col("status").struct.field("message")).sort("id")
    )
    assert status["status__message"].to_list() == served["message"].to_list()


def assert_hr_matches_drop(raw_db: Path, world: Path) -> None:
    """Every snapshot file in the drop landed row for row, keyed by (snapshot_date, key)."""
    drop = sorted((world / "hr_drop").glob("*.csv"))
    files = query(raw_db, "select file_name, kind, rows, quarantined_rows from raw_hr.files")
    assert sorted(name for name, *_ in files) == [path.name for path in drop]
    for table, key in HR_TABLES.items():
        per_file = dict(query(raw_db, f"select file_name, count(*) from raw_hr.{table} group by 1"))
        duplicates = query(
            raw_db,
            f"select count(*) from (select snapshot_date, {', '.join(key)} from raw_hr.{table} "
            "group by all having count(*) > 1)",
        )[0][0]
        assert duplicates == 0, f"raw_hr.{table}: duplicated (snapshot_date, key)"
        for path in drop:
            if path.name.startswith(f"{table}_"):
                csv_rows = pl.read_csv(path, infer_schema=False).height
                assert per_file.get(path.name, 0) == csv_rows, f"{path.name}: rows differ"


def table_counts(
    raw_db: Path, datasets: tuple[str, ...] = ("raw_crm", "raw_psa", "raw_hr")
) -> dict[str, int]:
    tables = [table for *_, table, _ in API_TABLES] + [f"raw_hr.{name}" for name in (*HR_TABLES, "files")]
    tables = [table for table in tables if table.split(".")[0] in datasets]
    return {table: query(raw_db, f"select count(*) from {table}")[0][0] for table in tables}


def test_every_record_lands_once_and_reruns_load_only_the_lookback(world: Path, tmp_path: Path) -> None:
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(world) as base_url:
        run(base_url, world, raw_db)
        assert_api_matches_world(raw_db, world)
        assert_hr_matches_drop(raw_db, world)
        before = table_counts(raw_db)
        loads_before = query(raw_db, "select count(distinct _dlt_load_id) from raw_hr.time_off")[0][0]

        run(base_url, world, raw_db)
        assert table_counts(raw_db) == before, "a re-run with nothing changed duplicated rows"
        assert_api_matches_world(raw_db, world)
        # Only records stamped inside the lookback before the stored cursor are asked for again.
        for table, stamp in (("raw_crm.contract", "system_modstamp"), ("raw_psa.stories", "updated_at")):
            rows = landed(raw_db, table, ["_dlt_load_id", stamp])
            latest = rows["_dlt_load_id"].max()
            newest = max(parse_ts(value.replace("+0000", "Z")) for value in rows[stamp])
            reloaded = rows.filter(pl.col("_dlt_load_id") == latest)[stamp]
            assert all(
                parse_ts(value.replace("+0000", "Z")) >= newest - CURSOR_LOOKBACK for value in reloaded
            )
        assert query(raw_db, "select count(distinct _dlt_load_id) from raw_hr.time_off")[0][0] == loads_before

        # CRM and PSA records change over the next weeks of this world; HR delivers daily files.
        previous = World(world).state("crm", "Contract").select("Id", "Status")
        advance(world, days=23)
        current = World(world).state("crm", "Contract").select("Id", "Status")
        changed = current.join(previous, on=["Id", "Status"], how="anti")
        assert changed.height, "contracts expire in this interval of the world"
        run(base_url, world, raw_db)
        assert_api_matches_world(raw_db, world)
        assert_hr_matches_drop(raw_db, world)
        for contract_id, status in changed.iter_rows():
            assert query(raw_db, "select status from raw_crm.contract where id = ?", contract_id) == [
                (status,)
            ]


def test_hr_resent_file_corrupt_rows_and_bad_header(world: Path, tmp_path: Path) -> None:
    raw_db = tmp_path / "raw.duckdb"
    drop = world / "hr_drop"
    with running_sandbox(world) as base_url:
        run(base_url, world, raw_db, "hr")
        before = table_counts(raw_db, ("raw_hr",))

        # Re-sent: the same name rewritten with the same content (a new modification time).
        resent = sorted(drop.glob("time_off_*.csv"))[-1]
        resent.write_bytes(resent.read_bytes())
        run(base_url, world, raw_db, "hr")
        assert table_counts(raw_db, ("raw_hr",)) == before, "a re-sent file must not add rows"

        # A new snapshot with bad rows: they are quarantined with their line, the others land.
        header = resent.read_text().splitlines()[0]
        assert header == "employee_id,date,hours,type"
        corrupt = drop / "time_off_2030-01-31.csv"
        corrupt.write_text(
            header
            + "\nE00001,2030-01-02,8.0,vacation"
            + '\nE00002,2030-01-03,"7,5",sick'
            + "\n,2030-01-04,8.0,vacation"
            + "\nE00003,2030-01-05,8.0"
            + "\nE00004,2030-02-30,4.0,other"
            + "\nE00005,2030-01-06,4.0,other\n"
        )
        # Far smaller than the time-off snapshot before it: loaded because the operator says so.
        run(base_url, world, raw_db, "hr", SOURCES__HR_DROP__ACCEPT_SHRINK=json.dumps([corrupt.name]))
        loaded = query(
            raw_db, "select employee_id from raw_hr.time_off where file_name = ? order by 1", corrupt.name
        )
        assert loaded == [("E00001",), ("E00005",)]
        quarantined = query(
            raw_db,
            "select record_key, reason, payload from raw_hr.quarantine "
            "where context__file_name = ? order by 1",
            corrupt.name,
        )
        assert [(key, payload) for key, _, payload in quarantined] == [
            ("E00002|2030-01-03", 'E00002,2030-01-03,"7,5",sick'),
            ("E00003|2030-01-05", "E00003,2030-01-05,8.0"),
            ("E00004|2030-02-30", "E00004,2030-02-30,4.0,other"),
            ("|2030-01-04", ",2030-01-04,8.0,vacation"),
        ]
        reasons = [reason for _, reason, _ in quarantined]
        assert reasons == [
            "hours '7,5' is not a number",
            "has 3 fields, expected 4",
            "date '2030-02-30' is not a YYYY-MM-DD date",
            "missing employee_id",
        ]
        assert query(
            raw_db, "select rows, quarantined_rows from raw_hr.files where file_name = ?", corrupt.name
        ) == [(6, 4)]
        run(base_url, world, raw_db, "hr")
        assert query(raw_db, "select count(*) from raw_hr.quarantine")[0][0] == 4, "quarantine replayed"

        # A file with an unexpected header fails the HR source, naming it; CRM and PSA still load.
        wrong = drop / "employees_2030-01-31.csv"
        wrong.write_text("emp_id,email\nE00001,a@example.com\n")
        failed = run(base_url, world, raw_db, SOURCES, ok=False)
        assert failed.returncode == 1
        assert "employees_2030-01-31.csv" in failed.stdout
        log = query(
            raw_db,
            "select source, status, error from ops.load_log "
            "where run_id = (select max(run_id) from ops.load_log)",
        )
        statuses = {source: status for source, status, _ in log}
        assert statuses == {"crm": "loaded", "psa": "loaded", "hr": "failed"}
        error = next(error for source, _, error in log if source == "hr")
        assert "employees_2030-01-31.csv" in error and "emp_id" in error and "employee_id" in error
        assert query(raw_db, "select count(*) from raw_crm.contract")[0][0] > 0


def test_handwritten_world_and_its_amendments(tmp_path: Path) -> None:
    world = copy_world(ROOT / "tests" / "worlds" / "handwritten", tmp_path / "world")
    hr_drop.deliver(World(world))  # the generator does this for generated worlds
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(world) as base_url:
        run(base_url, world, raw_db)
        assert_api_matches_world(raw_db, world)
        assert_hr_matches_drop(raw_db, world)
        assert query(
            raw_db,
            "select end_date, contract_value__c from raw_crm.contract where contract_number = '00000101'",
        ) == [("2025-03-31", 120000.0)]

        # 2025-02-26: the contract is amended, Contoso won, the workspace on hold.
        World(world).set_clock(parse_ts("2025-02-26T12:00:00Z"))
        run(base_url, world, raw_db)
        assert_api_matches_world(raw_db, world)
        assert query(
            raw_db,
            "select end_date, contract_value__c from raw_crm.contract where contract_number = '00000101'",
        ) == [("2025-06-30", 180000.0)]
        assert query(raw_db, "select type from raw_crm.account where name = 'Contoso Pharma'") == [
            ("Customer",)
        ]
        assert query(
            raw_db, "select status__message from raw_psa.workspaces where project_code = 'PRJ-101'"
        ) == [("On Hold",)]
        hourly = query(
            raw_db,
            "select snapshot_date::varchar, hourly_cost from raw_hr.cost_rates "
            "where employee_id = 'E00003' and effective_from = date '2025-01-01' order by 1",
        )
        assert hourly == [("2024-12-31", 57.5), ("2025-01-31", 57.5)]


def test_query_batches_and_pages_are_followed_to_the_end(tmp_path: Path) -> None:
    world = copy_world(ROOT / "tests" / "worlds" / "handwritten", tmp_path / "world")
    with (world / "crm" / "User.jsonl").open("a") as users:
        for n in range(450):  # 452 users: three Salesforce batches of at most 200
            user = {
                "_valid_from": f"2024-10-{1 + n % 28:02d}T10:{n % 60:02d}:00Z",
                "Id": f"0055g{n:013d}",
                "Username": f"user{n}@brightline.example",
                "Email": f"user{n}@brightline.example",
                "FirstName": "User",
                "LastName": str(n),
                "Name": f"User {n}",
                "IsActive": n % 3 > 0,
                "Title": "Consultant",
            }
            users.write(json.dumps(user) + "\n")
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(world) as base_url:
        run(
            base_url,
            world,
            raw_db,
            "crm,psa",
            SOURCES__SALESFORCE__BATCH_SIZE="200",
            SOURCES__KANTATA__PER_PAGE="1",
        )
        assert_api_matches_world(raw_db, world)
    assert query(raw_db, "select count(*) from raw_crm.user")[0][0] == 452
