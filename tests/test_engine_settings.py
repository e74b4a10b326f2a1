"""The engine setting (billable.engine): read from the environment or dlt's .dlt/*.toml, checked
before any work, and never printed with its password."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from billable.engine import EngineError, PostgresSettings, engine_name, postgres_settings
from tests.ingest_helpers import ROOT

SECRET = "s3cret-canary-7f1e"


def run(module: str, cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    import os

    ours = ("BILLABLE_", "DESTINATION__")
    base = {key: value for key, value in os.environ.items() if not key.startswith(ours)}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        env={**base, "PYTHONPATH": str(ROOT), **env},
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def test_an_unknown_engine_is_refused_naming_the_choices() -> None:
    assert engine_name({}) == "duckdb"
    assert engine_name({"BILLABLE_ENGINE": " Postgres "}) == "postgres"
    with pytest.raises(EngineError, match="BILLABLE_ENGINE='mysql' is not an engine; choose one of duckdb"):
        engine_name({"BILLABLE_ENGINE": "mysql"})


@pytest.mark.parametrize("module", ["billable.transform", "ingestion"])
def test_a_runner_exits_2_in_one_line_when_the_engine_or_its_connection_is_wrong(
    module: str, tmp_path: Path
) -> None:
    wrong = run(module, tmp_path, {"BILLABLE_ENGINE": "mysql"}, "--raw-db", str(tmp_path / "raw.duckdb"))
    assert wrong.returncode == 2, wrong.stdout + wrong.stderr
    assert "BILLABLE_ENGINE='mysql' is not an engine" in wrong.stderr
    assert "Traceback" not in wrong.stderr
    missing = run(module, tmp_path, {"BILLABLE_ENGINE": "postgres"}, "--raw-db", str(tmp_path / "raw.duckdb"))
    assert missing.returncode == 2, missing.stdout + missing.stderr
    assert "destination.postgres.credentials" in missing.stderr and "Traceback" not in missing.stderr


def test_the_connection_comes_from_dlts_secrets_file_in_either_form(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("DESTINATION__POSTGRES__CREDENTIALS", raising=False)
    monkeypatch.delenv("BILLABLE__POSTGRES__READER_CREDENTIALS", raising=False)
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".dlt").mkdir()
    secrets = tmp_path / ".dlt" / "secrets.toml"
    secrets.write_text(
        f'[destination.postgres.credentials]\nhost = "db.internal"\nport = 5433\nusername = "billable"\n'
        f'password = "{SECRET}"\ndatabase = "firm"\n'
    )
    table_form = postgres_settings()
    assert (table_form.host, table_form.port, table_form.user, table_form.database) == (
        "db.internal",
        5433,
        "billable",
        "firm",
    )
    assert table_form.password == SECRET and SECRET not in table_form.describe()
    secrets.write_text(
        f'[destination.postgres]\ncredentials = "postgresql://billable:{SECRET}@db.internal/firm"\n'
    )
    assert postgres_settings() == PostgresSettings("db.internal", 5432, "billable", SECRET, "firm")


def test_an_unreachable_postgres_is_one_line_without_the_password(tmp_path: Path) -> None:
    from billable.sandbox_process import free_port

    env = {
        "BILLABLE_ENGINE": "postgres",
        "DESTINATION__POSTGRES__CREDENTIALS": f"postgresql://billable:{SECRET}@127.0.0.1:{free_port()}/firm",
    }
    result = run("billable.transform", tmp_path, env, "--build-dir", str(tmp_path / "build"))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "cannot connect to PostgreSQL at postgresql://billable@127.0.0.1" in result.stderr
    assert SECRET not in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("key", "value", "named"),
    [
        ("BILLABLE__DUCKDB__MEMORY_LIMIT", "lots", "billable.duckdb.memory_limit"),
        ("BILLABLE__DUCKDB__THREADS", "0", "billable.duckdb.threads"),
    ],
)
def test_a_duckdb_setting_it_cannot_take_stops_the_loaders_and_the_transform(tmp_path, key, value, named):
    """Refused before anything runs, exit 2, one line naming the setting (billable.duckdb_config)."""
    env = {**os.environ, key: value}
    env.pop("BILLABLE_ENGINE", None)
    for command in (
        [sys.executable, "-m", "ingestion", "--raw-db", str(tmp_path / "raw.duckdb"), "--sources", "crm"],
        [sys.executable, "-m", "billable.transform", "--raw-db", str(tmp_path / "raw.duckdb")],
    ):
        result = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
        assert result.returncode == 2, result.stdout[-2000:] + result.stderr[-2000:]
        assert named in result.stderr and value in result.stderr, result.stderr[-2000:]
        assert "Traceback" not in result.stderr


def test_duckdb_settings_reach_every_connection(monkeypatch):
    """The configured limit is what DuckDB runs with, in this process and in dbt's profile."""
    import duckdb

    from billable.duckdb_config import dbt_env, duckdb_config

    monkeypatch.setenv("BILLABLE__DUCKDB__MEMORY_LIMIT", "700MiB")
    monkeypatch.setenv("BILLABLE__DUCKDB__THREADS", "1")
    with duckdb.connect(config=duckdb_config()) as connection:
        limit, threads = connection.execute(
            "select current_setting('memory_limit'), current_setting('threads')"
        ).fetchone()
    assert limit.startswith("700") and threads == 1
    assert dbt_env()["BILLABLE_DUCKDB_MEMORY_LIMIT"] == "700MiB"
