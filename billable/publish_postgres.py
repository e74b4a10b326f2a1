"""Write, audit, publish on PostgreSQL (BILLABLE_ENGINE=postgres; docs/publishing.md, docs/deploy.md).

The warehouse lives in one database, beside the raw schemas (`raw_*`) the loaders write:

- write: dbt builds into the `build_<schema>` schemas (`build_staging`, `build_marts`, ...), which
  persist between runs like DuckDB's working file: incremental models and history keep their state
  there, and `build_ops.transform_runs` records every run, failed or not;
- audit: the same `dbt build` runs every test (billable.transform reads run_results.json);
- publish, only when all passed: every relation of each build schema is copied into a fresh
  `<schema>__next` (tables, granted to the readers' role), then ONE transaction renames each
  published `<schema>` to `<schema>__old` and `<schema>__next` to `<schema>`. Readers never wait:
  a rename takes no lock that a query holds, a query already running finishes on the old tables,
  the next one resolves the new names. The `__old` schemas are dropped afterwards with a short lock
  timeout (a reader still on them only delays the drop to the next publish).

A kill at any point leaves either yesterday's warehouse or today's published, never a mixture:
leftover `__next` / `__old` schemas are dropped at the next publish. Two transforms (on two
machines) exclude each other with an advisory lock held for the whole run.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from typing import Any

from billable.engine import (
    PostgresSettings,
    connect,
    postgres_reader_settings,
    postgres_settings,
    transaction,
)
from billable.run_lock import LockHeld

BUILD_PREFIX = "build_"
# What is published, in this order: dbt's schemas (dbt_project.yml) and the runner's own `ops`.
SCHEMAS = ("seeds", "staging", "intermediate", "marts", "ops")
# pg_try_advisory_lock's key: one transform per database, whichever machine it runs on.
ADVISORY_LOCK_KEY = 0x42696C6C  # "Bill"

RUNS_TYPES = {"double": "double precision"}  # DuckDB type names billable.transform uses -> PostgreSQL's


class DatabaseLockHeld(LockHeld):
    """Another transform (maybe on another machine) holds the database's advisory lock."""

    def __init__(self, message: str) -> None:  # not a lock file: no path or pid file to name
        RuntimeError.__init__(self, message)


@contextmanager
def advisory_lock(wait_s: float = 0.0) -> Iterator[None]:
    """Hold the database's transform lock for the block (LockHeld when another transform has it)."""
    import time

    connection = connect(autocommit=True)
    try:
        deadline = time.monotonic() + max(wait_s, 0.0)
        with connection.cursor() as cursor:
            while True:
                cursor.execute("select pg_try_advisory_lock(%s)", [ADVISORY_LOCK_KEY])
                row = cursor.fetchone()
                if row and row[0]:
                    break
                if time.monotonic() >= deadline:
                    cursor.execute(
                        "select coalesce(a.client_addr::text, 'local') || ' pid ' || a.pid || ' since '"
                        " || a.backend_start from pg_locks l join pg_stat_activity a using (pid)"
                        " where l.locktype = 'advisory' and l.objid = %s and l.granted",
                        [ADVISORY_LOCK_KEY],
                    )
                    holder = cursor.fetchone()
                    raise DatabaseLockHeld(
                        f"another transform holds database {connection.info.dbname}'s lock "
                        f"({holder[0] if holder else 'holder unknown'}); not starting"
                    )
                time.sleep(1.0)
        yield
    finally:
        connection.close()  # ends the session: the advisory lock goes with it, even on kill -9


class PostgresWarehouse:
    """The warehouse's schemas in PostgreSQL: what billable.transform builds, records and publishes."""

    target = "postgres"

    def __init__(self, settings: PostgresSettings | None = None) -> None:
        self.settings = settings or postgres_settings()

    def describe(self) -> str:
        return f"{self.settings.describe()} (schemas {', '.join(SCHEMAS)})"

    def dbt_env(self) -> dict[str, str]:
        return {**self.settings.dbt_env(), "BILLABLE_SCHEMA_PREFIX": BUILD_PREFIX}

    def schemas(self, cursor: Any) -> set[str]:
        cursor.execute("select schema_name from information_schema.schemata")
        return {name for (name,) in cursor.fetchall()}

    def check_inputs(self) -> str | None:
        """What is missing before a build (None when the raw data is there)."""
        try:
            with transaction(self.settings) as cursor:
                present = self.schemas(cursor)
        except Exception as err:  # psycopg2.OperationalError: unreachable, refused, bad password
            return f"cannot connect to PostgreSQL at {self.settings.describe()}: {str(err).strip()}"
        if "raw_ops" not in present:
            where = self.settings.describe()
            return f"no raw data in {where} (schema raw_ops missing); run `make ingest` first"
        return None

    def prepare(self) -> None:
        """Start lost build schemas from the published ones (incremental state and history survive
        losing them, as DuckDB's working file does); the first run ever starts from nothing."""
        with transaction(self.settings) as cursor:
            present = self.schemas(cursor)
            if f"{BUILD_PREFIX}marts" in present or "marts" not in present:
                return
            where = self.settings.describe()
            print(f"transform: no build schemas in {where}; starting them from the published ones")
            for schema in SCHEMAS:
                if schema in present:
                    copy_schema(cursor, schema, f"{BUILD_PREFIX}{schema}")

    def record_run(self, run: dict, columns: dict[str, str]) -> bool:
        """Append the run to build_ops.transform_runs; False when the database cannot be written."""
        import psycopg2

        table = f"{BUILD_PREFIX}ops.transform_runs"
        try:
            with transaction(self.settings) as cursor:
                cursor.execute(f"create schema if not exists {BUILD_PREFIX}ops")
                cursor.execute(f"create table if not exists {table} (run_id varchar not null)")
                for column, sql_type in columns.items():
                    pg_type = RUNS_TYPES.get(sql_type, sql_type)
                    cursor.execute(f"alter table {table} add column if not exists {column} {pg_type}")
                values = ", ".join("%s" for _ in columns)
                cursor.execute(
                    f"insert into {table} ({', '.join(columns)}) values ({values})",
                    [run[column] for column in columns],
                )
        except psycopg2.Error as err:
            print(f"transform: warning: could not record the run in {table}: {err}", file=sys.stderr)
            return False
        return True

    def input_fingerprints(self) -> dict[str, str]:
        """The raw schemas' completed loads, the load log and the ledger's snapshot (build_scope)."""
        import psycopg2

        from billable.build_scope import dataset_fingerprints

        with transaction(self.settings) as cursor:

            def query(sql: str) -> tuple[Any, ...] | None:
                cursor.execute("savepoint fingerprint")
                try:
                    cursor.execute(sql)
                except psycopg2.errors.UndefinedTable:
                    cursor.execute("rollback to savepoint fingerprint")
                    return None
                row: tuple[Any, ...] | None = cursor.fetchone()
                return row

            def tables(schema: str) -> list[str]:
                listed = "select table_name from information_schema.tables where table_schema = %s order by 1"
                cursor.execute(listed, [schema])
                return [name for (name,) in cursor.fetchall()]

            found = dataset_fingerprints(query, tables, "raw_ops.load_log")
            # the snapshot is replaced whole by each sync: its content, order aside
            parts = []
            for table in ("line_states", "sync_runs"):
                row = query(f"select count(*), sum(hashtext(t::text)::bigint) from raw_ledger.{table} as t")
                parts.append("absent" if row is None else f"{row[0]}:{row[1]}")
            found["ledger"] = "/".join(parts)
        return found

    def last_run(self) -> dict[str, Any] | None:
        """The newest run in build_ops.transform_runs (None: none yet)."""
        import psycopg2

        try:
            with transaction(self.settings) as cursor:
                runs = f"{BUILD_PREFIX}ops.transform_runs"
                cursor.execute(f"select * from {runs} order by started_at desc limit 1")
                row = cursor.fetchone()
                names = [column[0] for column in cursor.description or []]
        except psycopg2.Error:
            return None
        return dict(zip(names, row, strict=True)) if row else None

    def store_semantic_manifest(self, run_id: str, manifest: str) -> None:
        with transaction(self.settings) as cursor:
            cursor.execute(f"create schema if not exists {BUILD_PREFIX}ops")
            cursor.execute(f"drop table if exists {BUILD_PREFIX}ops.semantic_manifest")
            cursor.execute(
                f"create table {BUILD_PREFIX}ops.semantic_manifest"
                " (run_id varchar, stored_at timestamp, manifest varchar)"
            )
            cursor.execute(
                f"insert into {BUILD_PREFIX}ops.semantic_manifest values (%s, %s, %s)",
                [run_id, datetime.now(UTC).replace(tzinfo=None), manifest],
            )

    def publish(self, metadata: dict) -> None:
        """Copy the build schemas to `__next`, then swap them in, all in one transaction."""
        connection = connect(self.settings)
        try:
            with connection, connection.cursor() as cursor:
                present = self.schemas(cursor)
                drop_leftovers(cursor, present)
                published = [schema for schema in SCHEMAS if f"{BUILD_PREFIX}{schema}" in present]
                for schema in published:
                    copy_schema(cursor, f"{BUILD_PREFIX}{schema}", f"{schema}__next")
                record_publication(cursor, metadata)
                grant_readers(cursor, [f"{schema}__next" for schema in published], self.reader_role())
            with connection, connection.cursor() as cursor:  # the swap: one transaction
                cursor.execute("set local lock_timeout = '60s'")
                present = self.schemas(cursor)
                for schema in published:
                    if schema in present:
                        cursor.execute(f'alter schema "{schema}" rename to "{schema}__old"')
                    cursor.execute(f'alter schema "{schema}__next" rename to "{schema}"')
            connection.autocommit = True
            with connection.cursor() as cursor:
                drop_old(cursor, published)
        finally:
            connection.close()

    def reader_role(self) -> str | None:
        """The readers' role when it differs from the writer's (granted the published schemas)."""
        reader = postgres_reader_settings()
        return reader.user if reader.user and reader.user != self.settings.user else None

    def published_exists(self) -> bool:
        with transaction(self.settings) as cursor:
            return "marts" in self.schemas(cursor)


def copy_schema(cursor: Any, source: str, target: str) -> int:
    """Create `target` afresh with a table for each relation of `source`; the number copied."""
    cursor.execute(f'drop schema if exists "{target}" cascade')
    cursor.execute(f'create schema "{target}"')
    cursor.execute(
        "select table_name from information_schema.tables where table_schema = %s order by table_name",
        [source],
    )
    names = [name for (name,) in cursor.fetchall()]
    for name in names:
        cursor.execute(f'create table "{target}"."{name}" as table "{source}"."{name}"')
    return len(names)


def record_publication(cursor: Any, metadata: dict) -> None:
    """`ops.publications` in the schema being published: what this publication is (warehouse.json's
    facts on DuckDB), and every earlier one kept from the current `ops`."""
    cursor.execute(
        "create table ops__next.publications (published_at timestamp not null, run_id varchar not null,"
        " engine varchar, git_commit varchar, dbt_version varchar, dbt_invocation_id varchar,"
        " full_refresh boolean, duration_s double precision, nodes varchar)"
    )
    cursor.execute(
        "select 1 from information_schema.tables where table_schema = 'ops' and table_name = 'publications'"
    )
    if cursor.fetchone():
        cursor.execute("insert into ops__next.publications select * from ops.publications")
    cursor.execute(
        "insert into ops__next.publications values (%s, %s, 'postgres', %s, %s, %s, %s, %s, %s)",
        [
            datetime.fromisoformat(metadata["published_at"]).astimezone(UTC).replace(tzinfo=None),
            metadata["run_id"],
            metadata["git_commit"],
            metadata["dbt_version"],
            metadata["dbt_invocation_id"],
            metadata["full_refresh"],
            metadata["duration_s"],
            json.dumps(metadata["nodes"]),
        ],
    )


def grant_readers(cursor: Any, schemas: list[str], role: str | None) -> None:
    if not role:
        return
    for schema in schemas:
        cursor.execute(f'grant usage on schema "{schema}" to "{role}"')
        cursor.execute(f'grant select on all tables in schema "{schema}" to "{role}"')


def drop_leftovers(cursor: Any, present: set[str]) -> None:
    """`__next` and `__old` schemas an interrupted publish left behind."""
    for schema in sorted(present):
        if schema.endswith(("__next", "__old")) and schema.split("__")[0] in SCHEMAS:
            cursor.execute(f'drop schema "{schema}" cascade')


def drop_old(cursor: Any, schemas: list[str]) -> None:
    """Drop the swapped-out schemas, waiting at most a few seconds for readers still on them."""
    import psycopg2

    for schema in schemas:
        try:
            cursor.execute("set lock_timeout = '5s'")
            cursor.execute(f'drop schema if exists "{schema}__old" cascade')
        except psycopg2.errors.LockNotAvailable:
            print(f"transform: {schema}__old is still read; the next publish drops it", file=sys.stderr)
