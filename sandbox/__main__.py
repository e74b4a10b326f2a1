"""`python -m sandbox generate|serve|advance ...`: the sandbox's command line."""

from __future__ import annotations

import sys

USAGE = """usage: python -m sandbox <command> [options]

commands:
  generate   write a synthetic world      (python -m sandbox generate --help)
  serve      serve a world over HTTP      (python -m sandbox serve --help)
  advance    move a world's clock forward (python -m sandbox advance --help)
"""


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(USAGE)
        return 0 if args else 2
    command, rest = args[0], args[1:]
    if command == "generate":
        from sandbox.generate.cli import main as run
    elif command == "serve":
        from sandbox.servers.cli import main as run
    elif command == "advance":
        from sandbox.clock import main as run
    else:
        print(f"unknown command {command!r}\n\n{USAGE}", file=sys.stderr)
        return 2
    from sandbox.world import WorldError

    try:
        return run(rest)
    except WorldError as err:
        print(f"sandbox {command}: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
