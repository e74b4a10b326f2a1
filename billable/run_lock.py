"""One run at a time: an exclusive `flock` on a lock file that names its holder.

The kernel drops a `flock` when its holder exits, however it exits (crash, `kill -9`, a reboot),
so a lock is never stale and nobody has to clean one up. The file's content (pid, start time,
command) is only there to tell the next run who holds it; the file itself is never deleted,
because a process waiting on a deleted file's lock would lock a file nobody else can see.
"""

from __future__ import annotations

import fcntl
import json
import os
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

EX_TEMPFAIL = 75  # sysexits.h: "try again later", what cron wrappers expect for a busy resource


class LockHeld(RuntimeError):
    """Another process holds the lock; the message names it."""

    def __init__(self, path: Path, holder: dict, waited_s: float) -> None:
        self.path = path
        self.holder = holder
        pid = holder.get("pid", "unknown")
        started = holder.get("started_at", "unknown time")
        waited = f"; still held after waiting {waited_s:g} s" if waited_s > 0 else ""
        shown = display_path(path)
        super().__init__(f"another run (pid {pid}, started {started}) holds {shown}{waited}; not starting")


def raw_db_lock(raw_db: Path) -> Path:
    """The lock every user of the raw database holds: `<raw db>.lock` beside it.

    The loader holds it while it writes, the transform while dbt reads (DuckDB lets no reader in
    while a writer has the file open, and a half-loaded raw database must not be built from).
    Not the pipeline's `daily.lock`: `make daily` holds that one and runs both as children.
    """
    return raw_db.with_name(raw_db.name + ".lock")


def display_path(path: Path) -> str:
    """`path` relative to the working directory when it lies under it, as an operator typed it."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


@contextmanager
def run_lock(path: Path, wait_s: float = 0.0, poll_s: float = 0.2) -> Iterator[None]:
    """Hold an exclusive lock on `path` for the block; wait up to `wait_s` seconds for it.

    Raises LockHeld when another process still holds it after `wait_s`.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    # O_RDWR without O_TRUNC: the current holder's details must survive until we own the lock.
    # Python opens file descriptors non-inheritable, so child processes (dbt, the loaders) do not
    # keep the lock alive after this process ends.
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        _acquire(fd, path, wait_s, poll_s)
        _write_holder(fd)
        try:
            yield
        finally:
            # Released locks read as empty, so nobody mistakes a finished run for a holder.
            os.ftruncate(fd, 0)
    finally:
        os.close(fd)  # closing the last descriptor releases the flock


def _acquire(fd: int, path: Path, wait_s: float, poll_s: float) -> None:
    """Take the flock, polling until `wait_s` has passed (flock itself has no timeout)."""
    deadline = time.monotonic() + wait_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise LockHeld(path, read_holder(fd), wait_s) from None
            time.sleep(min(poll_s, remaining))


def _write_holder(fd: int) -> None:
    holder = {
        "pid": os.getpid(),
        "started_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "command": " ".join(sys.argv),
    }
    os.ftruncate(fd, 0)
    os.pwrite(fd, (json.dumps(holder) + "\n").encode(), 0)


def read_holder(fd: int) -> dict:
    """The holder's details; empty when it has taken the lock but not written them yet."""
    # The holder writes right after locking; a short retry covers that instant.
    for _ in range(5):
        raw = os.pread(fd, 4096, 0).decode(errors="replace").strip()
        if raw:
            try:
                return json.loads(raw)
            except json.JSONDecodeError:
                return {"pid": raw[:60]}
        time.sleep(0.05)
    return {}
