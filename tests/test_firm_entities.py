"""The firm declares its legal entities once (firm.legal_entities; a sandbox world's legal_entities),
and everything reads them from there: the ERP loader's realms, the warehouse's legal entities, the
firm's own client classed internal, the reverse ETL's realm. Checked end to end on a copy of the
hand-written world whose realm ids and entity names are none of the ones the repository knew
(the old seed had realms 9130350000000001-3 and "Billable Partners …" names), through the real
pipeline (sandbox over HTTP, loaders, dbt, sync); and a missing or invalid declaration is one line
and exit 2 from the real ingest runner.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from sandbox.world import World, write_meta
from tests.ingest_helpers import ROOT, copy_world, query
from tests.warehouse_helpers import built, rows

OLD_REALMS = {"9130350000000001": "4620816365001001", "9130350000000002": "4620816365002002"}
US_REALM, UK_REALM = OLD_REALMS.values()
# "BRIGHTLINE ADVISORY LLC" normalises to "brightline advisory", as the time tool's client
# "Brightline Advisory" does: that client is the firm itself.
NAMES = {"US": "BRIGHTLINE ADVISORY LLC", "UK": "Brightline Advisory (UK) Limited"}
# An ERP service item for the role of the hand-written world's approved open-month entry (9002), so
# the sync has a line to push; and a clock after that entry's approval (2025-02-12 09:00).
ANALYST_ITEM = {
    "_valid_from": "2024-10-01T12:00:00Z",
    "_realm": "9130350000000001",
    "Id": "5",
    "Name": "Analyst",
    "Type": "Service",
    "UnitPrice": 0,
    "Active": True,
}
CLOCK = "2025-02-13T12:00:00Z"


def rewritten_world(folder: Path) -> Path:
    """The hand-written world with other realm ids (world.json and every ERP record) and names."""
    world = copy_world(ROOT / "tests" / "worlds" / "handwritten", folder)
    with (world / "erp" / "Item.jsonl").open("a") as items:
        items.write(json.dumps(ANALYST_ITEM) + "\n")
    meta = json.loads((world / "world.json").read_text())
    meta["clock"] = CLOCK
    for entity in meta["legal_entities"]:
        entity["realm_id"] = OLD_REALMS[entity["realm_id"]]
        entity["name"] = NAMES[entity["code"]]
    write_meta(world, meta)
    for path in (world / "erp").glob("*.jsonl"):
        records = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        for record in records:
            record["_realm"] = OLD_REALMS[record["_realm"]]
        path.write_text("".join(json.dumps(record) + "\n" for record in records))
    everything = "".join(path.read_text() for path in world.rglob("*") if path.is_file())
    assert not [realm for realm in OLD_REALMS if realm in everything], "an old realm id is left"
    return world


def test_a_firm_with_other_realms_and_names_goes_through_the_whole_chain(tmp_path: Path) -> None:
    world = rewritten_world(tmp_path / "world")
    raw_db = tmp_path / "data" / "raw.duckdb"
    command = [sys.executable, "-m", "billable.pipeline", "--world", str(world), "--port", "0"]
    result = subprocess.run(
        [*command, "--raw-db", str(raw_db)], cwd=ROOT, capture_output=True, text=True, timeout=1200
    )
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    warehouse = tmp_path / "data" / "warehouse.duckdb"

    # The declaration landed as it is in world.json, and the ERP loaded the declared realms
    # (make pipeline no longer passes sources.quickbooks.realms).
    assert sorted(query(raw_db, "select code, name, currency, realm_id from raw_firm.legal_entities")) == [
        ("UK", NAMES["UK"], "GBP", UK_REALM),
        ("US", NAMES["US"], "USD", US_REALM),
    ]
    assert query(raw_db, "select distinct realm_id from raw_erp.invoices") == [(US_REALM,)]
    assert sorted(query(raw_db, "select realm_id from raw_erp.preferences")) == [(US_REALM,), (UK_REALM,)]

    # dim_legal_entities shows the declared names and realms, joined to the ERP's preferences.
    assert rows(
        warehouse,
        "select legal_entity, legal_entity_name, erp_realm_id, functional_currency, erp_home_currency_code "
        "from marts.dim_legal_entities order by 1",
    ) == [
        ("UK", NAMES["UK"], UK_REALM, "GBP", "GBP"),
        ("US", NAMES["US"], US_REALM, "USD", "USD"),
    ]

    # No ERP data is unmatched: every invoice, payment and time activity resolves to its entity.
    invoices = rows(warehouse, "select legal_entity, realm_id, count(*) from marts.fct_invoices group by all")
    assert invoices == [("US", US_REALM, query(raw_db, "select count(*) from raw_erp.invoices")[0][0])]
    payments = rows(warehouse, "select legal_entity, count(*) from marts.fct_payments group by all")
    assert payments == [("US", query(raw_db, "select count(*) from raw_erp.payment_lines")[0][0])]
    activities = query(raw_db, "select realm_id || ':' || id from raw_erp.time_activities order by 1")
    assert activities
    linked = rows(
        warehouse,
        "select erp_time_activity_key from marts.fct_time_entries "
        "where erp_time_activity_key is not null and legal_entity = 'US' and realm_id = ? order by 1",
        US_REALM,
    )
    assert linked == activities, "every ERP time activity is matched to its time entry"
    unmatched = rows(
        warehouse,
        "select source_system, source_name from intermediate.int_client_source_ids "
        "where match_method = 'unmatched'",
    )
    assert unmatched == []
    assert rows(
        warehouse, "select count(*) from marts.fct_exceptions where rule_code = 'CLIENT_UNMAPPED'"
    ) == [(0,)]

    # The time tool's "Brightline Advisory" is the firm itself: internal, not an unmatched client.
    assert rows(
        warehouse,
        "select is_internal, match_method from marts.dim_clients where client_name = 'Brightline Advisory'",
    ) == [(True, "internal")]

    # The reverse ETL pushed the approved open-month entry to the declared realm, and read only it.
    pushed = rows(
        warehouse,
        "select line_key, realm_id, legal_entity, line_status, is_in_erp, erp_record_key "
        "from marts.rpt_billable_lines where line_key = 'time:9002'",
    )
    assert [row[:5] for row in pushed] == [("time:9002", US_REALM, "US", "ready", True)], pushed
    assert pushed[0][5].startswith(f"{US_REALM}:")
    assert "1 acknowledged" in result.stdout
    # ... and the ERP holds it there (loaded back by the pipeline's ingest-erp step)
    in_erp = "select realm_id || ':' || id from raw_erp.time_activities where realm_id || ':' || id = ?"
    assert query(raw_db, in_erp, pushed[0][5]) == [(pushed[0][5],)]

    # A changed declaration takes effect at the next load: an entity with no ERP company yet.
    declared = [*World(world).legal_entities, {"code": "DE", "name": "Brightline GmbH", "currency": "EUR"}]
    firm = ingest_firm(raw_db, json.dumps(declared))
    assert firm.returncode == 0, firm.stdout + firm.stderr
    republished = built(raw_db, tmp_path / "again")
    assert rows(
        republished, "select legal_entity, erp_realm_id from marts.dim_legal_entities order by 1"
    ) == [
        ("DE", None),
        ("UK", UK_REALM),
        ("US", US_REALM),
    ]


def ingest_firm(raw_db: Path, declaration: str | None, sources: str = "firm", **extra: str):
    """The real ingest runner with this declaration in FIRM__LEGAL_ENTITIES (None: none at all)."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FIRM__", "SOURCES__"))}
    if declaration is not None:
        env["FIRM__LEGAL_ENTITIES"] = declaration
    command = [sys.executable, "-m", "ingestion", "--raw-db", str(raw_db), "--sources", sources]
    return subprocess.run(
        command, cwd=ROOT, env={**env, **extra}, capture_output=True, text=True, timeout=300
    )


US = {"code": "US", "name": "Acme Inc.", "country": "US", "currency": "USD", "realm_id": "111"}
UK = {"code": "UK", "name": "Acme Ltd", "country": "GB", "currency": "GBP", "realm_id": "222"}


@pytest.mark.parametrize(
    ("declaration", "sources", "extra", "expected"),
    [
        (None, "firm", {}, "firm.legal_entities is not set"),
        (None, "erp", {}, "firm.legal_entities is not set"),  # the ERP's realms come from it
        ('[{"code": "US"', "firm", {}, "firm.legal_entities is not valid JSON"),
        ("[]", "firm", {}, "firm.legal_entities must be a non-empty list"),
        (
            json.dumps([US, {**UK, "code": "US"}]),
            "firm",
            {},
            "firm.legal_entities[1].code 'US' is declared twice",
        ),
        (
            json.dumps([US, {**UK, "realm_id": "111"}]),
            "erp",
            {},
            "firm.legal_entities[1].realm_id '111' is declared",
        ),
        (
            json.dumps([{**US, "currency": "usd"}]),
            "firm",
            {},
            "firm.legal_entities[0].currency 'usd' is not a curr",
        ),
        (
            json.dumps([{**US, "currency": "US$"}]),
            "firm",
            {},
            "firm.legal_entities[0].currency 'US$' is not a curr",
        ),
        (json.dumps([{**US, "name": ""}]), "firm", {}, "firm.legal_entities[0].name is missing or empty"),
        (
            json.dumps([{**US, "realm": "1"}]),
            "firm",
            {},
            "firm.legal_entities[0] has unknown field(s) ['realm']",
        ),
        (json.dumps([{**US, "realm_id": None}]), "erp", {}, "firm.legal_entities declares no realm_id"),
        (
            json.dumps([US]),
            "erp",
            {"SOURCES__QUICKBOOKS__REALMS": '["111","999"]'},
            "sources.quickbooks.realms names realm(s) ['999'] that no legal entity",
        ),
    ],
)
def test_a_missing_or_invalid_declaration_is_one_line_and_exit_2(
    tmp_path: Path, declaration: str | None, sources: str, extra: dict[str, str], expected: str
) -> None:
    raw_db = tmp_path / "raw.duckdb"
    result = ingest_firm(raw_db, declaration, sources, **extra)
    assert result.returncode == 2, result.stdout + result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"ingest: {expected}"), result.stderr
    assert not raw_db.exists(), "nothing is loaded"


def test_a_valid_declaration_lands_and_replaces_the_previous_one(tmp_path: Path) -> None:
    raw_db = tmp_path / "raw.duckdb"
    # TOML gives a realm id as an integer when unquoted; an entity may have no realm yet.
    first = ingest_firm(
        raw_db, json.dumps([{**US, "realm_id": 111}, {**UK, "realm_id": None, "country": None}])
    )
    assert first.returncode == 0, first.stdout + first.stderr
    landed = "select code, name, country, currency, realm_id from raw_firm.legal_entities order by code"
    assert query(raw_db, landed) == [
        ("UK", "Acme Ltd", None, "GBP", None),
        ("US", "Acme Inc.", "US", "USD", "111"),
    ]
    second = ingest_firm(raw_db, json.dumps([{**US, "name": "Acme Holdings Inc."}]))
    assert second.returncode == 0, second.stdout + second.stderr
    assert query(raw_db, landed) == [("US", "Acme Holdings Inc.", "US", "USD", "111")]
