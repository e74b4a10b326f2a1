"""Which engine holds the warehouse: one setting, `BILLABLE_ENGINE=duckdb|postgres|spark`.

DuckDB (the default) keeps the raw data and the warehouse in local files. PostgreSQL keeps both in
one shared database: the raw datasets as schemas (`raw_crm`, ...), the warehouse as the published
schemas (`marts`, `ops`, ...), built first in `build_*` schemas (billable.publish_postgres).
Spark reads the raw data as Parquet written by dlt's filesystem destination and builds with
dbt-spark (docs/deploy.md).

The connection lives where dlt and dbt users expect it: PostgreSQL's in dlt's configuration
(`[destination.postgres] credentials = "postgresql://user:password@host:5432/database"` in
.dlt/secrets.toml, or the environment variable DESTINATION__POSTGRES__CREDENTIALS); this module
reads it once and hands it to dbt (profiles.yml reads BILLABLE_PG_*) and to the readers. The
readers (dashboards) use `[billable.postgres] reader_credentials` when set: a read-only role.

Nothing here prints a secret: `describe()` shows the host, port, database and user only.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any
from urllib.parse import unquote, urlsplit

ENGINE_ENV = "BILLABLE_ENGINE"
ENGINES = ("duckdb", "postgres", "spark")
DEFAULT_ENGINE = "duckdb"

CREDENTIALS_KEY = "destination.postgres.credentials"
READER_KEY = "billable.postgres.reader_credentials"

# The raw side's own log (ingestion/load_log.py) lives in the raw database's `ops` schema on DuckDB
# (a separate file from the warehouse). PostgreSQL holds both in one database, and the warehouse
# has an `ops` schema of its own, so the raw log is `raw_ops` there.
RAW_OPS_SCHEMA = {"duckdb": "ops", "postgres": "raw_ops", "spark": "raw_ops"}


class EngineError(ValueError):
    """A configuration error about the engine: the runners exit 2 with its message."""


def engine_name(environ: dict[str, str] | None = None) -> str:
    """The configured engine, checked (EngineError names the bad value and the choices)."""
    value = (environ if environ is not None else os.environ).get(ENGINE_ENV, "").strip().lower()
    if not value:
        return DEFAULT_ENGINE
    if value not in ENGINES:
        raise EngineError(f"{ENGINE_ENV}={value!r} is not an engine; choose one of {', '.join(ENGINES)}")
    return value


def raw_ops_schema(engine: str | None = None) -> str:
    return RAW_OPS_SCHEMA[engine or engine_name()]


@dataclass(frozen=True)
class PostgresSettings:
    """One PostgreSQL connection (never printed whole: `describe()` leaves the password out)."""

    host: str
    port: int
    user: str
    password: str
    database: str

    @classmethod
    def from_dsn(cls, dsn: str, key: str = CREDENTIALS_KEY) -> PostgresSettings:
        parts = urlsplit(dsn)
        if parts.scheme not in ("postgresql", "postgres") or not parts.hostname or not parts.path.strip("/"):
            raise EngineError(
                f"{key} must look like postgresql://user:password@host:5432/database "
                f"(got a value with scheme {parts.scheme!r})"
            )
        return cls(
            host=parts.hostname,
            port=parts.port or 5432,
            user=unquote(parts.username or ""),
            password=unquote(parts.password or ""),
            database=unquote(parts.path.strip("/")),
        )

    def dsn(self) -> str:
        from urllib.parse import quote

        auth = quote(self.user, safe="") + (":" + quote(self.password, safe="") if self.password else "")
        return f"postgresql://{auth}@{self.host}:{self.port}/{quote(self.database, safe='')}"

    def connect_kwargs(self) -> dict[str, object]:
        return {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "password": self.password,
            "dbname": self.database,
        }

    def dbt_env(self) -> dict[str, str]:
        """What profiles.yml's `postgres` target reads."""
        return {
            "BILLABLE_PG_HOST": self.host,
            "BILLABLE_PG_PORT": str(self.port),
            "BILLABLE_PG_USER": self.user,
            "BILLABLE_PG_PASSWORD": self.password,
            "BILLABLE_PG_DATABASE": self.database,
        }

    def describe(self) -> str:
        return f"postgresql://{self.user}@{self.host}:{self.port}/{self.database}"


def configured(key: str) -> str | None:
    """A value from dlt's configuration: the environment (`A__B__C`), then `.dlt/secrets.toml` and
    `.dlt/config.toml` in the working directory or the checkout, as dlt looks them up. Read here
    without importing dlt (seconds of import in a dashboard's first request)."""
    env_name = key.upper().replace(".", "__")
    if os.environ.get(env_name):
        return os.environ[env_name]
    import tomllib
    from pathlib import Path

    folders = dict.fromkeys([Path.cwd() / ".dlt", Path(__file__).resolve().parent.parent / ".dlt"])
    for folder in folders:
        for name in ("secrets.toml", "config.toml"):
            try:
                value: object = tomllib.loads((folder / name).read_text())
            except (OSError, tomllib.TOMLDecodeError):
                continue
            for part in key.split("."):
                value = value.get(part) if isinstance(value, dict) else None
            if isinstance(value, dict):  # the [destination.postgres.credentials] table form
                return PostgresSettings(
                    host=str(value.get("host", "")),
                    port=int(value.get("port", 5432)),
                    user=str(value.get("username", value.get("user", ""))),
                    password=str(value.get("password", "")),
                    database=str(value.get("database", "")),
                ).dsn()
            if value:
                return str(value)
    return None


def postgres_settings() -> PostgresSettings:
    """The warehouse's PostgreSQL connection (EngineError when it is not configured)."""
    dsn = configured(CREDENTIALS_KEY)
    if not dsn:
        raise EngineError(
            f"{ENGINE_ENV}=postgres needs the connection: set {CREDENTIALS_KEY} in .dlt/secrets.toml "
            "or DESTINATION__POSTGRES__CREDENTIALS=postgresql://user:password@host:5432/database"
        )
    return PostgresSettings.from_dsn(dsn)


def postgres_reader_settings() -> PostgresSettings:
    """The readers' connection: the read-only role when configured, else the warehouse's own."""
    dsn = configured(READER_KEY)
    return PostgresSettings.from_dsn(dsn, READER_KEY) if dsn else postgres_settings()


def connect(settings: PostgresSettings | None = None, autocommit: bool = False) -> Any:
    """A psycopg2 connection to the warehouse's database (or `settings`')."""
    import psycopg2

    connection = psycopg2.connect(
        **(settings or postgres_settings()).connect_kwargs(), connect_timeout=30, application_name="billable"
    )
    connection.autocommit = autocommit
    return connection


@contextmanager
def transaction(settings: PostgresSettings | None = None) -> Iterator[Any]:
    """A cursor in one transaction (committed at the end of the block, rolled back on error), closed."""
    connection = connect(settings)
    try:
        with connection, connection.cursor() as cursor:
            yield cursor
    finally:
        connection.close()
