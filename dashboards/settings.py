"""Where the dashboard finds the warehouse and its optional sign-in file (environment, with defaults)."""

from __future__ import annotations

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

WAREHOUSE_ENV = "BILLABLE_WAREHOUSE"
USERS_FILE_ENV = "BILLABLE_DASHBOARD_USERS"
COOKIE_KEY_ENV = "BILLABLE_DASHBOARD_COOKIE_KEY"
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


def users_file() -> Path | None:
    """The sign-in users file ($BILLABLE_DASHBOARD_USERS); None means sign-in is off (the demo)."""
    configured = os.environ.get(USERS_FILE_ENV, "").strip()
    return Path(configured) if configured else None


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
