"""The published warehouse: which file (or database), its freshness, the connections, the cache, every read.

The engine (`BILLABLE_ENGINE`, billable/engine.py) decides where the published warehouse is:
DuckDB (the default), the file data/warehouse.duckdb; PostgreSQL, the published schemas of the
configured database, read through a pool of read-only sessions (dashboards/queries/postgres.py);
Spark, the published Parquet snapshot read with DuckDB (dashboards/queries/spark.py).

Rules every query module keeps (docs/dashboards.md):
- the SQL runs on DuckDB and on PostgreSQL alike: standard SQL both engines run, no engine-only
  function (no `group by all`, `arg_max`, `any_value`, `interval 1 day`);
- values travel as `?` parameters, never inside the SQL text; the only names put into SQL text
  are relations from RELATIONS (through `tables(...)`), columns from the query modules'
  allow-lists and the semantic layer's measure expressions (dashboards/queries/semantic.py), never
  anything a user typed; a query's SQL is composed in one step (one f-string), never edited or
  templated afterwards;
- reads are read-only and short-lived: one connection per page run at most, a cursor per query,
  closed when the run ends, so the pipeline can publish a new file by atomic rename while the
  dashboard is open and the next run reads it (docs/publishing.md; see "Connections" below);
- reads are cached with `st.cache_data`, keyed by the published file's identity (device,
  inode, mtime and size), so a new publish is picked up on the next rerun;
- per-person cost rates and salaries are never selected: cost appears only summed to project
  level or above, inside the KPI marts;
- every relation a query names goes through the visitor's access (dashboards/queries/access.py):
  the app sets it per run (`as_role`) before any read, and `tables(...)` then names a subquery
  with only the rows and columns that role may see, or refuses the relation (NotPermitted).
"""

from __future__ import annotations

import json
import math
import re
import threading
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import duckdb
import pandas as pd
import psycopg2
import streamlit as st

from billable.duckdb_config import duckdb_config
from billable.engine import EngineError, engine_name
from dashboards import settings
from dashboards.queries import postgres, spark
from dashboards.queries.access import FULL_ACCESS, Access, scoped_relation, visible_columns

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
    "forecast_horizon": "intermediate.int_forecast_horizon",
    "rpt_forecast_utilization_weekly": "marts.rpt_forecast_utilization_weekly",
    "rpt_demand_capacity_weekly": "marts.rpt_demand_capacity_weekly",
    "rpt_revenue_forecast_monthly": "marts.rpt_revenue_forecast_monthly",
    "rpt_forecast_accuracy": "marts.rpt_forecast_accuracy",
    "rpt_project_health": "marts.rpt_project_health",
    "sync_runs": "staging.stg_ledger__sync_runs",
    "line_states": "staging.stg_ledger__line_states",
    "transform_runs": "ops.transform_runs",
    "load_log": "staging.stg_ops__load_log",
    "pipeline_runs": "staging.stg_ops__pipeline_runs",
    "quarantine": "staging.stg_ops__quarantine",
    "semantic_manifest": "ops.semantic_manifest",
}


# What a read may raise from either engine's driver (the page shows it as a message).
READ_ERRORS: tuple[type[Exception], ...] = (duckdb.Error, psycopg2.Error)


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

    path: str  # the file, or the database (postgresql://user@host:port/db, no password)
    exists: bool
    version: str
    published: Mapping[str, Any] = field(default_factory=dict, hash=False, compare=False)
    engine: str = "duckdb"
    problem: str | None = None  # why it cannot be read (no connection, no configuration)


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
_held: dict[str, tuple[str | None, int]] = {}  # path -> (identity of the open instance, runs holding it)
_run = threading.local()  # .snapshot, .connections {path: (identity, connection)} while in run_scope


def _identity(path: Path) -> str | None:
    try:
        stat = path.stat()
    except FileNotFoundError:
        return None
    return f"{stat.st_dev}:{stat.st_ino}:{stat.st_mtime_ns}:{stat.st_size}"


def _engine_snapshot(engine: str) -> Snapshot:
    """The published warehouse on PostgreSQL (its schemas' identity) or Spark (its current snapshot)."""
    if engine == "spark":
        data_dir = settings.warehouse_path().parent
        found = spark.current(data_dir)
        if found is None:
            return Snapshot(str(spark.published_root(data_dir)), False, "missing", engine=engine)
        folder, run, facts = found
        return Snapshot(str(folder), True, f"spark:{run}", facts, engine=engine)
    try:
        where = postgres.settings().describe()
    except EngineError as error:
        return Snapshot("postgresql", True, "unconfigured", engine=engine, problem=str(error))
    try:
        identity, published = postgres.build_identity()
    except psycopg2.Error as error:
        problem = f"cannot reach {where}: {' '.join(str(error).split())}"
        return Snapshot(where, True, "unreachable", engine=engine, problem=problem)
    if identity is None:
        return Snapshot(where, False, "missing", engine=engine)
    return Snapshot(where, True, identity, published, engine=engine)


def _read_snapshot() -> Snapshot:
    try:
        engine = engine_name()
    except EngineError as error:
        return Snapshot("?", True, "unconfigured", engine="?", problem=str(error))
    if engine != "duckdb":
        return _engine_snapshot(engine)
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
            return duckdb.connect(path, read_only=True, config=duckdb_config())
        if path not in _run.connections:
            with _registry_lock:
                connection = duckdb.connect(path, read_only=True, config=duckdb_config())
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


def _postgres_checked(version: str, frame: pd.DataFrame) -> pd.DataFrame:
    """The frame, if the build it was read from is still the one this run keys its reads by."""
    if postgres.build_identity()[0] != version:
        # a publish swapped the schemas between this run's snapshot and this read
        raise WarehouseUnavailable("a new build was published while this page loaded; reload the page")
    return frame


def _spark_cursor(snapshot: str) -> duckdb.DuckDBPyConnection:
    """A cursor over a published Spark snapshot (DuckDB over its Parquet)."""
    try:
        return spark.reader(snapshot)
    except (FileNotFoundError, duckdb.Error) as error:
        raise WarehouseUnavailable(f"cannot read the Spark snapshot {snapshot}: {error}") from error


@st.cache_data(show_spinner=False, max_entries=1024, ttl=6 * 3600)
def _fetch(engine: str, path: str, version: str, sql: str, params: tuple) -> pd.DataFrame:
    # `version` is part of the cache key: a newly published file has another identity (inode,
    # mtime, size; on PostgreSQL the published schemas' OIDs), so it misses the cache.
    if engine == "postgres":
        return _postgres_checked(version, postgres.fetch(sql, params))
    if engine == "spark":
        with _spark_cursor(path) as cursor:
            return cursor.execute(sql, list(params)).df()
    with _open(path, version) as cursor:
        return cursor.execute(sql, list(params)).df()


@st.cache_data(show_spinner=False, max_entries=64, ttl=6 * 3600)
def _relations(engine: str, path: str, version: str) -> frozenset[str]:
    if engine == "postgres":
        try:
            return postgres.relations()
        except psycopg2.Error as error:
            raise WarehouseUnavailable(f"cannot read {path}: {' '.join(str(error).split())}") from error
    with _spark_cursor(path) if engine == "spark" else _open(path, version) as cursor:
        rows = cursor.execute(
            "select table_schema || '.' || table_name from information_schema.tables"
        ).fetchall()
    return frozenset(row[0] for row in rows)


def unreadable() -> str | None:
    """Why the published warehouse cannot be read (not a DuckDB file, unreachable), or None."""
    snap = snapshot()
    if not snap.exists:
        return None
    if snap.problem:
        return snap.problem
    try:
        _relations(snap.engine, snap.path, snap.version)
    except WarehouseUnavailable as error:
        return str(error)
    return None


def available(*names: str) -> bool:
    """All these relations (short names from RELATIONS) exist in the published warehouse."""
    snap = snapshot()
    if not snap.exists:
        return False
    if snap.problem:
        raise WarehouseUnavailable(snap.problem)
    present = _relations(snap.engine, snap.path, snap.version)
    return all(RELATIONS[name] in present for name in names)


def missing(*names: str) -> list[str]:
    snap = snapshot()
    if not snap.exists:
        return [RELATIONS[name] for name in names]
    if snap.problem:
        raise WarehouseUnavailable(snap.problem)
    present = _relations(snap.engine, snap.path, snap.version)
    return [RELATIONS[name] for name in names if RELATIONS[name] not in present]


# --- access: the signed-in visitor's role, for every read of this run ---------------------------

_access = threading.local()  # .access while in as_role


@contextmanager
def as_role(access: Access) -> Iterator[None]:
    """Around one script run (app.py): every relation named in it is scoped to this visitor's access.
    Outside as_role (tests, the benchmark, the CLI) reads are unscoped; the app always sets it."""
    previous = getattr(_access, "access", None)
    _access.access = access
    try:
        yield
    finally:
        _access.access = previous


def current_access() -> Access:
    return getattr(_access, "access", None) or FULL_ACCESS


@st.cache_data(show_spinner=False, max_entries=256, ttl=6 * 3600)
def _columns(engine: str, path: str, version: str, relation: str) -> tuple[str, ...]:
    schema, name = relation.split(".", 1)
    sql = (
        "select column_name from information_schema.columns where table_schema = ? and table_name = ?"
        " order by ordinal_position"
    )
    return tuple(_fetch(engine, path, version, sql, (schema, name))["column_name"].astype(str))


def relation_columns(relation: str) -> tuple[str, ...]:
    """The columns of a published relation (schema.name), in order."""
    snap = snapshot()
    return _columns(snap.engine, snap.path, snap.version, relation)


class Tables:
    """The relations one query reads, declared up front: `t = tables("rpt_wip")`, then
    `f"... from {t.rpt_wip}"`. A relation the query did not declare cannot be named (AttributeError),
    so `read` knows exactly which ones to check before running the SQL."""

    __slots__ = ("names", "scoped")

    def __init__(self, names: tuple[str, ...]) -> None:
        unknown = [name for name in names if name not in RELATIONS]
        if unknown:
            raise ValueError(f"unknown relation(s) {unknown}; known: {sorted(RELATIONS)}")
        self.names = names
        self.scoped: dict[str, str] = {}  # name -> the role's subquery, put in front of the SQL by read

    def __getattr__(self, name: str) -> str:
        if name not in self.names:
            raise AttributeError(f"relation {name!r} was not declared by this query ({self.names})")
        access = current_access()
        if access is FULL_ACCESS:
            return RELATIONS[name]
        # a restricted role reads a common table expression of its rows and columns instead (a
        # CTE, not a subquery in place: PostgreSQL before 16 wants an alias on every subquery)
        body = scoped_relation(access, name, RELATIONS, relation_columns)
        if body == RELATIONS[name]:  # nothing to limit for this role
            return body
        self.scoped[name] = body
        return f"scoped_{name}"


_WITH = re.compile(r"^\s*with\s+(recursive\s+)?", re.IGNORECASE)


def with_scopes(sql: str, scoped: Mapping[str, str]) -> str:
    """The query with the role's scoped relations defined in front of it (merged into its own WITH).
    They hold no `?`, so the query's parameters keep their positions."""
    if not scoped:
        return sql
    definitions = ", ".join(f"scoped_{name} as {body}" for name, body in scoped.items())
    found = _WITH.match(sql)
    if found:
        return f"with {found.group(1) or ''}{definitions}, {sql[found.end() :]}"
    return f"with {definitions} {sql}"


def tables(*names: str) -> Tables:
    return Tables(names)


def read(sql: str, params: Sequence[Any] = (), *, tables: Tables) -> pd.DataFrame:
    """Run one query (its SQL complete, relations named through `tables`) on the published warehouse."""
    snap = snapshot()
    if not snap.exists:
        raise WarehouseUnavailable(f"no published warehouse at {snap.path}")
    absent = missing(*tables.names)
    if absent:
        raise MartMissing(absent)
    frame = _fetch(snap.engine, snap.path, snap.version, with_scopes(sql, tables.scoped), tuple(params))
    access = current_access()
    if access.sees_cost:
        return frame.copy()
    return frame[visible_columns(access, list(frame.columns))].copy()


def latest(value: str, by: str) -> str:
    """SQL for `value` on the row with the greatest `by`, skipping rows where either is null
    (DuckDB's arg_max, which PostgreSQL lacks), in SQL both engines run. Names from constants only."""
    return (
        f"(array_agg({value} order by {by} desc) filter (where {value} is not null and {by} is not null))[1]"
    )


# --- freshness ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Freshness:
    published_at: str | None
    run_id: str | None
    last_build: pd.Series | None  # the latest transform run (any status)
    last_good_build: pd.Series | None
    sources: pd.DataFrame  # per source: last attempt, its status and error, last successful load


def freshness() -> Freshness:
    """Last build and last load per source: what was published (warehouse.json on DuckDB,
    ops.publications on PostgreSQL), ops.transform_runs and the load log."""
    snap = snapshot()
    published = dict(snap.published)
    last_build = last_good = None
    if available("transform_runs"):
        t = tables("transform_runs")
        runs = read(
            "select run_id, started_at, finished_at, status, message, nodes_failed, failed_nodes,"
            f" duration_s from {t.transform_runs} order by started_at desc nulls last limit 50",
            tables=t,
        )
        if not runs.empty:
            last_build = runs.iloc[0]
            passed = runs[runs["status"] == "passed"]
            last_good = passed.iloc[0] if not passed.empty else None
    sources = pd.DataFrame(
        columns=["source_name", "last_attempt_at", "last_status", "last_error", "last_loaded_at"]
    )
    if available("load_log"):
        t = tables("load_log")
        sources = read(
            f"""
            select
                source_name,
                max(started_at) as last_attempt_at,
                {latest("load_status", "started_at")} as last_status,
                {latest("error_message", "started_at")} as last_error,
                max(started_at) filter (where load_status = 'loaded') as last_loaded_at
            from {t.load_log}
            group by source_name
            order by source_name
            """,
            tables=t,
        )
    return Freshness(published.get("published_at"), published.get("run_id"), last_build, last_good, sources)


# --- values for display --------------------------------------------------------------------


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
