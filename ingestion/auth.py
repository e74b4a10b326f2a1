"""How the connectors authenticate to each system: a static token, or OAuth 2 as the system does it.

`auth_for(system)` reads `sources.<system>.*` (dlt config and secrets, or `SOURCES__<SYSTEM>__*`):

- `client_id` set: OAuth 2. The client secret is `client_secret`; the refresh token is the token
  store's (`token_store`, default `data/credentials/<system>.json`, written by
  `make authorize SYSTEM=<system>`), or `refresh_token` to seed an empty store. Salesforce with
  `username` and `private_key_file` uses the JWT bearer grant instead (no refresh token, no consent).
- else `access_token`: a static bearer (a Harvest personal access token, the sandbox's token).

The OAuth auth gets a token before the first request, renews it shortly before it expires (when
the answer said when) and once on a 401 (then sends that request again, once). A rotated refresh
token (QuickBooks, Harvest) is written to the store before the new access token is used, under
the store's lock (`token_store`). A refused refresh token raises `ReauthorizationNeeded`: one line
naming the system and `make authorize SYSTEM=<system>`; the runners exit 2 on it (`AuthError`).
Tokens are never logged; error text from a token endpoint is scrubbed of every secret it might echo.
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from requests.auth import AuthBase
from urllib3.util.retry import Retry

from ingestion.token_store import TokenStore, TokenStoreError

JWT_GRANT = "urn:ietf:params:oauth:grant-type:jwt-bearer"


@dataclass(frozen=True)
class Dialect:
    """One system's OAuth endpoints (real defaults) and habits."""

    name: str  # as an operator calls it
    authorize_url: str
    token_url: str
    scope: str
    basic_client_auth: bool  # client id and secret as HTTP Basic (Intuit), else form fields
    refreshes: bool  # has refresh tokens (Kantata's tokens do not expire and it has none)


DIALECTS = {
    "quickbooks": Dialect(
        "QuickBooks",
        "https://appcenter.intuit.com/connect/oauth2",
        "https://oauth.platform.intuit.com/oauth2/v1/tokens/bearer",
        "com.intuit.quickbooks.accounting",
        True,
        True,
    ),
    "salesforce": Dialect(
        "Salesforce",
        "https://login.salesforce.com/services/oauth2/authorize",
        "https://login.salesforce.com/services/oauth2/token",
        "api refresh_token",
        False,
        True,
    ),
    "kantata": Dialect(
        "Kantata",
        "https://app.mavenlink.com/oauth/authorize",
        "https://app.mavenlink.com/oauth/token",
        "",
        False,
        False,
    ),
    "harvest": Dialect(
        "Harvest",
        "https://id.getharvest.com/oauth2/authorize",
        "https://id.getharvest.com/api/v2/oauth2/token",
        "",
        False,
        True,
    ),
}
DEFAULT_REDIRECT_URI = "http://localhost:8765/callback"


class AuthError(RuntimeError):
    """Authentication cannot go on without the operator: the runners print it (one line) and exit 2."""

    def __init__(self, system: str, message: str):
        super().__init__(message)
        self.system = system


class AuthConfigError(AuthError):
    """Missing or unusable credentials configuration; the message names the key (`key`, when one
    setting is simply missing: `sources.kantata.access_token`)."""

    def __init__(self, system: str, message: str, key: str | None = None):
        super().__init__(system, message)
        self.key = key


class ReauthorizationNeeded(AuthError):
    """The system refused the stored grant (revoked, expired, rotated away): run `make authorize`."""

    def __init__(self, system: str, why: str):
        name = DIALECTS[system].name if system in DIALECTS else system
        super().__init__(
            system,
            f"{name} refused the stored authorization ({why}): it must be re-authorised; "
            f"run `make authorize SYSTEM={system}`",
        )


@dataclass(frozen=True)
class AuthSettings:
    system: str
    client_id: str | None = None
    client_secret: str | None = field(default=None, repr=False)
    access_token: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)  # seeds an empty store
    token_url: str = ""
    authorize_url: str = ""
    redirect_uri: str = DEFAULT_REDIRECT_URI
    scope: str = ""
    token_store: Path = Path("data/credentials/x.json")
    username: str | None = None  # Salesforce JWT bearer
    private_key_file: Path | None = None
    jwt_audience: str = "https://login.salesforce.com"

    @property
    def mode(self) -> str:
        if self.client_id:
            return "jwt" if self.system == "salesforce" and self.private_key_file else "oauth"
        return "static"

    def secrets(self) -> list[str]:
        return [value for value in (self.client_secret, self.access_token, self.refresh_token) if value]


def _get(key: str, secret: bool = False) -> Any:
    import dlt

    value: Any = (dlt.secrets if secret else dlt.config).get(key)
    if value in (None, "") and not secret:
        value = dlt.secrets.get(key)  # an operator may keep any of them in secrets.toml
    return None if value in (None, "") else value


def load_auth_settings(system: str) -> AuthSettings:
    """`sources.<system>.*` as AuthSettings; AuthConfigError naming what is missing."""
    if system not in DIALECTS:
        raise AuthConfigError(system, f"unknown system {system!r}; one of {', '.join(DIALECTS)}")
    dialect = DIALECTS[system]
    section = f"sources.{system}"
    base = _get(f"{section}.auth_base_url")
    authorize_url, token_url = dialect.authorize_url, dialect.token_url
    if base:  # the real hosts replaced (a sandbox, a Salesforce My Domain or test.salesforce.com)
        authorize_url = str(base).rstrip("/") + "/" + authorize_url.split("/", 3)[3]
        token_url = str(base).rstrip("/") + "/" + token_url.split("/", 3)[3]
    key_file = _get(f"{section}.private_key_file")
    settings = AuthSettings(
        system=system,
        client_id=_get(f"{section}.client_id"),
        client_secret=_get(f"{section}.client_secret", secret=True),
        access_token=_get(f"{section}.access_token", secret=True),
        refresh_token=_get(f"{section}.refresh_token", secret=True),
        token_url=str(_get(f"{section}.token_url") or token_url),
        authorize_url=str(_get(f"{section}.authorize_url") or authorize_url),
        redirect_uri=str(_get(f"{section}.redirect_uri") or DEFAULT_REDIRECT_URI),
        scope=str(_get(f"{section}.scope") or dialect.scope),
        token_store=Path(_get(f"{section}.token_store") or Path("data") / "credentials" / f"{system}.json"),
        username=_get(f"{section}.username"),
        private_key_file=Path(key_file) if key_file else None,
        jwt_audience=str(
            _get(f"{section}.jwt_audience")
            or (str(base).rstrip("/") if base else "https://login.salesforce.com")
        ),
    )
    if settings.mode == "static" and not settings.access_token:
        raise AuthConfigError(
            system,
            f"{dialect.name} has no credentials: set {section}.access_token, or {section}.client_id and "
            f"client_secret and run `make authorize SYSTEM={system}`",
            key=f"{section}.access_token",
        )
    if settings.mode == "oauth" and not settings.client_secret:
        raise AuthConfigError(
            system,
            f"{dialect.name}: {section}.client_id is set but {section}.client_secret is not",
            key=f"{section}.client_secret",
        )
    if settings.mode == "jwt" and not settings.username:
        raise AuthConfigError(
            system,
            f"Salesforce JWT bearer: {section}.private_key_file is set but {section}.username is not",
            key=f"{section}.username",
        )
    return settings


def scrub(text: str, secrets: list[str]) -> str:
    """`text` with every secret replaced by `***`."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if secret and len(secret) >= 4:
            text = text.replace(secret, "***")
    return text


class StaticBearer(AuthBase):
    """A configured token sent as it is (a personal access token)."""

    def __init__(self, token: str):
        self._token = token

    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self._token}"
        return request

    def __repr__(self) -> str:
        return "StaticBearer(***)"


def token_session() -> requests.Session:
    """Requests to a token endpoint: a dropped connection or a 5xx/429 is retried (a refused grant
    is a 400/401 and is not)."""
    session = requests.Session()
    retry = Retry(
        total=5, backoff_factor=0.5, status_forcelist=(429, 500, 502, 503, 504), allowed_methods=None
    )
    retry.respect_retry_after_header = True
    adapter = HTTPAdapter(max_retries=retry)
    session.mount("http://", adapter)
    session.mount("https://", adapter)
    return session


class OAuth2(AuthBase):
    """Bearer tokens from the system's token endpoint, renewed before expiry and on a 401."""

    def __init__(self, settings: AuthSettings):
        self.settings = settings
        self.store = TokenStore(settings.token_store)
        self._lock = threading.Lock()
        self._access: str | None = None
        self._expires_at: float | None = None
        self._lifetime: float | None = None
        self._instance_url: str | None = None
        self._secrets = settings.secrets()
        self.renewals = 0  # tokens this process got from the token endpoint
        self.session = token_session()

    def __repr__(self) -> str:
        return f"OAuth2({self.settings.system}, {self.settings.mode})"

    # --- requests' auth protocol ---
    def __call__(self, request: requests.PreparedRequest) -> requests.PreparedRequest:
        request.headers["Authorization"] = f"Bearer {self.token()}"
        request.register_hook("response", self._on_response)
        return request

    def _on_response(self, response: requests.Response, **kwargs: Any) -> requests.Response:
        """On a 401, renew (unless another thread already has) and send the request again, once."""
        sent = response.request
        if response.status_code != 401 or getattr(sent, "_billable_reauthorized", False):
            return response
        rejected = (sent.headers.get("Authorization") or "").partition(" ")[2]
        token = self.token(rejected=rejected)
        response.content  # noqa: B018 - read the body so the connection can be reused
        response.close()
        again = sent.copy()
        again.headers["Authorization"] = f"Bearer {token}"
        again._billable_reauthorized = True  # type: ignore[attr-defined]
        retried = response.connection.send(again, **kwargs)
        retried.history.append(response)
        retried.request = again
        return retried

    # --- tokens ---
    def token(self, rejected: str | None = None) -> str:
        """A token to send: the current one, or a renewed one when it expires soon or the system
        rejected `rejected` (unless another thread has renewed since)."""
        with self._lock:
            if self._access is not None:
                if rejected is not None and rejected != self._access:
                    return self._access  # renewed meanwhile
                if rejected is None and not self._expiring():
                    return self._access
            self._renew(rejected)
            assert self._access is not None
            return self._access

    def api_base_url(self, configured: str | None) -> str | None:
        """Where API calls go: the `instance_url` the token answer named (Salesforce), else `configured`."""
        self.token()
        return self._instance_url or configured

    def _expiring(self) -> bool:
        if self._expires_at is None:
            return False  # no expiry given (Salesforce, Kantata): renewed when refused
        skew = min(60.0, 0.1 * (self._lifetime or 0.0))
        return time.time() >= self._expires_at - skew

    def _adopt(self, record: dict[str, Any]) -> None:
        self._access = record.get("access_token")
        self._expires_at = record.get("expires_at")
        self._lifetime = record.get("expires_in")
        self._instance_url = record.get("instance_url")

    def _usable(self, record: dict[str, Any] | None, rejected: str | None) -> bool:
        if not record or not record.get("access_token") or record["access_token"] == rejected:
            return False
        expires_at = record.get("expires_at")
        if expires_at is None:
            return True
        skew = min(60.0, 0.1 * float(record.get("expires_in") or 0))
        return time.time() < float(expires_at) - skew

    def _renew(self, rejected: str | None) -> None:
        system = self.settings.system
        try:
            with self.store.locked():
                saved = self.store.read()
                if self._usable(saved, rejected) and (saved or {}).get("access_token") != self._access:
                    assert saved is not None
                    self._adopt(saved)  # another process (or an earlier run) renewed it
                    return
                if self.settings.mode == "jwt":
                    answer = self._post(
                        {"grant_type": JWT_GRANT, "assertion": self._assertion()}, "JWT bearer"
                    )
                    record = self._record(answer, None)
                else:
                    refresh = (saved or {}).get("refresh_token") or self.settings.refresh_token
                    if not DIALECTS[system].refreshes:  # Kantata: the stored token is all there is
                        why = (
                            "its token was refused; it has no refresh"
                            if saved
                            else f"no token in {self.store.path}"
                        )
                        raise ReauthorizationNeeded(system, why)
                    if not refresh:
                        raise ReauthorizationNeeded(system, f"no refresh token in {self.store.path}")
                    self._secrets.append(refresh)
                    answer = self._post({"grant_type": "refresh_token", "refresh_token": refresh}, "refresh")
                    record = self._record(answer, refresh, saved)
                # The new refresh token is durable before the new access token is used.
                self.store.write(record)
        except TokenStoreError as err:
            raise AuthConfigError(system, str(err)) from None
        self.renewals += 1
        self._adopt(record)

    def _record(
        self, answer: dict[str, Any], refresh: str | None, saved: dict[str, Any] | None = None
    ) -> dict[str, Any]:
        """The store's record for a token answer (a refresh token the answer does not name is kept)."""
        now = time.time()
        expires_in = answer.get("expires_in")
        record = {
            "system": self.settings.system,
            "access_token": answer["access_token"],
            "expires_in": float(expires_in) if expires_in is not None else None,
            "expires_at": now + float(expires_in) if expires_in is not None else None,
            "refresh_token": answer.get("refresh_token") or refresh,
            "instance_url": answer.get("instance_url") or (saved or {}).get("instance_url"),
            "realm_id": (saved or {}).get("realm_id"),
            "obtained_at": now,
        }
        self._secrets += [v for v in (record["access_token"], record["refresh_token"]) if v]
        return record

    def _assertion(self) -> str:
        import jwt

        path = self.settings.private_key_file
        assert path is not None
        try:
            key = path.read_text()
        except OSError as err:
            raise AuthConfigError(
                self.settings.system, f"cannot read Salesforce's private_key_file {path}: {err.strerror}"
            ) from None
        claims = {
            "iss": self.settings.client_id,
            "sub": self.settings.username,
            "aud": self.settings.jwt_audience,
            "exp": int(time.time()) + 180,
        }
        try:
            return jwt.encode(claims, key, algorithm="RS256")
        except (ValueError, TypeError, jwt.PyJWTError):
            raise AuthConfigError(
                self.settings.system, f"Salesforce's private_key_file {path} is not an RSA private key (PEM)"
            ) from None

    def _post(self, fields: dict[str, str], what: str) -> dict[str, Any]:
        return token_request(self.settings, fields, what, self.session, self._secrets)


def token_request(
    settings: AuthSettings,
    fields: dict[str, str],
    what: str,
    session: requests.Session | None = None,
    secrets: list[str] | None = None,
) -> dict[str, Any]:
    """POST a grant to the token endpoint in the system's dialect; the parsed answer.

    A refused grant (`invalid_grant`, a revoked or rotated-away token) raises
    ReauthorizationNeeded; a refused client raises AuthConfigError; anything else AuthError.
    Messages are scrubbed of every secret."""
    system = settings.system
    dialect = DIALECTS[system]
    secrets = [*(secrets or []), *settings.secrets(), *fields.values()]
    data = dict(fields)
    auth = None
    if settings.mode != "jwt":
        if dialect.basic_client_auth:
            auth = (settings.client_id or "", settings.client_secret or "")
        else:
            data.update(client_id=settings.client_id or "", client_secret=settings.client_secret or "")
    try:
        response = (session or token_session()).post(
            settings.token_url, data=data, auth=auth, headers={"Accept": "application/json"}, timeout=(10, 60)
        )
    except requests.RequestException as err:
        raise AuthError(
            system, scrub(f"{dialect.name} token endpoint {settings.token_url}: no answer ({err})", secrets)
        ) from None
    try:
        body = response.json()
    except ValueError:
        body = {}
    error = str(body.get("error") or "") if isinstance(body, dict) else ""
    if response.status_code == 200 and isinstance(body, dict) and body.get("access_token"):
        return body
    described = body.get("error_description", "") if isinstance(body, dict) else ""
    detail = scrub(f"{error or response.status_code}: {described}".strip(": "), secrets)
    if error == "invalid_grant" or (error == "invalid_token" and what == "refresh"):
        raise ReauthorizationNeeded(system, f"{what} grant answered {detail}")
    if error.startswith("invalid_client") or response.status_code == 401:
        raise AuthConfigError(
            system,
            f"{dialect.name} refused the client credentials ({detail}): "
            f"check sources.{system}.client_id and client_secret",
        )
    raise AuthError(
        system,
        f"{dialect.name} token endpoint answered {response.status_code} to the {what} grant ({detail})",
    )


def auth_for(system: str) -> AuthBase:
    """The auth for `system`'s API calls, from `sources.<system>.*` (see the module doc)."""
    settings = load_auth_settings(system)
    if settings.mode == "static":
        assert settings.access_token is not None
        return StaticBearer(settings.access_token)
    return OAuth2(settings)
