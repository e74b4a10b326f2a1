"""Run a command and watch its process tree: wall time, the largest single process's peak RSS
(sampled with psutil every ~0.2 s), the pipeline's own per-step "done in" lines, load average.
"""

from __future__ import annotations

import os
import re
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil

STEP_LINE = re.compile(r"^(?:pipeline|daily): (?P<step>[\w-]+) done in (?P<seconds>[\d.]+) s")


@dataclass
class RunFigures:
    """What one watched run measured."""

    seconds: float
    peak_mib: float  # the largest RSS of any one process of the tree, at any sample
    peak_process: str  # that process's name and first arguments
    steps: dict[str, float] = field(default_factory=dict)  # the pipeline's "<step> done in" lines
    load_before: float = 0.0
    load_after: float = 0.0


def describe(process: psutil.Process) -> str:
    try:
        arguments = process.cmdline()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return "?"
    words = [Path(word).name if word.startswith("/") else word for word in arguments[:4]]
    return " ".join(words)


class TreeSampler(threading.Thread):
    """Samples the RSS of a process and all its descendants until stopped."""

    def __init__(self, pid: int, interval_s: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.pid, self.interval_s = pid, interval_s
        self.peak_mib, self.peak_process = 0.0, ""
        self.halt = threading.Event()

    def sample(self) -> None:
        try:
            root = psutil.Process(self.pid)
            tree = [root, *root.children(recursive=True)]
        except psutil.NoSuchProcess:
            return
        for process in tree:
            try:
                rss = process.memory_info().rss / 2**20
            except (psutil.NoSuchProcess, psutil.AccessDenied):
                continue
            if rss > self.peak_mib:
                self.peak_mib, self.peak_process = rss, describe(process)

    def run(self) -> None:
        while not self.halt.is_set():
            self.sample()
            self.halt.wait(self.interval_s)

    def stop(self) -> None:
        self.halt.set()
        self.join()


def watched_run(command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> RunFigures:
    """Run `command` (its output to `log`), sampling its tree; raise naming the log when it fails."""
    load_before = os.getloadavg()[0]
    started = time.monotonic()
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("w") as out:
        process = subprocess.Popen(
            command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
        )
        sampler = TreeSampler(process.pid)
        sampler.start()
        try:
            returncode = process.wait()
        finally:
            sampler.stop()
    seconds = time.monotonic() - started
    if returncode != 0:
        tail = " | ".join(log.read_text().strip().splitlines()[-3:])
        raise RuntimeError(f"{' '.join(command[:4])} … exited {returncode} (log {log}): {tail}")
    steps: dict[str, float] = {}
    for line in log.read_text().splitlines():
        match = STEP_LINE.match(line)
        if match:
            steps[match["step"]] = float(match["seconds"])
    return RunFigures(
        seconds=seconds,
        peak_mib=sampler.peak_mib,
        peak_process=sampler.peak_process,
        steps=steps,
        load_before=load_before,
        load_after=os.getloadavg()[0],
    )
