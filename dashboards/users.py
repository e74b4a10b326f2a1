"""Manage the dashboard's sign-in file: `python -m dashboards.users add <username> [--file F]`.

Passwords are read from the terminal (or $BILLABLE_DASHBOARD_NEW_PASSWORD for scripts) and
stored only as bcrypt hashes.
"""

from __future__ import annotations

import argparse
import getpass
import os
import sys
from pathlib import Path

import yaml
from streamlit_authenticator import Hasher

from dashboards import settings


def add_user(path: Path, username: str, name: str, email: str, password: str) -> None:
    """Add or replace one user in the YAML file, with a bcrypt hash of the password."""
    config = yaml.safe_load(path.read_text()) if path.exists() else None
    config = config or {}
    users = config.setdefault("credentials", {}).setdefault("usernames", {})
    users[username] = {"name": name, "email": email, "password": Hasher.hash(password)}
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_suffix(path.suffix + ".tmp")
    temporary.write_text(yaml.safe_dump(config, sort_keys=True))
    os.chmod(temporary, 0o600)
    os.replace(temporary, path)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m dashboards.users", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    add = commands.add_parser("add", help="add or replace a user")
    add.add_argument("username")
    add.add_argument("--name", help="display name (default: the username)")
    add.add_argument("--email", default="")
    add.add_argument("--file", type=Path, default=settings.users_file(), help="users YAML file")
    args = parser.parse_args(argv)
    if args.file is None:
        parser.error(f"give --file or set {settings.USERS_FILE_ENV}")
    password = os.environ.get("BILLABLE_DASHBOARD_NEW_PASSWORD") or getpass.getpass("Password: ")
    if len(password) < 8:
        print("users: a password needs at least 8 characters", file=sys.stderr)
        return 2
    add_user(args.file, args.username, args.name or args.username, args.email, password)
    print(f"users: {args.username} written to {args.file} (bcrypt hash only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
