"""Child processes that die with their parent, and the sandbox servers as one of them.

Every process Billable starts (the sandbox, the pipeline's steps, the transform's dbt, the
dashboard server) is started through `die_with_parent()`: on Linux the child asks the kernel for
SIGKILL when its parent dies (`prctl(PR_SET_PDEATHSIG)`), so a `kill -9` of a pipeline or a
transform takes its children, and theirs, along instead of leaving them running against the
raw database or holding the sandbox's port. The signal fires when the *thread* that started the
child ends, so children are started from the main thread (every caller here does).

`ChildRecord` writes the children a run has running into a file beside its lock; the next run,
once it holds the lock, stops any recorded child that still lives (a kernel without the parent-
death signal, a child started from a thread that ended).

`running_sandbox` checks that the server answering on its port is the one it started (a
per-start instance id echoed by `/_sandbox/health`), and refuses a port another program holds.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import psutil
import requests

ROOT = Path(__file__).resolve().parent.parent

PR_SET_PDEATHSIG = 1  # linux/prctl.h
try:  # loaded once in the parent: the child between fork and exec only makes the call
    _LIBC: ctypes.CDLL | None = (
        ctypes.CDLL(None, use_errno=True) if sys.platform.startswith("linux") else None
    )
except OSError:
    _LIBC = None


class SandboxStartError(RuntimeError):
    """The sandbox did not come up; the message carries its output."""


class PortInUse(SandboxStartError):
    """Another program (maybe another world's sandbox) holds the port; the message names it."""


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


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_in_use(port: int, flag: str = "--port") -> PortInUse | None:
    """A PortInUse naming who listens on 127.0.0.1:`port`, or None when it is free."""
    # Imported here: the transform imports this module for its children and needs no server code.
    from sandbox.servers.app import describe_listener

    holder = describe_listener("127.0.0.1", port)
    if holder is None:
        return None
    return PortInUse(f"port {port} is in use by {holder}; stop it or choose another {flag}")


@contextmanager
def running_sandbox(
    world: Path,
    port: int | None = None,
    flags: Sequence[str] = (),
    timeout_s: float = 60.0,
    children: ChildRecord | None = None,
) -> Iterator[str]:
    """Serve `world` in a child process for the duration of the block; yields the base URL.

    Raises PortInUse when another program holds `port`, SandboxStartError when the sandbox does
    not come up. `children`, when given, records the sandbox for the next run's leftover check.
    """
    if port:
        busy = port_in_use(port)
        if busy:
            raise busy
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = Path(world) / f"sandbox-{port}.log"
    instance = secrets.token_hex(16)
    command = [sys.executable, "-m", "sandbox", "serve", "--world", str(world), "--port", str(port)]
    command += ["--instance-id", instance, *flags]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=_child_env(), preexec_fn=die_with_parent()
        )
        if children is not None:
            children.add(process, "sandbox", command)
        try:
            _wait_until_healthy(process, base_url, instance, log_path, timeout_s)
            yield base_url
        finally:
            _stop(process)
            if children is not None:
                children.remove(process)


def _child_env() -> dict[str, str]:
    """The child imports `sandbox` from this checkout wherever it is started from."""
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _wait_until_healthy(
    process: subprocess.Popen, base_url: str, instance: str, log_path: Path, timeout_s: float
) -> None:
    """Until the sandbox we started answers; another server answering on its port is an error."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log_path.read_text(errors="replace").strip()
            last = output.splitlines()[-1] if output else ""
            if last.startswith("sandbox serve: port "):  # the child's own one-line verdict
                raise PortInUse(last.removeprefix("sandbox serve: "))
            if last.startswith("sandbox serve: ") and process.returncode == 2:
                raise SandboxStartError(last.removeprefix("sandbox serve: "))
            raise SandboxStartError(
                f"sandbox exited ({process.returncode}) before serving:\n{output[-4000:]}"
            )
        try:
            answer = requests.get(f"{base_url}/_sandbox/health", timeout=1)
        except requests.RequestException:
            answer = None
        if answer is not None and answer.ok:
            health = _json(answer)
            if health.get("instance") == instance:
                return
            # Someone else answers on our port (our child will fail to bind it): never use it.
            _stop(process)
            port = base_url.rsplit(":", 1)[1]
            holder = (
                f"a sandbox serving {health['world']} (pid {health.get('pid', 'unknown')})"
                if "world" in health
                else "a program that is not this sandbox"
            )
            raise PortInUse(f"port {port} is in use by {holder}; stop it or choose another --port")
        time.sleep(0.1)
    _stop(process)
    raise SandboxStartError(f"sandbox not healthy after {timeout_s:.0f} s:\n{log_path.read_text()[-4000:]}")


def _json(answer: requests.Response) -> dict:
    try:
        value = answer.json()
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
