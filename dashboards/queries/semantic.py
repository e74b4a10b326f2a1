"""Every KPI the dashboard aggregates, as SQL built from the semantic layer's one definition.

A page that sums over its filters and then divides (utilisation of a practice over three months,
gross margin % of a client, realisation of an entity, DSO of two entities) does not re-type the
ratio: it asks this module for the metric by name. The definitions come from the semantic
manifest the transform stored in the published warehouse (`ops.semantic_manifest`, the same
one `billable.metrics` and `make metrics` use, docs/metrics.md), so the dashboard and MetricFlow
compute a metric the same way on the same build:

- a simple metric is its measure's aggregation of the measure's `expr`: `sum(billable_hours)`;
- a ratio metric is `<numerator> / nullif(<denominator>, 0)`, each side a metric in turn;
- a derived metric is its `expr` with each input metric replaced by that metric's SQL.

The expressions are column expressions of the semantic model's mart (rpt_revenue,
rpt_realization, rpt_dso, fct_utilization_daily). A page may apply them to another mart with the
same columns at a coarser grain: rpt_utilization holds fct_utilization_daily's hour columns
summed per employee and month, so the sums (and every ratio of them) are the same.

What the manifest says is SQL text from the build itself, never user input. A metric the build
does not define, or defines in a way this module cannot compose (a metric filter, an offset, an
aggregation other than sum/count/min/max/average), raises `MetricUndefined` naming it; the page
shows that message instead of a figure. Semi-additive measures (balances: backlog, receivables)
are refused unless the query takes one snapshot per group (`snapshots=True`).
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from typing import Any

from dashboards.queries.connection import read, tables


class MetricUndefined(Exception):
    """A metric the dashboard shows is missing from the build's semantic manifest, or is defined
    in a way the dashboard cannot compose into SQL."""


# options of a metric input that change what it computes; the dashboard composes plain inputs only
_INPUT_OPTIONS = ("filter", "offset_window", "offset_to_grain", "join_to_timespine", "fill_nulls_with")
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# the measure aggregations the dashboard composes: MetricFlow's agg name -> the SQL function
_AGGREGATIONS = {"sum": "sum", "count": "count", "min": "min", "max": "max", "average": "avg"}


def _name(item: Any) -> str:
    """A metric input or measure reference: a name, or a dict with a name (the manifest's form)."""
    return str(item["name"] if isinstance(item, Mapping) else item)


class Definitions:
    """The metrics and measures of one semantic manifest, composed into SQL expressions."""

    def __init__(self, manifest: Mapping[str, Any]) -> None:
        self.metrics: dict[str, Mapping[str, Any]] = {
            metric["name"]: metric for metric in manifest.get("metrics", []) or []
        }
        self.measures: dict[str, Mapping[str, Any]] = {}
        for model in manifest.get("semantic_models", []) or []:
            for measure in model.get("measures", []) or []:
                self.measures[measure["name"]] = measure

    def metric(self, name: str) -> Mapping[str, Any]:
        if name not in self.metrics:
            raise MetricUndefined(
                f"metric `{name}` is not defined in this build's semantic manifest "
                "(ops.semantic_manifest); rebuild with `make transform` from a project that defines it"
            )
        return self.metrics[name]

    def sql(self, name: str, *, table: str | None = None, snapshots: bool = False) -> str:
        """The SQL expression of metric `name` over the rows of a group.

        `table`: qualify the measures' columns with this alias (the measure's expr must then be a
        plain column). `snapshots`: the query keeps one snapshot per group (a single as-of date or
        month per group), so semi-additive measures may be summed.
        """
        metric = self.metric(name)
        if metric.get("filter"):
            raise MetricUndefined(
                f"metric `{name}` has a filter; the dashboard composes unfiltered metrics only"
            )
        kind = metric.get("type")
        params = metric.get("type_params") or {}
        if kind == "simple":
            return self._measure_sql(_name(self._plain_input(name, params["measure"])), table, snapshots)
        if kind == "ratio":
            top = self._input_sql(name, params["numerator"], table, snapshots)
            bottom = self._input_sql(name, params["denominator"], table, snapshots)
            return f"{top} / nullif({bottom}, 0)"
        if kind == "derived":
            inputs = {}
            for item in params.get("metrics") or []:
                plain = self._plain_input(name, item, allow_alias=True)
                alias = plain.get("alias") if isinstance(plain, Mapping) else None
                inputs[str(alias or _name(plain))] = self._wrapped(_name(plain), table, snapshots)
            if not inputs:
                raise MetricUndefined(f"derived metric `{name}` has no input metrics")
            pattern = re.compile(r"\b(" + "|".join(re.escape(key) for key in inputs) + r")\b")
            return pattern.sub(lambda match: inputs[match.group(1)], " ".join(str(params["expr"]).split()))
        raise MetricUndefined(
            f"metric `{name}` is of type {kind!r}; the dashboard composes simple, ratio and derived metrics"
        )

    def select(
        self, columns: Sequence[str] | Mapping[str, str], *, table: str | None = None, snapshots: bool = False
    ) -> str:
        """`<sql> as <column>, ...` for metrics named by their column (a sequence: the metric's own
        name; a mapping: column -> metric)."""
        pairs = columns.items() if isinstance(columns, Mapping) else ((name, name) for name in columns)
        parts = []
        for column, metric in pairs:
            if not _IDENTIFIER.match(column):
                raise ValueError(f"not a column name: {column!r}")
            parts.append(f"{self.sql(metric, table=table, snapshots=snapshots)} as {column}")
        return ",\n    ".join(parts)

    def _plain_input(self, name: str, item: Any, *, allow_alias: bool = False) -> Any:
        if isinstance(item, Mapping):
            extras = [key for key in _INPUT_OPTIONS if item.get(key)]
            if item.get("alias") and not allow_alias:
                extras.append("alias")
            if extras:
                raise MetricUndefined(
                    f"metric `{name}` gives its input `{_name(item)}` {', '.join(extras)}; "
                    "the dashboard composes plain inputs only"
                )
        return item

    def _input_sql(self, name: str, item: Any, table: str | None, snapshots: bool) -> str:
        return self._wrapped(_name(self._plain_input(name, item)), table, snapshots)

    def _wrapped(self, child: str, table: str | None, snapshots: bool) -> str:
        """An input metric's SQL, in parentheses unless it is a single aggregate."""
        child_sql = self.sql(child, table=table, snapshots=snapshots)
        return child_sql if self.metric(child).get("type") == "simple" else f"({child_sql})"

    def _measure_sql(self, name: str, table: str | None, snapshots: bool) -> str:
        if name not in self.measures:
            raise MetricUndefined(f"measure `{name}` is not defined in this build's semantic manifest")
        measure = self.measures[name]
        if measure.get("non_additive_dimension") and not snapshots:
            raise MetricUndefined(
                f"measure `{name}` is semi-additive (a balance); sum it only with one snapshot per group"
            )
        agg = str(measure.get("agg"))
        if agg not in _AGGREGATIONS:
            raise MetricUndefined(
                f"measure `{name}` aggregates by {agg!r}, which the dashboard does not compose"
            )
        expr = " ".join(str(measure.get("expr") or name).split())
        if table is not None:
            if not _IDENTIFIER.match(expr) or not _IDENTIFIER.match(table):
                raise MetricUndefined(f"measure `{name}` (expr `{expr}`) cannot be qualified with `{table}`")
            expr = f"{table}.{expr}"
        return f"{_AGGREGATIONS[agg]}({expr})"


@functools.lru_cache(maxsize=4)
def _parse(text: str) -> Definitions:
    return Definitions(json.loads(text))


def definitions() -> Definitions:
    """The definitions of the build this page run reads (its stored semantic manifest)."""
    t = tables("semantic_manifest")
    frame = read(
        f"select manifest from {t.semantic_manifest} order by stored_at desc nulls last limit 1", tables=t
    )
    if frame.empty:
        raise MetricUndefined("this build stored no semantic manifest (ops.semantic_manifest is empty)")
    return _parse(str(frame.iloc[0, 0]))
