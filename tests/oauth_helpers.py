"""OAuth against the real sandbox: register a client (credentials made at run time), consent with the
real `python -m ingestion.authorize`, and the loaders' environment for OAuth instead of the static
sandbox token."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import requests

from tests.ingest_helpers import FAST_RETRIES, ROOT, sandbox_settings

SYSTEMS = ("salesforce", "kantata", "harvest", "quickbooks")
REDIRECT = "http://127.0.0.1:9/callback"  # never listened on: the test reads the 302 itself


def admin(base_url: str, body: dict | None = None) -> dict:
    if body is None:
        answer = requests.get(f"{base_url}/_sandbox/oauth", timeout=10)
    else:
        answer = requests.post(f"{base_url}/_sandbox/oauth", json=body, timeout=10)
    assert answer.status_code == 200, answer.text
    return answer.json()


def register(base_url: str, system: str, secret: str | None = None, **extra: str) -> tuple[str, str]:
    """A new client of `system` in the sandbox: its (client_id, client_secret)."""
    client_id = f"billable-{system}-{secrets.token_hex(4)}"
    secret = secret or secrets.token_urlsafe(24)
    admin(
        base_url, {"clients": [{"system": system, "client_id": client_id, "client_secret": secret, **extra}]}
    )
    return client_id, secret


def oauth_env(
    base_url: str, world: Path, store_dir: Path, systems: tuple[str, ...] = SYSTEMS, secret: str | None = None
) -> dict[str, str]:
    """The loaders' environment with OAuth clients (registered now) for `systems`; no static token."""
    env = {**os.environ, **sandbox_settings(base_url, world), **FAST_RETRIES}
    for system in systems:
        client_id, client_secret = register(base_url, system, secret)
        section = f"SOURCES__{system.upper()}__"
        del env[f"{section}ACCESS_TOKEN"]
        env.update(
            {
                f"{section}CLIENT_ID": client_id,
                f"{section}CLIENT_SECRET": client_secret,
                f"{section}AUTH_BASE_URL": base_url,
                f"{section}REDIRECT_URI": REDIRECT,
                f"{section}TOKEN_STORE": str(store_dir / f"{system}.json"),
            }
        )
    return env


def authorize(env: dict[str, str], system: str) -> subprocess.CompletedProcess:
    """`python -m ingestion.authorize <system>` as an operator runs it: read the consent URL it prints,
    open it (the sandbox consents at once and redirects), paste the redirect address on stdin."""
    process = subprocess.Popen(
        [sys.executable, "-m", "ingestion.authorize", system],
        cwd=ROOT,
        env=env,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stdin is not None
    url = ""
    while not url:
        line = process.stdout.readline()
        assert line, f"no consent URL printed; stderr: {process.stderr.read() if process.stderr else ''}"
        if line.strip().startswith("http"):
            url = line.strip()
    consent = requests.get(url, allow_redirects=False, timeout=10)
    assert consent.status_code == 302, consent.text
    stdout, stderr = process.communicate(consent.headers["Location"] + "\n", timeout=60)
    return subprocess.CompletedProcess(process.args, process.returncode, url + "\n" + stdout, stderr)
