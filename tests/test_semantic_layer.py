"""The semantic layer (MetricFlow over the published warehouse) against the marts, in SQL.

For each metric and grouping below, the answer of `billable.metrics.SemanticLayer` (the path
`make metrics` takes) must equal what the marts give when the KPI is computed independently in
plain SQL, and the SQL MetricFlow generated must aggregate the intended columns (its handling of
measure `expr` has had bugs). One engine start serves the whole module; the CLI and the
re-publish tests start their own.
"""

from __future__ import annotations

import csv
import os
import re
import shutil
import subprocess
import sys
import time
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path

import duckdb
import pytest

from billable import metrics, metrics_docs
from billable.metrics import QueryResult, SemanticLayer
from tests.ingest_helpers import ROOT

REQUIRED_METRICS = {
    "billable_utilization",
    "productive_utilization",
    "billable_hours",
    "capacity_hours",
    "wip_amount",
    "median_days_to_invoice",
    "recognized_revenue",
    "gross_margin_pct",
    "realization_rate",
    "dso",
    "open_exceptions",
    "exception_median_age_days",
}


def sql_rows(warehouse: Path, sql: str) -> list[tuple]:
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        return connection.execute(sql).fetchall()


def day(value: object) -> date:
    """metric_time comes back as a timestamp; the marts key months by date."""
    return value.date() if isinstance(value, datetime) else value


def number(value: object) -> float | None:
    return None if value is None else float(value)


def keyed(rows: list[tuple], width: int) -> dict[tuple, tuple]:
    """{group key: values}, the key's dates normalised, values as floats (None kept)."""
    result = {}
    for row in rows:
        key = tuple(day(part) for part in row[:width])
        assert key not in result, f"duplicate group {key}"
        result[key] = tuple(number(value) for value in row[width:])
    return result


def answer(result: QueryResult, names: list[str]) -> dict[tuple, tuple]:
    """The layer's rows as {group key: values}, values in the order of `names` (MetricFlow may
    order the metric columns its own way); group columns are all the others, in its order."""
    assert result.rows, "the semantic layer returned no rows"
    value_index = [result.columns.index(name) for name in names]
    key_index = [index for index, column in enumerate(result.columns) if column not in names]
    ordered = [tuple(row[i] for i in key_index) + tuple(row[i] for i in value_index) for row in result.rows]
    return keyed(ordered, len(key_index))


def assert_same(layer_rows: dict, mart_rows: dict, rel: float = 1e-9, abs_: float = 1e-9) -> None:
    """Same groups, same numbers (to `rel` relative or `abs_` absolute: MetricFlow divides in
    doubles and returns floats, the marts keep exact decimals)."""
    assert set(layer_rows) == set(mart_rows), (
        f"groups only in the semantic layer: {sorted(set(layer_rows) - set(mart_rows), key=str)[:5]}; "
        f"only in the marts: {sorted(set(mart_rows) - set(layer_rows), key=str)[:5]}"
    )
    for key, expected in mart_rows.items():
        got = layer_rows[key]
        for got_value, expected_value in zip(got, expected, strict=True):
            if expected_value is None:
                assert got_value is None, f"{key}: expected nothing, got {got_value}"
            else:
                assert got_value == pytest.approx(expected_value, rel=rel, abs=abs_), (
                    f"{key}: {got} != {expected}"
                )


def aggregates(sql: str, template: str, source: str, metric: str) -> bool:
    """The generated SQL computes `metric` as `template` (e.g. "SUM({})") of the mart column or
    expression `source`: directly (`SUM(t.source) AS metric`) or through MetricFlow's measure
    column (`t.source AS __metric` in a subquery, then `SUM(t.__metric) AS metric`)."""
    sql = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    qualifier = r"(?:\w+\.)?"
    before, after = (re.escape(part) for part in template.split("{}"))
    direct = rf"{before}\(?{qualifier}{re.escape(source)}\)?{after}\s+AS\s+{metric}\b"
    if re.search(direct, sql, flags=re.IGNORECASE):
        return True
    selected = rf"{qualifier}{re.escape(source)}\s+AS\s+__{metric}\b"
    aggregated = rf"{before}\(?{qualifier}__{metric}\)?{after}\s+AS\s+{metric}\b"
    return bool(
        re.search(selected, sql, flags=re.IGNORECASE) and re.search(aggregated, sql, flags=re.IGNORECASE)
    )


def divides(sql: str, numerator: str, denominator: str) -> bool:
    """A ratio metric divides the summed numerator by the summed denominator, once, at the end."""
    qualifier = r"(?:\w+\.)?"
    top = rf"CAST\({qualifier}{numerator} AS DOUBLE\)"
    bottom = rf"CAST\(NULLIF\({qualifier}{denominator}, 0\) AS DOUBLE\)"
    return re.search(rf"{top}\s*/\s*{bottom}", sql) is not None


@pytest.fixture(scope="module")
def warehouse(tiny_firm) -> Path:
    return tiny_firm.warehouse


# --- the YAML and its documentation ----------------------------------------------------------------


def test_docs_are_generated_from_the_yaml() -> None:
    """docs/metrics.md is exactly what the semantic YAML generates (it cannot drift)."""
    expected = metrics_docs.render_docs()
    assert metrics_docs.DOCS_FILE.read_text() == expected, "run `.venv/bin/python -m billable.metrics docs`"


def test_required_metrics_exist_with_formula_denominator_and_grain() -> None:
    _, declared = metrics_docs.load_semantic_yaml()
    names = {metric["name"] for metric in declared}
    assert names >= REQUIRED_METRICS, f"missing: {sorted(REQUIRED_METRICS - names)}"
    for metric in declared:
        fields = metrics_docs.split_description(metric)  # raises when a field is missing
        assert all(fields[name] for name in ("Formula", "Denominator", "Grain")), metric["name"]
    kinds = {metric["name"]: metric["type"] for metric in declared}
    for ratio in ("billable_utilization", "productive_utilization", "gross_margin_pct", "realization_rate"):
        assert kinds[ratio] == "ratio", f"{ratio} must be a ratio of sums, not an average"


def test_the_layer_uses_the_manifest_published_with_the_build(layer: SemanticLayer, warehouse: Path) -> None:
    assert layer.manifest_source.startswith("stored in"), layer.manifest_source
    stored = sql_rows(warehouse, "select run_id from ops.semantic_manifest")
    newest_run = sql_rows(warehouse, "select max(run_id) from ops.transform_runs where status = 'passed'")
    assert stored == newest_run, "the published manifest belongs to the published build"


def test_mf_validates_every_definition_against_the_warehouse(layer: SemanticLayer) -> None:
    """mf validate-configs: semantic rules, then every dimension, entity, measure and metric
    queried on the warehouse itself."""
    assert layer.run_mf(["validate-configs"]) == 0


# --- utilisation -----------------------------------------------------------------------------------


def test_utilization_by_month_and_practice_equals_the_daily_mart(
    layer: SemanticLayer, warehouse: Path
) -> None:
    """employee__practice is the SCD2 version of the day worked, the same the mart stores."""
    names = ["billable_utilization", "productive_utilization", "billable_hours", "capacity_hours"]
    result = layer.query(names, group_by=["metric_time__month", "employee__practice"])
    expected = sql_rows(
        warehouse,
        """
        select month_start_date, practice,
               sum(billable_hours) / nullif(sum(capacity_hours), 0),
               sum(productive_hours) / nullif(sum(capacity_hours), 0),
               sum(billable_hours), sum(capacity_hours)
        from marts.fct_utilization_daily
        group by all
        """,
    )
    assert len(expected) >= 8
    assert_same(answer(result, names), keyed(expected, 2))
    for column in ("billable_hours", "capacity_hours", "productive_hours"):
        assert aggregates(result.sql, "SUM({})", column, column), f"SUM({column}) missing:\n{result.sql}"
    assert '"warehouse"."marts"."fct_utilization_daily"' in result.sql
    assert divides(result.sql, "billable_hours", "capacity_hours"), result.sql
    assert divides(result.sql, "productive_hours", "capacity_hours"), result.sql
    assert not re.search(r"avg\(", result.sql, flags=re.IGNORECASE)


def test_utilization_per_employee_month_equals_rpt_utilization(layer: SemanticLayer, warehouse: Path) -> None:
    names = ["billable_utilization", "productive_utilization", "submission_compliance", "capacity_hours"]
    result = layer.query(names, group_by=["metric_time__month", "employee"])
    expected = sql_rows(
        warehouse,
        """
        select month_start_date, employee_id, billable_utilization, productive_utilization,
               submission_compliance, capacity_hours
        from marts.rpt_utilization
        """,
    )
    # the mart leaves a ratio empty where capacity is 0 (as MetricFlow's NULLIF does) and
    # rounds it to 6 places
    assert_same(answer(result, names), keyed(expected, 2), abs_=5.1e-7)
    assert divides(result.sql, "compliant_capacity_hours", "capacity_hours"), result.sql


def test_utilization_by_quarter_and_grade_is_a_ratio_of_sums(layer: SemanticLayer, warehouse: Path) -> None:
    result = layer.query(["billable_utilization"], group_by=["metric_time__quarter", "employee__grade"])
    expected = sql_rows(
        warehouse,
        """
        select quarter_start_date, grade, sum(billable_hours) / nullif(sum(capacity_hours), 0)
        from marts.fct_utilization_daily group by all
        """,
    )
    assert_same(answer(result, ["billable_utilization"]), keyed(expected, 2))
    firm = layer.query(["billable_utilization"]).rows[0][0]
    overall = sql_rows(
        warehouse, "select sum(billable_hours) / sum(capacity_hours) from marts.fct_utilization_daily"
    )
    averaged = sql_rows(
        warehouse, "select avg(billable_utilization) from marts.rpt_utilization where capacity_hours > 0"
    )
    assert firm == pytest.approx(float(overall[0][0]), rel=1e-9)
    assert firm != pytest.approx(float(averaged[0][0]), rel=1e-6), "the firm's rate is not a mean of people's"


# --- WIP, time to invoice, realisation -------------------------------------------------------------


def test_wip_is_semi_additive_over_the_as_of_date(layer: SemanticLayer, warehouse: Path) -> None:
    """A month shows the WIP of its last as-of date (month end, or today for this month), summed
    over projects, buckets and currencies, never over dates."""
    result = layer.query(["wip_amount"], group_by=["metric_time__month", "project__practice"])
    expected = sql_rows(
        warehouse,
        """
        with last_dates as (
            select date_trunc('month', as_of_date) as month_start, max(as_of_date) as as_of_date
            from marts.rpt_wip group by 1
        )
        select last_dates.month_start, projects.practice, sum(wip.wip_amount_reporting)
        from marts.rpt_wip as wip
        inner join last_dates on wip.as_of_date = last_dates.as_of_date
        left join marts.dim_projects as projects on wip.project_id = projects.project_id
        group by all
        """,
    )
    assert len(expected) >= 3
    assert_same(answer(result, ["wip_amount"]), keyed(expected, 2))
    assert aggregates(result.sql, "SUM({})", "wip_amount_reporting", "wip_amount"), result.sql
    assert re.search(r"MAX\(DATE_TRUNC\('day', (\w+\.)?as_of_date\)\)", result.sql), result.sql
    # past months are their month-end positions
    month_ends = sql_rows(
        warehouse,
        """
        select dates.month_start_date, sum(wip.wip_amount_reporting)
        from marts.rpt_wip as wip inner join marts.dim_dates as dates on wip.as_of_date = dates.date_day
        where wip.is_month_end and wip.as_of_date < (select max(as_of_date) from marts.rpt_wip)
        group by 1
        """,
    )
    assert month_ends
    by_month = answer(layer.query(["wip_amount"], group_by=["metric_time__month"]), ["wip_amount"])
    for month, amount in month_ends:
        assert by_month[(month,)][0] == pytest.approx(float(amount), rel=1e-12)


def test_time_to_invoice_median_and_p90(layer: SemanticLayer, warehouse: Path) -> None:
    names = ["median_days_to_invoice", "p90_days_to_invoice", "invoiced_time_entries"]
    result = layer.query(names, group_by=["metric_time__month", "project__practice"])
    expected = sql_rows(
        warehouse,
        """
        select date_trunc('month', invoice_date), practice,
               percentile_cont(0.5) within group (order by days_worked_to_invoice),
               percentile_cont(0.9) within group (order by days_worked_to_invoice),
               count(*)
        from marts.rpt_time_to_invoice group by all
        """,
    )
    assert expected
    assert_same(answer(result, names), keyed(expected, 2))
    for percentile, metric in (("0.5", "median_days_to_invoice"), ("0.9", "p90_days_to_invoice")):
        template = f"PERCENTILE_CONT({percentile}) WITHIN GROUP (ORDER BY ({{}}))"
        assert aggregates(result.sql, template, "days_worked_to_invoice", metric), result.sql
    # the mart's monthly summary agrees where it has the same grain
    monthly = answer(layer.query(["median_days_to_invoice"], group_by=["metric_time__month"]), names[:1])
    summary = sql_rows(
        warehouse,
        """
        select invoice_month, percentile_cont(0.5) within group (order by days_worked_to_invoice)
        from marts.rpt_time_to_invoice group by 1
        """,
    )
    assert_same(monthly, keyed(summary, 1))


def test_realization_rate_by_quarter_and_client(layer: SemanticLayer, warehouse: Path) -> None:
    names = ["realization_rate", "billed_amount", "standard_value", "effective_bill_rate"]
    result = layer.query(names, group_by=["metric_time__quarter", "client__client_name"])
    expected = sql_rows(
        warehouse,
        """
        select date_trunc('quarter', month_start_date), clients.client_name,
               sum(billed_amount_reporting) / nullif(sum(standard_value_reporting), 0),
               sum(billed_amount_reporting), sum(standard_value_reporting),
               sum(revenue_reporting) / nullif(sum(client_hours), 0)
        from marts.rpt_realization as realization
        left join marts.dim_clients as clients on realization.client_id = clients.client_id
        group by all
        """,
    )
    assert expected
    assert_same(answer(result, names), keyed(expected, 2))
    sources = {"billed_amount": "billed_amount_reporting", "standard_value": "standard_value_reporting"}
    sources |= {"effective_rate_revenue": "revenue_reporting", "client_hours": "client_hours"}
    for metric, column in sources.items():
        assert aggregates(result.sql, "SUM({})", column, metric), f"{metric} from {column}:\n{result.sql}"
    assert divides(result.sql, "billed_amount", "standard_value"), result.sql
    assert divides(result.sql, "effective_rate_revenue", "client_hours"), result.sql


# --- revenue, margin, DSO --------------------------------------------------------------------------


def test_recognized_revenue_and_gross_margin_pct_by_billing_method(
    layer: SemanticLayer, warehouse: Path
) -> None:
    names = ["recognized_revenue", "gross_margin", "gross_margin_pct"]
    result = layer.query(names, group_by=["metric_time__month", "contract__billing_method"])
    expected = sql_rows(
        warehouse,
        """
        select revenue.month_start_date, contracts.billing_method,
               sum(recognized_amount_reporting), sum(gross_margin_amount_reporting),
               sum(gross_margin_amount_reporting) / nullif(sum(recognized_amount_reporting), 0)
        from marts.rpt_revenue as revenue
        left join marts.dim_contracts as contracts on revenue.contract_id = contracts.contract_id
        group by all
        """,
    )
    assert expected
    assert_same(answer(result, names), keyed(expected, 2))
    assert aggregates(result.sql, "SUM({})", "recognized_amount_reporting", "recognized_revenue"), result.sql
    assert aggregates(result.sql, "SUM({})", "gross_margin_amount_reporting", "gross_margin"), result.sql
    assert divides(result.sql, "gross_margin", "recognized_revenue"), result.sql


def test_dso_sums_entities_then_divides(layer: SemanticLayer, warehouse: Path) -> None:
    """By entity and month it is the mart's dso_days; for the firm it is sum / sum x 90 of the
    month's snapshot, and a quarter shows its last snapshot."""
    by_entity = layer.query(["dso"], group_by=["metric_time__month", "legal_entity"])
    mart = sql_rows(warehouse, "select month_start_date, legal_entity, dso_days from marts.rpt_dso")
    assert mart
    assert_same(answer(by_entity, ["dso"]), keyed(mart, 2), abs_=0.0051)  # the mart rounds to 2 places
    assert aggregates(by_entity.sql, "SUM({})", "open_receivables_reporting", "open_receivables"), (
        by_entity.sql
    )
    assert aggregates(by_entity.sql, "SUM({})", "invoiced_90_days_reporting", "invoiced_90_days")
    firm = layer.query(["dso"], group_by=["metric_time__quarter"])
    expected = sql_rows(
        warehouse,
        """
        with snapshots as (
            select *, date_trunc('quarter', as_of_date) as quarter_start,
                   max(as_of_date) over (partition by date_trunc('quarter', as_of_date)) as last_snapshot
            from marts.rpt_dso
        )
        select quarter_start,
               sum(open_receivables_reporting) * 90 / nullif(sum(invoiced_90_days_reporting), 0)
        from snapshots where as_of_date = last_snapshot group by 1
        """,
    )
    assert_same(answer(firm, ["dso"]), keyed(expected, 1))


# --- exceptions ------------------------------------------------------------------------------------


def test_open_exceptions_and_their_median_age(layer: SemanticLayer, warehouse: Path) -> None:
    names = ["open_exceptions", "exception_median_age_days"]
    result = layer.query(names, group_by=["exception_episode__rule_code", "exception_episode__owner"])
    expected = sql_rows(
        warehouse,
        """
        select rule_code, owner, count(*) filter (where is_open),
               percentile_cont(0.5) within group (order by age_days) filter (where is_open)
        from marts.rpt_exception_aging group by all
        """,
    )
    assert expected
    layer_rows = answer(result, names)
    assert_same(layer_rows, keyed(expected, 2))
    open_count = sql_rows(warehouse, "select count(*) from marts.rpt_exception_aging where is_open")[0][0]
    assert sum(values[0] for values in layer_rows.values()) == open_count
    # the CASE expressions of the measures reach the aggregates intact
    assert aggregates(result.sql, "SUM({})", "case when is_open then 1 else 0 end", "open_exceptions"), (
        result.sql
    )
    median = "PERCENTILE_CONT(0.5) WITHIN GROUP (ORDER BY ({}))"
    assert aggregates(result.sql, median, "case when is_open then age_days end", "exception_median_age_days")


# --- the command line, concurrency, re-publishing --------------------------------------------------


def test_make_metrics_answers_while_another_process_reads_the_warehouse(
    warehouse: Path, tmp_path: Path
) -> None:
    """`make metrics` (one process start) while another process holds the file open read-only."""
    reader = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import duckdb, sys, time\n"
            f"connection = duckdb.connect({str(warehouse)!r}, read_only=True)\n"
            "connection.execute('select count(*) from marts.fct_utilization_daily').fetchall()\n"
            "print('open', flush=True)\n"
            "time.sleep(120)\n",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )
    run_folders = warehouse.parent / metrics.RUN_FOLDER
    sessions_before = set(run_folders.iterdir()) if run_folders.is_dir() else set()
    try:
        assert reader.stdout is not None and reader.stdout.readline().strip() == "open"
        out = tmp_path / "by_month.csv"
        started = time.monotonic()
        result = subprocess.run(
            [
                "make",
                "--no-print-directory",
                "metrics",
                f"WAREHOUSE={warehouse}",
                f"Q=--metrics billable_hours,billable_utilization --group-by metric_time__month --csv {out}",
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            check=False,
        )
        elapsed = time.monotonic() - started
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert reader.poll() is None, "the other reader was disturbed"
    finally:
        reader.kill()
        reader.wait()
    with out.open() as handle:
        rows = list(csv.reader(handle))
    assert rows[0] == ["metric_time__month", "billable_hours", "billable_utilization"]
    got = {row[0][:10]: (Decimal(row[1]), float(row[2]) if row[2] else None) for row in rows[1:]}
    expected = sql_rows(
        warehouse,
        """
        select strftime(month_start_date, '%Y-%m-%d'), sum(billable_hours),
               sum(billable_hours) / nullif(sum(capacity_hours), 0)
        from marts.fct_utilization_daily group by 1
        """,
    )
    assert set(got) == {row[0] for row in expected}
    for month, hours, rate in expected:
        assert got[month][0] == hours
        assert got[month][1] == (None if rate is None else pytest.approx(float(rate), rel=1e-9))
    print(f"make metrics on the tiny warehouse: {elapsed:.1f} s")
    assert set(run_folders.iterdir()) == sessions_before, "the command's run folder is cleaned up"


def test_a_session_keeps_its_build_across_a_republish(warehouse: Path, tmp_path: Path) -> None:
    """A publish renames a new file over the published one mid-session: the open session keeps
    answering from its build; a new session answers from the new one."""
    published = tmp_path / "published" / "warehouse.duckdb"
    published.parent.mkdir()
    shutil.copyfile(warehouse, published)
    # the next "build": every billable hour doubled, published the way the transform does it
    next_build = tmp_path / "next.duckdb"
    shutil.copyfile(warehouse, next_build)
    with duckdb.connect(str(next_build)) as connection:
        connection.execute("update marts.fct_utilization_daily set billable_hours = billable_hours * 2")
        connection.execute("checkpoint")
    query = (["billable_hours"], [])

    with SemanticLayer(published) as before:
        first = before.query(*query).rows[0][0]
        os.replace(next_build, published)  # the atomic publish
        assert before.query(*query).rows[0][0] == first, "the open session must keep its build"
        with SemanticLayer(published) as after:
            assert after.query(*query).rows[0][0] == first * 2
    assert not list((published.parent / metrics.RUN_FOLDER).iterdir())


def test_a_warehouse_without_a_stored_manifest_is_answered_from_a_parse(
    warehouse: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """A warehouse published before the semantic layer existed: the checkout's YAML is parsed,
    with a warning saying the definitions may differ from that build's."""
    older = tmp_path / "older" / "warehouse.duckdb"
    older.parent.mkdir()
    shutil.copyfile(warehouse, older)
    with duckdb.connect(str(older)) as connection:
        connection.execute("drop table ops.semantic_manifest")
        connection.execute("checkpoint")
    with SemanticLayer(older) as session:
        hours = session.query(["capacity_hours"]).rows[0][0]
        assert session.manifest_source.startswith("parsed from")
    assert "carries no semantic manifest" in capsys.readouterr().err
    expected = sql_rows(warehouse, "select sum(capacity_hours) from marts.fct_utilization_daily")[0][0]
    assert hours == pytest.approx(float(expected))


def test_employee_attributes_are_those_of_the_day_worked(warehouse: Path, tmp_path: Path) -> None:
    """A person moves practice on 15 August: their hours up to the 14th stay with the old
    practice, from the 15th on they count for the new one (valid_to is exclusive), and today's
    practice is never applied to the past."""
    copy = tmp_path / "moved" / "warehouse.duckdb"
    copy.parent.mkdir()
    shutil.copyfile(warehouse, copy)
    move = date(2026, 8, 15)
    with duckdb.connect(str(copy)) as connection:
        mover, old_practice = connection.execute(
            """
            select days.employee_id, days.practice
            from marts.fct_utilization_daily as days
            where days.date_day between date '2026-08-01' and date '2026-08-31'
            group by all
            having sum(days.billable_hours) filter (where days.date_day < date '2026-08-15') > 0
               and sum(days.billable_hours) filter (where days.date_day >= date '2026-08-15') > 0
            order by sum(days.billable_hours) desc
            limit 1
            """
        ).fetchall()[0]
        connection.execute(
            """
            insert into marts.dim_employees by name
            select * replace (employee_id || '@2026-08-15' as employee_version_id,
                              date '2026-08-15' as valid_from, 'Moved Practice' as practice)
            from marts.dim_employees where employee_id = ? and valid_to is null
            """,
            [mover],
        )
        connection.execute(
            """
            update marts.dim_employees set valid_to = date '2026-08-15', is_current = false
            where employee_id = ? and valid_to is null and valid_from < date '2026-08-15'
            """,
            [mover],
        )
        connection.execute("checkpoint")
        before, after = connection.execute(
            """
            select sum(billable_hours) filter (where date_day < ?),
                   sum(billable_hours) filter (where date_day >= ?)
            from marts.fct_utilization_daily
            where employee_id = ? and date_day between date '2026-08-01' and date '2026-08-31'
            """,
            [move, move, mover],
        ).fetchall()[0]
    with SemanticLayer(copy) as session:
        result = session.query(
            ["billable_hours"], group_by=["metric_time__month", "employee", "employee__practice"]
        )
    rows = answer(result, ["billable_hours"])
    assert rows[(date(2026, 8, 1), mover, old_practice)][0] == pytest.approx(float(before))
    assert rows[(date(2026, 8, 1), mover, "Moved Practice")][0] == pytest.approx(float(after))
    assert (date(2026, 7, 1), mover, "Moved Practice") not in rows
