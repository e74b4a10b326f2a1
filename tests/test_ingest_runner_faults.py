"""The ingestion runner under faults (issue 13, faults 5, 6, 8, 11), over the real components: the
sandbox over HTTP, real `python -m ingestion` processes, real DuckDB, kill -9.

- two loaders at once on one raw database: one loads, the other exits 75 naming the holder;
- a resumed package's repair never deduplicates an append-only table by key (preferences_history);
- kill -9 in a source's load step, then a re-run: it resumes, logs every source, goes on, and the
  raw tables equal a clean load's;
- an unreachable system fails within seconds, naming the system, the URL and the cause.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb
import pytest

from billable.run_lock import run_lock
from billable.sandbox_process import free_port, running_sandbox
from ingestion.http import SystemUnreachable, make_client
from ingestion.run import MARKER
from tests.ingest_helpers import (
    ROOT,
    copy_world,
    generate_world,
    ingest,
    ingest_command,
    ingest_env,
    query,
)

ALL = "crm,psa,time,hr,erp"
# Columns that record when something was loaded or seen, not what was loaded.
LOAD_TIME_COLUMNS = {"loaded_at", "detected_at"}
# Append-only: one row per load of each realm, so it grows with every run.
APPEND_ONLY = {("raw_erp", "preferences_history")}


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("runner_faults")
    return copy_world(generate_world(folder / "tiny"), folder / "world")


@pytest.fixture(scope="module")
def base_url(world: Path) -> Iterator[str]:
    with running_sandbox(world) as url:
        yield url


@pytest.fixture(scope="module")
def clean(world: Path, base_url: str, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One clean load of every source: the reference the faulted runs must equal."""
    raw_db = tmp_path_factory.mktemp("clean") / "raw.duckdb"
    result = ingest(base_url, world, raw_db, ALL)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return raw_db


def contents(raw_db: Path) -> dict[str, list[tuple]]:
    """Every raw table's rows without dlt's bookkeeping columns and load times, sorted."""
    found: dict[str, list[tuple]] = {}
    with duckdb.connect(str(raw_db), read_only=True) as connection:
        tables = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema like 'raw\\_%' escape '\\' "
            "and table_schema not like '%\\_staging' escape '\\' "
            "and table_name not like '\\_dlt%' escape '\\'"
        ).fetchall()
        for schema, table in tables:
            if (schema, table) in APPEND_ONLY:
                continue
            columns = [
                name
                for (name,) in connection.execute(
                    "select column_name from information_schema.columns where table_schema = ? and "
                    "table_name = ? order by column_name",
                    [schema, table],
                ).fetchall()
                if not name.startswith("_dlt") and name not in LOAD_TIME_COLUMNS
            ]
            listed = ", ".join(f'"{name}"' for name in columns)
            rows = connection.execute(f'select {listed} from "{schema}"."{table}"').fetchall()
            found[f"{schema}.{table}"] = sorted(rows, key=repr)
    return found


def assert_equals_clean(raw_db: Path, clean: Path) -> None:
    got, want = contents(raw_db), contents(clean)
    assert sorted(got) == sorted(want), "the same tables"
    for table, rows in want.items():
        assert len(got[table]) == len(rows), f"{table}: {len(got[table])} rows, a clean load has {len(rows)}"
        assert got[table] == rows, f"{table} differs from a clean load"


def contract_value(raw_db: Path) -> float:
    return query(raw_db, "select sum(contract_value__c) from raw_crm.contract")[0][0]


def duplicate_keys(raw_db: Path, schema: str) -> dict[str, int]:
    """Per table of the dataset, rows beyond one per primary key (dlt's schema names the key)."""
    import dlt

    pipelines = raw_db.parent / "dlt"
    name = {"raw_crm": "billable_crm", "raw_erp": "billable_erp"}[schema]
    pipeline = dlt.attach(name, pipelines_dir=str(pipelines))
    extra: dict[str, int] = {}
    for table in pipeline.default_schema.data_tables():
        keys = [column for column, hints in table["columns"].items() if hints.get("primary_key")]
        if not keys or (schema, table["name"]) in APPEND_ONLY:
            continue
        listed = ", ".join(f'"{key}"' for key in keys)
        total, distinct = query(
            raw_db, f'select count(*), count(distinct ({listed})) from {schema}."{table["name"]}"'
        )[0]
        extra[table["name"]] = total - distinct
    return extra


# Fault 5: two loaders at once -----------------------------------------------------------------


def test_two_loaders_at_once_one_loads_and_the_other_exits_75(
    world: Path, base_url: str, clean: Path, tmp_path: Path
) -> None:
    raw_db = tmp_path / "raw.duckdb"
    env = ingest_env(base_url, world, BILLABLE_PROGRESS="")
    loaders = [
        subprocess.Popen(
            ingest_command(raw_db, "crm"),
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [loader.communicate(timeout=300) for loader in loaders]
    codes = [loader.returncode for loader in loaders]
    assert sorted(codes) == [0, 75], (codes, [err[-2000:] for _, err in outputs])
    loser = codes.index(75)
    winner = loaders[1 - loser]
    message = outputs[loser][1]
    assert f"another run (pid {winner.pid}" in message and "raw.duckdb.lock" in message, message
    assert duplicate_keys(raw_db, "raw_crm") == dict.fromkeys(duplicate_keys(clean, "raw_crm"), 0)
    assert contract_value(raw_db) == contract_value(clean)


def test_a_held_lock_exits_75_and_wait_waits_for_it(
    world: Path, base_url: str, clean: Path, tmp_path: Path
) -> None:
    raw_db = tmp_path / "raw.duckdb"
    env = ingest_env(base_url, world, BILLABLE_PROGRESS="")
    with run_lock(raw_db.with_name("raw.duckdb.lock")):
        busy = subprocess.run(
            ingest_command(raw_db, "crm"), cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
        )
        assert busy.returncode == 75, busy.stderr
        assert f"another run (pid {os.getpid()}" in busy.stderr
        assert not raw_db.exists(), "a run that did not get the lock writes nothing"
        waiting = subprocess.Popen(
            [*ingest_command(raw_db, "crm"), "--wait", "120"],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            text=True,
        )
        time.sleep(1.5)
        assert waiting.poll() is None, "--wait waits while the lock is held"
    out, _ = waiting.communicate(timeout=300)
    assert waiting.returncode == 0, out[-2000:]
    assert contract_value(raw_db) == contract_value(clean)


# Fault 6: the resume repair and append-only tables ------------------------------------------


def test_the_resume_repair_keeps_append_only_history_and_removes_only_copies(
    world: Path, base_url: str, tmp_path: Path
) -> None:
    raw_db = tmp_path / "raw.duckdb"
    for _ in range(3):
        run = ingest(base_url, world, raw_db, "erp")
        assert run.returncode == 0, run.stderr[-3000:]
    history = query(raw_db, "select count(*), count(distinct realm_id) from raw_erp.preferences_history")[0]
    assert history[0] == 3 * history[1], "one row per realm and load"
    # What a job loaded twice by a resumed package leaves: exact copies, same _dlt_load_id.
    with duckdb.connect(str(raw_db)) as connection:
        last = "(select max(_dlt_load_id) from raw_erp.preferences_history)"
        connection.execute(
            f"insert into raw_erp.preferences_history select * from raw_erp.preferences_history "
            f"where _dlt_load_id = {last}"
        )
        connection.execute(
            "insert into raw_erp.time_activities select * from raw_erp.time_activities order by id limit 7"
        )
    (raw_db.parent / "dlt" / "billable_erp" / MARKER).touch()
    again = ingest(base_url, world, raw_db, "erp")
    assert again.returncode == 0, again.stderr[-3000:]
    realms = history[1]
    after = query(raw_db, "select count(*), count(distinct _dlt_load_id) from raw_erp.preferences_history")[0]
    assert after == (4 * realms, 4), f"history must keep every load's rows: {after}"
    assert f"removed {realms + 7} rows loaded twice" in again.stdout, again.stdout[-3000:]
    assert duplicate_keys(raw_db, "raw_erp") == dict.fromkeys(duplicate_keys(raw_db, "raw_erp"), 0)


# Faults 8 and 6: kill -9 in a load step, then a re-run --------------------------------------


def kill_in_load_step(victim: subprocess.Popen, load_dir: Path, stage: str, timeout_s: float = 240) -> bool:
    """kill -9 `victim` once a package of `load_dir` is in the load step (`stage`: "new" as soon as
    it is there, "completed" once a job of it is done). False if the run ended first."""
    deadline = time.monotonic() + timeout_s
    normalized = load_dir / "normalized"
    while time.monotonic() < deadline and victim.poll() is None:
        packages = list(normalized.iterdir()) if normalized.is_dir() else []
        if any(stage == "new" or any((package / "completed_jobs").glob("*")) for package in packages):
            victim.send_signal(signal.SIGKILL)
            victim.wait()
            return True
        time.sleep(0.003)
    return False


@pytest.mark.parametrize(("source", "stage"), [("crm", "new"), ("time", "completed"), ("erp", "completed")])
def test_kill_9_in_a_load_step_then_a_rerun_resumes_logs_every_source_and_equals_a_clean_load(
    world: Path, base_url: str, clean: Path, tmp_path: Path, source: str, stage: str
) -> None:
    raw_db = tmp_path / "raw.duckdb"
    victim = subprocess.Popen(
        ingest_command(raw_db, ALL),
        cwd=ROOT,
        env=ingest_env(base_url, world, BILLABLE_PROGRESS=""),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    load_dir = raw_db.parent / "dlt" / f"billable_{source}" / "load"
    assert kill_in_load_step(victim, load_dir, stage), f"the run ended before {source}'s load step"
    assert any((load_dir / "normalized").iterdir()), "the kill left a package to resume"

    rerun = ingest(base_url, world, raw_db, ALL)
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "resumed the load package" in rerun.stdout, rerun.stdout[-3000:]
    logged = query(
        raw_db,
        "select distinct source from ops.load_log where run_id = (select max(run_id) from ops.load_log) "
        "and status = 'loaded'",
    )
    assert sorted(name for (name,) in logged) == sorted(ALL.split(","))
    assert_equals_clean(raw_db, clean)
    # Every load of the ERP left its one row per realm in the append-only history, none removed.
    realms, rows, loads = query(
        raw_db,
        "select count(distinct realm_id), count(*), count(distinct _dlt_load_id) "
        "from raw_erp.preferences_history",
    )[0]
    assert rows == realms * loads and loads >= 1


def test_killed_between_the_first_extract_and_its_normalize_the_rerun_loads_the_package(
    world: Path, base_url: str, clean: Path, tmp_path: Path
) -> None:
    """The state a kill -9 left in a random-kill run (BILLABLE_KILL_SEED=811559369): a source's first
    run extracted its package, and dlt had not yet created its load folders. Every later run failed
    on the missing `load/normalized` folder, so the source never loaded again. The extract is made
    here by dlt itself, in a process of its own, then the loader runs as usual."""
    raw_db = tmp_path / "raw.duckdb"
    extract_only = (
        "import sys; from pathlib import Path; from ingestion.run import SOURCES, make_pipeline; "
        "entry = SOURCES['psa']; make_pipeline(entry, Path(sys.argv[1])).extract(entry.build())"
    )
    extracted = subprocess.run(
        [sys.executable, "-c", extract_only, str(raw_db)],
        cwd=ROOT,
        env=ingest_env(base_url, world, BILLABLE_PROGRESS=""),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert extracted.returncode == 0, extracted.stdout[-3000:] + extracted.stderr[-3000:]
    working = raw_db.parent / "dlt" / "billable_psa"
    assert any((working / "normalize" / "extracted").iterdir()), "an extracted package is left"
    assert not (working / "load").exists(), "dlt made no load folders yet"

    rerun = ingest(base_url, world, raw_db, "psa")
    assert rerun.returncode == 0, rerun.stdout[-3000:] + rerun.stderr[-3000:]
    assert "resumed the load package" in rerun.stdout, rerun.stdout[-3000:]
    got = {table: rows for table, rows in contents(raw_db).items() if table.startswith("raw_psa.")}
    want = {table: rows for table, rows in contents(clean).items() if table.startswith("raw_psa.")}
    assert sorted(got) == sorted(want) and want
    for table, rows in want.items():
        assert got[table] == rows, f"{table} differs from a clean load"


# Fault 11: unreachable systems --------------------------------------------------------------


def production_retries_env(world: Path, base_url: str) -> dict[str, str]:
    """The sandbox's settings with dlt's default retries (not the tests' fast ones)."""
    env = ingest_env(base_url, world, BILLABLE_PROGRESS="")
    for name in (
        "RUNTIME__REQUEST_BACKOFF_FACTOR",
        "RUNTIME__REQUEST_MAX_RETRY_DELAY",
        "RUNTIME__REQUEST_MAX_ATTEMPTS",
    ):
        env.pop(name, None)
    return env


def test_a_refused_connection_fails_in_seconds_naming_system_url_and_cause(
    world: Path, tmp_path: Path
) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    raw_db = tmp_path / "raw.duckdb"
    started = time.monotonic()
    result = subprocess.run(
        ingest_command(raw_db, "crm,erp"),
        cwd=ROOT,
        env=production_retries_env(world, closed),
        capture_output=True,
        text=True,
        timeout=150,
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 1
    log = dict(query(raw_db, "select source, error from ops.load_log where status = 'failed'"))
    assert sorted(log) == ["crm", "erp"]
    assert "Salesforce" in log["crm"] and "QuickBooks" in log["erp"]
    for source, error in log.items():
        assert closed in error and "refused" in error, (source, error)
        assert "\n" not in error
        assert f"{source}: FAILED" in result.stdout and error in result.stdout
    assert "query?" not in log["crm"] and "SELECT" not in log["crm"], "no query string in the message"
    durations = dict(query(raw_db, "select source, duration_s from ops.load_log where status = 'failed'"))
    assert max(durations.values()) < 10 and elapsed < 40, (durations, elapsed)


def test_an_unknown_host_is_named(world: Path, tmp_path: Path) -> None:
    host = "billable-no-such-host.invalid"
    raw_db = tmp_path / "raw.duckdb"
    result = subprocess.run(
        ingest_command(raw_db, "psa"),
        cwd=ROOT,
        env=production_retries_env(world, f"http://{host}"),
        capture_output=True,
        text=True,
        timeout=150,
    )
    assert result.returncode == 1
    [(error, duration)] = query(raw_db, "select error, duration_s from ops.load_log where status = 'failed'")
    assert "Kantata" in error and f"http://{host}/api/v1/" in error and "not found" in error, error
    assert duration < 10


def test_a_connection_nobody_accepts_fails_after_the_connect_timeout(monkeypatch: pytest.MonkeyPatch) -> None:
    """A listener whose backlog is full drops the SYN, as a firewall would: one connect timeout,
    no retries, the URL without its query string."""
    monkeypatch.setenv("RUNTIME__REQUEST_CONNECT_TIMEOUT", "1")
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        waiting = []
        for _ in range(3):  # fill the backlog; nobody accepts
            pending = socket.socket()
            pending.setblocking(False)
            pending.connect_ex(("127.0.0.1", port))
            waiting.append(pending)
        time.sleep(0.2)
        client = make_client(f"http://127.0.0.1:{port}", "token")
        started = time.monotonic()
        with pytest.raises(SystemUnreachable) as failure:
            client.get("/v2/users", params={"access_token": "secret"})
        elapsed = time.monotonic() - started
        for pending in waiting:
            pending.close()
    assert elapsed < 5, elapsed
    message = str(failure.value)
    assert f"http://127.0.0.1:{port}/v2/users" in message and "connect timeout" in message
    assert "secret" not in message
