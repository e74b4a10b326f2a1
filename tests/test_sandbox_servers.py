"""The sandbox servers over real HTTP: each dialect's paging, incremental filters, errors, faults,
the live ERP's writes and idempotency, the moving clock and billing runs (hand-written world)."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
import requests

from billable.sandbox_process import running_sandbox, sandbox_settings
from sandbox.connection import connection_settings
from sandbox.erp_billing import run_billing
from sandbox.servers.salesforce import locator
from sandbox.world import World

HANDWRITTEN = Path(__file__).resolve().parent / "worlds" / "handwritten"
HEADERS = {"Authorization": "Bearer test-token", "Harvest-Account-Id": "424242"}
US = "9130350000000001"
TA = {
    "TxnDate": "2025-02-10",
    "NameOf": "Employee",
    "EmployeeRef": {"value": "72", "name": "Ben Okafor"},
    "CustomerRef": {"value": "59", "name": "Northwind Traders Inc:PRJ-101"},
    "ItemRef": {"value": "3", "name": "Consulting Services"},
    "BillableStatus": "Billable",
    "HourlyRate": 150.0,
    "Hours": 7,
    "Minutes": 30,
    "Description": "harvest:9002 Data pipeline for price history",
}


def copy_world(target: Path) -> Path:
    shutil.copytree(HANDWRITTEN, target)
    return target


@pytest.fixture(scope="module")
def world_path(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return copy_world(tmp_path_factory.mktemp("servers") / "world")


@pytest.fixture(scope="module")
def base(world_path: Path) -> Iterator[str]:
    with running_sandbox(world_path) as base_url:
        yield base_url


@pytest.fixture
def session(base: str) -> Iterator[requests.Session]:
    with requests.Session() as client:
        client.headers.update(HEADERS)
        yield client
    requests.delete(f"{base}/_sandbox/faults", timeout=5)


def harvest_all(session: requests.Session, base: str, resource: str, **params: object) -> list[dict]:
    url, out = f"{base}/v2/{resource}", []
    response = session.get(url, params=params)
    while True:
        response.raise_for_status()
        body = response.json()
        out.extend(body[resource])
        if body["links"]["next"] is None:
            assert body["next_page"] is None
            return out
        response = session.get(body["links"]["next"])


def kantata_all(session: requests.Session, base: str, resource: str, **params: object) -> list[dict]:
    out, page = [], 1
    while True:
        body = session.get(f"{base}/api/v1/{resource}", params={**params, "page": page, "per_page": 1}).json()
        out.extend(body[resource][ref["id"]] for ref in body["results"])
        if page >= body["meta"]["page_count"]:
            return out
        page += 1


def qbo_all(session: requests.Session, base: str, entity: str, where: str = "") -> list[dict]:
    out, position = [], 1
    while True:
        query = f"select * from {entity} {where} STARTPOSITION {position} MAXRESULTS 1"
        body = session.get(f"{base}/v3/company/{US}/query", params={"query": query}).json()
        page = body["QueryResponse"].get(entity, [])
        out.extend(page)
        if not page:
            return out
        assert body["QueryResponse"]["startPosition"] == position
        position += 1


def soql(session: requests.Session, base: str, query: str) -> list[dict]:
    body = session.get(f"{base}/services/data/v60.0/query", params={"q": query}).json()
    records = list(body["records"])
    while not body["done"]:
        body = session.get(f"{base}{body['nextRecordsUrl']}").json()
        records.extend(body["records"])
    assert body["totalSize"] == len(records)
    return records


def expected(world_path: Path, system: str, entity: str, since: datetime | None = None) -> list[str]:
    state = World(world_path).state(system, entity)
    if system == "erp":
        state = state.filter(state["_realm"] == US)
    if since is not None:
        state = state.filter(state["_updated_at"] > since)
    key = {"crm": "Id", "psa": "id", "time": "id", "erp": "Id"}[system]
    return sorted(map(str, state[key].to_list()))


# --- paging and incremental filters ---------------------------------------------------------
@pytest.mark.parametrize("resource", ["users", "clients", "projects", "tasks", "time_entries", "expenses"])
def test_harvest_pages_every_record_once(session, base, world_path, resource) -> None:
    records = harvest_all(session, base, resource, per_page=1)
    assert sorted(str(r["id"]) for r in records) == expected(world_path, "time", resource)
    assert all(r["created_at"].endswith("Z") and r["updated_at"] >= r["created_at"] for r in records)


def test_harvest_deleted_and_future_entries_are_absent(session, base) -> None:
    ids = {r["id"] for r in harvest_all(session, base, "time_entries")}
    assert ids == {9001, 9002, 9003, 9006}  # 9004 was deleted, 9005 is after the clock


def test_harvest_filters(session, base, world_path) -> None:
    since = datetime(2025, 2, 5, tzinfo=UTC)
    changed = harvest_all(session, base, "time_entries", updated_since="2025-02-05T00:00:00Z")
    assert sorted(str(r["id"]) for r in changed) == expected(world_path, "time", "time_entries", since)
    dated = harvest_all(session, base, "time_entries", **{"from": "2025-02-01", "to": "2025-02-03"})
    assert [r["id"] for r in dated] == [9002]
    body = session.get(f"{base}/v2/time_entries", params={"per_page": 2}).json()
    assert body["total_entries"] == 4 and body["total_pages"] == 2 and body["next_page"] == 2
    assert body["links"]["next"].startswith(base) and "page=2" in body["links"]["next"]


@pytest.mark.parametrize(
    "resource", ["workspaces", "stories", "assignments", "rate_cards", "rate_card_versions"]
)
def test_kantata_pages_every_record_once(session, base, world_path, resource) -> None:
    records = kantata_all(session, base, resource)
    assert sorted(r["id"] for r in records) == expected(world_path, "psa", resource)


def test_kantata_filters_and_envelope(session, base, world_path) -> None:
    since = datetime(2024, 10, 22, 9, 0, tzinfo=UTC)
    changed = kantata_all(session, base, "workspaces", updated_after="2024-10-22T09:00:00Z")
    assert sorted(r["id"] for r in changed) == expected(world_path, "psa", "workspaces", since) == ["3100202"]
    body = session.get(f"{base}/api/v1/workspaces", params={"only": "3100201"}).json()
    assert body["count"] == 1 and body["results"] == [{"key": "workspaces", "id": "3100201"}]
    assert body["workspaces"]["3100201"]["status"]["message"] == "Active"
    assert body["meta"] == {"count": 1, "page_count": 1, "page_number": 1, "page_size": 20}


@pytest.mark.parametrize("obj", ["User", "Account", "Opportunity", "Contract"])
def test_salesforce_queries_every_record_once(session, base, world_path, obj) -> None:
    records = soql(session, base, f"SELECT Id, SystemModstamp FROM {obj} ORDER BY SystemModstamp")
    assert sorted(r["Id"] for r in records) == expected(world_path, "crm", obj)
    assert all(
        set(r) == {"attributes", "Id", "SystemModstamp"} and r["attributes"]["type"] == obj for r in records
    )


def test_salesforce_id_in_lists_exactly_those_records(session, base, world_path) -> None:
    known = expected(world_path, "crm", "Account")[:3]
    listed = ", ".join(f"'{key}'" for key in [*known, "001Dn0000009999QAM"])
    records = soql(session, base, f"SELECT Id FROM Account WHERE Id IN ({listed}) ORDER BY SystemModstamp")
    assert sorted(r["Id"] for r in records) == sorted(known), "an unknown id is simply not answered"
    unquoted = session.get(
        f"{base}/services/data/v60.0/query", params={"q": f"SELECT Id FROM Account WHERE Id IN ({known[0]})"}
    )
    assert unquoted.status_code == 400 and unquoted.json()[0]["errorCode"] == "MALFORMED_QUERY"


def test_salesforce_incremental_and_locators(session, base, world_path) -> None:
    since = datetime(2024, 10, 2, 10, 15, tzinfo=UTC)
    records = soql(session, base, "select Id, Name from account where SystemModstamp > 2024-10-02T10:15:00Z")
    assert [r["Id"] for r in records] == expected(world_path, "crm", "Account", since)
    assert soql(session, base, "SELECT Id FROM Account WHERE SystemModstamp >= 2024-10-02T10:15:00Z LIMIT 1")
    query = "SELECT Id, Name FROM Account ORDER BY SystemModstamp"
    body = session.get(f"{base}/services/data/v60.0/query/{locator(query)}-1").json()
    assert [r["Name"] for r in body["records"]] == ["Contoso Pharma"] and body["done"] is True
    bad = session.get(f"{base}/services/data/v60.0/query/not-a-locator")
    assert bad.status_code == 400 and bad.json()[0]["errorCode"] == "INVALID_QUERY_LOCATOR"


@pytest.mark.parametrize("entity", ["Customer", "Employee", "Item", "TimeActivity", "Invoice", "Payment"])
def test_quickbooks_pages_every_record_once(session, base, world_path, entity) -> None:
    records = qbo_all(session, base, entity)
    assert sorted(r["Id"] for r in records) == expected(world_path, "erp", entity)


def test_quickbooks_incremental_stamps_and_preferences(session, base, world_path) -> None:
    since = datetime(2025, 1, 6, 10, 0, tzinfo=UTC)
    records = qbo_all(session, base, "Invoice", "WHERE MetaData.LastUpdatedTime > '2025-01-06T10:00:00Z'")
    assert [r["Id"] for r in records] == expected(world_path, "erp", "Invoice", since) == ["1041"]
    invoice = records[0]
    assert invoice["SyncToken"] == "1" and invoice["Balance"] == 0.0
    assert invoice["MetaData"] == {
        "CreateTime": "2025-01-06T10:00:00Z",
        "LastUpdatedTime": "2025-01-28T15:00:00Z",
    }
    count = session.get(
        f"{base}/v3/company/{US}/query", params={"query": "SELECT COUNT(*) FROM TimeActivity"}
    )
    assert count.json()["QueryResponse"] == {"totalCount": 1}
    empty = session.get(
        f"{base}/v3/company/{US}/query", params={"query": "SELECT * FROM Customer STARTPOSITION 50"}
    )
    assert empty.json()["QueryResponse"] == {}
    prefs = session.get(f"{base}/v3/company/{US}/preferences").json()["Preferences"]
    assert prefs["AccountingInfoPrefs"]["BookCloseDate"] == "2025-01-31"
    assert prefs["CurrencyPrefs"]["HomeCurrency"] == {"value": "USD"}


# --- errors -----------------------------------------------------------------------------------
def test_error_shapes(session, base) -> None:
    no_auth = {"Harvest-Account-Id": "1"}
    response = requests.get(f"{base}/v2/time_entries", headers=no_auth, timeout=5)
    assert response.status_code == 401 and response.json()["error"] == "invalid_token"
    response = requests.get(f"{base}/v2/time_entries", headers={"Authorization": "Bearer x"}, timeout=5)
    assert response.status_code == 403
    assert session.get(f"{base}/v2/nothing").json() == {"status": 404, "error": "Not Found"}
    assert session.get(f"{base}/v2/time_entries", params={"per_page": 5000}).status_code == 422
    response = requests.get(f"{base}/api/v1/workspaces", timeout=5)
    assert response.status_code == 401 and response.json()["errors"][0]["type"] == "authentication"
    bad = session.get(f"{base}/api/v1/workspaces", params={"page": "zero"})
    assert bad.status_code == 422 and bad.json()["errors"][0]["field"] == "page"
    response = requests.get(
        f"{base}/services/data/v60.0/query", params={"q": "SELECT Id FROM Account"}, timeout=5
    )
    assert response.status_code == 401 and response.json() == [
        {"message": "Session expired or invalid", "errorCode": "INVALID_SESSION_ID"}
    ]
    for query, code in [
        ("SELECT Id FROM", "MALFORMED_QUERY"),
        ("SELECT Id, Nope FROM Account", "INVALID_FIELD"),
        ("SELECT Id FROM Widget", "INVALID_TYPE"),
    ]:
        response = session.get(f"{base}/services/data/v60.0/query", params={"q": query})
        assert response.status_code == 400 and response.json()[0]["errorCode"] == code, query
    assert (
        "'Nope' on entity 'Account'"
        in session.get(f"{base}/services/data/v60.0/query", params={"q": "SELECT Nope FROM Account"}).json()[
            0
        ]["message"]
    )
    response = requests.get(f"{base}/v3/company/{US}/preferences", timeout=5)
    assert response.status_code == 401 and response.json()["Fault"]["type"] == "AuthenticationFault"
    response = session.get(f"{base}/v3/company/123/query", params={"query": "SELECT * FROM Customer"})
    assert response.status_code == 403 and "Fault" in response.json()
    response = session.get(f"{base}/v3/company/{US}/query", params={"query": "SELECT * FROM Widget"})
    assert response.status_code == 400 and response.json()["Fault"]["type"] == "ValidationFault"


# --- faults -----------------------------------------------------------------------------------
def test_harvest_rate_limit_answers_429_with_retry_after(session, base) -> None:
    limits = {"rate_limit": True, "limits": {"harvest": {"requests": 5, "window_s": 30}}}
    assert session.post(f"{base}/_sandbox/faults", json=limits).ok
    statuses = [session.get(f"{base}/v2/users").status_code for _ in range(7)]
    assert statuses == [200] * 5 + [429] * 2
    response = session.get(f"{base}/v2/users")
    assert response.status_code == 429 and 1 <= int(response.headers["Retry-After"]) <= 30
    other_account = session.get(f"{base}/v2/users", headers={"Harvest-Account-Id": "7"})
    assert other_account.status_code == 200  # the limit is per account


def outcomes(base: str, faults: dict) -> list[object]:
    requests.post(f"{base}/_sandbox/faults", json=faults, timeout=5).raise_for_status()
    seen = []
    with requests.Session() as client:
        client.headers.update(HEADERS)
        for n in range(40):
            url = f"{base}/v2/users?page={n % 4 + 1}" if n % 2 else f"{base}/api/v1/stories"
            try:
                seen.append(client.get(url, timeout=5).status_code)
            except requests.ConnectionError:
                seen.append("dropped")
    return seen


def test_error_and_drop_faults_are_deterministic(session, base) -> None:
    faults = {"error_rate": 0.25, "drop_rate": 0.15}
    first, second = outcomes(base, faults), outcomes(base, faults)
    assert first == second
    assert "dropped" in first and any(s in (500, 502, 503) for s in first) and 200 in first
    log = session.get(f"{base}/_sandbox/faults/log").json()["entries"]
    assert {entry["fault"] for entry in log} >= {"drop", "server_error"}
    body = None
    for _ in range(50):
        try:
            response = session.get(f"{base}/v2/clients")
        except requests.ConnectionError:
            continue
        if response.status_code >= 500:
            body = response.json()
            break
    assert body is not None and body["status"] >= 500


def test_malformed_and_drift_faults(session, base) -> None:
    session.post(f"{base}/_sandbox/faults", json={"malformed_rate": 1.0}).raise_for_status()
    entries = session.get(f"{base}/v2/time_entries").json()["time_entries"]
    assert all(isinstance(e["hours"], str) and "," in e["hours"] for e in entries)
    session.post(f"{base}/_sandbox/faults", json={"malformed_rate": 0.0, "drift_from": "2025-02-01"})
    entries = {e["id"]: e for e in session.get(f"{base}/v2/time_entries").json()["time_entries"]}
    assert entries[9002]["hours"] == "8.0" and entries[9002]["external_reference_v2"] == "v2-9002"
    assert entries[9001]["hours"] == 7.5 and "external_reference_v2" not in entries[9001]
    log = session.get(f"{base}/_sandbox/faults/log").json()["entries"]
    assert any(entry["fault"] == "drift" and 9002 in entry["ids"] for entry in log)


# --- the live ERP -------------------------------------------------------------------------------
def post(session: requests.Session, base: str, path: str, body: object, requestid: str, **params: str):
    return session.post(
        f"{base}/v3/company/{US}/{path}", params={"requestid": requestid, **params}, json=body
    )


def test_erp_create_replay_update_and_validations(session, base) -> None:
    created = post(session, base, "timeactivity", TA, "create-1")
    assert created.status_code == 200
    activity = created.json()["TimeActivity"]
    assert int(activity["Id"]) > 1201 and activity["SyncToken"] == "0"  # above every history Id of the realm
    assert post(session, base, "timeactivity", TA, "create-1").json() == created.json()
    listed = qbo_all(session, base, "TimeActivity", "WHERE MetaData.LastUpdatedTime > '2025-02-01T00:00:00Z'")
    assert [r["Id"] for r in listed].count(activity["Id"]) == 1

    stale = post(
        session,
        base,
        "timeactivity",
        {"Id": activity["Id"], "SyncToken": "7", "sparse": True, "Hours": 6},
        "update-stale",
    )
    assert stale.status_code == 400 and stale.json()["Fault"]["Error"][0]["code"] == "5010"
    updated = post(
        session,
        base,
        "timeactivity",
        {"Id": activity["Id"], "SyncToken": "0", "sparse": True, "Hours": 6},
        "update-1",
    ).json()["TimeActivity"]
    assert updated["SyncToken"] == "1" and updated["Hours"] == 6 and updated["Minutes"] == 30
    assert updated["MetaData"]["LastUpdatedTime"] > activity["MetaData"]["LastUpdatedTime"]

    closed = post(session, base, "timeactivity", {**TA, "TxnDate": "2025-01-20"}, "closed-1").json()
    assert (
        closed["Fault"]["Error"][0]["code"] == "6210"
        and "2025-01-31" in closed["Fault"]["Error"][0]["Detail"]
    )
    ref = post(session, base, "timeactivity", {**TA, "EmployeeRef": {"value": "999"}}, "ref-1").json()
    assert ref["Fault"]["Error"][0]["code"] == "2500" and "Employee 999" in ref["Fault"]["Error"][0]["Detail"]
    missing = post(
        session, base, "timeactivity", {k: v for k, v in TA.items() if k != "EmployeeRef"}, "m-1"
    ).json()
    assert missing["Fault"]["Error"][0]["code"] == "2020"
    gone = post(session, base, "timeactivity", {"Id": "88888", "SyncToken": "0"}, "nf-1", operation="delete")
    assert gone.json()["Fault"]["Error"][0]["code"] == "610"
    billed = post(
        session, base, "timeactivity", {"Id": "301", "SyncToken": "1", "sparse": True, "Hours": 1}, "b-1"
    )
    assert billed.json()["Fault"]["Error"][0]["code"] in ("6000", "6210")


def test_erp_batch_isolates_a_bad_item(session, base) -> None:
    items = [
        {"bId": "a", "operation": "create", "TimeActivity": {**TA, "Description": "harvest:9101 a"}},
        {"bId": "b", "operation": "create", "TimeActivity": {**TA, "CustomerRef": {"value": "4040"}}},
        {"bId": "c", "operation": "create", "TimeActivity": {**TA, "Description": "harvest:9102 c"}},
    ]
    answer = post(session, base, "batch", {"BatchItemRequest": items}, "batch-1").json()["BatchItemResponse"]
    assert [("Fault" in item, item["bId"]) for item in answer] == [(False, "a"), (True, "b"), (False, "c")]
    assert answer[1]["Fault"]["Error"][0]["code"] == "2500"
    again = post(session, base, "batch", {"BatchItemRequest": items}, "batch-1").json()["BatchItemResponse"]
    assert again == answer
    too_many = post(session, base, "batch", {"BatchItemRequest": [items[0]] * 31}, "batch-2")
    assert too_many.status_code == 400


def test_commit_then_drop_then_replay_gives_one_object(session, base) -> None:
    session.post(f"{base}/_sandbox/faults", json={"commit_drop_rate": 1.0}).raise_for_status()
    body = {**TA, "Description": "harvest:9777 dropped answer"}
    with pytest.raises(requests.ConnectionError):
        post(session, base, "timeactivity", body, "drop-1")
    session.delete(f"{base}/_sandbox/faults").raise_for_status()
    replay = post(session, base, "timeactivity", body, "drop-1")
    assert replay.status_code == 200
    same = [r for r in qbo_all(session, base, "TimeActivity") if r["Description"] == body["Description"]]
    assert [r["Id"] for r in same] == [replay.json()["TimeActivity"]["Id"]]


# --- the loaders' settings ----------------------------------------------------------------------
def test_the_sandbox_answers_the_loaders_settings_for_its_world(base: str, world_path: Path) -> None:
    """What the pipeline configures the loaders with comes from the sandbox it started (production
    code does not import the sandbox): every system at this base URL, the world's own legal
    entities and HR drop folder."""
    settings = sandbox_settings(base)
    assert settings == connection_settings(base, World(world_path))
    for system in ("SALESFORCE", "KANTATA", "HARVEST", "QUICKBOOKS"):
        assert settings[f"SOURCES__{system}__BASE_URL"] == base
    assert json.loads(settings["FIRM__LEGAL_ENTITIES"]) == World(world_path).legal_entities
    assert settings["SOURCES__HR_DROP__DROP_FOLDER"] == str((world_path / "hr_drop").resolve())


# --- the clock and billing ---------------------------------------------------------------------
def test_moving_the_clock_shows_changes_without_restart(tmp_path: Path) -> None:
    path = copy_world(tmp_path / "world")
    with running_sandbox(path) as url, requests.Session() as client:
        client.headers.update(HEADERS)
        before = {r["id"]: r for r in harvest_all(client, url, "time_entries")}
        World(path).set_clock(datetime(2025, 2, 12, 12, 0, tzinfo=UTC))
        after = {r["id"]: r for r in harvest_all(client, url, "time_entries")}
        changed = harvest_all(client, url, "time_entries", updated_since="2025-02-10T12:00:00Z")
        health = client.get(f"{url}/_sandbox/health").json()
    assert before[9002]["approval_status"] == "submitted" and after[9002]["approval_status"] == "approved"
    assert set(after) == {9001, 9002, 9003, 9005, 9006}
    assert sorted(r["id"] for r in changed) == [9002, 9005]
    assert health["clock"] == "2025-02-12T12:00:00Z"


def test_billing_run_invoices_pushed_time_and_schedules_payment(tmp_path: Path) -> None:
    path = copy_world(tmp_path / "world")
    with running_sandbox(path) as url, requests.Session() as client:
        client.headers.update(HEADERS)
        pushed = [
            post(
                client,
                url,
                "timeactivity",
                {**TA, "TxnDate": day, "Description": f"harvest:{n} work"},
                f"push-{n}",
            ).json()["TimeActivity"]
            for n, day in ((9201, "2025-02-11"), (9202, "2025-02-12"))
        ]
        draft = post(
            client,
            url,
            "invoice",
            {
                "CustomerRef": {"value": "59"},
                "PrivateNote": "milestone:5400301",
                "TxnDate": "2025-02-27",
                "Line": [{"Amount": 20000.0}],
            },
            "ms-1",
        ).json()
        world = World(path)
        before = world.clock
        world.set_clock(datetime(2025, 3, 1, tzinfo=UTC))
        counts = run_billing(world, before, world.clock)
        assert counts["invoices"] == 1 and counts["time_activities"] == 2 and counts["finalised"] == 1
        assert run_billing(world, before, world.clock)["runs"] == 0  # idempotent
        invoices = {r["Id"]: r for r in qbo_all(client, url, "Invoice")}
        new = [
            r for r in invoices.values() if r["Id"] not in ("1041", "1042", "1043", draft["Invoice"]["Id"])
        ]
        assert len(new) == 1
        invoice = new[0]
        assert (
            invoice["TxnDate"] == "2025-02-28"
            and invoice["TotalAmt"] == 2 * 7.5 * 150.0 == invoice["Balance"]
        )
        assert sorted(line["LinkedTxn"][0]["TxnId"] for line in invoice["Line"]) == sorted(
            t["Id"] for t in pushed
        )
        assert invoices[draft["Invoice"]["Id"]]["DocNumber"]
        activities = {r["Id"]: r for r in qbo_all(client, url, "TimeActivity")}
        assert all(activities[t["Id"]]["BillableStatus"] == "HasBeenBilled" for t in pushed)
        assert all(activities[t["Id"]]["SyncToken"] == "1" for t in pushed)
        assert [r["Id"] for r in qbo_all(client, url, "Payment")] == ["1201"]  # not paid yet
        world.set_clock(datetime(2025, 3, 1, tzinfo=UTC) + timedelta(days=200))
        payments = [r for r in qbo_all(client, url, "Payment") if r["Id"] != "1201"]
        linked = {p["Line"][0]["LinkedTxn"][0]["TxnId"] for p in payments}
        assert linked == {invoice["Id"], draft["Invoice"]["Id"]}
        paid = {r["Id"]: r for r in qbo_all(client, url, "Invoice")}[invoice["Id"]]
        payment = next(p for p in payments if p["Line"][0]["LinkedTxn"][0]["TxnId"] == invoice["Id"])
        assert paid["Balance"] == round(invoice["TotalAmt"] - payment["TotalAmt"], 2)
        assert paid["MetaData"]["LastUpdatedTime"].startswith(payment["TxnDate"])
