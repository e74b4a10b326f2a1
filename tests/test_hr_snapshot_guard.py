"""Truncated HR snapshots (issue 13, fault 3): a snapshot that lost most of the previous one's rows
or people, a header-only file, a file cut mid-line are refused, named, recorded and re-checked;
the rest of the drop still loads; an operator can mark a shrink intended; the full file loads.

The real runner (`python -m ingestion --sources hr`) on a generated tiny world's drop folder, into a
real DuckDB. The HR source reads files only, so no sandbox server is needed. One baseline load of
the whole drop per module; each test works on its own copy of it.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from datetime import date
from pathlib import Path

import pytest

from ingestion.hr.snapshots import KINDS, SnapshotSize, shrinkage
from tests.ingest_helpers import ROOT, generate_world, ingest_command, query

LATEST = "2026-09-29"  # the newest snapshot date of the tiny world (seed 5) at its starting clock
NEXT = "2026-09-30"


@pytest.fixture(scope="module")
def baseline(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The drop folder and a raw database with the whole drop loaded (dlt's pipeline state beside it)."""
    root = tmp_path_factory.mktemp("hr_guard")
    world = generate_world(root / "world")
    base = root / "base"
    shutil.copytree(world / "hr_drop", base / "drop")
    result = run_hr(base)
    assert result.returncode == 0, result.stdout + result.stderr
    return base


@pytest.fixture
def work(baseline: Path, tmp_path: Path) -> Path:
    return Path(shutil.copytree(baseline, tmp_path / "work"))


def run_hr(work: Path, **env: str) -> subprocess.CompletedProcess:
    environment = {**os.environ, "SOURCES__HR_DROP__DROP_FOLDER": str(work / "drop"), **env}
    return subprocess.run(
        ingest_command(work / "raw.duckdb", "hr"),
        cwd=ROOT,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def lines(work: Path, kind: str, snapshot: str = LATEST) -> list[str]:
    return (work / "drop" / f"{kind}_{snapshot}.csv").read_text().splitlines(keepends=True)


def write(work: Path, name: str, content: str) -> Path:
    path = work / "drop" / name
    path.write_text(content)
    return path


def landed(work: Path, table: str, file_name: str) -> int:
    return query(work / "raw.duckdb", f"select count(*) from raw_hr.{table} where file_name = ?", file_name)[
        0
    ][0]


def files_rows(work: Path, file_name: str) -> list[tuple]:
    return query(work / "raw.duckdb", "select file_name from raw_hr.files where file_name = ?", file_name)


def refused(work: Path, file_name: str) -> list[tuple]:
    return query(
        work / "raw.duckdb",
        "select kind, rows, people, previous_file_name, previous_rows, previous_people, status, reason "
        "from raw_hr.refused_files where file_name = ? order by refused_at",
        file_name,
    )


def last_hr_log(work: Path) -> list[tuple]:
    return query(
        work / "raw.duckdb",
        "select status, error from ops.load_log where source = 'hr' "
        "and run_id = (select max(run_id) from ops.load_log)",
    )


def current_rates(work: Path) -> dict[tuple[str, str], float]:
    """Each employee's rate history as the warehouse reads it: from their latest cost-rate snapshot."""
    rows = query(
        work / "raw.duckdb",
        "select employee_id, effective_from::varchar, hourly_cost from raw_hr.cost_rates as rates "
        "where snapshot_date = (select max(snapshot_date) from raw_hr.cost_rates as latest "
        "where latest.employee_id = rates.employee_id)",
    )
    return {(employee, start): cost for employee, start, cost in rows}


def test_truncated_cost_rates_are_refused_until_the_full_file_arrives(work: Path) -> None:
    full = lines(work, "cost_rates")
    assert len(full) - 1 == 36
    rates_before = current_rates(work)
    name = f"cost_rates_{NEXT}.csv"
    write(work, name, "".join(full[:10]))  # the header and 9 of 36 rows, cut at a line boundary
    # The same run brings a complete employees snapshot: it is independent of the refused file.
    write(work, f"employees_{NEXT}.csv", "".join(lines(work, "employees")))

    result = run_hr(work)
    assert result.returncode == 1, result.stdout + result.stderr
    assert name in result.stdout
    assert "9 rows" in result.stdout and "36 rows" in result.stdout
    assert "SOURCES__HR_DROP__ACCEPT_SHRINK" in result.stdout
    assert landed(work, "cost_rates", name) == 0, "nothing of a refused file may land"
    assert files_rows(work, name) == [], "a refused file is not marked loaded"
    assert current_rates(work) == rates_before, "no raise may disappear"
    assert landed(work, "employees", f"employees_{NEXT}.csv") == 20, "the good file of the run loads"
    [(kind, rows, people, previous, previous_rows, previous_people, status, reason)] = refused(work, name)
    assert (kind, rows, people) == ("cost_rates", 9, 6)
    assert (previous, previous_rows, previous_people) == (f"cost_rates_{LATEST}.csv", 36, 20)
    assert status == "refused" and "80%" in reason
    [(status, error)] = [row for row in last_hr_log(work) if row[0] == "failed"]
    assert name in error and "9 rows" in error and "36 rows" in error

    # Re-checked on every run: still refused, still one row in refused_files.
    again = run_hr(work)
    assert again.returncode == 1 and name in again.stdout
    assert landed(work, "cost_rates", name) == 0
    assert len(refused(work, name)) == 1

    # Payroll replaces it with the complete export: it loads, and the refusal shows it was replaced.
    write(work, name, "".join(full))
    fixed = run_hr(work)
    assert fixed.returncode == 0, fixed.stdout + fixed.stderr
    assert landed(work, "cost_rates", name) == 36
    assert files_rows(work, name) == [(name,)]
    assert [row[6] for row in refused(work, name)] == ["replaced"]
    assert current_rates(work) == rates_before


def test_header_only_and_partial_files_of_every_kind_are_refused(work: Path) -> None:
    # Every kind is a full snapshot read downstream from its latest file: time off and holidays too.
    cases = {
        "cost_rates": (1, ("cost_rates", 0, 0, f"cost_rates_{LATEST}.csv", 36, 20)),  # header only
        "employees": (6, ("employees", 5, 5, f"employees_{LATEST}.csv", 20, 20)),  # 5 of 20 people
        "time_off": (1, ("time_off", 0, 0, f"time_off_{LATEST}.csv", 173, 18)),  # header only
        "holidays": (35, ("holidays", 34, 2, f"holidays_{LATEST}.csv", 65, 3)),  # 2 of 3 legal entities
    }
    for kind, (keep, _) in cases.items():
        write(work, f"{kind}_{NEXT}.csv", "".join(lines(work, kind)[:keep]))
    result = run_hr(work)
    assert result.returncode == 1, result.stdout + result.stderr
    errors = " ".join(error for status, error in last_hr_log(work) if status == "failed")
    for kind, (_, expected) in cases.items():
        name = f"{kind}_{NEXT}.csv"
        assert name in result.stdout and name in errors
        assert landed(work, kind, name) == 0
        assert files_rows(work, name) == []
        assert [row[:6] for row in refused(work, name)] == [expected]
    assert "(header only)" in errors

    # Taken out of the drop folder by the operator: the refusals say so, nothing is refused any more.
    for kind in cases:
        (work / "drop" / f"{kind}_{NEXT}.csv").unlink()
    cleared = run_hr(work)
    assert cleared.returncode == 0, cleared.stdout + cleared.stderr
    assert {refused(work, f"{kind}_{NEXT}.csv")[0][6] for kind in cases} == {"removed"}


def test_the_share_is_configurable_and_checked(work: Path) -> None:
    name = f"cost_rates_{NEXT}.csv"
    write(work, name, "".join(lines(work, "cost_rates")[:10]))  # 25 % of the rows, 30 % of the people
    wrong = run_hr(work, SOURCES__HR_DROP__MIN_SNAPSHOT_SHARE="80")
    assert wrong.returncode == 1
    assert "min_snapshot_share" in wrong.stdout and "between 0 and 1" in wrong.stdout
    assert landed(work, "cost_rates", name) == 0
    result = run_hr(work, SOURCES__HR_DROP__MIN_SNAPSHOT_SHARE="0.2")
    assert result.returncode == 0, result.stdout + result.stderr
    assert landed(work, "cost_rates", name) == 9


def test_a_shrink_marked_intended_loads(work: Path) -> None:
    name = f"cost_rates_{NEXT}.csv"
    write(work, name, "".join(lines(work, "cost_rates")[:10]))
    result = run_hr(work, SOURCES__HR_DROP__ACCEPT_SHRINK=json.dumps([name]))
    assert result.returncode == 0, result.stdout + result.stderr
    assert "accepted" in result.stdout and name in result.stdout
    assert landed(work, "cost_rates", name) == 9
    assert query(
        work / "raw.duckdb", "select shrink_accepted from raw_hr.files where file_name = ?", name
    ) == [(True,)]


def test_a_file_cut_mid_line_is_refused(work: Path) -> None:
    # Cut inside the last field: the last line still has 4 fields ("GB" for "GBP"), it would land.
    cost_rates = f"cost_rates_{NEXT}.csv"
    write(work, cost_rates, "".join(lines(work, "cost_rates"))[:-2])
    # Cut mid-line with fewer fields: the row was quarantined and the rest of the file loaded.
    employees = f"employees_{NEXT}.csv"
    write(work, employees, "".join(lines(work, "employees"))[:-60])
    result = run_hr(work, SOURCES__HR_DROP__ACCEPT_SHRINK=json.dumps([cost_rates, employees]))
    assert result.returncode == 1, result.stdout + result.stderr
    for name, table in ((cost_rates, "cost_rates"), (employees, "employees")):
        assert name in result.stdout and "ends mid-line" in result.stdout
        assert landed(work, table, name) == 0
        assert files_rows(work, name) == []
        assert refused(work, name)[0][6] == "refused"
    quarantine = query(
        work / "raw.duckdb",
        "select count(*) from duckdb_tables() where schema_name = 'raw_hr' and table_name = 'quarantine'",
    )
    if quarantine[0][0]:  # the tiny world's drop has no bad row, so there may be no quarantine yet
        assert query(
            work / "raw.duckdb",
            "select count(*) from raw_hr.quarantine where context__file_name = ?",
            employees,
        ) == [(0,)]


def test_a_late_file_is_compared_with_the_snapshot_before_it(work: Path) -> None:
    # A late snapshot of an older date than everything loaded: its predecessor is the one before it.
    name = "cost_rates_2026-09-16.csv"
    write(work, name, "".join(lines(work, "cost_rates", "2026-08-31")))
    result = run_hr(work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert landed(work, "cost_rates", name) == len(lines(work, "cost_rates", "2026-08-31")) - 1


def size(rows: int, people: int, day: int = 2) -> SnapshotSize:
    return SnapshotSize(f"cost_rates_2026-11-{day:02d}.csv", date(2026, 11, day), rows, people)


def test_shrinkage_rule() -> None:
    kind = KINDS["cost_rates"]
    previous = size(39, 20, day=1)
    assert shrinkage(kind, size(39, 20), None, 0.8) == ""  # the first snapshot of its kind
    assert shrinkage(kind, size(32, 16), previous, 0.8) == ""  # 82 % of the rows, 80 % of the people
    assert "9 rows" in shrinkage(kind, size(9, 6), previous, 0.8)
    assert "15 employees" in shrinkage(kind, size(39, 15), previous, 0.8)  # the rows alone are not enough
    assert "header only" in shrinkage(kind, size(0, 0), previous, 0.8)
    assert shrinkage(kind, size(0, 0), size(0, 0, day=1), 0.8) == ""  # nothing to lose
    assert shrinkage(kind, size(9, 6), previous, 0.2) == ""  # the share is configurable
