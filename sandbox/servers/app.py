"""The HTTP server: one port, routed by path prefix to each system's dialect, with faults around it.

Stdlib `ThreadingHTTPServer` speaking HTTP/1.1 (keep-alive): dropping a connection without a
response, or after a committed write, needs control of the raw socket that frameworks hide.
"""

from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from sandbox.connection import connection_settings
from sandbox.erp_live import LiveStore
from sandbox.servers import harvest, kantata, oauth, quickbooks, salesforce
from sandbox.servers.faults import FaultConfigError, Faults
from sandbox.servers.http_types import Context, Drop, Request, Response, System
from sandbox.servers.state import WorldState


def systems() -> list[System]:
    return [module.SYSTEM for module in (salesforce, kantata, harvest, quickbooks)]


class App:
    """Routes requests and wraps them in the switched-on faults."""

    def __init__(self, state: WorldState, live: LiveStore, faults: Faults, instance: str = ""):
        self.context = Context(state, live, faults, instance)
        self.systems = systems()

    def route(self, request: Request) -> Response:
        answer = oauth.route(request, self.context)  # consent, token and /_sandbox/oauth: no faults
        if answer is not None:
            return answer
        if request.path.startswith("/_sandbox/"):
            return self.admin(request)
        for system in self.systems:
            if request.path.startswith(system.prefix):
                return self.serve(system, request)
        return Response.json(404, {"status": 404, "error": "Not Found", "path": request.path})

    def serve(self, system: System, request: Request) -> Response:
        faults = self.context.faults
        config = faults.config
        ticket = faults.ticket(request.method, request.target)
        bucket = system.bucket(request)
        retry_after = faults.throttle(system.name, bucket)
        if retry_after is not None:
            faults.log(ticket, "rate_limit", retry_after=retry_after)
            return self._throttled(system, retry_after)
        if not faults.enter(system.name, bucket):
            faults.log(ticket, "concurrency_limit")
            return self._throttled(system, 1)
        try:
            if config.slow_ms:
                time.sleep(config.slow_ms / 1000)
            if faults.hit("drop", config.drop_rate, ticket):
                faults.log(ticket, "drop")
                raise Drop()
            if faults.hit("error", config.error_rate, ticket):
                status = int(faults.pick("error", (500, 502, 503), ticket))
                faults.log(ticket, "server_error", status=status)
                return system.server_error(status, self.context)
            response = system.handle(request, self.context)
            if response.is_write and faults.hit("commit_drop", config.commit_drop_rate, ticket):
                faults.log(ticket, "commit_then_drop", status=response.status)
                raise Drop()
            return response
        finally:
            faults.leave(system.name, bucket)

    def _throttled(self, system: System, retry_after: int) -> Response:
        response = system.throttled(retry_after, self.context)
        response.headers["Retry-After"] = str(retry_after)
        return response

    def admin(self, request: Request) -> Response:
        faults = self.context.faults
        if request.path == "/_sandbox/health":
            world = self.context.state.world
            return Response.json(
                200,
                {
                    "status": "ok",
                    "clock": world.meta["clock"],
                    # Who answers: a starter checks these before trusting the port (another
                    # world's sandbox may hold it); the world as an absolute path.
                    "world": str(world.path.resolve()),
                    "instance": self.context.instance,
                    "pid": os.getpid(),
                    "seed": world.seed,
                    "faults": faults.describe(),
                },
            )
        if request.path == "/_sandbox/settings":  # how a starter points the loaders at us
            grants = (
                oauth.preauthorize(self.context, request.base_url)
                if request.param("auth") == "oauth"
                else None
            )
            return Response.json(200, connection_settings(request.base_url, self.context.state.world, grants))
        if request.path == "/_sandbox/faults/log":
            if request.method == "DELETE":
                faults.clear_log()
            return Response.json(200, {"entries": faults.entries()})
        if request.path == "/_sandbox/faults":
            if request.method == "POST":
                try:
                    body = json.loads(request.body or b"{}")
                    if not isinstance(body, dict):
                        raise FaultConfigError("the body must be a JSON object of fault settings")
                    faults.set(body)
                except (FaultConfigError, ValueError, TypeError) as err:
                    return Response.json(422, {"error": str(err)})
            elif request.method == "DELETE":
                faults.clear()
            return Response.json(200, faults.describe())
        return Response.json(404, {"error": f"no admin endpoint {request.path}"})


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "sandbox/1"
    app: App  # set on the subclass made by `make_server`
    server: Server
    quiet = True

    def log_message(self, format: str, *args: object) -> None:
        if not self.quiet:
            super().log_message(format, *args)

    def _dispatch(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        split = urlsplit(self.path)
        host = self.headers.get("Host") or "{}:{}".format(*self.server.address())
        request = Request(
            method=self.command,
            path=split.path,
            target=self.path,
            query=parse_qs(split.query, keep_blank_values=True),
            headers={name.lower(): value for name, value in self.headers.items()},
            body=body,
            base_url=f"http://{host}",
        )
        try:
            response = self.app.route(request)
        except Drop:
            self._drop()
            return
        except Exception as err:  # a bug must not kill the connection silently: say what broke
            response = Response.json(500, {"error": "sandbox internal error", "detail": repr(err)})
        self.send_response(response.status)
        self.send_header("Content-Type", response.content_type)
        self.send_header("Content-Length", str(len(response.body)))
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(response.body)

    def _drop(self) -> None:
        self.close_connection = True
        with contextlib.suppress(OSError):  # the client may already be gone
            self.connection.shutdown(socket.SHUT_RDWR)

    do_GET = do_POST = do_DELETE = do_PUT = do_PATCH = do_HEAD = _dispatch


class Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 128

    def address(self) -> tuple[str, int]:
        """The (host, port) it listens on (port 0 asked for: the port it got)."""
        host, port = self.server_address[:2]
        return str(host), int(port)


def make_server(
    state: WorldState,
    live: LiveStore,
    faults: Faults,
    host: str,
    port: int,
    instance: str = "",
    quiet: bool = True,
) -> Server:
    """A ready-to-serve HTTP server for one world (call `serve_forever`); `quiet=False` logs every
    request to stderr."""
    handler = type("BoundHandler", (Handler,), {"app": App(state, live, faults, instance), "quiet": quiet})
    return Server((host, port), handler)
