"""dashboards.queries without a warehouse: filter SQL, the allow-lists, the comparison period."""

from __future__ import annotations

from datetime import date

import pytest

from dashboards.queries import exceptions, revenue_margin, utilisation
from dashboards.queries.connection import tables
from dashboards.queries.filters import Filters, ignored_filters, where


def test_filters_become_placeholders_never_sql_text():
    filters = Filters(
        date(2026, 7, 1),
        date(2026, 9, 30),
        legal_entities=("UK", "US"),
        clients=("x'); drop table marts.fct_exceptions; --",),
    )
    clause, params = where(
        filters, {"legal_entity": "legal_entity", "client": "client_id"}, date_column="day"
    )
    assert clause == "true and day between ? and ? and legal_entity in (?, ?) and client_id in (?)"
    assert params == [
        date(2026, 7, 1),
        date(2026, 9, 30),
        "UK",
        "US",
        "x'); drop table marts.fct_exceptions; --",
    ]
    assert "drop" not in clause


def test_unknown_dimension_sort_or_group_is_refused_before_any_sql():
    filters = Filters(date(2026, 9, 1), date(2026, 9, 30))
    with pytest.raises(ValueError, match="unknown filter dimension"):
        where(filters, {"salary": "salary"})
    with pytest.raises(ValueError, match="unknown sort"):
        exceptions.exception_queue(filters, sort="rule_code; drop table x")
    with pytest.raises(ValueError, match="cannot group utilisation"):
        utilisation.utilisation_by(filters, "hourly_cost")
    with pytest.raises(ValueError, match="cannot group revenue"):
        revenue_margin.revenue_by(filters, "cost_rate")


@pytest.mark.parametrize(
    ("start", "end", "year_on_year", "previous"),
    [
        (date(2026, 9, 1), date(2026, 9, 30), False, (date(2026, 8, 1), date(2026, 8, 31))),
        (date(2026, 7, 1), date(2026, 9, 30), False, (date(2026, 4, 1), date(2026, 6, 30))),
        (date(2025, 10, 1), date(2026, 9, 30), False, (date(2024, 10, 1), date(2025, 9, 30))),
        (date(2026, 1, 1), date(2026, 9, 30), True, (date(2025, 1, 1), date(2025, 9, 30))),
        (date(2024, 1, 1), date(2024, 2, 29), True, (date(2023, 1, 1), date(2023, 2, 28))),
    ],
)
def test_the_comparison_period(start, end, year_on_year, previous):
    filters = Filters(start, end, practices=("Strategy",), year_on_year=year_on_year)
    before = filters.previous()
    assert (before.start, before.end) == previous
    assert before.practices == ("Strategy",)


def test_filters_a_relation_cannot_apply_are_named():
    filters = Filters(date(2026, 9, 1), date(2026, 9, 30), regions=("DACH",), clients=("001",))
    assert ignored_filters(filters, {"legal_entity", "practice", "client"}) == ["region"]


def test_a_query_names_only_the_relations_it_declared():
    """`read` checks the relations a query declared; naming another one fails before any SQL."""
    t = tables("rpt_wip", "dim_clients")
    assert (t.rpt_wip, t.dim_clients) == ("marts.rpt_wip", "marts.dim_clients")
    with pytest.raises(AttributeError, match="not declared"):
        _ = t.fct_exceptions
    with pytest.raises(ValueError, match="unknown relation"):
        tables("dim_employees; drop table marts.rpt_wip")
