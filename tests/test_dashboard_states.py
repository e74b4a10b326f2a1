"""The dashboard when things are not fine: no warehouse yet, a partial one, a source down, a failed
build, a warehouse replaced while the app runs, and the optional sign-in."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import duckdb
import pytest

from dashboards.users import add_user
from tests.dashboard_helpers import PAGES, messages, metrics, run_page


@pytest.mark.parametrize("page", list(PAGES))
def test_no_warehouse_yet_says_so_on_every_page(tmp_path, page):
    at = run_page(tmp_path / "nothing" / "warehouse.duckdb", page)
    assert not at.exception, [element.value for element in at.exception]
    assert not at.error
    assert "No warehouse has been published yet" in messages(at)
    assert "make pipeline" in messages(at)


def test_a_damaged_warehouse_file_is_one_clear_message(tmp_path):
    damaged = tmp_path / "warehouse.duckdb"
    damaged.write_text("not a DuckDB database")
    for page in ("overview", "exceptions"):
        at = run_page(damaged, page)
        assert not at.exception
        errors = [element.value for element in at.error]
        assert len(errors) == 1 and "cannot be read" in errors[0] and "make transform" in errors[0]
        assert not at.warning and not at.metric


@pytest.fixture(scope="module")
def partial_warehouse(tiny_firm, tmp_path_factory) -> Path:
    """A copy of the tiny warehouse without rpt_revenue, with the ERP down at the last load and the
    latest build failed (as ops.transform_runs records it before the next good publish)."""
    folder = tmp_path_factory.mktemp("partial")
    warehouse = folder / "warehouse.duckdb"
    shutil.copyfile(tiny_firm.warehouse, warehouse)
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute("drop table marts.rpt_revenue")
        connection.execute(
            """
            insert into staging.stg_ops__load_log
                (run_id, source_name, dataset, table_name, row_count, started_at, duration_s, load_status,
                 error_message)
            values ('29991231T000000000000Z', 'erp', 'raw_erp', null, 0, now()::timestamp, 3.5, 'failed',
                    'HTTP 503 from https://erp.example/v3/company/1/query after 5 retries')
            """
        )
        connection.execute(
            """
            insert into ops.transform_runs (run_id, started_at, finished_at, status, message, duration_s,
                nodes_failed, failed_nodes)
            values ('29991231T000000000001Z', now()::timestamp, now()::timestamp, 'failed',
                    'test unique_fct_invoices_erp_invoice_key failed', 12.0, 1,
                    ['test.billable.unique_fct_invoices_erp_invoice_key'])
            """
        )
    return warehouse


def test_partial_warehouse_explains_what_is_missing(partial_warehouse):
    at = run_page(partial_warehouse, "overview")
    assert not at.exception, [element.value for element in at.exception]
    text = messages(at)
    assert "A source failed at the last load" in text and "HTTP 503" in text and "erp" in text
    assert "The latest build failed" in text and "unique_fct_invoices_erp_invoice_key" in text
    assert "`marts.rpt_revenue` is not in this warehouse" in text
    # tiles whose marts exist still show their numbers
    shown = metrics(at)
    assert "Billable utilisation" in shown and "Recognised revenue" not in shown

    at = run_page(partial_warehouse, "revenue_margin")
    assert not at.exception
    assert "`marts.rpt_revenue` is not built" in messages(at)

    at = run_page(partial_warehouse, "pipeline_health")
    assert not at.exception
    assert "erp · last load" in metrics(at) and metrics(at)["erp · last load"] == "failed"


def test_a_newly_published_warehouse_is_picked_up(tiny_firm, tmp_path):
    """Publishing replaces the file by rename; the next run of the app reads the new one."""
    target = tmp_path / "warehouse.duckdb"
    shutil.copyfile(tiny_firm.warehouse, target)
    first = run_page(target, "exceptions")
    before = int(metrics(first)["Open exceptions"].replace(",", ""))

    replacement = tmp_path / "warehouse.duckdb.publishing"
    shutil.copyfile(tiny_firm.warehouse, replacement)
    with duckdb.connect(str(replacement)) as connection:
        connection.execute(
            "delete from marts.rpt_exception_aging where exception_id in"
            " (select exception_id from marts.rpt_exception_aging where is_open order by 1 limit 5)"
        )
    os.replace(replacement, target)  # what the transform's publish step does

    first.run()
    assert int(metrics(first)["Open exceptions"].replace(",", "")) == before - 5


def test_a_build_published_with_warnings_says_which(tiny_firm, tmp_path):
    """A warn-level data test does not stop a publish; Pipeline health shows what it found."""
    warehouse = tmp_path / "warehouse.duckdb"
    shutil.copyfile(tiny_firm.warehouse, warehouse)
    warning = "test warn_money_without_a_reporting_rate: WARN: Got 1 result, configured to warn if != 0"
    with duckdb.connect(str(warehouse)) as connection:
        connection.execute(
            "insert into ops.transform_runs (run_id, started_at, finished_at, status, duration_s,"
            " nodes_total, nodes_failed, nodes_skipped, failed_nodes, nodes_warned, warnings)"
            " select '99990101T000000000000Z', max(started_at) + interval 1 hour,"
            " max(finished_at) + interval 1 hour, 'passed', 12.5, 900, 0, 0, [], 1, [?]"
            " from ops.transform_runs",
            [warning],
        )
    at = run_page(warehouse, "pipeline_health")
    assert not at.exception, [element.value for element in at.exception]
    assert metrics(at)["Warnings in the last build"] == "1"
    assert "published with warnings" in messages(at) and warning in messages(at)


def test_sign_in_when_a_users_file_is_configured(tiny_firm, tmp_path, monkeypatch):
    users = tmp_path / "users.yaml"
    add_user(
        users, "cfo", "Chief Financial Officer", "cfo@example.com", "correct horse battery", role="finance"
    )
    assert "correct horse battery" not in users.read_text()  # bcrypt hash only
    monkeypatch.setenv("BILLABLE_DASHBOARD_USERS", str(users))

    monkeypatch.delenv("BILLABLE_DASHBOARD_COOKIE_KEY", raising=False)
    at = run_page(tiny_firm.warehouse)
    assert "BILLABLE_DASHBOARD_COOKIE_KEY" in messages(at) and not at.metric

    monkeypatch.setenv("BILLABLE_DASHBOARD_COOKIE_KEY", "a-test-secret-that-is-long-enough-0123456789")
    at = run_page(tiny_firm.warehouse)
    assert not at.exception
    assert not at.metric  # nothing shown before signing in
    at.text_input[0].input("cfo")
    at.text_input[1].input("wrong password")
    at.button[0].click().run()
    assert "incorrect" in messages(at) and not at.metric

    at.text_input[0].input("cfo")
    at.text_input[1].input("correct horse battery")
    at.button[0].click().run()
    assert not at.exception
    assert "Open exceptions" in metrics(at)
