"""Every defect the generator planted (and every natural case) is caught by the right rule, and
nothing clean is flagged: the tiny world's manifest against fct_exceptions, rule by rule.

Also: exception history survives a full refresh and records a resolution.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import pytest

from tests.warehouse_helpers import built, copy_raw, load_tiny_world, rows

# the manifest's entity → the record type the rule reports
RECORD_TYPES = {
    "time_entries": "time_entry",
    "users": "time_user",
    "rate_card_versions": "rate_card_version",
    "Account": "crm_account",
}


@pytest.fixture(scope="module")
def loaded(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return load_tiny_world(tmp_path_factory.mktemp("exceptions"))


@pytest.fixture(scope="module")
def warehouse(loaded: tuple[Path, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    return built(loaded[1], tmp_path_factory.mktemp("warehouse"))


def visible_defects(world: Path) -> tuple[dict, str]:
    manifest = json.loads((world / "manifest.json").read_text())
    clock = manifest["clock"]
    return manifest["defects"], clock


def test_every_manifest_defect_is_caught_by_its_rule_and_nothing_else(
    loaded: tuple[Path, Path], warehouse: Path
) -> None:
    defects, clock = visible_defects(loaded[0])
    report, failures = [], []
    for kind, defect in defects.items():
        rule = defect["rule"]
        if rule.startswith("("):
            continue  # identity kinds: see the next test
        expected = {str(record["id"]) for record in defect["records"] if record["visible_at"] <= clock}
        found = {
            record_id
            for (record_id,) in rows(
                warehouse,
                "select record_id from marts.fct_exceptions where rule_code = ? and record_type = ?",
                rule,
                RECORD_TYPES[defect["entity"]],
            )
        }
        hits = len(expected & found)
        precision = hits / len(found) if found else 1.0
        recall = hits / len(expected) if expected else 1.0
        report.append(
            f"{rule:24} {kind:28} expected {len(expected):3}  found {len(found):3}  "
            f"precision {precision:6.1%}  recall {recall:6.1%}"
        )
        if expected != found:
            failures.append(
                f"{rule}: missed {sorted(expected - found)[:5]}, extra {sorted(found - expected)[:5]}"
            )
    print("\n" + "\n".join(report))
    assert len(report) >= 13, "every rule with planted cases is compared"
    assert not failures, "\n".join(failures)


def test_identity_defects_resolve_as_the_manifest_says(loaded: tuple[Path, Path], warehouse: Path) -> None:
    defects, clock = visible_defects(loaded[0])

    def ids(kind: str) -> set[str]:
        return {str(r["id"]) for r in defects[kind]["records"] if r["visible_at"] <= clock}

    methods = dict(
        rows(
            warehouse,
            "select source_system || ':' || source_id, match_method from intermediate.int_project_source_ids",
        )
    )
    # a code typed differently is still the PSA's project, matched after normalising
    assert ids("project_code_variant")
    assert {methods[f"time:{pid}"] for pid in ids("project_code_variant")} == {"normalised_code"}
    clients = dict(
        rows(
            warehouse,
            "select source_system || ':' || source_id, match_method from intermediate.int_client_source_ids",
        )
    )
    # legacy ERP customers have no CRM id: never matched by shared id
    assert ids("legacy_erp_customer")
    assert all(clients[f"erp:{key}"] != "shared_id" for key in ids("legacy_erp_customer"))
    # a drifted name still lands on the CRM account (time tool and ERP)
    drifted = ids("client_name_drift")
    by_account = rows(
        warehouse,
        "select client_id, source_system, match_method from "
        "intermediate.int_client_source_ids where source_system <> 'crm'",
    )
    matched = {client for client, _system, method in by_account if method in ("normalised_name", "shared_id")}
    assert drifted <= matched


def test_blocked_time_never_looks_billable(warehouse: Path) -> None:
    """Every time entry with a blocking exception carries the flag, with the rule named."""
    missing = rows(
        warehouse,
        """
        select exceptions.rule_code, exceptions.record_id
        from marts.fct_exceptions as exceptions
        left join marts.fct_time_entries as entries on exceptions.time_entry_id = entries.time_entry_id
        where exceptions.is_blocking and exceptions.record_type = 'time_entry'
          and not coalesce(entries.has_blocking_exception, false)
        """,
    )
    assert missing == []
    flagged = rows(warehouse, "select count(*) from marts.fct_time_entries where has_blocking_exception")
    assert flagged[0][0] > 0


def test_exception_history_survives_a_full_refresh_and_records_resolutions(
    loaded: tuple[Path, Path], tmp_path: Path
) -> None:
    raw_db = copy_raw(loaded[1], tmp_path / "raw.duckdb")
    out = tmp_path / "wh"
    warehouse = built(raw_db, out, "--vars", "{as_of_at: '2026-10-01T00:00:00'}")
    first = dict(rows(warehouse, "select exception_id, first_detected_at from marts.exception_history"))
    assert first and set(map(str, first.values())) == {"2026-10-01 00:00:00"}

    # a full rebuild, two days later: ages keep counting from the first detection
    warehouse = built(raw_db, out, "--full-refresh", "--vars", "{as_of_at: '2026-10-03T00:00:00'}")
    again = dict(rows(warehouse, "select exception_id, first_detected_at from marts.exception_history"))
    assert {key: again[key] for key in first} == first
    aging = rows(
        warehouse, "select distinct age_days, age_bucket from marts.rpt_exception_aging where is_open"
    )
    assert (2, "0-2") in aging

    # the PMO fixes the unknown project: its entries are removed from the time tool
    unknown = rows(
        warehouse, "select time_entry_id from marts.fct_exceptions where rule_code = 'TIME_UNKNOWN_PROJECT'"
    )
    assert unknown
    with duckdb.connect(str(raw_db)) as connection:
        connection.execute(
            "delete from raw_time.time_entries where id in (select unnest(?))",
            [[entry for (entry,) in unknown]],
        )
    warehouse = built(raw_db, out, "--vars", "{as_of_at: '2026-10-12T00:00:00'}")
    resolved = rows(
        warehouse,
        "select resolved_at, age_days, age_bucket, is_open from marts.rpt_exception_aging "
        "where rule_code = 'TIME_UNKNOWN_PROJECT'",
    )
    assert len(resolved) == len(unknown)
    assert {(str(at), age, bucket, is_open) for at, age, bucket, is_open in resolved} == {
        ("2026-10-12 00:00:00", 11, "8-30", False)
    }
    still_open = rows(
        warehouse,
        "select distinct age_days from marts.rpt_exception_aging "
        "where is_open and first_detected_at = '2026-10-01 00:00:00'",
    )
    assert still_open == [(11,)]
