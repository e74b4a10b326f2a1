"""A run a person can read (issue 18): the console's step lines and summary against the databases,
the run's log file and its rotation, ops.pipeline_runs for a run that succeeded, failed or was
killed, the webhook and healthcheck alerts received by a real local HTTP server, the stale-data
warning in a real browser, and `make help` with its variables expanded.

One real pipeline run of the tiny world (sandbox over HTTP, the loaders, dbt, the sync) serves the
read-only checks; the failing and killed runs are short runs of their own on fresh data folders.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import signal
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest

from tests.dashboard_helpers import CHROMIUM, CHROMIUM_ARGS, PAGES, running_dashboard, wait_for_app
from tests.ingest_helpers import ROOT

STEPS = ("ingest", "transform", "sync", "ingest-erp", "transform-after-sync")
DBT_NODE_LINE = re.compile(r"\d+ of \d+ (START|OK|PASS)")


@dataclass(frozen=True)
class Run:
    data: Path
    world: Path
    result: subprocess.CompletedProcess


def pipeline(world: Path, data: Path, *extra: str, env: dict[str, str] | None = None, timeout: float = 1800):
    command = [sys.executable, "-m", "billable.pipeline", "--world", str(world), "--port", "0"]
    command += ["--raw-db", str(data / "raw.duckdb"), *extra]
    return subprocess.run(
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        capture_output=True,
        text=True,
        check=False,
        timeout=timeout,
    )


def rows(path: Path, sql: str, *params) -> list[tuple]:
    with duckdb.connect(str(path), read_only=True) as connection:
        return connection.execute(sql, list(params)).fetchall()


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("runlog") / "tiny"
    command = [
        sys.executable,
        "-m",
        "sandbox",
        "generate",
        "--preset",
        "tiny",
        "--seed",
        "7",
        "--out",
        str(out),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False, timeout=600)
    assert result.returncode == 0, result.stderr
    return out


def fresh_world(world: Path, folder: Path) -> Path:
    copy = folder / "world"  # the sync writes to the world's ERP: each run gets its own copy
    shutil.copytree(world, copy)
    return copy


@pytest.fixture(scope="module")
def tiny_run(world: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    folder = tmp_path_factory.mktemp("tiny_run")
    data = folder / "data"
    logs = data / "logs"
    logs.mkdir(parents=True)
    for day in (1, 2, 3):  # three older runs' logs; with 2 kept, the two oldest must go
        (logs / f"pipeline-2000010{day}T000000Z-00000{day}.log").write_text(f"old run {day}\n")
    copy = fresh_world(world, folder)
    result = pipeline(copy, data, "--console", "readable", env={"BILLABLE_RUN_LOGS_KEEP": "2"})
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-4000:]
    return Run(data, copy, result)


def step_line(stdout: str, step: str) -> str:
    found = [line for line in stdout.splitlines() if line.startswith(f"pipeline: {step} done in ")]
    assert len(found) == 1, stdout
    return found[0]


def number(pattern: str, text: str) -> int:
    match = re.search(pattern, text)
    assert match, f"{pattern!r} not in {text!r}"
    return int(match.group(1).replace(",", ""))


def test_the_console_is_short_and_each_step_says_its_facts(tiny_run: Run) -> None:
    stdout = tiny_run.result.stdout
    assert len(stdout.splitlines()) < 40, stdout
    assert not DBT_NODE_LINE.search(stdout), "dbt's node lines belong in the log file"
    assert "Extract" not in stdout, "dlt's progress belongs in the log file"
    for step in STEPS:
        assert re.search(r" done in \d+\.\d s", step_line(stdout, step))
    summary = stdout[stdout.index("pipeline: summary") :]
    for step in STEPS:
        assert re.search(rf"^{re.escape(step)}\s+ok\s+\d+\.\d", summary, re.MULTILINE), summary
    assert re.search(r"^run\s+succeeded", summary, re.MULTILINE)


def test_rows_loaded_are_the_load_log_and_the_raw_tables(tiny_run: Run) -> None:
    raw = tiny_run.data / "raw.duckdb"
    line = step_line(tiny_run.result.stdout, "ingest")
    first_run = rows(raw, "select min(run_id) from ops.load_log")[0][0]
    logged = dict(
        rows(
            raw,
            "select source, sum(rows) from ops.load_log where run_id = ? and table_name != 'quarantine'"
            " and status = 'loaded' group by source",
            first_run,
        )
    )
    assert logged, "the first ingest should have logged rows"
    for source, count in logged.items():
        assert number(rf"\b{source} ([\d,]+)", line) == count
    assert number(r"([\d,]+) rows loaded", line) == sum(logged.values())
    # The CRM is loaded once a run (ingest-erp loads the ERP only): its tables hold what it loaded.
    tables = rows(
        raw,
        "select table_name from information_schema.tables where table_schema = 'raw_crm'"
        " and table_name not like '\\_dlt%' escape '\\' and table_name != 'quarantine'",
    )
    in_raw = sum(rows(raw, f'select count(*) from raw_crm."{name}"')[0][0] for (name,) in tables)
    assert number(r"\bcrm ([\d,]+)", line) == in_raw
    quarantined = rows(
        raw,
        "select coalesce(sum(rows), 0) from ops.load_log where run_id = ? and table_name = 'quarantine'",
        first_run,
    )[0][0]
    assert number(r"([\d,]+) quarantined", line) == quarantined


def test_tests_passed_are_dbt_run_results(tiny_run: Run) -> None:
    results = json.loads((tiny_run.data / "build" / "target" / "run_results.json").read_text())
    outcomes = [r["status"] for r in results["results"] if r["unique_id"].startswith("test.")]
    built = [
        r for r in results["results"] if r["unique_id"].startswith("model.") and r["status"] == "success"
    ]
    line = step_line(tiny_run.result.stdout, "transform-after-sync")  # the last build wrote run_results
    assert outcomes, "the build should have run data tests"
    assert number(r"tests ([\d,]+) passed", line) == outcomes.count("pass")
    assert number(r"([\d,]+) warned", line) == outcomes.count("warn")
    assert number(r"([\d,]+) models built", line) == len(built)


def test_lines_synced_are_the_ledgers(tiny_run: Run) -> None:
    with sqlite3.connect(tiny_run.data / "ledger.sqlite") as ledger:
        acknowledged, deleted, rejected = ledger.execute(
            "select lines_acknowledged, lines_deleted, lines_rejected from sync_runs"
        ).fetchone()
    line = step_line(tiny_run.result.stdout, "sync")
    assert acknowledged > 0
    assert number(r"([\d,]+) lines synced", line) == acknowledged + deleted
    assert number(r"([\d,]+) rejected", line) == rejected


def test_exceptions_opened_are_the_builds_episodes(tiny_run: Run) -> None:
    warehouse = tiny_run.data / "warehouse.duckdb"
    first_build = rows(warehouse, "select dbt_invocation_id from ops.transform_runs order by started_at")[0][
        0
    ]
    opened = rows(
        warehouse,
        "select count(*) from marts.exception_history where first_detected_invocation_id = ?",
        first_build,
    )[0][0]
    assert opened > 0, "the tiny world should raise some exceptions"
    assert number(r"exceptions ([\d,]+) opened", step_line(tiny_run.result.stdout, "transform")) == opened
    # a fresh warehouse: the run's builds opened every episode there is, and resolved what is resolved
    total, resolved = rows(warehouse, "select count(*), count(resolved_at) from marts.exception_history")[0]
    totals = tiny_run.result.stdout.splitlines()[-2]
    assert number(r"exceptions ([\d,]+) opened", totals) == total
    assert number(r"([\d,]+) resolved", totals) == resolved


def test_the_run_is_a_row_in_ops_with_its_facts(tiny_run: Run) -> None:
    raw = tiny_run.data / "raw.duckdb"
    (row,) = rows(
        raw,
        "select outcome, exit_code, failed_step, finished_at is not null, rows_loaded, lines_synced,"
        " tests_passed, log_path, steps from ops.pipeline_runs",
    )
    outcome, code, failed, finished, loaded, synced, passed, log_path, steps = row
    assert (outcome, code, failed, finished) == ("succeeded", 0, None, True)
    assert loaded == rows(raw, "select sum(rows) from ops.load_log where table_name != 'quarantine'")[0][0]
    summary = tiny_run.result.stdout[tiny_run.result.stdout.index("pipeline: summary") :]
    assert number(r"([\d,]+) lines synced", summary.splitlines()[-2]) == synced
    assert passed == sum(step["facts"].get("tests_passed", 0) for step in json.loads(steps))
    assert Path(log_path).is_file()


def test_the_log_file_has_the_detail_and_rotation_keeps_two(tiny_run: Run) -> None:
    logs = sorted((tiny_run.data / "logs").glob("pipeline-*.log"))
    assert logs[0].name == "pipeline-20000103T000000Z-000003.log", logs
    assert len(logs) == 2
    detail = logs[-1].read_text()
    assert logs[-1].name in tiny_run.result.stdout
    assert DBT_NODE_LINE.search(detail), "dbt's node lines go to the log"
    assert "--- step ingest" in detail and "--- step transform-after-sync exited 0" in detail
    assert "sync: succeeded" in detail


class Receiver(ThreadingHTTPServer):
    """A real HTTP server recording every request (method, path, body)."""

    def __init__(self) -> None:
        self.received: list[tuple[str, str, bytes]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_POST(handler) -> None:
                body = handler.rfile.read(int(handler.headers.get("Content-Length") or 0))
                self.received.append(("POST", handler.path, body))
                handler.send_response(200)
                handler.end_headers()
                handler.wfile.write(b"ok")

            def log_message(handler, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    server = Receiver()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_failed_step_posts_the_webhook_and_pings_start_and_fail(
    world: Path, tmp_path: Path, receiver: Receiver
) -> None:
    secret = "T" + os.urandom(8).hex()  # the webhook URL's secret part, made up now
    env = {
        "BILLABLE__ALERTS__WEBHOOK_URL": f"{receiver.url}/services/{secret}",
        "BILLABLE__ALERTS__HEALTHCHECK_URL": f"{receiver.url}/ping/check-1",
    }
    data = tmp_path / "data"
    # The sync with nothing published: a real step that fails (exit 2, no warehouse).
    result = pipeline(fresh_world(world, tmp_path), data, "--console", "readable", "--only", "sync", env=env)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "pipeline: step 'sync' FAILED with exit code 2" in result.stderr
    assert re.search(r"\|.*sync: .*warehouse", result.stderr), "the failing step's last lines"
    (log,) = (data / "logs").glob("pipeline-*.log")
    assert str(log) in result.stderr
    paths = [path for _, path, _ in receiver.received]
    assert paths == ["/ping/check-1/start", "/ping/check-1/fail", f"/services/{secret}"], paths
    message = json.loads(receiver.received[2][2])
    assert "FAILED (exit 2) at sync" in message["text"] and message["summary"] and message["title"]
    assert "step 'sync' FAILED with exit code 2" in message["text"]
    assert secret not in result.stdout + result.stderr + log.read_text()
    (row,) = rows(
        data / "raw.duckdb", "select outcome, failed_step, exit_code, log_path from ops.pipeline_runs"
    )
    assert row == ("failed", "sync", 2, str(log))


def test_an_alert_that_cannot_be_sent_does_not_change_the_outcome(world: Path, tmp_path: Path) -> None:
    env = {"BILLABLE__ALERTS__HEALTHCHECK_URL": "http://127.0.0.1:9/ping/nobody-listens"}
    result = pipeline(fresh_world(world, tmp_path), tmp_path / "data", "--only", "sync", env=env)
    assert result.returncode == 2, result.stdout + result.stderr  # the step's code, not the alert's
    assert "alert: healthcheck start ping to http://127.0.0.1:9/… failed" in result.stderr
    assert "nobody-listens" not in result.stdout + result.stderr


def test_a_bad_alert_setting_stops_before_work(world: Path, tmp_path: Path) -> None:
    result = pipeline(world, tmp_path / "data", env={"BILLABLE__ALERTS__ON": "sometimes"})
    assert result.returncode == 2
    assert "billable.alerts.on (BILLABLE__ALERTS__ON) must be one of failure, always" in result.stderr
    assert not (tmp_path / "data" / "raw.duckdb").exists()


def test_a_killed_run_is_marked_abandoned_by_the_next(world: Path, tmp_path: Path) -> None:
    data = tmp_path / "data"
    copy = fresh_world(world, tmp_path)
    command = [sys.executable, "-m", "billable.pipeline", "--world", str(copy), "--port", "0"]
    command += ["--raw-db", str(data / "raw.duckdb"), "--only", "ingest"]
    process = subprocess.Popen(command, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 300
    while True:  # killed once the ingest step runs (its row exists by then)
        logs = list((data / "logs").glob("pipeline-*.log")) if (data / "logs").exists() else []
        if logs and "--- step ingest" in logs[0].read_text():
            break
        assert process.poll() is None, "the run ended before it could be killed"
        assert time.monotonic() < deadline, "the ingest step never started"
        time.sleep(0.2)
    killed_run = logs[0].name.removeprefix("pipeline-").removesuffix(".log")
    os.kill(process.pid, signal.SIGKILL)
    process.wait(timeout=30)
    result = pipeline(copy, data, "--only", "sync")  # fails fast: nothing published
    assert f"run {killed_run} never finished (killed?); marked abandoned" in result.stderr
    found = dict(rows(data / "raw.duckdb", "select run_id, outcome from ops.pipeline_runs"))
    assert found[killed_run] == "abandoned"
    assert sorted(found.values()) == ["abandoned", "failed"]


def test_make_help_expands_its_variables() -> None:
    result = subprocess.run(["make", "help"], cwd=ROOT, capture_output=True, text=True, check=True)
    assert "$(" not in result.stdout
    assert "http://127.0.0.1:8800" in result.stdout and "http://localhost:8501" in result.stdout
    assert "make docs" in result.stdout


def test_make_docs_says_when_nothing_is_published(tmp_path: Path) -> None:
    command = [
        sys.executable,
        "-m",
        "billable.docs_server",
        "--warehouse",
        str(tmp_path / "warehouse.duckdb"),
    ]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 2
    assert result.stdout.strip().count("\n") == 0 and "nothing is published" in result.stdout


# --- the stale-data warning, in a real browser -------------------------------------------------------

playwright_api = pytest.importorskip("playwright.sync_api")
needs_chromium = pytest.mark.skipif(not Path(CHROMIUM).exists(), reason=f"{CHROMIUM} is not installed")


def page_text(warehouse: Path, tmp_path: Path, name: str) -> str:
    with (
        running_dashboard(warehouse, tmp_path / "streamlit.log") as base_url,
        playwright_api.sync_playwright() as playwright,
    ):
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            page = browser.new_page(viewport={"width": 1440, "height": 1000})
            page.goto(f"{base_url}/{PAGES[name][0]}")
            wait_for_app(page)
            return page.locator('[data-testid="stMain"]').inner_text()
        finally:
            browser.close()


@needs_chromium
def test_fresh_data_has_no_stale_warning_and_pipeline_health_shows_the_run(
    tiny_run: Run, tmp_path: Path
) -> None:
    text = page_text(tiny_run.data / "warehouse.duckdb", tmp_path, "pipeline_health")
    assert "The data is stale" not in text
    (run_id,) = rows(tiny_run.data / "raw.duckdb", "select run_id from ops.pipeline_runs")[0]
    assert f"Run {run_id}" in text, text[:3000]  # the last build saw its own run, still running
    assert "Runs (make daily, make pipeline)" in text


@needs_chromium
def test_old_data_warns_on_every_page_with_its_age_and_publish_time(tiny_run: Run, tmp_path: Path) -> None:
    folder = tmp_path / "old"
    folder.mkdir()
    shutil.copyfile(tiny_run.data / "warehouse.duckdb", folder / "warehouse.duckdb")
    metadata = json.loads((tiny_run.data / "warehouse.json").read_text())
    published = datetime.now(UTC) - timedelta(hours=50)
    metadata["published_at"] = published.isoformat(timespec="seconds")
    (folder / "warehouse.json").write_text(json.dumps(metadata))
    for name in ("overview", "pipeline_health"):
        text = page_text(folder / "warehouse.duckdb", tmp_path, name)
        assert "The data is stale" in text, text[:2000]
        assert "50 hours old" in text and f"published {published:%Y-%m-%d %H:%M} UTC" in text
