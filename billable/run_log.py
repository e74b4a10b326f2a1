"""The run's log file: every child's full output (dlt's progress, dbt's node lines) in one file
per run under `data/logs/`, the last N kept (`BILLABLE_RUN_LOGS_KEEP`, default 30).

The console shows a person the step lines and the summary (billable.run_report); the detail is
here, one file per run, named after the run id (`pipeline-<run id>.log`), so the console can
name it on failure and print the failing step's last lines. With `--console full` the children's
output is also passed through to the console (stdout to stdout, stderr to stderr), as before.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path
from typing import IO, TextIO

from billable.child_process import ChildRecord, die_with_parent

KEEP_ENV = "BILLABLE_RUN_LOGS_KEEP"
DEFAULT_KEEP = 30
TAIL_LINES = 30
PREFIX = "pipeline-"


def keep_from_env(environ: dict[str, str] | None = None) -> int:
    """How many run logs to keep; ValueError naming the variable when it is not a whole number >= 1."""
    raw = (environ if environ is not None else os.environ).get(KEEP_ENV, "").strip()
    if not raw:
        return DEFAULT_KEEP
    try:
        keep = int(raw)
    except ValueError:
        keep = 0
    if keep < 1:
        raise ValueError(f"{KEEP_ENV} must be a whole number of log files >= 1, got {raw!r}")
    return keep


def rotate(folder: Path, keep: int) -> list[Path]:
    """Delete the oldest run logs so that `keep - 1` remain (room for the new one); those deleted."""
    logs = sorted(folder.glob(f"{PREFIX}*.log"))  # run ids start with a UTC timestamp: name order is age
    doomed = logs[: max(0, len(logs) - (keep - 1))]
    for path in doomed:
        path.unlink(missing_ok=True)
    return doomed


class RunLog:
    """One run's log file; `run` starts a step as a child and copies its output here."""

    def __init__(self, folder: Path, run_id: str, keep: int, echo: bool) -> None:
        folder.mkdir(parents=True, exist_ok=True)
        rotate(folder, keep)
        self.path = folder / f"{PREFIX}{run_id}.log"
        self.echo = echo
        self._file: TextIO = self.path.open("a", encoding="utf-8", errors="replace")
        self._lock = threading.Lock()

    def close(self) -> None:
        self._file.close()

    def note(self, line: str) -> None:
        """A line of the pipeline's own (what the console said), stamped, in the file."""
        stamp = datetime.now(UTC).strftime("%H:%M:%S")
        with self._lock:
            self._file.write(f"[{stamp}] {line}\n")
            self._file.flush()

    def run(
        self, name: str, command: list[str], env: dict[str, str], children: ChildRecord
    ) -> tuple[int, list[str]]:
        """Run one step as a child that dies with this process; (exit code, its last lines)."""
        self.note(f"--- step {name}: {' '.join(command)}")
        tail: deque[str] = deque(maxlen=TAIL_LINES)
        with subprocess.Popen(
            command,
            # unbuffered: the log keeps stdout and stderr in order, and a killed child's last lines
            env={**os.environ, "PYTHONUNBUFFERED": "1", **env},
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            encoding="utf-8",
            errors="replace",
            bufsize=1,
            preexec_fn=die_with_parent(),
        ) as process:
            children.add(process, name, command)
            assert process.stdout is not None and process.stderr is not None
            copiers = [
                threading.Thread(target=self._copy, args=(process.stdout, sys.stdout, tail), daemon=True),
                threading.Thread(target=self._copy, args=(process.stderr, sys.stderr, tail), daemon=True),
            ]
            for copier in copiers:
                copier.start()
            try:
                returncode = process.wait()
            except BaseException:  # Ctrl-C: the step stops with the run
                process.kill()
                raise
            finally:
                for copier in copiers:
                    copier.join(timeout=10)
                children.remove(process)
        self.note(f"--- step {name} exited {returncode}")
        return returncode, list(tail)

    def _copy(self, source: IO[str], console: TextIO, tail: deque[str]) -> None:
        for line in source:
            with self._lock:
                self._file.write(line)
                self._file.flush()
                tail.append(line.rstrip("\n"))
                if self.echo:
                    console.write(line)
                    console.flush()


@contextmanager
def run_log(folder: Path, run_id: str, keep: int, echo: bool) -> Iterator[RunLog]:
    log = RunLog(folder, run_id, keep, echo)
    try:
        yield log
    finally:
        log.close()
