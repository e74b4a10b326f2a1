"""The sandbox's OAuth 2 registry: registered clients, authorization codes, access and refresh tokens.

Tokens are random (`secrets.token_urlsafe`), held in memory only (a restarted sandbox has forgotten
them, as a reset authorization server would). Which bearer a data endpoint accepts (docs/sandbox.md):

- a token this registry issued: only while it lives, and only for its own system (always strict);
- `sandbox-token`: always, the documented long-lived personal-access-token analogue;
- any other non-empty token: only for a system with no OAuth client registered (a sandbox not
  asked to do OAuth keeps accepting any token as a personal access token, as before); once a
  client of the system is registered, an unknown token is refused with the system's 401.

Refresh tokens rotate for QuickBooks and Harvest with Intuit's grace rule: refreshing with a token
answers a successor; the old token keeps working (and answers the same successor) until that
successor is itself used, and from then on answers `invalid_grant`. So a client that crashed after
the answer and before storing it can refresh again with the token it still has; a client that
stored the successor and used it has retired the old one for good. Salesforce and Kantata do not
rotate (a Salesforce refresh token is reused; Kantata issues no refresh token at all).
"""

from __future__ import annotations

import secrets
import threading
import time
from dataclasses import dataclass, field

STATIC_TOKEN = "sandbox-token"  # the personal-access-token analogue, accepted without expiry
ROTATING = frozenset({"quickbooks", "harvest"})
SYSTEMS = ("salesforce", "kantata", "harvest", "quickbooks")
# Each system's default access-token lifetime (seconds; None: does not expire), as the real ones.
DEFAULT_ACCESS_LIFETIME: dict[str, float | None] = {
    "quickbooks": 3600.0,
    "salesforce": 7200.0,
    "harvest": 1_209_600.0,
    "kantata": None,
}
CODE_LIFETIME_S = 600.0


class OAuthError(Exception):
    """A refused token request: the OAuth 2 error code (`invalid_grant`, ...) and a description."""

    def __init__(self, error: str, description: str, status: int = 400):
        super().__init__(description)
        self.error = error
        self.description = description
        self.status = status


@dataclass
class Client:
    system: str
    client_id: str
    client_secret: str = field(repr=False)
    jwt_public_key: str | None = None  # PEM, Salesforce's JWT bearer flow
    instance_url: str | None = None  # Salesforce: what the token answer names (default: the sandbox)


@dataclass
class Refresh:
    system: str
    client_id: str
    successor: str | None = None  # the token a refresh answered (rotating systems)
    retired: bool = False  # its successor was used: answers invalid_grant
    revoked: bool = False
    expires_at: float | None = None


@dataclass
class Access:
    system: str
    expires_at: float | None


class Registry:
    """Clients and tokens of the four systems; thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self.clients: dict[tuple[str, str], Client] = {}
        self.codes: dict[str, tuple[str, str, str, float]] = {}  # code -> system, client, redirect, expiry
        self.access: dict[str, Access] = {}
        self.refresh: dict[str, Refresh] = {}
        self.access_lifetime: dict[str, float | None] = dict(DEFAULT_ACCESS_LIFETIME)
        self.refresh_lifetime: dict[str, float | None] = {system: None for system in SYSTEMS}
        self.issued: dict[str, int] = {system: 0 for system in SYSTEMS}  # access tokens issued
        self.refreshed: dict[str, int] = {system: 0 for system in SYSTEMS}  # refresh grants answered

    # --- administration (`/_sandbox/oauth`) ---
    def register(self, client: Client) -> None:
        if client.system not in SYSTEMS:
            raise ValueError(f"unknown system {client.system!r}; one of {', '.join(SYSTEMS)}")
        if not client.client_id or not client.client_secret:
            raise ValueError("a client needs client_id and client_secret")
        with self._lock:
            self.clients[(client.system, client.client_id)] = client

    def set_lifetime(self, kind: str, system: str, seconds: float | None) -> None:
        if system not in SYSTEMS:
            raise ValueError(f"unknown system {system!r}; one of {', '.join(SYSTEMS)}")
        if seconds is not None and (not isinstance(seconds, int | float) or seconds <= 0):
            raise ValueError(f"{kind} lifetime for {system} must be a number of seconds > 0 or null")
        with self._lock:
            (self.access_lifetime if kind == "access" else self.refresh_lifetime)[system] = seconds

    def expire_access(self, system: str | None = None) -> int:
        """Expire every issued access token (of one system): the number expired."""
        now = time.time()
        with self._lock:
            hit = [a for a in self.access.values() if system in (None, a.system)]
            for access in hit:
                access.expires_at = now - 1
        return len(hit)

    def revoke(self, token: str | None = None, system: str | None = None) -> int:
        """Revoke one refresh token, or all of a system's: the number revoked."""
        with self._lock:
            hit = [
                r
                for t, r in self.refresh.items()
                if (token is not None and t == token) or (token is None and system in (None, r.system))
            ]
            for refresh in hit:
                refresh.revoked = True
        return len(hit)

    def describe(self) -> dict:
        """Counts and settings, never a token."""
        now = time.time()
        with self._lock:
            return {
                "clients": sorted(f"{s}:{c}" for s, c in self.clients),
                "access_lifetime_s": dict(self.access_lifetime),
                "refresh_lifetime_s": dict(self.refresh_lifetime),
                "live_access_tokens": {
                    s: sum(1 for a in self.access.values() if a.system == s and _alive(a.expires_at, now))
                    for s in SYSTEMS
                },
                "access_tokens_issued": dict(self.issued),
                "refresh_grants": dict(self.refreshed),
            }

    # --- the token endpoints ---
    def client(self, system: str, client_id: str | None, client_secret: str | None) -> Client:
        with self._lock:
            client = self.clients.get((system, client_id or ""))
        if client is None or not secrets.compare_digest(client.client_secret, client_secret or ""):
            raise OAuthError("invalid_client", "client authentication failed", 401)
        return client

    def known_client(self, system: str, client_id: str | None) -> Client | None:
        with self._lock:
            return self.clients.get((system, client_id or ""))

    def new_code(self, system: str, client_id: str, redirect_uri: str) -> str:
        code = secrets.token_urlsafe(24)
        with self._lock:
            self.codes[code] = (system, client_id, redirect_uri, time.time() + CODE_LIFETIME_S)
        return code

    def redeem_code(self, client: Client, code: str | None, redirect_uri: str | None) -> None:
        with self._lock:
            found = self.codes.pop(code or "", None)  # a code is good once
        if found is None:
            raise OAuthError("invalid_grant", "authorization code is invalid, expired or already used")
        system, client_id, redirect, expiry = found
        if (system, client_id) != (client.system, client.client_id) or expiry < time.time():
            raise OAuthError("invalid_grant", "authorization code is invalid or expired")
        if redirect and redirect_uri != redirect:
            raise OAuthError("invalid_grant", "redirect_uri does not match the authorization request")

    def issue(self, client: Client, with_refresh: bool) -> tuple[str, float | None, str | None]:
        """A new access token (its lifetime) and, when asked, a new refresh token."""
        system = client.system
        access = secrets.token_urlsafe(32)
        now = time.time()
        with self._lock:
            lifetime = self.access_lifetime[system]
            self.access[access] = Access(system, None if lifetime is None else now + lifetime)
            self.issued[system] += 1
        return access, lifetime, self._new_refresh(client) if with_refresh else None

    def _new_refresh(self, client: Client) -> str:
        refresh = secrets.token_urlsafe(32)
        with self._lock:
            life = self.refresh_lifetime[client.system]
            expires_at = None if life is None else time.time() + life
            self.refresh[refresh] = Refresh(client.system, client.client_id, expires_at=expires_at)
        return refresh

    def use_refresh(self, client: Client, token: str | None) -> tuple[str, float | None, str]:
        """Answer a refresh grant: a new access token, its lifetime and the refresh token to keep."""
        now = time.time()
        with self._lock:
            grant = self.refresh.get(token or "")
            if (
                grant is None
                or grant.system != client.system
                or grant.client_id != client.client_id
                or grant.revoked
                or grant.retired
                or not _alive(grant.expires_at, now)
            ):
                raise OAuthError("invalid_grant", "the refresh token is invalid, expired or revoked")
            self.refreshed[client.system] += 1
            # Using a token retires its predecessor (the one whose successor it is): Intuit's rule.
            for older in self.refresh.values():
                if older.successor == token:
                    older.retired = True
            keep = token or ""
            if client.system in ROTATING:  # one successor however many ask at once
                if grant.successor is None:
                    grant.successor = self._new_refresh(client)
                keep = grant.successor
        access, lifetime, _ = self.issue(client, with_refresh=False)
        return access, lifetime, keep

    # --- the data endpoints ---
    def check(self, system: str, token: str | None) -> str | None:
        """None when `token` may call `system`'s API, else why not ("missing", "expired", "unknown")."""
        if token is None:
            return "missing"
        if token == STATIC_TOKEN:
            return None
        with self._lock:
            access = self.access.get(token)
            strict = any(registered == system for registered, _ in self.clients)
        if access is None:
            return "unknown" if strict else None  # not doing OAuth: a personal access token
        if access.system != system:
            return "unknown"
        if not _alive(access.expires_at, time.time()):
            return "expired"
        return None


def _alive(expires_at: float | None, now: float) -> bool:
    return expires_at is None or expires_at > now
