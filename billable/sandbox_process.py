"""The sandbox servers as a child process (for `make pipeline`, the tests and the benchmarks).

`running_sandbox` starts it so that it dies with its parent (`billable.child_process`), checks
that the server answering on its port is the one it started (a per-start instance id echoed by
`/_sandbox/health`), and refuses a port another program holds. `sandbox_settings` asks the running
sandbox (`/_sandbox/settings`) for the loaders' configuration for its world.

This module speaks to the sandbox only over its command line and HTTP: production code never
imports the `sandbox` package (tests/test_package_boundaries.py).
"""

from __future__ import annotations

import json
import os
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from urllib.request import urlopen

import requests

from billable.child_process import ChildRecord, die_with_parent

ROOT = Path(__file__).resolve().parent.parent


class SandboxStartError(RuntimeError):
    """The sandbox did not come up; the message carries its output."""


class PortInUse(SandboxStartError):
    """Another program (maybe another world's sandbox) holds the port; the message names it."""


class SandboxRefused(SandboxStartError):
    """`sandbox serve` refused to start with its one-line verdict and exit 2 (an invalid world.json,
    an unreadable HR drop state); the message is that line."""


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def port_in_use(port: int, flag: str = "--port") -> PortInUse | None:
    """A PortInUse naming who listens on 127.0.0.1:`port`, or None when it is free."""
    holder = describe_listener("127.0.0.1", port)
    if holder is None:
        return None
    return PortInUse(f"port {port} is in use by {holder}; stop it or choose another {flag}")


def describe_listener(host: str, port: int, timeout_s: float = 2.0) -> str | None:
    """Who listens on host:port: "a sandbox serving <world> (pid N)", "a program that is not a
    sandbox", or None when nothing accepts connections there."""
    probe_host = "127.0.0.1" if host in ("", "0.0.0.0") else host
    try:
        with socket.create_connection((probe_host, port), timeout=timeout_s):
            pass
    except OSError:
        return None
    try:
        with urlopen(f"http://{probe_host}:{port}/_sandbox/health", timeout=timeout_s) as answer:
            health = json.loads(answer.read())
        return f"a sandbox serving {health['world']} (pid {health.get('pid', 'unknown')})"
    except (OSError, ValueError, KeyError, TypeError):
        return "a program that is not a sandbox"


def sandbox_settings(base_url: str, timeout_s: float = 10.0) -> dict[str, str]:
    """The environment that points every loader at the sandbox at `base_url`, for its world (base
    URLs, tokens, the world's legal entities, its HR drop folder), as the sandbox answers it.
    Raises SandboxStartError when it does not answer them."""
    try:
        answer = requests.get(f"{base_url}/_sandbox/settings", timeout=timeout_s)
        answer.raise_for_status()
    except requests.RequestException as err:
        raise SandboxStartError(f"no settings from {base_url}/_sandbox/settings: {err}") from None
    settings = _json(answer)
    if not settings:
        raise SandboxStartError(f"no settings from {base_url}/_sandbox/settings: {answer.text[:200]!r}")
    return {str(name): str(value) for name, value in settings.items()}


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
                raise SandboxRefused(last.removeprefix("sandbox serve: "))
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
