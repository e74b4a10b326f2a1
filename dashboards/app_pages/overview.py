"""Overview: the KPI tiles for the period, each against the previous period with a sparkline."""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import pandas as pd
import streamlit as st

from dashboards import ui
from dashboards.queries import overview as q
from dashboards.queries.connection import current_access, finite
from dashboards.queries.coverage import missing_comparison
from dashboards.queries.filters import Filters, add_months, currency_factor, month_start

filters = ui.page(
    "Overview",
    "The firm's vital signs for the chosen period, each compared with the period before it; "
    "the small charts show the last 12 months. Open a number's rows under 'Trace a number'.",
)

SPARK_MONTHS = 12


def spark_window(filters: Filters) -> tuple:
    end_month = month_start(filters.end)
    return add_months(end_month, -(SPARK_MONTHS - 1)), end_month


def series_window(filters: Filters) -> tuple:
    """Months covering the sparkline and both periods: one monthly query feeds a whole tile."""
    spark_start, end_month = spark_window(filters)
    return min(spark_start, filters.previous().start), end_month


def months_between(frame: pd.DataFrame, start, end) -> pd.DataFrame:
    months = pd.to_datetime(frame["month_start_date"])
    return frame[(months >= pd.Timestamp(start)) & (months <= pd.Timestamp(end))]


def utilisation_tile(filters: Filters) -> None:
    # rates over a period are the semantic layer's ratios of the period's sums, in SQL (never
    # re-computed here from monthly rows)
    now = q.utilisation_total(filters).iloc[0]
    note = missing_comparison(filters, "rpt_utilization")
    before = None if note else q.utilisation_total(filters.previous()).iloc[0]["billable_utilization"]
    spark = q.utilisation_monthly(filters, *spark_window(filters))["billable_utilization"].tolist()
    target = finite(now["target_billable_utilization"])
    ui.tile(
        "Billable utilisation",
        now["billable_utilization"],
        before,
        ui.percent,
        spark=spark,
        delta_kind="points",
        no_comparison=note,
        help="Billable hours / capacity hours (rpt_utilization)."
        + (f" Target {ui.percent(target)}." if target is not None else ""),
    )


def wip_tile(filters: Filters) -> None:
    factor = currency_factor(filters.currency, filters.end)
    now_date = q.nearest_wip_date(filters.end)
    before_date = q.nearest_wip_date(filters.previous().end)

    def total(day) -> float | None:
        if day is None:
            return None
        frame = q.wip_by(filters, day)
        return float(frame["wip_amount_reporting"].fillna(0).sum()) * factor

    start, _end = spark_window(filters)
    spark = q.wip_month_ends(filters, start, filters.end)["wip_amount_reporting"] * factor
    note = missing_comparison(filters, "rpt_wip", balance=True)
    ui.tile(
        "WIP (unbilled)",
        total(now_date),
        None if note else total(before_date),
        lambda value: ui.money(value, filters.currency),
        spark=spark.tolist(),
        higher_is_better=False,
        no_comparison=note,
        help=f"Approved, unbilled time, expenses and completed milestones as of {now_date} (rpt_wip).",
    )


def time_to_invoice_tile(filters: Filters) -> None:
    now = q.time_to_invoice_period(filters).iloc[0]
    note = missing_comparison(filters, "rpt_time_to_invoice")
    before = None if note else q.time_to_invoice_period(filters.previous()).iloc[0]["median_days"]
    start, _end = spark_window(filters)
    spark = q.time_to_invoice_summary(filters, start, filters.end)["median_days"].tolist()
    ui.tile(
        "Median time to invoice",
        now["median_days"],
        before,
        ui.days,
        spark=spark,
        delta_kind="days",
        no_comparison=note,
        higher_is_better=False,
        help="Median days from the day worked to the invoice date, over the time entries invoiced "
        "in the period (rpt_time_to_invoice).",
    )


def exceptions_tile(filters: Filters) -> None:
    current = q.open_exception_count(filters)
    spark, before = None, None
    if not (filters.legal_entities or filters.clients):  # the history has no entity or client
        start, _ = spark_window(filters)
        history = q.open_exceptions_at_month_ends(start, filters.end)
        spark = history["open_exceptions"].tolist()
        previous = history[history["month_end"] == pd.Timestamp(filters.previous().end)]
        before = previous["open_exceptions"].iloc[0] if not previous.empty else None
    ui.tile(
        "Open exceptions",
        current,
        before,
        ui.count,
        spark=spark,
        delta_kind="count",
        higher_is_better=False,
        help="Exceptions open now in the queue (fct_exceptions), against those open at the previous "
        "period's end (exception_history, since the first build); see the Exceptions page.",
    )


def tiles(filters: Filters) -> None:
    row: list[tuple[str, Callable[[Filters], None]]] = [
        ("Billable utilisation", utilisation_tile),
        ("WIP", wip_tile),
        ("Median time to invoice", time_to_invoice_tile),
        ("DSO", dso_tile),
        ("Recognised revenue", revenue_tile),
        ("Gross margin", margin_tile),
        ("Open exceptions", exceptions_tile),
    ]
    access = current_access()  # tiles the role may not see are not drawn (dashboards/queries/access.py)
    hidden = set() if access.sees_cost_rates else {"Gross margin"}  # margin % over withheld months
    if access.practices:
        hidden.add("DSO")  # receivables are by legal entity: no practice to limit them by
    row = [(label, render) for label, render in row if label not in hidden]
    first, second = st.columns(4), st.columns(4)
    for column, (label, render) in zip([*first, *second], row, strict=False):
        with column:
            ui.guarded(partial(render, filters), label, compact=True)


def dso_tile(filters: Filters) -> None:
    frame = q.dso_months(filters, add_months(month_start(filters.end), -(SPARK_MONTHS - 1)), filters.end)
    now = frame[frame["month_start_date"] == pd.Timestamp(month_start(filters.end))]
    before = frame[frame["month_start_date"] == pd.Timestamp(month_start(filters.previous().end))]
    note = missing_comparison(filters, "rpt_dso", balance=True)
    ui.tile(
        "DSO",
        now["dso_days"].iloc[0] if not now.empty else None,
        before["dso_days"].iloc[0] if not (before.empty or note) else None,
        ui.days,
        spark=frame["dso_days"].tolist(),
        delta_kind="days",
        no_comparison=note,
        higher_is_better=False,
        help="Days sales outstanding at the period's last month end: open receivables / revenue "
        "of the last 90 days x 90 (rpt_dso).",
    )


def revenue_months(filters: Filters) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(the period's months, the previous period's, the sparkline's) from one monthly query."""
    start, end = series_window(filters)
    monthly = q.revenue_monthly(filters, start, end)
    return (
        months_between(monthly, filters.start, filters.end),
        months_between(monthly, filters.previous().start, filters.previous().end),
        months_between(monthly, spark_window(filters)[0], end),
    )


def revenue_tile(filters: Filters) -> None:
    factor = currency_factor(filters.currency, filters.end)
    now, before, spark = revenue_months(filters)
    note = missing_comparison(filters, "rpt_revenue")
    ui.tile(
        "Recognised revenue",
        float(now["recognized_revenue_reporting"].fillna(0).sum()) * factor if not now.empty else None,
        float(before["recognized_revenue_reporting"].fillna(0).sum()) * factor
        if not (before.empty or note)
        else None,
        lambda value: ui.money(value, filters.currency),
        spark=(spark["recognized_revenue_reporting"] * factor).tolist(),
        no_comparison=note,
        help="Revenue recognised in the period by each contract's method (rpt_revenue).",
    )


def margin_tile(filters: Filters) -> None:
    _now, _before, spark = revenue_months(filters)
    note = missing_comparison(filters, "rpt_revenue")
    ui.tile(
        "Gross margin",
        q.revenue_total(filters).iloc[0]["gross_margin_pct"],
        None if note else q.revenue_total(filters.previous()).iloc[0]["gross_margin_pct"],
        ui.percent,
        spark=spark["gross_margin_pct"].tolist(),
        delta_kind="points",
        no_comparison=note,
        help="(Recognised revenue - cost) / recognised revenue, for the contracts in scope (rpt_revenue).",
    )


TRACES = {
    "Billable utilisation (person x month)": lambda f: q.utilisation_rows(f),
    "Median time to invoice (invoiced time entries)": lambda f: q.time_to_invoice_rows(f),
    "WIP (project x aging bucket)": lambda f: q.wip_by(f, q.nearest_wip_date(f.end)),
    "Recognised revenue and margin (contract x month)": lambda f: q.revenue_rows(f),
    "DSO (legal entity x month)": lambda f: q.dso_months(f, f.start, f.end),
}


def trace(filters: Filters) -> None:
    traces = [name for name in TRACES if not (name.startswith("DSO") and current_access().practices)]
    with st.container(border=True):
        choice = st.selectbox(
            "Trace a number: the rows behind a tile",
            traces,
            index=None,
            placeholder="Choose a figure to see the mart rows behind it",
            key="overview_trace",
        )
        if choice is None:
            return

        def render() -> None:
            rows = TRACES[choice](filters)
            st.caption(f"{len(rows):,} rows, straight from the mart, with the same filters as the tiles.")
            st.dataframe(
                rows, hide_index=True, column_config=ui.column_formats(rows, percent=ui.RATIO_COLUMNS)
            )
            ui.download(rows, "Download these rows (CSV)", "billable-trace.csv", key="overview_trace_csv")

        ui.guarded(render, choice)


# Which global filters each tile can apply (the marts' attributes); the rest are named under the tiles.
TILE_FILTERS = {
    "Billable utilisation": {"legal_entity", "practice", "region"},
    "WIP": {"legal_entity", "practice", "client"},
    "Median time to invoice": {"legal_entity", "practice", "client"},
    "DSO": {"legal_entity"},
    "Recognised revenue and gross margin": {"legal_entity", "practice", "client"},
    "Open exceptions": {"legal_entity", "practice", "client"},
}


def unapplied(filters: Filters) -> None:
    chosen = {
        "legal_entity": ("legal entity", filters.legal_entities),
        "practice": ("practice", filters.practices),
        "region": ("region", filters.regions),
        "client": ("client", filters.clients),
    }
    notes = []
    for tile, applies in TILE_FILTERS.items():
        if tile == "DSO" and current_access().practices:
            continue  # not drawn for a role limited to practices
        skipped = [label for key, (label, values) in chosen.items() if values and key not in applies]
        if skipped:
            notes.append(f"{tile} (not by {', '.join(skipped)})")
    if notes:
        st.caption(
            "Filters a tile cannot apply, as its data has no such attribute: " + "; ".join(notes) + "."
        )


if filters is not None:
    tiles(filters)
    unapplied(filters)
    trace(filters)
