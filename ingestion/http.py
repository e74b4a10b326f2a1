"""dlt's REST client with retries, parsing each response once with orjson.

Retries (429 honouring `Retry-After`, 5xx and dropped connections with exponential backoff) are
dlt's own: `dlt.sources.helpers.requests.Client`, tuned by the `[runtime]` settings
`request_max_attempts`, `request_backoff_factor`, `request_max_retry_delay` and `request_timeout`
(config.toml or `RUNTIME__REQUEST_MAX_ATTEMPTS`, ...).
"""

from __future__ import annotations

import gc
import queue
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any, TypeVar

import dlt
import orjson
from dlt.sources.helpers.requests import Client
from dlt.sources.helpers.rest_client import RESTClient
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from requests import HTTPError, Response

T = TypeVar("T")


class OrjsonRESTClient(RESTClient):
    """A RESTClient whose responses parse their JSON body at most once, with orjson.

    dlt's paginators and data selectors call `response.json()` several times per page; on pages
    of thousands of records that parsing is most of a load's CPU (measured: docs/benchmarks.md).
    The parse happens on the first call, so a caller that reads the body another way (Arrow's
    JSON reader, `records.read_json_page`) never pays for it.
    """

    def _send_request(self, request: Any, **kwargs: Any) -> Response:
        response = super()._send_request(request, **kwargs)
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


def make_client(base_url: str, access_token: str, headers: dict[str, str] | None = None) -> OrjsonRESTClient:
    """A client for one system: base URL, bearer token, extra headers, dlt's retrying session."""

    def setting(name: str, default: float) -> float:
        # Read key by key: dlt resolves each from the environment (RUNTIME__...) or config.toml.
        value = dlt.config.get(f"runtime.{name}")
        return float(default if value is None else value)

    session = Client(
        request_timeout=setting("request_timeout", 60),
        request_max_attempts=int(setting("request_max_attempts", 8)),
        request_backoff_factor=setting("request_backoff_factor", 1),
        request_max_retry_delay=setting("request_max_retry_delay", 60),
        raise_for_status=False,  # the RESTClient raises, after dlt's retries, naming the URL
    ).session
    session.headers.update({"Accept": "application/json", **(headers or {})})
    return OrjsonRESTClient(
        base_url=base_url.rstrip("/"), auth=BearerTokenAuth(access_token), session=session
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
