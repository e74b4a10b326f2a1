"""An analyst's questions of the published warehouse (issue 14, point 7), on the hand-written firm
through the real pipeline (`handwritten_firm`, tests/conftest.py):

- marts.wip_as_of(date) refuses a date after the warehouse's now (2025-02-10 12:00, the world's
  clock) with a message naming that now, instead of ageing every item by the gap; a date on or
  before now is answered as before;
- every rpt_* mart that carries client_id / project_id / employee_id carries the names beside
  them (client_name; project_code and project_name; employee_name), equal to the dims'.
"""

from __future__ import annotations

import shutil
from datetime import date, datetime
from decimal import Decimal as D
from pathlib import Path

import duckdb
import pytest

from tests.warehouse_helpers import rows

NOW_MESSAGE = "the warehouse's now is 2025-02-10 12:00; ask for a date on or before it"

# rpt_* marts another part of issue 14 owns; they keep their own columns (names or not)
NOT_HERE = {"rpt_exception_aging", "rpt_reconciliation"}
# name columns a mart had before, with a meaning of their own: rpt_billable_lines' project_code
# is the line's (null on a line that left the time tool), not the dim's
OWN = {("rpt_billable_lines", "project_code")}

# id column -> the name columns that stand beside it, and how the dim gives them
NAMES = {
    "client_id": {
        "client_name": "select client_id as id, client_name as name from marts.dim_clients",
    },
    "project_id": {
        "project_code": "select project_id as id, project_code as name from marts.dim_projects",
        "project_name": "select project_id as id, project_name as name from marts.dim_projects",
    },
    "employee_id": {
        "employee_name": "select employee_id as id, full_name as name from marts.dim_employees"
        " where is_current",
    },
}


def refused(warehouse: Path, sql: str, *params: object) -> str:
    with duckdb.connect(str(warehouse), read_only=True) as connection, pytest.raises(duckdb.Error) as raised:
        connection.execute(sql, list(params)).fetchall()
    return str(raised.value)


def test_wip_as_of_a_date_after_now_is_refused_naming_the_now(handwritten_firm) -> None:
    warehouse = handwritten_firm.warehouse
    # the day after the clock: 9006 would be aged 78 days and 9502 55, silently
    message = refused(warehouse, "select * from marts.wip_as_of(date '2025-02-11')")
    assert f"wip_as_of(2025-02-11): {NOW_MESSAGE}" in message
    # an analyst's current_date (the machine's clock, far after the world's) and a parameter
    ((today,),) = rows(warehouse, "select current_date")
    assert today > date(2025, 2, 10)
    message = refused(warehouse, "select sum(wip_amount) from marts.wip_as_of(current_date)")
    assert f"wip_as_of({today.isoformat()}): {NOW_MESSAGE}" in message
    message = refused(warehouse, "select * from marts.wip_as_of(?)", "2026-12-06")
    assert f"wip_as_of(2026-12-06): {NOW_MESSAGE}" in message
    # a list of dates with one after now is refused as a whole, not answered in part
    message = refused(
        warehouse,
        "select * from marts.wip_as_of(date '2024-12-31')"
        " union all select * from marts.wip_as_of(date '2025-03-01')",
    )
    assert f"wip_as_of(2025-03-01): {NOW_MESSAGE}" in message


def test_the_refusal_does_not_depend_on_the_data(handwritten_firm, tmp_path: Path) -> None:
    """A firm with no WIP candidate yet (a copy of the warehouse without int_wip_items' rows):
    now is answered with nothing, a date after it is still refused (the function checks the
    dates on their own too, whatever the join plan)."""
    copy = tmp_path / "warehouse.duckdb"
    shutil.copyfile(handwritten_firm.warehouse, copy)
    with duckdb.connect(str(copy)) as connection:
        connection.execute("delete from intermediate.int_wip_items")
    assert rows(copy, "select * from marts.wip_as_of(date '2025-02-10')") == []
    message = refused(copy, "select * from marts.wip_as_of(date '2025-02-11')")
    assert f"wip_as_of(2025-02-11): {NOW_MESSAGE}" in message


def test_wip_as_of_now_and_before_is_answered(handwritten_firm) -> None:
    """now's own date (12:00 on 2025-02-10: the day is the warehouse's today) and earlier dates."""
    warehouse = handwritten_firm.warehouse
    assert rows(warehouse, "select as_of_at, as_of_date from intermediate.int_as_of") == [
        (datetime(2025, 2, 10, 12, 0), date(2025, 2, 10))
    ]
    at_now = rows(
        warehouse,
        "select aging_bucket, sum(wip_amount), sum(at_risk_amount) from marts.wip_as_of(date '2025-02-10')"
        " group by 1 order by 1",
    )
    # 9502 250.00 aged 54 (31-60), 9006 900.00 aged 77 (61-90), 9002 at risk 8 x 150 (0-30)
    assert at_now == [("0-30", 0, D("1200")), ("31-60", D("250"), 0), ("61-90", D("900"), 0)]
    assert rows(warehouse, "select sum(wip_amount) from marts.wip_as_of(?)", "2024-12-31") == [(D("1150"),)]


def rpt_marts(warehouse: Path) -> dict[str, set[str]]:
    columns: dict[str, set[str]] = {}
    for table, column in rows(
        warehouse,
        "select table_name, column_name from information_schema.columns"
        " where table_schema = 'marts' and table_name like 'rpt\\_%' escape '\\'",
    ):
        columns.setdefault(table, set()).add(column)
    return columns


def test_every_rpt_mart_carries_names_beside_its_ids(handwritten_firm) -> None:
    marts = rpt_marts(handwritten_firm.warehouse)
    expected = {"rpt_wip", "rpt_utilization", "rpt_time_to_invoice", "rpt_realization", "rpt_revenue"}
    assert expected <= set(marts)
    missing = {
        table: sorted(set(names) - columns)
        for table, columns in marts.items()
        if table not in NOT_HERE
        for id_column, names in NAMES.items()
        if id_column in columns and set(names) - columns
    }
    assert missing == {}


@pytest.mark.parametrize(
    "table",
    [
        "rpt_wip",
        "rpt_utilization",
        "rpt_time_to_invoice",
        "rpt_time_to_invoice_monthly",
        "rpt_realization",
        "rpt_revenue",
        "rpt_posting_latency",
        "rpt_billable_lines",
    ],
)
def test_names_equal_the_dims(handwritten_firm, table: str) -> None:
    """Row by row, each name equals the dim's for the row's id (null only where the dim lacks it),
    and the comparison is not vacuous: the firm's marts have rows with names."""
    warehouse = handwritten_firm.warehouse
    columns = rpt_marts(warehouse)[table]
    checked = 0
    for id_column, names in NAMES.items():
        if id_column not in columns:
            continue
        for name_column, dim in names.items():
            if (table, name_column) in OWN:
                continue
            differing = rows(
                warehouse,
                f"""select mart.{id_column}, mart.{name_column}, dim.name
                    from marts.{table} as mart
                    left join ({dim}) as dim on dim.id = mart.{id_column}
                    where mart.{name_column} is distinct from dim.name""",
            )
            assert differing == [], (table, name_column)
            ((named,),) = rows(warehouse, f"select count({name_column}) from marts.{table}")
            assert named > 0, (table, name_column)
            checked += 1
    assert checked > 0


def test_names_of_the_hand_written_firm(handwritten_firm) -> None:
    """The names as the world's files write them (tests/worlds/handwritten): the CRM account's
    name (not the time tool's "Northwind Traders, Inc."), the PSA workspace's code and title, HR's
    first and last names; one row per person and month, November 2024 to February 2025."""
    warehouse = handwritten_firm.warehouse
    assert rows(
        warehouse,
        "select distinct client_name, project_code, project_name from marts.rpt_wip",
    ) == [("Northwind Traders", "PRJ-101", "Northwind Pricing Analytics")]
    assert rows(
        warehouse,
        "select employee_id, employee_name, count(*) from marts.rpt_utilization group by all order by 1",
    ) == [("E00001", "Maria Lopez", 4), ("E00002", "Ana Silva", 4), ("E00003", "Ben Okafor", 4)]
    assert rows(
        warehouse,
        "select time_entry_id, client_name, project_code, employee_name from marts.rpt_time_to_invoice",
    ) == [(9001, "Northwind Traders", "PRJ-101", "Ana Silva")]
