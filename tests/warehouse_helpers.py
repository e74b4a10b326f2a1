"""Building and reading warehouses in tests: the real transform runner, real DuckDB files."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from billable.sandbox_process import running_sandbox
from billable.transform import dbt_executable
from tests.ingest_helpers import ROOT, generate_world, ingest


def load_tiny_world(folder: Path, seed: int = 7) -> tuple[Path, Path]:
    """Generate a tiny world and load all five systems from its sandbox; (world, raw db)."""
    world = generate_world(folder / "world", seed=seed)
    raw_db = folder / "raw.duckdb"
    with running_sandbox(world) as base_url:
        result = ingest(base_url, world, raw_db, "")
    assert result.returncode == 0, result.stdout + result.stderr
    return world, raw_db


def transform(
    raw_db: Path, out: Path, *extra: str, build_dir: Path | None = None
) -> subprocess.CompletedProcess:
    """`python -m billable.transform` publishing `out/warehouse.duckdb` (built in `out/build`)."""
    command = [sys.executable, "-m", "billable.transform", "--raw-db", str(raw_db)]
    command += ["--warehouse", str(out / "warehouse.duckdb"), "--build-dir", str(build_dir or out / "build")]
    return subprocess.run(
        [*command, *extra], cwd=ROOT, capture_output=True, text=True, check=False, timeout=900
    )


def built(raw_db: Path, out: Path, *extra: str) -> Path:
    """Transform and insist it published; the published warehouse's path."""
    result = transform(raw_db, out, *extra)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return out / "warehouse.duckdb"


def rows(warehouse: Path, sql: str, *params: object) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


def copy_raw(raw_db: Path, target: Path) -> Path:
    shutil.copyfile(raw_db, target)
    return target


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_models(raw_db: Path, folder: Path, *select: str) -> Path:
    """`dbt build` of some models (and their own tests) from `raw_db` into `folder/warehouse.duckdb`.

    Tests that also read models not built here (tie-outs to the facts) are left out (cautious
    indirect selection). Cheaper than a whole transform when a test needs only a few models.
    """
    folder.mkdir(parents=True)
    build_db = folder / "warehouse.duckdb"
    project = ROOT / "dbt_project"
    command = [*dbt_executable(), "build", "--project-dir", str(project), "--profiles-dir", str(project)]
    command += ["--target-path", str(folder / "target"), "--log-path", str(folder / "logs")]
    command += ["--select", *select, "--indirect-selection", "cautious"]
    env = {**os.environ, "BILLABLE_RAW_DB": str(raw_db), "BILLABLE_BUILD_DB": str(build_db)}
    env["DBT_USE_COLORS"] = "false"
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return build_db


UPLIFT = 10  # added to the amended rate-card version's bill rate


def change_every_input(warehouse: Path, raw_db: Path) -> dict:
    """Change the raw data in every way that must reach the time-entry chain, picking the records
    from `warehouse` (built from `raw_db`): a rate-card amendment on a version pricing invoiced and
    uninvoiced time, a correction that keeps an old change stamp, a deletion the time tool never
    announces, an HR cost raise, a corrected exchange rate, a project put on hold, and a time user
    whose identity match is lost. Returns what was picked, with the values before."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        # a version pricing both invoiced and not yet invoiced time
        version_id, old_rate = connection.execute(
            """
            select rate_card_version_id, min(standard_bill_rate)
            from marts.fct_time_entries
            where rate_card_version_id is not null
            group by rate_card_version_id
            having bool_or(is_rated_from_invoice) and bool_or(not is_rated_from_invoice)
            order by count(*) desc, rate_card_version_id
            limit 1
            """
        ).fetchone()
        gone_id = connection.execute(
            "select max(time_entry_id) from marts.fct_time_entries where spent_date < date '2026-09-01'"
        ).fetchone()[0]

        # an entry's employee (for a cost raise) and a non-USD day an entry was worked (for a quote)
        employee_id, cost_entry_id, old_cost = connection.execute(
            """
            select employee_id, time_entry_id, cost_amount from marts.fct_time_entries
            where is_known_employee and cost_amount > 0
            order by time_entry_id limit 1
            """
        ).fetchone()
        fx_day, fx_currency, fx_entry_id, old_fx = connection.execute(
            """
            select spent_date, currency_code, time_entry_id, fx_rate_to_reporting from marts.fct_time_entries
            where currency_code <> 'USD' and bill_amount > 0
            order by time_entry_id limit 1
            """
        ).fetchone()
        psa_project_id, project_id = connection.execute(
            """
            select projects.psa_project_id, projects.project_id
            from intermediate.int_projects as projects
            inner join marts.fct_time_entries as entries on projects.project_id = entries.project_id
            where projects.psa_project_id is not null and entries.time_entry_id not in (?, ?)
            order by projects.project_id limit 1
            """,
            [cost_entry_id, fx_entry_id],
        ).fetchone()
        time_user_id = connection.execute(
            """
            select time_user_id from marts.fct_time_entries
            where is_known_employee and employee_id <> ?
            order by time_user_id desc limit 1
            """,
            [employee_id],
        ).fetchone()[0]

        # an old, unbilled entry, changed far outside the lookback window
        corrected_id, corrected_hours = connection.execute(
            """
            select time_entry_id, hours from marts.fct_time_entries
            where not is_invoiced and time_entry_id <> ?
                and updated_at < (select max(updated_at) - interval 30 day from marts.fct_time_entries)
            order by time_entry_id limit 1
            """,
            [gone_id],
        ).fetchone()
    with duckdb.connect(str(raw_db)) as connection:
        # the PSA amends the rate (its change stamp moves, as Kantata's would)
        connection.execute(
            "update raw_psa.rate_card_versions set bill_rate = bill_rate + ?, "
            "updated_at = '2026-10-03T09:00:00Z' where id = ?",
            [UPLIFT, version_id],
        )
        # a correction that keeps an old stamp (a back-dated fix): only the row hash sees it
        connection.execute("update raw_time.time_entries set hours = hours + 1 where id = ?", [corrected_id])
        # a deletion found by the loader's re-scan and confirmed by a later check (the table is
        # there, empty, after any load: every column dlt requires is given), in the last load of
        # the time source: a lake's readers see only the rows of completed loads
        connection.execute(
            "insert into raw_time.time_entries_deletions (id, detected_at, last_confirmed_at, "
            "confirmations, status, confirmed_at, _dlt_load_id, _dlt_id) "
            "select ?, now() - interval 1 day, now(), 2, 'confirmed', now(), max(load_id), 'test-deletion' "
            "from raw_time._dlt_loads",
            [gone_id],
        )

        # HR re-issues the employee's cost rates with a raise (in the latest snapshot, which rules)
        connection.execute(
            "update raw_hr.cost_rates set hourly_cost = hourly_cost + 7 where employee_id = ? "
            "and snapshot_date = (select max(snapshot_date) from raw_hr.cost_rates)",
            [employee_id],
        )
        # the ERP corrects a day's quote of the currency to the reporting currency
        connection.execute(
            "update raw_erp.exchange_rates set rate = rate * 1.01 where as_of_date = ? "
            "and source_currency_code = ? and target_currency_code = 'USD'",
            [fx_day, fx_currency],
        )
        # the PSA puts a project on hold
        connection.execute(
            "update raw_psa.workspaces set status__message = 'On Hold (incremental test)' where id = ?",
            [psa_project_id],
        )
        # a time user's e-mail no longer matches anyone in HR: their entries lose the employee
        connection.execute(
            "update raw_time.users set email = 'left-the-firm-' || email, first_name = 'Someone', "
            "last_name = 'Else' where id = ?",
            [time_user_id],
        )

    return {
        "version_id": version_id,
        "old_rate": old_rate,
        "corrected": (corrected_id, corrected_hours),
        "gone_id": gone_id,
        "cost": (cost_entry_id, old_cost),
        "fx": (fx_entry_id, old_fx),
        "project_id": project_id,
        "time_user_id": time_user_id,
    }


DBT_PROJECT = ROOT / "dbt_project"


def dbt_build(raw_db: Path, build_db: Path, *extra: str, code: str = "") -> None:
    """Build fct_time_entries and everything it reads (no tests) into build_db; `code` stands for
    the project's fingerprint billable.transform passes (macros/follow_change.sql)."""
    work = build_db.parent
    command = [
        *dbt_executable(),
        "build",
        "--project-dir",
        str(DBT_PROJECT),
        "--profiles-dir",
        str(DBT_PROJECT),
    ]
    command += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    command += ["--select", "+fct_time_entries", "--exclude-resource-type", "test", "unit_test", *extra]
    env = {
        **os.environ,
        "BILLABLE_RAW_DB": str(raw_db),
        "BILLABLE_BUILD_DB": str(build_db),
        "BILLABLE_PROJECT_FINGERPRINT": code,
        "DBT_USE_COLORS": "false",
    }
    result = subprocess.run(command, cwd=DBT_PROJECT, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
