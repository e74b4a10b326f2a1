"""What the readers' engine tests share: the environment per engine, every dashboard read, the
comparison of two engines' answers, and a ledger to snapshot (tests/test_readers_postgres.py)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from datetime import date
from pathlib import Path
from typing import Any

import pandas as pd
import psycopg2
import pytest

from dashboards.queries import (
    connection,
    coverage,
    exceptions,
    filters,
    forecast,
    overview,
    pipeline_health,
    reconciliation,
    revenue_margin,
    semantic,
    utilisation,
    wip_billing,
)
from dashboards.queries.filters import Filters, add_months, month_end
from reverse_etl.ledger import Ledger, now
from reverse_etl.records import ErpCopy, RunCounters, RunResult
from reverse_etl.states import RunStatus

ENGINE_KEYS = ("BILLABLE_ENGINE", "DESTINATION__POSTGRES__CREDENTIALS", "BILLABLE_WAREHOUSE")


@contextmanager
def engine(name: str, cluster: Any, warehouse: Path) -> Iterator[None]:
    """The process's environment set for one engine (restored afterwards)."""
    saved = {key: os.environ.get(key) for key in ENGINE_KEYS}
    os.environ["BILLABLE_WAREHOUSE"] = str(warehouse)
    if name == "duckdb" or cluster is None:
        os.environ.pop("BILLABLE_ENGINE", None)
        os.environ.pop("DESTINATION__POSTGRES__CREDENTIALS", None)
    else:
        os.environ.update(cluster.environment())
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


QUERY_MODULES = (
    connection,
    coverage,
    exceptions,
    filters,
    forecast,
    overview,
    pipeline_health,
    reconciliation,
    revenue_margin,
    semantic,
    utilisation,
    wip_billing,
)
# Functions of the query modules that read nothing (helpers, SQL builders): no engine to compare.
NOT_READS = {
    "add_months", "month_start", "month_end", "where", "ignored_filters", "tables", "finite",
    "parse_time", "lines_of", "latest", "snapshot", "run_scope", "unreadable", "available",
    "missing", "read", "as_role", "current_access", "relation_columns", "with_scopes",
}  # fmt: skip


def dashboard_reads() -> dict[str, Callable[[], Any]]:
    """Every read the pages make, by name, with arguments that reach every branch of its SQL."""
    months = filters.data_months()
    assert months is not None
    last = month_end(months[1])
    period = Filters(start=add_months(months[1], -5), end=last)
    choices = filters.filter_choices()
    client = tuple(choices["client"][0][:1])
    entity = replace(period, legal_entities=tuple(choices["legal_entity"][:2]))
    narrow = replace(entity, practices=tuple(choices["practice"][:2]))
    by_client = replace(period, clients=client)
    start = add_months(months[1], -11)
    queue = exceptions.exception_queue(period)
    exception_id = str(queue.iloc[0]["exception_id"]) if not queue.empty else "none"
    with_entry = queue.dropna(subset=["time_entry_id"])
    entry_exception = str(with_entry.iloc[0]["exception_id"]) if not with_entry.empty else exception_id
    recon = reconciliation.reconciliation_rows(period)
    project, month = recon.iloc[0]["project_id"], pd.Timestamp(recon.iloc[0]["month_start_date"]).date()
    as_of = wip_billing.nearest_wip_date(last)
    reads: dict[str, Callable[[], Any]] = {
        "freshness.sources": lambda: connection.freshness().sources,
        "freshness.last_build": lambda: connection.freshness().last_build,
        "freshness.last_good_build": lambda: connection.freshness().last_good_build,
        "as_of_date": filters.as_of_date,
        "data_months": filters.data_months,
        "filter_choices": filters.filter_choices,
        "reporting_currency": filters.reporting_currency,
        "currencies": filters.currencies,
        "currency_factor": lambda: [filters.currency_factor(code, last) for code in filters.currencies()],
        "open_exception_count": lambda: [
            overview.open_exception_count(f) for f in (period, narrow, by_client)
        ],
        "open_exceptions_at_month_ends": lambda: overview.open_exceptions_at_month_ends(
            start, add_months(date.today(), 2)
        ),
        "exception_record": lambda: exceptions.exception_record(exception_id),
        "exception_record.time_entry": lambda: exceptions.exception_record(entry_exception),
        "time_entry_rows": lambda: exceptions.time_entry_rows(
            list(with_entry["time_entry_id"].astype(str)[:5])
        ),
        "ingest_runs": pipeline_health.ingest_runs,
        "pipeline_runs": pipeline_health.pipeline_runs,
        "transform_runs": pipeline_health.transform_runs,
        "quarantine_summary": pipeline_health.quarantine_summary,
        "erp_rejections": pipeline_health.erp_rejections,
        "sync_runs": pipeline_health.sync_runs,
        "dead_letters": pipeline_health.dead_letters,
        "reconciliation_rows": lambda: reconciliation.reconciliation_rows(period),
        "reconciliation_rows.statuses": lambda: reconciliation.reconciliation_rows(
            entity, ("unexplained", "matched", "not_yet_billed")
        ),
        "reconciliation_monthly": lambda: reconciliation.reconciliation_monthly(entity, start, last),
        "reconciliation_items": lambda: reconciliation.reconciliation_items(project, month),
        "revenue_total": lambda: revenue_margin.revenue_total(narrow),
        "revenue_monthly": lambda: revenue_margin.revenue_monthly(period, start, last),
        "revenue_rows": lambda: revenue_margin.revenue_rows(entity),
        "realization_total": lambda: revenue_margin.realization_total(period),
        "dso_months": lambda: revenue_margin.dso_months(period, start, last),
        "ar_aging": lambda: revenue_margin.ar_aging(period, months[1]),
        "receivables_by_client": lambda: revenue_margin.receivables_by_client(entity),
        "overdue_invoices": lambda: revenue_margin.overdue_invoices(by_client),
        "history_start": lambda: [coverage.history_start(mart) for mart in coverage.HISTORY],
        "missing_comparison": lambda: [
            coverage.missing_comparison(period, mart, balance=balance)
            for mart in coverage.HISTORY
            for balance in (False, True)
        ],
        "wip_and_unbilled_by_contract": lambda: wip_billing.wip_and_unbilled_by_contract(narrow, last),
        "utilisation_monthly": lambda: utilisation.utilisation_monthly(narrow, start, last),
        "utilisation_total": lambda: utilisation.utilisation_total(period),
        "utilisation_people": lambda: utilisation.utilisation_people(period),
        "utilisation_weekly_people": lambda: utilisation.utilisation_weekly_people(narrow),
        "utilisation_rows": lambda: utilisation.utilisation_rows(period),
        "wip_as_of_dates": wip_billing.wip_as_of_dates,
        "nearest_wip_date": lambda: wip_billing.nearest_wip_date(last),
        "wip_by": lambda: wip_billing.wip_by(period, as_of),
        "wip_month_ends": lambda: wip_billing.wip_month_ends(period, start, last),
        "time_to_invoice_summary": lambda: wip_billing.time_to_invoice_summary(period, start, last),
        "time_to_invoice_period": lambda: wip_billing.time_to_invoice_period(by_client),
        "time_to_invoice_by_practice": lambda: wip_billing.time_to_invoice_by_practice(period),
        "time_to_invoice_distribution": lambda: wip_billing.time_to_invoice_distribution(period),
        "time_to_invoice_rows": lambda: wip_billing.time_to_invoice_rows(period),
        "definitions": lambda: semantic.definitions().metrics,
        "horizon": forecast.horizon,
        "forecast_utilisation_weekly": lambda: forecast.forecast_utilisation_weekly(narrow),
        "forecast_utilisation_by_person": lambda: forecast.forecast_utilisation_by_person(period),
        "actual_utilisation_monthly": lambda: forecast.actual_utilisation_monthly(entity, start, last),
        "demand_capacity": lambda: forecast.demand_capacity(narrow),
        "revenue_forecast": lambda: forecast.revenue_forecast(period, start),
        "forecast_accuracy": forecast.forecast_accuracy,
        "project_health": lambda: forecast.project_health(by_client),
        "project_health.all": lambda: forecast.project_health(period),
        "project_health_by_lead": lambda: forecast.project_health_by_lead(entity),
    }
    for sort in exceptions.SORTABLE:
        reads[f"exception_queue.{sort}"] = lambda sort=sort: exceptions.exception_queue(entity, sort=sort)
    reads["exception_queue.filtered"] = lambda: exceptions.exception_queue(
        period, owners=("Finance", "PMO"), rules=tuple(queue["rule_code"][:2]), buckets=("0-2", "30+")
    )
    for group in revenue_margin.REVENUE_GROUPS:
        reads[f"revenue_by.{group}"] = lambda group=group: revenue_margin.revenue_by(period, group)
    for group in revenue_margin.REALIZATION_GROUPS:
        reads[f"realization_by.{group}"] = lambda group=group: revenue_margin.realization_by(entity, group)
    for group in utilisation.UTILISATION_GROUPS:
        reads[f"utilisation_by.{group}"] = lambda group=group: utilisation.utilisation_by(period, group)
    return reads


def read_all(name: str, cluster: Any, warehouse: Path) -> dict[str, Any]:
    with engine(name, cluster, warehouse), connection.run_scope():
        assert connection.snapshot().engine == name and connection.unreadable() is None
        return {key: read() for key, read in dashboard_reads().items()}


def same(pg: Any, duck: Any, what: str) -> None:
    if isinstance(duck, pd.DataFrame):
        assert isinstance(pg, pd.DataFrame), what
        assert list(pg.columns) == list(duck.columns), what
        assert len(pg) == len(duck), what
        pd.testing.assert_frame_equal(
            pg.reset_index(drop=True), duck.reset_index(drop=True), check_dtype=False, rtol=1e-9, obj=what
        )
    elif isinstance(duck, pd.Series):
        pd.testing.assert_series_equal(pg, duck, check_dtype=False, check_names=False, rtol=1e-9, obj=what)
    elif isinstance(duck, dict):
        assert pg.keys() == duck.keys(), what
        for key in duck:
            same(pg[key], duck[key], f"{what}[{key}]")
    elif isinstance(duck, list | tuple):
        assert len(pg) == len(duck), what
        for index, (left, right) in enumerate(zip(pg, duck, strict=True)):
            same(left, right, f"{what}[{index}]")
    elif isinstance(duck, float):
        assert pg == pytest.approx(duck, rel=1e-9), what
    else:
        assert pg == duck, what


def ledger_with(path: Path, runs: int, lines: int, first_run: int = 0) -> None:
    ledger = Ledger(path)
    try:
        for number in range(first_run, first_run + runs):
            run_id = f"run-{number:03d}"
            ledger.start_run(run_id, number % 2 == 0, False, "build-1")
            ledger.finish_run(
                run_id, RunResult(RunStatus.SUCCEEDED, RunCounters(lines_in_plan=number), "ok", 1.25)
            )
        with ledger.writing(f"run-{first_run:03d}") as writer:
            for number in range(lines):
                copy = ErpCopy(
                    "time", "TimeActivity", "realm-1", str(1000 + number), "0", number, None,
                    "2026-01-05", "1.5000", "120.0000", "180.00000000", "USD",
                )  # fmt: skip
                writer.adopt(f"time:{number}", copy, f"hash-{number}", "adopted", now())
    finally:
        ledger.close()


def ledger_snapshot_rows(dsn: str) -> dict[str, list[tuple]]:
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            found = {}
            for table in ("line_states", "sync_runs"):
                cursor.execute(f"select * from raw_ledger.{table} order by 1")
                found[table] = cursor.fetchall()
            return found
    finally:
        connection.close()


def ledger_snapshot_types(dsn: str) -> dict[str, dict[str, str]]:
    connection = psycopg2.connect(dsn)
    try:
        with connection.cursor() as cursor:
            cursor.execute(
                "select table_name, column_name, data_type from information_schema.columns"
                " where table_schema = 'raw_ledger' order by table_name, ordinal_position"
            )
            found: dict[str, dict[str, str]] = {}
            for table, column, kind in cursor.fetchall():
                found.setdefault(table, {})[column] = kind
            return found
    finally:
        connection.close()


def wait_for_lock_waiter(dsn: str) -> int | None:
    admin = psycopg2.connect(dsn)
    admin.autocommit = True
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with admin.cursor() as cursor:
                cursor.execute(
                    "select pid from pg_stat_activity where wait_event_type = 'Lock'"
                    " and query ilike 'drop table if exists raw_ledger.sync_runs%%'"
                )
                row = cursor.fetchone()
            if row:
                return int(row[0])
            time.sleep(0.1)
        return None
    finally:
        admin.close()
