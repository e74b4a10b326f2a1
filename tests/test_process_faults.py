"""Processes and services under faults (issue 13, faults 7, 10 and 12b), with real processes.

- 7: a port held by another world's sandbox is an error, never a source of that world's data;
- 10: kill -9 of the pipeline or of the transform takes its children (sandbox, loader, dbt) with
  it, and a new run stops a leftover an earlier run recorded;
- 12b: an invalid world.json is one line naming the file and the problem, exit 2.

Every process here is real (`python -m billable.pipeline`, `python -m sandbox serve`,
`python -m billable.transform` and its dbt), found with psutil and killed with SIGKILL.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import duckdb
import psutil
import pytest
import requests

from billable.dashboard_process import DashboardStartError, running_dashboard
from billable.sandbox_process import PortInUse, _wait_until_healthy, free_port, running_sandbox
from tests.ingest_helpers import FAST_RETRIES, ROOT, copy_world, generate_world, ingest, query

PY = sys.executable
PIPELINE = [PY, "-m", "billable.pipeline"]


@pytest.fixture(scope="module")
def worlds(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Two tiny worlds (A: seed 7, B: seed 8), generated once for the module; tests copy them."""
    folder = tmp_path_factory.mktemp("process_worlds")
    return {
        "A": generate_world(folder / "worldA", seed=7),
        "B": generate_world(folder / "worldB", seed=8),
    }


@pytest.fixture(scope="module")
def loaded_raw(worlds: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """World A's raw database, loaded once by the real loaders (for the transform tests)."""
    folder = tmp_path_factory.mktemp("process_raw")
    world = copy_world(worlds["A"], folder / "world")
    raw_db = folder / "raw.duckdb"
    with running_sandbox(world) as base_url:
        result = ingest(base_url, world, raw_db, "")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return raw_db


def spawn(command: list[str], **kwargs: object) -> subprocess.Popen:
    return subprocess.Popen(
        command,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, **FAST_RETRIES},
        **kwargs,
    )


def serve(world: Path, port: int) -> subprocess.Popen:
    """A sandbox started by hand (as an operator's `make sandbox` would be), healthy on `port`."""
    process = subprocess.Popen(
        [PY, "-m", "sandbox", "serve", "--world", str(world), "--port", str(port)],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,  # not a child that dies with the test: an independent server
    )
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        assert process.poll() is None, "the hand-started sandbox exited"
        try:
            if requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=1).ok:
                return process
        except requests.RequestException:
            pass
        time.sleep(0.1)
    process.kill()
    raise AssertionError("the hand-started sandbox never became healthy")


@pytest.fixture
def sandbox_a(worlds: dict[str, Path], tmp_path: Path) -> Iterator[tuple[Path, int]]:
    world = copy_world(worlds["A"], tmp_path / "worldA")
    port = free_port()
    process = serve(world, port)
    try:
        yield world, port
    finally:
        process.kill()
        process.wait()


def wait_for(condition: Callable[[], object], timeout_s: float, what: str) -> object:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def descendants(pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def command_of(process: psutil.Process) -> str:
    try:
        return " ".join(process.cmdline())
    except psutil.Error:
        return ""


def alive(processes: list[psutil.Process]) -> list[str]:
    """The processes still running (same pid *and* start time), described; zombies count as gone."""
    left = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                left.append(f"{process.pid}: {command_of(process)[:160]}")
        except psutil.NoSuchProcess:
            pass
    return left


def kill_all(processes: list[psutil.Process]) -> None:
    """Clean up whatever a failing test left behind, so one failure does not poison the next."""
    for process in processes:
        with contextlib.suppress(psutil.Error):
            process.kill()


def one_line(stderr: str) -> str:
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    assert len(lines) == 1, stderr
    return lines[0]


# --- fault 7: a port held by another world's sandbox -------------------------------------------


def test_pipeline_refuses_a_port_held_by_another_worlds_sandbox(
    sandbox_a: tuple[Path, int], worlds: dict[str, Path], tmp_path: Path
) -> None:
    """Before: exit 0 and 8,305 of world A's rows loaded into B's raw DB. After: exit 2, 0 rows."""
    world_a, port = sandbox_a
    world_b = copy_world(worlds["B"], tmp_path / "worldB")
    raw_db = tmp_path / "b" / "raw.duckdb"
    started = time.monotonic()
    result = subprocess.run(
        [
            *PIPELINE,
            "--world",
            str(world_b),
            "--port",
            str(port),
            "--only",
            "ingest",
            "--raw-db",
            str(raw_db),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, **FAST_RETRIES},
    )
    elapsed = time.monotonic() - started
    assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
    assert elapsed < 20, f"took {elapsed:.1f} s"
    message = one_line(result.stderr)
    assert f"port {port}" in message and str(world_a.resolve()) in message, message
    loaded = query(raw_db, "select count(*) from information_schema.tables") if raw_db.exists() else [(0,)]
    assert not raw_db.exists() or loaded == [(0,)], loaded
    # world A's sandbox was left alone
    assert requests.get(f"http://127.0.0.1:{port}/_sandbox/health", timeout=2).ok


def test_sandbox_serve_names_the_world_holding_its_port(
    sandbox_a: tuple[Path, int], worlds: dict[str, Path], tmp_path: Path
) -> None:
    """The sandbox itself: a port in use is one line naming the port and the world served there."""
    world_a, port = sandbox_a
    world_b = copy_world(worlds["B"], tmp_path / "worldB")
    result = subprocess.run(
        [PY, "-m", "sandbox", "serve", "--world", str(world_b), "--port", str(port)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 2, result.stderr
    message = one_line(result.stderr)
    assert f"port {port}" in message and str(world_a.resolve()) in message, message


def test_running_sandbox_checks_it_is_the_one_it_started(
    sandbox_a: tuple[Path, int], worlds, tmp_path
) -> None:
    """The helper never yields another server's URL, and its own sandbox names its instance."""
    world_a, port = sandbox_a
    world_b = copy_world(worlds["B"], tmp_path / "worldB")
    with pytest.raises(PortInUse) as raised, running_sandbox(world_b, port=port, timeout_s=30):
        pass
    assert f"port {port}" in str(raised.value) and str(world_a.resolve()) in str(raised.value)
    # The check after the start, for a port taken between the look and the bind: a healthy answer
    # with another instance id is refused at once (a stand-in child that never binds anything).
    stand_in = subprocess.Popen([PY, "-c", "import time; time.sleep(60)"])
    try:
        started = time.monotonic()
        with pytest.raises(
            PortInUse, match=f"port {port} is in use by a sandbox serving {world_a.resolve()}"
        ):
            _wait_until_healthy(stand_in, f"http://127.0.0.1:{port}", "not-its-id", tmp_path / "log", 30)
        assert time.monotonic() - started < 5
        assert stand_in.wait(timeout=10) is not None  # the child that lost the port is stopped
    finally:
        stand_in.kill()
        stand_in.wait()
    with running_sandbox(world_b) as base_url:
        health = requests.get(f"{base_url}/_sandbox/health", timeout=2).json()
    assert health["world"] == str(world_b.resolve())
    assert health["instance"] and health["pid"] != os.getpid()


def test_dashboard_refuses_a_port_in_use(sandbox_a: tuple[Path, int], tmp_path: Path) -> None:
    """The dashboard helper had the same pattern: any server answering its health URL passed."""
    world_a, port = sandbox_a
    started = time.monotonic()
    dashboard = running_dashboard(tmp_path / "none.duckdb", tmp_path / "dash.log", timeout_s=60, port=port)
    with pytest.raises(DashboardStartError) as raised, dashboard:
        pass
    assert f"port {port}" in str(raised.value) and str(world_a.resolve()) in str(raised.value)
    assert time.monotonic() - started < 10


# --- fault 10: kill -9 of a parent takes its children with it ----------------------------------


def test_kill_9_of_the_pipeline_leaves_no_child_running(worlds: dict[str, Path], tmp_path: Path) -> None:
    """Before: the sandbox and the loader kept running after the pipeline's kill -9. After: none."""
    world = copy_world(worlds["A"], tmp_path / "world")
    raw_db = tmp_path / "data" / "raw.duckdb"
    pipeline = spawn(
        [PY, "-m", "billable.pipeline", "--world", str(world), "--port", "0", "--raw-db", str(raw_db)]
    )
    seen: list[psutil.Process] = []
    try:

        def sandbox_and_loader() -> bool:
            seen[:] = descendants(pipeline.pid)
            commands = [command_of(process) for process in seen]
            return any("sandbox serve" in c for c in commands) and any("-m ingestion" in c for c in commands)

        wait_for(sandbox_and_loader, 60, "the pipeline's sandbox and loader")
        seen[:] = descendants(pipeline.pid)  # grandchildren too, as of the kill
        pipeline.send_signal(signal.SIGKILL)
        pipeline.wait(timeout=10)
        deadline = time.monotonic() + 5
        while alive(seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive(seen) == [], f"orphans after kill -9 of the pipeline: {alive(seen)}"
        if raw_db.exists():  # what the next run needs: nobody holds the raw database's write lock
            duckdb.connect(str(raw_db)).close()
    finally:
        kill_all([*seen])
        if pipeline.poll() is None:
            pipeline.kill()
        pipeline.communicate()


def test_kill_9_of_the_transform_takes_dbt_with_it(loaded_raw: Path, tmp_path: Path) -> None:
    """Before: dbt kept building after the transform's kill -9. After: dbt is gone within seconds."""
    out = tmp_path / "wh"
    transform = spawn(
        [
            *(PY, "-m", "billable.transform", "--raw-db", str(loaded_raw)),
            *("--warehouse", str(out / "warehouse.duckdb"), "--build-dir", str(out / "build")),
        ]
    )
    seen: list[psutil.Process] = []
    try:

        def dbt_running() -> bool:
            seen[:] = descendants(transform.pid)
            return any(" build " in f" {command_of(process)} " for process in seen)

        wait_for(dbt_running, 60, "the transform's dbt build")
        working_db = out / "build" / "warehouse.duckdb"
        wait_for(working_db.exists, 120, "dbt to open the working warehouse")  # building, not parsing
        seen[:] = descendants(transform.pid)
        transform.send_signal(signal.SIGKILL)
        transform.wait(timeout=10)
        deadline = time.monotonic() + 5
        while alive(seen) and time.monotonic() < deadline:
            time.sleep(0.1)
        assert alive(seen) == [], f"orphans after kill -9 of the transform: {alive(seen)}"
        # What the next transform needs: nobody holds the working warehouse's write lock.
        duckdb.connect(str(working_db)).close()
    finally:
        kill_all(seen)
        if transform.poll() is None:
            transform.kill()
        transform.communicate()


def test_a_new_run_stops_a_leftover_child_of_an_earlier_run(worlds: dict[str, Path], tmp_path: Path) -> None:
    """A child an earlier run recorded and that still runs (here: its sandbox, on the port the
    new run wants) is named in one line and stopped before the new run starts its own."""
    world = copy_world(worlds["A"], tmp_path / "world")
    data = tmp_path / "data"
    data.mkdir()
    port = free_port()
    leftover = serve(world, port)
    try:
        record = psutil.Process(leftover.pid)
        (data / "daily.children.json").write_text(
            json.dumps(
                [{"pid": record.pid, "create_time": record.create_time(), "name": "sandbox", "command": "x"}]
            )
        )
        result = subprocess.run(
            [
                *(*PIPELINE, "--world", str(world), "--port", str(port), "--only", "ingest"),
                *("--sources", "crm", "--raw-db", str(data / "raw.duckdb")),
            ],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=300,
            env={**os.environ, **FAST_RETRIES},
        )
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
        assert f"leftover of an earlier run (pid {leftover.pid}" in result.stdout + result.stderr
        assert leftover.wait(timeout=10) is not None
        assert json.loads((data / "daily.children.json").read_text()) == []
    finally:
        if leftover.poll() is None:
            leftover.kill()
        leftover.wait()


# --- fault 12b: an invalid world.json ----------------------------------------------------------


def _bad_json(meta: dict) -> str:
    return json.dumps(meta, indent=2)[:-30] + "\n"


def _missing_clock(meta: dict) -> str:
    return json.dumps({key: value for key, value in meta.items() if key != "clock"}, indent=2)


def _entity_without_realm(meta: dict) -> str:
    entities = [{k: v for k, v in entity.items() if k != "realm_id"} for entity in meta["legal_entities"]]
    return json.dumps({**meta, "legal_entities": entities}, indent=2)


def _not_an_object(meta: dict) -> str:
    return "[]\n"


BROKEN = {
    "bad JSON": (_bad_json, "not valid JSON: "),
    "missing key": (_missing_clock, "'clock'"),
    "legal entity without realm_id": (_entity_without_realm, "realm_id"),
    "not an object": (_not_an_object, "JSON object"),
}


@pytest.mark.parametrize("case", list(BROKEN))
def test_an_invalid_world_json_is_one_line_and_exit_2(
    case: str, worlds: dict[str, Path], tmp_path: Path
) -> None:
    """Before: the pipeline printed a SandboxStartError / KeyError traceback (exit 1), and the
    sandbox served a world without realm ids. After: one line naming world.json and why, exit 2."""
    world = tmp_path / "world"
    shutil.copytree(worlds["A"], world)
    meta_path = world / "world.json"
    break_it, reason = BROKEN[case]
    meta_path.write_text(break_it(json.loads(meta_path.read_text())))
    raw_db = tmp_path / "data" / "raw.duckdb"
    for command in (
        [*PIPELINE, "--world", str(world), "--port", "0", "--only", "ingest", "--raw-db", str(raw_db)],
        [PY, "-m", "sandbox", "serve", "--world", str(world), "--port", "0"],
    ):
        result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=60)
        assert result.returncode == 2, (command, result.stdout[-2000:], result.stderr[-2000:])
        message = one_line(result.stderr)
        assert str(meta_path) in message and reason in message, message
    assert not raw_db.exists()
