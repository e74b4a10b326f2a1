"""dlt's REST client with retries, parsing each response once with orjson.

Retries (429 honouring `Retry-After`, 5xx, dropped connections and slow answers with exponential
backoff) are dlt's own: `dlt.sources.helpers.requests.Client`, tuned by the `[runtime]` settings
`request_max_attempts`, `request_backoff_factor`, `request_max_retry_delay` and `request_timeout`
(the read timeout; config.toml or `RUNTIME__REQUEST_MAX_ATTEMPTS`, ...). A connection that cannot
be opened at all (refused, unknown host, no answer within `request_connect_timeout`, default 10 s)
is not retried: it is a wrong URL or a system that is down, not a blip, and waiting two minutes of
backoff would only hide it. It raises `SystemUnreachable` naming the URL and the cause at once.
"""

from __future__ import annotations

import gc
import queue
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar
from urllib.parse import urlsplit, urlunsplit

import dlt
import orjson
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from requests import HTTPError, Response
from requests.auth import AuthBase
from requests.exceptions import ChunkedEncodingError, ConnectionError, ConnectTimeout, Timeout
from urllib3.exceptions import NameResolutionError, NewConnectionError

from ingestion.auth import StaticBearer

T = TypeVar("T")

# Seconds to wait for a connection to open; the read timeout is `[runtime] request_timeout`.
CONNECT_TIMEOUT_S = 10.0


class SystemUnreachable(ConnectionError):
    """No answer from a system: the connection could not be opened (not retried), or every retry
    of a dropped or timed-out request failed. The message names the URL (no query string, no
    credentials) and the cause, in one line. A `requests.ConnectionError`, so code that handles
    a failed request (a QuickBooks realm that fails alone) handles this one too."""

    def __init__(self, message: str, url: str) -> None:
        super().__init__(message)
        self.url = url


def public_url(url: str) -> str:
    """`url` without credentials, query string or fragment: safe to log, still says where."""
    parts = urlsplit(url)
    host = _bracketed(parts.hostname or "")
    netloc = f"{host}:{parts.port}" if parts.port else host
    return urlunsplit((parts.scheme, netloc, parts.path, "", ""))


def _bracketed(host: str) -> str:
    """An IPv6 address in brackets, as in a URL (`[::1]:8800`)."""
    return f"[{host}]" if ":" in host else host


def _causes(err: BaseException | None) -> Iterator[BaseException]:
    """`err`, the urllib3 reason requests wraps, and their causes and contexts."""
    seen: set[int] = set()
    while err is not None and id(err) not in seen:
        seen.add(id(err))
        yield err
        reason = getattr(err, "reason", None)
        if reason is None and err.args and isinstance(err.args[0], BaseException):
            reason = err.args[0]
        err = reason if isinstance(reason, BaseException) else (err.__cause__ or err.__context__)


def connect_failure(err: BaseException, url: str) -> str | None:
    """Why a connection to `url` could not be opened (refused, unknown host, no answer to connect);
    None when the failure came later (a dropped connection, a slow answer): worth retrying."""
    if not isinstance(err, ConnectionError):
        return None
    parts = urlsplit(url)
    host = _bracketed(parts.hostname or "?")
    port = parts.port or (443 if parts.scheme == "https" else 80)
    if isinstance(err, ConnectTimeout):
        return f"no answer from {host}:{port} to the connection attempt (connect timeout)"
    for cause in _causes(err):
        if isinstance(cause, NameResolutionError | socket.gaierror):
            detail = next((c.strerror for c in _causes(cause) if isinstance(c, socket.gaierror)), None)
            return f"host name {host} not found (DNS: {detail or 'no address'})"
        if isinstance(cause, ConnectionRefusedError):
            return f"connection refused by {host}:{port} (nothing listens there)"
    for cause in _causes(err):
        if isinstance(cause, NewConnectionError):  # another OS error opening it: no route, ...
            detail = next((c.strerror for c in _causes(cause) if isinstance(c, OSError) and c.strerror), None)
            return f"cannot open a connection to {host}:{port} ({detail or cause})"
    return None


def retry_transient(response: Response | None, exception: BaseException | None) -> bool:
    """dlt's retry condition for exceptions: a dropped connection, a chunked body cut short or a
    read timeout is retried; a connection that could not be opened is not (see the module doc)."""
    if not isinstance(exception, ConnectionError | Timeout | ChunkedEncodingError):
        return False
    request = getattr(exception, "request", None)
    return connect_failure(exception, getattr(request, "url", None) or "") is None


def transport_failure(err: BaseException, method: str, url: str) -> SystemUnreachable | None:
    """A request that got no answer, as one line naming the URL and what happened; None for
    other errors (an HTTP error status is raised by the caller with its body)."""
    if not isinstance(err, ConnectionError | Timeout | ChunkedEncodingError):
        return None
    shown = public_url(url)
    cause = connect_failure(err, url)
    if cause:
        return SystemUnreachable(f"cannot connect to {shown}: {cause}", shown)
    kind = "read timeout" if isinstance(err, Timeout) else "connection dropped"
    detail = " ".join(str(next(iter(reversed(list(_causes(err)))), err)).split())[:300]
    return SystemUnreachable(f"{method} {shown}: no complete answer after retries ({kind}: {detail})", shown)


class OrjsonRESTClient(RESTClient):
    """A RESTClient whose responses parse their JSON body at most once, with orjson.

    dlt's paginators and data selectors call `response.json()` several times per page; on pages
    of thousands of records that parsing is most of a load's CPU (measured: docs/benchmarks.md).
    The parse happens on the first call, so a caller that reads the body another way (Arrow's
    JSON reader, `pages.read_json_page`) never pays for it.
    """

    def _send_request(self, request: Any, **kwargs: Any) -> Response:
        failure: SystemUnreachable | None = None
        try:
            response = super()._send_request(request, **kwargs)
        except (ConnectionError, Timeout, ChunkedEncodingError) as err:
            url = getattr(err.request, "url", None) or request.url or ""
            failure = transport_failure(err, request.method or "GET", url)
            if failure is None:
                raise
        if failure:  # raised outside the handler: the message is the whole story, not urllib3's chain
            raise failure
        body = response.content
        parsed: list = []

        # The closure holds the body, not the response: a response -> json -> response cycle
        # would keep each page's body alive until the cyclic GC next runs.
        def json(**_: Any) -> Any:
            if not parsed:
                parsed.append(parse_json(body) if body else None)
            return parsed[0]

        response.json = json  # type: ignore[method-assign]
        return response


def raise_for_status(response: Response, max_body: int = 2000) -> None:
    """Raise requests' HTTPError for a 4xx/5xx answer (after dlt's retries), with the URL, the
    status and the start of the body, as dlt's paginating client does."""
    if response.status_code < 400:
        return
    kind = "Client" if response.status_code < 500 else "Server"
    body = response.text[:max_body] if response.content else ""
    message = f"{response.status_code} {kind} Error: {response.reason} for url: {response.url}"
    raise HTTPError(message + (f"\nResponse: {body}" if body else ""), response=response)


@contextmanager
def gc_paused() -> Iterator[None]:
    """The cyclic GC paused for a block that builds many small containers, none in a cycle (a
    parsed page, a file's rows): the collector would otherwise run many times per block, walking
    all of them. Only around such a block: paused for a whole load, the garbage that a load does
    make in cycles would pile up (measured: docs/ingestion.md, "Throughput")."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def parse_json(body: bytes) -> Any:
    """orjson, with the cyclic GC paused (measured: it halves parse time)."""
    with gc_paused():
        return orjson.loads(body)


def make_client(
    base_url: str, auth: AuthBase | str, headers: dict[str, str] | None = None
) -> OrjsonRESTClient:
    """A client for one system: base URL, its auth (`ingestion.auth.auth_for`, or a static bearer
    token as a string), extra headers, dlt's retrying session."""

    def setting(name: str, default: float) -> float:
        # Read key by key: dlt resolves each from the environment (RUNTIME__...) or config.toml.
        value: Any = dlt.config.get(f"runtime.{name}")
        return float(default if value is None else value)

    session = Client(
        # (connect, read): a system that does not take the connection says so in seconds
        request_timeout=(
            setting("request_connect_timeout", CONNECT_TIMEOUT_S),
            setting("request_timeout", 60),
        ),
        request_max_attempts=int(setting("request_max_attempts", 8)),
        request_backoff_factor=setting("request_backoff_factor", 1),
        request_max_retry_delay=setting("request_max_retry_delay", 60),
        exceptions=(),  # exceptions are retried by `retry_transient`, connect failures not
        retry_condition=retry_transient,
        raise_for_status=False,  # the RESTClient raises, after dlt's retries, naming the URL
    ).session
    session.headers.update({"Accept": "application/json", **(headers or {})})
    return OrjsonRESTClient(
        base_url=base_url.rstrip("/"),
        auth=StaticBearer(auth) if isinstance(auth, str) else auth,
        session=session,
    )


def prefetched(pages: Iterator[T], depth: int = 2) -> Iterator[T]:
    """Iterate `pages` in a background thread, `depth` pages ahead of the consumer.

    Fetching the next page overlaps with validating and writing the current one; the source's
    order is kept and its exceptions are re-raised here, in the consumer.
    """
    buffer: queue.Queue = queue.Queue(maxsize=depth)
    done = object()
    stop = threading.Event()

    def produce() -> None:
        try:
            for page in pages:
                if stop.is_set():
                    return
                buffer.put(page)
            buffer.put(done)
        except BaseException as err:  # handed to the consumer, which re-raises it
            buffer.put(_Failure(err))
        finally:
            close = getattr(pages, "close", None)
            if close:  # a generator (say, another prefetch stage) stops its own work now
                close()

    worker = threading.Thread(target=produce, name="prefetch", daemon=True)
    worker.start()
    try:
        while (item := buffer.get()) is not done:
            if isinstance(item, _Failure):
                raise item.error
            yield item
    finally:
        stop.set()
        while worker.is_alive():  # unblock a producer waiting on a full buffer
            try:
                buffer.get_nowait()
            except queue.Empty:
                worker.join(timeout=0.05)


class _Failure:
    def __init__(self, error: BaseException):
        self.error = error
