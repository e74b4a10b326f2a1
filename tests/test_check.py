"""`make check` / `python -m billable check` against a real sandbox, each kind of bad configuration,
the loaders' one-line exit 2 for a missing key, and a canary token that must never be written anywhere.

The sandbox accepts any non-empty bearer token (docs/sandbox.md), so the wrong-token test puts a
token gate in front of it: a proxy that passes the right token on and strips any other, so the
sandbox itself answers each system's own 401.
"""

from __future__ import annotations

import os
import re
import secrets
import subprocess
import sys
import threading
import tomllib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import duckdb
import pytest
import requests

from billable.sandbox_process import free_port, running_sandbox
from tests.ingest_helpers import FAST_RETRIES, ROOT, generate_world, ingest_command, sandbox_settings

SYSTEMS = ("firm", "salesforce", "kantata", "harvest", "hr_drop", "quickbooks", "sync", "engine", "dashboard")
HTTP_SYSTEMS = ("SALESFORCE", "KANTATA", "HARVEST", "QUICKBOOKS")
OURS = ("SOURCES__", "FIRM__", "REVERSE_ETL__", "BILLABLE_DASHBOARD_", "BILLABLE_ENGINE", "DESTINATION__")


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(tmp_path_factory.mktemp("check") / "world", preset="tiny", seed=5)


@pytest.fixture(scope="module")
def sandbox(world: Path) -> Iterator[str]:
    with running_sandbox(world) as base_url:
        yield base_url


def settings_env(base_url: str, world: Path, **changes: str | None) -> dict[str, str]:
    """The environment of a deployment configured for the sandbox, nothing inherited of ours;
    `changes` set a variable, or remove it when None."""
    env = {key: value for key, value in os.environ.items() if not key.startswith(OURS)}
    env.update({**sandbox_settings(base_url, world), **FAST_RETRIES})
    for name, value in changes.items():
        if value is None:
            env.pop(name, None)
        else:
            env[name] = value
    return env


def check(env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "billable", "check", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )


def lines(result: subprocess.CompletedProcess) -> dict[str, str]:
    """{system: its line after the name} of the check's output."""
    found = {}
    for line in result.stdout.splitlines():
        name, _, rest = line.partition(" ")
        if name in SYSTEMS:
            found[name] = rest.strip()
    return found


def assert_readable(result: subprocess.CompletedProcess) -> None:
    """No traceback, no dlt lookup trace: one line per system and a verdict."""
    output = result.stdout + result.stderr
    assert "Traceback" not in output and "ConfigFieldMissingException" not in output, output
    assert "following (config provider, key) were tried" not in output, output
    assert len(output.splitlines()) <= len(SYSTEMS) + 1, output


def test_make_check_against_the_sandbox_is_all_ok(sandbox: str, world: Path) -> None:
    # `-o .venv/.installed`: the venv is installed; the test must never reinstall it
    result = subprocess.run(
        ["make", "--no-print-directory", "-s", "-o", ".venv/.installed", "check"],
        cwd=ROOT,
        env=settings_env(sandbox, world),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert_readable(result)
    found = lines(result)
    assert sorted(found) == sorted(SYSTEMS), result.stdout
    assert all(line.startswith("ok: ") for line in found.values()), result.stdout
    assert f"GET {sandbox}/services/data/v60.0/query answered 200" in found["salesforce"]
    assert f"GET {sandbox}/api/v1/workspaces answered 200" in found["kantata"]
    assert f"GET {sandbox}/v2/users answered 200" in found["harvest"]
    assert "preferences answered 200 for 3 realm(s)" in found["quickbooks"], found["quickbooks"]
    assert "sandbox-token" not in result.stdout + result.stderr
    assert result.stdout.rstrip().endswith(f"check: all {len(SYSTEMS)} ok")


@pytest.mark.parametrize(
    ("variable", "system", "key", "where"),
    [
        ("SOURCES__KANTATA__ACCESS_TOKEN", "kantata", "sources.kantata.access_token", ".dlt/secrets.toml"),
        ("SOURCES__HARVEST__ACCOUNT_ID", "harvest", "sources.harvest.account_id", ".dlt/config.toml"),
        ("SOURCES__SALESFORCE__BASE_URL", "salesforce", "sources.salesforce.base_url", ".dlt/config.toml"),
        ("SOURCES__HR_DROP__DROP_FOLDER", "hr_drop", "sources.hr_drop.drop_folder", ".dlt/config.toml"),
    ],
)
def test_a_missing_key_is_named_with_where_to_set_it(
    sandbox: str, world: Path, variable: str, system: str, key: str, where: str
) -> None:
    result = check(settings_env(sandbox, world, **{variable: None}))
    assert result.returncode == 2, result.stdout + result.stderr
    assert_readable(result)
    found = lines(result)
    assert found[system].startswith(f"FAILED: missing {key} (set {variable} in the environment"), found
    assert where in found[system]
    others = [name for name, line in found.items() if name != system and not line.startswith("ok")]
    assert others == [], result.stdout
    assert f"1 of {len(SYSTEMS)} FAILED ({system})" in result.stderr


class TokenGate(ThreadingHTTPServer):
    """A proxy to the sandbox that passes only `good` on as the bearer token (any other is dropped,
    so the sandbox answers its system's own 401)."""

    daemon_threads = True

    def __init__(self, upstream: str, good: str) -> None:
        gate = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                headers = {
                    name: value
                    for name, value in self.headers.items()
                    if name.lower() not in ("host", "authorization", "connection")
                }
                if self.headers.get("Authorization") == f"Bearer {gate.good}":
                    headers["Authorization"] = f"Bearer {gate.good}"
                answer = requests.get(gate.upstream + self.path, headers=headers, timeout=60)
                self.send_response(answer.status_code)
                self.send_header("Content-Type", answer.headers.get("Content-Type", "application/json"))
                self.send_header("Content-Length", str(len(answer.content)))
                self.end_headers()
                self.wfile.write(answer.content)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.upstream, self.good = upstream, good
        super().__init__(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


@pytest.fixture
def gate(sandbox: str) -> Iterator[TokenGate]:
    server = TokenGate(sandbox, good=secrets.token_hex(16))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


def test_a_wrong_token_is_answered_with_each_systems_own_401(gate: TokenGate, world: Path) -> None:
    good = settings_env(gate.url, world, **{f"SOURCES__{s}__ACCESS_TOKEN": gate.good for s in HTTP_SYSTEMS})
    assert check(good, "--systems", "salesforce,kantata,harvest,quickbooks").returncode == 0
    wrong = f"wrong-{secrets.token_hex(12)}"
    result = check(
        settings_env(gate.url, world, **{f"SOURCES__{s}__ACCESS_TOKEN": wrong for s in HTTP_SYSTEMS})
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert_readable(result)
    found = lines(result)
    expected = {
        "salesforce": "INVALID_SESSION_ID: Session expired or invalid",
        "kantata": "You must be logged in",
        "harvest": "invalid_token",
        "quickbooks": "AuthenticationFailed",
    }
    for system, message in expected.items():
        line = found[system]
        assert line.startswith("FAILED: ") and " answered 401 " in line and message in line, line
        assert f"check sources.{system}.access_token" in line, line
    assert wrong not in result.stdout + result.stderr and gate.good not in result.stdout + result.stderr
    assert found["quickbooks"].startswith(
        "FAILED: realm 9130350000000001, 9130350000000002, 9130350000000003: GET "
    )
    assert found["firm"].startswith("ok") and found["hr_drop"].startswith("ok")


def test_an_unreachable_base_url_names_the_url_and_the_refusal(sandbox: str, world: Path) -> None:
    closed = f"http://127.0.0.1:{free_port()}"
    result = check(settings_env(sandbox, world, SOURCES__HARVEST__BASE_URL=closed))
    assert result.returncode == 2, result.stdout + result.stderr
    assert_readable(result)
    line = lines(result)["harvest"]
    assert line.startswith(f"FAILED: cannot connect to {closed}/v2/users: connection refused"), line


def test_a_missing_hr_drop_folder_is_named(sandbox: str, world: Path, tmp_path: Path) -> None:
    folder = tmp_path / "no-such-drop"
    result = check(settings_env(sandbox, world, SOURCES__HR_DROP__DROP_FOLDER=str(folder)))
    assert result.returncode == 2, result.stdout + result.stderr
    assert_readable(result)
    assert lines(result)["hr_drop"].startswith(f"FAILED: the HR drop folder {folder} does not exist")
    (tmp_path / "a-file").write_text("")
    not_folder = check(settings_env(sandbox, world, SOURCES__HR_DROP__DROP_FOLDER=str(tmp_path / "a-file")))
    assert "is not a folder" in lines(not_folder)["hr_drop"], not_folder.stdout


def test_invalid_legal_entities_json_is_named(sandbox: str, world: Path) -> None:
    result = check(settings_env(sandbox, world, FIRM__LEGAL_ENTITIES='[{"code": "US",'))
    assert result.returncode == 2, result.stdout + result.stderr
    assert_readable(result)
    found = lines(result)
    assert found["firm"].startswith("FAILED: firm.legal_entities is not valid JSON"), found["firm"]
    # the ERP's realms come from the declaration: it cannot be checked either, and says why
    assert "firm.legal_entities is not valid JSON" in found["quickbooks"]


def test_an_unknown_realm_is_the_erps_own_answer(sandbox: str, world: Path) -> None:
    result = check(settings_env(sandbox, world, SOURCES__QUICKBOOKS__REALMS='["4620816365000000000"]'))
    assert result.returncode == 2
    line = lines(result)["quickbooks"]
    assert line.startswith("FAILED: realm 4620816365000000000: GET ") and "answered 403" in line, line
    assert "ApplicationAuthorizationFailed" in line, line


@pytest.mark.parametrize(
    ("variable", "key"),
    [
        ("SOURCES__SALESFORCE__ACCESS_TOKEN", "sources.salesforce.access_token"),
        # config.toml has no sandbox default any more: an unset base URL is named, not guessed
        ("SOURCES__KANTATA__BASE_URL", "sources.kantata.base_url"),
    ],
)
def test_a_loader_missing_a_key_exits_2_naming_it_in_one_line(
    sandbox: str, world: Path, tmp_path: Path, variable: str, key: str
) -> None:
    raw_db = tmp_path / "raw.duckdb"
    result = subprocess.run(
        ingest_command(raw_db, "firm,crm,psa"),
        cwd=ROOT,
        env=settings_env(sandbox, world, **{variable: None}),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    assert result.stdout == "", "nothing loaded, not even the sources before it"
    [line] = result.stderr.splitlines()
    assert key in line and variable in line, line
    assert "Traceback" not in line and "Environment Variables" not in line
    assert not raw_db.exists()


def test_the_daily_run_checks_first_and_stops_before_any_work_naming_the_key(
    sandbox: str, world: Path, tmp_path: Path
) -> None:
    """`make daily` against a deployment whose Harvest account id is missing: the check's line for
    Harvest, exit 2, before the raw database exists; the other systems were fine and say nothing."""
    raw_db = tmp_path / "raw.duckdb"
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "billable.pipeline",
            "--live",
            "--raw-db",
            str(raw_db),
            "--console",
            "readable",
        ],
        cwd=ROOT,
        env=settings_env(sandbox, world, SOURCES__HARVEST__ACCOUNT_ID=None),
        capture_output=True,
        text=True,
        check=False,
        timeout=300,
    )
    assert result.returncode == 2, result.stdout + result.stderr
    said = [line for line in result.stderr.splitlines() if line.startswith("daily: check: ")]
    assert said == [
        "daily: check: harvest: missing sources.harvest.account_id (set SOURCES__HARVEST__ACCOUNT_ID "
        "in the environment or account_id under [sources.harvest] in .dlt/config.toml)"
    ], result.stderr
    assert "Traceback" not in result.stdout + result.stderr
    assert not raw_db.exists(), "nothing touched"
    assert "daily: ingest …" not in result.stdout, "no step started"


def test_config_toml_has_no_system_defaults_and_the_example_lists_every_token() -> None:
    config = tomllib.loads((ROOT / ".dlt" / "config.toml").read_text())
    example = tomllib.loads((ROOT / ".dlt" / "secrets.toml.example").read_text())
    for system in ("salesforce", "kantata", "harvest", "quickbooks"):
        assert "base_url" not in config["sources"][system], system
        credentials = set(example["sources"][system])
        assert credentials and credentials <= {"access_token", "client_id", "client_secret"}, system
        assert all(value == "" for value in example["sources"][system].values()), (
            f"{system}: a filled-in value"
        )
    assert "drop_folder" in (ROOT / ".dlt" / "config.toml").read_text()
    # every key the connectors' auth reads is documented there, the OAuth ones included
    read_by_auth = set(
        re.findall(r'_get\(f"\{section\}\.(\w+)"', (ROOT / "ingestion" / "auth.py").read_text())
    )
    assert {"client_id", "client_secret", "refresh_token", "token_store", "private_key_file"} <= read_by_auth
    text = (ROOT / ".dlt" / "secrets.toml.example").read_text()
    assert not [key for key in read_by_auth if not re.search(rf"\b{key}\b", text)]


def mentions(path: Path, needle: str) -> list[str]:
    """Every table or view of a DuckDB file with a row whose text holds `needle`."""
    found = []
    with duckdb.connect(str(path), read_only=True) as connection:
        relations = connection.execute(
            "select table_schema, table_name from information_schema.tables "
            "where table_schema not in ('information_schema', 'pg_catalog')"
        ).fetchall()
        for schema, table in relations:
            qualified = f'"{schema}"."{table}"'
            [(count,)] = connection.execute(
                f"select count(*) from {qualified} as t where t::varchar like ?", [f"%{needle}%"]
            ).fetchall()
            if count:
                found.append(f"{schema}.{table}")
    return found


def test_the_canary_search_finds_a_planted_value(tmp_path: Path) -> None:
    """The search below can fail: a value planted in a table is found."""
    path = tmp_path / "planted.duckdb"
    with duckdb.connect(str(path)) as connection:
        connection.execute("create schema raw_x")
        connection.execute("create table raw_x.t (id int, note varchar)")
        connection.execute("insert into raw_x.t values (1, 'x'), (2, 'has canary-abc inside')")
    assert mentions(path, "canary-abc") == ["raw_x.t"]


def test_a_canary_token_is_never_printed_logged_or_stored(sandbox: str, world: Path, tmp_path: Path) -> None:
    canary = f"canary-{secrets.token_hex(16)}"
    env = settings_env(sandbox, world, **{f"SOURCES__{s}__ACCESS_TOKEN": canary for s in HTTP_SYSTEMS})
    checked = check(env)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    data = tmp_path / "data"
    raw_db = data / "raw.duckdb"
    loaded = subprocess.run(
        ingest_command(raw_db, ""),
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
        timeout=600,
    )
    assert loaded.returncode == 0, loaded.stdout[-3000:] + loaded.stderr[-3000:]
    command = [sys.executable, "-m", "billable.transform", "--raw-db", str(raw_db)]
    command += ["--warehouse", str(data / "warehouse.duckdb"), "--build-dir", str(data / "build")]
    built = subprocess.run(
        command, cwd=ROOT, env=env, capture_output=True, text=True, check=False, timeout=900
    )
    assert built.returncode == 0, built.stdout[-3000:] + built.stderr[-3000:]
    for output in (checked, loaded, built):
        assert canary not in output.stdout + output.stderr
    warehouse = data / "warehouse.duckdb"
    assert mentions(raw_db, canary) == [] and mentions(warehouse, canary) == []
    # every file the run left: dlt's pipeline state and traces, dbt's logs and artifacts, the databases
    files = [path for path in data.rglob("*") if path.is_file()]
    assert len(files) > 20
    assert [path for path in files if canary.encode() in path.read_bytes()] == []


def test_with_oauth_every_system_is_checked_with_a_token_and_a_revoked_grant_names_make_authorize(
    sandbox: str, world: Path, tmp_path: Path
) -> None:
    """Each system on OAuth (clients registered now, consent through `python -m ingestion.authorize`):
    the check gets a token from each token endpoint and reads with it. Then the ERP's grant is revoked
    and its access tokens expired: the QuickBooks line (and the sync's, which shares its grant) says
    it must be re-authorised and how; the other systems stay ok; exit 2."""
    from tests.oauth_helpers import admin, authorize, oauth_env

    env = oauth_env(sandbox, world, tmp_path / "credentials")
    for system in ("salesforce", "kantata", "harvest", "quickbooks"):
        consented = authorize(env, system)
        assert consented.returncode == 0, consented.stdout + consented.stderr
    result = check(env)
    assert_readable(result)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "OAuth" in lines(result)["sync"]
    admin(sandbox, {"revoke": {"system": "quickbooks"}, "expire_access": "quickbooks"})
    result = check(env)
    assert_readable(result)
    assert result.returncode == 2
    found = lines(result)
    assert (
        found["quickbooks"].startswith("FAILED") and "make authorize SYSTEM=quickbooks" in found["quickbooks"]
    )
    assert all(found[system].startswith("ok") for system in ("salesforce", "kantata", "harvest"))
    for value in (env[f"SOURCES__{s}__CLIENT_SECRET"] for s in HTTP_SYSTEMS):
        assert value not in result.stdout + result.stderr
