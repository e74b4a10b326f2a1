"""The dashboard's ratios come from the semantic layer's one definition.

- The figures the dashboard shows for a filter (utilisation, gross margin %, realisation, DSO)
  equal what MetricFlow (`billable.metrics.SemanticLayer`, the path of `make metrics`) answers for
  the same metric, grain and filter on the same warehouse.
- The SQL is built from the semantic manifest stored in the build (`ops.semantic_manifest`):
  it carries the manifest's measure expressions, a page follows a changed definition, and a
  metric the build does not define is one clear message, not a traceback or a re-typed formula.
"""

from __future__ import annotations

import json
import shutil
from datetime import date, datetime, timedelta
from pathlib import Path

import duckdb
import pytest

from billable.metrics import SemanticLayer
from dashboards import ui
from dashboards.queries import revenue_margin, semantic, utilisation
from dashboards.queries.filters import Filters, add_months, month_end
from tests.dashboard_helpers import metrics, run_page

ENTITY = "US"


@pytest.fixture(scope="module")
def warehouse(tiny_firm) -> Path:
    return tiny_firm.warehouse


@pytest.fixture
def reads(warehouse: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The query modules read this warehouse (outside a page run: a one-off connection per read)."""
    monkeypatch.setenv("BILLABLE_WAREHOUSE", str(warehouse))
    return warehouse


def stored_manifest(warehouse: Path) -> dict:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        text = connection.execute(
            "select manifest from ops.semantic_manifest order by stored_at desc limit 1"
        ).fetchone()[0]
    return json.loads(text)


def with_manifest(source: Path, target: Path, manifest: dict) -> Path:
    """A copy of the warehouse whose stored semantic manifest is `manifest`."""
    shutil.copyfile(source, target)
    with duckdb.connect(str(target)) as connection:
        connection.execute("update ops.semantic_manifest set manifest = ?", [json.dumps(manifest)])
    return target


def default_month(warehouse: Path) -> date:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        as_of = connection.execute("select as_of_date from intermediate.int_as_of").fetchone()[0]
    return (as_of.replace(day=1) - timedelta(days=1)).replace(day=1)


def month_key(value: object) -> date:
    if isinstance(value, datetime):
        return value.date()
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def by_month_for_entity(
    layer: SemanticLayer, metric: str, start: date, end: date
) -> dict[date, float | None]:
    """MetricFlow's answer per month for ENTITY, months start..end."""
    result = layer.query([metric], group_by=["metric_time__month", "legal_entity"])
    month_at = result.columns.index("metric_time__month")
    entity_at = result.columns.index("legal_entity")
    value_at = result.columns.index(metric)
    answer = {}
    for row in result.rows:
        month = month_key(row[month_at])
        if row[entity_at] == ENTITY and start <= month <= end:
            answer[month] = number(row[value_at])
    assert answer, f"MetricFlow has no {metric} for {ENTITY} in {start}..{end}"
    return answer


def number(value: object) -> float | None:
    """A figure as a float; None for null or NaN (pandas' null)."""
    return None if value is None or value != value else float(value)  # type: ignore[arg-type]


def dashboard_by_month(frame, column: str) -> dict[date, float | None]:
    return {
        month_key(month): number(value)
        for month, value in zip(frame["month_start_date"], frame[column], strict=True)
    }


def assert_same(dashboard: dict, layer: dict) -> None:
    """Same groups, same figures (MetricFlow divides in doubles, as the dashboard's SQL does)."""
    assert set(dashboard) == set(layer), (sorted(dashboard, key=str), sorted(layer, key=str))
    for key, expected in layer.items():
        values = (
            zip(dashboard[key], expected, strict=True)
            if isinstance(expected, tuple)
            else [(dashboard[key], expected)]
        )
        for got, wanted in values:
            if wanted is None:
                assert got is None, key
            else:
                assert got == pytest.approx(wanted, rel=1e-9, abs=1e-12), key


# --- the figures equal MetricFlow's -----------------------------------------------------------------


def test_utilisation_by_month_for_an_entity_equals_metricflow(layer, reads):
    end = default_month(reads)
    start = add_months(end, -5)
    filters = Filters(start, month_end(end), legal_entities=(ENTITY,))
    frame = utilisation.utilisation_monthly(filters, start, month_end(end))
    for metric in ("billable_utilization", "productive_utilization", "target_billable_utilization"):
        assert_same(dashboard_by_month(frame, metric), by_month_for_entity(layer, metric, start, end))


def test_gross_margin_pct_and_dso_by_month_for_an_entity_equal_metricflow(layer, reads):
    end = default_month(reads)
    start = add_months(end, -5)
    filters = Filters(start, month_end(end), legal_entities=(ENTITY,))
    revenue = revenue_margin.revenue_monthly(filters, start, month_end(end))
    assert_same(
        dashboard_by_month(revenue, "gross_margin_pct"),
        by_month_for_entity(layer, "gross_margin_pct", start, end),
    )
    dso = revenue_margin.dso_months(filters, start, month_end(end))
    assert_same(dashboard_by_month(dso, "dso_days"), by_month_for_entity(layer, "dso", start, end))


def test_realisation_over_a_quarter_by_entity_equals_metricflow(layer, reads):
    end = default_month(reads)
    start = add_months(end, -2)
    filters = Filters(start, month_end(end))
    frame = revenue_margin.realization_by(filters, "legal entity")
    shown = {
        # rows without an entity form their own group in both (pandas reads its null as NaN)
        (row.group_value if isinstance(row.group_value, str) else None): (
            number(row.realization_rate),
            number(row.effective_bill_rate_reporting),
        )
        for row in frame.itertuples(index=False)
    }
    result = layer.query(
        ["realization_rate", "effective_bill_rate"],
        group_by=["legal_entity"],
        where=[
            f"{{{{ TimeDimension('metric_time', 'month') }}}} >= '{start}'",
            f"{{{{ TimeDimension('metric_time', 'month') }}}} <= '{end}'",
        ],
    )
    entity, rate, bill_rate = (
        result.columns.index(name) for name in ("legal_entity", "realization_rate", "effective_bill_rate")
    )
    answered = {row[entity]: (number(row[rate]), number(row[bill_rate])) for row in result.rows}
    assert any(value[0] is not None for value in answered.values())
    assert_same(shown, answered)


def test_the_pages_tiles_equal_metricflow_for_the_default_month(layer, warehouse):
    """Through the pages themselves: the Utilisation and Revenue pages' ratio tiles."""
    month = default_month(warehouse)
    window = [
        f"{{{{ TimeDimension('metric_time', 'month') }}}} = '{month}'",
    ]
    answer = layer.query(["billable_utilization", "gross_margin_pct", "realization_rate"], where=window)
    values = dict(zip(answer.columns, answer.rows[0], strict=True))
    assert all(values[name] is not None for name in values)

    shown = metrics(run_page(warehouse, "utilisation"))
    assert shown["Billable utilisation"] == ui.percent(values["billable_utilization"])
    shown = metrics(run_page(warehouse, "revenue_margin"))
    assert shown["Gross margin %"] == ui.percent(values["gross_margin_pct"])
    # the realisation tile is on billed time; the month before the default one has invoiced time
    previous = (month - timedelta(days=1)).replace(day=1)
    billed = layer.query(
        ["billed_time_realization_rate"],
        where=[f"{{{{ TimeDimension('metric_time', 'month') }}}} = '{previous}'"],
    )
    assert billed.rows and billed.rows[0][-1] is not None

    def earlier(at):
        at.selectbox(key="filter_period_end").set_value(previous)

    shown = metrics(run_page(warehouse, "revenue_margin", setup=earlier))
    assert shown["Realisation (billed time)"] == ui.percent(billed.rows[0][-1])
    shown = metrics(run_page(warehouse, "overview"))
    assert shown["Billable utilisation"] == ui.percent(values["billable_utilization"])
    assert shown["Gross margin"] == ui.percent(values["gross_margin_pct"])


# --- the SQL is built from the stored manifest ----------------------------------------------------------


def measure_expr(manifest: dict, measure: str) -> str:
    for model in manifest["semantic_models"]:
        for item in model["measures"]:
            if item["name"] == measure:
                return item["expr"] or measure
    raise AssertionError(f"no measure {measure}")


def ratio_inputs(manifest: dict, metric: str) -> tuple[str, str]:
    """The measures behind a ratio metric whose numerator and denominator are simple metrics."""
    metrics_by_name = {item["name"]: item for item in manifest["metrics"]}
    params = metrics_by_name[metric]["type_params"]
    parts = []
    for side in ("numerator", "denominator"):
        child = metrics_by_name[params[side]["name"]]
        parts.append(child["type_params"]["measure"]["name"])
    return parts[0], parts[1]


@pytest.mark.parametrize(
    "metric", ["billable_utilization", "gross_margin_pct", "realization_rate", "submission_compliance"]
)
def test_ratio_sql_is_the_manifests_numerator_over_its_denominator(warehouse, metric):
    manifest = stored_manifest(warehouse)
    numerator, denominator = ratio_inputs(manifest, metric)
    top, bottom = measure_expr(manifest, numerator), measure_expr(manifest, denominator)
    assert semantic.Definitions(manifest).sql(metric) == f"sum({top}) / nullif(sum({bottom}), 0)"
    assert (
        semantic.Definitions(manifest).sql(metric, table="t") == f"sum(t.{top}) / nullif(sum(t.{bottom}), 0)"
    )


def test_derived_metrics_compose_their_inputs(warehouse):
    definitions = semantic.Definitions(stored_manifest(warehouse))
    assert definitions.sql("dso", snapshots=True) == (
        "sum(open_receivables_reporting) * 90 / nullif(sum(invoiced_90_days_reporting), 0)"
    )
    assert definitions.sql("billable_utilization_variance") == (
        "(sum(billable_hours) / nullif(sum(capacity_hours), 0))"
        " - (sum(target_billable_hours) / nullif(sum(capacity_hours), 0))"
    )
    with pytest.raises(semantic.MetricUndefined, match="semi-additive"):
        definitions.sql("dso")  # balances: only with one snapshot per group


def test_a_missing_or_uncomposable_metric_fails_clearly(warehouse):
    manifest = stored_manifest(warehouse)
    manifest["metrics"] = [item for item in manifest["metrics"] if item["name"] != "gross_margin_pct"]
    definitions = semantic.Definitions(manifest)
    with pytest.raises(semantic.MetricUndefined, match="`gross_margin_pct` is not defined"):
        definitions.sql("gross_margin_pct")
    filtered = stored_manifest(warehouse)
    for item in filtered["metrics"]:
        if item["name"] == "billable_utilization":
            item["type_params"]["numerator"]["filter"] = {"where_filters": [{"where_sql_template": "x"}]}
    with pytest.raises(semantic.MetricUndefined, match=r"billable_utilization.*filter"):
        semantic.Definitions(filtered).sql("billable_utilization")


def test_the_pages_follow_the_manifest_stored_in_the_build(warehouse, tmp_path):
    """Redefine billable utilisation in a copy's stored manifest (productive hours over capacity):
    the page shows the new definition's figure, so it re-types nothing. Drop gross_margin_pct:
    the Revenue page names the missing metric instead of the figures that need it."""
    manifest = stored_manifest(warehouse)
    for item in manifest["metrics"]:
        if item["name"] == "billable_utilization":
            item["type_params"]["numerator"]["name"] = "total_hours"
    manifest["metrics"] = [item for item in manifest["metrics"] if item["name"] != "gross_margin_pct"]
    changed = with_manifest(warehouse, tmp_path / "warehouse.duckdb", manifest)

    month = default_month(warehouse)
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        billable, total = connection.execute(
            "select sum(billable_hours) / sum(capacity_hours), sum(total_hours) / sum(capacity_hours)"
            " from marts.rpt_utilization where month_start_date = ?",
            [month],
        ).fetchone()
    assert ui.percent(total) != ui.percent(billable)
    at = run_page(changed, "utilisation")
    assert not at.exception
    assert metrics(at)["Billable utilisation"] == ui.percent(total)

    at = run_page(changed, "revenue_margin")
    assert not at.exception, [element.value for element in at.exception]
    errors = "\n".join(str(element.value) for element in at.error)
    assert "`gross_margin_pct` is not defined in this build's semantic manifest" in errors
    assert "make transform" in errors
    assert "Revenue and margin" in errors  # the section that needs it; the page goes on
