"""Presets: how big a world is and the fixed calendar it lives on (never today's date)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

# Every preset shares one calendar anchor so that worlds are reproducible byte for byte.
CUTOVER_AT = datetime(2026, 10, 1, tzinfo=UTC)


@dataclass(frozen=True)
class Preset:
    """Size and calendar of a world."""

    name: str
    employees: int
    months: int  # months of history before the clock
    horizon_days: int  # days of future versions after the clock
    employees_per_account: float


PRESETS: dict[str, Preset] = {
    "tiny": Preset("tiny", 20, 3, 30, 3.0),
    "demo": Preset("demo", 300, 18, 60, 5.0),
    "large": Preset("large", 5000, 24, 30, 6.0),
    "xl": Preset("xl", 30000, 24, 30, 6.0),
}


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a ValueError naming the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
