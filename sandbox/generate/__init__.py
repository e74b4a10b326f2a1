"""The world generator: a deterministic synthetic firm for a preset and a seed.

`generate_world(preset, seed, out)` writes a world folder as documented in docs/sandbox.md.
"""

from __future__ import annotations

from pathlib import Path


def generate_world(preset: str, seed: int, out: Path, progress: bool = False) -> Path:
    """Write the world for `preset` and `seed` into `out` (created) and return its path."""
    from sandbox.generate.world_gen import generate_world as run

    return run(preset, seed, out, progress)


__all__ = ["generate_world"]
