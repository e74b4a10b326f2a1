"""Comparing the same warehouse on two engines, row by row (tests/test_engine_*.py).

Every relation of a schema is read whole from each engine and its rows compared as multisets,
value by value after one normalisation: money and other decimals exactly (to the cent and beyond,
trailing zeros aside; Python compares a decimal with an equal integer or double as equal), doubles
to 9 significant digits (ratios summed in another order), timestamps as naive UTC, lists as
tuples, JSON text as data (numbers by value). Columns whose values are set at run time
(ERP-assigned ids, the sync's wall clock, dbt invocation ids) differ between any two runs of the
same code on the same engine, so they are named and left out; everything else must be equal.
"""

from __future__ import annotations

import json
import math
from collections import Counter
from collections.abc import Iterable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

# Set by the run, not by the data: two DuckDB runs of the same world differ here too.
RUN_VOLATILE = {
    "exception_history": {"episode_id", "first_detected_invocation_id", "last_seen_invocation_id"},
    "fct_invoice_lines": {"erp_invoice_line_key", "erp_invoice_key"},
    "fct_invoices": {"erp_invoice_key", "erp_invoice_id", "created_at", "updated_at"},
    "fct_milestones": {"erp_invoice_line_key", "erp_invoice_key"},
    "fct_reconciliation_items": {"erp_last_posted_at"},
    "fct_time_entries": {"erp_time_activity_key", "erp_posted_at", "row_hash"},
    "rpt_forecast_snapshots": {"snapshot_invocation_id"},
    "rpt_billable_lines": {"status_reason", "erp_invoice_key", "erp_record_key"},
    "rpt_exception_aging": {"episode_id"},
    "rpt_posting_latency": {
        "erp_time_activity_key",
        "erp_posted_at",
        "posting_latency_hours",
        "sync_acknowledged_at",
        "sync_run_id",
    },
}


def normalise(value: Any) -> Any:
    """One engine-independent form of a value."""
    if value is None:
        return None
    if isinstance(value, str) and value[:1] in "{[":
        # JSON text (fct_exceptions.details): compared as data, numbers by value (PostgreSQL
        # writes a numeric's scale, 2.5000, where DuckDB writes the double 2.5)
        try:
            parsed = json.loads(value, parse_float=Decimal)
        except ValueError:
            return value
        return json.dumps(as_plain(parsed), sort_keys=True)
    if isinstance(value, bool):
        return value
    if isinstance(value, Decimal):  # exact: 4.0000 and 4 are one value, 0.01 apart are not
        return value.normalize()
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return float(f"{value:.9g}")
    if isinstance(value, int):
        return value
    if isinstance(value, datetime):
        if value.tzinfo is not None:
            value = value.astimezone(UTC).replace(tzinfo=None)
        return value.isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, list | tuple):
        return tuple(normalise(item) for item in value)
    return value


def as_plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {key: as_plain(item) for key, item in value.items()}
    if isinstance(value, list):
        return [as_plain(item) for item in value]
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return str(Decimal(value).normalize())
    return value


def compare_rows(
    name: str, columns: list[str], left: Iterable[tuple], right: Iterable[tuple], exclude: set[str]
) -> list[str]:
    """Differences between two relations' rows (as multisets), described; empty when equal."""
    kept = [index for index, column in enumerate(columns) if column not in exclude]

    def form(rows: Iterable[tuple]) -> Counter:
        return Counter(tuple(normalise(row[index]) for index in kept) for row in rows)

    a, b = form(left), form(right)
    if a == b:
        return []
    only_left, only_right = a - b, b - a
    shown = [columns[index] for index in kept]
    lines = [f"{name}: {sum(a.values())} vs {sum(b.values())} rows; columns {shown}"]
    lines += [f"  only in the first:  {row}" for row in list(only_left)[:3]]
    lines += [f"  only in the second: {row}" for row in list(only_right)[:3]]
    return lines


def duckdb_differences(left: Path, right: Path, schema: str = "marts", skip: Iterable[str] = ()) -> list[str]:
    """Every difference between a schema of two DuckDB warehouses (tables in `skip` left out)."""
    import duckdb

    found: list[str] = []
    listed = "select table_name from information_schema.tables where table_schema = ?"
    with duckdb.connect(str(left), read_only=True) as one, duckdb.connect(str(right), read_only=True) as two:
        ours = {name for (name,) in one.execute(listed, [schema]).fetchall()} - set(skip)
        theirs = {name for (name,) in two.execute(listed, [schema]).fetchall()} - set(skip)
        found += [f"{schema}.{name}: only in one" for name in sorted(ours ^ theirs)]
        for name in sorted(ours & theirs):
            columns = [row[0] for row in one.execute(f'describe {schema}."{name}"').fetchall()]
            if columns != [row[0] for row in two.execute(f'describe {schema}."{name}"').fetchall()]:
                found.append(f"{schema}.{name}: columns differ")
                continue
            quoted = ", ".join(f'"{column}"' for column in columns)
            sql = f'select {quoted} from {schema}."{name}"'
            found += compare_rows(
                f"{schema}.{name}",
                columns,
                one.execute(sql).fetchall(),
                two.execute(sql).fetchall(),
                RUN_VOLATILE.get(name, set()),
            )
    return found
