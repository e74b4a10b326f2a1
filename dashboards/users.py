"""Manage the dashboard's sign-in file: `python -m dashboards.users add <username> --role ROLE
[--practice P ...] [--file F]`.

Each user has a role (executive, finance, practice_lead, delivery; docs/dashboards.md) and, for a
practice lead (optionally a delivery user), the practice(s) their rows are limited to. Passwords
are read from the terminal (or $BILLABLE_DASHBOARD_NEW_PASSWORD for scripts) and stored only as
bcrypt hashes.
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
from dashboards.queries.access import Access, AccessConfigError, Role


def add_user(
    path: Path,
    username: str,
    name: str,
    email: str,
    password: str,
    *,
    role: Role | str,
    practices: tuple[str, ...] = (),
) -> None:
    """Add or replace one user in the YAML file, with a bcrypt hash of the password, a role and
    the practices a scoped role sees (AccessConfigError for a role/practice combination refused)."""
    access = Access(Role(role), tuple(practices), username=username)  # validates before writing
    config = yaml.safe_load(path.read_text()) if path.exists() else None
    config = config or {}
    users = config.setdefault("credentials", {}).setdefault("usernames", {})
    users[username] = {
        "name": name,
        "email": email,
        "password": Hasher.hash(password),
        "role": access.role.value,
    }
    if access.practices:
        users[username]["practices"] = list(access.practices)
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
    add.add_argument(
        "--role", required=True, choices=[role.value for role in Role], help="what the user sees"
    )
    add.add_argument(
        "--practice",
        action="append",
        default=[],
        help="a practice the user's rows are limited to (practice_lead: required; repeat for several)",
    )
    add.add_argument(
        "--file", type=Path, default=None, help=f"users YAML file (default ${settings.USERS_FILE_ENV})"
    )
    args = parser.parse_args(argv)
    if args.file is None:
        try:
            args.file = settings.users_file()
        except settings.SignInMisconfigured as error:
            parser.error(str(error))
    if args.file is None:
        parser.error(f"give --file or set {settings.USERS_FILE_ENV}")
    password = os.environ.get("BILLABLE_DASHBOARD_NEW_PASSWORD") or getpass.getpass("Password: ")
    if len(password) < 8:
        print("users: a password needs at least 8 characters", file=sys.stderr)
        return 2
    try:
        add_user(
            args.file,
            args.username,
            args.name or args.username,
            args.email,
            password,
            role=args.role,
            practices=tuple(args.practice),
        )
    except AccessConfigError as error:
        print(f"users: {error}", file=sys.stderr)
        return 2
    scope = f" for {', '.join(args.practice)}" if args.practice else ""
    print(f"users: {args.username} ({args.role}{scope}) written to {args.file} (bcrypt hash only)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
