"""The Pipeline health page's reads: ingest runs (the load log), warehouse builds, the reverse-ETL
ledger's published snapshot, ERP rejections and the loaders' quarantine.
"""

from __future__ import annotations

from typing import Any

import pandas as pd

from dashboards.queries.connection import read, tables


def ingest_runs(limit: int = 20) -> pd.DataFrame:
    """One row per ingest run and source: rows, duration, status, error."""
    t = tables("load_log")
    return read(
        f"""
        with runs as (
            select distinct run_id from {t.load_log} order by run_id desc nulls last limit ?
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
        from {t.load_log} as log
        inner join runs on runs.run_id = log.run_id
        group by log.run_id, log.source_name
        order by log.run_id desc nulls last, log.source_name
        """,
        [limit],
        tables=t,
    )


PIPELINE_RUN_COLUMNS = (
    "pipeline_run_id", "run_mode", "started_at", "finished_at", "outcome", "failed_step", "exit_code",
    "duration_s", "rows_loaded", "rows_quarantined", "models_built", "tests_passed", "tests_warned",
    "tests_failed", "lines_synced", "lines_rejected", "exceptions_opened", "exceptions_resolved",
    "message", "log_path",
)  # fmt: skip


def pipeline_runs(limit: int = 20) -> pd.DataFrame:
    """The last pipeline runs (make daily / pipeline / demo-day), newest first, with their facts."""
    t = tables("pipeline_runs")
    columns = ", ".join(PIPELINE_RUN_COLUMNS)
    return read(
        f"select {columns}, steps_json from {t.pipeline_runs} order by started_at desc nulls last limit ?",
        [limit],
        tables=t,
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
    t = tables("transform_runs")
    frame = read(
        f"select * from {t.transform_runs} order by started_at desc nulls last limit ?", [limit], tables=t
    )
    for column in ("failed_nodes", "warnings"):  # one line per item
        if column in frame:
            frame[column] = frame[column].map(lines_of)
    return frame[[column for column in TRANSFORM_RUN_COLUMNS if column in frame]]


def quarantine_summary() -> pd.DataFrame:
    """Refused records by table and reason: how many are still outstanding (the loader asks for
    them again every run), how many later landed or proved deleted upstream (HR rows: neither)."""
    t = tables("quarantine")
    return read(
        "select source_system, table_name, reason, count(*) filter (where is_outstanding) as outstanding,"
        " count(resolved_at) as resolved, count(*) as records, max(quarantined_at) as last_at"
        f" from {t.quarantine} group by source_system, table_name, reason"
        " order by outstanding desc nulls last, records desc nulls last",
        tables=t,
    )


def erp_rejections() -> pd.DataFrame:
    """Lines the ERP refused (ERP_REJECTED in the exception queue), with its code and message."""
    t = tables("fct_exceptions")
    return read(
        "select exception_id, record_id, source_ids, reason, details, occurred_on, legal_entity,"
        f" project_id, detected_at from {t.fct_exceptions} where rule_code = 'ERP_REJECTED'"
        " order by occurred_on desc nulls last",
        tables=t,
    )


# --- reverse ETL (the ledger's published snapshot) -------------------------------------------------


def sync_runs(limit: int = 20) -> pd.DataFrame:
    t = tables("sync_runs")
    return read(
        "select sync_run_id, started_at, finished_at, run_status, is_dry_run, lines_in_plan, creates_planned,"
        " updates_planned, deletes_planned, lines_held, lines_acknowledged, lines_rejected, lines_deleted,"
        " lines_dead_letter, lines_vanished, erp_duplicates, lines_adopted, transport_failures,"
        " realms_failed, duration_s, message"
        f" from {t.sync_runs} order by started_at desc nulls last limit ?",
        [limit],
        tables=t,
    )


def dead_letters() -> pd.DataFrame:
    """Lines whose request got no answer after every retry (resent by the next sync run)."""
    t = tables("line_states")
    return read(
        "select line_key, line_kind, realm_id, time_entry_id, milestone_id, txn_date, hours, amount,"
        " currency_code,"
        " attempts, erp_error_code, erp_error_message, first_sent_at, updated_at, last_sync_run_id"
        f" from {t.line_states} where line_state = 'dead_letter' order by updated_at desc nulls last",
        tables=t,
    )
