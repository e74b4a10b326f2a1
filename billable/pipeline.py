"""`make pipeline`: start the sandbox, run every built step in order, stop the sandbox.

Each step is a command; the first that fails stops the run with its name and exit code, so an
operator's cron mail says exactly what went wrong. Steps whose issue has not landed yet are
listed as such rather than pretended.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

from billable.sandbox_process import running_sandbox
from sandbox.world import World


@dataclass(frozen=True)
class Step:
    name: str
    command: list[str] | None  # None: not built yet
    issue: int
    env: dict[str, str] = field(default_factory=dict)


def sandbox_settings(base_url: str, world: Path) -> dict[str, str]:
    """Configuration that points every connector at the sandbox, as an operator would set it.

    The connectors read these like any deployment's settings (dlt config from the environment);
    the tokens are the sandbox's (it accepts any), never real credentials.
    """
    realms = sorted(World(world).realms)
    settings = {
        "SOURCES__HR_DROP__DROP_FOLDER": str((world / "hr_drop").resolve()),
        "SOURCES__HARVEST__ACCOUNT_ID": "1",
        "SOURCES__QUICKBOOKS__REALMS": json.dumps(realms),
    }
    for system in ("SALESFORCE", "KANTATA", "HARVEST", "QUICKBOOKS"):
        settings[f"SOURCES__{system}__BASE_URL"] = base_url
        settings[f"SOURCES__{system}__ACCESS_TOKEN"] = "sandbox-token"
    return settings


def steps(base_url: str, world: Path, raw_db: Path, sources: str) -> list[Step]:
    """The pipeline's steps in order. Later issues replace the `None` commands."""
    ingest = [sys.executable, "-m", "ingestion", "--raw-db", str(raw_db), "--sources", sources]
    return [
        Step("ingest", ingest, 3, sandbox_settings(base_url, world)),
        Step("transform", None, 4),
        Step("sync", None, 6),
    ]


def claim_raw_db(raw_db: Path, world: Path) -> str | None:
    """Tie a raw database to one world, so two worlds' records never mix in it; None when fine."""
    marker = raw_db.with_suffix(".world")
    identity = str(world.resolve())
    if marker.exists() and marker.read_text().strip() != identity:
        return (
            f"{raw_db} holds data loaded from the world {marker.read_text().strip()}, not {identity}; "
            "run `make clean` (or pass another --raw-db) before loading a different world"
        )
    raw_db.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(identity + "\n")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m billable.pipeline", description=__doc__)
    parser.add_argument("--world", type=Path, required=True, help="world folder (make generate writes it)")
    parser.add_argument(
        "--port", type=int, default=8800, help="port for the sandbox servers (0: any free port)"
    )
    parser.add_argument("--raw-db", type=Path, default=Path("data") / "raw.duckdb", help="raw DuckDB file")
    parser.add_argument("--sources", default="", help="ingest only these sources (comma-separated)")
    parser.add_argument(
        "--only", choices=["ingest", "transform", "sync"], action="append", help="run only these steps"
    )
    args = parser.parse_args(argv)
    if not (args.world / "world.json").is_file():
        print(f"pipeline: no world at {args.world}; run `make generate` first", file=sys.stderr)
        return 2

    mismatch = claim_raw_db(args.raw_db, args.world)
    if mismatch:
        print(f"pipeline: {mismatch}", file=sys.stderr)
        return 2

    started = time.monotonic()
    with running_sandbox(args.world, port=args.port) as base_url:
        print(f"pipeline: sandbox up at {base_url} for {args.world}")
        for step in steps(base_url, args.world, args.raw_db, args.sources):
            if args.only and step.name not in args.only:
                continue
            if step.command is None:
                print(f"pipeline: step {step.name!r} is not built yet (issue {step.issue}); skipped")
                continue
            print(f"pipeline: {step.name} …", flush=True)
            step_started = time.monotonic()
            result = subprocess.run(step.command, check=False, env={**os.environ, **step.env})
            if result.returncode != 0:
                failure = f"pipeline: step {step.name!r} FAILED with exit code {result.returncode}"
                print(failure, file=sys.stderr)
                return result.returncode
            print(f"pipeline: {step.name} done in {time.monotonic() - step_started:.1f} s")
    print(f"pipeline: finished in {time.monotonic() - started:.1f} s; sandbox stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())
