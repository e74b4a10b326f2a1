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
from pathlib import Path

import pytest
import requests

from billable.sandbox_process import running_sandbox
from ingestion.auth import OAuth2, ReauthorizationNeeded, auth_for
from ingestion.http import make_client
from sandbox.world import World
from tests.ingest_helpers import ROOT, copy_world, generate_world, ingest_command, ingest_env, query
from tests.oauth_helpers import admin, authorize, oauth_env, register

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


def table_counts(raw_db: Path) -> dict[str, int]:
    """Rows per raw table (dlt's own tables aside)."""
    tables = query(
        raw_db,
        "select table_schema, table_name from information_schema.tables "
        "where table_schema like 'raw_%' and table_name not like '_dlt%'",
    )
    return {f"{s}.{t}": query(raw_db, f'select count(*) from {s}."{t}"')[0][0] for s, t in tables}


def test_a_run_across_token_expiries_renews_and_loses_nothing(world: Path, tmp_path: Path) -> None:
    sources = "crm,psa,time,erp"
    with running_sandbox(world) as base_url:
        static = ingest({**os.environ, **ingest_env(base_url, world)}, tmp_path / "static.duckdb", sources)
        assert static.returncode == 0, static.stderr
        env = oauth_env(base_url, world, tmp_path / "credentials")
        for system in ("quickbooks", "harvest", "salesforce", "kantata"):
            assert authorize(env, system).returncode == 0
        # Access tokens live one second: the run renews many times, before expiry (QuickBooks,
        # Harvest: the answer says when) and on the 401 (Salesforce's answer does not say).
        lifetimes = {"quickbooks": 1, "harvest": 1, "salesforce": 1}
        admin(base_url, {"access_lifetime_s": lifetimes})
        # every answer 250 ms late: even the smallest source's run lasts longer than a token
        assert requests.post(f"{base_url}/_sandbox/faults", json={"slow_ms": 250}, timeout=10).ok
        before = {
            system: admin(base_url, {"expire_access": system})["refresh_grants"][system]
            for system in lifetimes
        }
        run = ingest(env, tmp_path / "oauth.duckdb", sources)
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr
        after = admin(base_url)["refresh_grants"]
    for system in lifetimes:
        assert after[system] - before[system] >= 2, f"{system}: the run should have renewed mid-run"
    expected = table_counts(tmp_path / "static.duckdb")
    assert expected and table_counts(tmp_path / "oauth.duckdb") == expected


def rsa_key_pem() -> tuple[str, str]:
    """A new RSA key (private PEM, public PEM), made at run time."""
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    return private.decode(), public.decode()


def test_salesforce_jwt_bearer_calls_the_instance_url_it_answers(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    private, public = rsa_key_pem()
    key_file = tmp_path / "salesforce.key"
    key_file.write_text(private)
    key_file.chmod(0o600)
    with running_sandbox(world) as base_url:
        static = ingest({**os.environ, **ingest_env(base_url, world)}, tmp_path / "static.duckdb", "crm")
        assert static.returncode == 0, static.stderr
        client_id, _ = register(base_url, "salesforce", jwt_public_key=public, instance_url=base_url)
        env = {**os.environ, **ingest_env(base_url, world)}
        del env["SOURCES__SALESFORCE__ACCESS_TOKEN"]
        env.update(
            {
                "SOURCES__SALESFORCE__CLIENT_ID": client_id,
                "SOURCES__SALESFORCE__USERNAME": "integration@firm.example",
                "SOURCES__SALESFORCE__PRIVATE_KEY_FILE": str(key_file),
                "SOURCES__SALESFORCE__AUTH_BASE_URL": base_url,
                # the login host is not the API host: calls must go to the answer's instance_url
                "SOURCES__SALESFORCE__BASE_URL": "http://127.0.0.1:9",
                "SOURCES__SALESFORCE__TOKEN_STORE": str(tmp_path / "credentials" / "salesforce.json"),
            }
        )
        consent = subprocess.run(
            [sys.executable, "-m", "ingestion.authorize", "salesforce"],
            cwd=ROOT, env=env, capture_output=True, text=True, timeout=120,
        )  # fmt: skip
        assert consent.returncode == 0, consent.stderr
        assert "no consent needed" in consent.stdout
        run = ingest(env, tmp_path / "jwt.duckdb", "crm")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr
        assert (
            json.loads((tmp_path / "credentials" / "salesforce.json").read_text())["instance_url"] == base_url
        )

        # An assertion signed by another key is refused: re-authorisation, named.
        other, _ = rsa_key_pem()
        key_file.write_text(other)
        (tmp_path / "credentials" / "salesforce.json").unlink()
        use_env(monkeypatch, env)
        with pytest.raises(ReauthorizationNeeded, match="make authorize SYSTEM=salesforce"):
            auth_for("salesforce").token()  # type: ignore[attr-defined]
    assert table_counts(tmp_path / "jwt.duckdb") == table_counts(tmp_path / "static.duckdb")


CRASH_AFTER_STORE = """
import os, signal, sys
from ingestion import auth, token_store

real_write = token_store.TokenStore.write

def write_then_die(self, record):
    real_write(self, record)
    print("stored", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)  # between the store write and the token's first use

token_store.TokenStore.write = write_then_die
import requests
answer = requests.get(sys.argv[1], auth=auth.auth_for("quickbooks"), timeout=30)  # a 401, then the refresh
print("used the new token", answer.status_code, flush=True)
"""


def test_a_rotated_refresh_token_survives_kill_9_between_store_and_use(
    world: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    with running_sandbox(world) as base_url:
        env = oauth_env(base_url, world, tmp_path / "credentials", ("quickbooks",))
        assert authorize(env, "quickbooks").returncode == 0
        first = stored(env, "quickbooks")
        admin(base_url, {"expire_access": "quickbooks"})
        realm = World(world).legal_entities[0]["realm_id"]
        url = f"{base_url}/v3/company/{realm}/preferences"
        child = subprocess.run(
            [sys.executable, "-c", CRASH_AFTER_STORE, url], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert child.returncode == -9 and child.stdout == "stored\n", (
            child.returncode,
            child.stdout,
            child.stderr,
        )
        rotated = stored(env, "quickbooks")
        assert rotated["refresh_token"] != first["refresh_token"], "the successor is on disk"

        # The next process: every access token expired, it must refresh with the stored successor.
        admin(base_url, {"expire_access": "quickbooks"})
        use_env(monkeypatch, env)
        auth = auth_for("quickbooks")
        assert probe(base_url, "quickbooks", world, auth).status_code == 200
        assert auth.renewals == 1  # type: ignore[attr-defined]
        # Using the successor retired the first refresh token (Intuit's rule): nothing else holds
        # a working grant, so had the successor been lost the firm would have to consent again.
        store = Path(env["SOURCES__QUICKBOOKS__TOKEN_STORE"])
        store.write_text(json.dumps({**first, "access_token": None}))
        with pytest.raises(ReauthorizationNeeded, match="make authorize SYSTEM=quickbooks"):
            auth_for("quickbooks").token()  # type: ignore[attr-defined]


def files_holding(root: Path, needles: list[str], skip: Path) -> list[str]:
    """Every file under `root` (except under `skip`) whose bytes hold one of `needles`."""
    found = []
    for path in root.rglob("*"):
        if path.is_file() and skip not in path.parents:
            data = path.read_bytes()
            found += [f"{path.relative_to(root)}" for needle in needles if needle.encode() in data]
    return found


def test_daily_run_with_oauth_keeps_secrets_out_and_a_revoked_grant_changes_nothing_published(
    world: Path, tmp_path: Path
) -> None:
    """The whole daily run (`billable.pipeline --live`) with OAuth for every system, the sync
    included (the loaders' QuickBooks token store, shared). A canary client secret and every
    issued token appear in no output and no file under data/ but the token store. Then QuickBooks
    revokes the grant: exit 2, one line naming the system and `make authorize`, no traceback, the
    published warehouse byte for byte as it was."""
    data = tmp_path / "data"
    credentials = data / "credentials"
    canary = f"CANARY-{os.urandom(8).hex()}"
    command = [sys.executable, "-m", "billable.pipeline", "--live", "--raw-db", str(data / "raw.duckdb")]
    with running_sandbox(world) as base_url:
        env = oauth_env(base_url, world, credentials, secret=canary)
        for system in ("quickbooks", "harvest", "salesforce", "kantata"):
            assert authorize(env, system).returncode == 0
        # QuickBooks tokens live 3 s from the first refresh on: the loads and the sync renew them
        admin(base_url, {"access_lifetime_s": {"quickbooks": 3}, "expire_access": "quickbooks"})
        first = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
        assert first.returncode == 0, first.stdout[-4000:] + first.stderr[-4000:]
        tokens = [
            token
            for store in credentials.glob("*.json")
            for key in ("access_token", "refresh_token")
            if (token := json.loads(store.read_text()).get(key))
        ]
        secrets_ = [canary, *tokens]
        assert not [s for s in secrets_ if s in first.stdout + first.stderr], "a secret in the run's output"
        assert not files_holding(data, secrets_, credentials), "a secret in a file under data/"
        assert admin(base_url)["refresh_grants"]["quickbooks"] >= 2

        warehouse = (data / "warehouse.duckdb").read_bytes()
        admin(base_url, {"revoke": {"system": "quickbooks"}, "expire_access": "quickbooks"})
        second = subprocess.run(command, cwd=ROOT, env=env, capture_output=True, text=True, timeout=1200)
    assert second.returncode == 2, second.stdout[-4000:] + second.stderr[-4000:]
    said = [line for line in second.stderr.splitlines() if "make authorize" in line]
    assert len(said) == 1 and "QuickBooks" in said[0] and "SYSTEM=quickbooks" in said[0], second.stderr
    assert "Traceback" not in second.stdout + second.stderr
    assert (data / "warehouse.duckdb").read_bytes() == warehouse, "the published warehouse changed"
    assert not [s for s in secrets_ if s in second.stdout + second.stderr]


def test_the_sandbox_settings_with_oauth_make_a_run_refresh(world: Path, tmp_path: Path) -> None:
    """`/_sandbox/settings?auth=oauth`: clients and a pre-authorised token store, as an operator has
    them after `make authorize`; the run's first call of each system refreshes."""
    with running_sandbox(world) as base_url:
        settings = requests.get(f"{base_url}/_sandbox/settings", params={"auth": "oauth"}, timeout=10).json()
        assert "SOURCES__QUICKBOOKS__ACCESS_TOKEN" not in settings
        assert settings["SOURCES__KANTATA__ACCESS_TOKEN"] == "sandbox-token"  # no refresh to exercise
        store = Path(settings["SOURCES__QUICKBOOKS__TOKEN_STORE"])
        assert stat.S_IMODE(store.stat().st_mode) == 0o600
        seeded = json.loads(store.read_text())["refresh_token"]
        run = ingest({**os.environ, **settings}, tmp_path / "raw.duckdb", "crm,time,erp")
        assert run.returncode == 0, run.stdout[-3000:] + run.stderr
        grants = admin(base_url)["refresh_grants"]
    assert all(grants[system] >= 1 for system in ("quickbooks", "harvest", "salesforce")), grants
    assert json.loads(store.read_text())["refresh_token"] != seeded, "QuickBooks' refresh token rotated"


RENEW_AND_CALL = """
import sys, requests
from ingestion import auth
answer = requests.get(sys.argv[1], auth=auth.auth_for("quickbooks"), timeout=60)
print(answer.status_code, flush=True)
"""


def test_two_processes_renewing_at_once_take_turns_on_the_store(world: Path, tmp_path: Path) -> None:
    """Both find the token expired; the store's lock lets one refresh and the other use what it
    stored: one refresh grant, both calls answered, the stored refresh token the one that works."""
    with running_sandbox(world) as base_url:
        env = oauth_env(base_url, world, tmp_path / "credentials", ("quickbooks",))
        assert authorize(env, "quickbooks").returncode == 0
        before = admin(base_url, {"expire_access": "quickbooks"})["refresh_grants"]["quickbooks"]
        url = f"{base_url}/v3/company/{World(world).legal_entities[0]['realm_id']}/preferences"
        children = [
            subprocess.Popen(
                [sys.executable, "-c", RENEW_AND_CALL, url],
                cwd=ROOT,
                env=env,
                stdout=subprocess.PIPE,
                text=True,
            )
            for _ in range(2)
        ]
        outputs = [child.communicate(timeout=120)[0] for child in children]
        assert [child.returncode for child in children] == [0, 0] and outputs == ["200\n", "200\n"], outputs
        assert admin(base_url)["refresh_grants"]["quickbooks"] == before + 1, "exactly one refresh"
        after = subprocess.run(
            [sys.executable, "-c", RENEW_AND_CALL, url], cwd=ROOT, env=env, capture_output=True, text=True
        )
        assert after.stdout == "200\n", after.stderr
