"""Every read the dashboard makes: parameterised SQL over the published warehouse.

Rules this module keeps (docs/dashboards.md):
- values travel as `?` parameters, never inside the SQL text; the only names put into SQL text
  are relations and columns from the allow-lists below (RELATIONS, SORTABLE, the filter columns
  each query declares), never anything a user typed;
- reads are read-only and short-lived: one connection per page run at most, a cursor per query,
  closed when the run ends, so the pipeline can publish a new file by atomic rename while the
  dashboard is open and the next run reads it (docs/publishing.md; see "Connections" below);
- reads are cached with `st.cache_data`, keyed by the published file's identity (device,
  inode, mtime and size), so a new publish is picked up on the next rerun;
- per-person cost rates and salaries are never selected: cost appears only summed to project
  level or above, inside the KPI marts.
"""

from __future__ import annotations

import json
import math
import threading
from collections.abc import Collection, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import streamlit as st

from dashboards import settings

# The relations the dashboard may read, by short name. A query names the ones it needs; a missing
# one (a partial warehouse, a mart not built yet) becomes a clear message, not a traceback.
RELATIONS: dict[str, str] = {
    "as_of": "intermediate.int_as_of",
    "fx_rates": "intermediate.int_fx_rates_daily",
    "dim_clients": "marts.dim_clients",
    "dim_projects": "marts.dim_projects",
    "dim_employees": "marts.dim_employees",
    "dim_legal_entities": "marts.dim_legal_entities",
    "fct_time_entries": "marts.fct_time_entries",
    "fct_capacity_daily": "marts.fct_capacity_daily",
    "fct_invoices": "marts.fct_invoices",
    "fct_invoice_lines": "marts.fct_invoice_lines",
    "fct_exceptions": "marts.fct_exceptions",
    "rpt_exception_aging": "marts.rpt_exception_aging",
    "exception_history": "marts.exception_history",
    "fct_utilization_daily": "marts.fct_utilization_daily",
    "rpt_utilization": "marts.rpt_utilization",
    "rpt_wip": "marts.rpt_wip",
    "rpt_time_to_invoice": "marts.rpt_time_to_invoice",
    "rpt_time_to_invoice_monthly": "marts.rpt_time_to_invoice_monthly",
    "rpt_realization": "marts.rpt_realization",
    "rpt_revenue": "marts.rpt_revenue",
    "rpt_ar_aging": "marts.rpt_ar_aging",
    "rpt_dso": "marts.rpt_dso",
    "rpt_reconciliation": "marts.rpt_reconciliation",
    "fct_reconciliation_items": "marts.fct_reconciliation_items",
    "sync_runs": "staging.stg_ledger__sync_runs",
    "line_states": "staging.stg_ledger__line_states",
    "transform_runs": "ops.transform_runs",
    "load_log": "staging.stg_ops__load_log",
    "quarantine": "staging.stg_ops__quarantine",
}

# Sort orders the exception queue offers: label -> ORDER BY text (fixed strings, never user input).
SORTABLE: dict[str, str] = {
    "Oldest first": "age_days desc, rule_code, record_id",
    "Most money at stake first": "amount_at_stake_reporting desc nulls last, age_days desc, record_id",
    "Oldest business date first": "business_age_days desc nulls last, age_days desc, record_id",
    "Newest first": "age_days asc, rule_code, record_id",
    "Severity, then age": (
        "case aging.severity when 'high' then 0 when 'medium' then 1 else 2 end, age_days desc, record_id"
    ),
    "Owner, then rule": "owner, rule_code, age_days desc, record_id",
}

EXCEPTION_AGE_BUCKETS = ("0-2", "3-7", "8-30", "30+")
WIP_AGE_BUCKETS = ("0-30", "31-60", "61-90", "90+")


class WarehouseUnavailable(Exception):
    """There is no published warehouse to read (first run) or it cannot be opened."""


class MartMissing(Exception):
    """A relation a view needs is not in the published warehouse (partial or older build)."""

    def __init__(self, relations: Sequence[str]):
        self.relations = tuple(relations)
        super().__init__(", ".join(self.relations))


# --- the published file ---------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """Identity of the published warehouse at one moment: the cache key of every read."""

    path: str
    exists: bool
    version: str
    published: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)


# Connections. Opening a DuckDB file costs tens of milliseconds of CPU (its catalog, its thread
# pool) and far more wall time on a busy machine, and a page makes a few dozen reads. So each page
# run (one execution of the script, from app.py's `run_scope`) opens at most one read-only
# connection, lazily on its first cache miss, gives every query its own cursor, and closes the
# connection when the run ends: nothing stays open between runs, and the next run opens whatever
# file the path names then (the pipeline publishes by rename). Within a process DuckDB shares one
# instance per path, so while any run holds the old file open a new connection would get that same
# old instance: the registry below makes such a run read (and cache under) the old build's
# identity rather than file the old numbers under the new build's key.

_registry_lock = threading.Lock()
_held: dict[str, tuple[str, int]] = {}  # path -> (identity of the open instance, runs holding it)
_run = threading.local()  # .snapshot, .connections {path: (identity, connection)} while in run_scope


def _identity(path: Path) -> str | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"


def _read_snapshot() -> Snapshot:
    path = settings.warehouse_path()
    key = str(path)
    with _registry_lock:
        held = _held.get(key)
    identity = held[0] if held else _identity(path)
    if identity is None:
        return Snapshot(key, False, "missing")
    try:
        published = json.loads(settings.metadata_path(path).read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        published = {}
    return Snapshot(key, True, identity, published)


def snapshot() -> Snapshot:
    """The warehouse this page run reads: stat'ed once per run, so a run shows one build."""
    if getattr(_run, "active", False):
        if getattr(_run, "snapshot", None) is None:
            _run.snapshot = _read_snapshot()
        return _run.snapshot
    return _read_snapshot()


@contextmanager
def run_scope() -> Iterator[None]:
    """Around one script run: one snapshot, at most one connection, closed at the end."""
    _run.active, _run.snapshot, _run.connections = True, None, {}
    try:
        yield
    finally:
        connections = _run.connections
        _run.active, _run.snapshot, _run.connections = False, None, {}
        for path, (_, connection) in connections.items():
            connection.close()
            with _registry_lock:
                identity, holders = _held[path]
                if holders <= 1:
                    del _held[path]
                else:
                    _held[path] = (identity, holders - 1)


def _open(path: str, version: str) -> duckdb.DuckDBPyConnection:
    """A cursor on this run's connection (opened on first use), or a one-off connection outside a run."""
    try:
        if not getattr(_run, "active", False):
            return duckdb.connect(path, read_only=True)
        if path not in _run.connections:
            with _registry_lock:
                connection = duckdb.connect(path, read_only=True)
                held = _held.get(path)
                identity = held[0] if held else _identity(Path(path))
                _held[path] = (identity, (held[1] if held else 0) + 1)
            _run.connections[path] = (identity, connection)
        identity, connection = _run.connections[path]
    except duckdb.Error as error:
        raise WarehouseUnavailable(f"cannot open {path} read-only: {error}") from error
    if identity != version:
        # the file was replaced between this run's stat and its first open: read nothing under
        # a key that does not match; the next run (a rerun or reload) reads the new build
        raise WarehouseUnavailable("a new build was published while this page loaded; reload the page")
    return connection.cursor()


@st.cache_data(show_spinner=False, max_entries=1024, ttl=6 * 3600)
def _fetch(path: str, version: str, sql: str, params: tuple) -> pd.DataFrame:
    # `version` is part of the cache key: a newly published file has another identity (inode,
    # mtime, size), so it misses the cache and is read afresh.
    with _open(path, version) as cursor:
        return cursor.execute(sql, list(params)).df()


@st.cache_data(show_spinner=False, max_entries=64, ttl=6 * 3600)
def _relations(path: str, version: str) -> frozenset[str]:
    with _open(path, version) as cursor:
        rows = cursor.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
        ).fetchall()
    return frozenset(row[0] for row in rows)


def unreadable() -> str | None:
    """Why the published warehouse cannot be read (not a DuckDB file, unreadable), or None."""
    snap = snapshot()
    if not snap.exists:
        return None
    try:
        _relations(snap.path, snap.version)
    except WarehouseUnavailable as error:
        return str(error)
    return None


def available(*names: str) -> bool:
    """All these relations (short names from RELATIONS) exist in the published warehouse."""
    snap = snapshot()
    if not snap.exists:
        return False
    present = _relations(snap.path, snap.version)
    return all(RELATIONS[name] in present for name in names)


def missing(*names: str) -> list[str]:
    snap = snapshot()
    if not snap.exists:
        return [RELATIONS[name] for name in names]
    present = _relations(snap.path, snap.version)
    return [RELATIONS[name] for name in names if RELATIONS[name] not in present]


def read(sql: str, params: Sequence[Any] = (), *, needs: Sequence[str] = ()) -> pd.DataFrame:
    """Run one query on the published warehouse; `{name}` in the SQL is replaced by RELATIONS[name]."""
    snap = snapshot()
    if not snap.exists:
        raise WarehouseUnavailable(f"no published warehouse at {snap.path}")
    absent = missing(*needs)
    if absent:
        raise MartMissing(absent)
    text = sql.format(**{name: RELATIONS[name] for name in needs})
    return _fetch(snap.path, snap.version, text, tuple(params)).copy()


# --- filters ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Filters:
    """The global filters: a period of whole months, the dimensions, and the display currency."""

    start: date
    end: date  # inclusive, the last day of the period's last month
    legal_entities: tuple[str, ...] = ()
    practices: tuple[str, ...] = ()
    regions: tuple[str, ...] = ()
    clients: tuple[str, ...] = ()
    currency: str = "USD"
    year_on_year: bool = False  # compare with the same months a year earlier (year to date)

    @property
    def months(self) -> int:
        return (self.end.year - self.start.year) * 12 + self.end.month - self.start.month + 1

    def previous(self) -> Filters:
        """The period to compare with, same dimensions: the same months a year earlier for year to
        date, else the period of the same length just before this one."""
        if self.year_on_year:
            start, end = add_months(self.start, -12), month_end(add_months(month_start(self.end), -12))
        else:
            end = self.start - timedelta(days=1)
            start = add_months(month_start(end), -(self.months - 1))
        return replace(self, start=start, end=end)


def month_start(day: date) -> date:
    return day.replace(day=1)


def add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_end(day: date) -> date:
    return add_months(month_start(day), 1) - timedelta(days=1)


FILTER_DIMENSIONS = ("legal_entity", "practice", "region", "client")


def where(
    filters: Filters,
    columns: Mapping[str, str],
    *,
    date_column: str | None = None,
    start: date | None = None,
    end: date | None = None,
) -> tuple[str, list[Any]]:
    """A WHERE fragment and its parameters for the filters that apply to a relation.

    `columns` maps the filter dimensions (legal_entity, practice, region, client) to the
    relation's column for it; dimensions a relation does not have are left out (the page says
    which filters apply). Column names come from the calling query's constants only.
    """
    clauses, params = ["true"], []
    if date_column:
        clauses.append(f"{date_column} between ? and ?")
        params += [start or filters.start, end or filters.end]
    chosen = {
        "legal_entity": filters.legal_entities,
        "practice": filters.practices,
        "region": filters.regions,
        "client": filters.clients,
    }
    for dimension, column in columns.items():
        if dimension not in chosen:
            raise ValueError(f"unknown filter dimension {dimension!r}; known: {FILTER_DIMENSIONS}")
        values = chosen[dimension]
        if values:
            clauses.append(f"{column} in ({', '.join('?' for _ in values)})")
            params += list(values)
    return " and ".join(clauses), params


def ignored_filters(filters: Filters, applies: Collection[str]) -> list[str]:
    """Filters the user set that a relation cannot apply (to say so under its chart)."""
    chosen = {
        "legal entity": ("legal_entity", filters.legal_entities),
        "practice": ("practice", filters.practices),
        "region": ("region", filters.regions),
        "client": ("client", filters.clients),
    }
    return [label for label, (dimension, values) in chosen.items() if values and dimension not in applies]


# --- filter choices, currency, freshness --------------------------------------------------------


def as_of_date() -> date | None:
    """The warehouse's now (int_as_of): the day the build considers today."""
    if not available("as_of"):
        return None
    frame = read("select as_of_date from {as_of}", needs=("as_of",))
    return None if frame.empty else pd.Timestamp(frame.iloc[0, 0]).date()


def data_months() -> tuple[date, date] | None:
    """First and last month with recorded time (the period choices)."""
    if not available("fct_time_entries"):
        return None
    frame = read(
        "select min(spent_date) as first_day, max(spent_date) as last_day from {fct_time_entries}",
        needs=("fct_time_entries",),
    )
    if frame.empty or pd.isna(frame.iloc[0, 0]):
        return None
    return month_start(pd.Timestamp(frame.iloc[0, 0]).date()), month_start(
        pd.Timestamp(frame.iloc[0, 1]).date()
    )


def filter_choices() -> dict[str, list]:
    """Values offered by the global filters; empty lists when the dimensions are not built."""
    choices: dict[str, list] = {"legal_entity": [], "practice": [], "region": [], "client": []}
    if available("dim_legal_entities"):
        choices["legal_entity"] = read(
            "select legal_entity from {dim_legal_entities} order by 1", needs=("dim_legal_entities",)
        )["legal_entity"].tolist()
    if available("dim_employees"):
        people = read(
            "select distinct practice, region from {dim_employees}"
            " where practice is not null and region is not null",
            needs=("dim_employees",),
        )
        choices["practice"] = sorted(people["practice"].unique().tolist())
        choices["region"] = sorted(people["region"].unique().tolist())
    if available("dim_clients"):
        clients = read(
            "select client_id, client_name from {dim_clients} where not is_internal order by client_name",
            needs=("dim_clients",),
        )
        choices["client"] = list(clients.itertuples(index=False, name=None))
    return choices


def reporting_currency() -> str:
    """The warehouse's reporting currency: the one whose rate to reporting is always exactly 1."""
    if not available("fx_rates"):
        return "USD"
    frame = read(
        "select currency_code from {fx_rates} group by 1"
        " having min(rate_to_reporting) = 1 and max(rate_to_reporting) = 1 order by 1 limit 1",
        needs=("fx_rates",),
    )
    return "USD" if frame.empty else str(frame.iloc[0, 0])


def currencies() -> list[str]:
    reporting = reporting_currency()
    if not available("fx_rates"):
        return [reporting]
    others = read(
        "select distinct currency_code from {fx_rates} where currency_code <> ? order by 1",
        [reporting],
        needs=("fx_rates",),
    )["currency_code"].tolist()
    return [reporting, *others]


def currency_factor(currency: str, on: date) -> float:
    """Units of `currency` per unit of the reporting currency on a day (the ERP's rate).

    The marts carry amounts in the reporting currency, converted at each transaction's date;
    showing them in another currency translates those totals at one rate, the ERP's rate on
    the period's last day (docs/dashboards.md).
    """
    if currency == reporting_currency():
        return 1.0
    frame = read(
        "select rate_to_reporting from {fx_rates} where currency_code = ? and rate_date <= ?"
        " order by rate_date desc limit 1",
        [currency, on],
        needs=("fx_rates",),
    )
    if frame.empty or not frame.iloc[0, 0]:
        raise ValueError(f"no ERP rate for {currency} on or before {on}")
    return 1.0 / float(frame.iloc[0, 0])


@dataclass(frozen=True)
class Freshness:
    published_at: str | None
    run_id: str | None
    last_build: pd.Series | None  # the latest transform run (any status)
    last_good_build: pd.Series | None
    sources: pd.DataFrame  # per source: last attempt, its status and error, last successful load


def freshness() -> Freshness:
    """Last build and last load per source: warehouse.json, ops.transform_runs and the load log."""
    snap = snapshot()
    published = dict(snap.published)
    last_build = last_good = None
    if available("transform_runs"):
        runs = read(
            "select run_id, started_at, finished_at, status, message, nodes_failed, failed_nodes,"
            " duration_s from {transform_runs} order by started_at desc limit 50",
            needs=("transform_runs",),
        )
        if not runs.empty:
            last_build = runs.iloc[0]
            passed = runs[runs["status"] == "passed"]
            last_good = passed.iloc[0] if not passed.empty else None
    sources = pd.DataFrame(
        columns=["source_name", "last_attempt_at", "last_status", "last_error", "last_loaded_at"]
    )
    if available("load_log"):
        sources = read(
            """
            select
                source_name,
                max(started_at) as last_attempt_at,
                arg_max(load_status, started_at) as last_status,
                arg_max(error_message, started_at) as last_error,
                max(started_at) filter (where load_status = 'loaded') as last_loaded_at
            from {load_log}
            group by source_name
            order by source_name
            """,
            needs=("load_log",),
        )
    return Freshness(published.get("published_at"), published.get("run_id"), last_build, last_good, sources)


# --- exceptions -------------------------------------------------------------------------------

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
        from {{rpt_exception_aging}} as aging
        left join {{fct_exceptions}} as exceptions on exceptions.exception_id = aging.exception_id
        left join {{dim_clients}} as clients on clients.client_id = aging.client_id
        left join {{dim_projects}} as projects on projects.project_id = aging.project_id
        where aging.is_open and {clause}
        order by {SORTABLE[sort]}
    """
    return read(
        sql,
        params,
        needs=("rpt_exception_aging", "fct_exceptions", "dim_clients", "dim_projects"),
    )


def open_exception_count(filters: Filters) -> int:
    """Open exceptions now, for the entity, client and (through the project) practice filters."""
    clause, params = where(
        filters,
        {
            "legal_entity": "exceptions.legal_entity",
            "client": "exceptions.client_id",
            "practice": "projects.practice",
        },
    )
    frame = read(
        f"select count(*) as n from {{fct_exceptions}} as exceptions"
        " left join {dim_projects} as projects on projects.project_id = exceptions.project_id"
        f" where {clause}",
        params,
        needs=("fct_exceptions", "dim_projects"),
    )
    return int(frame.iloc[0, 0])


def open_exceptions_at_month_ends(start: date, end: date) -> pd.DataFrame:
    """Exceptions open at each month end start..end (all entities), from the history across builds.

    Only month ends on or after the first build the history knows: before it nobody was looking,
    and zero would be a false "better".
    """
    return read(
        """
        with bounds as (
            select min(first_detected_at) as first_build from {exception_history}
        ),
        month_ends as (
            select (unnest(generate_series(?::date, ?::date, interval 1 month)) + interval 1 month
                    - interval 1 day)::date as month_end
        )
        select
            month_ends.month_end,
            count(history.exception_id) as open_exceptions
        from month_ends
        cross join bounds
        left join {exception_history} as history
            on history.first_detected_at < month_ends.month_end + interval 1 day
            and (history.resolved_at is null or history.resolved_at >= month_ends.month_end + interval 1 day)
        where month_ends.month_end >= cast(bounds.first_build as date)
        group by month_ends.month_end
        order by month_ends.month_end
        """,
        [start, end],
        needs=("exception_history",),
    )


def exception_record(exception_id: str) -> dict[str, pd.DataFrame]:
    """The records behind one exception: the queue row and, for time entries, the entry itself."""
    frames: dict[str, pd.DataFrame] = {}
    frames["exception"] = read(
        "select * from {fct_exceptions} where exception_id = ?", [exception_id], needs=("fct_exceptions",)
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
    if not ids:
        return pd.DataFrame()
    placeholders = ", ".join("?" for _ in ids)
    return read(
        f"select {TIME_ENTRY_COLUMNS} from {{fct_time_entries}}"
        f" where time_entry_id::varchar in ({placeholders}) order by spent_date",
        list(ids),
        needs=("fct_time_entries",),
    )


# --- pipeline health ----------------------------------------------------------------------------


def ingest_runs(limit: int = 20) -> pd.DataFrame:
    """One row per ingest run and source: rows, duration, status, error."""
    return read(
        """
        with runs as (
            select distinct run_id from {load_log} order by run_id desc limit ?
        )
        select
            log.run_id,
            log.source_name as source,
            min(log.started_at) as started_at,
            max(log.duration_s) as duration_s,
            sum(log.row_count) as row_count,
            count(log.table_name) as tables,
            case when bool_or(log.load_status = 'failed') then 'failed' else 'loaded' end as status,
            string_agg(distinct log.error_message, '; ') as error_message
        from {load_log} as log
        inner join runs on runs.run_id = log.run_id
        group by log.run_id, log.source_name
        order by log.run_id desc, log.source_name
        """,
        [limit],
        needs=("load_log",),
    )


TRANSFORM_RUN_COLUMNS = (
    "run_id", "started_at", "finished_at", "status", "full_refresh", "duration_s", "nodes_total",
    "nodes_failed", "nodes_skipped", "nodes_warned", "failed_nodes", "warnings", "message", "git_commit",
)  # fmt: skip


def lines_of(items: Any) -> str:
    """A list cell (a Python list or NumPy array; null for a run from before the column) as lines."""
    if isinstance(items, str):
        return items
    if not pd.api.types.is_list_like(items):  # None, NaN, pd.NA
        return ""
    return "\n".join(str(item) for item in items)


def transform_runs(limit: int = 20) -> pd.DataFrame:
    """The last builds, newest first; list columns as text, one item per line. Columns that a
    build from before them lacks (nodes_warned, warnings) are left out rather than failing the page."""
    frame = read(
        "select * from {transform_runs} order by started_at desc limit ?", [limit], needs=("transform_runs",)
    )
    for column in ("failed_nodes", "warnings"):  # one line per item
        if column in frame:
            frame[column] = frame[column].map(lines_of)
    return frame[[column for column in TRANSFORM_RUN_COLUMNS if column in frame]]


def quarantine_summary() -> pd.DataFrame:
    """Refused records by table and reason: how many are still outstanding (the loader asks for
    them again every run), how many later landed or proved deleted upstream (HR rows: neither)."""
    return read(
        "select source_system, table_name, reason, count(*) filter (where is_outstanding) as outstanding,"
        " count(resolved_at) as resolved, count(*) as records, max(quarantined_at) as last_at"
        " from {quarantine} group by all order by outstanding desc, records desc",
        needs=("quarantine",),
    )


def erp_rejections() -> pd.DataFrame:
    """Lines the ERP refused (ERP_REJECTED in the exception queue), with its code and message."""
    return read(
        "select exception_id, record_id, source_ids, reason, details, occurred_on, legal_entity,"
        " project_id, detected_at from {fct_exceptions} where rule_code = 'ERP_REJECTED'"
        " order by occurred_on desc",
        needs=("fct_exceptions",),
    )


def finite(value: Any) -> float | None:
    """A number for display, or None for null/NaN."""
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(number) else number


def parse_time(value: Any) -> datetime | None:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return None
    try:
        return pd.Timestamp(value).to_pydatetime()
    except (TypeError, ValueError):
        return None


# --- utilisation (rpt_utilization: employee x month; fct_utilization_daily: employee x day) ------
#
# Rates over a group are ratios of the summed hours (billable / capacity), never averages of
# people's rates: that is the mart's definition applied to the group.

_UTILISATION_FILTERS = {"legal_entity": "legal_entity", "practice": "practice", "region": "region"}
UTILISATION_GROUPS = {
    "practice": "practice",
    "grade": "grade",
    "region": "region",
    "legal entity": "legal_entity",
}

_UTILISATION_SUMS = """
    sum(capacity_hours) as capacity_hours,
    sum(billable_hours) as billable_hours,
    sum(productive_hours) as productive_hours,
    sum(total_hours) as total_hours,
    sum(target_billable_hours) as target_billable_hours,
    sum(compliant_capacity_hours) as compliant_capacity_hours,
    sum(missing_hours) as missing_hours,
    sum(billable_hours) / nullif(sum(capacity_hours), 0) as billable_utilization,
    sum(productive_hours) / nullif(sum(capacity_hours), 0) as productive_utilization,
    sum(total_hours) / nullif(sum(capacity_hours), 0) as total_utilization,
    sum(target_billable_hours) / nullif(sum(capacity_hours), 0) as target_billable_utilization,
    sum(compliant_capacity_hours) / nullif(sum(capacity_hours), 0) as submission_compliance
"""


def utilisation_monthly(filters: Filters, start: date, end: date) -> pd.DataFrame:
    """Utilisation per month for the filtered people, months start..end."""
    clause, params = where(
        filters, _UTILISATION_FILTERS, date_column="month_start_date", start=start, end=end
    )
    return read(
        f"select month_start_date, {_UTILISATION_SUMS} from {{rpt_utilization}}"
        f" where {clause} group by month_start_date order by month_start_date",
        params,
        needs=("rpt_utilization",),
    )


def utilisation_total(filters: Filters) -> pd.DataFrame:
    """One row: utilisation over the whole period."""
    clause, params = where(filters, _UTILISATION_FILTERS, date_column="month_start_date")
    return read(
        f"select {_UTILISATION_SUMS}, count(distinct employee_id) as people"
        f" from {{rpt_utilization}} where {clause}",
        params,
        needs=("rpt_utilization",),
    )


def utilisation_by(filters: Filters, group: str) -> pd.DataFrame:
    """Utilisation over the period by practice, grade, region or legal entity (allow-listed)."""
    if group not in UTILISATION_GROUPS:
        raise ValueError(f"cannot group utilisation by {group!r}; choose one of {sorted(UTILISATION_GROUPS)}")
    column = UTILISATION_GROUPS[group]
    clause, params = where(filters, _UTILISATION_FILTERS, date_column="month_start_date")
    return read(
        f"select {column} as group_value, {_UTILISATION_SUMS}, count(distinct employee_id) as people"
        f" from {{rpt_utilization}} where {clause} group by {column} order by {column}",
        params,
        needs=("rpt_utilization",),
    )


def utilisation_people(filters: Filters) -> pd.DataFrame:
    """Per person over the period: hours, utilisations, target, variance, compliance, missing time."""
    clause, params = where(
        filters,
        {key: f"util.{column}" for key, column in _UTILISATION_FILTERS.items()},
        date_column="util.month_start_date",
    )
    return read(
        f"""
        with util as (select * from {{rpt_utilization}})
        select
            util.employee_id,
            any_value(util.employee_name) as full_name,
            arg_max(util.practice, util.month_start_date) as practice,
            arg_max(util.grade, util.month_start_date) as grade,
            arg_max(util.region, util.month_start_date) as region,
            arg_max(util.legal_entity, util.month_start_date) as legal_entity,
            {_UTILISATION_SUMS.replace("sum(", "sum(util.")},
            (sum(util.billable_hours) - sum(util.target_billable_hours)) / nullif(sum(util.capacity_hours), 0)
                as billable_utilization_variance,
            sum(util.missing_day_count) as missing_days
        from util
        where {clause}
        group by util.employee_id
        order by billable_utilization nulls last
        """,
        params,
        needs=("rpt_utilization",),
    )


def utilisation_weekly_people(filters: Filters) -> pd.DataFrame:
    """Billable utilisation per person and ISO week (the heatmap), from fct_utilization_daily."""
    clause, params = where(filters, _UTILISATION_FILTERS, date_column="date_day")
    return read(
        f"""
        select
            employee_id,
            week_start_date,
            sum(capacity_hours) as capacity_hours,
            sum(billable_hours) as billable_hours,
            sum(billable_hours) / nullif(sum(capacity_hours), 0) as billable_utilization
        from {{fct_utilization_daily}}
        where {clause}
        group by employee_id, week_start_date
        order by employee_id, week_start_date
        """,
        params,
        needs=("fct_utilization_daily",),
    )


def utilisation_rows(filters: Filters) -> pd.DataFrame:
    """The rpt_utilization rows behind the utilisation figures (person x month)."""
    clause, params = where(filters, _UTILISATION_FILTERS, date_column="month_start_date")
    return read(
        "select employee_id, month_start_date, practice, grade, region, legal_entity, capacity_hours,"
        " billable_hours, productive_hours, total_hours, billable_utilization, target_billable_utilization,"
        " submission_compliance, missing_hours"
        f" from {{rpt_utilization}} where {clause} order by month_start_date, employee_id",
        params,
        needs=("rpt_utilization",),
    )


# --- WIP (rpt_wip: as-of date x project x aging bucket) -----------------------------------------

_WIP_FILTERS = {"legal_entity": "wip.legal_entity", "practice": "wip.practice", "client": "wip.client_id"}


def wip_as_of_dates() -> list[date]:
    """The as-of dates rpt_wip holds (month ends, the last 90 days, the warehouse's now)."""
    frame = read("select distinct as_of_date from {rpt_wip} order by 1 desc", needs=("rpt_wip",))
    return [pd.Timestamp(value).date() for value in frame["as_of_date"]]


def nearest_wip_date(on: date) -> date | None:
    """The latest as-of date rpt_wip holds on or before a day."""
    frame = read(
        "select max(as_of_date) as as_of_date from {rpt_wip} where as_of_date <= ?", [on], needs=("rpt_wip",)
    )
    value = frame.iloc[0, 0] if not frame.empty else None
    return None if value is None or pd.isna(value) else pd.Timestamp(value).date()


def wip_by(filters: Filters, as_of: date) -> pd.DataFrame:
    """WIP as of a date by client, project and aging bucket, with the at-risk unapproved time."""
    clause, params = where(filters, _WIP_FILTERS)
    return read(
        f"""
        select
            wip.client_id,
            wip.client_name,
            wip.project_id,
            wip.project_code,
            wip.project_name,
            wip.practice,
            wip.legal_entity,
            wip.aging_bucket,
            wip.aging_bucket_order,
            sum(wip.wip_hours) as wip_hours,
            sum(wip.wip_amount_reporting) as wip_amount_reporting,
            sum(wip.at_risk_hours) as at_risk_hours,
            sum(wip.at_risk_amount_reporting) as at_risk_amount_reporting,
            sum(wip.wip_item_count) as wip_item_count
        from {{rpt_wip}} as wip
        where wip.as_of_date = ? and {clause}
        group by all
        order by wip_amount_reporting desc
        """,
        [as_of, *params],
        needs=("rpt_wip",),
    )


def wip_month_ends(filters: Filters, start: date, end: date) -> pd.DataFrame:
    """Total WIP and at-risk amount at each month end between two days."""
    clause, params = where(filters, _WIP_FILTERS)
    return read(
        f"""
        select
            wip.as_of_date,
            sum(wip.wip_amount_reporting) as wip_amount_reporting,
            sum(wip.at_risk_amount_reporting) as at_risk_amount_reporting
        from {{rpt_wip}} as wip
        where wip.is_month_end and wip.as_of_date between ? and ? and {clause}
        group by wip.as_of_date
        order by wip.as_of_date
        """,
        [start, end, *params],
        needs=("rpt_wip",),
    )


# --- time to invoice (rpt_time_to_invoice: one row per invoiced time entry) ---------------------

_TTI_FILTERS = {"legal_entity": "legal_entity", "practice": "practice", "client": "client_id"}


def time_to_invoice_summary(filters: Filters, start: date, end: date) -> pd.DataFrame:
    """Median and p90 days worked -> invoiced per invoice month, for entries invoiced start..end."""
    clause, params = where(filters, _TTI_FILTERS, date_column="invoice_date", start=start, end=end)
    return read(
        f"""
        select
            invoice_month,
            count(*) as invoiced_entry_count,
            sum(hours) as invoiced_hours,
            percentile_cont(0.5) within group (order by days_worked_to_invoice) as median_days,
            percentile_cont(0.9) within group (order by days_worked_to_invoice) as p90_days,
            percentile_cont(0.5) within group (order by days_approved_to_invoice) as median_days_from_approval
        from {{rpt_time_to_invoice}}
        where {clause}
        group by invoice_month
        order by invoice_month
        """,
        params,
        needs=("rpt_time_to_invoice",),
    )


def time_to_invoice_period(filters: Filters) -> pd.DataFrame:
    """One row: median and p90 over every entry invoiced in the period."""
    clause, params = where(filters, _TTI_FILTERS, date_column="invoice_date")
    return read(
        f"""
        select
            count(*) as invoiced_entry_count,
            percentile_cont(0.5) within group (order by days_worked_to_invoice) as median_days,
            percentile_cont(0.9) within group (order by days_worked_to_invoice) as p90_days
        from {{rpt_time_to_invoice}}
        where {clause}
        """,
        params,
        needs=("rpt_time_to_invoice",),
    )


def time_to_invoice_by_practice(filters: Filters) -> pd.DataFrame:
    clause, params = where(filters, _TTI_FILTERS, date_column="invoice_date")
    return read(
        f"""
        select
            practice,
            count(*) as invoiced_entry_count,
            percentile_cont(0.5) within group (order by days_worked_to_invoice) as median_days,
            percentile_cont(0.9) within group (order by days_worked_to_invoice) as p90_days,
            percentile_cont(0.5) within group (order by days_approved_to_invoice) as median_days_from_approval
        from {{rpt_time_to_invoice}}
        where {clause}
        group by practice
        order by median_days desc
        """,
        params,
        needs=("rpt_time_to_invoice",),
    )


def time_to_invoice_distribution(filters: Filters) -> pd.DataFrame:
    """Invoiced entries and hours by days worked -> invoiced (the histogram)."""
    clause, params = where(filters, _TTI_FILTERS, date_column="invoice_date")
    return read(
        f"""
        select days_worked_to_invoice, count(*) as entries, sum(hours) as hours
        from {{rpt_time_to_invoice}}
        where {clause}
        group by days_worked_to_invoice
        order by days_worked_to_invoice
        """,
        params,
        needs=("rpt_time_to_invoice",),
    )


def time_to_invoice_rows(filters: Filters, limit: int = 5000) -> pd.DataFrame:
    clause, params = where(filters, _TTI_FILTERS, date_column="invoice_date")
    return read(
        "select time_entry_id, spent_date, approved_date, invoice_date, erp_invoice_key, project_id,"
        " client_id, practice, legal_entity, hours, days_worked_to_invoice, days_approved_to_invoice"
        f" from {{rpt_time_to_invoice}} where {clause} order by days_worked_to_invoice desc limit ?",
        [*params, limit],
        needs=("rpt_time_to_invoice",),
    )


# --- revenue and margin (rpt_revenue: contract x month), realisation (rpt_realization) ----------
# Margin exists at contract level and above only: cost inside rpt_revenue is summed over everyone
# who worked on the contract in the month.

_REVENUE_FILTERS = {
    "legal_entity": "revenue.legal_entity",
    "practice": "revenue.practice",
    "client": "revenue.client_id",
}
REVENUE_GROUPS = {
    "client": "clients.client_name",
    "contract": "revenue.contract_number",
    "practice": "revenue.practice",
    "legal entity": "revenue.legal_entity",
    "billing method": "revenue.billing_method",
}

_REVENUE_FLOWS = """
    sum(revenue.recognized_amount_reporting) as recognized_revenue_reporting,
    sum(revenue.billed_amount_reporting) as billed_reporting,
    sum(revenue.cost_amount_reporting) as cost_reporting,
    sum(revenue.gross_margin_amount_reporting) as gross_margin_reporting,
    sum(revenue.gross_margin_amount_reporting) / nullif(sum(revenue.recognized_amount_reporting), 0)
        as gross_margin_pct
"""
_REVENUE_BALANCES = """
    sum(revenue.unbilled_receivable_amount_reporting) as unbilled_receivable_reporting,
    sum(revenue.deferred_revenue_amount_reporting) as deferred_revenue_reporting,
    sum(revenue.backlog_amount_reporting) as backlog_reporting
"""


def revenue_total(filters: Filters) -> pd.DataFrame:
    """One row: flows over the period, balances at the period's last month end."""
    clause, params = where(filters, _REVENUE_FILTERS, date_column="revenue.month_start_date")
    return read(
        f"""
        with scoped as (
            select revenue.* from {{rpt_revenue}} as revenue where {clause}
        ),
        flows as (
            select {_REVENUE_FLOWS} from scoped as revenue
        ),
        balances as (
            select {_REVENUE_BALANCES} from scoped as revenue where revenue.month_start_date = ?
        )
        select * from flows cross join balances
        """,
        [*params, month_start(filters.end)],
        needs=("rpt_revenue",),
    )


def revenue_monthly(filters: Filters, start: date, end: date) -> pd.DataFrame:
    """Flows and month-end balances per month, start..end."""
    clause, params = where(
        filters, _REVENUE_FILTERS, date_column="revenue.month_start_date", start=start, end=end
    )
    return read(
        f"select revenue.month_start_date, {_REVENUE_FLOWS}, {_REVENUE_BALANCES}"
        f" from {{rpt_revenue}} as revenue where {clause}"
        " group by revenue.month_start_date order by revenue.month_start_date",
        params,
        needs=("rpt_revenue",),
    )


def revenue_by(filters: Filters, group: str) -> pd.DataFrame:
    """Revenue, cost and margin over the period by client, contract, practice, entity or method."""
    if group not in REVENUE_GROUPS:
        raise ValueError(f"cannot group revenue by {group!r}; choose one of {sorted(REVENUE_GROUPS)}")
    column = REVENUE_GROUPS[group]
    clause, params = where(filters, _REVENUE_FILTERS, date_column="revenue.month_start_date")
    return read(
        f"""
        select coalesce({column}, '(none)') as group_value, {_REVENUE_FLOWS}
        from {{rpt_revenue}} as revenue
        left join {{dim_clients}} as clients on clients.client_id = revenue.client_id
        where {clause}
        group by 1
        order by recognized_revenue_reporting desc nulls last
        """,
        params,
        needs=("rpt_revenue", "dim_clients"),
    )


def revenue_rows(filters: Filters) -> pd.DataFrame:
    """The rpt_revenue rows (contract x month) behind the revenue and margin figures."""
    clause, params = where(filters, _REVENUE_FILTERS, date_column="revenue.month_start_date")
    return read(
        "select revenue.contract_id, revenue.contract_number, clients.client_name, revenue.legal_entity,"
        " revenue.practice, revenue.billing_method, revenue.month_start_date, revenue.currency_code,"
        " revenue.recognized_amount, revenue.recognized_amount_reporting, revenue.billed_amount_reporting,"
        " revenue.cost_amount_reporting, revenue.gross_margin_amount_reporting, revenue.gross_margin_pct,"
        " revenue.unbilled_receivable_amount_reporting, revenue.deferred_revenue_amount_reporting,"
        " revenue.backlog_amount_reporting"
        f" from {{rpt_revenue}} as revenue left join {{dim_clients}} as clients"
        f" on clients.client_id = revenue.client_id where {clause}"
        " order by revenue.month_start_date, revenue.contract_number",
        params,
        needs=("rpt_revenue", "dim_clients"),
    )


_REALIZATION_FILTERS = {"legal_entity": "legal_entity", "practice": "practice", "client": "client_id"}
REALIZATION_GROUPS = {
    "practice": "practice",
    "legal entity": "legal_entity",
    "billing method": "billing_method",
}


def realization_by(filters: Filters, group: str) -> pd.DataFrame:
    """Realisation (billed / standard value) and effective bill rate over the period by a group."""
    if group not in REALIZATION_GROUPS:
        raise ValueError(f"cannot group realisation by {group!r}; choose one of {sorted(REALIZATION_GROUPS)}")
    column = REALIZATION_GROUPS[group]
    clause, params = where(filters, _REALIZATION_FILTERS, date_column="month_start_date")
    return read(
        f"""
        select
            {column} as group_value,
            sum(standard_value_reporting) as standard_value_reporting,
            sum(billed_amount_reporting) as billed_reporting,
            sum(billed_amount_reporting) / nullif(sum(standard_value_reporting), 0) as realization_rate,
            sum(revenue_reporting) / nullif(sum(client_hours), 0) as effective_bill_rate_reporting,
            sum(client_hours) as client_hours
        from {{rpt_realization}}
        where {clause}
        group by 1
        order by 1
        """,
        params,
        needs=("rpt_realization",),
    )


def realization_total(filters: Filters) -> pd.DataFrame:
    clause, params = where(filters, _REALIZATION_FILTERS, date_column="month_start_date")
    return read(
        "select sum(billed_amount_reporting) / nullif(sum(standard_value_reporting), 0) as realization_rate,"
        " sum(revenue_reporting) / nullif(sum(client_hours), 0) as effective_bill_rate_reporting"
        f" from {{rpt_realization}} where {clause}",
        params,
        needs=("rpt_realization",),
    )


# --- receivables (rpt_ar_aging, rpt_dso: legal entity x month) ------------------------------------

_ENTITY_FILTER = {"legal_entity": "legal_entity"}


def dso_months(filters: Filters, start: date, end: date) -> pd.DataFrame:
    """DSO per month for the chosen entities: summed receivables / summed 90-day invoicing x 90."""
    clause, params = where(filters, _ENTITY_FILTER, date_column="month_start_date", start=start, end=end)
    return read(
        f"""
        select
            month_start_date,
            max(as_of_date) as as_of_date,
            sum(open_receivables_reporting) as open_receivables_reporting,
            sum(overdue_receivables_reporting) as overdue_receivables_reporting,
            sum(invoiced_90_days_reporting) as invoiced_90_days_reporting,
            sum(open_receivables_reporting) / nullif(sum(invoiced_90_days_reporting), 0) * 90 as dso_days
        from {{rpt_dso}}
        where {clause}
        group by month_start_date
        order by month_start_date
        """,
        params,
        needs=("rpt_dso",),
    )


def ar_aging(filters: Filters, month: date) -> pd.DataFrame:
    """Open receivables by aging bucket and entity at a month's snapshot."""
    clause, params = where(filters, _ENTITY_FILTER)
    return read(
        f"""
        select legal_entity, aging_bucket, aging_bucket_order, max(as_of_date) as as_of_date,
            sum(open_invoice_count) as open_invoice_count, sum(open_amount_reporting) as open_amount_reporting
        from {{rpt_ar_aging}}
        where month_start_date = ? and {clause}
        group by all
        order by aging_bucket_order, legal_entity
        """,
        [month, *params],
        needs=("rpt_ar_aging",),
    )


# --- reconciliation (rpt_reconciliation: project x month; fct_reconciliation_items: its records) ---

_RECON_FILTERS = {
    "legal_entity": "recon.legal_entity",
    "client": "recon.client_id",
    "practice": "projects.practice",
}
RECON_STATUSES = ("matched", "not_yet_billed", "explained_by_exception", "unexplained")


def reconciliation_rows(filters: Filters, statuses: Sequence[str] = ()) -> pd.DataFrame:
    """Project x month rows worked in the period: approved vs ERP vs invoiced, differences, status."""
    clause, params = where(filters, _RECON_FILTERS, date_column="recon.month_start_date")
    if statuses:
        clause += f" and recon.reconciliation_status in ({', '.join('?' for _ in statuses)})"
        params += list(statuses)
    return read(
        f"""
        select
            recon.reconciliation_key, recon.month_start_date, recon.project_id, recon.project_code,
            clients.client_name, recon.legal_entity, recon.currency_code, recon.reconciliation_status,
            recon.approved_hours, recon.erp_hours, recon.invoiced_hours,
            recon.hours_not_in_erp, recon.hours_not_invoiced,
            recon.approved_amount, recon.erp_amount, recon.invoiced_amount,
            recon.amount_not_in_erp, recon.amount_not_invoiced,
            recon.approved_amount_reporting, recon.erp_amount_reporting, recon.invoiced_amount_reporting,
            recon.exception_rule_codes, recon.differing_item_count, recon.unexplained_item_count
        from {{rpt_reconciliation}} as recon
        left join {{dim_clients}} as clients on clients.client_id = recon.client_id
        left join {{dim_projects}} as projects on projects.project_id = recon.project_id
        where {clause}
        order by
            case recon.reconciliation_status when 'unexplained' then 0 when 'explained_by_exception' then 1
                when 'not_yet_billed' then 2 else 3 end,
            abs(recon.hours_not_in_erp) + abs(recon.hours_not_invoiced) desc,
            recon.month_start_date, recon.project_code
        """,
        params,
        needs=("rpt_reconciliation", "dim_clients", "dim_projects"),
    )


def reconciliation_monthly(filters: Filters, start: date, end: date) -> pd.DataFrame:
    clause, params = where(
        filters, _RECON_FILTERS, date_column="recon.month_start_date", start=start, end=end
    )
    return read(
        f"""
        select
            recon.month_start_date,
            sum(recon.approved_hours) as approved_hours,
            sum(recon.erp_hours) as erp_hours,
            sum(recon.invoiced_hours) as invoiced_hours,
            sum(recon.approved_amount_reporting) as approved_amount_reporting,
            sum(recon.erp_amount_reporting) as erp_amount_reporting,
            sum(recon.invoiced_amount_reporting) as invoiced_amount_reporting,
            count(*) filter (where recon.reconciliation_status = 'unexplained') as unexplained_rows
        from {{rpt_reconciliation}} as recon
        left join {{dim_projects}} as projects on projects.project_id = recon.project_id
        where {clause}
        group by recon.month_start_date
        order by recon.month_start_date
        """,
        params,
        needs=("rpt_reconciliation", "dim_projects"),
    )


def reconciliation_items(project_id: str | None, month: date) -> pd.DataFrame:
    """The records behind one reconciliation row: time entries, TimeActivities, invoice lines."""
    return read(
        """
        select item_key, item_type, time_entry_id, work_date, currency_code, approved_hours, erp_hours,
            invoiced_hours, approved_amount, erp_amount, invoiced_amount, erp_time_activity_count,
            invoice_line_count, exception_rule_codes, difference_reason, reconciliation_status
        from {fct_reconciliation_items}
        where project_id is not distinct from ? and month_start_date = ?
        order by reconciliation_status = 'matched', work_date, item_key
        """,
        [project_id, month],
        needs=("fct_reconciliation_items",),
    )


# --- reverse ETL (the ledger's published snapshot) -------------------------------------------------


def sync_runs(limit: int = 20) -> pd.DataFrame:
    return read(
        "select sync_run_id, started_at, finished_at, run_status, is_dry_run, lines_in_plan, creates_planned,"
        " updates_planned, deletes_planned, lines_held, lines_acknowledged, lines_rejected, lines_deleted,"
        " lines_dead_letter, lines_vanished, erp_duplicates, lines_adopted, transport_failures,"
        " realms_failed, duration_s, message"
        " from {sync_runs} order by started_at desc limit ?",
        [limit],
        needs=("sync_runs",),
    )


def dead_letters() -> pd.DataFrame:
    """Lines whose request got no answer after every retry (resent by the next sync run)."""
    return read(
        "select line_key, line_kind, realm_id, time_entry_id, milestone_id, txn_date, hours, amount,"
        " currency_code,"
        " attempts, erp_error_code, erp_error_message, first_sent_at, updated_at, last_sync_run_id"
        " from {line_states} where line_state = 'dead_letter' order by updated_at desc",
        needs=("line_states",),
    )
