"""`make pipeline`: start the sandbox, run every built step in order, stop the sandbox.

Each step is a command; the first that fails stops the run with its name and exit code, so an
operator's cron mail says exactly what went wrong. Steps whose issue has not landed yet are
listed as such rather than pretended.
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from billable.sandbox_process import running_sandbox


@dataclass(frozen=True)
class Step:
    name: str
    command: list[str] | None  # None: not built yet
    issue: int


def steps(base_url: str, world: Path) -> list[Step]:
    """The pipeline's steps in order. Later issues replace the `None` commands."""
    return [
        Step("ingest", None, 3),
        Step("transform", None, 4),
        Step("sync", None, 6),
    ]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m billable.pipeline", description=__doc__)
    parser.add_argument("--world", type=Path, required=True, help="world folder (make generate writes it)")
    parser.add_argument(
        "--port", type=int, default=8800, help="port for the sandbox servers (0: any free port)"
    )
    args = parser.parse_args(argv)
    if not (args.world / "world.json").is_file():
        print(f"pipeline: no world at {args.world}; run `make generate` first", file=sys.stderr)
        return 2

    started = time.monotonic()
    with running_sandbox(args.world, port=args.port) as base_url:
        print(f"pipeline: sandbox up at {base_url} for {args.world}")
        for step in steps(base_url, args.world):
            if step.command is None:
                print(f"pipeline: step {step.name!r} is not built yet (issue {step.issue}); skipped")
                continue
            print(f"pipeline: {step.name} …", flush=True)
            step_started = time.monotonic()
            result = subprocess.run(step.command, check=False)
            if result.returncode != 0:
                failure = f"pipeline: step {step.name!r} FAILED with exit code {result.returncode}"
                print(failure, file=sys.stderr)
                return result.returncode
            print(f"pipeline: {step.name} done in {time.monotonic() - step_started:.1f} s")
    print(f"pipeline: finished in {time.monotonic() - started:.1f} s; sandbox stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
