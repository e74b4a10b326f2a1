"""The Exceptions page's reads: the open queue (rpt_exception_aging with fct_exceptions), its sort
orders, one exception's records.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from dashboards.queries.connection import read, tables
from dashboards.queries.filters import Filters, where

# Sort orders the exception queue offers: label -> ORDER BY text (fixed strings, never user input).
SORTABLE: dict[str, str] = {
    "Oldest first": "age_days desc nulls last, rule_code, record_id",
    "Most money at stake first": (
        "amount_at_stake_reporting desc nulls last, age_days desc nulls last, record_id"
    ),
    "Oldest business date first": "business_age_days desc nulls last, age_days desc nulls last, record_id",
    "Newest first": "age_days asc, rule_code, record_id",
    "Severity, then age": (
        "case aging.severity when 'high' then 0 when 'medium' then 1 else 2 end,"
        " age_days desc nulls last, record_id"
    ),
    "Owner, then rule": "owner, rule_code, age_days desc nulls last, record_id",
}

EXCEPTION_AGE_BUCKETS = ("0-2", "3-7", "8-30", "30+")


_EXCEPTION_COLUMNS = {"legal_entity": "aging.legal_entity", "client": "aging.client_id"}
_EXCEPTION_PRACTICE = {"practice": "projects.practice"}


def exception_queue(
    filters: Filters,
    *,
    owners: Sequence[str] = (),
    rules: Sequence[str] = (),
    buckets: Sequence[str] = (),
    sort: str = "Oldest first",
) -> pd.DataFrame:
    """Open exceptions with their ages (since first detected; business, since the record's own date),
    money at stake (reporting currency), owner, rule, reason and source-system ids."""
    t = tables("rpt_exception_aging", "fct_exceptions", "dim_clients", "dim_projects")
    if sort not in SORTABLE:
        raise ValueError(f"unknown sort {sort!r}; choose one of {sorted(SORTABLE)}")
    clause, params = where(filters, {**_EXCEPTION_COLUMNS, **_EXCEPTION_PRACTICE})
    for column, values in (
        ("aging.owner", owners),
        ("aging.rule_code", rules),
        ("aging.age_bucket", buckets),
    ):
        if values:
            clause += f" and {column} in ({', '.join('?' for _ in values)})"
            params += list(values)
    sql = f"""
        select
            aging.exception_id, aging.rule_code, aging.owner, aging.severity, aging.is_blocking,
            aging.age_days, aging.age_bucket, aging.business_age_days, aging.amount_at_stake_reporting,
            aging.first_detected_at, aging.record_type,
            aging.record_id, exceptions.source_system, aging.source_ids, aging.reason,
            exceptions.rule_reason, aging.occurred_on, aging.legal_entity, aging.client_id,
            clients.client_name, aging.project_id, projects.project_code, projects.practice,
            exceptions.time_entry_id, exceptions.details
        from {t.rpt_exception_aging} as aging
        left join {t.fct_exceptions} as exceptions on exceptions.exception_id = aging.exception_id
        left join {t.dim_clients} as clients on clients.client_id = aging.client_id
        left join {t.dim_projects} as projects on projects.project_id = aging.project_id
        where aging.is_open and {clause}
        order by {SORTABLE[sort]}
    """
    return read(
        sql,
        params,
        tables=t,
    )


def exception_record(exception_id: str) -> dict[str, pd.DataFrame]:
    """The records behind one exception: the queue row and, for time entries, the entry itself."""
    t = tables("fct_exceptions")
    frames: dict[str, pd.DataFrame] = {}
    frames["exception"] = read(
        f"select * from {t.fct_exceptions} where exception_id = ?", [exception_id], tables=t
    )
    if frames["exception"].empty:
        return frames
    time_entry_id = frames["exception"].iloc[0]["time_entry_id"]
    if time_entry_id is not None and not pd.isna(time_entry_id):
        frames["time_entry"] = time_entry_rows([str(time_entry_id)])
    return frames


# Time-entry columns safe to show: no cost_amount (hours x a person's cost rate = their rate).
TIME_ENTRY_COLUMNS = (
    "time_entry_id, spent_date, employee_id, time_user_id, project_id, time_project_code, client_id,"
    " legal_entity, practice, hours, is_billable, approval_status, approved_at, bill_rate,"
    " currency_code, bill_amount, bill_amount_reporting, erp_time_activity_key, erp_invoice_key,"
    " invoice_number, invoice_date, has_blocking_exception, blocking_rule_codes, notes"
)


def time_entry_rows(ids: Sequence[str]) -> pd.DataFrame:
    t = tables("fct_time_entries")
    if not ids:
        return pd.DataFrame()
    placeholders = ", ".join("?" for _ in ids)
    return read(
        f"select {TIME_ENTRY_COLUMNS} from {t.fct_time_entries}"
        f" where time_entry_id::varchar in ({placeholders}) order by spent_date",
        list(ids),
        tables=t,
    )
