"""The global filters (period, dimensions, display currency), their WHERE fragments, the month
arithmetic, and the choices the sidebar offers (periods, dimension values, currencies).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from datetime import date, timedelta
from typing import Any

import pandas as pd

from dashboards.queries.connection import available, read, tables


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
    clauses: list[str] = ["true"]
    params: list[Any] = []
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


# --- filter choices, currency --------------------------------------------------------


def as_of_date() -> date | None:
    """The warehouse's now (int_as_of): the day the build considers today."""
    t = tables("as_of")
    if not available("as_of"):
        return None
    frame = read(f"select as_of_date from {t.as_of}", tables=t)
    return None if frame.empty else pd.Timestamp(frame.iloc[0, 0]).date()


def data_months() -> tuple[date, date] | None:
    """First and last month with recorded time (the period choices)."""
    t = tables("fct_time_entries")
    if not available("fct_time_entries"):
        return None
    frame = read(
        f"select min(spent_date) as first_day, max(spent_date) as last_day from {t.fct_time_entries}",
        tables=t,
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
        t = tables("dim_legal_entities")
        choices["legal_entity"] = read(
            f"select legal_entity from {t.dim_legal_entities} order by 1", tables=t
        )["legal_entity"].tolist()
    if available("dim_employees"):
        t = tables("dim_employees")
        people = read(
            f"select distinct practice, region from {t.dim_employees}"
            " where practice is not null and region is not null",
            tables=t,
        )
        choices["practice"] = sorted(people["practice"].unique().tolist())
        choices["region"] = sorted(people["region"].unique().tolist())
    if available("dim_clients"):
        t = tables("dim_clients")
        clients = read(
            f"select client_id, client_name from {t.dim_clients} where not is_internal order by client_name",
            tables=t,
        )
        choices["client"] = list(clients.itertuples(index=False, name=None))
    return choices


def reporting_currency() -> str:
    """The warehouse's reporting currency: the one whose rate to reporting is always exactly 1."""
    t = tables("fx_rates")
    if not available("fx_rates"):
        return "USD"
    frame = read(
        f"select currency_code from {t.fx_rates} group by 1"
        " having min(rate_to_reporting) = 1 and max(rate_to_reporting) = 1 order by 1 limit 1",
        tables=t,
    )
    return "USD" if frame.empty else str(frame.iloc[0, 0])


def currencies() -> list[str]:
    t = tables("fx_rates")
    reporting = reporting_currency()
    if not available("fx_rates"):
        return [reporting]
    others = read(
        f"select distinct currency_code from {t.fx_rates} where currency_code <> ? order by 1",
        [reporting],
        tables=t,
    )["currency_code"].tolist()
    return [reporting, *others]


def currency_factor(currency: str, on: date) -> float:
    """Units of `currency` per unit of the reporting currency on a day (the ERP's rate).

    The marts carry amounts in the reporting currency, converted at each transaction's date;
    showing them in another currency translates those totals at one rate, the ERP's rate on
    the period's last day (docs/dashboards.md).
    """
    t = tables("fx_rates")
    if currency == reporting_currency():
        return 1.0
    frame = read(
        f"select rate_to_reporting from {t.fx_rates} where currency_code = ? and rate_date <= ?"
        " order by rate_date desc nulls last limit 1",
        [currency, on],
        tables=t,
    )
    if frame.empty or not frame.iloc[0, 0]:
        raise ValueError(f"no ERP rate for {currency} on or before {on}")
    return 1.0 / float(frame.iloc[0, 0])
