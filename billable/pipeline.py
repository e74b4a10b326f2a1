"""`make pipeline`, `make daily`, `make demo-day`: run the steps in order, one run at a time.

The steps (ingest, transform, sync, then ingest the ERP and transform again, so the warehouse
sees what the sync pushed) are listed once, in `steps`; what differs is where the loaders read
from:

- `--world W` (make pipeline): a sandbox serving the world W, started and stopped around the run
  (`python -m sandbox serve` as a child; it answers the loaders' settings for its world, and an
  invalid world.json is its one-line verdict and exit 2, passed on as this run's); with
  `--advance-days N` (make demo-day) the world's clock first moves N days, as a day passes;
  the sandbox delivers the world's HR drop as of its clock when it starts and when the clock
  moves (`sandbox.hr_drop.deliver`), so any world runs, a hand-written one without `hr_drop/` too;
- `--live` (make daily, from cron): the systems configured for the loaders; no sandbox. The
  configuration check (`make check`) runs first for what the run uses and stops it, exit 2, one
  line per system that is not ok, before anything is touched.

Each step is a command; the first that fails stops the run with its name and exit code, so an
operator's cron mail says exactly what went wrong. A run is a `RunSession` (billable.run_session):
each step's full output goes to the run's log file under `data/logs/` (the last
`BILLABLE_RUN_LOGS_KEEP`, default 30, are kept); the console gets one line per step with its
duration and facts and a summary table at the end (`--console readable`, what the make targets
use; `--console full`, the default, passes the steps' own output through as well); a failed step
adds its last lines and the log's path on stderr. Every run is a row of `ops.pipeline_runs`
(billable.run_record), and alerts go out as `[billable.alerts]` says (billable.alerting).

A lock next to the raw database (`daily.lock`) keeps two runs from overlapping; the second exits 75
saying which process holds it.

Every child (the sandbox, each step) dies with the pipeline, even on `kill -9` (the kernel's
parent-death signal), and is recorded in `daily.children.json` beside the lock while it runs; a
run that finds a recorded child still alive says so and stops it before starting its own. The
sandbox the run starts must be the one that answers on `--port`: a port held by another program
(another world's sandbox) stops the run with exit 2 naming the port and what holds it.

The warehouse and its build folder live next to the raw database: `--raw-db data/raw.duckdb`
publishes `data/warehouse.duckdb`, built in `data/build/`.
"""

from __future__ import annotations

import argparse
import sys
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from billable import engine as engines
from billable.alerting import Alerts
from billable.child_process import ChildRecord
from billable.run_lock import EX_TEMPFAIL, LockHeld, run_lock
from billable.run_log import keep_from_env
from billable.run_session import RunSession
from billable.sandbox_process import (
    PortInUse,
    SandboxRefused,
    SandboxStartError,
    running_sandbox,
    sandbox_settings,
)

STEP_NAMES = ("ingest", "transform", "sync", "ingest-erp", "transform-after-sync")
LIVE = "live"  # the raw database's marker when it is loaded from the configured systems


@dataclass(frozen=True)
class Step:
    name: str
    command: list[str]
    env: dict[str, str] = field(default_factory=dict)


def steps(
    raw_db: Path, sources: str, settings: dict[str, str], sync_flags: tuple[str, ...] = ()
) -> list[Step]:
    """The steps in order, the one list every kind of run uses.

    `settings` configure the loaders (the sandbox's, or nothing: the deployment's own config).
    """
    data = raw_db.parent
    ingest = [sys.executable, "-m", "ingestion", "--raw-db", str(raw_db), "--sources", sources]
    transform = [sys.executable, "-m", "billable.transform", "--raw-db", str(raw_db)]
    transform += ["--warehouse", str(data / "warehouse.duckdb"), "--build-dir", str(data / "build")]
    sync = [sys.executable, "-m", "reverse_etl", "--warehouse", str(data / "warehouse.duckdb"), *sync_flags]
    planned = [
        Step("ingest", ingest, settings),
        Step("transform", transform),
        Step("sync", sync, settings),
    ]
    if "--dry-run" not in sync_flags:
        # The sync's effect, loaded back: posting latency and time-to-invoice see what it pushed.
        planned.append(Step("ingest-erp", [*ingest[:-1], "erp"], settings))
        planned.append(Step("transform-after-sync", transform))
    return planned


def sync_flags(args: argparse.Namespace) -> tuple[str, ...]:
    """The sync step's options (make sync DRY_RUN=1 RETRY_REJECTED=1)."""
    return (*(["--dry-run"] if args.dry_run else []), *(["--retry-rejected"] if args.retry_rejected else []))


def describe_origin(identity: str) -> str:
    return "the configured (live) systems" if identity == LIVE else f"the world {identity}"


def claim_raw_db(raw_db: Path, world: Path | None) -> str | None:
    """Tie a raw database to one world (or to the live systems), so two origins' records never mix
    in it; None when fine."""
    marker = raw_db.with_suffix(".world")
    identity = str(world.resolve()) if world is not None else LIVE
    if marker.exists() and marker.read_text().strip() != identity:
        return (
            f"{raw_db} holds data loaded from {describe_origin(marker.read_text().strip())}, "
            f"not {describe_origin(identity)}; "
            f"to load another origin, pass another --raw-db (or move {raw_db} and {marker.name} aside); "
            "the reverse-ETL ledger beside it stays where it is"
        )
    raw_db.parent.mkdir(parents=True, exist_ok=True)
    marker.write_text(identity + "\n")
    return None


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m billable.pipeline",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    origin = parser.add_mutually_exclusive_group(required=True)
    origin.add_argument("--world", type=Path, help="serve this world folder with the sandbox (make generate)")
    origin.add_argument("--live", action="store_true", help="load from the configured systems (make daily)")
    parser.add_argument(
        "--port", type=int, default=8800, help="port for the sandbox servers (0: any free port)"
    )
    parser.add_argument("--raw-db", type=Path, default=Path("data") / "raw.duckdb", help="raw DuckDB file")
    parser.add_argument("--sources", default="", help="ingest only these sources (comma-separated)")
    parser.add_argument(
        "--only",
        choices=STEP_NAMES,
        action="append",
        help="run only these steps",
    )
    parser.add_argument("--dry-run", action="store_true", help="sync step: print the plan, send nothing")
    parser.add_argument("--retry-rejected", action="store_true", help="sync step: retry ERP rejections")
    parser.add_argument(
        "--advance-days",
        type=float,
        default=0,
        help="with --world: move the world's clock this many days forward before the steps (make demo-day)",
    )
    parser.add_argument(
        "--wait", type=float, default=0, help="wait up to this many seconds for a running run (default: none)"
    )
    parser.add_argument(
        "--console",
        choices=["readable", "full"],
        default="full",
        help="readable: each step's line with its facts and a summary (the make targets); "
        "full: the steps' own output as well (default). Both write everything to the run's log file",
    )
    parser.add_argument(
        "--log-dir", type=Path, help="the run log files' folder (default: logs/ beside the raw database)"
    )
    args = parser.parse_args(argv)
    label = "daily" if args.live else "pipeline"
    if args.live and args.advance_days:
        parser.error("--advance-days moves a sandbox world's clock; it needs --world, not --live")
    if args.world is not None and not (args.world / "world.json").is_file():
        print(f"pipeline: no world at {args.world}; run `make generate` first", file=sys.stderr)
        return 2
    try:
        engines.engine_name()  # an unknown engine: one line, before any work
        alerts = Alerts.from_config()
        keep_logs = keep_from_env()
    except ValueError as err:  # EngineError and AlertConfigError too: a setting, named
        print(f"{label}: {err}", file=sys.stderr)
        return 2
    try:
        with run_lock(args.raw_db.parent / "daily.lock", args.wait):
            # We hold the lock, so whoever started a recorded child that still runs is gone.
            children = ChildRecord(args.raw_db.parent / "daily.children.json", label)
            children.stop_leftovers()
            session = RunSession(
                label,
                args.raw_db,
                args.log_dir or args.raw_db.parent / "logs",
                keep_logs,
                args.console == "full",
                alerts,
                children,
                mode=LIVE if args.live else "world",
                origin=LIVE if args.live else str(args.world.resolve()),
            )
            try:
                code, ending = run(args, session)
            except BaseException:  # Ctrl-C or a bug: the row and the alert still say it failed
                session.stopped("interrupted")
                session.finish(1, "")
                raise
            return session.finish(code, ending)
    except LockHeld as held:
        print(f"{label}: {held}", file=sys.stderr)
        return EX_TEMPFAIL


def run(args: argparse.Namespace, session: RunSession) -> tuple[int, str]:
    """Run the steps against the live systems, or against the world in a sandbox; (exit code, the
    closing line for a success).

    The raw database is claimed for the origin once the origin is known good: for a world, once
    its sandbox serves it (an invalid world.json stops the run before the raw database is touched).
    """
    started = time.monotonic()
    if args.live:
        if not preflight(args, session) or not claim(args, session):
            return 2, ""
        code = run_steps(steps(args.raw_db, args.sources, {}, sync_flags(args)), args.only, session)
        return code, f"finished in {time.monotonic() - started:.1f} s"
    with ExitStack() as stack:  # stops the sandbox however the block ends
        try:
            base_url = stack.enter_context(
                running_sandbox(args.world, port=args.port, children=session.children)
            )
            settings = sandbox_settings(base_url)  # the loaders' configuration for its world
        except (PortInUse, SandboxRefused) as err:  # configuration: a busy port, an invalid world
            session.stopped(str(err))
            return 2, ""
        except SandboxStartError as err:
            session.stopped(f"the sandbox for {args.world} did not start: {err}")
            return 1, ""
        session.say(f"sandbox up at {base_url} for {args.world}")
        if not claim(args, session):
            return 2, ""
        if args.advance_days:
            advance = [sys.executable, "-m", "sandbox", "advance", "--world", str(args.world)]
            code = session.step("advance", [*advance, "--days", str(args.advance_days)], {})
            if code != 0:
                return code, ""
        code = run_steps(steps(args.raw_db, args.sources, settings, sync_flags(args)), args.only, session)
        if code != 0:
            return code, ""
    return 0, f"finished in {time.monotonic() - started:.1f} s; sandbox stopped"


def checked_systems(sources: str, only: list[str] | None) -> tuple[str, ...]:
    """What `make check` checks before a live run with these sources and steps: each loaded
    source's system, the sync's connection when it runs, and the engine."""
    from ingestion.run import SOURCES

    runs = set(only or STEP_NAMES)
    wanted = [name.strip() for name in sources.split(",") if name.strip()] or list(SOURCES)
    systems = []
    if "ingest" in runs:
        systems += [SOURCES[name].function for name in wanted if name in SOURCES]  # firm, salesforce, …
    if "ingest-erp" in runs or "sync" in runs:
        systems.append("quickbooks")
    if "sync" in runs:
        systems.append("sync")
    return (*dict.fromkeys(systems), "engine")


def preflight(args: argparse.Namespace, session: RunSession) -> bool:
    """Before a live run touches anything: the configuration check (billable.check), one line per
    system that fails on stderr; False (exit 2) unless every system this run uses is ok."""
    from billable.check import check_configuration

    results = check_configuration(checked_systems(args.sources, args.only), args.raw_db.parent)
    failed = [result for result in results if not result.ok]
    for result in failed:
        session.stopped(f"check: {result.system}: {result.detail}")
    if failed:
        session.say("fix the configuration (`make check` shows every system) and run again", error=True)
        return False
    session.say(f"check: {', '.join(result.system for result in results)} ok")
    return True


def claim(args: argparse.Namespace, session: RunSession) -> bool:
    """Claim the raw database for this run's origin and start the run's ops row; False (having said
    why) when the raw database holds another origin's data."""
    mismatch = claim_raw_db(args.raw_db, None if args.live else args.world)
    if mismatch:
        session.stopped(mismatch)
        return False
    session.begin_record()
    return True


def run_steps(planned: list[Step], only: list[str] | None, session: RunSession) -> int:
    """Run the steps in order; the first failure's exit code, or 0."""
    for step in planned:
        if only and step.name not in only:
            continue
        code = session.step(step.name, step.command, step.env)
        if code != 0:
            return code
    return 0


if __name__ == "__main__":
    sys.exit(main())
