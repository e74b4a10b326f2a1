"""Presets: how big a world is and the fixed calendar it lives on (never today's date)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

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


# Measured: `large` (5,000 employees × 24 months) peaks at 6.2 GiB; generation holds every
# time entry in memory at once, so the peak grows with employees × months.
LARGE_PEAK_GIB = 6.2


def estimated_peak_gib(preset: Preset) -> float:
    """Expected peak memory of generating `preset`, scaled from the measured `large` run."""
    return max(0.2, LARGE_PEAK_GIB * preset.employees * preset.months / (5000 * 24))


def available_gib() -> float:
    """Memory the kernel says is available now (MemAvailable), in GiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) / 2**20
    except OSError:
        pass
    return float("inf")


def get_preset(name: str) -> Preset:
    """The preset called `name`, or a ValueError naming the known ones."""
    try:
        return PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {', '.join(PRESETS)}") from None
