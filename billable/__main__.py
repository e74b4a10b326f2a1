"""`python -m billable <command>`: the operator's commands that are not a step of the run.

- `check`: is everything the daily run needs configured, and does each system answer
  (billable/check.py; `make check`).
"""

from __future__ import annotations

import importlib
import sys

COMMANDS = {"check": "billable.check"}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if not args or args[0] in ("-h", "--help"):
        print(f"usage: python -m billable {{{','.join(COMMANDS)}}} [options]\n\n{__doc__}")
        return 0 if args else 2
    if args[0] not in COMMANDS:
        print(f"billable: unknown command {args[0]!r}; choose from {', '.join(COMMANDS)}", file=sys.stderr)
        return 2
    command: int = importlib.import_module(COMMANDS[args[0]]).main(args[1:])
    return command


if __name__ == "__main__":
    sys.exit(main())
