"""Each system's OAuth 2 endpoints, in its dialect, on the sandbox's port; and `/_sandbox/oauth`.

| system     | consent page (GET: 302)      | token endpoint (POST form)  | client auth |
|------------|------------------------------|-----------------------------|-------------|
| QuickBooks | `/connect/oauth2`            | `/oauth2/v1/tokens/bearer`  | HTTP Basic  |
| Salesforce | `/services/oauth2/authorize` | `/services/oauth2/token`    | form fields |
| Kantata    | `/oauth/authorize`           | `/oauth/token`              | form fields |
| Harvest    | `/oauth2/authorize`          | `/api/v2/oauth2/token`      | form fields |

The real systems' consent pages (and QuickBooks' and Harvest's separate auth hosts) are other
base URLs in the client's configuration; here the consent is given at once (a 302 to the
`redirect_uri` with `code` and `state`, plus `realmId` for QuickBooks). Grants: `authorization_code`
(all four), `refresh_token` (QuickBooks, Harvest and Salesforce; Kantata's tokens do not expire
and it has none) and Salesforce's JWT bearer (`urn:ietf:params:oauth:grant-type:jwt-bearer`, an
RS256 assertion signed by the key registered with the client). Token requests bypass the faults
(`--error-rate` and the rest apply to the data endpoints only). Tokens and their rules:
`oauth_tokens`. Clients are registered, lifetimes set and tokens revoked or expired through
`POST /_sandbox/oauth` (docs/sandbox.md).
"""

from __future__ import annotations

import base64
import json
import os
import secrets
import tempfile
import time
from pathlib import Path
from urllib.parse import parse_qs, urlencode

import jwt

from sandbox.servers.http_types import Context, Request, Response
from sandbox.servers.oauth_tokens import SYSTEMS, Client, OAuthError, Registry

AUTHORIZE = {
    "/connect/oauth2": "quickbooks",
    "/services/oauth2/authorize": "salesforce",
    "/oauth/authorize": "kantata",
    "/oauth2/authorize": "harvest",
}
TOKEN = {
    "/oauth2/v1/tokens/bearer": "quickbooks",
    "/services/oauth2/token": "salesforce",
    "/oauth/token": "kantata",
    "/api/v2/oauth2/token": "harvest",
}
JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"
SALESFORCE_AUDIENCES = ("https://login.salesforce.com", "https://test.salesforce.com")
QUICKBOOKS_REFRESH_LIFETIME_S = 8_726_400  # what Intuit's answer names (101 days)


def route(request: Request, context: Context) -> Response | None:
    """The answer when `request` is for an OAuth endpoint, else None."""
    if request.path in AUTHORIZE and request.method == "GET":
        return authorize(AUTHORIZE[request.path], request, context)
    if request.path in TOKEN:
        if request.method != "POST":
            return Response.json(405, {"error": "invalid_request", "error_description": "POST only"})
        return token(TOKEN[request.path], request, context)
    if request.path == "/_sandbox/oauth":
        return admin(request, context.oauth)
    return None


def authorize(system: str, request: Request, context: Context) -> Response:
    """The consent page: the operator approves at once; a 302 to the redirect with code and state."""
    client = context.oauth.known_client(system, request.param("client_id"))
    redirect = request.param("redirect_uri")
    if client is None or not redirect or request.param("response_type") != "code":
        return Response.json(400, {"error": "invalid_request", "error_description": "unknown client_id, "
                                   "or no redirect_uri, or response_type is not code"})  # fmt: skip
    code = context.oauth.new_code(system, client.client_id, redirect)
    answer = {"code": code}
    if request.param("state") is not None:
        answer["state"] = request.param("state") or ""
    if system == "quickbooks":
        answer["realmId"] = str(context.state.world.legal_entities[0]["realm_id"])
    separator = "&" if "?" in redirect else "?"
    return Response(302, b"", {"Location": f"{redirect}{separator}{urlencode(answer)}"}, "text/plain")


def form(request: Request) -> dict[str, str]:
    fields = parse_qs(request.body.decode("utf-8", "replace"), keep_blank_values=True)
    return {name: values[-1] for name, values in fields.items()}


def basic_auth(request: Request) -> tuple[str | None, str | None]:
    scheme, _, value = (request.header("authorization") or "").partition(" ")
    if scheme.lower() != "basic":
        return None, None
    try:
        client_id, _, secret = base64.b64decode(value.strip()).decode().partition(":")
    except (ValueError, UnicodeDecodeError):
        return None, None
    return client_id, secret


def token(system: str, request: Request, context: Context) -> Response:
    fields = form(request)
    registry = context.oauth
    try:
        if system == "quickbooks":
            client_id, secret = basic_auth(request)
        else:
            client_id, secret = fields.get("client_id"), fields.get("client_secret")
        grant = fields.get("grant_type")
        if system == "salesforce" and grant == JWT_GRANT:
            client = jwt_client(registry, fields.get("assertion"), request)
            access, _, _ = registry.issue(client, with_refresh=False)
            return salesforce_answer(client, request, access, None)
        client = registry.client(system, client_id, secret)
        if grant == "authorization_code":
            registry.redeem_code(client, fields.get("code"), fields.get("redirect_uri"))
            access, lifetime, refresh = registry.issue(client, with_refresh=system != "kantata")
        elif grant == "refresh_token" and system != "kantata":
            access, lifetime, refresh = registry.use_refresh(client, fields.get("refresh_token"))
        else:
            raise OAuthError("unsupported_grant_type", f"grant_type {grant!r} is not supported here")
    except OAuthError as err:
        return refusal(system, err)
    if system == "salesforce":
        # no refresh-token rotation: a refresh answers a new access token only
        return salesforce_answer(client, request, access, refresh if grant == "authorization_code" else None)
    answer: dict[str, object] = {"access_token": access, "token_type": "bearer"}
    if lifetime is not None:
        answer["expires_in"] = int(lifetime) if float(lifetime).is_integer() else lifetime
    if refresh is not None:
        answer["refresh_token"] = refresh
    if system == "quickbooks":
        answer["x_refresh_token_expires_in"] = QUICKBOOKS_REFRESH_LIFETIME_S
    return Response.json(200, answer, **{"Cache-Control": "no-store"})


def salesforce_answer(client: Client, request: Request, access: str, refresh: str | None) -> Response:
    """Salesforce's answer: no `expires_in` (a session lasts until it is refused), and the
    `instance_url` every API call must go to."""
    instance = client.instance_url or request.base_url
    answer = {
        "access_token": access,
        "instance_url": instance,
        "id": f"{instance}/id/00D000000000001/005000000000001",
        "token_type": "Bearer",
        "issued_at": str(int(time.time() * 1000)),
        "scope": "api refresh_token",
    }
    if refresh:
        answer["refresh_token"] = refresh
    return Response.json(200, answer, **{"Cache-Control": "no-store"})


def jwt_client(registry: Registry, assertion: str | None, request: Request) -> Client:
    """The client a Salesforce JWT bearer assertion is from, after checking its RS256 signature
    against the client's registered key, its audience and its expiry."""
    try:
        unverified = jwt.decode(assertion or "", options={"verify_signature": False})
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    client = registry.known_client("salesforce", str(unverified.get("iss") or ""))
    if client is None:
        raise OAuthError("invalid_client_id", "client identifier invalid")
    if not client.jwt_public_key:
        raise OAuthError("invalid_grant", "invalid assertion: no certificate uploaded for this app")
    try:
        jwt.decode(
            assertion or "",
            client.jwt_public_key,
            algorithms=["RS256"],
            audience=[*SALESFORCE_AUDIENCES, request.base_url],
            options={"require": ["exp", "iss", "sub", "aud"]},
        )
    except jwt.ExpiredSignatureError:
        raise OAuthError("invalid_grant", "expired authorization code") from None
    except jwt.PyJWTError:
        raise OAuthError("invalid_grant", "invalid assertion") from None
    return client


def refusal(system: str, err: OAuthError) -> Response:
    if system == "quickbooks":  # Intuit answers the bare code
        return Response.json(err.status, {"error": err.error})
    return Response.json(err.status, {"error": err.error, "error_description": err.description})


def admin(request: Request, registry: Registry) -> Response:
    """`GET /_sandbox/oauth`: settings and counts (never a token). `POST` a JSON object with any of
    `clients` (a list of {system, client_id, client_secret, jwt_public_key?, instance_url?}),
    `access_lifetime_s` / `refresh_lifetime_s` ({system: seconds or null}), `revoke` ({system} or
    {refresh_token}: revokes refresh tokens), `expire_access` (true, or a system: every issued
    access token expires now)."""
    if request.method == "POST":
        try:
            body = json.loads(request.body or b"{}")
            if not isinstance(body, dict):
                raise ValueError("the body must be a JSON object")
            for spec in body.get("clients", []):
                registry.register(Client(**spec))
            for kind in ("access", "refresh"):
                for system, seconds in (body.get(f"{kind}_lifetime_s") or {}).items():
                    registry.set_lifetime(kind, system, seconds)
            answer: dict[str, int] = {}
            if "revoke" in body:
                revoke = body["revoke"]
                if revoke.get("system") not in (None, *SYSTEMS):
                    raise ValueError(f"unknown system {revoke.get('system')!r}")
                answer["revoked"] = registry.revoke(revoke.get("refresh_token"), revoke.get("system"))
            expire = body.get("expire_access")
            if expire:
                answer["expired"] = registry.expire_access(None if expire is True else str(expire))
        except (ValueError, TypeError, AttributeError) as err:
            return Response.json(422, {"error": str(err)})
        return Response.json(200, {**registry.describe(), **answer})
    return Response.json(200, registry.describe())


PREAUTHORIZED = ("quickbooks", "harvest", "salesforce")  # Kantata has no refresh: static token


def preauthorize(context: Context, base_url: str) -> dict[str, dict[str, str]]:
    """OAuth settings for the loaders, as an operator has them after `make authorize`: per system a
    newly registered client and a token store (in a new private temporary folder: a restarted
    sandbox has forgotten every grant, so each answer is a fresh one) holding a refresh token and
    no access token, so the first call of a run refreshes."""
    folder = Path(tempfile.mkdtemp(prefix="billable-sandbox-oauth-"))  # 0700
    grants: dict[str, dict[str, str]] = {}
    for system in PREAUTHORIZED:
        client = Client(system, f"sandbox-{system}-{secrets.token_hex(4)}", secrets.token_urlsafe(24))
        context.oauth.register(client)
        _, _, refresh = context.oauth.issue(client, with_refresh=True)
        store = folder / f"{system}.json"
        fd = os.open(store, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as handle:  # the token store's format (ingestion.token_store)
            json.dump({"system": system, "refresh_token": refresh, "access_token": None}, handle)
        grants[system] = {
            "client_id": client.client_id,
            "client_secret": client.client_secret,
            "auth_base_url": base_url,
            "token_store": str(store),
        }
    return grants
