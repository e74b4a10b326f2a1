"""The QuickBooks (ERP) source against the sandbox over HTTP, through the real runner, into DuckDB.

Every realm's records land exactly once with money to the cent; a re-run adds nothing beyond the
cursor lookback; a pushed TimeActivity lands, is billed at month end and lands again as billed;
5xx and throttling change nothing; a changed type is refused; a dead realm fails alone.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import timedelta
from pathlib import Path

import duckdb
import polars as pl
import pyarrow as pa
import pytest
import requests

from benchmarks import bare_clients as pagers
from billable.sandbox_process import running_sandbox
from ingestion.http import make_client
from ingestion.quickbooks.query import query_pages
from ingestion.quickbooks.tables import ENTITIES
from sandbox.world import World

ROOT = Path(__file__).resolve().parent.parent
HEADERS = {"Authorization": "Bearer test-token", "Accept": "application/json"}
PAGE_SIZE = 10  # small, so every entity of the tiny world takes several pages
LOOKBACK = timedelta(minutes=5)
# QuickBooks entity → raw table and its key within a realm
TABLES = {
    "Customer": ("customers", ("Id",)),
    "Employee": ("employees", ("Id",)),
    "Item": ("items", ("Id",)),
    "ExchangeRate": ("exchange_rates", ("SourceCurrencyCode", "TargetCurrencyCode", "AsOfDate")),
    "TimeActivity": ("time_activities", ("Id",)),
    "Invoice": ("invoices", ("Id",)),
    "Payment": ("payments", ("Id",)),
}
COLUMN = {
    "Id": "id",
    "SourceCurrencyCode": "source_currency_code",
    "TargetCurrencyCode": "target_currency_code",
    "AsOfDate": "as_of_date",
}


@pytest.fixture(scope="module")
def tiny_world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("qbo") / "tiny"
    result = run("sandbox", "generate", "--preset", "tiny", "--seed", "5", "--out", str(out))
    assert result.returncode == 0, result.stderr
    return out


def run(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=180
    )


def ingest(
    base_url: str, world: Path, raw_db: Path, realms: list[str] | None = None, page_size: int = PAGE_SIZE
) -> subprocess.CompletedProcess:
    env = {
        **os.environ,
        "SOURCES__QUICKBOOKS__BASE_URL": base_url,
        "SOURCES__QUICKBOOKS__ACCESS_TOKEN": "test-token",
        "SOURCES__QUICKBOOKS__REALMS": json.dumps(realms or list(World(world).realms)),
        "SOURCES__QUICKBOOKS__PAGE_SIZE": str(page_size),
        "RUNTIME__REQUEST_BACKOFF_FACTOR": "0.1",
        "RUNTIME__REQUEST_MAX_RETRY_DELAY": "2",
    }
    return run("ingestion", "--sources", "erp", "--raw-db", str(raw_db), env=env)


def query(raw_db: Path, sql: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(raw_db), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


def keys(raw_db: Path, entity: str) -> list[tuple]:
    table, key = TABLES[entity]
    columns = ", ".join(["realm_id", *(COLUMN[name] for name in key)])
    return sorted(query(raw_db, f"select {columns} from raw_erp.{table}"))


def world_keys(world: World, entity: str) -> list[tuple]:
    state = world.state("erp", entity)
    return sorted(state.select(["_realm", *TABLES[entity][1]]).rows())


def assert_everything_landed_once(world: World, raw_db: Path) -> None:
    for entity in TABLES:
        landed = keys(raw_db, entity)
        assert len(landed) == len(set(landed)), f"{entity}: duplicate rows"
        assert landed == world_keys(world, entity), f"{entity}: landed rows differ from the world"
    invoices = world.state("erp", "Invoice")
    lines = invoices.select("_realm", "Id", pl.col("Line")).explode("Line").drop_nulls("Line")
    linked = lines.select("_realm", pl.col("Line").struct.field("LinkedTxn").alias("txn")).explode("txn")
    expected_rows = sum(max(1, len(line["LinkedTxn"] or [])) for line in lines["Line"].to_list())
    assert query(raw_db, "select count(*) from raw_erp.invoice_lines")[0][0] == expected_rows
    assert (
        query(
            raw_db,
            "select count(distinct (realm_id, invoice_id, line_index)) from raw_erp.invoice_lines",
        )[0][0]
        == lines.height
    )
    expected_ta = sorted(
        (realm, txn["TxnId"])
        for realm, txn in linked.rows()
        if txn is not None and txn["TxnType"] == "TimeActivity"
    )
    assert expected_ta and expected_ta == sorted(
        query(
            raw_db,
            "select realm_id, linked_txn_id from raw_erp.invoice_lines "
            "where linked_txn_type = 'TimeActivity'",
        )
    )
    for entity, table in (("Invoice", "invoices"), ("Payment", "payments")):
        expected = dict(world.state("erp", entity).group_by("_realm").agg(pl.col("TotalAmt").sum()).rows())
        landed = dict(query(raw_db, f"select realm_id, sum(total_amt) from raw_erp.{table} group by 1"))
        assert landed.keys() == expected.keys()
        for realm, total in expected.items():
            assert round(landed[realm], 2) == round(total, 2), f"{entity} {realm}: {landed[realm]} != {total}"
    line_totals = dict(query(raw_db, "select realm_id, sum(amount) from raw_erp.invoice_lines group by 1"))
    for realm, total in lines.group_by("_realm").agg(pl.col("Line").struct.field("Amount").sum()).rows():
        assert round(line_totals[realm], 2) == round(total, 2)
    homes = {realm: entity["currency"] for realm, entity in world.realms.items()}
    assert dict(query(raw_db, "select realm_id, home_currency from raw_erp.preferences")) == homes
    # what each load saw of the close date, stamped with the ERP's clock (the warehouse's "now")
    clock = world.clock.strftime("%Y-%m-%dT%H:%M:%SZ")
    seen = query(raw_db, "select distinct realm_id, server_time from raw_erp.preferences_history")
    assert sorted(seen) == sorted((realm, clock) for realm in homes)


def assert_matches_served(base_url: str, realms: list[str], raw_db: Path) -> None:
    """Every record the ERP serves now (history and live writes) landed once, in its current version."""
    for entity, (table, key) in TABLES.items():
        served = sorted(
            (realm, *(record[name] for name in key), (record.get("MetaData") or {}).get("LastUpdatedTime"))
            for realm in realms
            for record in pagers.quickbooks(base_url, realm, entity)
        )
        columns = ", ".join(["realm_id", *(COLUMN[name] for name in key), "meta_data__last_updated_time"])
        assert sorted(query(raw_db, f"select {columns} from raw_erp.{table}")) == served, entity


def last_run_rows(raw_db: Path) -> dict[str, int]:
    return dict(
        query(
            raw_db,
            "select table_name, rows from ops.load_log where source = 'erp' and table_name is not null "
            "and run_id = (select max(run_id) from ops.load_log)",
        )
    )


def test_every_record_lands_once_and_a_rerun_adds_only_the_lookback(tiny_world: Path, tmp_path: Path) -> None:
    world, raw_db = World(tiny_world), tmp_path / "raw.duckdb"
    with running_sandbox(tiny_world) as base_url:
        first = ingest(base_url, tiny_world, raw_db)
        assert first.returncode == 0, first.stdout + first.stderr
        assert_everything_landed_once(world, raw_db)
        counts = {table: len(keys(raw_db, entity)) for entity, (table, _) in TABLES.items()}

        second = ingest(base_url, tiny_world, raw_db)
        assert second.returncode == 0, second.stdout + second.stderr
    assert_everything_landed_once(world, raw_db)
    assert {table: len(keys(raw_db, entity)) for entity, (table, _) in TABLES.items()} == counts
    # The re-run asks each (entity, realm) only for what changed since its cursor minus the lookback.
    reloaded = last_run_rows(raw_db)
    for entity, (table, _) in TABLES.items():
        state = world.state("erp", entity)
        newest = state.group_by("_realm").agg(pl.col("_updated_at").max().alias("newest"))
        within = state.join(newest, on="_realm").filter(pl.col("_updated_at") > pl.col("newest") - LOOKBACK)
        assert reloaded.get(table, 0) == within.height, f"{table}: re-run reloaded {reloaded.get(table)}"


def post(base_url: str, path: str, body: dict) -> dict:
    response = requests.post(f"{base_url}{path}", json=body, headers=HEADERS, timeout=30)
    assert response.ok, response.text
    return response.json()


def test_pushed_time_is_billed_and_a_shrunk_invoice_leaves_no_stale_lines(
    tiny_world: Path, tmp_path: Path
) -> None:
    path = Path(shutil.copytree(tiny_world, tmp_path / "world"))
    world, raw_db = World(path), tmp_path / "raw.duckdb"
    realm = next(iter(world.realms))
    clock = world.clock
    invoices = world.read("erp", "Invoice")
    shrunk = (
        world.state("erp", "Invoice")
        .filter((pl.col("_realm") == realm) & (pl.col("Line").list.len() >= 3))
        .row(0, named=True)
    )
    with running_sandbox(path) as base_url:
        assert ingest(base_url, path, raw_db).returncode == 0
        # A correction after the first load: the invoice keeps only its first line.
        version = {k: v for k, v in shrunk.items() if not k.startswith("_") or k == "_realm"}
        version.update(Line=shrunk["Line"][:1], TotalAmt=shrunk["Line"][0]["Amount"], _valid_from=clock)
        version["_deleted"] = False
        row = pl.DataFrame([version], schema={**invoices.schema})
        invoices.vstack(row.select(invoices.columns)).write_parquet(world.entity_file("erp", "Invoice"))
        world.set_clock(clock + timedelta(hours=1))

        customers = world.state("erp", "Customer").filter((pl.col("_realm") == realm) & pl.col("Job"))
        employee = world.state("erp", "Employee").filter(pl.col("_realm") == realm)["Id"][0]
        item = world.state("erp", "Item").filter(pl.col("_realm") == realm)["Id"][0]
        pushed = post(
            base_url,
            f"/v3/company/{realm}/timeactivity?requestid=test-push-1",
            {
                "NameOf": "Employee",
                "EmployeeRef": {"value": employee},
                "CustomerRef": {"value": customers["Id"][0]},
                "ItemRef": {"value": item},
                "BillableStatus": "Billable",
                "HourlyRate": 200,
                "Hours": 2,
                "Minutes": 30,
                "Description": "harvest:999999 pushed by the test",
            },
        )["TimeActivity"]
        assert ingest(base_url, path, raw_db).returncode == 0
        ta = (
            "select billable_status, hours, minutes from raw_erp.time_activities "
            "where realm_id = ? and id = ?"
        )
        assert query(raw_db, ta, realm, pushed["Id"]) == [("Billable", 2, 30)]
        assert query(
            raw_db,
            "select line_index from raw_erp.invoice_lines where realm_id = ? and invoice_id = ?",
            realm,
            shrunk["Id"],
        ) == [(0,)]
        assert query(
            raw_db,
            "select total_amt from raw_erp.invoices where realm_id = ? and id = ?",
            realm,
            shrunk["Id"],
        ) == [(shrunk["Line"][0]["Amount"],)]

        advanced = run("sandbox", "advance", "--world", str(path), "--days", "31")
        assert advanced.returncode == 0, advanced.stderr
        third = ingest(base_url, path, raw_db)
        assert third.returncode == 0, third.stdout + third.stderr
        assert query(raw_db, ta, realm, pushed["Id"]) == [("HasBeenBilled", 2, 30)]
        billed = query(
            raw_db,
            "select invoice_id, amount from raw_erp.invoice_lines where realm_id = ? and linked_txn_id = ? "
            "and linked_txn_type = 'TimeActivity'",
            realm,
            pushed["Id"],
        )
        assert len(billed) == 1 and billed[0][1] == 500.0
        invoice = query(
            raw_db,
            "select i.total_amt, sum(l.amount) from raw_erp.invoices i join raw_erp.invoice_lines l "
            "on l.realm_id = i.realm_id and l.invoice_id = i.id where i.realm_id = ? and i.id = ? group by 1",
            realm,
            billed[0][0],
        )
        assert len(invoice) == 1 and round(invoice[0][0], 2) == round(invoice[0][1], 2)
        assert_matches_served(base_url, list(world.realms), raw_db)


def test_errors_and_throttling_change_nothing(tiny_world: Path, tmp_path: Path) -> None:
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(tiny_world, flags=["--error-rate", "0.3", "--rate-limit"]) as base_url:
        post(base_url, "/_sandbox/faults", {"limits": {"quickbooks": {"requests": 2, "window_s": 1}}})
        result = ingest(base_url, tiny_world, raw_db, page_size=100)  # fewer requests: retries are slow
        assert result.returncode == 0, result.stdout + result.stderr
        injected = requests.get(f"{base_url}/_sandbox/faults/log", headers=HEADERS, timeout=30).json()
    faults = {entry["fault"] for entry in injected["entries"]}
    assert {"rate_limit", "server_error"} <= faults, f"the loader should have met both faults, met {faults}"
    assert_everything_landed_once(World(tiny_world), raw_db)


def test_a_changed_type_is_refused_and_nothing_of_the_table_lands(tiny_world: Path, tmp_path: Path) -> None:
    raw_db = tmp_path / "raw.duckdb"
    with running_sandbox(tiny_world, flags=["--drift-from", "2026-01-01"]) as base_url:
        result = ingest(base_url, tiny_world, raw_db)
    assert result.returncode == 1, result.stdout + result.stderr
    message = query(raw_db, "select error from ops.load_log where source = 'erp' and status = 'failed'")[0][0]
    assert message.startswith(
        "SchemaChangeRefused: table time_activities: column Hours changed type from number to string"
    )
    tables = query(raw_db, "select table_name from information_schema.tables where table_schema = 'raw_erp'")
    assert ("time_activities",) not in tables


def test_a_dead_realm_fails_alone_naming_it_while_the_other_realms_load(
    tiny_world: Path, tmp_path: Path
) -> None:
    raw_db = tmp_path / "raw.duckdb"
    dead = "9130359999999999"
    healthy = list(World(tiny_world).realms)
    with running_sandbox(tiny_world) as base_url:
        result = ingest(base_url, tiny_world, raw_db, realms=[*healthy, dead])
        assert result.returncode == 1, result.stdout + result.stderr
        failed = query(raw_db, "select error from ops.load_log where source = 'erp' and status = 'failed'")
        assert len(failed) == 1, failed  # reported once, not once per entity
        message = failed[0][0]
        assert message.startswith(f"RealmUnavailable: QuickBooks realm {dead}:"), message
        assert "HTTP 403" in message and "not connected" in message
        # The healthy realms loaded in full; the dead one has no rows and no cursor moved for it.
        assert_matches_served(base_url, healthy, raw_db)
        assert query(raw_db, f"select count(*) from raw_erp.time_activities where realm_id = '{dead}'") == [
            (0,)
        ]
        # Once the realm is dropped from the config (or back), the next run succeeds and adds nothing.
        again = ingest(base_url, tiny_world, raw_db, realms=healthy)
        assert again.returncode == 0, again.stdout + again.stderr
        assert_matches_served(base_url, healthy, raw_db)


def test_entities_without_lines_take_the_typed_path_and_land_as_the_python_path_would(
    tiny_world: Path,
) -> None:
    """Over HTTP, in pages of 50: every page of TimeActivity, Customer, Employee, Item and
    ExchangeRate is typed by Arrow (stamps moved to UTC column-wise) and gives exactly the rows of
    the record-by-record conversion of the same pages."""
    typed_pages_seen = 0
    with running_sandbox(tiny_world) as base_url:
        client = make_client(base_url, "sandbox-token")
        for realm in sorted(World(tiny_world).realms):
            for entity in (entity for entity in ENTITIES if not entity.lines):
                typed = list(query_pages(client, realm, entity.name, None, 50, entity.spec(realm)))
                parsed = list(query_pages(client, realm, entity.name, None, 50))
                pages = [page for page in typed if len(page)]
                assert all(isinstance(page, pa.StructArray) for page in pages), (realm, entity.name)
                typed_pages_seen += len(pages)
                spec = entity.spec(realm)
                via_python = [spec.convert(page, "quickbooks")[0] for page in parsed if page]
                via_arrow = [spec.from_arrow(page) for page in pages]
                if via_python:
                    assert pa.concat_tables(via_arrow).equals(pa.concat_tables(via_python)), entity.name
                else:
                    assert not via_arrow
    assert typed_pages_seen > 10
