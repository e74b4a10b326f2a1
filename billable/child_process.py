"""Child processes that die with their parent, and a record of them for the next run.

Every process Billable starts (the sandbox, the pipeline's steps, the transform's dbt, the
dashboard server) is started with `preexec_fn=die_with_parent()`: on Linux the child asks the
kernel for SIGKILL when its parent dies (`prctl(PR_SET_PDEATHSIG)`), so a `kill -9` of a pipeline
or a transform takes its children, and theirs, along instead of leaving them running against the
raw database or holding the sandbox's port. The signal fires when the *thread* that started the
child ends, so children are started from the main thread (every caller here does).

`ChildRecord` writes the children a run has running into a file beside its lock; the next run,
once it holds the lock, stops any recorded child that still lives (a kernel without the parent-
death signal, a child started from a thread that ended).
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import psutil

PR_SET_PDEATHSIG = 1  # linux/prctl.h
try:  # loaded once in the parent: the child between fork and exec only makes the call
    _LIBC: ctypes.CDLL | None = (
        ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    )
except OSError:
    _LIBC = None


def die_with_parent() -> Callable[[], None] | None:
    """A `preexec_fn` that makes the child receive SIGKILL when this process (thread) dies."""
    if _LIBC is None:
        return None
    parent = os.getpid()
    libc = _LIBC

    def arm() -> None:
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        if os.getppid() != parent:  # the parent died between fork and prctl: follow it now
            os.kill(os.getpid(), signal.SIGKILL)

    return arm


class ChildRecord:
    """The children a run has running, in a JSON file beside its lock (pid, start time, command).

    Use it only while holding the run's lock: then any process the file names that still runs,
    with the same start time (not a reused pid), belongs to an earlier run that is gone.
    """

    def __init__(self, path: Path, label: str) -> None:
        self.path = path
        self.label = label
        self.entries: list[dict] = []

    def stop_leftovers(self) -> list[str]:
        """Stop (SIGTERM, then SIGKILL after 5 s) every recorded child still alive, and its own
        children; say so in one line each. Returns those lines."""
        said = []
        for entry in self._read():
            process = _same_process(entry)
            if process is None:
                continue
            what = f"{entry.get('name', 'child')}: {entry.get('command', '')[:120]}"
            line = f"{self.label}: a leftover of an earlier run (pid {process.pid}, {what}) still runs; "
            line += "stopping it"
            print(line, file=sys.stderr, flush=True)
            said.append(line)
            stop_tree(process)
        self.entries = []
        self._write()
        return said

    def add(self, process: subprocess.Popen, name: str, command: Sequence[str]) -> None:
        try:
            started = psutil.Process(process.pid).create_time()
        except psutil.Error:  # already gone
            return
        self.entries.append(
            {"pid": process.pid, "create_time": started, "name": name, "command": " ".join(command)}
        )
        self._write()

    def remove(self, process: subprocess.Popen) -> None:
        self.entries = [entry for entry in self.entries if entry["pid"] != process.pid]
        self._write()

    def _read(self) -> list[dict]:
        try:
            entries = json.loads(self.path.read_text())
        except FileNotFoundError:
            return []
        except (OSError, ValueError) as err:
            print(f"{self.label}: ignoring unreadable {self.path}: {err}", file=sys.stderr)
            return []
        return [entry for entry in entries if isinstance(entry, dict)] if isinstance(entries, list) else []

    def _write(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_name(self.path.name + ".tmp")
        temporary.write_text(json.dumps(self.entries) + "\n")
        os.replace(temporary, self.path)


def _same_process(entry: dict) -> psutil.Process | None:
    """The recorded process if it still runs (same pid and start time, not a zombie)."""
    try:
        process = psutil.Process(int(entry["pid"]))
        if abs(process.create_time() - float(entry["create_time"])) > 0.01:
            return None  # the pid was reused by an unrelated process
        if process.status() == psutil.STATUS_ZOMBIE:
            return None
        return process
    except (psutil.Error, KeyError, TypeError, ValueError):
        return None


def stop_tree(process: psutil.Process, grace_s: float = 5.0) -> None:
    """SIGTERM a process and its descendants, SIGKILL what is left after `grace_s`."""
    try:
        tree = [process, *process.children(recursive=True)]
    except psutil.Error:
        return
    for member in tree:
        with contextlib.suppress(psutil.Error):
            member.terminate()
    left = _wait_gone(tree, grace_s)
    for member in left:
        with contextlib.suppress(psutil.Error):
            member.kill()
    _wait_gone(left, grace_s)


def _wait_gone(processes: list[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    """Wait until the processes have exited; those still running after `timeout_s`. A zombie
    counts as gone: it runs nothing, and only its own parent (not us) can reap it."""
    deadline = time.monotonic() + timeout_s
    while True:
        left = [process for process in processes if _running(process)]
        if not left or time.monotonic() >= deadline:
            return left
        time.sleep(0.05)


def _running(process: psutil.Process) -> bool:
    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.Error:
        return False
