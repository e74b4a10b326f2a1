"""The world generator: a deterministic synthetic firm for a preset and a seed.

`generate_world(preset, seed, out)` writes a world folder as documented in docs/sandbox.md.
"""

from __future__ import annotations

from pathlib import Path


def generate_world(
    preset: str, seed: int, out: Path, progress: bool = False, block_employees: int | None = None
) -> Path:
    """Write the world for `preset` and `seed` into `out` (created) and return its path; the
    employees' time is generated `block_employees` at a time (default: the preset module's), which
    bounds memory and does not change a byte of the output."""
    from sandbox.generate.presets import DEFAULT_BLOCK_EMPLOYEES
    from sandbox.generate.world_gen import generate_world as run

    return run(preset, seed, out, progress, block_employees or DEFAULT_BLOCK_EMPLOYEES)


__all__ = ["generate_world"]
