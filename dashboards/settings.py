"""Where the dashboard finds the warehouse, its optional sign-in file and the access rules'
settings (environment, with defaults)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WAREHOUSE_ENV = "BILLABLE_WAREHOUSE"
USERS_FILE_ENV = "BILLABLE_DASHBOARD_USERS"
COOKIE_KEY_ENV = "BILLABLE_DASHBOARD_COOKIE_KEY"
COST_MIN_PEOPLE_ENV = "BILLABLE_DASHBOARD_COST_MIN_PEOPLE"
DEFAULT_COST_MIN_PEOPLE = 3  # a cost figure summed over fewer people than this could reveal a rate
STALE_AFTER_ENV = "BILLABLE_DASHBOARD_STALE_AFTER_HOURS"
STALE_AFTER_KEY = "billable.dashboard.stale_after_hours"
DEFAULT_STALE_AFTER_HOURS = 26.0  # a daily run, plus two hours of slack
DEFAULT_WAREHOUSE = ROOT / "data" / "warehouse.duckdb"


def warehouse_path() -> Path:
    """The published warehouse: $BILLABLE_WAREHOUSE, else data/warehouse.duckdb (read on every run)."""
    configured = os.environ.get(WAREHOUSE_ENV, "").strip()
    path = Path(configured) if configured else DEFAULT_WAREHOUSE
    return path if path.is_absolute() else ROOT / path


def metadata_path(warehouse: Path) -> Path:
    """warehouse.json beside the published file (the transform writes it after each publish)."""
    return warehouse.with_suffix(".json")


class SignInMisconfigured(Exception):
    """Sign-in is switched on but cannot work: the dashboard refuses everyone (fails closed)."""


def sign_in_on() -> bool:
    """Sign-in is on as soon as $BILLABLE_DASHBOARD_USERS is present in the environment, even empty:
    only an unset variable means the open demo (docs/dashboards.md, "Sign-in and roles")."""
    return USERS_FILE_ENV in os.environ


def users_file() -> Path | None:
    """The sign-in users file ($BILLABLE_DASHBOARD_USERS); None when the variable is unset (sign-in
    off, the demo). SignInMisconfigured when it is set but empty: that must never open the dashboard."""
    if not sign_in_on():
        return None
    configured = os.environ[USERS_FILE_ENV].strip()
    if not configured:
        raise SignInMisconfigured(
            f"{USERS_FILE_ENV} is set but empty. Set it to the users file "
            "(`python -m dashboards.users add <username> --role <role>` writes one), "
            "or unset it to run the open demo without sign-in."
        )
    return Path(configured)


def cost_min_people() -> int:
    """The fewest distinct people a cost or margin figure must sum over before a role without access
    to cost rates sees it: $BILLABLE_DASHBOARD_COST_MIN_PEOPLE, else 3. ValueError unless an integer
    >= 2."""
    raw = os.environ.get(COST_MIN_PEOPLE_ENV, "").strip()
    if not raw:
        return DEFAULT_COST_MIN_PEOPLE
    try:
        value = int(raw)
    except ValueError:
        value = 0
    if value < 2:
        raise ValueError(f"{COST_MIN_PEOPLE_ENV} must be a whole number of people >= 2, got {raw!r}")
    return value


def cookie_key() -> str | None:
    """Secret that signs the sign-in cookie; from the environment only, never from a file in the repo."""
    return os.environ.get(COOKIE_KEY_ENV) or None


def stale_after_hours() -> float:
    """How old the published data may be before every page warns: $BILLABLE_DASHBOARD_STALE_AFTER_HOURS,
    else `[billable.dashboard] stale_after_hours` in .dlt/config.toml, else 26. ValueError naming the
    setting when it is not a positive number."""
    from billable.engine import configured

    raw = os.environ.get(STALE_AFTER_ENV, "").strip() or (configured(STALE_AFTER_KEY) or "").strip()
    if not raw:
        return DEFAULT_STALE_AFTER_HOURS
    try:
        hours = float(raw)
    except ValueError:
        hours = 0.0
    if not hours > 0:
        raise ValueError(
            f"{STALE_AFTER_ENV} (or {STALE_AFTER_KEY}) must be a number of hours > 0, got {raw!r}"
        )
    return hours
