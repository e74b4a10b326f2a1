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


# The generator holds one block of employees' time at a time (sandbox/generate/world_gen.py).
DEFAULT_BLOCK_EMPLOYEES = 1000
# Fitted to measured peaks (docs/sandbox.md, "Generating in blocks of employees"): `xl` (30,000
# employees × 24 months, blocks of 1,000) peaked at 3.1 GiB, of which a block's time and records
# are about 1 GiB; the rest grows with the firm (portfolio, invoice plan, firm-wide rules, the
# closing count of current records). Rounded up, so the guard errs on the side of refusing.
FIXED_GIB_PER_EMPLOYEE_MONTH = 3.0e-6
BLOCK_GIB_PER_EMPLOYEE_MONTH = 5.0e-5


def estimated_peak_gib(preset: Preset, block_employees: int = DEFAULT_BLOCK_EMPLOYEES) -> float:
    """Expected peak memory of generating `preset` one block of `block_employees` at a time."""
    block = min(block_employees, preset.employees)
    return (
        0.3
        + FIXED_GIB_PER_EMPLOYEE_MONTH * preset.employees * preset.months
        + BLOCK_GIB_PER_EMPLOYEE_MONTH * block * preset.months
    )


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
