"""`python -m sandbox generate --preset tiny|demo|large|xl --seed N --out DIR [--force]`."""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

from sandbox.generate.presets import DEFAULT_BLOCK_EMPLOYEES, PRESETS, available_gib, estimated_peak_gib


def main(argv: list[str]) -> int:
    """Generate a world; refuses to overwrite a non-empty folder unless --force."""
    parser = argparse.ArgumentParser(prog="python -m sandbox generate", description="write a synthetic world")
    parser.add_argument("--preset", required=True, choices=sorted(PRESETS), help="world size")
    parser.add_argument("--seed", type=int, default=7, help="random seed (same seed, same bytes)")
    parser.add_argument("--out", required=True, type=Path, help="folder to write the world into")
    parser.add_argument("--force", action="store_true", help="replace an existing non-empty folder")
    parser.add_argument(
        "--block-employees",
        type=int,
        default=DEFAULT_BLOCK_EMPLOYEES,
        metavar="N",
        help=f"employees whose time is held in memory at once (default {DEFAULT_BLOCK_EMPLOYEES}); "
        "the output does not depend on it",
    )
    parser.add_argument(
        "--ignore-memory",
        action="store_true",
        help="generate even if the memory estimate exceeds what is free",
    )
    args = parser.parse_args(argv)

    if args.block_employees < 1:
        print(f"error: --block-employees must be at least 1, not {args.block_employees}", file=sys.stderr)
        return 2
    preset = PRESETS[args.preset]
    need, have = estimated_peak_gib(preset, args.block_employees), available_gib()
    if need > 0.9 * have and not args.ignore_memory:
        print(
            f"error: preset {args.preset} needs about {need:.1f} GiB of memory to generate with "
            f"--block-employees {args.block_employees} and {have:.1f} GiB is available; use a "
            "smaller --block-employees, a smaller preset, or --ignore-memory to try anyway",
            file=sys.stderr,
        )
        return 2

    out: Path = args.out
    if out.exists() and not out.is_dir():
        print(f"error: --out {out} exists and is not a folder", file=sys.stderr)
        return 2
    if out.is_dir() and any(out.iterdir()):
        if not args.force:
            print(f"error: --out {out} is not empty; pass --force to replace it", file=sys.stderr)
            return 2
        shutil.rmtree(out)

    from sandbox.generate.world_gen import generate_world, summary

    started = time.perf_counter()
    generate_world(
        args.preset, args.seed, out, progress=args.preset != "tiny", block_employees=args.block_employees
    )
    seconds = time.perf_counter() - started
    manifest = json.loads((out / "manifest.json").read_text())
    defects = sum(kind["count"] for kind in manifest["defects"].values())
    counts = summary(out)
    listing = ", ".join(f"{name}={count}" for name, count in counts.items())
    print(f"world {out} ({args.preset}, seed {args.seed}): {listing}; defects={defects}; {seconds:.1f}s")
    return 0
