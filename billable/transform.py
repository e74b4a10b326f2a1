"""`make transform`: build the warehouse, test it, and publish it only if every test passes.

Write, audit, publish (docs/publishing.md):

1. write: `dbt build` into a working DuckDB file (`<build-dir>/warehouse.duckdb`) that persists
   between runs, because incremental models and history keep their state in it;
2. audit: the same `dbt build` runs every test right after the node it tests and skips what is
   downstream of a failure; every failed or errored node is read from dbt's run_results.json;
3. publish: only when nothing failed, a checkpointed copy of the working file replaces the
   published `warehouse.duckdb` by an atomic rename, and `warehouse.json` says when and what.

Readers of the published file never see a half-built warehouse and never block a build: the
build writes another file, and a rename leaves connections already open reading the old one.
Every run, passed or failed, is recorded in `ops.transform_runs` inside the working file.

Exit codes: 0 published; 1 the build or a test failed (nothing published); 2 usage or
configuration error; 75 another transform holds the lock.

dbt dies with the runner, even on `kill -9` (the kernel's parent-death signal), and is recorded
in `<build-dir>/transform.children.json` while it runs; a transform that finds a recorded dbt
still alive says so and stops it before building.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import subprocess
import sys
import time
from collections import Counter, deque
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from billable import duckdb_config
from billable.build_scope import scope_of_build
from billable.child_process import ChildRecord, die_with_parent
from billable.engine import EngineError, engine_name
from billable.publish_duckdb import publish, record_run, seed_working_db, store_semantic_manifest
from billable.publish_postgres import PostgresWarehouse, advisory_lock
from billable.run_lock import EX_TEMPFAIL, LockHeld, raw_db_lock, run_lock

ROOT = Path(__file__).resolve().parent.parent
EX_OK, EX_FAILED, EX_USAGE = 0, 1, 2

# run_results.json statuses that mean "this node did not do its job" ("partial success" is a
# microbatch model some of whose batches failed).
FAILED_STATUSES = {"error", "fail", "runtime error", "partial success"}

OUTPUT_TAIL_LINES = 40

# ops.transform_runs, created and extended by this runner (not a dbt model: it must record runs
# whose dbt build failed). New columns go at the end; existing files get them by ALTER.
RUNS_COLUMNS = {
    "run_id": "varchar",
    "started_at": "timestamp",  # UTC, like every timestamp in the warehouse
    "finished_at": "timestamp",
    "status": "varchar",  # passed (then published) | failed
    "full_refresh": "boolean",
    "raw_db": "varchar",
    "git_commit": "varchar",
    "dbt_version": "varchar",
    "dbt_invocation_id": "varchar",
    "nodes_total": "integer",
    "nodes_failed": "integer",
    "nodes_skipped": "integer",
    "failed_nodes": "varchar[]",
    "message": "varchar",
    "duration_s": "double",
    "nodes_warned": "integer",  # data tests of severity warn that found rows (published anyway)
    "warnings": "varchar[]",  # one line per warning: test, model, how many rows
    "project_fingerprint": "varchar",  # what the build covered (billable.build_scope)
    "source_fingerprints": "varchar",  # JSON: source -> fingerprint
    "selection": "varchar",  # dbt --select, empty when everything was built
    "unit_tests": "boolean",  # the models' unit tests ran too (make test; not production)
}


@dataclass(frozen=True)
class Paths:
    """Every file a transform touches, absolute, derived from the command line."""

    raw_db: Path
    warehouse: Path
    build_dir: Path
    project_dir: Path

    @property
    def working_db(self) -> Path:
        # Same file name as the published one: DuckDB names a database's catalog after its file,
        # and dbt writes that catalog into what it builds (e.g. a view's SQL), so building under
        # the published name keeps any such reference valid after the copy.
        return self.build_dir / self.warehouse.name

    @property
    def lock(self) -> Path:
        return self.build_dir / "transform.lock"

    @property
    def children(self) -> Path:
        return self.build_dir / "transform.children.json"

    @property
    def metadata(self) -> Path:
        return self.warehouse.with_suffix(".json")

    @property
    def target_dir(self) -> Path:
        return self.build_dir / "target"

    @property
    def log_dir(self) -> Path:
        return self.build_dir / "logs"


@dataclass(frozen=True)
class NodeResult:
    """One node's line in run_results.json, named with the manifest's help where possible."""

    unique_id: str
    status: str
    message: str
    name: str
    file: str
    on: str  # for a test: the model (and column) it checks

    @property
    def resource_type(self) -> str:
        return self.unique_id.split(".", 1)[0]

    def describe(self) -> str:
        where = f" on {self.on}" if self.on else ""
        source = f" ({self.file})" if self.file else ""
        message = " ".join((self.message or self.status).split())
        return f"{self.resource_type} {self.name}{where}{source}: {self.status.upper()}: {message}"


@dataclass
class BuildOutcome:
    """What `dbt build` did: its exit code, every node's result and its last lines of output."""

    returncode: int
    results: list[NodeResult]
    dbt_version: str = ""
    invocation_id: str = ""
    output_tail: list[str] = field(default_factory=list)

    @property
    def failed(self) -> list[NodeResult]:
        return [node for node in self.results if node.status in FAILED_STATUSES]

    @property
    def skipped(self) -> list[NodeResult]:
        return [node for node in self.results if node.status == "skipped"]

    @property
    def warned(self) -> list[NodeResult]:
        return [node for node in self.results if node.status == "warn"]

    @property
    def ok(self) -> bool:
        # Both: a non-zero exit with no failed node is dbt failing before or around the nodes.
        return self.returncode == 0 and not self.failed


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    paths = Paths(
        raw_db=args.raw_db.resolve(),
        warehouse=args.warehouse.resolve(),
        build_dir=args.build_dir.resolve(),
        project_dir=args.project_dir.resolve(),
    )
    try:
        store = warehouse_store(engine_name(), paths.raw_db.parent)
        duckdb_config.duckdb_config()  # a memory limit or thread count DuckDB cannot take: exit 2
        problem = check_inputs(paths, args.wait, store)
    except EngineError as err:
        problem = str(err)
    if problem:
        print(f"transform: {problem}", file=sys.stderr)
        return EX_USAGE
    try:
        with run_lock(paths.lock, args.wait), store_lock(store, args.wait):
            # We hold the lock, so a recorded dbt that still runs belongs to a transform that is gone.
            children = ChildRecord(paths.children, "transform")
            children.stop_leftovers()
            # No loader writes the raw database while dbt reads it (the loader exits 75 meanwhile).
            with run_lock(raw_db_lock(paths.raw_db), args.wait):
                return transform(
                    paths,
                    full_refresh=args.full_refresh,
                    dbt_vars=args.vars,
                    children=children,
                    store=store,
                    unit_tests=args.unit_tests,
                )
    except LockHeld as held:
        print(f"transform: {held}", file=sys.stderr)
        return EX_TEMPFAIL


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    data = Path("data")
    parser = argparse.ArgumentParser(
        prog="python -m billable.transform",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--raw-db", type=Path, default=data / "raw.duckdb", help="raw DuckDB (read only)")
    parser.add_argument(
        "--warehouse",
        type=Path,
        default=data / "warehouse.duckdb",
        help="the published warehouse readers open (default: %(default)s)",
    )
    parser.add_argument(
        "--build-dir",
        type=Path,
        default=data / "build",
        help="working warehouse, dbt's target and logs, the lock (default: %(default)s)",
    )
    parser.add_argument(
        "--project-dir", type=Path, default=ROOT / "dbt_project", help="dbt project (default: the checkout's)"
    )
    parser.add_argument(
        "--full-refresh", action="store_true", help="rebuild incremental models from scratch (dbt's flag)"
    )
    parser.add_argument(
        "--unit-tests",
        action="store_true",
        help="also run the models' unit tests (make test does; a production build leaves them out)",
    )
    parser.add_argument(
        "--vars",
        default="",
        metavar="YAML",
        help="dbt vars, e.g. '{as_of_at: \"2026-09-01T00:00:00\"}' to judge the data as of a past moment",
    )
    parser.add_argument(
        "--wait",
        type=float,
        default=0.0,
        metavar="SECONDS",
        help="wait up to this long for a running transform to finish (default 0: fail at once, exit 75)",
    )
    return parser.parse_args(argv)


class WarehouseStore(Protocol):
    """A warehouse in an engine other than DuckDB's files (billable.publish_postgres, _spark)."""

    target: str

    def describe(self) -> str: ...
    def dbt_env(self) -> dict[str, str]: ...
    def check_inputs(self) -> str | None: ...
    def prepare(self) -> None: ...
    def record_run(self, run: dict, columns: dict[str, str]) -> bool: ...
    def store_semantic_manifest(self, run_id: str, manifest: str) -> None: ...
    def publish(self, metadata: dict) -> None: ...
    def published_exists(self) -> bool: ...
    def input_fingerprints(self) -> dict[str, str]: ...
    def last_run(self) -> dict[str, Any] | None: ...


def warehouse_store(engine: str, data_dir: Path) -> WarehouseStore | None:
    """Where the warehouse is built and published: None for DuckDB's files (billable.publish_duckdb)."""
    if engine == "postgres":
        return PostgresWarehouse()
    if engine == "spark":
        from billable.publish_spark import SparkWarehouse

        return SparkWarehouse(data_dir)
    return None


def store_lock(store: WarehouseStore | None, wait_s: float) -> contextlib.AbstractContextManager[None]:
    """PostgreSQL's own lock (two machines sharing one database); the lock file does for the others."""
    return advisory_lock(wait_s) if isinstance(store, PostgresWarehouse) else contextlib.nullcontext()


def check_inputs(paths: Paths, wait_s: float, store: WarehouseStore | None = None) -> str | None:
    """What is missing or wrong before anything starts; None when all is in place."""
    if wait_s < 0:
        return f"--wait must be 0 or more seconds, got {wait_s:g}"
    if store is not None:
        problem = store.check_inputs()
        if problem:
            return problem
    elif not paths.raw_db.is_file():
        return f"no raw database at {paths.raw_db}; run `make ingest` first"
    if not (paths.project_dir / "dbt_project.yml").is_file():
        return f"no dbt project at {paths.project_dir} (dbt_project.yml missing)"
    if paths.working_db == paths.warehouse:
        return f"--build-dir {paths.build_dir} must not be the published warehouse's own folder"
    return None


def transform(
    paths: Paths,
    full_refresh: bool,
    dbt_vars: str = "",
    children: ChildRecord | None = None,
    store: WarehouseStore | None = None,
    unit_tests: bool = False,
) -> int:
    """Build, audit and (if all passed) publish; returns the exit code. Runs under the lock."""
    run_id = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    started_at = datetime.now(UTC)
    started = time.monotonic()
    paths.build_dir.mkdir(parents=True, exist_ok=True)
    if store is None:
        seed_working_db(paths)
    else:
        try:
            store.prepare()
        except Exception as err:  # the engine refused (connection, catalog): one message, no build
            print(f"transform: FAILED before the build: {store.describe()}: {err}", file=sys.stderr)
            return EX_FAILED
    where = store.describe() if store is not None else str(paths.working_db)
    published_name = "the published schemas" if store is not None else str(paths.warehouse)

    ledger = paths.warehouse.with_name("ledger.duckdb")  # read by the DuckDB build when there
    files = (paths.raw_db, paths.working_db, ledger)
    scope = scope_of_build(paths.project_dir, store, full_refresh, dbt_vars, *files)
    print(f"transform: run {run_id}: dbt build into {where}", flush=True)
    selected = " ".join(scope.select) if scope.select else "everything"
    print(f"transform: building {selected}: {scope.reason}", flush=True)
    outcome = run_dbt_build(
        paths, full_refresh, dbt_vars, children, store, scope.select, unit_tests, scope.project
    )
    duration_s = time.monotonic() - started
    run = {
        "run_id": run_id,
        "started_at": started_at.replace(tzinfo=None),
        "finished_at": datetime.now(UTC).replace(tzinfo=None),
        "status": "passed" if outcome.ok else "failed",
        "full_refresh": full_refresh,
        "raw_db": str(paths.raw_db),
        "git_commit": git_commit(),
        "dbt_version": outcome.dbt_version,
        "dbt_invocation_id": outcome.invocation_id,
        "nodes_total": len(outcome.results),
        "nodes_failed": len(outcome.failed),
        "nodes_skipped": len(outcome.skipped),
        "failed_nodes": [node.unique_id for node in outcome.failed],
        "message": failure_summary(outcome) if not outcome.ok else "",
        "duration_s": round(duration_s, 3),
        "nodes_warned": len(outcome.warned),
        "warnings": [node.describe() for node in outcome.warned],
        "project_fingerprint": scope.project,
        "source_fingerprints": json.dumps(scope.sources, sort_keys=True),
        "selection": " ".join(scope.select),
        "unit_tests": unit_tests,
    }
    if store is None:
        recorded = record_run(paths.working_db, run, RUNS_COLUMNS)
    else:
        recorded = store.record_run(run, RUNS_COLUMNS)

    if not outcome.ok:
        report_failure(paths, outcome, run_id, store)
        return EX_FAILED
    if not recorded:
        # A passing build whose working file cannot be opened cannot be checkpointed either.
        print(f"transform: FAILED: cannot open {where} to publish it", file=sys.stderr)
        return EX_FAILED

    if store is None:
        store_semantic_manifest(paths, run_id)
        publish(paths, publication(paths, run, outcome))
    else:
        manifest = paths.target_dir / "semantic_manifest.json"
        try:
            if manifest.is_file():
                store.store_semantic_manifest(run_id, manifest.read_text())
            store.publish(publication(paths, run, outcome))
        except Exception as err:  # the swap is atomic: what readers see is still the last publish
            print(f"transform: FAILED to publish run {run_id} to {store.describe()}: {err}", file=sys.stderr)
            print("transform: readers still see the last published build", file=sys.stderr)
            return EX_FAILED
    counts = Counter(node.resource_type for node in outcome.results)
    kinds = ", ".join(f"{count} {kind}s" for kind, count in sorted(counts.items()))
    print(f"transform: published {published_name} (run {run_id}: {kinds} passed in {duration_s:.1f} s)")
    if outcome.warned:  # published, but someone should look: also in ops.transform_runs.warnings
        print(f"transform: {len(outcome.warned)} warning(s), published anyway:")
        print("\n".join(f"  {node.describe()}" for node in outcome.warned))
    return EX_OK


def dbt_executable() -> list[str]:
    """This interpreter's `dbt`: the venv's script, or dbt's entry point through this Python."""
    script = Path(sys.executable).with_name("dbt")
    if script.is_file():
        return [str(script)]
    # `python -m dbt.cli.main` warns about double import; call the entry point the script calls.
    return [sys.executable, "-c", "import sys; from dbt.cli.main import cli; sys.exit(cli())"]


def run_dbt_build(
    paths: Paths,
    full_refresh: bool,
    dbt_vars: str = "",
    children: ChildRecord | None = None,
    store: WarehouseStore | None = None,
    select: tuple[str, ...] = (),
    unit_tests: bool = False,
    code_fingerprint: str = "",
) -> BuildOutcome:
    """`dbt build` into the working file, its output passed through; results from run_results.json.

    A production build leaves the unit tests out (they test the models' code, which does not change
    between nightly runs: `make test` runs them) and reuses dbt's parse of the unchanged project.
    `code_fingerprint` (the project's, billable.build_scope) tells the models that follow change
    (macros/follow_change.sql) which code their rows were computed with."""
    results_file = paths.target_dir / "run_results.json"
    # A stale file from an earlier run must never be read as this run's results.
    results_file.unlink(missing_ok=True)
    (paths.target_dir / "semantic_manifest.json").unlink(missing_ok=True)  # nor its metrics
    command = [
        *dbt_executable(),
        "build",
        "--project-dir",
        str(paths.project_dir),
        "--profiles-dir",
        str(paths.project_dir),
        "--target-path",
        str(paths.target_dir),
        "--log-path",
        str(paths.log_dir),
    ]
    if unit_tests:
        # Parse afresh (about 8 s): partial parsing reuses YAML rendered by the previous run,
        # `{{ invocation_id }}` included, so the exception_history unit test's expected rows would
        # carry the last run's id and fail every build after the first.
        command.append("--no-partial-parse")
    else:  # dbt re-parses what changed (files, vars, the profile's env vars) and keeps the rest
        command += ["--exclude-resource-type", "unit_test"]
    if "DBT_LOG_LEVEL_FILE" not in os.environ:
        # dbt's file log at its default (debug: every statement it runs) took a fifth of a build's
        # CPU in its logging (py-spy, docs/benchmarks.md); warnings and errors keep what a failure
        # needs, and DBT_LOG_LEVEL_FILE=debug brings the rest back when an operator wants it.
        command += ["--log-level-file", "warn"]
    if select:
        command += ["--select", *select]
    if full_refresh:
        command.append("--full-refresh")
    if dbt_vars:
        command += ["--vars", dbt_vars]
    env = {**os.environ, "BILLABLE_RAW_DB": str(paths.raw_db), "BILLABLE_BUILD_DB": str(paths.working_db)}
    env["BILLABLE_PROJECT_FINGERPRINT"] = code_fingerprint
    if store is not None:
        command += ["--target", store.target]
        env.update(store.dbt_env())
    else:
        env.update(duckdb_config.dbt_env())
    # The reverse-ETL ledger's snapshot beside the warehouse (docs/reverse_etl.md), attached
    # read-only when a sync has published one; else the profile attaches an empty stand-in.
    ledger = paths.warehouse.with_name("ledger.duckdb")
    env.pop("BILLABLE_LEDGER_DB", None)
    if ledger.is_file():
        env["BILLABLE_LEDGER_DB"] = str(ledger)
    if not sys.stdout.isatty():
        env.setdefault("DBT_USE_COLORS", "false")  # cron logs and pipes get no escape codes

    tail: deque[str] = deque(maxlen=OUTPUT_TAIL_LINES)
    with subprocess.Popen(
        command,
        cwd=paths.project_dir,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        errors="replace",
        preexec_fn=die_with_parent(),  # a kill -9 of this runner must not leave dbt building
    ) as process:
        if children is not None:
            children.add(process, "dbt", command)
        assert process.stdout is not None
        try:
            for line in process.stdout:
                sys.stdout.write(line)
                tail.append(line.rstrip("\n"))
            sys.stdout.flush()
        except BaseException:  # Ctrl-C, or our stdout gone: dbt stops with the runner
            process.kill()
            raise
        finally:
            process.wait()
            if children is not None:
                children.remove(process)
    outcome = BuildOutcome(returncode=process.returncode, results=[], output_tail=list(tail))
    if results_file.is_file():
        read_run_results(outcome, results_file, paths.target_dir / "manifest.json")
    return outcome


def read_run_results(outcome: BuildOutcome, results_file: Path, manifest_file: Path) -> None:
    """Fill `outcome` from run_results.json, naming each node from the manifest when it exists."""
    run_results = json.loads(results_file.read_text())
    nodes: dict = {}
    if manifest_file.is_file():
        manifest = json.loads(manifest_file.read_text())
        # Unit tests are not in "nodes"; without them a unit test would be named after its model.
        nodes = {**manifest.get("nodes", {}), **manifest.get("unit_tests", {})}
    metadata = run_results.get("metadata", {})
    outcome.dbt_version = metadata.get("dbt_version", "")
    outcome.invocation_id = metadata.get("invocation_id", "")
    for result in run_results.get("results", []):
        unique_id = result["unique_id"]
        node = nodes.get(unique_id, {})
        attached = (node.get("attached_node") or "").rsplit(".", 1)[-1]
        column = node.get("column_name") or ""
        outcome.results.append(
            NodeResult(
                unique_id=unique_id,
                status=result.get("status", ""),
                message=result.get("message") or "",
                name=node.get("name") or unique_id.split(".")[2],
                file=node.get("original_file_path", ""),
                on=f"{attached}.{column}" if attached and column else attached,
            )
        )


def failure_summary(outcome: BuildOutcome) -> str:
    """One line for ops.transform_runs."""
    if outcome.failed:
        names = ", ".join(node.name for node in outcome.failed)
        return f"{len(outcome.failed)} node(s) failed: {names}"
    last = next((line for line in reversed(outcome.output_tail) if line.strip()), "")
    return f"dbt build exited {outcome.returncode} without a failed node: {last.strip()}"[:2000]


def report_failure(
    paths: Paths, outcome: BuildOutcome, run_id: str, store: WarehouseStore | None = None
) -> None:
    """Name every failed node on stderr, and say what readers still see."""
    where = store.describe() if store is not None else str(paths.warehouse)
    exists = store.published_exists() if store is not None else paths.warehouse.exists()
    kept = (
        f"{where} still holds the last published build"
        if exists
        else f"nothing has been published at {where} yet"
    )
    lines = [f"transform: FAILED: run {run_id} did not publish; {kept}"]
    if outcome.failed:
        lines.append(f"transform: {len(outcome.failed)} node(s) failed:")
        lines += [f"  {node.describe()}" for node in outcome.failed]
        if outcome.skipped:
            lines.append(f"transform: {describe_skipped(outcome.skipped)}")
    else:
        exited = f"dbt build exited {outcome.returncode}"
        lines.append(f"transform: {exited} before naming a failed node; its last output:")
        lines += [f"  {line}" for line in outcome.output_tail]
    lines.append(f"transform: compiled SQL and dbt's log: {paths.target_dir}, {paths.log_dir}")
    print("\n".join(lines), file=sys.stderr)


def describe_skipped(skipped: list[NodeResult], shown: int = 10) -> str:
    """How much a failure held back: the skipped models by name, the skipped tests counted."""
    built = [node.name for node in skipped if node.resource_type in ("model", "seed", "snapshot")]
    tests = len(skipped) - len(built)
    names = ", ".join(built[:shown]) + (f" and {len(built) - shown} more" if len(built) > shown else "")
    models = f"{len(built)} model(s) ({names or 'none'})"
    return f"{len(skipped)} downstream node(s) skipped: {models}, {tests} test(s)"


def publication(paths: Paths, run: dict, outcome: BuildOutcome) -> dict:
    """What a publication is: warehouse.json on DuckDB, a row of ops.publications elsewhere."""
    counts_by_status = Counter(node.status for node in outcome.results)
    counts_by_type = Counter(node.resource_type for node in outcome.results)
    metadata = {
        "published_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "run_id": run["run_id"],
        "warehouse": str(paths.warehouse),
        "raw_db": run["raw_db"],
        "git_commit": run["git_commit"],
        "dbt_version": run["dbt_version"],
        "dbt_invocation_id": run["dbt_invocation_id"],
        "full_refresh": run["full_refresh"],
        "duration_s": run["duration_s"],
        "nodes": {
            "total": len(outcome.results),
            "by_type": dict(sorted(counts_by_type.items())),
            "by_status": dict(sorted(counts_by_status.items())),
        },
    }
    return metadata


def git_commit() -> str | None:
    """The checkout's commit, for the record; None outside a git checkout."""
    try:
        result = subprocess.run(
            ["git", "-C", str(ROOT), "rev-parse", "HEAD"], capture_output=True, text=True, timeout=10
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    if result.returncode != 0:
        return None
    return result.stdout.strip() or None


if __name__ == "__main__":
    sys.exit(main())
