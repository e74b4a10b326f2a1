"""Every dashboard page under Streamlit's AppTest on the session's tiny warehouse.

The tiles must show the marts' numbers: each expected value is computed here with its own SQL
against the published warehouse (not through dashboards.queries), then formatted the way the
tile formats it. Filter combinations that change the SQL (entity, practice, client, a longer
period, another currency) are checked the same way.
"""

from __future__ import annotations

from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest

from dashboards import ui
from tests.dashboard_helpers import PAGES, messages, metrics, run_page


def scalar(warehouse: Path, sql: str, *params):
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchone()[0]


def row(warehouse: Path, sql: str, *params) -> tuple:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchone()


def default_month(warehouse: Path) -> date:
    as_of = scalar(warehouse, "select as_of_date from intermediate.int_as_of")
    return (as_of.replace(day=1) - timedelta(days=1)).replace(day=1)


def month_end(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1) - timedelta(days=1)


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


@pytest.fixture(scope="module")
def warehouse(tiny_firm) -> Path:
    return tiny_firm.warehouse


@pytest.mark.parametrize("page", list(PAGES))
def test_every_page_renders_without_error(warehouse, page):
    at = run_page(warehouse, page)
    assert not at.exception, [element.value for element in at.exception]
    assert not at.error, [element.value for element in at.error]
    assert at.title[0].value == PAGES[page][1]
    assert "data as of" in messages(at)  # freshness on every page


def expected_overview(warehouse: Path, month: date, entities: tuple[str, ...] = ()) -> dict[str, str]:
    entity_sql = f" and legal_entity in ({', '.join('?' for _ in entities)})" if entities else ""
    end = month_end(month)
    utilisation = scalar(
        warehouse,
        "select sum(billable_hours) / sum(capacity_hours) from marts.rpt_utilization"
        f" where month_start_date = ?{entity_sql}",
        month,
        *entities,
    )
    wip = scalar(
        warehouse,
        f"select sum(wip_amount_reporting) from marts.rpt_wip where as_of_date = ?{entity_sql}",
        end,
        *entities,
    )
    median_days = scalar(
        warehouse,
        "select quantile_cont(days_worked_to_invoice, 0.5) from marts.rpt_time_to_invoice"
        f" where invoice_date >= ? and invoice_date <= ?{entity_sql}",
        month,
        end,
        *entities,
    )
    revenue, margin = row(
        warehouse,
        "select sum(recognized_amount_reporting), sum(gross_margin_amount_reporting)"
        f" / sum(recognized_amount_reporting) from marts.rpt_revenue where month_start_date = ?{entity_sql}",
        month,
        *entities,
    )
    dso = scalar(
        warehouse,
        "select 90 * sum(open_receivables_reporting) / sum(invoiced_90_days_reporting) from marts.rpt_dso"
        f" where month_start_date = ?{entity_sql}",
        month,
        *entities,
    )
    open_exceptions = scalar(
        warehouse, f"select count(*) from marts.fct_exceptions where true{entity_sql}", *entities
    )
    return {
        "Billable utilisation": ui.percent(utilisation),
        "WIP (unbilled)": ui.money(wip, "USD"),
        "Median time to invoice": ui.days(median_days),
        "DSO": ui.days(dso),
        "Recognised revenue": ui.money(revenue, "USD"),
        "Gross margin": ui.percent(margin),
        "Open exceptions": f"{open_exceptions:,}",
    }


def test_overview_tiles_show_the_marts_numbers(warehouse):
    at = run_page(warehouse, "overview")
    month = default_month(warehouse)
    assert month.strftime("%b %Y") in messages(at)
    expected = expected_overview(warehouse, month)
    assert metrics(at) == expected
    # the sanity of the world: these are real numbers, not placeholders
    assert all(value not in ("—", "0") for value in expected.values())


def test_overview_filtered_by_legal_entity(warehouse):
    def choose(at):
        at.multiselect(key="filter_entity").set_value(["UK"])

    at = run_page(warehouse, "overview", setup=choose)
    assert not at.exception
    assert metrics(at) == expected_overview(warehouse, default_month(warehouse), ("UK",))
    assert "legal entity: UK" in messages(at)


def test_overview_by_region_says_which_tiles_cannot_apply_it(warehouse):
    region = scalar(warehouse, "select min(region) from marts.rpt_utilization")

    def choose(at):
        at.multiselect(key="filter_region").set_value([region])

    at = run_page(warehouse, "overview", setup=choose)
    assert not at.exception
    utilisation = scalar(
        warehouse,
        "select sum(billable_hours) / sum(capacity_hours) from marts.rpt_utilization"
        " where month_start_date = ? and region = ?",
        default_month(warehouse),
        region,
    )
    assert metrics(at)["Billable utilisation"] == ui.percent(utilisation)
    assert "WIP (not by region)" in messages(at) and "DSO (not by region)" in messages(at)


def test_trace_a_tile_to_its_rows(warehouse):
    def choose(at):
        at.selectbox(key="overview_trace").set_value("Billable utilisation (person x month)")

    at = run_page(warehouse, "overview", setup=choose)
    assert not at.exception
    month = default_month(warehouse)
    people, billable = row(
        warehouse,
        "select count(*), sum(billable_hours) from marts.rpt_utilization where month_start_date = ?",
        month,
    )
    rows = at.dataframe[0].value
    assert len(rows) == people and abs(float(rows["billable_hours"].sum()) - float(billable)) < 1e-6


def test_utilisation_over_three_months_by_practice(warehouse):
    practice = scalar(warehouse, "select min(practice) from marts.rpt_utilization")

    def choose(at):
        at.segmented_control(key="filter_period_kind").set_value("3 months")
        at.multiselect(key="filter_practice").set_value([practice])

    at = run_page(warehouse, "utilisation", setup=choose)
    assert not at.exception
    end = default_month(warehouse)
    start = add_months(end, -2)
    billable, target, compliance = row(
        warehouse,
        "select sum(billable_hours) / sum(capacity_hours), sum(target_billable_hours) / sum(capacity_hours),"
        " sum(compliant_capacity_hours) / sum(capacity_hours) from marts.rpt_utilization"
        " where month_start_date between ? and ? and practice = ?",
        start,
        end,
        practice,
    )
    shown = metrics(at)
    assert shown["Billable utilisation"] == ui.percent(billable)
    assert shown["Target"] == ui.percent(target)
    assert shown["Submission compliance"] == ui.percent(compliance)
    assert f"{start:%b %Y} – {end:%b %Y}" in messages(at)


def test_revenue_in_another_reporting_currency(warehouse):
    def choose(at):
        at.selectbox(key="filter_currency").set_value("EUR")

    at = run_page(warehouse, "revenue_margin", setup=choose)
    assert not at.exception
    month = default_month(warehouse)
    revenue_usd = scalar(
        warehouse,
        "select sum(recognized_amount_reporting) from marts.rpt_revenue where month_start_date = ?",
        month,
    )
    eur_rate = scalar(
        warehouse,
        "select rate_to_reporting from intermediate.int_fx_rates_daily where currency_code = 'EUR'"
        " and rate_date = ?",
        month_end(month),
    )
    assert metrics(at)["Recognised revenue"] == ui.money(float(revenue_usd) / float(eur_rate), "EUR")
    assert "amounts in **EUR**" in messages(at)


def test_wip_as_of_an_earlier_month_end(warehouse):
    earlier = scalar(warehouse, "select min(as_of_date) from marts.rpt_wip where is_month_end")

    def choose(at):
        at.selectbox(key="wip_as_of").set_value(earlier)

    at = run_page(warehouse, "wip_billing", setup=choose)
    assert not at.exception
    wip, at_risk = row(
        warehouse,
        "select sum(wip_amount_reporting), sum(at_risk_amount_reporting) from marts.rpt_wip"
        " where as_of_date = ?",
        earlier,
    )
    shown = metrics(at)
    assert shown["WIP"] == ui.money(wip, "USD")
    assert shown["At risk (unapproved billable time)"] == ui.money(at_risk, "USD")


def test_exception_queue_by_owner_with_drill_down(warehouse):
    def choose(at):
        at.multiselect(key="exceptions_owner").set_value(["Finance"])

    at = run_page(warehouse, "exceptions", setup=choose)
    assert not at.exception
    finance_open, finance_blocking = row(
        warehouse,
        "select count(*), count(*) filter (where is_blocking) from marts.rpt_exception_aging"
        " where is_open and owner = 'Finance'",
    )
    shown = metrics(at)
    assert shown["Open exceptions"] == f"{finance_open:,}"
    assert shown["Blocking billing"] == f"{finance_blocking:,}"
    queue = at.dataframe[0].value
    assert len(queue) == finance_open and set(queue["owner"]) == {"Finance"}
    assert at.get("download_button"), "the owning team's CSV download is missing"

    # drill down into one exception: its reason and the ids to find it in the source system
    exception_id, source_ids, reason = row(
        warehouse,
        "select exception_id, source_ids, reason from marts.fct_exceptions where owner = 'Finance'"
        " and time_entry_id is not null order by exception_id limit 1",
    )
    at.selectbox(key="exceptions_drill").set_value(exception_id)
    at.run()
    assert not at.exception
    text = messages(at)
    assert source_ids in text and reason in text
    # the time entry behind it, without cost columns
    entry = at.dataframe[-1].value
    assert len(entry) == 1 and "cost_amount" not in entry.columns


def test_no_cost_rate_or_salary_column_reaches_a_page(warehouse):
    """Per-person cost never appears: no table shows a cost rate or salary, nor cost next to a person."""
    for page in PAGES:
        at = run_page(warehouse, page)
        for frame in at.dataframe:
            columns = {str(column).lower() for column in frame.value.columns}
            assert not {column for column in columns if "salary" in column or "hourly_cost" in column}, page
            if columns & {"employee_id", "full_name"}:
                assert not {column for column in columns if "cost" in column}, (page, columns)


def test_forecast_tiles_show_the_forecast_marts(warehouse):
    at = run_page(warehouse, "forecast")
    assert not at.exception, [element.value for element in at.exception]
    utilisation, target = row(
        warehouse,
        "select sum(billable_assigned_hours) / sum(capacity_hours),"
        " sum(target_billable_hours) / sum(capacity_hours)"
        " from marts.rpt_forecast_utilization_weekly",
    )
    contracted, pipeline = row(
        warehouse,
        "select sum(forecast_amount_reporting) filter (where not is_pipeline),"
        " sum(forecast_amount_reporting) filter (where is_pipeline)"
        " from marts.rpt_revenue_forecast_monthly",
    )
    shown = metrics(at)
    assert shown["Forecast billable utilisation"] == ui.percent(utilisation)
    assert shown["Target"] == ui.percent(target)
    assert shown["Contracted revenue ahead"] == ui.money(contracted, "USD")
    assert shown["Weighted pipeline ahead"] == ui.money(pipeline, "USD")


def test_project_health_filtered_by_practice(warehouse):
    practice = scalar(
        warehouse,
        "select practice from marts.rpt_project_health where is_forecast_over_budget_hours"
        " order by practice limit 1",
    )
    assert practice is not None, "the tiny world has no project forecast over its budget hours"

    def choose(at):
        at.sidebar.multiselect(key="filter_practice").set_value([practice])

    at = run_page(warehouse, "project_health", setup=choose)
    assert not at.exception, [element.value for element in at.exception]
    projects, over = row(
        warehouse,
        "select count(*), count(*) filter (where is_forecast_over_budget_hours)"
        " from marts.rpt_project_health where practice = ?",
        practice,
    )
    shown = metrics(at)
    assert shown["Projects"] == f"{projects:,}"
    assert shown["Forecast over budget hours"] == f"{over:,}"
