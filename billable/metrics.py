"""The semantic layer's one way in: MetricFlow (`mf`) over the published warehouse, read-only.

`make metrics Q="--metrics billable_utilization --group-by metric_time__month,employee__practice"`,
the tests and the dashboards all go through `SemanticLayer` (docs/metrics.md):

- **the build**: the published file is pinned by a hard link in a private run folder beside it
  (`<warehouse dir>/.metrics/<pid>-<token>/`), so a publish that renames a new file into place
  mid-query changes nothing for this session; the next session sees the new build;
- **its definitions**: the semantic manifest is the one the transform stored *inside* that file
  (`ops.semantic_manifest`, written just before publishing), so the metrics always match the
  data they run on. A warehouse published before the semantic layer existed has none; then the
  checkout's project is parsed (`dbt parse`) and a warning says so;
- **the connection**: a generated dbt profile whose DuckDB database is `:memory:` and which
  ATTACHes the pinned file READ_ONLY under the catalog name the models were built under
  (`warehouse`, read from the manifest), so MetricFlow's `"warehouse"."marts"...` relations
  resolve, nothing is ever written and readers never block a build;
- **the engine**: dbt-metricflow's own `CLIConfiguration` (the object behind the `mf` CLI),
  in-process: `mf` subcommands run with their usual options and output, and Python callers get
  rows and the SQL MetricFlow generated.

- **the engine of the warehouse** (BILLABLE_ENGINE): on PostgreSQL the session reads the
  published schemas (`marts`, ...) through the readers' connection (billable.engine), every
  session read-only (`default_transaction_read_only`, through libpq's PGOPTIONS while MetricFlow
  connects); the definitions come from `dbt parse` of the checkout with BILLABLE_SCHEMA_PREFIX=''
  (the build's schemas are `build_*` until the publish step renames them, so the stored manifest
  names relations that are gone once published). No build is pinned there: the publish step swaps
  schemas in one transaction, so each query reads one whole build. On Spark there is no
  MetricFlow engine: `make metrics` exits 2 saying so and naming the alternatives.

`python -m billable.metrics docs` regenerates docs/metrics.md from the semantic YAML
(`billable.metrics_docs`); `docs --check` fails when the file differs (a test runs it).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import secrets
import shutil
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import duckdb
import yaml

ROOT = Path(__file__).resolve().parent.parent
PROJECT_DIR = ROOT / "dbt_project"
DEFAULT_WAREHOUSE = Path("data") / "warehouse.duckdb"

# Where the transform stores the semantic manifest of the build inside the warehouse file.
MANIFEST_SCHEMA, MANIFEST_TABLE = "ops", "semantic_manifest"
RUN_FOLDER = ".metrics"
PROFILE_NAME = "billable_metrics"

# dbt-duckdb keeps one DuckDB environment per process and re-creates it when a connection with
# other credentials (another session's pinned file) opens: sessions in one process take turns.
_ENGINE_LOCK = threading.RLock()


SPARK_UNSUPPORTED = (
    "BILLABLE_ENGINE=spark: MetricFlow has no Spark engine; use Databricks via dbt-databricks "
    "(MetricFlow supports it), or the dashboards / the marts in SQL (docs/metrics.md)"
)
# The password reaches the generated profile through the environment, never a file on disk.
PASSWORD_ENV = "BILLABLE_METRICS_PG_PASSWORD"
STATEMENT_TIMEOUT_S = 300


class SemanticLayerError(RuntimeError):
    """The semantic layer cannot answer: no warehouse, no manifest, a bad query; the message says why."""


@dataclass(frozen=True)
class QueryResult:
    """A metric query's answer: column names, rows (Python values) and the SQL that produced them."""

    columns: list[str]
    rows: list[tuple]
    sql: str

    def as_dicts(self) -> list[dict]:
        return [dict(zip(self.columns, row, strict=True)) for row in self.rows]


class SemanticLayer:
    """MetricFlow over one published warehouse build, pinned for the life of the session.

    Use as a context manager; `query` and `explain` may be called any number of times (the
    engine starts once, about 2-3 s).
    """

    def __init__(self, warehouse: Path = DEFAULT_WAREHOUSE, quiet: bool = True) -> None:
        self.warehouse = Path(warehouse).resolve()
        self.quiet = quiet
        self.run_dir: Path | None = None
        self.manifest_source = ""
        self._config = None
        self.engine = "duckdb"
        self._environ: dict[str, str] = {}  # set while MetricFlow connects (PostgreSQL)

    def __enter__(self) -> SemanticLayer:
        try:
            self.open()
        except BaseException:
            self.close()
            raise
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def open(self) -> None:
        from billable.engine import EngineError, engine_name

        try:
            self.engine = engine_name()
        except EngineError as error:
            raise SemanticLayerError(str(error)) from error
        if self.engine == "spark":
            raise SemanticLayerError(SPARK_UNSUPPORTED)
        if self.engine == "postgres":
            self._open_postgres()
            return
        if not self.warehouse.is_file():
            raise SemanticLayerError(
                f"no published warehouse at {self.warehouse}; run `make transform` (or `make pipeline`) first"
            )
        self.run_dir, pinned = make_run_dir(self.warehouse)
        manifest = stored_manifest(pinned)
        if manifest is not None:
            self.manifest_source = f"stored in {self.warehouse.name} (ops.{MANIFEST_TABLE})"
        else:
            print(
                f"metrics: warning: {self.warehouse} carries no semantic manifest (published before the "
                f"semantic layer, or by an older transform); parsing {PROJECT_DIR} instead, whose "
                "definitions may differ from that build's. Run `make transform` to publish one.",
                file=sys.stderr,
            )
            manifest = parse_manifest(self.run_dir, catalog=self.warehouse.stem)
            self.manifest_source = f"parsed from {PROJECT_DIR}"
        catalog = manifest_catalog(manifest)
        write_project(self.run_dir, pinned, catalog, manifest)
        self._config = start_engine(self.run_dir)

    def _open_postgres(self) -> None:
        import tempfile

        from billable.engine import EngineError, postgres_reader_settings

        try:
            reader = postgres_reader_settings()
        except EngineError as error:
            raise SemanticLayerError(str(error)) from error
        check_published_postgres(reader)
        self.run_dir = Path(tempfile.mkdtemp(prefix="billable-metrics-"))
        output = postgres_output(reader)
        self._environ = {
            PASSWORD_ENV: reader.password,
            "PGOPTIONS": "-c default_transaction_read_only=on"
            f" -c statement_timeout={STATEMENT_TIMEOUT_S * 1000}",
        }
        manifest = parse_manifest(
            self.run_dir,
            catalog=reader.database,
            output=output,
            env={**self._environ, "BILLABLE_SCHEMA_PREFIX": ""},
        )
        self.manifest_source = f"parsed from {PROJECT_DIR} for {reader.describe()}"
        write_project(self.run_dir, None, reader.database, manifest, output=output)
        with self._session_environ():
            self._config = start_engine(self.run_dir)

    @contextlib.contextmanager
    def _session_environ(self):
        """The session's environment (PostgreSQL: the password, read-only PGOPTIONS) while MetricFlow
        may open a connection; restored afterwards, so other connections of the process are not read-only."""
        saved = {name: os.environ.get(name) for name in self._environ}
        os.environ.update(self._environ)
        try:
            yield
        finally:
            for name, value in saved.items():
                if value is None:
                    os.environ.pop(name, None)
                else:
                    os.environ[name] = value

    def close(self) -> None:
        if self._config is not None:
            with contextlib.suppress(Exception):
                self._config.sql_client.close()
            self._config = None
        if self.run_dir is not None:
            shutil.rmtree(self.run_dir, ignore_errors=True)
            self.run_dir = None

    @property
    def config(self):  # dbt_metricflow.cli.cli_configuration.CLIConfiguration
        if self._config is None:
            raise SemanticLayerError("not open; use `with SemanticLayer(path) as layer:`")
        return self._config

    def query(
        self,
        metrics: Sequence[str],
        group_by: Sequence[str] = (),
        where: Sequence[str] = (),
        order_by: Sequence[str] = (),
        limit: int | None = None,
        start_time: dt.datetime | None = None,
        end_time: dt.datetime | None = None,
    ) -> QueryResult:
        """Run a metric query; rows come back in MetricFlow's column order."""
        request = _request(metrics, group_by, where, order_by, limit, start_time, end_time)
        with _ENGINE_LOCK, self._session_environ():
            result = self.config.mf.query(mf_request=request)
        table = result.result_df
        columns = list(table.column_names) if table is not None else []
        rows = [tuple(row) for row in table.rows] if table is not None else []
        return QueryResult(columns=columns, rows=rows, sql=result.sql)

    def explain(
        self,
        metrics: Sequence[str],
        group_by: Sequence[str] = (),
        where: Sequence[str] = (),
        order_by: Sequence[str] = (),
        limit: int | None = None,
    ) -> str:
        """The SQL MetricFlow would run for a query, without running it."""
        request = _request(metrics, group_by, where, order_by, limit, None, None)
        with _ENGINE_LOCK, self._session_environ():
            explained = self.config.mf.explain(mf_request=request)
        return explained.sql_statement.without_descriptions.sql

    def run_mf(self, args: Sequence[str]) -> int:
        """Run an `mf` subcommand (query, list, dimension-values, validate-configs, ...) in-process."""
        from dbt_metricflow.cli.main import cli

        if not args or args[0] in ("-h", "--help"):
            names = ", ".join(sorted(cli.commands))
            print(f"usage: python -m billable.metrics [--warehouse FILE] COMMAND [ARGS]; COMMAND: {names}")
            return 0
        command = cli.commands.get(args[0])
        if command is None:
            known = ", ".join(sorted(cli.commands))
            raise SemanticLayerError(f"unknown mf command {args[0]!r}; one of {known}")
        # The subcommand directly, not mf's group: the group checks PyPI for a newer release first.
        try:
            with _ENGINE_LOCK, self._session_environ():
                command.main(args=list(args[1:]), prog_name=f"mf {args[0]}", obj=self.config)
        except SystemExit as done:
            code = done.code
            return code if isinstance(code, int) else (0 if code is None else 1)
        return 0


def _request(metrics, group_by, where, order_by, limit, start_time, end_time):
    from metricflow.engine.metricflow_engine import MetricFlowQueryRequest

    return MetricFlowQueryRequest.create(
        metric_names=list(metrics),
        group_by_names=list(group_by or ()) or None,
        where_constraints=list(where or ()) or None,
        order_by_names=list(order_by or ()) or None,
        limit=limit,
        time_constraint_start=start_time,
        time_constraint_end=end_time,
    )


# --- the run folder: a pinned build, its manifest, a read-only profile ----------------------------


def make_run_dir(warehouse: Path) -> tuple[Path, Path]:
    """A private folder for one session and the published file pinned in it; (folder, pinned file).

    A hard link keeps this session on the build it started with (a publish renames another file
    over the published name; the linked inode stays). Where a link cannot be made (another file
    system, no write access beside the warehouse), the session runs from a temporary folder and
    reads the published path itself: still read-only, but a publish during the session is seen
    by the next connection MetricFlow opens.
    """
    parent = warehouse.parent / RUN_FOLDER
    try:
        parent.mkdir(exist_ok=True)
        remove_stale_run_dirs(parent)
        run_dir = parent / f"{os.getpid()}-{secrets.token_hex(4)}"
        run_dir.mkdir()
    except OSError:
        import tempfile

        return Path(tempfile.mkdtemp(prefix="billable-metrics-")), warehouse
    pinned = run_dir / warehouse.name
    try:
        os.link(warehouse, pinned)
    except OSError:
        return run_dir, warehouse
    return run_dir, pinned


def remove_stale_run_dirs(parent: Path) -> None:
    """Delete run folders whose process is gone (a killed session leaves its hard link behind,
    which would keep an old build's disk space allocated)."""
    for folder in parent.iterdir():
        pid_text = folder.name.split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        try:
            os.kill(int(pid_text), 0)
        except ProcessLookupError:
            shutil.rmtree(folder, ignore_errors=True)
        except PermissionError:
            pass  # alive, another user's


def stored_manifest(warehouse: Path) -> dict | None:
    """The semantic manifest the transform stored in the file; None when it has none."""
    with duckdb.connect(str(warehouse), read_only=True) as connection:
        found = connection.execute(
            "select count(*) from information_schema.tables where table_schema = ? and table_name = ?",
            [MANIFEST_SCHEMA, MANIFEST_TABLE],
        ).fetchall()[0][0]
        if not found:
            return None
        rows = connection.execute(
            f"select manifest from {MANIFEST_SCHEMA}.{MANIFEST_TABLE} order by stored_at desc limit 1"
        ).fetchall()
    return json.loads(rows[0][0]) if rows else None


def parse_manifest(
    run_dir: Path, catalog: str, output: dict | None = None, env: dict[str, str] | None = None
) -> dict:
    """`dbt parse` of the checkout's project (8-10 s); its semantic_manifest.json. `output`: the
    profile target to parse for (default: DuckDB), `env`: added to dbt's environment."""
    target = run_dir / "parse-target"
    profiles = run_dir / "parse-profiles"
    profiles.mkdir()
    # Parsing opens no database, but dbt-duckdb names the catalog after the path's file name, and
    # the manifest's relations must carry the catalog the models were built under.
    output = output or {"type": "duckdb", "path": str(profiles / f"{catalog}.duckdb")}
    (profiles / "profiles.yml").write_text(
        yaml.safe_dump({"billable": {"target": "parse", "outputs": {"parse": output}}})
    )
    command = [
        str(Path(sys.executable).with_name("dbt")),
        "parse",
        "--project-dir",
        str(PROJECT_DIR),
        "--profiles-dir",
        str(profiles),
        "--target-path",
        str(target),
        "--log-path",
        str(run_dir / "parse-logs"),
        "--no-partial-parse",
        "--quiet",
    ]
    environ = {**os.environ, **(env or {})}
    result = subprocess.run(
        command, cwd=PROJECT_DIR, capture_output=True, text=True, check=False, env=environ
    )
    manifest_file = target / "semantic_manifest.json"
    if result.returncode != 0 or not manifest_file.is_file():
        tail = (result.stdout + result.stderr)[-4000:]
        raise SemanticLayerError(f"dbt parse of {PROJECT_DIR} failed:\n{tail}")
    return json.loads(manifest_file.read_text())


def manifest_catalog(manifest: dict) -> str:
    """The DuckDB catalog the models were built under (the build file's name: `warehouse`)."""
    catalogs = {model["node_relation"]["database"] for model in manifest.get("semantic_models", [])}
    for spine in manifest.get("project_configuration", {}).get("time_spines", []):
        catalogs.add(spine["node_relation"]["database"])
    if len(catalogs) != 1:
        raise SemanticLayerError(
            f"the semantic manifest's relations live in {sorted(catalogs) or 'no'} catalogs; expected one"
        )
    return catalogs.pop()


def write_project(
    run_dir: Path, warehouse: Path | None, catalog: str, manifest: dict, output: dict | None = None
) -> None:
    """What `mf` reads: dbt_project.yml, profiles.yml and target/semantic_manifest.json. `output`:
    the profile target (PostgreSQL's); default, DuckDB attaching `warehouse` read-only."""
    project = {"name": PROFILE_NAME, "version": "1.0", "config-version": 2, "profile": PROFILE_NAME}
    (run_dir / "dbt_project.yml").write_text(yaml.safe_dump(project))
    output = output or {
        "type": "duckdb",
        # An in-memory database that attaches the warehouse read-only: DuckDB then takes only a
        # shared lock, nothing can be written, and the build (another file) never waits on us.
        "path": ":memory:",
        "threads": 1,
        "attach": [{"path": str(warehouse), "alias": catalog, "read_only": True}],
    }
    profiles = {PROFILE_NAME: {"target": "published", "outputs": {"published": output}}}
    (run_dir / "profiles.yml").write_text(yaml.safe_dump(profiles))
    (run_dir / "target").mkdir(exist_ok=True)
    (run_dir / "target" / "semantic_manifest.json").write_text(json.dumps(manifest))


def postgres_output(reader) -> dict:
    """The profile target over the published schemas (the password from the environment)."""
    return {
        "type": "postgres",
        "host": reader.host,
        "port": reader.port,
        "user": reader.user,
        "password": "{{ env_var('" + PASSWORD_ENV + "', '') }}",
        "dbname": reader.database,
        "schema": "marts",
        "threads": 1,
        "connect_timeout": 30,
        "application_name": "billable-metrics",
    }


def check_published_postgres(reader) -> None:
    """SemanticLayerError unless the database is reachable and has a published `marts` schema."""
    import psycopg2

    try:
        connection = psycopg2.connect(connect_timeout=30, **reader.connect_kwargs())
    except psycopg2.Error as error:
        raise SemanticLayerError(
            f"cannot connect to {reader.describe()}: {' '.join(str(error).split())}"
        ) from error
    try:
        with connection.cursor() as cursor:
            cursor.execute("select exists (select 1 from pg_namespace where nspname = 'marts')")
            row = cursor.fetchone()
    finally:
        connection.close()
    if not (row and row[0]):
        raise SemanticLayerError(
            f"no published warehouse in {reader.describe()} (no `marts` schema); run `make transform` "
            "(or `make pipeline`) with BILLABLE_ENGINE=postgres first"
        )


def start_engine(run_dir: Path):
    """dbt-metricflow's CLI configuration over the run folder (runs `dbt debug` once, ~2 s)."""
    from dbt_metricflow.cli.cli_configuration import CLIConfiguration

    config = CLIConfiguration()
    # DBT_TARGET from the caller's environment would select a target this profile lacks.
    saved = {name: os.environ.pop(name, None) for name in ("DBT_TARGET", "DBT_PROFILE")}
    try:
        config.setup(dbt_profiles_path=run_dir, dbt_project_path=run_dir, configure_file_logging=False)
    finally:
        for name, value in saved.items():
            if value is not None:
                os.environ[name] = value
    # Bind this session's adapter and manifest now: dbt keeps one adapter per type per process,
    # and a session set up later would otherwise hand this one its own profile.
    config.mf  # noqa: B018
    return config


# --- the command line --------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m billable.metrics",
        description="MetricFlow over the published warehouse (any mf command), or `docs [--check]`.",
        usage="python -m billable.metrics [--warehouse FILE] [--timing] {query,list,...,docs} ...",
    )
    parser.add_argument("--warehouse", type=Path, default=DEFAULT_WAREHOUSE, help="default: %(default)s")
    parser.add_argument("--timing", action="store_true", help="print start-up and query times on stderr")
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    if args.command[0] == "docs":
        from billable.metrics_docs import docs_command

        return docs_command(check="--check" in args.command[1:])
    started = time.monotonic()
    try:
        from billable.engine import EngineError, engine_name

        if engine_name() == "spark":  # before anything starts: one line, exit 2
            print(f"metrics: {SPARK_UNSUPPORTED}", file=sys.stderr)
            return 2
    except EngineError as err:
        print(f"metrics: {err}", file=sys.stderr)
        return 2
    try:
        with SemanticLayer(args.warehouse, quiet=False) as layer:
            ready = time.monotonic()
            code = layer.run_mf(args.command)
            done = time.monotonic()
    except SemanticLayerError as err:
        print(f"metrics: {err}", file=sys.stderr)
        return 2
    if args.timing:
        print(
            f"metrics: start-up {ready - started:.2f} s, {args.command[0]} {done - ready:.2f} s, "
            f"total {time.monotonic() - started:.2f} s ({layer.manifest_source})",
            file=sys.stderr,
        )
    return code


if __name__ == "__main__":
    sys.exit(main())
