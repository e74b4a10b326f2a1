"""kill -9 at random moments of ingest, of the sync and of the whole pipeline, then a clean re-run.

Each test kills a real child process (SIGKILL, no chance to clean up) a few times at random
points, then runs the same step once more to the end and checks the invariants that must hold
wherever the kill landed:

- ingest: every raw table has exactly a clean load's rows (row count, key set, money sums);
- sync: the ERP holds every planned line exactly once, with the plan's money;
- pipeline: no child of the killed run is left running; the re-run publishes; every ready line
  is in the ERP once; the raw database equals a fresh load of the same systems.

The kill moments are drawn from a seed printed in every failure message, so a failure can be
replayed: `BILLABLE_KILL_SEED=<seed> make test PYTEST_ARGS=tests/test_random_kills.py`.
"""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import time
from pathlib import Path

import duckdb
import psutil
import pytest

from billable.sandbox_process import running_sandbox
from tests.ingest_helpers import ROOT, copy_world, generate_world, ingest, ingest_command, ingest_env
from tests.reverse_etl_helpers import (
    assert_exactly_once,
    erp_objects,
    make_site,
    ready_lines,
    sync,
    sync_command,
    sync_env,
    ta_money,
)

SEED = int(os.environ.get("BILLABLE_KILL_SEED") or random.SystemRandom().randrange(1 << 31))
KILLS = 3


def rng_for(name: str) -> random.Random:
    return random.Random(f"{SEED}:{name}")


def note(moments: list[float]) -> str:
    return f"(BILLABLE_KILL_SEED={SEED}, killed after {', '.join(f'{m:.2f}' for m in moments)} s)"


def kill_after(command: list[str], env: dict[str, str], seconds: float) -> int:
    """Start `command`, SIGKILL it (the process itself, not its group) after `seconds`; its exit code.

    A run that finishes before the moment simply finishes: that is one of the points too.
    """
    process = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        process.wait(timeout=seconds)
    except subprocess.TimeoutExpired:
        process.send_signal(signal.SIGKILL)
        process.wait()
    return process.returncode


# Append-only tables that record an observation per load (QuickBooks' book-close date as seen each
# run): a killed run that got that far adds a row, as any earlier run does, so these are compared
# by the distinct observations, every other table row for row.
OBSERVATION_LOGS = {"raw_erp.preferences_history"}


def table_fingerprints(raw_db: Path) -> dict[str, tuple]:
    """Per raw table: rows, a hash of the key set (`id` where there is one), and every numeric sum.

    dlt's own columns and staging datasets differ between two loads of the same data; they are
    left out. Sums are exact (DECIMAL and integers as they are; doubles rounded to 6 places).
    """
    out: dict[str, tuple] = {}
    with duckdb.connect(str(raw_db), read_only=True) as connection:
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema like 'raw_%' and table_schema not like '%_staging' "
            "and table_name not like '\\_dlt%' escape '\\' order by 1, 2"
        ).fetchall()
        for schema, table in tables:
            columns = connection.execute(
                "select column_name, data_type from information_schema.columns "
                "where table_schema = ? and table_name = ? and column_name not like '\\_dlt%' escape '\\'",
                [schema, table],
            ).fetchall()
            names = {name for name, _ in columns}
            parts = ["count(*)"]
            if "id" in names:
                parts.append('md5(string_agg(cast("id" as varchar), \',\' order by cast("id" as varchar)))')
            for name, kind in sorted(columns):
                if kind.startswith("DECIMAL") or kind in ("BIGINT", "INTEGER", "HUGEINT"):
                    parts.append(f'sum("{name}")')
                elif kind == "DOUBLE":
                    parts.append(f'round(sum("{name}"), 6)')
            source = f'"{schema}"."{table}"'
            if f"{schema}.{table}" in OBSERVATION_LOGS:  # one row per load by design: compare what was seen
                kept = ", ".join(f'"{name}"' for name in sorted(names))
                source = f"(select distinct {kept} from {source})"
            row = connection.execute(f"select {', '.join(parts)} from {source}").fetchone()
            out[f"{schema}.{table}"] = tuple(row)
    return out


def assert_same_raw(actual: Path, expected: Path, context: str) -> None:
    got, want = table_fingerprints(actual), table_fingerprints(expected)
    assert set(got) == set(want), f"tables differ {context}: {set(got) ^ set(want)}"
    differing = {name: (got[name], want[name]) for name in want if got[name] != want[name]}
    assert not differing, f"raw tables differ from a clean load {context}: {differing}"


def processes_mentioning(marker: str) -> list[psutil.Process]:
    """Live processes whose command line names `marker` (this test's own temp folder)."""
    found = []
    for process in psutil.process_iter(["pid", "cmdline", "status"]):
        try:
            if process.info["status"] == psutil.STATUS_ZOMBIE:
                continue
            if any(marker in part for part in process.info["cmdline"] or []):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_for_no_processes(marker: str, within_s: float) -> list[str]:
    deadline = time.monotonic() + within_s
    while True:
        left = processes_mentioning(marker)
        if not left or time.monotonic() > deadline:
            return [" ".join(process.info["cmdline"] or [])[:200] for process in left]
        time.sleep(0.2)


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(tmp_path_factory.mktemp("kills") / "world", seed=13)


def test_ingest_killed_at_random_moments_then_rerun_equals_a_clean_load(world: Path, tmp_path: Path) -> None:
    rng = rng_for("ingest")
    clean_db, raw_db = tmp_path / "clean.duckdb", tmp_path / "killed.duckdb"
    # Slow answers spread a tiny load over seconds, so the kills land inside requests, conversion,
    # normalising and the load step alike.
    with running_sandbox(world, flags=["--slow-ms", "8"]) as base_url:
        started = time.monotonic()
        clean = ingest(base_url, world, clean_db, "")
        clean_s = time.monotonic() - started
        assert clean.returncode == 0, clean.stdout[-3000:] + clean.stderr[-3000:]
        env = ingest_env(base_url, world, SOURCES__HARVEST__PER_PAGE="50", BILLABLE_PROGRESS="")
        moments = [rng.uniform(0.3, clean_s) for _ in range(KILLS)]
        for moment in moments:
            kill_after(ingest_command(raw_db, ""), env, moment)
        rerun = ingest(base_url, world, raw_db, "")
    assert rerun.returncode == 0, f"{note(moments)}\n{rerun.stdout[-3000:]}{rerun.stderr[-3000:]}"
    assert_same_raw(raw_db, clean_db, note(moments))


def test_sync_killed_at_random_moments_then_rerun_holds_each_line_once(tiny_firm, tmp_path: Path) -> None:
    rng = rng_for("sync")
    (tmp_path / "clean").mkdir()
    (tmp_path / "killed").mkdir()
    timing = make_site(tmp_path / "clean", tiny_firm.world, tiny_firm.warehouse)
    site = make_site(tmp_path / "killed", tiny_firm.world, tiny_firm.warehouse)
    plan = ready_lines(site.warehouse)
    assert plan, "the tiny firm has lines to push"
    arguments = ("--batch-size", "5", "--concurrency", "1")
    # Slow answers and small batches spread the sync over seconds; a clean sync of a copy times it.
    with running_sandbox(timing.world, flags=["--slow-ms", "150"]) as base_url:
        started = time.monotonic()
        assert sync(base_url, timing, *arguments).returncode == 0
        clean_s = time.monotonic() - started
    with running_sandbox(site.world, flags=["--slow-ms", "150"]) as base_url:
        env = sync_env(base_url, site)
        command = sync_command(site, *arguments)
        moments = [rng.uniform(0.2, clean_s) for _ in range(KILLS)]
        for moment in moments:
            kill_after(command, env, moment)
        rerun = sync(base_url, site)
    assert rerun.returncode == 0, f"{note(moments)}\n{rerun.stdout[-3000:]}{rerun.stderr[-3000:]}"
    try:
        assert_exactly_once(site, plan)
    except AssertionError as failure:
        raise AssertionError(f"{failure} {note(moments)}") from None


def test_pipeline_killed_at_a_random_moment_leaves_nothing_running_and_reruns_clean(
    world: Path, tmp_path: Path
) -> None:
    rng = rng_for("pipeline")
    own_world = copy_world(world, tmp_path / "world")
    raw_db = tmp_path / "data" / "raw.duckdb"
    command = [sys.executable, "-m", "billable.pipeline", "--world", str(own_world), "--port", "0"]
    command += ["--raw-db", str(raw_db)]
    env = {**os.environ, "BILLABLE_PROGRESS": ""}
    # The first run's steps: ingest (seconds), transform (tens of seconds), sync, ingest ERP, transform.
    moment = rng.uniform(1.0, 70.0)
    kill_after(command, env, moment)
    left = wait_for_no_processes(str(tmp_path), within_s=3)
    assert not left, f"children of the killed pipeline still run {note([moment])}: {left}"

    rerun = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert rerun.returncode == 0, f"{note([moment])}\n{rerun.stdout[-4000:]}{rerun.stderr[-4000:]}"
    assert not wait_for_no_processes(str(tmp_path), within_s=5), "the finished run left a child running"

    warehouse = raw_db.parent / "warehouse.duckdb"
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        pending = connection.execute(
            "select count(*) from marts.rpt_billable_lines "
            "where line_kind = 'time' and line_status = 'ready' and not is_in_erp"
        ).fetchone()[0]
    assert pending == 0, f"{pending} ready lines never reached the ERP {note([moment])}"
    pushed = ready_time_lines(warehouse)
    by_entry: dict[str, list[dict]] = {}
    for record in erp_objects(own_world):
        entry = (record.get("Description") or "").split(" ")[0]
        if entry.startswith("harvest:"):
            by_entry.setdefault(f"time:{entry.removeprefix('harvest:')}", []).append(record)
    twice = {key: len(records) for key, records in by_entry.items() if len(records) > 1}
    assert not twice, f"time entries with more than one TimeActivity {note([moment])}: {twice}"
    wrong = {
        key: (str(ta_money(by_entry[key][0])), str(amount))
        for key, amount in pushed.items()
        if key not in by_entry or ta_money(by_entry[key][0]) != amount
    }
    assert not wrong, f"ERP money differs from the line's {note([moment])}: {wrong}"

    fresh = tmp_path / "fresh.duckdb"
    with running_sandbox(own_world) as base_url:
        again = ingest(base_url, own_world, fresh, "")
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    assert_same_raw(raw_db, fresh, note([moment]))


def ready_time_lines(warehouse: Path) -> dict:
    """Ready time lines and their amounts: after a finished run, each is in the ERP once."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        rows = connection.execute(
            "select line_key, amount from marts.rpt_billable_lines "
            "where line_kind = 'time' and line_status = 'ready'"
        ).fetchall()
    return dict(rows)
