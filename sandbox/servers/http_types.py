"""The types the app and the dialect modules share: a request, a response, the context a handler
gets, a dialect's entry points (`System`) and `Drop` (close without answering).

The import graph is a tree: the dialect modules import this module, `app` imports the dialects.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from sandbox.erp_live import LiveStore
from sandbox.servers.faults import Faults
from sandbox.servers.oauth_tokens import Registry
from sandbox.servers.state import WorldState


@dataclass
class Request:
    method: str
    path: str
    target: str  # path + query, as sent
    query: dict[str, list[str]]
    headers: dict[str, str]  # lower-case names
    body: bytes
    base_url: str

    def param(self, name: str) -> str | None:
        values = self.query.get(name)
        return values[-1] if values else None

    def header(self, name: str) -> str | None:
        return self.headers.get(name.lower())

    def bearer(self) -> str | None:
        """The bearer token, or None when missing or empty."""
        value = self.header("authorization") or ""
        scheme, _, token = value.partition(" ")
        if scheme.lower() != "bearer":
            return None
        return token.strip() or None

    def refused_token(self, system: str, context: Context) -> str | None:
        """Why this request's bearer may not call `system` ("missing", "expired", "unknown"), or None."""
        return context.oauth.check(system, self.bearer())


@dataclass
class Response:
    status: int
    body: bytes
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "application/json;charset=UTF-8"
    is_write: bool = False  # a committed ERP write (a candidate for commit-then-drop)

    @classmethod
    def json(cls, status: int, value: object, **headers: str) -> Response:
        return cls(status, orjson.dumps(value), dict(headers))


class Drop(Exception):
    """Close the connection without answering."""


@dataclass
class Context:
    """What a dialect handler needs: the world, the live ERP store and the faults."""

    state: WorldState
    live: LiveStore
    faults: Faults
    instance: str = ""  # the id its starter gave this server (`serve --instance-id`), echoed by health
    oauth: Registry = field(default_factory=Registry)  # clients and tokens (sandbox.servers.oauth)


@dataclass
class System:
    """A dialect module's entry points, as the app sees them."""

    name: str
    prefix: str
    handle: Callable[[Request, Context], Response]
    server_error: Callable[[int, Context], Response]
    throttled: Callable[[int, Context], Response]
    bucket: Callable[[Request], str]  # which rate-limit window the request counts against
