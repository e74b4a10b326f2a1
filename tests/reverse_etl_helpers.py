"""Reverse-ETL tests: a copied world and warehouse per test, the real sync CLI, the sandbox's live ERP."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

import duckdb
import requests

from sandbox.connection import connection_settings as sandbox_settings
from sandbox.erp_live import LiveStore, us_of
from sandbox.world import World
from tests.ingest_helpers import ROOT

FAST = {  # real retries, short waits
    "REVERSE_ETL__QUICKBOOKS__BACKOFF_S": "0.05",
    "REVERSE_ETL__QUICKBOOKS__MAX_BACKOFF_S": "0.5",
    "REVERSE_ETL__QUICKBOOKS__MAX_ATTEMPTS": "30",
}


@dataclass
class Site:
    """One test's copies: the world (served by the sandbox) and the published warehouse (ledger beside it)."""

    world: Path
    warehouse: Path

    @property
    def ledger(self) -> Path:
        return self.warehouse.with_name("ledger.sqlite")

    @property
    def snapshot(self) -> Path:
        return self.warehouse.with_name("ledger.duckdb")


def make_site(tmp: Path, world: Path, warehouse: Path) -> Site:
    """Copy a world (without its live ERP writes) and a published warehouse into `tmp`."""
    shutil.copytree(world, tmp / "world", ignore=shutil.ignore_patterns("sandbox-*.log", "erp_live.sqlite*"))
    (tmp / "wh").mkdir()
    shutil.copyfile(warehouse, tmp / "wh" / "warehouse.duckdb")
    return Site(tmp / "world", tmp / "wh" / "warehouse.duckdb")


def sync_env(base_url: str, site: Site, **extra: str) -> dict[str, str]:
    env = {**os.environ, **sandbox_settings(base_url, site.world), **FAST, **extra}
    env.pop("REVERSE_ETL_TEST_KILL_AFTER", None)
    env.update({k: v for k, v in extra.items()})
    return env


def sync_command(site: Site, *args: str) -> list[str]:
    return [sys.executable, "-m", "reverse_etl", "--warehouse", str(site.warehouse), *args]


def sync(base_url: str, site: Site, *args: str, **env: str) -> subprocess.CompletedProcess:
    """The real `python -m reverse_etl` against the sandbox.

    BILLABLE_TEST_SYNC_ROOT runs the sync from another checkout (e.g. `git archive` of an older
    commit, to measure a fault before its fix); default: this repository."""
    return subprocess.run(
        sync_command(site, *args),
        cwd=os.environ.get("BILLABLE_TEST_SYNC_ROOT") or ROOT,
        env=sync_env(base_url, site, **env),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def faults(base_url: str, **settings: object) -> None:
    response = requests.post(f"{base_url}/_sandbox/faults", json=settings, timeout=10)
    assert response.status_code == 200, response.text


def fault_log(base_url: str) -> list[dict]:
    return requests.get(f"{base_url}/_sandbox/faults/log", timeout=10).json()["entries"]


def erp_objects(world: Path, entity: str = "TimeActivity") -> list[dict]:
    """Every live object of `entity` the ERP holds now, all realms (history records excluded)."""
    import json

    loaded = World(world)
    store = LiveStore(world)
    out = []
    for realm in loaded.realms:
        for row in store.current(realm, entity, us_of(loaded.clock)):
            out.append({**json.loads(row.json), "_realm": realm})
    return out


def erp_requests(world: Path) -> int:
    """Requests the ERP remembers (each distinct requestid it applied)."""
    with sqlite3.connect(world / "erp_live.sqlite") as conn:
        return int(conn.execute("select count(*) from requests").fetchone()[0])


def ready_lines(warehouse: Path, kind: str = "time") -> dict[str, dict]:
    with duckdb.connect(str(warehouse), read_only=True) as conn:
        cursor = conn.execute(
            "select * from marts.rpt_billable_lines where line_status = 'ready' and line_kind = ? "
            "and not is_in_erp",
            [kind],
        )
        names = [d[0] for d in cursor.description]
        return {row[0]: dict(zip(names, row, strict=True)) for row in cursor.fetchall()}


def batches_needed(plan: dict[str, dict], size: int = 30) -> int:
    """Batch requests a plan takes: per realm, lines / size rounded up."""
    realms: dict[str, int] = {}
    for row in plan.values():
        realms[row["realm_id"]] = realms.get(row["realm_id"], 0) + 1
    return sum(-(-count // size) for count in realms.values())


def ta_money(record: dict) -> Decimal:
    """A TimeActivity's value as the ERP bills it: (Hours + Minutes / 60) × HourlyRate, exact."""
    minutes = Decimal(int(record["Hours"]) * 60 + int(record.get("Minutes") or 0))
    return minutes * Decimal(str(record["HourlyRate"])) / 60


def assert_exactly_once(site: Site, plan: dict[str, dict]) -> None:
    """The ERP holds each planned line exactly once, nothing else of ours, and the money is the plan's."""
    held = erp_objects(site.world)
    by_key: dict[str, list[dict]] = {}
    for record in held:
        key = "time:" + record["Description"].split()[0].removeprefix("harvest:")
        by_key.setdefault(key, []).append(record)
    duplicates = {key: len(records) for key, records in by_key.items() if len(records) > 1}
    assert not duplicates, f"lines held more than once: {duplicates}"
    assert set(by_key) == set(plan), (
        f"missing {sorted(set(plan) - set(by_key))[:5]}, unexpected {sorted(set(by_key) - set(plan))[:5]}"
    )
    erp_total = sum((ta_money(records[0]) for records in by_key.values()), Decimal(0))
    plan_total = sum((Decimal(row["amount"]) for row in plan.values()), Decimal(0))
    assert erp_total == plan_total, f"ERP holds {erp_total}, the plan says {plan_total}"


def ledger_rows(site: Site, sql: str, *params: object) -> list[tuple]:
    with sqlite3.connect(site.ledger) as conn:
        return conn.execute(sql, params).fetchall()


def last_run(site: Site) -> dict:
    with sqlite3.connect(site.ledger) as conn:
        conn.row_factory = sqlite3.Row
        row = conn.execute("select * from sync_runs order by started_at desc limit 1").fetchone()
        return dict(row)


def lose_ledger(site: Site) -> None:
    """The ledger is gone (deleted, or `make clean` before it spared the ledger): file, WAL and snapshot."""
    for path in (site.ledger, site.snapshot):
        for suffix in ("", "-wal", "-shm"):
            path.with_name(path.name + suffix).unlink(missing_ok=True)


def erp_copies(world: Path) -> dict[str, list[dict]]:
    """The ERP's TimeActivities of our lines by line key (time:<id>), every copy."""
    by_key: dict[str, list[dict]] = {}
    for record in erp_objects(world):
        by_key.setdefault("time:" + record["Description"].split()[0].removeprefix("harvest:"), []).append(
            record
        )
    return by_key


def edit_mart(site: Site, sql: str, *params: object) -> None:
    """Change the plan's input in this test's copy of the published warehouse (the mart is the only input)."""
    with duckdb.connect(str(site.warehouse)) as conn:
        conn.execute(sql, list(params))
