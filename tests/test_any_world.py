"""Any world runs: one whose optional entities are all empty, and the hand-written one as it is.

A firm may have no payments yet, no expenses, no time off this year, a realm without ERP history
(docs/sandbox.md, "Which entities a world may leave empty"). Every declared raw table then exists
with zero rows after the load (ingestion/run.py, `create_declared`), the warehouse publishes, and
the figures are true zeros. A table created empty later receives rows like any other. And a
hand-written world, which has no `hr_drop/` of its own, gets its payroll files when it is served
or run, so it goes through the real pipeline unchanged.

Everything is real: the sandbox over HTTP, `python -m billable.pipeline` (ingest, dbt, sync),
DuckDB. One pipeline run per world (a few minutes each on two cores).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import duckdb
import jinja2
import pytest
import yaml

from billable.sandbox_process import running_sandbox
from tests.ingest_helpers import FAST_RETRIES, ROOT, copy_world

HANDWRITTEN = ROOT / "tests" / "worlds" / "handwritten"

# What a new firm may not have yet (docs/sandbox.md): all of the ERP but its reference data
# (no transactions, no rates, no closed period), expenses, time off and holidays, milestones,
# rate cards, opportunities. Deleting a file is the documented way to say "none".
OPTIONAL = (
    "erp/Payment.jsonl",
    "erp/Invoice.jsonl",
    "erp/TimeActivity.jsonl",
    "erp/ExchangeRate.jsonl",
    "erp/period_closes.jsonl",
    "time/expenses.jsonl",
    "hr/time_off.jsonl",
    "hr/holidays.jsonl",
    "psa/stories.jsonl",
    "psa/rate_cards.jsonl",
    "psa/rate_card_versions.jsonl",
    "crm/Opportunity.jsonl",
)

# The raw tables nothing lands in for that world: each must exist, empty.
EMPTY_TABLES = {
    "raw_crm": ("opportunity", "quarantine"),
    "raw_psa": ("stories", "rate_cards", "rate_card_versions", "quarantine"),
    "raw_time": ("expenses", "time_entries_deletions", "expenses_deletions", "quarantine"),
    "raw_hr": ("time_off", "holidays", "quarantine"),
    "raw_erp": (
        *("exchange_rates", "time_activities", "invoices", "invoice_lines"),
        *("payments", "payment_lines", "quarantine"),
    ),
}


@dataclass(frozen=True)
class Run:
    world: Path
    raw_db: Path
    warehouse: Path
    output: str


def pipeline(world: Path, raw_db: Path, *only: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "billable.pipeline", "--world", str(world), "--port", "0"]
    command += ["--raw-db", str(raw_db), *(arg for step in only for arg in ("--only", step))]
    env = {**os.environ, **FAST_RETRIES, "BILLABLE_PROGRESS": ""}
    return subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1500)


def rows(database: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(database), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def column_types(raw_db: Path) -> dict[tuple[str, str, str], str]:
    found = rows(
        raw_db,
        "select table_schema, table_name, column_name, data_type from information_schema.columns "
        "where table_schema like 'raw\\_%' escape '\\' and table_schema not like '%\\_staging' escape '\\'",
    )
    return {(schema, table, column): kind for schema, table, column, kind in found}


@pytest.fixture(scope="module")
def empty_firm(tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("empty_firm")
    world = copy_world(HANDWRITTEN, folder / "world")
    for name in OPTIONAL:
        (world / name).unlink()
    raw_db = folder / "data" / "raw.duckdb"
    result = pipeline(world, raw_db)
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    return Run(world, raw_db, raw_db.parent / "warehouse.duckdb", output)


def test_a_world_with_every_optional_entity_empty_publishes_true_zeros(empty_firm: Run) -> None:
    assert "transform: published" in empty_firm.output
    warehouse = empty_firm.warehouse
    # nothing invoiced, nothing paid: no receivables to age, no DSO to compute, not a made-up row
    for mart in ("fct_invoices", "fct_payments", "rpt_ar_aging", "rpt_dso", "fct_expenses"):
        assert rows(warehouse, f"select count(*) from marts.{mart}") == [(0,)], mart
    # no expenses: WIP carries a zero expense amount, not a blank
    [(wip_rows, expense_nulls, expense_total)] = rows(
        warehouse,
        "select count(*), count(*) - count(wip_expense_amount), sum(wip_expense_amount) from marts.rpt_wip",
    )
    assert wip_rows > 0 and expense_nulls == 0 and expense_total == 0
    # no time off, no holidays: capacity is the full standard hours, every working day
    [(days, off_nulls, off_total, holidays, short_days, capacity)] = rows(
        warehouse,
        "select count(*), count(*) - count(time_off_hours), sum(time_off_hours), "
        "count(*) filter (where is_holiday), count(*) filter (where capacity_hours <> standard_hours), "
        "sum(capacity_hours) from marts.fct_capacity_daily",
    )
    assert days > 0 and capacity > 0
    assert (off_nulls, off_total, holidays, short_days) == (0, 0, 0, 0)
    [(months, capacity_nulls, monthly_capacity)] = rows(
        warehouse,
        "select count(*), count(*) - count(capacity_hours), sum(capacity_hours) from marts.rpt_utilization",
    )
    assert months > 0 and capacity_nulls == 0 and monthly_capacity == capacity


def test_every_raw_table_the_warehouse_reads_exists_the_empty_ones_with_zero_rows(empty_firm: Run) -> None:
    present = set(rows(empty_firm.raw_db, "select table_schema, table_name from information_schema.tables"))
    sources = yaml.safe_load((ROOT / "dbt_project" / "models" / "staging" / "_sources.yml").read_text())
    for source in sources["sources"]:
        # a schema may depend on the engine (`raw_ops` off DuckDB): this world is on DuckDB
        schema = jinja2.Template(source["schema"]).render(target={"type": "duckdb"})
        for table in source["tables"]:
            assert (schema, table["name"]) in present, f"{schema}.{table['name']} missing"
    for dataset, tables in EMPTY_TABLES.items():
        for table in tables:
            assert rows(empty_firm.raw_db, f"select count(*) from {dataset}.{table}") == [(0,)], table
    created = "created empty (nothing of them yet): exchange_rates, time_activities, invoices"
    assert created in empty_firm.output


def test_tables_created_empty_take_later_rows_with_the_same_types_once(empty_firm: Run) -> None:
    """The firm's first invoices and expenses arrive, then its first payment: they land in the
    tables created empty, with the types those were declared with, and a further run lands
    nothing twice. Invoiced but not paid yet: zero collected, AR equal to the invoices."""
    before = column_types(empty_firm.raw_db)
    for name in ("erp/TimeActivity.jsonl", "time/expenses.jsonl"):
        shutil.copy(HANDWRITTEN / name, empty_firm.world / name)
    # the hand-written invoices as they stood before any payment: the whole total still due
    unpaid = [
        {**invoice, "Balance": invoice["TotalAmt"]} for invoice in jsonl(HANDWRITTEN / "erp/Invoice.jsonl")
    ]
    (empty_firm.world / "erp/Invoice.jsonl").write_text("".join(json.dumps(row) + "\n" for row in unpaid))
    result = pipeline(empty_firm.world, empty_firm.raw_db, "ingest", "transform")
    assert result.returncode == 0, (result.stdout + result.stderr)[-6000:]
    [(invoices, invoiced, paid, paid_nulls)] = rows(
        empty_firm.warehouse,
        "select count(*), sum(total_amount), sum(paid_amount), count(*) - count(paid_amount) "
        "from marts.fct_invoices",
    )
    assert (invoices, paid, paid_nulls) == (3, 0, 0) and invoiced > 0
    [(open_now,)] = rows(
        empty_firm.warehouse,
        "select sum(open_amount) from marts.rpt_ar_aging "
        "where month_start_date = (select max(month_start_date) from marts.rpt_ar_aging)",
    )
    assert open_now == invoiced
    shutil.copy(HANDWRITTEN / "erp/Payment.jsonl", empty_firm.world / "erp/Payment.jsonl")
    landed = {
        "raw_erp.invoices": 3,
        "raw_erp.invoice_lines": 3,
        "raw_erp.payments": 1,
        "raw_erp.payment_lines": 1,
        "raw_erp.time_activities": 1,
        "raw_time.expenses": 2,
    }
    for attempt in ("first", "again"):
        result = pipeline(empty_firm.world, empty_firm.raw_db, "ingest")
        assert result.returncode == 0, f"{attempt}: {(result.stdout + result.stderr)[-6000:]}"
        counts = {table: rows(empty_firm.raw_db, f"select count(*) from {table}")[0][0] for table in landed}
        assert counts == landed, attempt
    after = column_types(empty_firm.raw_db)
    changed = {key: (kind, after.get(key)) for key, kind in before.items() if after.get(key) != kind}
    assert not changed, f"columns of tables created empty changed type: {changed}"
    [(amount,)] = rows(empty_firm.raw_db, "select sum(total_amt) from raw_erp.payments")
    assert amount > 0


def test_serving_a_hand_written_world_delivers_its_hr_drop_once(tmp_path: Path) -> None:
    world = copy_world(HANDWRITTEN, tmp_path / "world")
    assert not (world / "hr_drop").exists()
    with running_sandbox(world):
        pass
    files = {path.name: path.stat().st_mtime_ns for path in (world / "hr_drop").iterdir()}
    # two deliveries are due at the clock (one late), four files each
    assert sorted(files) == sorted(
        f"{kind}_{day}.csv"
        for kind in ("employees", "cost_rates", "time_off", "holidays")
        for day in ("2024-12-31", "2025-01-31")
    )
    with running_sandbox(world):
        pass
    assert {path.name: path.stat().st_mtime_ns for path in (world / "hr_drop").iterdir()} == files


def test_the_hand_written_world_as_checked_in_goes_through_the_pipeline(handwritten_firm) -> None:
    """The session's hand-written firm is the checked-in world, copied without an hr_drop/, run by
    `python -m billable.pipeline` (tests/conftest.py): its payroll came from the drop the pipeline
    delivered (two deliveries due at the clock, four files each; three employees)."""
    assert rows(handwritten_firm.raw_db, "select count(*) from raw_hr.files") == [(8,)]
    assert rows(handwritten_firm.raw_db, "select count(distinct employee_id) from raw_hr.employees") == [(3,)]
    employees = "select count(distinct employee_id) from marts.dim_employees"
    assert rows(handwritten_firm.warehouse, employees) == [(3,)]
