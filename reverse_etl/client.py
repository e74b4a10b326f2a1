"""The QuickBooks Online client: base URL and bearer token from configuration, pacing and retries.

It knows QuickBooks' documented limits (500 requests per minute and 10 concurrent requests per
company, and apart from those 40 batch requests per minute per company) and stays under them on
its own: a per-realm pacer spaces requests, a per-realm sliding window admits at most
`max_batches_per_window` /batch calls in any `batch_window_s` (36 in 61 s: the 40 a minute with
a margin, as 450 is for the 500), a per-realm semaphore caps concurrency, and a 429 pauses the
whole realm for its `Retry-After`. 5xx answers
and dropped connections are retried with exponential backoff. A retried write is the same
request (same body, same `requestid`), which QuickBooks replays instead of applying twice, so a
retry after a lost response is safe.
"""

from __future__ import annotations

import os
import random
import threading
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import orjson
import requests
from requests.adapters import HTTPAdapter

RETRY_STATUSES = {429, 500, 502, 503, 504}


@dataclass(frozen=True)
class Settings:
    """Where the ERP is and how hard to push it. `access_token` is a secret: never logged."""

    base_url: str
    access_token: str | None = field(default=None, repr=False)
    # OAuth (`ingestion.auth`): the loaders' QuickBooks app and token store, shared; else the token
    auth: Any = field(default=None, repr=False, compare=False)
    max_requests_per_minute: float = 450.0  # QuickBooks allows 500 per realm; keep a margin
    concurrency: int = 4  # per realm; QuickBooks allows 10
    # QuickBooks allows 40 /batch calls per minute per realm: at most 36 in any 61 s (0: no limit)
    max_batches_per_window: int = 36
    batch_window_s: float = 61.0
    max_attempts: int = 8
    backoff_s: float = 0.5
    max_backoff_s: float = 30.0
    max_retry_after_s: float = 120.0
    timeout_s: float = 60.0
    full_reconcile_days: float = 7.0  # read the ERP in full at least this often (else by change)


def load_settings(**overrides: Any) -> Settings:
    """Settings from dlt config and secrets (config.toml, secrets.toml or environment variables).

    The QuickBooks app is the loaders' (`sources.quickbooks.base_url` / `access_token`); a
    separate `reverse_etl.quickbooks.*` wins when set (e.g. a token with write scope). With
    `sources.quickbooks.client_id` (and no `reverse_etl.quickbooks.access_token`) the sync uses the
    loaders' OAuth app and the same token store (`ingestion.auth`): one rotating refresh token.
    """

    def get(name: str, secret: bool = False) -> Any:
        # The environment as dlt names it first (cheap); then dlt's config and secrets files.
        for section in ("REVERSE_ETL__QUICKBOOKS", "SOURCES__QUICKBOOKS"):
            value = os.environ.get(f"{section}__{name.upper()}")
            if value not in (None, ""):
                return value
        import dlt  # imported only when needed: it takes a second or two

        store = dlt.secrets if secret else dlt.config
        for section in ("reverse_etl.quickbooks", "sources.quickbooks"):
            value = store.get(f"{section}.{name}")
            if value not in (None, ""):
                return value
        return None

    base_url = overrides.pop("base_url", None) or get("base_url")
    token = overrides.pop("access_token", None) or _own_token() or None
    auth = None
    if not token and get("client_id"):
        from ingestion.auth import AuthError, auth_for

        try:
            auth = auth_for("quickbooks")
        except AuthError as err:
            raise ConfigError(str(err)) from None
    elif not token:
        token = get("access_token", secret=True)
    if not base_url or not (token or auth):
        missing = [n for n, v in (("base_url", base_url), ("access_token", token or auth)) if not v]
        raise ConfigError(
            f"the ERP connection is not configured: missing {', '.join(missing)}; set "
            "reverse_etl.quickbooks.base_url and access_token (or sources.quickbooks.*) in "
            ".dlt/config.toml / secrets.toml, or REVERSE_ETL__QUICKBOOKS__BASE_URL and "
            "REVERSE_ETL__QUICKBOOKS__ACCESS_TOKEN in the environment"
        )
    tuning: dict[str, Any] = {}  # each value converted to its Settings field's type below
    for name, kind in (
        ("max_requests_per_minute", float),
        ("concurrency", int),
        ("max_batches_per_window", int),
        ("batch_window_s", float),
        ("max_attempts", int),
        ("backoff_s", float),
        ("max_backoff_s", float),
        ("full_reconcile_days", float),
    ):
        value = overrides.get(name)
        if value is None:
            value = get(name)
        if value is not None:
            try:
                tuning[name] = kind(value)
            except (TypeError, ValueError):
                tuning[name] = -1
            if tuning[name] < 0:
                raise ConfigError(
                    f"reverse_etl.quickbooks.{name} must be a number >= 0, got {value!r} "
                    f"(REVERSE_ETL__QUICKBOOKS__{name.upper()} or .dlt/config.toml)"
                )
    return Settings(
        base_url=str(base_url).rstrip("/"), access_token=str(token) if token else None, auth=auth, **tuning
    )


def _own_token() -> str | None:
    """`reverse_etl.quickbooks.access_token`, the sync's own static token (it wins over OAuth)."""
    value = os.environ.get("REVERSE_ETL__QUICKBOOKS__ACCESS_TOKEN")
    if value:
        return value
    import dlt

    found: Any = dlt.secrets.get("reverse_etl.quickbooks.access_token")
    return str(found) if found else None


class ConfigError(RuntimeError):
    """The client cannot be configured; the message says what to set."""


class TransportError(RuntimeError):
    """A request got no usable answer after every retry (the realm may be down)."""


@dataclass
class Answer:
    """One HTTP exchange that got an answer: status and parsed JSON body."""

    status: int
    body: Any
    attempts: int
    elapsed_ms: float
    sent_at: float = 0.0  # when the answered attempt went out (epoch seconds), after any pacing wait


class RealmGate:
    """One realm's pacing (requests per minute), batch window, concurrency cap and 429 pause."""

    def __init__(
        self, per_minute: float, concurrency: int, batches_per_window: int = 0, batch_window_s: float = 60.0
    ):
        self.interval = 60.0 / per_minute if per_minute and per_minute > 0 else 0.0
        self.slots = threading.BoundedSemaphore(max(1, concurrency))
        self.batch_limit = max(0, batches_per_window)
        self.batch_window = batch_window_s
        self._lock = threading.Lock()
        self._next = 0.0
        self._paused_until = 0.0
        self._batches: deque[float] = deque()  # send times of the realm's recent /batch calls

    def _batch_free_at(self, now: float) -> float:
        """When the batch window has room (now, or when its oldest call leaves it); under the lock."""
        if not self.batch_limit:
            return now
        while self._batches and self._batches[0] <= now - self.batch_window:
            self._batches.popleft()
        if len(self._batches) < self.batch_limit:
            return now
        return self._batches[0] + self.batch_window

    def acquire(self, batch: bool = False) -> None:
        """Wait for a concurrency slot, the request pacing, the realm's pause and (for a /batch
        call) room in the batch window; a batch waiting for the window holds no slot."""
        while True:
            if batch:
                with self._lock:
                    now = time.monotonic()
                    free_at = self._batch_free_at(now)
                if free_at > now:
                    time.sleep(free_at - now)
                    continue
            self.slots.acquire()
            while True:
                with self._lock:
                    now = time.monotonic()
                    start = max(now, self._next, self._paused_until)
                    if batch and self._batch_free_at(now) > now:  # another batch took the room
                        break
                    if start <= now:
                        self._next = now + self.interval
                        if batch and self.batch_limit:
                            self._batches.append(now)
                        return
                time.sleep(start - now)
            self.slots.release()

    def release(self) -> None:
        self.slots.release()

    def pause(self, seconds: float) -> None:
        with self._lock:
            self._paused_until = max(self._paused_until, time.monotonic() + seconds)


class QuickBooksClient:
    """Sends requests to one QuickBooks installation (any number of realms)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.session = requests.Session()
        adapter = HTTPAdapter(pool_connections=16, pool_maxsize=64, max_retries=0)
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.headers.update(
            {
                "Accept": "application/json",
                "Content-Type": "application/json",
                "User-Agent": "billable-reverse-etl/1",
            }
        )
        if settings.auth is not None:
            self.session.auth = settings.auth  # renewed before expiry and on a 401
        else:
            self.session.headers["Authorization"] = f"Bearer {settings.access_token}"
        self._gates: dict[str, RealmGate] = {}
        self._gates_lock = threading.Lock()
        self.requests_sent = 0
        self.reads_sent = 0
        self.transport_failures = 0
        self._count_lock = threading.Lock()

    def gate(self, realm: str) -> RealmGate:
        with self._gates_lock:
            gate = self._gates.get(realm)
            if gate is None:
                settings = self.settings
                gate = RealmGate(
                    settings.max_requests_per_minute,
                    settings.concurrency,
                    settings.max_batches_per_window,
                    settings.batch_window_s,
                )
                self._gates[realm] = gate
            return gate

    def url(self, realm: str, path: str) -> str:
        return f"{self.settings.base_url}/v3/company/{realm}/{path}"

    def request(
        self,
        realm: str,
        method: str,
        path: str,
        body: bytes | None = None,
        on_failure: Any = None,
        after_send: Any = None,
        count_as: str = "request",
    ) -> Answer:
        """Send with retries; the answer of the first attempt that is not a transport failure.

        Raises TransportError after `max_attempts`. `count_as="read"` counts it in `reads_sent`
        (the reconciliation's queries) instead of `requests_sent`.
        `on_failure(attempt, status, error, sent_at)`
        runs for each failed attempt (the audit log); `after_send(answer)` once the answer is in.
        """
        gate = self.gate(realm)
        settings = self.settings
        is_batch = path.partition("?")[0] == "batch"  # counted in the realm's batch window too
        last_error = ""
        for attempt in range(1, settings.max_attempts + 1):
            gate.acquire(batch=is_batch)
            started = time.monotonic()
            sent_at = time.time()
            status: int | None = None
            response = None
            try:
                with self._count_lock:
                    if count_as == "read":  # reconciliation reads: counted apart from the writes
                        self.reads_sent += 1
                    else:
                        self.requests_sent += 1
                response = self.session.request(
                    method, self.url(realm, path), data=body, timeout=settings.timeout_s
                )
                status = response.status_code
                content = response.content
            except requests.RequestException as err:
                last_error = f"{type(err).__name__}: {str(err)[:300]}"
                content = b""
            finally:
                gate.release()
            elapsed_ms = (time.monotonic() - started) * 1000
            if status is not None and status not in RETRY_STATUSES:
                try:
                    parsed = orjson.loads(content) if content else None
                except orjson.JSONDecodeError:
                    parsed = {"raw": content[:500].decode("utf-8", "replace")}
                answer = Answer(status, parsed, attempt, elapsed_ms, sent_at)
                if after_send is not None:
                    after_send(answer)
                return answer
            with self._count_lock:
                self.transport_failures += 1
            if status is not None:
                last_error = f"HTTP {status}: {content[:300].decode('utf-8', 'replace')}"
            if on_failure is not None:
                on_failure(attempt, status, last_error, sent_at)
            if attempt == settings.max_attempts:
                break
            wait = min(settings.max_backoff_s, settings.backoff_s * 2 ** (attempt - 1))
            wait *= 0.75 + random.random() * 0.5  # jitter: retries of many workers do not align
            if status == 429:
                retry_after = _retry_after(response)
                wait = min(settings.max_retry_after_s, max(wait, retry_after))
                gate.pause(wait)  # the whole realm waits, not just this request
            time.sleep(wait)
        raise TransportError(
            f"{method} {path} in realm {realm}: no answer after {settings.max_attempts} attempts; "
            f"last: {last_error}"
        )


def _retry_after(response: requests.Response | None) -> float:
    value = response.headers.get("Retry-After") if response is not None else None
    try:
        return max(0.0, float(value)) if value else 1.0
    except ValueError:
        return 1.0


def crash_hook() -> tuple[int, str] | None:
    """Test hook: REVERSE_ETL_TEST_KILL_AFTER=N[:before|after] kills the process (SIGKILL) at
    the N-th write request, before it is sent or after its answer arrived (the ERP committed,
    the ledger not yet updated). Unset in normal use."""
    spec = os.environ.get("REVERSE_ETL_TEST_KILL_AFTER")
    if not spec:
        return None
    count, _, phase = spec.partition(":")
    return int(count), phase or "after"
