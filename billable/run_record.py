"""Every pipeline run is one row of `ops.pipeline_runs` in the raw database, beside `ops.load_log`.

The row is written when the run starts (outcome `running`), brought up to date after every step
(its facts so far) and finished at the end (`succeeded` or `failed`, the failed step, its exit
code). A run killed outright (kill -9, a power cut) leaves `running` behind: the next run, which
holds the run lock and so knows no other run is alive, marks such rows `abandoned` and says so.
The warehouse reads the table through `stg_ops__pipeline_runs` (so the last build of a run sees
that run as `running`, with the facts of the steps before it); Pipeline health shows it.

DuckDB only (the default engine); on PostgreSQL and Spark the run is not recorded here and the
pipeline says so once.
"""

from __future__ import annotations

import json
import socket
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb

from billable import engine as engines
from billable.run_report import TOTALS, StepResult, totals

COLUMNS = {
    "run_id": "varchar",
    "mode": "varchar",  # world | live
    "origin": "varchar",  # the world folder, or "live"
    "started_at": "timestamp",  # UTC
    "finished_at": "timestamp",
    "outcome": "varchar",  # running | succeeded | failed | abandoned
    "failed_step": "varchar",
    "exit_code": "integer",
    "duration_s": "double",
    **{name: "bigint" for name in TOTALS},
    "steps": "varchar",  # JSON: [{name, exit_code, duration_s, facts, detail}]
    "log_path": "varchar",
    "message": "varchar",
    "pid": "integer",
    "host": "varchar",
}


def utc_now() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None)


@dataclass
class RunRecord:
    raw_db: Path
    run_id: str
    mode: str
    origin: str
    log_path: str
    started_at: datetime

    @property
    def enabled(self) -> bool:
        return engines.engine_name() == "duckdb"

    def _connect(self) -> duckdb.DuckDBPyConnection:
        self.raw_db.parent.mkdir(parents=True, exist_ok=True)
        connection = duckdb.connect(str(self.raw_db))
        connection.execute("create schema if not exists ops")
        columns = ", ".join(f"{name} {kind}" for name, kind in COLUMNS.items())
        connection.execute(f"create table if not exists ops.pipeline_runs ({columns})")
        for name, kind in COLUMNS.items():  # columns added later reach older tables
            connection.execute(f"alter table ops.pipeline_runs add column if not exists {name} {kind}")
        return connection

    def start(self) -> list[str]:
        """Mark the rows of runs that never finished `abandoned` and insert this run's; returns the
        abandoned run ids."""
        with self._connect() as connection:
            stale = connection.execute(
                "select run_id from ops.pipeline_runs where outcome = 'running' and run_id != ?",
                [self.run_id],
            ).fetchall()
            abandoned = [row[0] for row in stale]
            if abandoned:
                connection.execute(
                    "update ops.pipeline_runs set outcome = 'abandoned',"
                    " message = coalesce(message || '; ', '') || ? where outcome = 'running' and run_id != ?",
                    [
                        f"never finished (killed or the machine stopped); found by run {self.run_id}",
                        self.run_id,
                    ],
                )
            connection.execute(
                "insert into ops.pipeline_runs"
                " (run_id, mode, origin, started_at, outcome, log_path, pid, host)"
                " values (?, ?, ?, ?, 'running', ?, ?, ?)",
                [
                    self.run_id,
                    self.mode,
                    self.origin,
                    self.started_at,
                    self.log_path,
                    _pid(),
                    socket.gethostname(),
                ],
            )
        return abandoned

    def update(
        self,
        results: list[StepResult],
        outcome: str = "running",
        failed_step: str | None = None,
        exit_code: int | None = None,
        message: str | None = None,
    ) -> None:
        """The run's facts so far; with an outcome other than `running`, its end."""
        summed = totals(results)
        steps = [
            {
                "name": r.name,
                "exit_code": r.returncode,
                "duration_s": round(r.duration_s, 1),
                "facts": r.facts,
                "detail": r.detail,
            }
            for r in results
        ]
        finished = utc_now() if outcome != "running" else None
        duration = (finished - self.started_at).total_seconds() if finished else None
        assignments = ", ".join(f"{name} = ?" for name in TOTALS)
        with self._connect() as connection:
            connection.execute(
                f"update ops.pipeline_runs set {assignments}, steps = ?, outcome = ?, failed_step = ?,"
                " exit_code = ?, finished_at = ?, duration_s = ?, message = ? where run_id = ?",
                [
                    *(summed[name] for name in TOTALS),
                    json.dumps(steps),
                    outcome,
                    failed_step,
                    exit_code,
                    finished,
                    duration,
                    message,
                    self.run_id,
                ],
            )


def _pid() -> int:
    import os

    return os.getpid()
