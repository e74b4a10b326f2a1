"""Sign-in (streamlit-authenticator) and each user's role: bcrypt-hashed users in a local YAML file.

Off only while $BILLABLE_DASHBOARD_USERS is unset: the open demo, everyone with full access. Once
the variable is present, sign-in is on and fails closed: an empty variable, a missing, unreadable
or invalid file, a file with no users, or a user without a valid role refuses access with a
message; it never opens up. The cookie that keeps a user signed in is signed with
$BILLABLE_DASHBOARD_COOKIE_KEY, taken from the environment only. `python -m dashboards.users add
<username> --role <role> [--practice P]` writes the file (docs/dashboards.md, "Sign-in and roles").
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import streamlit as st
import streamlit_authenticator as stauth
import yaml

from dashboards import settings
from dashboards.queries.access import FULL_ACCESS, Access, AccessConfigError, parse_access

COOKIE_NAME = "billable_dashboard"
COOKIE_DAYS = 1.0


class UsersFileError(Exception):
    """The users file cannot be used: sign-in refuses everyone until it is fixed."""


def load_users(path: Path) -> dict[str, dict[str, Any]]:
    """The users of a users file, by username; UsersFileError naming what is wrong (never an empty
    list that would let anyone in or nobody know why)."""
    if not path.is_file():
        raise UsersFileError(
            f"Sign-in is switched on (`{settings.USERS_FILE_ENV}={path}`) but that file does not exist. "
            "Create it with `python -m dashboards.users add <username> --role <role>`, or unset the "
            "variable to run the open demo."
        )
    try:
        config = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError) as error:
        raise UsersFileError(f"The users file {path} cannot be read: {error}") from error
    users = ((config or {}).get("credentials") or {}).get("usernames") if isinstance(config, dict) else None
    if not isinstance(users, dict) or not users:
        raise UsersFileError(
            f"The users file {path} lists no users (it needs `credentials: usernames:`); sign-in refuses "
            "everyone until `python -m dashboards.users add <username> --role <role>` adds one."
        )
    return users


def access_of(users: dict[str, dict[str, Any]], username: str) -> Access:
    """The role and practices of a signed-in user (AccessConfigError when missing or invalid)."""
    return parse_access(username, users.get(username) or {}, settings.cost_min_people())


def signed_in() -> Access | None:
    """The visitor's access: full access when sign-in is off (the demo), the signed-in user's role
    otherwise; None (with the form or a message rendered) when nothing may be shown."""
    try:
        path = settings.users_file()
    except settings.SignInMisconfigured as error:
        st.error(f"**Sign-in is misconfigured; access refused.** {error}", icon=":material/lock:")
        return None
    if path is None:
        return FULL_ACCESS
    try:
        users = load_users(path)
        settings.cost_min_people()  # a bad setting refuses here, not halfway through a page
    except (UsersFileError, ValueError) as error:
        st.error(f"**Access refused.** {error}", icon=":material/lock:")
        return None
    key = settings.cookie_key()
    if not key:
        st.error(
            f"Sign-in is switched on but `{settings.COOKIE_KEY_ENV}` is not set: set it to a long "
            "random secret in the server's environment (never in a file in the repository)."
        )
        return None
    credentials = {"usernames": users}
    authenticator = stauth.Authenticate(
        credentials, cookie_name=COOKIE_NAME, cookie_key=key, cookie_expiry_days=COOKIE_DAYS, auto_hash=False
    )
    try:
        authenticator.login(location="main", key="billable_login")
    except Exception as error:  # the library raises its own types for bad input; show, never crash
        st.error(f"Sign-in failed: {error}")
        return None
    status = st.session_state.get("authentication_status")
    if status:
        username = str(st.session_state.get("username"))
        authenticator.logout("Sign out", location="sidebar", key="billable_logout")
        try:
            access = access_of(users, username)
        except (AccessConfigError, ValueError) as error:
            st.error(f"**Access refused.** {error}", icon=":material/lock:")
            return None
        st.sidebar.caption(
            f"Signed in as **{st.session_state.get('name') or username}** · {access.describe()}"
        )
        return access
    if status is False:
        st.error("Username or password is incorrect.")
    return None
