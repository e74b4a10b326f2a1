"""The hand-written limit: the core KPIs in plain DuckDB SQL over the raw tables
(benchmarks/limit_sql/*.sql, written from the spec independently of dbt_project), timed as one
DuckDB process, then compared figure by figure with the marts a dbt build published.

`python -m benchmarks.limit --raw-db R --warehouse W` prints the time and the comparison.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import time
from dataclasses import dataclass, field
from pathlib import Path

import duckdb

SQL_DIR = Path(__file__).resolve().parent / "limit_sql"


@dataclass(frozen=True)
class Check:
    """One KPI: the limit's rows and the marts' rows, joined on `keys`, compared on `values`."""

    name: str
    keys: tuple[str, ...]
    values: tuple[str, ...]
    limit_sql: str
    mart_sql: str


CHECKS = (
    Check(
        "utilisation per person and month",
        ("employee_id", "month"),
        ("capacity_hours", "billable_hours", "billable_utilisation"),
        "select employee_id, month, capacity_hours, billable_hours, billable_utilisation "
        "from lim_utilisation",
        "select employee_id, month_start_date as month, capacity_hours, billable_hours, "
        "billable_utilization as billable_utilisation from w.marts.rpt_utilization",
    ),
    Check(
        "billed revenue per month (USD, invoice lines)",
        ("month",),
        ("amount_reporting",),
        "select month, amount_reporting from lim_billed_revenue",
        "select cast(date_trunc('month', invoice_date) as date) as month, sum(amount_reporting) as "
        "amount_reporting from w.marts.fct_invoice_lines where invoice_date <= "
        "(select clock_date from lim_clock) group by all",
    ),
    Check(
        "billed revenue per month (USD, rpt_revenue)",
        ("month",),
        ("amount_reporting",),
        "select month, amount_reporting from lim_billed_revenue",
        "select month_start_date as month, sum(billed_amount_reporting) as amount_reporting "
        "from w.marts.rpt_revenue group by all",
    ),
    Check(
        "WIP as of the clock per currency",
        ("currency",),
        ("wip_hours", "wip_time_amount", "wip_expense_amount", "wip_milestone_amount", "wip_amount"),
        "select * from lim_wip",
        "select currency_code as currency, sum(wip_hours) as wip_hours, sum(wip_time_amount) as "
        "wip_time_amount, sum(wip_expense_amount) as wip_expense_amount, sum(wip_milestone_amount) as "
        "wip_milestone_amount, sum(wip_amount) as wip_amount from w.marts.rpt_wip "
        "where is_warehouse_now group by all",
    ),
    Check(
        "realisation per month worked and currency",
        ("month", "currency"),
        ("billable_hours", "standard_value", "billed_time_amount", "billed_fee_amount", "realisation"),
        "select * from lim_realisation",
        "select month_start_date as month, currency_code as currency, sum(billable_hours) as "
        "billable_hours, sum(standard_value) as standard_value, sum(billed_time_amount) as "
        "billed_time_amount, sum(billed_fee_amount) as billed_fee_amount, sum(billed_amount) / "
        "nullif(sum(standard_value), 0) as realisation from w.marts.rpt_realization group by all",
    ),
    Check(
        "time to invoice per invoiced entry",
        ("time_entry_id",),
        ("days_worked_to_invoice",),
        "select time_entry_id, days_worked_to_invoice from lim_time_to_invoice",
        "select time_entry_id, days_worked_to_invoice from w.marts.rpt_time_to_invoice",
    ),
)


@dataclass
class Agreement:
    name: str
    compared: int  # keys in both
    differing: int  # keys (in both or one side) where a figure differs beyond the tolerance
    only_limit: int
    only_marts: int
    largest: dict[str, float]  # per value column, the largest absolute difference
    example: str  # one differing or one-sided key, to start an explanation from
    differing_keys: list[tuple] = field(default_factory=list)


def run_limit(connection: duckdb.DuckDBPyConnection, raw_db: Path) -> float:
    """Run every limit SQL file over the raw database (attached read-only as `r`); seconds."""
    started = time.monotonic()
    connection.execute(f"attach '{raw_db}' as r (read_only)")
    for path in sorted(SQL_DIR.glob("*.sql")):
        try:
            connection.execute(path.read_text())
        except duckdb.Error as err:
            raise RuntimeError(f"limit SQL {path.name} failed on {raw_db}: {err}") from err
    return time.monotonic() - started


def differs(a: object, b: object) -> float:
    """Absolute difference of two figures, a null (or a row one side lacks) counting as zero."""
    return abs(float(a or 0) - float(b or 0))  # type: ignore[arg-type]


def keyed(connection: duckdb.DuckDBPyConnection, check: Check, sql: str, side: str) -> dict[tuple, tuple]:
    """{key: figures} of one side; a key twice is an error (a figure would silently be dropped)."""
    width = len(check.keys)
    rows = connection.execute(sql).fetchall()
    found = {row[:width]: row[width:] for row in rows}
    if len(found) != len(rows):
        raise ValueError(f"{check.name}: {side} has {len(rows) - len(found)} duplicate {check.keys} keys")
    return found


def compare(connection: duckdb.DuckDBPyConnection, check: Check, tolerance: float = 0.005) -> Agreement:
    """Join the limit's rows to the marts' on the keys; count and measure the differences.

    A key on one side only is compared with zeros (a month the marts list with nothing billed is
    no disagreement); it differs when one of its figures is not zero.
    """
    limit_rows = keyed(connection, check, check.limit_sql, "the limit")
    mart_rows = keyed(connection, check, check.mart_sql, "the marts")
    zeros: tuple = (None,) * len(check.values)
    largest = dict.fromkeys(check.values, 0.0)
    differing, example, keys = 0, "", []
    for key in sorted(limit_rows.keys() | mart_rows.keys(), key=str):
        ours, theirs = limit_rows.get(key, zeros), mart_rows.get(key, zeros)
        gaps = [differs(a, b) for a, b in zip(ours, theirs, strict=True)]
        for column, gap in zip(check.values, gaps, strict=True):
            largest[column] = max(largest[column], gap)
        if any(gap > tolerance for gap in gaps):
            differing += 1
            keys.append(key)
            if not example:
                shown = (ours if key in limit_rows else "no row", theirs if key in mart_rows else "no row")
                example = f"{key}: limit {shown[0]} vs marts {shown[1]}"
    both = len(limit_rows.keys() & mart_rows.keys())
    only_limit, only_marts = (
        len(limit_rows.keys() - mart_rows.keys()),
        len(mart_rows.keys() - limit_rows.keys()),
    )
    return Agreement(check.name, both, differing, only_limit, only_marts, largest, example, keys)


def measure(raw_db: Path, warehouse: Path) -> tuple[float, list[Agreement]]:
    """(seconds of the limit SQL, each KPI's agreement with the marts)."""
    if not raw_db.is_file():
        raise FileNotFoundError(f"no raw database at {raw_db}")
    if not warehouse.is_file():
        raise FileNotFoundError(f"no published warehouse at {warehouse}")
    with duckdb.connect() as connection:
        seconds = run_limit(connection, raw_db)
        connection.execute(f"attach '{warehouse}' as w (read_only)")
        return seconds, [compare(connection, check) for check in CHECKS]


def format_largest(largest: dict[str, float]) -> str:
    return ", ".join(f"{column} {gap:,.4g}" for column, gap in largest.items())


def agreement_table(agreements: list[Agreement]) -> list[str]:
    lines = [
        "| KPI | rows compared | rows differing | only in the limit | only in the marts "
        "| largest difference |",
        "|---|---:|---:|---:|---:|---|",
    ]
    for agreement in agreements:
        lines.append(
            f"| {agreement.name} | {agreement.compared:,} | {agreement.differing:,} "
            f"| {agreement.only_limit:,} | {agreement.only_marts:,} | {format_largest(agreement.largest)} |"
        )
    return lines


def bench_limit(bench_data: Path, presets: list[str]) -> str:
    """The limit against the dbt build, on the data the daily bench left per preset."""
    lines = [
        "The core KPIs in hand-written DuckDB SQL (`benchmarks/limit_sql/`, written from the spec "
        "and the raw tables' columns, independently of the models), run as one in-memory DuckDB "
        "over the raw database the daily bench left (`data/bench/daily-<preset>/data/raw.duckdb`), "
        "then compared with the marts published from it. The dbt build is the initial pipeline's "
        "first build (every model, every test), from the same bench.",
        "",
        "| preset | limit SQL | dbt build with tests | dbt / limit (target ≤ 3×) | load average |",
        "|---|---:|---:|---:|---|",
    ]
    details: list[str] = []
    for preset in presets:
        data = bench_data / f"daily-{preset}" / "data"
        record_file = bench_data / f"daily-{preset}.json"
        if not record_file.is_file() or not (data / "warehouse.duckdb").is_file():
            lines.append(f"| {preset} | not measured: run the daily bench first | | | |")
            continue
        record = json.loads(record_file.read_text())
        builds = [run["steps"].get("transform", 0.0) for run in record["initial"]]
        build = statistics.median(builds)
        load_before = os.getloadavg()[0]
        seconds, agreements = measure(data / "raw.duckdb", data / "warehouse.duckdb")
        load = (
            f"{load_before:.1f}→{os.getloadavg()[0]:.1f} (build: {record['initial'][0]['load_before']:.1f})"
        )
        lines.append(f"| {preset} | {seconds:.2f} s | {build:.1f} s | {build / seconds:.0f}× | {load} |")
        details += ["", f"**{preset}**: agreement with the marts (tolerance 0.005 per figure)", ""]
        details += agreement_table(agreements)
        examples = [f"- {a.name}: {a.example}" for a in agreements if a.example]
        if examples:
            details += ["", "First difference of each KPI that has one:", "", *examples]
        print(lines[-1], flush=True)
    return "\n".join(lines + details)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.limit", description=__doc__)
    parser.add_argument("--raw-db", type=Path, required=True)
    parser.add_argument("--warehouse", type=Path, required=True)
    args = parser.parse_args(argv)
    seconds, agreements = measure(args.raw_db, args.warehouse)
    print(f"limit SQL: {seconds:.2f} s")
    print("\n".join(agreement_table(agreements)))
    for agreement in agreements:
        if agreement.example:
            print(f"- {agreement.name}: e.g. {agreement.example}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
