"""How far back each mart's history goes, so a comparison never reaches before it.

A previous period the data does not cover would compare a full period with a part of one (or
with nothing) and show a huge swing that is only the history's start. A tile compares only
when its mart covers the whole previous period (a flow) or its last day (a balance); otherwise
it says where the history starts.
"""

from __future__ import annotations

from datetime import date

import pandas as pd

from dashboards.queries.connection import read, tables
from dashboards.queries.filters import Filters, month_start

# The mart -> the column dating its rows and the rows that count as history (allow-listed: only
# these names are put into SQL). rpt_revenue has a row for every month of a contract's term,
# also months before any time or invoice was loaded, so its history starts with the first month
# that recognised or billed anything; rpt_wip's balances start at its first month end.
HISTORY: dict[str, tuple[str, str]] = {
    "rpt_utilization": ("month_start_date", "true"),
    "rpt_revenue": (
        "month_start_date",
        "(recognized_amount_reporting <> 0 or billed_amount_reporting <> 0)",
    ),
    "rpt_realization": ("month_start_date", "true"),
    "rpt_time_to_invoice": ("invoice_date", "true"),
    "rpt_dso": ("month_start_date", "true"),
    "rpt_wip": ("as_of_date", "is_month_end"),
}


def history_start(mart: str) -> date | None:
    """The first day (a month start; for rpt_wip its first month end) the mart has history for,
    over the whole firm (a client or entity that starts later is growth, not missing data)."""
    if mart not in HISTORY:
        raise ValueError(f"no history rule for {mart!r}; known: {sorted(HISTORY)}")
    column, condition = HISTORY[mart]
    t = tables(mart)
    relation = getattr(t, mart)
    frame = read(f"select min({column}) as first_day from {relation} where {condition}", tables=t)
    value = frame.iloc[0, 0] if not frame.empty else None
    if value is None or pd.isna(value):
        return None
    first = pd.Timestamp(value).date()
    return first if mart == "rpt_wip" else month_start(first)


def missing_comparison(filters: Filters, mart: str, *, balance: bool = False) -> str | None:
    """None when the mart covers the previous period (for a balance: its last day), else the
    note a tile shows instead of a change: "no comparison: history starts Jul 2026"."""
    first = history_start(mart)
    if first is None:
        return "no comparison: no history yet"
    previous = filters.previous()
    needed = previous.end if balance else previous.start
    if mart != "rpt_wip" and balance:
        needed = month_start(previous.end)
    if needed >= first:
        return None
    return f"no comparison: history starts {first:%b %Y}"
