"""Figures that used to mislead (issue 19, section 2), checked against SQL on their marts.

Streamlit's AppTest on the session's tiny warehouse (tests/conftest.py): realisation's headline
on billed time, comparisons only with a period the data covers, the bridge from WIP to unbilled
receivable, the heatmap's ranking by variance to target, receivables by client with the overdue
invoices, and the Excel downloads beside the CSV ones.
"""

from __future__ import annotations

import io
import json
import zipfile
from datetime import date, timedelta
from decimal import Decimal
from pathlib import Path

import duckdb
import pandas as pd
import pytest

from dashboards import excel, ui
from tests.dashboard_helpers import messages, run_page


def rows(warehouse: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


def scalar(warehouse: Path, sql: str, *params):
    return rows(warehouse, sql, *params)[0][0]


def add_months(month: date, months: int) -> date:
    index = month.year * 12 + month.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)


def month_end(month: date) -> date:
    return add_months(month, 1) - timedelta(days=1)


def default_month(warehouse: Path) -> date:
    as_of = scalar(warehouse, "select as_of_date from intermediate.int_as_of")
    return add_months(as_of.replace(day=1), -1)


def tiles(at) -> dict[str, tuple[str, str]]:
    """Each tile's label -> (value, the text under it: a change or a note)."""
    return {metric.label: (metric.value, metric.delta) for metric in at.metric}


def three_months(at) -> None:
    at.segmented_control(key="filter_period_kind").set_value("3 months")


@pytest.fixture(scope="module")
def warehouse(tiny_firm) -> Path:
    return tiny_firm.warehouse


# --- 1. realisation: the headline on billed time ------------------------------------------------


def billed_time_realisation(warehouse: Path, start: date, end: date) -> tuple[float | None, float | None]:
    """(realisation on billed time, standard value of the billed hours) from rpt_realization."""
    rate, billed_standard = rows(
        warehouse,
        "select sum(billed_rated_time_amount_reporting) / nullif(sum(billed_standard_value_reporting), 0),"
        " sum(billed_standard_value_reporting) from marts.rpt_realization"
        " where month_start_date between ? and ?",
        start,
        end,
    )[0]
    return rate, billed_standard


def test_realisation_headline_is_on_billed_time(warehouse):
    at = run_page(warehouse, "revenue_margin", setup=three_months)
    assert not at.exception and not at.error
    end = default_month(warehouse)
    start = add_months(end, -2)
    rate, billed_standard = billed_time_realisation(warehouse, start, end)
    by_month_worked = scalar(
        warehouse,
        "select sum(billed_amount_reporting) / sum(standard_value_reporting) from marts.rpt_realization"
        " where month_start_date between ? and ?",
        start,
        end,
    )
    assert billed_standard and billed_standard > 0, "the tiny world invoices time within three months"
    value, _note = tiles(at)["Realisation (billed time)"]
    assert value == ui.percent(rate)
    # the two views differ in this world (unbilled hours of the last month), so the test can tell
    assert ui.percent(rate) != ui.percent(by_month_worked)
    text = messages(at)
    assert "look low until their invoices are issued" in text  # the by-month-worked view explained


def test_realisation_of_a_month_not_invoiced_yet_says_so(warehouse):
    at = run_page(warehouse, "revenue_margin")
    month = default_month(warehouse)
    rate, billed_standard = billed_time_realisation(warehouse, month, month_end(month))
    value, note = tiles(at)["Realisation (billed time)"]
    if billed_standard:
        assert value == ui.percent(rate)
    else:
        assert (value, note) == ("—", "no hours invoiced yet")


# --- 2. comparisons only with a period the data covers -------------------------------------------


def first_month(warehouse: Path, sql: str) -> date:
    first = scalar(warehouse, sql)
    return first.replace(day=1)


def test_a_previous_period_before_the_history_is_not_compared(warehouse):
    end = default_month(warehouse)
    previous_start = add_months(end, -5)
    starts = {
        "rpt_utilization": first_month(warehouse, "select min(month_start_date) from marts.rpt_utilization"),
        "rpt_revenue": first_month(
            warehouse,
            "select min(month_start_date) from marts.rpt_revenue"
            " where recognized_amount_reporting <> 0 or billed_amount_reporting <> 0",
        ),
        "rpt_realization": first_month(warehouse, "select min(month_start_date) from marts.rpt_realization"),
        "rpt_time_to_invoice": first_month(
            warehouse, "select min(invoice_date) from marts.rpt_time_to_invoice"
        ),
        "rpt_dso": first_month(warehouse, "select min(month_start_date) from marts.rpt_dso"),
        "rpt_wip": first_month(warehouse, "select min(as_of_date) from marts.rpt_wip where is_month_end"),
    }
    # the tiny world's history is shorter than 3 months + the 3 before them
    assert all(first > previous_start for first in starts.values()), starts

    def note(mart: str) -> str:
        return f"no comparison: history starts {starts[mart]:%b %Y}"

    expected = {
        "overview": {
            "Billable utilisation": note("rpt_utilization"),
            "WIP (unbilled)": note("rpt_wip"),
            "Median time to invoice": note("rpt_time_to_invoice"),
            "DSO": note("rpt_dso"),
            "Recognised revenue": note("rpt_revenue"),
            "Gross margin": note("rpt_revenue"),
        },
        "utilisation": {
            label: note("rpt_utilization")
            for label in (
                "Billable utilisation",
                "Target",
                "Productive utilisation",
                "Submission compliance",
                "Missing time",
            )
        },
        "revenue_margin": {
            "Recognised revenue": note("rpt_revenue"),
            "Billed": note("rpt_revenue"),
            "Gross margin %": note("rpt_revenue"),
            f"Unbilled receivable at {month_end(end):%d %b %Y}": note("rpt_revenue"),
            "Realisation (billed time)": note("rpt_realization"),
        },
    }
    for page, notes in expected.items():
        at = run_page(warehouse, page, setup=three_months)
        assert not at.exception and not at.error, page
        shown = tiles(at)
        for label, text in notes.items():
            assert shown[label][1] == text, (page, label, shown[label])


def test_a_covered_previous_period_is_still_compared(warehouse):
    """One month: the month before is inside the history, so the tiles show the change from SQL."""
    month = default_month(warehouse)
    previous = add_months(month, -1)
    assert previous >= scalar(warehouse, "select min(month_start_date) from marts.rpt_utilization")
    now, before = (
        scalar(
            warehouse,
            "select sum(billable_hours) / sum(capacity_hours) from marts.rpt_utilization"
            " where month_start_date = ?",
            day,
        )
        for day in (month, previous)
    )
    at = run_page(warehouse, "overview")
    value, delta = tiles(at)["Billable utilisation"]
    assert value == ui.percent(now)
    assert delta == f"{(float(now) - float(before)) * 100:+.1f} pts"


# --- 3. the bridge from WIP to unbilled receivable ------------------------------------------------


def test_wip_bridges_to_unbilled_receivable_exactly(warehouse):
    at = run_page(warehouse, "wip_billing")
    assert not at.exception and not at.error
    day = month_end(default_month(warehouse))
    wip = float(
        scalar(warehouse, "select sum(wip_amount_reporting) from marts.rpt_wip where as_of_date = ?", day)
    )
    unbilled = float(
        scalar(
            warehouse,
            "select sum(unbilled_receivable_amount_reporting) from marts.rpt_revenue"
            " where month_start_date = ?",
            day.replace(day=1),
        )
    )
    by_progress = float(
        scalar(
            warehouse,
            "select coalesce(sum(unbilled_receivable_amount_reporting), 0) from marts.rpt_revenue"
            " where month_start_date = ? and unbilled_receivable_amount_reporting <> 0"
            " and billing_method in ('fixed_fee_percent_complete', 'retainer')",
            day.replace(day=1),
        )
    )
    assert wip > 0 and unbilled > 0 and abs(unbilled - wip) > 1  # there is something to bridge
    bridge = next(frame.value for frame in at.dataframe if "step" in frame.value.columns)
    amounts = dict(zip(bridge["step"], bridge["amount (USD)"], strict=True))
    assert abs(amounts["WIP"] - wip) < 1e-6
    assert abs(amounts["Unbilled receivable"] - unbilled) < 1e-6
    steps = bridge["amount (USD)"].iloc[1:-1]
    assert abs(float(steps.sum()) - (unbilled - wip)) < 1e-6  # the parts add up to the difference
    # revenue by progress is unbilled receivable WIP has no items for (WIP on those contracts is 0)
    assert abs(amounts["plus revenue by progress or by month not yet billed"] - by_progress) < 1e-6


# --- 4. the heatmap ranks people by variance to their own target ----------------------------------


def test_heatmap_ranks_people_by_variance_to_target(warehouse):
    at = run_page(warehouse, "utilisation")
    month = default_month(warehouse)
    ranked = rows(
        warehouse,
        "select coalesce(min(employee_name), employee_id),"
        " (sum(billable_hours) - sum(target_billable_hours)) / sum(capacity_hours) as variance,"
        " sum(billable_hours) / sum(capacity_hours) as utilisation"
        " from marts.rpt_utilization where month_start_date = ? group by employee_id"
        " having sum(capacity_hours) > 0 order by variance, employee_id",
        month,
    )
    heatmap = next(
        json.loads(chart.proto.spec)["data"][0]
        for chart in at.get("plotly_chart")
        if json.loads(chart.proto.spec)["data"][0].get("type") == "heatmap"
    )
    shown = [label.rsplit(" (", 1)[0] for label in heatmap["y"]]
    assert shown == [name for name, _variance, _utilisation in ranked][: len(shown)]
    assert heatmap["y"][0].endswith(f"({ui.points(ranked[0][1])})")
    # ranking by utilisation would give another order in this world (targets differ by grade)
    assert shown != [name for name, *_ in sorted(ranked, key=lambda row: row[2])][: len(shown)]


# --- 5 and 6. receivables by client, the overdue invoices, neutral entity colours -----------------


def test_receivables_by_client_and_the_overdue_invoices(warehouse):
    at = run_page(warehouse, "revenue_margin")
    assert not at.exception and not at.error
    frames = [frame.value for frame in at.dataframe]
    by_client = next(frame for frame in frames if "overdue_amount_reporting" in frame.columns)
    overdue = next(frame for frame in frames if "doc_number" in frame.columns)
    now_total = scalar(
        warehouse,
        "select sum(open_amount_reporting) from marts.rpt_ar_aging"
        " where as_of_date = (select max(as_of_date) from marts.rpt_ar_aging)",
    )
    assert abs(float(by_client["open_amount_reporting"].sum()) - float(now_total)) < 1e-6
    expected = rows(
        warehouse,
        "select doc_number, balance_reporting from marts.fct_invoices where is_overdue and balance <> 0"
        " order by days_overdue desc, balance_reporting desc, doc_number",
    )
    assert expected, "the tiny world has an overdue invoice"
    assert list(overdue["doc_number"]) == [doc for doc, _ in expected]
    per_client = dict(
        rows(
            warehouse,
            "select clients.client_name, sum(invoices.balance_reporting) from marts.fct_invoices as invoices"
            " left join marts.dim_clients as clients on clients.client_id = invoices.client_id"
            " where invoices.is_overdue and invoices.balance <> 0 group by 1",
        )
    )
    shown = by_client.set_index("client_name")["overdue_amount_reporting"]
    for client, amount in per_client.items():
        assert abs(float(shown[client]) - float(amount)) < 1e-6
    # the entities' colours in the aging chart carry no verdict: none is red or green
    aging = next(
        json.loads(chart.proto.spec)
        for chart in at.get("plotly_chart")
        if "Open receivables" in json.loads(chart.proto.spec)["layout"]["title"]["text"]
    )
    colours = {trace["marker"]["color"] for trace in aging["data"]}
    assert colours and colours <= set(ui.CATEGORICAL)


def test_tables_show_names_and_readable_headers():
    frame = pd.DataFrame(
        {
            "client_id": ["c1"],
            "client_name": ["Northwind"],
            "recognized_amount_reporting": [1234567.891],
            "billable_hours": [12.25],
            "gross_margin_pct": [0.5],
            "open_invoices": [3],
        }
    )
    formats = ui.column_formats(frame, percent=ui.RATIO_COLUMNS, currency="EUR")
    assert formats["client_id"] is None  # the name beside it is shown instead
    assert formats["client_name"] == "client"
    money = formats["recognized_amount_reporting"]
    assert money["label"] == "recognized (EUR)" and money["type_config"]["format"] == ui.MONEY_FORMAT
    assert formats["billable_hours"]["type_config"]["format"] == ui.HOURS_FORMAT
    assert formats["gross_margin_pct"]["type_config"]["format"] == "percent"
    assert formats["open_invoices"]["type_config"]["format"] == ui.COUNT_FORMAT
    assert ui.wrap("plus revenue by progress or by month not yet billed", 22).count("<br>") >= 2


# --- 7. Excel beside every CSV ---------------------------------------------------------------------


def test_excel_workbook_keeps_numbers_and_dates():
    frame = pd.DataFrame(
        {
            "client": ["Northwind & Co <UK>", None],
            "amount": [Decimal("1234.56"), Decimal("-7.5")],
            "hours": [1.25, float("nan")],
            "entries": pd.array([3, None], dtype="Int64"),
            "invoiced": [date(2026, 9, 30), date(2026, 10, 1)],
            "loaded_at": pd.to_datetime(["2026-10-01 08:30:00", "2026-10-02 00:00:00"]),
            "is_overdue": [True, False],
        }
    )
    second = pd.DataFrame({"step": ["WIP"], "amount": [311930.768672]})
    data = excel.workbook({"Receivables: by client": frame, "Bridge": second})
    # the parts Excel needs, the numbers stored as numbers (no string type on them)
    with zipfile.ZipFile(io.BytesIO(data)) as archive:
        sheet = archive.read("xl/worksheets/sheet1.xml").decode()
        workbook_xml = archive.read("xl/workbook.xml").decode()
    assert 'name="Receivables  by client"' in workbook_xml and 'name="Bridge"' in workbook_xml
    assert '<c r="B2"><v>1234.56</v></c>' in sheet and '<c r="D2"><v>3</v></c>' in sheet
    assert '<c r="C3">' not in sheet  # NaN stays an empty cell, not 0 or "nan"
    pytest.importorskip("openpyxl")  # pandas reads .xlsx through openpyxl (pyproject's dev extras)
    sheets = pd.read_excel(io.BytesIO(data), sheet_name=None)
    assert list(sheets) == ["Receivables  by client", "Bridge"]
    back = sheets["Receivables  by client"]
    assert back["client"].iloc[0] == "Northwind & Co <UK>"
    assert pd.api.types.is_float_dtype(back["amount"]) and back["amount"].tolist() == [1234.56, -7.5]
    assert back["hours"].iloc[0] == 1.25 and pd.isna(back["hours"].iloc[1])
    assert pd.api.types.is_datetime64_any_dtype(back["invoiced"])
    assert back["invoiced"].iloc[0] == pd.Timestamp("2026-09-30")
    assert back["loaded_at"].iloc[0] == pd.Timestamp("2026-10-01 08:30:00")
    assert back["is_overdue"].tolist() == [True, False]
    assert sheets["Bridge"]["amount"].iloc[0] == 311930.768672


def test_every_csv_download_has_an_excel_one_beside_it(warehouse):
    for page in ("wip_billing", "revenue_margin", "utilisation"):
        at = run_page(warehouse, page)
        labels = [button.proto.label for button in at.get("download_button")]
        csv = [label for label in labels if "CSV" in label]
        assert csv, page
        assert any(label.startswith("Excel") for label in labels), (page, labels)
