"""`python -m sandbox serve`: serve a world over HTTP until SIGTERM / SIGINT.

Before it listens, the world's HR drop is materialised as of its clock (`sandbox.hr_drop.deliver`,
idempotent), so any world (a hand-written one too) has the payroll folder its clock implies.
"""

from __future__ import annotations

import argparse
import errno
import signal
import sys
import threading

from billable.sandbox_process import describe_listener  # the one probe, shared with the runner
from sandbox import hr_drop
from sandbox.erp_live import LiveStore
from sandbox.servers.app import make_server
from sandbox.servers.faults import FaultConfig, FaultConfigError, Faults
from sandbox.servers.state import WorldState
from sandbox.world import WorldError


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m sandbox serve",
        description="Serve a sandbox world over HTTP "
        "in the Salesforce, Kantata, Harvest and QuickBooks dialects.",
    )
    p.add_argument("--world", required=True, help="the world folder")
    p.add_argument("--port", type=int, required=True, help="the port (0 picks a free one)")
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--seed", type=int, default=None, help="fault seed (default: the world's seed)")
    p.add_argument("--rate-limit", action="store_true", help="enforce the systems' real rate limits")
    p.add_argument("--error-rate", type=float, default=0.0, help="share of requests answering 500/502/503")
    p.add_argument("--drop-rate", type=float, default=0.0, help="share of requests dropped without answer")
    p.add_argument("--slow-ms", type=int, default=0, help="delay every response by this many ms")
    p.add_argument(
        "--commit-drop-rate", type=float, default=0.0, help="share of ERP writes committed then dropped"
    )
    p.add_argument("--drift-from", default=None, help="records changed on/after this date drift (YYYY-MM-DD)")
    p.add_argument(
        "--malformed-rate", type=float, default=0.0, help="share of Harvest time entries malformed"
    )
    p.add_argument("--access-log", action="store_true", help="log every request to stderr")
    p.add_argument(
        "--instance-id",
        default="",
        help="an id chosen by the starter; /_sandbox/health echoes it (the starter knows it reached us)",
    )
    return p


def main(argv: list[str]) -> int:
    """Run the server; returns the exit code (0 after a clean SIGTERM / SIGINT shutdown)."""
    args = parser().parse_args(argv)
    try:
        state = WorldState(args.world)
    except WorldError as err:
        print(f"sandbox serve: {err}", file=sys.stderr)
        return 2
    world = state.world
    try:
        hr_drop.deliver(world)
    except ValueError as err:  # an unreadable hr_drop.state.json: one line, naming the file
        print(f"sandbox serve: {err}", file=sys.stderr)
        return 2
    config = FaultConfig()
    try:
        config.update(
            {
                "rate_limit": args.rate_limit,
                "error_rate": args.error_rate,
                "drop_rate": args.drop_rate,
                "slow_ms": args.slow_ms,
                "commit_drop_rate": args.commit_drop_rate,
                "drift_from": args.drift_from,
                "malformed_rate": args.malformed_rate,
            }
        )
    except FaultConfigError as err:
        print(f"sandbox serve: {err}", file=sys.stderr)
        return 2
    faults = Faults(world.seed if args.seed is None else args.seed, config)
    try:
        server = make_server(
            state,
            LiveStore(world.path),
            faults,
            args.host,
            args.port,
            args.instance_id,
            quiet=not args.access_log,
        )
    except OSError as err:
        if err.errno != errno.EADDRINUSE:
            print(f"sandbox serve: cannot listen on {args.host}:{args.port}: {err.strerror}", file=sys.stderr)
            return 2
        holder = describe_listener(args.host, args.port) or "another program"
        print(
            f"sandbox serve: port {args.port} on {args.host} is in use by {holder}; "
            "stop it or choose another --port",
            file=sys.stderr,
        )
        return 2
    host, port = server.address()

    def stop(signum: int, frame: object) -> None:
        # shutdown() blocks until serve_forever returns, so it must run off the main thread
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    print(f"sandbox serving {world.path} on http://{host}:{port} (clock {world.meta['clock']})", flush=True)
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
    return 0
