"""The sandbox's manifest of planted defects against the warehouse's exception queue, rule by rule,
on a freshly generated tiny world: generate, ingest over HTTP, `dbt build` the exception models,
then precision and recall per rule (`pytest -s` prints the table). Also: the identity kinds of
the manifest, and exception history across a full refresh, a fix and a relapse.

dbt runs as a subprocess with its own raw and build files and target path. The history steps
move the warehouse's clock the way production does, by a later load (the ERP's preferences are
observed at a later server time), not with --vars: every dbt run here then shares one partial
parse, which keeps the module well under a minute and a half.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from billable.sandbox_process import running_sandbox
from tests.ingest_helpers import ROOT, generate_world, ingest

DBT = Path(sys.executable).with_name("dbt")
PROJECT = ROOT / "dbt_project"
EXCEPTION_MODELS = ("+fct_exceptions", "+rpt_exception_aging", "+int_time_entry_blocking_exceptions")

# the manifest's entity → the record type fct_exceptions reports for it (docs/sandbox.md)
RECORD_TYPES = {
    "time_entries": "time_entry",
    "users": "time_user",
    "rate_card_versions": "rate_card_version",
    "Account": "crm_account",
}
# rules the manifest cannot label: ERP_REJECTED needs the reverse-ETL ledger (issue 6)
NOT_IN_MANIFEST = {"ERP_REJECTED"}


def utc(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00")).replace(tzinfo=None)


@dataclass(frozen=True)
class Warehouse:
    world: Path
    raw_db: Path
    build_db: Path
    target: Path

    def dbt(self, *args: str) -> None:
        """Run dbt on this warehouse's own files; fail with dbt's output when it fails."""
        env = {**os.environ, "BILLABLE_RAW_DB": str(self.raw_db), "BILLABLE_BUILD_DB": str(self.build_db)}
        command = [str(DBT), *args, "--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
        command += ["--target-path", str(self.target), "--log-path", str(self.target / "logs")]
        result = subprocess.run(
            command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=600
        )
        assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]

    def rows(self, sql: str, *params: object) -> list[tuple]:
        with duckdb.connect(str(self.build_db), read_only=True) as connection:
            return connection.execute(sql, list(params)).fetchall()

    def raw(self, sql: str, *params: object) -> list[tuple]:
        with duckdb.connect(str(self.raw_db)) as connection:
            return connection.execute(sql, list(params)).fetchall()

    @property
    def clock(self) -> datetime:
        return utc(json.loads((self.world / "world.json").read_text())["clock"])

    def visible_defects(self) -> dict[str, dict]:
        """The manifest's kinds, each with only the records visible at the world's clock."""
        defects = json.loads((self.world / "manifest.json").read_text())["defects"]
        for defect in defects.values():
            defect["ids"] = {str(r["id"]) for r in defect["records"] if utc(r["visible_at"]) <= self.clock}
        return defects


@pytest.fixture(scope="module")
def warehouse(tmp_path_factory: pytest.TempPathFactory) -> Warehouse:
    folder = tmp_path_factory.mktemp("exceptions_manifest")
    world = generate_world(folder / "world", preset="tiny", seed=7)
    raw_db = folder / "raw.duckdb"
    with running_sandbox(world) as base_url:
        loaded = ingest(base_url, world, raw_db, "")
    assert loaded.returncode == 0, loaded.stdout[-4000:] + loaded.stderr[-4000:]
    built = Warehouse(world, raw_db, folder / "warehouse.duckdb", folder / "target")
    built.dbt("build", "-s", *EXCEPTION_MODELS, "--indirect-selection", "cautious")
    return built


def test_every_manifest_rule_has_full_precision_and_recall(warehouse: Warehouse) -> None:
    expected: dict[str, set[str]] = {}
    record_types: dict[str, str] = {}
    for defect in warehouse.visible_defects().values():
        if defect["rule"].startswith("("):
            continue  # identity kinds: see the next test
        expected.setdefault(defect["rule"], set()).update(defect["ids"])
        record_types[defect["rule"]] = RECORD_TYPES[defect["entity"]]
    queue = warehouse.rows("select rule_code, record_type, record_id from marts.fct_exceptions")

    report = [
        f"{'rule':24} {'record type':18} {'manifest':>8} {'found':>6} {'hits':>5} "
        f"{'precision':>9} {'recall':>7}"
    ]
    failures = []
    for rule in sorted(expected):
        want = expected[rule]
        # like record types only: a rule reporting another kind of record is a mismatch too
        found = {(kind, record) for code, kind, record in queue if code == rule}
        got = {record for kind, record in found if kind == record_types[rule]}
        hits = len(want & got)
        precision = hits / len(found) if found else 1.0
        recall = hits / len(want) if want else 1.0
        report.append(
            f"{rule:24} {record_types[rule]:18} {len(want):8} {len(found):6} {hits:5} "
            f"{precision:9.1%} {recall:7.1%}"
        )
        if precision < 1 or recall < 1:
            failures.append(
                f"{rule}: missed {sorted(want - got)[:5]}, "
                f"extra {sorted(found - {(record_types[rule], r) for r in want})[:5]}"
            )
    print("\n" + "\n".join(report))

    assert len(expected) == 13, f"the manifest's rules changed: {sorted(expected)}"
    assert all(expected.values()), "a rule without visible cases proves nothing on this world"
    assert not failures, "\n".join(failures)
    unlabelled = {code for code, _kind, _record in queue} - set(expected)
    assert unlabelled == set(), f"rules the manifest does not label reported records: {unlabelled}"
    assert NOT_IN_MANIFEST.isdisjoint(expected)


def test_identity_kinds_resolve_as_the_manifest_says(warehouse: Warehouse) -> None:
    defects = warehouse.visible_defects()
    project_methods = dict(
        warehouse.rows(
            "select source_id, match_method from intermediate.int_project_source_ids "
            "where source_system = 'time'"
        )
    )
    client_methods = dict(
        warehouse.rows(
            "select source_id, match_method from intermediate.int_client_source_ids "
            "where source_system = 'erp'"
        )
    )
    # a project code typed differently in Harvest is still the PSA's project, found by normalising
    variants = defects["project_code_variant"]["ids"]
    assert variants
    assert {project_methods.get(project) for project in variants} == {"normalised_code"}
    # a legacy ERP customer has no sfdc: note, so it is never matched by the shared id
    legacy = defects["legacy_erp_customer"]["ids"]
    assert legacy and legacy <= set(client_methods)
    assert "shared_id" not in {client_methods[customer] for customer in legacy}
    # an account whose name drifted in the time tool or the ERP still has its records there
    drifted = defects["client_name_drift"]["ids"]
    matched = {
        client
        for (client,) in warehouse.rows(
            "select distinct client_id from intermediate.int_client_source_ids "
            "where source_system <> 'crm' "
            "and match_method in ('normalised_name', 'shared_id', 'manual_override')"
        )
    }
    assert drifted and drifted <= matched


def test_blocking_exceptions_hold_their_time_back(warehouse: Warehouse) -> None:
    loose = warehouse.rows(
        """
        select exceptions.rule_code, exceptions.record_id
        from marts.fct_exceptions as exceptions
        left join intermediate.int_time_entry_blocking_exceptions as held
            on exceptions.time_entry_id = held.time_entry_id
        where exceptions.is_blocking and exceptions.time_entry_id is not null and held.time_entry_id is null
        """
    )
    assert loose == []
    # every entry of an unknown user is held, though the exception is on the user
    unheld = warehouse.rows(
        """
        select entries.time_entry_id
        from intermediate.int_time_entries_resolved as entries
        inner join marts.fct_exceptions as exceptions
            on exceptions.rule_code = 'TIME_UNKNOWN_EMPLOYEE'
            and exceptions.record_id = cast(entries.time_user_id as varchar)
        left join intermediate.int_time_entry_blocking_exceptions as held
            on entries.time_entry_id = held.time_entry_id
        where not entries.is_deleted and held.time_entry_id is null
        """
    )
    assert unheld == []


def later_load(warehouse: Warehouse, at: datetime) -> None:
    """What a later load leaves in raw: the ERP's preferences observed at its new server time."""
    stamp = at.strftime("%Y-%m-%dT%H:%M:%SZ")
    warehouse.raw("update raw_erp.preferences set server_time = ?", stamp)
    warehouse.raw(
        "insert into raw_erp.preferences_history "
        "select * replace (? as server_time) from raw_erp.preferences",
        stamp,
    )


def history(warehouse: Warehouse, rule: str | None = None) -> list[tuple]:
    where = "where rule_code = ?" if rule else ""
    return warehouse.rows(
        "select exception_id, first_detected_at, resolved_at, age_days, age_bucket, is_open "
        f"from marts.rpt_exception_aging {where} order by exception_id, first_detected_at",
        *([rule] if rule else []),
    )


def test_history_survives_a_full_refresh_and_follows_a_fix_and_a_relapse(warehouse: Warehouse) -> None:
    start = warehouse.clock
    first = {row[0]: row[1] for row in history(warehouse)}
    assert first and set(first.values()) == {start}

    # two days later, a full rebuild: ages keep counting from the first detection
    later_load(warehouse, start + timedelta(days=2))
    warehouse.dbt("run", "-s", *EXCEPTION_MODELS, "--full-refresh")
    again = {row[0]: row for row in history(warehouse)}
    assert {key: again[key][1] for key in first} == first
    assert {(again[key][3], again[key][4], again[key][5]) for key in first} == {(2, "0-2", True)}

    # the PMO moves the time booked on unknown codes to a real project; the next load sees it
    unknown = [
        row[0]
        for row in warehouse.rows(
            "select time_entry_id from marts.fct_exceptions where rule_code = 'TIME_UNKNOWN_PROJECT'"
        )
    ]
    assert unknown
    originals = warehouse.raw(
        "select id, project__id, project__code from raw_time.time_entries where id in (select unnest(?))",
        unknown,
    )
    project, code = warehouse.rows(
        "select time_project_id, project_code from intermediate.int_time_entries_resolved "
        "where is_known_project and not is_internal_project order by time_entry_id limit 1"
    )[0]
    warehouse.raw(
        "update raw_time.time_entries set project__id = ?, project__code = ? where id in (select unnest(?))",
        project,
        code,
        unknown,
    )
    later_load(warehouse, start + timedelta(days=11))
    warehouse.dbt("run", "-s", *EXCEPTION_MODELS)
    fixed = history(warehouse, "TIME_UNKNOWN_PROJECT")
    assert len(fixed) == len(unknown)
    assert {row[1:] for row in fixed} == {(start, start + timedelta(days=11), 11, "8-30", False)}
    still_open = {row[3:] for row in history(warehouse) if row[1] == start and row[5]}
    assert still_open == {(11, "8-30", True)}

    # the fix is undone: the same exceptions come back as new episodes; the old ones stay resolved
    for entry, original_project, original_code in originals:
        warehouse.raw(
            "update raw_time.time_entries set project__id = ?, project__code = ? where id = ?",
            original_project,
            original_code,
            entry,
        )
    later_load(warehouse, start + timedelta(days=20))
    warehouse.dbt("run", "-s", *EXCEPTION_MODELS)
    relapsed = history(warehouse, "TIME_UNKNOWN_PROJECT")
    assert len(relapsed) == 2 * len(unknown)
    resolved = [row for row in relapsed if not row[5]]
    reopened = [row for row in relapsed if row[5]]
    assert {row[1:] for row in resolved} == {(start, start + timedelta(days=11), 11, "8-30", False)}
    assert {row[1:] for row in reopened} == {(start + timedelta(days=20), None, 0, "0-2", True)}
    assert {row[0] for row in reopened} == {row[0] for row in resolved}
