"""Start and stop the sandbox servers as a child process (for `make pipeline` and the tests)."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

import requests

ROOT = Path(__file__).resolve().parent.parent


class SandboxStartError(RuntimeError):
    """The sandbox did not come up; the message carries its output."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def running_sandbox(
    world: Path, port: int | None = None, flags: Sequence[str] = (), timeout_s: float = 60.0
) -> Iterator[str]:
    """Serve `world` in a child process for the duration of the block; yields the base URL."""
    port = port or free_port()
    base_url = f"http://127.0.0.1:{port}"
    log_path = Path(world) / f"sandbox-{port}.log"
    command = [sys.executable, "-m", "sandbox", "serve", "--world", str(world), "--port", str(port), *flags]
    with open(log_path, "wb") as log:
        process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT, env=_child_env())
        try:
            _wait_until_healthy(process, base_url, log_path, timeout_s)
            yield base_url
        finally:
            _stop(process)


def _child_env() -> dict[str, str]:
    """The child imports `sandbox` from this checkout wherever it is started from."""
    env = os.environ.copy()
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    return env


def _wait_until_healthy(process: subprocess.Popen, base_url: str, log_path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if process.poll() is not None:
            output = log_path.read_text()[-4000:]
            raise SandboxStartError(f"sandbox exited ({process.returncode}) before serving:\n{output}")
        try:
            if requests.get(f"{base_url}/_sandbox/health", timeout=1).ok:
                return
        except requests.RequestException:
            pass
        time.sleep(0.1)
    _stop(process)
    raise SandboxStartError(f"sandbox not healthy after {timeout_s:.0f} s:\n{log_path.read_text()[-4000:]}")


def _stop(process: subprocess.Popen) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
