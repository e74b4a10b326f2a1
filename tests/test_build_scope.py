"""The daily run follows change (billable.build_scope, issue 17).

A tiny firm runs through the real pipeline (sandbox over HTTP, loaders, transform, sync, the ERP's
re-ingest, transform) on its first day and on three more days, its clock moved a day each time.
Then the same raw data is built once more from scratch (`--full-refresh`, a new build folder):
every mart must equal the one the daily runs published, though those runs built incrementally
(fct_time_entries merges the day's entries) and their second build of each day rebuilt only what
the sync's answers touched. On one more day the first build is killed (SIGKILL) halfway through
its models, and that day's run is then made good by the next transform: a killed build records no
run, so the next one selects against the last build that passed, which covers whatever the killed
one half-did. Production builds leave the unit tests out; the session's tiny firm runs them
(tests/conftest.py), and this says they ran there.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from billable.build_scope import SOURCES, plan
from tests.conftest import Firm
from tests.engine_compare import duckdb_differences
from tests.ingest_helpers import ROOT, generate_world
from tests.warehouse_helpers import rows, transform

DAYS = 3  # days with a whole daily run, after the first; then one day whose first build is killed
KILL_AFTER = 15  # models the killed build has created when it is killed
# Kept by design across runs, so no rebuild from today's data can give it back: the episodes of
# exceptions as each build saw them (docs/warehouse.md, "Exception history"), and the forecast
# each build made with the accuracy read from them (docs/dashboards.md, "The forward look").
HISTORY = {"exception_history", "rpt_exception_aging", "rpt_forecast_snapshots", "rpt_forecast_accuracy"}


def pipeline(world: Path, data: Path, *extra: str) -> subprocess.CompletedProcess:
    command = [sys.executable, "-m", "billable.pipeline", "--world", str(world), "--port", "0"]
    command += ["--raw-db", str(data / "raw.duckdb"), *extra]
    return subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=1800)


@pytest.fixture(scope="module")
def days(tmp_path_factory: pytest.TempPathFactory) -> dict:
    folder = tmp_path_factory.mktemp("daily")
    world = generate_world(folder / "world", seed=11)
    data = folder / "data"
    outputs = []
    for day in range(DAYS + 1):
        result = pipeline(world, data, *(["--advance-days", "1"] if day else []))
        assert result.returncode == 0, f"day {day}: " + result.stdout[-4000:] + result.stderr[-4000:]
        outputs.append(result.stdout)
    outputs.append(killed_day(world, data))
    fresh = folder / "fresh"
    fresh.mkdir()
    shutil.copyfile(data / "ledger.duckdb", fresh / "ledger.duckdb")  # the snapshot the last build read
    result = transform(data / "raw.duckdb", fresh, "--full-refresh")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return {"data": data, "fresh": fresh, "outputs": outputs}


def killed_day(world: Path, data: Path) -> str:
    """A day whose first build dies halfway (kill -9); the rest of the day's run, started again, makes
    it good. Returns the output of that rest."""
    result = pipeline(world, data, "--advance-days", "1", "--only", "ingest")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    command = [sys.executable, "-m", "billable.transform", "--raw-db", str(data / "raw.duckdb")]
    command += ["--warehouse", str(data / "warehouse.duckdb"), "--build-dir", str(data / "build")]
    build = subprocess.Popen(
        command, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, start_new_session=True
    )
    created, seen = 0, []
    assert build.stdout is not None
    for line in build.stdout:
        seen.append(line)
        created += " OK created " in line
        if created == KILL_AFTER:
            os.killpg(build.pid, signal.SIGKILL)  # the transform and its dbt, with no chance to clean up
            break
    build.wait(timeout=60)
    assert created == KILL_AFTER, "the build ended before it could be killed:\n" + "".join(seen[-40:])
    assert build.returncode == -signal.SIGKILL
    rest = ["--only", "transform", "--only", "sync", "--only", "ingest-erp", "--only", "transform-after-sync"]
    result = pipeline(world, data, *rest)
    assert result.returncode == 0, "after the kill: " + result.stdout[-4000:] + result.stderr[-4000:]
    return result.stdout


def test_daily_runs_publish_what_a_full_refresh_builds(days: dict) -> None:
    daily, fresh = days["data"] / "warehouse.duckdb", days["fresh"] / "warehouse.duckdb"
    found = duckdb_differences(daily, fresh, skip=HISTORY)
    assert not found, "\n".join(found)
    core = duckdb_differences(daily, fresh, "core")
    assert not core, "\n".join(core)


def test_the_build_after_the_sync_rebuilds_only_what_it_touched(days: dict) -> None:
    runs = rows(
        days["data"] / "warehouse.duckdb",
        "select selection, nodes_total, unit_tests, status from ops.transform_runs order by started_at",
    )
    # two builds a day; the killed build recorded nothing, the one after it made its day good
    assert len(runs) == 2 * (DAYS + 2)
    assert all(status == "passed" and not unit_tests for _s, _n, unit_tests, status in runs)
    first_of_day, after_sync = runs[0::2], runs[1::2]
    # the first build of all builds everything; each day's first sees every loader's new load
    # (only the ledger, the sync's snapshot, and tables no load touched are unchanged)
    assert first_of_day[0][0] == ""
    for selection, *_ in first_of_day[1:]:
        assert "source:time.time_entries+" in selection.split(), selection
        assert "source:ledger+" not in selection
    # after the sync, only the ERP's tables, the ledger and the load log changed
    for selection, nodes, *_ in after_sync[1:]:
        assert is_after_sync(selection), selection
        assert nodes < min(n for _s, n, *_ in first_of_day), (nodes, first_of_day)
    assert "transform: building source:erp." in days["outputs"][-1]
    # the build after the kill still followed change: it selected against the last passed build
    assert "source:time.time_entries+" in first_of_day[-1][0].split(), first_of_day[-1]


def is_after_sync(selection: str) -> bool:
    """What the ERP's re-ingest after a sync changes: some of its tables, the load log, the ledger."""
    chosen = selection.split()
    erp = [item for item in chosen if item.startswith("source:erp.")]
    others = set(chosen) - set(erp)
    return bool(erp) and "source:ops+" in chosen and others <= {"source:ops+", "source:ledger+"}


def test_production_builds_leave_unit_tests_to_make_test(tiny_firm: Firm) -> None:
    """The session's tiny firm is built with --unit-tests (conftest): they ran and passed there."""
    (unit_tests,) = rows(tiny_firm.warehouse, "select unit_tests from ops.transform_runs")[-1]
    assert unit_tests
    results = json.loads((tiny_firm.build_dir / "target" / "run_results.json").read_text())
    ran = [r for r in results["results"] if r["unique_id"].startswith("unit_test.")]
    assert len(ran) >= 60 and all(r["status"] == "pass" for r in ran)


PREVIOUS = {
    "run_id": "r1",
    "status": "passed",
    "project_fingerprint": "p",
    "source_fingerprints": json.dumps({source: "1:a" for source in SOURCES}),
}


@pytest.mark.parametrize(
    ("previous", "project", "full_refresh", "why"),
    [
        (None, "p", False, "no earlier build"),
        ({**PREVIOUS, "status": "failed"}, "p", False, "did not pass"),
        (PREVIOUS, "q", False, "the project"),
        (PREVIOUS, "p", True, "full refresh"),
        ({**PREVIOUS, "source_fingerprints": None}, "p", False, "no fingerprints"),
        ({**PREVIOUS, "source_fingerprints": "{"}, "p", False, "no fingerprints"),
    ],
)
def test_anything_uncertain_builds_everything(previous, project, full_refresh, why) -> None:
    changed = {source: "1:a" for source in SOURCES} | {"erp": "2:b"}
    scope = plan(previous, changed, project, full_refresh)
    assert scope.is_full and why in scope.reason


def test_a_changed_source_selects_what_reads_it() -> None:
    current = {source: "1:a" for source in SOURCES} | {"erp": "2:b", "ledger": "absent"}
    scope = plan(PREVIOUS, current, "p", False)
    assert scope.select == ("source:erp+", "source:ledger+")
    everything = plan(PREVIOUS, {source: "2:b" for source in SOURCES}, "p", False)
    assert everything.is_full and "every source changed" in everything.reason
