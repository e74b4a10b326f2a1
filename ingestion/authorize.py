"""`make authorize SYSTEM=quickbooks` (`python -m ingestion.authorize quickbooks`): the one-time
consent that gives an unattended run its first tokens.

It prints the system's consent URL (with a random `state`), takes the address the browser was sent
back to (or just its `code`) as an argument (`--code`), from a local listener on the
`redirect_uri`'s port (`--listen`), or from stdin, checks the `state`, exchanges the code at the
token endpoint and writes the tokens to the token store (`ingestion.token_store`, mode 0600).
A static token (Harvest's personal access token) and Salesforce's JWT bearer flow need no
consent: it says so (and, for the JWT flow, gets a first token to prove the key is accepted).
Exit 0 stored, 2 a configuration or a refused exchange (one line, no token printed).
"""

from __future__ import annotations

import argparse
import secrets
import sys
import time
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

from ingestion.auth import DIALECTS, AuthError, AuthSettings, OAuth2, load_auth_settings, token_request
from ingestion.token_store import TokenStore, TokenStoreError


def consent_url(settings: AuthSettings, state: str) -> str:
    query = {
        "client_id": settings.client_id or "",
        "response_type": "code",
        "redirect_uri": settings.redirect_uri,
        "state": state,
    }
    if settings.scope:
        query["scope"] = settings.scope
    return f"{settings.authorize_url}?{urlencode(query)}"


def parse_answer(answer: str, state: str | None) -> tuple[str, dict[str, str]]:
    """The code from what the operator pasted (the redirect address, or the bare code) and the other
    parameters (QuickBooks' `realmId`); ValueError when the state differs or there is no code."""
    answer = answer.strip()
    if "?" not in answer and "=" not in answer:
        return answer, {}
    query = urlsplit(answer).query if "?" in answer else answer
    fields = {name: values[-1] for name, values in parse_qs(query).items()}
    if "error" in fields:
        raise ValueError(f"the consent was refused: {fields['error']}")
    if state is not None and fields.get("state") != state:
        raise ValueError("the state in the redirect is not this request's (a stale or forged redirect)")
    code = fields.pop("code", "")
    if not code:
        raise ValueError("no code in the redirect address")
    return code, fields


def exchange(settings: AuthSettings, code: str, extra: dict[str, str]) -> dict[str, Any]:
    """Trade the code for tokens and store them; the stored record."""
    fields = {"grant_type": "authorization_code", "code": code, "redirect_uri": settings.redirect_uri}
    answer = token_request(settings, fields, "authorization_code")
    now = time.time()
    expires_in = answer.get("expires_in")
    record = {
        "system": settings.system,
        "access_token": answer["access_token"],
        "expires_in": float(expires_in) if expires_in is not None else None,
        "expires_at": now + float(expires_in) if expires_in is not None else None,
        "refresh_token": answer.get("refresh_token"),
        "instance_url": answer.get("instance_url"),
        "realm_id": extra.get("realmId"),
        "obtained_at": now,
    }
    store = TokenStore(settings.token_store)
    try:
        with store.locked():
            store.write(record)
    except TokenStoreError as err:
        raise AuthError(settings.system, str(err)) from None
    return record


def listen_once(redirect_uri: str, timeout_s: float = 300) -> str:
    """Serve the redirect's host and port until the browser comes back; the path it came back to."""
    parts = urlsplit(redirect_uri)
    received: list[str] = []

    class Callback(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            received.append(self.path)
            self.send_response(200)
            self.send_header("Content-Type", "text/plain")
            self.end_headers()
            self.wfile.write(b"Billable: authorised; you can close this window.\n")

        def log_message(self, format: str, *args: object) -> None:
            pass

    with HTTPServer((parts.hostname or "localhost", parts.port or 80), Callback) as server:
        server.timeout = timeout_s
        server.handle_request()
    if not received:
        raise TimeoutError(f"nobody came back to {redirect_uri} within {timeout_s:.0f} s")
    return received[0]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m ingestion.authorize", description=__doc__)
    parser.add_argument("system", choices=sorted(DIALECTS))
    parser.add_argument("--code", help="the redirect address the browser landed on, or its code")
    parser.add_argument("--listen", action="store_true", help="catch the redirect on redirect_uri's port")
    args = parser.parse_args(argv)
    system = args.system
    try:
        settings = load_auth_settings(system)
        name = DIALECTS[system].name
        if settings.mode == "static":
            print(f"authorize: {name} uses a static token (sources.{system}.access_token): no consent needed")
            return 0
        if settings.mode == "jwt":
            OAuth2(settings).token()
            print("authorize: Salesforce uses the JWT bearer flow: no consent needed; the key is accepted")
            return 0
        state = secrets.token_urlsafe(16)
        url = consent_url(settings, state)
        print(f"authorize: open this address, sign in to {name} and approve:\n\n  {url}\n", flush=True)
        if args.code:
            answer = args.code
        elif args.listen:
            print(f"authorize: waiting for the browser at {settings.redirect_uri} ...", flush=True)
            answer = listen_once(settings.redirect_uri)
        else:
            answer = input("then paste the address the browser was sent to (or its code): ")
        # a pasted --code comes from an earlier run's consent (its state is not this run's)
        code, extra = parse_answer(answer, None if args.code else state)
        record = exchange(settings, code, extra)
    except AuthError as err:
        print(f"authorize: {err}", file=sys.stderr)
        return 2
    except (ValueError, TimeoutError, OSError, EOFError) as err:
        print(f"authorize: {err}", file=sys.stderr)
        return 2
    realm = f" (realm {record['realm_id']})" if record.get("realm_id") else ""
    print(f"authorize: {name}{realm} authorised; tokens stored in {settings.token_store} (mode 0600)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
