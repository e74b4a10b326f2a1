"""One pipeline run as a person reads it: its log file, its ops row, its alerts, its step lines.

billable.pipeline decides what runs; a `RunSession` runs each step (billable.run_log: the child's
full output to the run's log file), reads the step's facts from where the step records them
(billable.run_report), keeps the run's row in `ops.pipeline_runs` current (billable.run_record),
and at the end prints the summary table and sends the alerts (billable.alerting). The console
gets one line when a step starts and one when it ends, with its duration and facts; a failed step
adds its last lines and the log file's path, on stderr, so cron mail carries them.
"""

from __future__ import annotations

import secrets
import sqlite3
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import duckdb

from billable.alerting import Alerts
from billable.child_process import ChildRecord
from billable.run_log import TAIL_LINES, RunLog
from billable.run_record import RunRecord, utc_now
from billable.run_report import Marks, Places, StepResult, facts_for, summary_table


def new_run_id() -> str:
    return datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ") + "-" + secrets.token_hex(3)


class RunSession:
    def __init__(
        self,
        label: str,
        raw_db: Path,
        log_dir: Path,
        keep_logs: int,
        echo: bool,
        alerts: Alerts,
        children: ChildRecord,
        mode: str,
        origin: str,
    ) -> None:
        self.label = label
        self.run_id = new_run_id()
        self.places = Places.beside(raw_db)
        self.children = children
        self.alerts = alerts
        self.started = time.monotonic()
        self.log = RunLog(log_dir, self.run_id, keep_logs, echo)
        self.record = RunRecord(raw_db, self.run_id, mode, origin, str(self.log.path), utc_now())
        self.recording = False
        self.results: list[StepResult] = []
        self.failed_step: str | None = None
        self.problems: list[str] = []  # what stopped the run, for the alert and ops
        self.say(f"run {self.run_id}; full output in {self.log.path}")
        problem = self.alerts.ping_start()
        if problem:
            self.say(f"alert: {problem} (the run goes on)", error=True)

    def say(self, line: str, *, error: bool = False) -> None:
        """A line of the pipeline's own: to the console and the log file."""
        text = f"{self.label}: {line}"
        print(text, file=sys.stderr if error else sys.stdout, flush=True)
        self.log.note(text)

    def stopped(self, line: str) -> None:
        """A problem that stops the run before or between steps (the console line says it)."""
        self.problems.append(line)
        self.say(line, error=True)

    def begin_record(self) -> None:
        """Start the run's ops row, once the raw database is known to be this origin's."""
        if not self.record.enabled:
            self.say("the run is recorded in ops.pipeline_runs on DuckDB only; not on this engine")
            return
        try:
            abandoned = self.record.start()
        except duckdb.Error as err:
            self.say(f"warning: could not record the run in {self.places.raw_db}: {err}", error=True)
            return
        self.recording = True
        for run_id in abandoned:
            self.say(
                f"run {run_id} never finished (killed?); marked abandoned in ops.pipeline_runs", error=True
            )

    def step(self, name: str, command: list[str], env: dict[str, str]) -> int:
        """Run one step; its exit code."""
        marks = Marks(self.places)
        before: dict[str, object] = {"started_utc": utc_now() - timedelta(seconds=1)}
        try:
            before["load_runs"] = marks.load_runs() if name.startswith("ingest") else set()
            before["sync_runs"] = marks.sync_runs() if name == "sync" else set()
        except (duckdb.Error, sqlite3.Error) as err:  # held by another program: no facts, the step runs
            before["unreadable"] = f"{type(err).__name__}: {str(err).splitlines()[0][:160]}"
        print(f"{self.label}: {name} …", flush=True)
        started = time.monotonic()
        returncode, tail = self.log.run(name, command, env, self.children)
        facts, detail = facts_for(name, self.places, before)
        result = StepResult(name, returncode, time.monotonic() - started, facts, detail)
        self.results.append(result)
        self.say(result.line(), error=returncode != 0)
        if returncode != 0:
            self.failed_step = name
            self.problems.append(f"step {name!r} FAILED with exit code {returncode}")
            lines = [f"{self.label}: step {name!r} FAILED with exit code {returncode}"]
            lines.append(
                f"{self.label}: its last {min(len(tail), TAIL_LINES)} lines (all of it in {self.log.path}):"
            )
            lines += [f"  | {line}" for line in tail]
            print("\n".join(lines), file=sys.stderr, flush=True)
        self._update()
        return returncode

    def _update(self, **end: object) -> None:
        if not self.recording:
            return
        try:
            self.record.update(self.results, **end)  # type: ignore[arg-type]
        except duckdb.Error as err:
            self.say(f"warning: could not update the run's row in ops.pipeline_runs: {err}", error=True)

    def finish(self, code: int, ending: str) -> int:
        """Print the summary, finish the ops row, send the alerts; returns `code`."""
        duration = time.monotonic() - self.started
        outcome = "succeeded" if code == 0 else "failed"
        table = summary_table(self.label, self.results, outcome, duration)
        print(table, flush=True)
        self.log.note(table)
        message = "; ".join(self.problems) or None
        self._update(outcome=outcome, failed_step=self.failed_step, exit_code=code, message=message)
        if code == 0:
            self.say(ending)
        else:
            # on stdout: stderr already names the problem (one line for a configuration error)
            self.say(f"FAILED (exit {code}) after {duration:.1f} s; full output in {self.log.path}")
        title = f"Billable {self.label} run {self.run_id} " + (
            "succeeded"
            if code == 0
            else f"FAILED (exit {code})" + (f" at {self.failed_step}" if self.failed_step else "")
        )
        text = "\n".join(
            [*self.problems, *(result.line() for result in self.results), f"log: {self.log.path}"]
        )
        for problem in self.alerts.finish(code == 0, title, text):
            self.say(f"alert: {problem} (the run's outcome stands)", error=True)
        self.log.close()
        return code
