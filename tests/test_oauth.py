"""OAuth 2 as each system does it, over HTTP against the real sandbox: consent and code exchange with
the real `ingestion.authorize`, refresh and rotation, Salesforce's JWT bearer flow and its
`instance_url`, a run that crosses token expiries, a rotated refresh token that survives `kill -9`
between the store write and its use, a revoked grant (exit 2, one line) and a canary secret that
must appear nowhere but the token store."""

from __future__ import annotations

import json
import os
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import requests

from billable.sandbox_process import running_sandbox
from ingestion.auth import OAuth2, ReauthorizationNeeded, auth_for
from ingestion.http import make_client
from sandbox.world import World
from tests.ingest_helpers import ROOT, copy_world, generate_world, ingest_command, query
from tests.oauth_helpers import admin, authorize, oauth_env

API_PROBES = {  # one cheap read per system
    "salesforce": "/services/data/v60.0/query?q=SELECT+Id+FROM+User",
    "kantata": "/api/v1/workspaces.json",
    "harvest": "/v2/users",
    "quickbooks": "/v3/company/{realm}/preferences",
}


@pytest.fixture(scope="module")
def tiny(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return generate_world(tmp_path_factory.mktemp("oauth") / "tiny")


@pytest.fixture
def world(tiny: Path, tmp_path: Path) -> Path:
    return copy_world(tiny, tmp_path / "world")


def use_env(monkeypatch: pytest.MonkeyPatch, env: dict[str, str]) -> None:
    """The test process configured as the loaders are (dlt reads the environment)."""
    for name in [n for n in os.environ if n.startswith("SOURCES__")]:
        monkeypatch.delenv(name)
    for name, value in env.items():
        if name.startswith(("SOURCES__", "FIRM__")):
            monkeypatch.setenv(name, value)


def probe(base_url: str, system: str, world: Path, auth: object) -> requests.Response:
    realm = str(World(world).legal_entities[0]["realm_id"])
    client = make_client(base_url, auth, headers={"Harvest-Account-Id": "1"})  # type: ignore[arg-type]
    return client.session.get(base_url + API_PROBES[system].format(realm=realm), auth=client.auth)


def stored(env: dict[str, str], system: str) -> dict:
    return json.loads(Path(env[f"SOURCES__{system.upper()}__TOKEN_STORE"]).read_text())


def ingest(env: dict[str, str], raw_db: Path, sources: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        ingest_command(raw_db, sources), cwd=ROOT, env=env, capture_output=True, text=True, timeout=600
    )


@pytest.mark.parametrize("system", ["quickbooks", "harvest", "salesforce", "kantata"])
def test_consent_code_exchange_then_calls_and_renewal(
    system: str, world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_sandbox(world) as base_url:
        env = oauth_env(base_url, world, tmp_path / "credentials", (system,))
        done = authorize(env, system)
        assert done.returncode == 0, done.stderr
        assert "state=" in done.stdout and "response_type=code" in done.stdout
        store = Path(env[f"SOURCES__{system.upper()}__TOKEN_STORE"])
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        record = stored(env, system)
        assert record["access_token"]
        assert bool(record["refresh_token"]) == (system != "kantata")
        if system == "quickbooks":
            assert record["realm_id"] == str(World(world).legal_entities[0]["realm_id"])
        secret = env[f"SOURCES__{system.upper()}__CLIENT_SECRET"]
        for leaked in filter(None, (record["access_token"], record["refresh_token"], secret)):
            assert leaked not in done.stdout + done.stderr, "a token or secret was printed"

        use_env(monkeypatch, env)
        auth = auth_for(system)
        assert isinstance(auth, OAuth2)
        assert probe(base_url, system, world, auth).status_code == 200
        assert auth.renewals == 0, "the stored access token is used while it lasts"

        # A token the system no longer accepts: a 401, renewed once, the request sent again.
        probe_url = base_url + API_PROBES[system].format(realm="1")
        bogus = requests.get(probe_url, headers={"Authorization": "Bearer x"}, timeout=10)
        assert bogus.status_code == 401
        admin(base_url, {"expire_access": system})
        if system == "kantata":  # no refresh: the operator must consent again
            with pytest.raises(ReauthorizationNeeded, match="make authorize SYSTEM=kantata"):
                probe(base_url, system, world, auth)
            return
        answer = probe(base_url, system, world, auth)
        assert answer.status_code == 200, answer.text
        assert answer.history and answer.history[0].status_code == 401
        assert auth.renewals == 1
        renewed = stored(env, system)
        assert renewed["access_token"] != record["access_token"]
        if system in ("quickbooks", "harvest"):
            assert renewed["refresh_token"] != record["refresh_token"], "the refresh token rotates"
        else:
            assert renewed["refresh_token"] == record["refresh_token"], "Salesforce keeps its refresh token"
