"""Optional sign-in (streamlit-authenticator): bcrypt-hashed users in a local YAML file.

Off unless $BILLABLE_DASHBOARD_USERS names a users file (the demo runs without it). The cookie
that keeps a user signed in is signed with $BILLABLE_DASHBOARD_COOKIE_KEY, taken from the
environment only. `python -m dashboards.users add <username>` writes the file.
"""

from __future__ import annotations

import streamlit as st
import streamlit_authenticator as stauth
import yaml

from dashboards import settings

COOKIE_NAME = "billable_dashboard"
COOKIE_DAYS = 1.0


def signed_in() -> bool:
    """True when sign-in is off, or the visitor has signed in; otherwise renders the form."""
    users = settings.users_file()
    if users is None:
        return True
    if not users.is_file():
        st.error(
            f"Sign-in is switched on (`{settings.USERS_FILE_ENV}={users}`) but that file does not exist. "
            "Create it with `python -m dashboards.users add <username>`, or unset the variable."
        )
        return False
    key = settings.cookie_key()
    if not key:
        st.error(
            f"Sign-in is switched on but `{settings.COOKIE_KEY_ENV}` is not set: set it to a long "
            "random secret in the server's environment (never in a file in the repository)."
        )
        return False
    config = yaml.safe_load(users.read_text()) or {}
    credentials = config.get("credentials") or {"usernames": {}}
    authenticator = stauth.Authenticate(
        credentials, cookie_name=COOKIE_NAME, cookie_key=key, cookie_expiry_days=COOKIE_DAYS, auto_hash=False
    )
    try:
        authenticator.login(location="main", key="billable_login")
    except Exception as error:  # the library raises its own types for bad input; show, never crash
        st.error(f"Sign-in failed: {error}")
        return False
    status = st.session_state.get("authentication_status")
    if status:
        authenticator.logout("Sign out", location="sidebar", key="billable_logout")
        st.sidebar.caption(
            f"Signed in as **{st.session_state.get('name') or st.session_state.get('username')}**"
        )
        return True
    if status is False:
        st.error("Username or password is incorrect.")
    return False
