"""What each step of a run did, read from where the step records it, for the console and ops.

- ingest: `ops.load_log` in the raw database (rows per source and table; the `quarantine` tables'
  rows are the records refused), the rows of the loader runs that started during the step;
- transform: the newest row of `ops.transform_runs` in the working warehouse and dbt's
  `run_results.json` of the same invocation (models built, tests passed / warned / failed);
- sync: the newest row of the ledger's `sync_runs` (lines acknowledged, deleted, rejected);
- exceptions: `exception_history` in the published warehouse: the episodes this build first saw
  (opened) and the ones it no longer saw (resolved), by the build's dbt invocation id.

Nothing is parsed from a child's free text. A record that cannot be read is said in the step's
line ("facts unavailable: ..."), never guessed. The facts are read from the DuckDB files (the
default engine); on PostgreSQL and Spark the step line says they are not read there.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import duckdb

from billable import engine as engines

# The counters a run adds up (ops.pipeline_runs has one column each).
TOTALS = (
    "rows_loaded",
    "rows_quarantined",
    "models_built",
    "tests_passed",
    "tests_warned",
    "tests_failed",
    "lines_synced",
    "lines_rejected",
    "exceptions_opened",
    "exceptions_resolved",
)


@dataclass
class StepResult:
    name: str
    returncode: int
    duration_s: float
    facts: dict[str, int] = field(default_factory=dict)
    detail: str = ""  # the facts in words, one line

    def line(self) -> str:
        verdict = "done" if self.returncode == 0 else f"FAILED (exit {self.returncode})"
        head = f"{self.name} {verdict} in {self.duration_s:.1f} s"
        return f"{head}: {self.detail}" if self.detail else head


@dataclass(frozen=True)
class Places:
    raw_db: Path
    warehouse: Path
    build_dir: Path
    ledger: Path

    @classmethod
    def beside(cls, raw_db: Path) -> Places:
        data = raw_db.parent
        return cls(raw_db, data / "warehouse.duckdb", data / "build", data / "ledger.sqlite")


@contextmanager
def read_only(path: Path) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect(str(path), read_only=True)
    try:
        yield connection
    finally:
        connection.close()


class Marks:
    """What the records held before a step, so its own rows can be told apart afterwards."""

    def __init__(self, places: Places) -> None:
        self.places = places

    def load_runs(self) -> set[str]:
        if not self.places.raw_db.exists():
            return set()
        try:
            with read_only(self.places.raw_db) as connection:
                rows = connection.execute("select distinct run_id from ops.load_log").fetchall()
        except duckdb.CatalogException:
            return set()
        return {row[0] for row in rows}

    def sync_runs(self) -> set[str]:
        if not self.places.ledger.exists():
            return set()
        with sqlite3.connect(f"file:{self.places.ledger}?mode=ro", uri=True) as connection:
            try:
                return {row[0] for row in connection.execute("select run_id from sync_runs")}
            except sqlite3.OperationalError:
                return set()


def facts_for(step: str, places: Places, before: dict[str, Any]) -> tuple[dict[str, int], str]:
    """The step's facts and a line describing them; ({}, why) when they cannot be read."""
    if before.get("unreadable"):
        return {}, f"facts unavailable: the records could not be read before the step: {before['unreadable']}"
    engine = engines.engine_name()
    if step in ("ingest", "transform", "ingest-erp", "transform-after-sync") and engine != "duckdb":
        return {}, f"facts are read from the DuckDB files only (BILLABLE_ENGINE={engine}; see ops)"
    try:
        if step.startswith("ingest"):
            return ingest_facts(places, before.get("load_runs", set()))
        if step.startswith("transform"):
            return transform_facts(places, before.get("started_utc"))
        if step == "sync":
            return sync_facts(places, before.get("sync_runs", set()))
    except (duckdb.Error, sqlite3.Error, OSError, ValueError, KeyError) as err:
        return {}, f"facts unavailable: {type(err).__name__}: {str(err).splitlines()[0][:200]}"
    return {}, ""


def ingest_facts(places: Places, earlier_runs: set[str]) -> tuple[dict[str, int], str]:
    with read_only(places.raw_db) as connection:
        rows = connection.execute(
            "select run_id, source, table_name, rows, status from ops.load_log order by source, table_name"
        ).fetchall()
    mine = [row for row in rows if row[0] not in earlier_runs]
    if not mine:
        return {}, "no loader run was recorded in ops.load_log"
    loaded: dict[str, int] = {}
    quarantined = 0
    failed: list[str] = []
    for _, source, table, count, status in mine:
        if status == "failed":
            failed.append(source)
            continue
        if table == "quarantine":
            quarantined += count
        elif not (table or "").startswith("_dlt"):
            loaded[source] = loaded.get(source, 0) + count
    facts = {"rows_loaded": sum(loaded.values()), "rows_quarantined": quarantined}
    facts.update({f"rows_loaded.{source}": count for source, count in loaded.items()})
    per_source = ", ".join(f"{source} {count:,}" for source, count in loaded.items())
    detail = f"{facts['rows_loaded']:,} rows loaded ({per_source or 'none'}), {quarantined:,} quarantined"
    if failed:
        detail += f"; FAILED source(s): {', '.join(sorted(set(failed)))}"
    return facts, detail


def transform_facts(places: Places, started_utc: Any) -> tuple[dict[str, int], str]:
    working = places.build_dir / places.warehouse.name
    with read_only(working) as connection:
        run = connection.execute(
            "select run_id, status, dbt_invocation_id, selection"
            " from ops.transform_runs where started_at >= ? order by started_at desc limit 1",
            [started_utc],
        ).fetchone()
    if run is None:
        return {}, "no build was recorded in ops.transform_runs"
    run_id, status, invocation, selection = run
    results_path = places.build_dir / "target" / "run_results.json"
    results = json.loads(results_path.read_text()) if results_path.exists() else {}
    if results.get("metadata", {}).get("invocation_id") != invocation:
        results = {"results": []}  # dbt did not run (nothing changed), or its results are another build's
    counts = {"models_built": 0, "tests_passed": 0, "tests_warned": 0, "tests_failed": 0}
    skipped = 0  # tests dbt did not run because a model they test failed: not failures of their own
    for result in results.get("results", []):
        kind, outcome = result["unique_id"].split(".", 1)[0], result.get("status")
        if kind == "model" and outcome == "success":
            counts["models_built"] += 1
        elif kind == "test" and outcome == "skipped":
            skipped += 1
        elif kind == "test":
            key = {"pass": "tests_passed", "warn": "tests_warned"}.get(outcome, "tests_failed")
            counts[key] += 1
    scope = "what changed" if selection else "everything"
    if status != "passed":
        scope += f"; build {run_id} {status}, not published"
    detail = (
        f"{counts['models_built']} models built ({scope}), tests "
        f"{counts['tests_passed']} passed, {counts['tests_warned']} warned, {counts['tests_failed']} failed"
        + (f", {skipped} skipped" if skipped else "")
    )
    if status == "passed" and invocation:
        opened, resolved = exception_facts(places.warehouse, invocation)
        counts["exceptions_opened"], counts["exceptions_resolved"] = opened, resolved
        detail += f"; exceptions {opened} opened, {resolved} resolved"
    return counts, detail


def exception_facts(warehouse: Path, invocation: str) -> tuple[int, int]:
    """(opened, resolved) by the build `invocation`, from exception_history in the published file."""
    with read_only(warehouse) as connection:
        found = connection.execute(
            "select table_schema from information_schema.tables where table_name = 'exception_history'"
        ).fetchone()
        if found is None:
            return 0, 0
        table = f'"{found[0]}".exception_history'
        row = connection.execute(
            f"select count(*) filter (where first_detected_invocation_id = $1),"
            f" count(*) filter (where resolved_invocation_id = $1) from {table}",
            [invocation],
        ).fetchone()
    assert row is not None
    return int(row[0]), int(row[1])


def sync_facts(places: Places, earlier_runs: set[str]) -> tuple[dict[str, int], str]:
    if not places.ledger.exists():
        return {}, f"no ledger at {places.ledger}"
    with sqlite3.connect(f"file:{places.ledger}?mode=ro", uri=True) as connection:
        connection.row_factory = sqlite3.Row
        runs = connection.execute("select * from sync_runs order by started_at desc limit 5").fetchall()
    run = next((row for row in runs if row["run_id"] not in earlier_runs), None)
    if run is None:
        return {}, "no sync run was recorded in the ledger"
    synced = (run["lines_acknowledged"] or 0) + (run["lines_deleted"] or 0)
    facts = {
        "lines_synced": synced,
        "lines_rejected": run["lines_rejected"] or 0,
        "lines_dead_letter": run["lines_dead_letter"] or 0,
    }
    detail = (
        f"sync {run['status']}: {synced:,} lines synced ({run['lines_acknowledged'] or 0:,} acknowledged, "
        f"{run['lines_deleted'] or 0:,} deleted), {facts['lines_rejected']:,} rejected"
    )
    if facts["lines_dead_letter"]:
        detail += f", {facts['lines_dead_letter']:,} dead letters (resent next run)"
    return facts, detail


def totals(results: list[StepResult]) -> dict[str, int]:
    """The run's counters: sums over its steps (ingest and ingest-erp both load; both builds count)."""
    summed = dict.fromkeys(TOTALS, 0)
    for result in results:
        for key in TOTALS:
            summed[key] += result.facts.get(key, 0)
    return summed


def summary_table(label: str, results: list[StepResult], outcome: str, duration_s: float) -> str:
    """The table a run ends with: one row per step, then the totals."""
    header = f"{'step':<22}{'result':<14}{'seconds':>9}  facts"
    lines = [f"{label}: summary", header, "-" * len(header)]
    for result in results:
        verdict = "ok" if result.returncode == 0 else f"FAILED ({result.returncode})"
        lines.append(f"{result.name:<22}{verdict:<14}{result.duration_s:>9.1f}  {result.detail}".rstrip())
    summed = totals(results)
    lines.append("-" * len(header))
    lines.append(
        f"{'run':<22}{outcome:<14}{duration_s:>9.1f}  "
        f"{summed['rows_loaded']:,} rows loaded, {summed['rows_quarantined']:,} quarantined; "
        f"{summed['models_built']} models built; tests {summed['tests_passed']} passed, "
        f"{summed['tests_warned']} warned, {summed['tests_failed']} failed; "
        f"{summed['lines_synced']:,} lines synced, {summed['lines_rejected']:,} rejected; "
        f"exceptions {summed['exceptions_opened']} opened, {summed['exceptions_resolved']} resolved"
    )
    return "\n".join(lines)
