"""QuickBooks' batch limit in the sandbox ERP, over real HTTP: at most 40 /batch requests per minute
per realm (besides the 500 requests per minute), the 41st answered 429 with QuickBooks' throttle
body and Retry-After, committing nothing; other endpoints and other realms unaffected; switched
off with the other limits (hand-written world)."""

from __future__ import annotations

import shutil
import time
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests

from billable.sandbox_process import running_sandbox

HANDWRITTEN = Path(__file__).resolve().parent / "worlds" / "handwritten"
HEADERS = {"Authorization": "Bearer test-token"}
US, UK = "9130350000000001", "9130350000000002"
TA = {
    "TxnDate": "2025-02-10",
    "NameOf": "Employee",
    "EmployeeRef": {"value": "72", "name": "Ben Okafor"},
    "CustomerRef": {"value": "59", "name": "Northwind Traders Inc:PRJ-101"},
    "ItemRef": {"value": "3", "name": "Consulting Services"},
    "BillableStatus": "Billable",
    "HourlyRate": 150.0,
    "Hours": 2,
    "Minutes": 0,
    "Description": "harvest:9777 batch limit test",
}
# An item the ERP answers with a per-item fault: a /batch call that writes nothing.
EMPTY_ITEM = {"BatchItemRequest": [{"bId": "probe"}]}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    world = tmp_path_factory.mktemp("batch-limit") / "world"
    shutil.copytree(HANDWRITTEN, world)
    with running_sandbox(world) as base_url:
        yield base_url


@pytest.fixture
def session(base: str) -> Iterator[requests.Session]:
    with requests.Session() as client:
        client.headers.update(HEADERS)
        yield client
    requests.delete(f"{base}/_sandbox/faults", timeout=5).raise_for_status()
    requests.delete(f"{base}/_sandbox/faults/log", timeout=5).raise_for_status()


def set_faults(session: requests.Session, base: str, settings: dict) -> dict:
    response = session.post(f"{base}/_sandbox/faults", json=settings)
    assert response.status_code == 200, response.text
    return response.json()


def batch(session: requests.Session, base: str, realm: str, n: int, body: dict = EMPTY_ITEM):
    return session.post(
        f"{base}/v3/company/{realm}/batch", params={"requestid": f"limit-{realm}-{n}"}, json=body
    )


def count_activities(session: requests.Session, base: str, realm: str) -> int:
    response = session.get(
        f"{base}/v3/company/{realm}/query", params={"query": "SELECT COUNT(*) FROM TimeActivity"}
    )
    assert response.status_code == 200, response.text
    return int(response.json()["QueryResponse"]["totalCount"])


def test_the_41st_batch_in_a_minute_is_throttled_and_nothing_else(session, base) -> None:
    described = set_faults(session, base, {"rate_limit": True})
    limits = described["effective_limits"]["quickbooks"]
    assert (limits["batch_requests"], limits["batch_window_s"], limits["requests"]) == (40, 60, 500)
    statuses = [batch(session, base, US, n).status_code for n in range(40)]
    assert statuses == [200] * 40, Counter(statuses)
    refused = batch(session, base, US, 40)
    assert refused.status_code == 429
    assert 1 <= int(refused.headers["Retry-After"]) <= 60
    fault = refused.json()["Fault"]
    assert fault["type"] == "ThrottleExceeded"
    error = fault["Error"][0]
    assert error["code"] == "003001"
    assert error["Message"] == "message=ThrottleExceeded; errorCode=003001; statusCode=429"
    assert "40 batch requests per 60 seconds" in error["Detail"]
    # Other endpoints of the same realm: only the 500/min window, far from full.
    assert count_activities(session, base, US) >= 0
    single = session.post(
        f"{base}/v3/company/{US}/timeactivity", params={"requestid": "limit-single-1"}, json=TA
    )
    assert single.status_code == 200, single.text
    # Another realm has its own window.
    assert batch(session, base, UK, 0).status_code == 200
    # Still refused in the throttled realm: the refused call did not free anything.
    assert batch(session, base, US, 41).status_code == 429
    log = session.get(f"{base}/_sandbox/faults/log").json()["entries"]
    kinds = Counter(entry["fault"] for entry in log)
    assert kinds == {"batch_rate_limit": 2}, kinds
    assert all(f"/v3/company/{US}/batch" in entry["request"] for entry in log)


def test_a_throttled_batch_commits_nothing_and_goes_through_after_retry_after(session, base) -> None:
    set_faults(
        session,
        base,
        {"rate_limit": True, "limits": {"quickbooks": {"batch_requests": 1, "batch_window_s": 2}}},
    )
    before = count_activities(session, base, US)
    first = {"BatchItemRequest": [{"bId": "a", "operation": "create", "TimeActivity": TA}]}
    second = {
        "BatchItemRequest": [
            {"bId": "b", "operation": "create", "TimeActivity": {**TA, "Description": "harvest:9778 second"}}
        ]
    }
    created = batch(session, base, US, 100, first)
    assert created.status_code == 200 and "TimeActivity" in created.json()["BatchItemResponse"][0], (
        created.text
    )
    refused = batch(session, base, US, 101, second)
    assert refused.status_code == 429 and 1 <= int(refused.headers["Retry-After"]) <= 2
    assert count_activities(session, base, US) == before + 1  # the refused batch wrote nothing
    time.sleep(int(refused.headers["Retry-After"]))
    accepted = batch(session, base, US, 101, second)
    assert accepted.status_code == 200, accepted.text
    (item,) = accepted.json()["BatchItemResponse"]
    assert item["TimeActivity"]["Description"] == "harvest:9778 second"
    assert count_activities(session, base, US) == before + 2


@pytest.mark.parametrize(
    "settings",
    [{"rate_limit": False}, {"rate_limit": True, "limits": {"quickbooks": {"batch_requests": 0}}}],
    ids=["limits-off", "batch-limit-zero"],
)
def test_the_batch_limit_switches_off(session, base, settings) -> None:
    set_faults(session, base, settings)
    statuses = [batch(session, base, US, 1000 + n).status_code for n in range(45)]
    assert statuses == [200] * 45, Counter(statuses)


def test_a_bad_limit_setting_is_refused_by_name(session, base) -> None:
    unknown = session.post(f"{base}/_sandbox/faults", json={"limits": {"quickbooks": {"batches": 40}}})
    assert unknown.status_code == 422 and "unknown limit 'batches'" in unknown.json()["error"]
    negative = session.post(
        f"{base}/_sandbox/faults", json={"limits": {"quickbooks": {"batch_requests": -1}}}
    )
    assert negative.status_code == 422
    assert "limits.quickbooks.batch_requests must be a number >= 0" in negative.json()["error"]
