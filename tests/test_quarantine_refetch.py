"""Quarantined records are fetched again once the source is fixed (issue 13, fault 2).

Over the real sandbox over HTTP with the real runner and a real DuckDB: the source serves some
records malformed, a load quarantines them, the fault is switched off (the source is fixed) and
the next load lands every one of them, by key or, without a readable key, by listing them again;
the quarantine then shows none outstanding.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import dlt
import duckdb
import orjson
import pytest
import requests

from billable.sandbox_process import running_sandbox
from ingestion.quickbooks import quickbooks
from sandbox.connection import connection_settings as sandbox_settings
from sandbox.world import World
from tests.ingest_helpers import generate_world, ingest, query
from tests.warehouse_helpers import build_models, rows

OUTSTANDING = "select count(*) from {schema}.quarantine where table_name = ? and resolved_at is null"


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(tmp_path_factory.mktemp("refetch") / "tiny")


@pytest.fixture(scope="module")
def sandbox(tiny: Path) -> str:
    with running_sandbox(tiny) as base_url:
        yield base_url


def set_faults(base_url: str, faults: dict | None) -> None:
    """Switch faults on (a dict) or all off (None), and start a fresh fault log."""
    if faults is None:
        requests.delete(f"{base_url}/_sandbox/faults", timeout=5).raise_for_status()
    else:
        requests.post(f"{base_url}/_sandbox/faults", json=faults, timeout=5).raise_for_status()


def fault_log(base_url: str) -> list[dict]:
    return requests.get(f"{base_url}/_sandbox/faults/log", timeout=5).json()["entries"]


def test_malformed_time_entries_land_once_harvest_is_fixed(sandbox: str, tiny: Path, tmp_path: Path) -> None:
    raw_db = tmp_path / "raw.duckdb"
    requests.delete(f"{sandbox}/_sandbox/faults/log", timeout=5)
    set_faults(sandbox, {"malformed_rate": 0.03})
    try:
        first = ingest(sandbox, tiny, raw_db, "time")
        log = fault_log(sandbox)
    finally:
        set_faults(sandbox, None)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    malformed = {key for entry in log if entry["fault"] == "malformed" for key in entry["ids"]}
    keyless = {key for entry in log if entry["fault"] == "malformed" for key in entry["missing_id"] or []}
    assert malformed and keyless, "the fault should have served records malformed, some without an id"

    quarantined = query(
        raw_db,
        "select record_key, payload from raw_time.quarantine where table_name = 'time_entries'",
    )
    assert len(quarantined) == len(malformed)
    assert sum(key is None for key, _ in quarantined) == len(keyless)
    # the served hours, as Harvest would have sent them without the fault ("7,5" -> 7.5)
    hours_of = {}
    keyless_hours = 0.0
    for key, payload in quarantined:
        record = orjson.loads(payload)
        hours = float(record["hours"].replace(",", "."))
        if key is None:
            keyless_hours += hours
        else:
            hours_of[int(key)] = hours
    missing = malformed - {key for (key,) in query(raw_db, "select id from raw_time.time_entries")}
    assert missing == malformed, "nothing malformed landed on the first load"
    outstanding = query(raw_db, OUTSTANDING.format(schema="raw_time"), "time_entries")[0][0]
    assert outstanding == len(malformed)
    assert warehouse_quarantine(raw_db, tmp_path / "wh_first") == (len(malformed), 0)
    print(
        f"first load: {len(malformed)} entries quarantined ({len(keyless)} without an id), "
        f"{sum(hours_of.values()) + keyless_hours:.2f} h"
    )

    second = ingest(sandbox, tiny, raw_db, "time")  # the source is fixed
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    landed = dict(
        query(
            raw_db,
            f"select id, hours from raw_time.time_entries where id in ({', '.join(map(str, malformed))})",
        )
    )
    still_missing = malformed - set(landed)
    missing_hours = sum(hours_of.get(key, 0.0) for key in still_missing)
    assert not still_missing, f"{len(still_missing)} entries ({missing_hours:.2f} h known) still missing"
    assert {key: landed[key] for key in hours_of} == hours_of
    assert sum(landed[key] for key in keyless) == pytest.approx(keyless_hours)
    assert query(raw_db, OUTSTANDING.format(schema="raw_time"), "time_entries")[0][0] == 0
    resolutions = dict(
        query(
            raw_db,
            "select resolution, count(*) from raw_time.quarantine "
            "where table_name = 'time_entries' group by 1",
        )
    )
    assert resolutions == {
        "landed": len(malformed) - len(keyless),
        "re-read: no longer served without a key": len(keyless),
    }
    assert query(
        raw_db,
        "select count(*) from raw_time.quarantine where resolved_by_load is null and resolved_at is not null",
    ) == [(0,)]
    assert "quarantine time_entries: 0 outstanding; resolved this run:" in second.stdout
    assert warehouse_quarantine(raw_db, tmp_path / "wh_second") == (0, len(malformed))
    # a record whose key landed is not fetched or resolved again
    third = ingest(sandbox, tiny, raw_db, "time")
    assert third.returncode == 0
    assert "quarantine time_entries" not in third.stdout
    twice = "select count(*) from (select id from raw_time.time_entries group by id having count(*) > 1)"
    assert query(raw_db, twice) == [(0,)]


def warehouse_quarantine(raw_db: Path, folder: Path) -> tuple[int, int]:
    """(outstanding, resolved) time-entry records as the warehouse's quarantine model shows them."""
    build_db = build_models(raw_db, folder, "stg_ops__quarantine")
    return rows(
        build_db,
        "select count(*) filter (where is_outstanding), count(resolved_at) "
        "from staging.stg_ops__quarantine where table_name = 'time_entries'",
    )[0]


def quickbooks_records(base_url: str, realm: str, entity: str, ids: list[str]) -> list[dict]:
    listed = ", ".join(f"'{key}'" for key in ids)
    response = requests.get(
        f"{base_url}/v3/company/{realm}/query",
        params={"query": f"SELECT * FROM {entity} WHERE Id IN ({listed}) MAXRESULTS 1000"},
        headers={"Authorization": "Bearer test"},
        timeout=10,
    )
    response.raise_for_status()
    return response.json()["QueryResponse"][entity]


def test_quarantined_quickbooks_records_are_requested_by_id(sandbox: str, tiny: Path, tmp_path: Path) -> None:
    """The sandbox malforms only Harvest, so the raw database is put in the state a malformed ERP
    load leaves: records missing from their tables, quarantined (as rows written before this fix,
    without the resolution columns), and the cursor past them. The next load must fetch them by
    Id, land them (invoice lines too) and resolve the quarantine; an Id QuickBooks does not have
    is resolved as deleted upstream."""
    raw_db = tmp_path / "raw.duckdb"
    set_faults(sandbox, None)
    first = ingest(sandbox, tiny, raw_db, "erp")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    (realm,) = query(
        raw_db, "select realm_id from raw_erp.time_activities group by 1 order by count(*) desc limit 1"
    )[0]
    # records the cursor's 5-minute lookback does not read again
    recent = "(select max(meta_data__last_updated_time) from raw_erp.{table} where realm_id = ?)"
    victims = {}
    for table, entity in (("time_activities", "TimeActivity"), ("invoices", "Invoice")):
        ids = query(
            raw_db,
            f"select id from raw_erp.{table} where realm_id = ? and meta_data__last_updated_time::timestamptz"
            f" < {recent.format(table=table)}::timestamptz - interval 10 minute order by id limit 6",
            realm,
            realm,
        )
        victims[(table, entity)] = [key for (key,) in ids]
    assert all(len(ids) >= 2 for ids in victims.values()), victims
    hours = dict(
        query(
            raw_db,
            "select id, hours * 60 + minutes from raw_erp.time_activities where realm_id = ? and id in "
            f"({', '.join(repr(key) for key in victims[('time_activities', 'TimeActivity')])})",
            realm,
        )
    )
    lines = query(raw_db, "select count(*) from raw_erp.invoice_lines where realm_id = ?", realm)[0][0]
    rows = []
    for (table, entity), ids in victims.items():
        for record in quickbooks_records(sandbox, realm, entity, ids) + (
            [{"Id": "987654"}] if entity == "TimeActivity" else []
        ):
            broken = {**record, "TotalAmt": "12,5"} if entity == "Invoice" else {**record, "Hours": "7,5"}
            payload = orjson.dumps(broken, option=orjson.OPT_SORT_KEYS).decode()
            qid = hashlib.sha256(f"{table}|{payload}".encode()).hexdigest()[:32]
            rows.append((qid, "quickbooks", table, record["Id"], "malformed", payload, realm))
    with duckdb.connect(str(raw_db)) as connection:
        for (table, _), ids in victims.items():
            listed = ", ".join(f"'{key}'" for key in ids)
            connection.execute(
                f"delete from raw_erp.{table} where realm_id = ? and id in ({listed})", [realm]
            )
            if table == "invoices":
                connection.execute(
                    f"delete from raw_erp.invoice_lines where realm_id = ? and invoice_id in ({listed})",
                    [realm],
                )
        # as an older loader left it: no resolution columns (the current one creates it, empty, tracked)
        connection.execute("drop table if exists raw_erp.quarantine")
        connection.execute(
            "create table raw_erp.quarantine (quarantine_id varchar, source varchar, table_name varchar, "
            "record_key varchar, reason varchar, payload varchar, context__realm_id varchar, "
            "quarantined_at timestamptz default now(), _dlt_load_id varchar default 'before', "
            "_dlt_id varchar default gen_random_uuid()::varchar)"
        )
        connection.executemany(
            "insert into raw_erp.quarantine (quarantine_id, source, table_name, record_key, reason, payload, "
            "context__realm_id) values (?, ?, ?, ?, ?, ?, ?)",
            rows,
        )
    missing = len(hours) + len(victims[("invoices", "Invoice")])

    second = ingest(sandbox, tiny, raw_db, "erp")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    landed = dict(
        query(
            raw_db,
            "select id, hours * 60 + minutes from raw_erp.time_activities where realm_id = ? and id in "
            f"({', '.join(repr(key) for key in hours)})",
            realm,
        )
    )
    invoices = query(
        raw_db,
        "select count(*) from raw_erp.invoices where realm_id = ? and id in "
        f"({', '.join(repr(key) for key in victims[('invoices', 'Invoice')])})",
        realm,
    )[0][0]
    still_missing = missing - len(landed) - invoices
    lost_minutes = sum(minutes for key, minutes in hours.items() if key not in landed)
    print(
        f"quickbooks: {still_missing} of {missing} records still missing ({lost_minutes / 60:.2f} h of time)"
    )
    assert still_missing == 0, f"{still_missing} of {missing} quarantined records still missing"
    assert landed == hours
    assert (
        query(raw_db, "select count(*) from raw_erp.invoice_lines where realm_id = ?", realm)[0][0] == lines
    )
    assert query(raw_db, OUTSTANDING.format(schema="raw_erp"), "time_activities")[0][0] == 0
    assert query(raw_db, OUTSTANDING.format(schema="raw_erp"), "invoices")[0][0] == 0
    assert query(raw_db, "select resolution from raw_erp.quarantine where record_key = '987654'") == [
        ("deleted upstream: not found when asked for by key",)
    ]
    assert f"quarantine time_activities realm_id {realm}: 0 outstanding" in second.stdout


def lose_and_quarantine(
    raw_db: Path, schema: str, table: str, source: str, payloads: list[dict], key: str
) -> None:
    """Put the raw database in the state a malformed load leaves (as the rows written before this
    fix): these records missing from `table`, quarantined with the cursor already past them."""
    with duckdb.connect(str(raw_db)) as connection:
        listed = ", ".join(f"'{payload[key]}'" for payload in payloads)
        connection.execute(f"delete from {schema}.{table} where id in ({listed})")
        connection.execute(
            f"create table if not exists {schema}.quarantine (quarantine_id varchar, source varchar, "
            "table_name varchar, record_key varchar, reason varchar, payload varchar, "
            "quarantined_at timestamptz default now(), _dlt_load_id varchar default 'before', "
            "_dlt_id varchar default gen_random_uuid()::varchar)"
        )
        for payload in payloads:
            text = orjson.dumps(payload, option=orjson.OPT_SORT_KEYS).decode()
            qid = hashlib.sha256(f"{table}|{text}".encode()).hexdigest()[:32]
            # every column dlt requires given (a clean load now creates the table, empty)
            connection.execute(
                f"insert into {schema}.quarantine (quarantine_id, source, table_name, record_key, reason, "
                "payload, quarantined_at, _dlt_load_id, _dlt_id) "
                "values (?, ?, ?, ?, 'malformed', ?, now(), 'before', gen_random_uuid()::varchar)",
                [qid, source, table, str(payload[key]), text],
            )


def test_quarantined_salesforce_and_kantata_records_are_read_again(
    sandbox: str, tiny: Path, tmp_path: Path
) -> None:
    """Salesforce by id (`WHERE Id IN (...)`), and a keyless record by holding the cursor at its
    change stamp (within REREAD_WINDOW); Kantata by id (`only=`). Ids neither system has resolve as
    deleted upstream; both quarantines end with 0 outstanding."""
    raw_db = tmp_path / "raw.duckdb"
    set_faults(sandbox, None)
    first = ingest(sandbox, tiny, raw_db, "crm,psa")
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    # Salesforce: changes older than the cursor's lookback but within 35 days of the newest one
    opportunities = query(
        raw_db,
        "select id, system_modstamp, amount from raw_crm.opportunity where system_modstamp::timestamptz "
        "between (select max(system_modstamp::timestamptz) - interval 35 day from raw_crm.opportunity) "
        "and (select max(system_modstamp::timestamptz) - interval 10 minute from raw_crm.opportunity)",
    )
    stories = query(
        raw_db,
        "select id, updated_at, due_date from raw_psa.stories where updated_at::timestamptz < "
        "(select max(updated_at::timestamptz) - interval 10 minute from raw_psa.stories) order by id limit 5",
    )
    assert opportunities and stories
    unknown_opportunity = "006Dn0000009999QAM"
    lose_and_quarantine(
        raw_db,
        "raw_crm",
        "opportunity",
        "salesforce",
        [{"Id": key, "SystemModstamp": stamp, "Amount": "12,5"} for key, stamp, _ in opportunities]
        + [{"Id": unknown_opportunity, "SystemModstamp": opportunities[0][1], "Amount": 1}],
        "Id",
    )
    keyless = {"SystemModstamp": opportunities[0][1], "Amount": 7}  # no Id: cannot be asked for by key
    with duckdb.connect(str(raw_db)) as connection:
        text = orjson.dumps(keyless, option=orjson.OPT_SORT_KEYS).decode()
        connection.execute(
            "insert into raw_crm.quarantine (quarantine_id, source, table_name, record_key, reason, payload, "
            "quarantined_at, _dlt_load_id, _dlt_id) values ('keyless-opportunity', 'salesforce', "
            "'opportunity', null, 'missing Id', ?, now(), 'before', gen_random_uuid()::varchar)",
            [text],
        )
    lose_and_quarantine(
        raw_db,
        "raw_psa",
        "stories",
        "kantata",
        [{"id": key, "updated_at": stamp, "due_date": 20260101} for key, stamp, _ in stories]
        + [{"id": "99999999", "updated_at": "2026-01-01T00:00:00Z"}],
        "id",
    )

    second = ingest(sandbox, tiny, raw_db, "crm,psa")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert set(stories) <= set(query(raw_db, "select id, updated_at, due_date from raw_psa.stories"))
    back = query(raw_db, "select id, system_modstamp, amount from raw_crm.opportunity")
    assert set(opportunities) <= set(back), "every quarantined opportunity landed again, asked for by id"
    assert query(
        raw_db, f"{OUTSTANDING.format(schema='raw_crm')} and record_key is not null", "opportunity"
    ) == [(0,)]
    assert query(
        raw_db, "select resolution from raw_crm.quarantine where record_key = ?", unknown_opportunity
    ) == [("deleted upstream: not found when asked for by key",)]
    # the keyless row was quarantined before the cursor moved on: this run holds the cursor back at
    # its change stamp, the next re-reads from there
    assert query(raw_db, OUTSTANDING.format(schema="raw_crm"), "opportunity") == [(1,)]
    second = ingest(sandbox, tiny, raw_db, "crm,psa")
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert set(stories) <= set(query(raw_db, "select id, updated_at, due_date from raw_psa.stories"))
    assert query(raw_db, OUTSTANDING.format(schema="raw_crm"), "opportunity") == [(0,)]
    assert query(raw_db, OUTSTANDING.format(schema="raw_psa"), "stories") == [(0,)]
    assert query(raw_db, "select resolution from raw_psa.quarantine where record_key = '99999999'") == [
        ("deleted upstream: not found when asked for by key",)
    ]
    assert "quarantine opportunity: 0 outstanding; resolved this run: " in second.stdout
    assert dict(query(raw_db, "select resolution, count(*) from raw_crm.quarantine group by 1")) == {
        "landed": len(opportunities),
        "deleted upstream: not found when asked for by key": 1,
        "re-read from its change stamp: no longer served without a key": 1,
    }


def test_a_field_first_served_after_record_100_evolves_the_erp_table(
    sandbox: str, tiny: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Fault 9 over HTTP: the sandbox's drift adds `external_reference_v2` to records changed from
    2026-09-01, which is record ~145 of a realm's one page of 206 exchange rates. The real source,
    over HTTP, into DuckDB: the table evolves, nulls before, values after."""
    for name, value in sandbox_settings(sandbox, tiny).items():
        monkeypatch.setenv(name, value)
    realm = sorted(World(tiny).realms)[0]
    set_faults(sandbox, {"drift_from": "2026-09-01"})
    try:
        pipeline = dlt.pipeline(
            pipeline_name="drift_erp",
            destination=dlt.destinations.duckdb(str(tmp_path / "raw.duckdb")),
            dataset_name="raw_erp",
            pipelines_dir=str(tmp_path / "dlt"),
        )
        pipeline.run(quickbooks().with_resources(f"exchange_rates_{realm}"), loader_file_format="parquet")
    finally:
        set_faults(sandbox, None)
    rows = query(
        tmp_path / "raw.duckdb",
        "select meta_data__last_updated_time >= '2026-09-01', count(*), count(external_reference_v2) "
        "from raw_erp.exchange_rates group by 1 order by 1",
    )
    (before, earlier, none), (after, later, tagged) = rows
    assert (before, none, after) == (False, 0, True)
    assert earlier > 100 and tagged == later > 0
