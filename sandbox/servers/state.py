"""The world as of its clock, per entity, cached and ready to page.

Each served entity is built once per clock from `World.state`, given its system's change stamps
(by the dialect's `shape` function), and sorted by (change stamp, key) so paging is stable and an
incremental filter (`updated since T`) is a binary search. The cache is dropped when world.json or
the entity's file changes, so moving the clock takes effect without a restart.

An entity with more stored versions than `memory_rows` (SANDBOX_MEMORY_ROWS, default 250,000) is
not held: its served state is written once per clock to a stamp-sorted Parquet file beside the
world and its pages are read from there (sandbox/servers/paged_store.py), so the server's memory
does not grow with the world. Smaller entities stay in memory.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import cast

import numpy as np
import polars as pl

from sandbox.servers import paged_store
from sandbox.servers.paged_store import STAMP, PagedFrame, Shape  # STAMP: the record's change stamp
from sandbox.world import World, spec

__all__ = ["STAMP", "Served", "Shape", "WorldState", "to_us"]


def to_us(moment: datetime) -> int:
    """Microseconds since the epoch of an aware datetime (the unit of the cached stamps)."""
    return round(moment.timestamp() * 1_000_000)


@dataclass
class Served:
    """One entity's records as of the clock, sorted by (stamp, key), served columns shaped."""

    frame: pl.DataFrame  # or a PagedFrame standing in for it (an entity served from disk)
    stamps: np.ndarray = field(repr=False)  # int64 µs, ascending, aligned with frame rows

    @classmethod
    def build(cls, frame: pl.DataFrame, key: list[str]) -> Served:
        if frame.height == 0 or STAMP not in frame.columns:
            return cls(frame, np.zeros(0, dtype=np.int64))
        frame = frame.sort([STAMP, *key])
        stamps = frame[STAMP].dt.epoch("us").to_numpy().astype(np.int64)
        return cls(frame, stamps)

    @property
    def height(self) -> int:
        return self.frame.height

    def first_after(self, moment: datetime, inclusive: bool) -> int:
        """Index of the first row whose stamp is > moment (>= when inclusive)."""
        return int(np.searchsorted(self.stamps, to_us(moment), side="left" if inclusive else "right"))

    def first_before(self, moment: datetime, inclusive: bool) -> int:
        """Index one past the last row whose stamp is < moment (<= when inclusive)."""
        return int(np.searchsorted(self.stamps, to_us(moment), side="right" if inclusive else "left"))


class WorldState:
    """The served world: the current World (re-read when world.json changes) and its caches."""

    def __init__(self, path: str | os.PathLike[str], memory_rows: int | None = None):
        self.path = os.fspath(path)
        self.memory_rows = paged_store.memory_rows() if memory_rows is None else memory_rows
        self.cache_dir = paged_store.cache_dir(self.path)
        self._lock = threading.Lock()
        self._build_locks: dict[tuple, threading.Lock] = {}
        self._cache: dict[tuple, tuple[tuple, object]] = {}
        self._meta_sig: tuple | None = None
        self._world = World(self.path)
        self._meta_sig = self._signature(os.path.join(self.path, "world.json"))

    @staticmethod
    def _signature(path: str) -> tuple:
        try:
            info = os.stat(path)
        except FileNotFoundError:
            return ()
        return (info.st_mtime_ns, info.st_size, info.st_ino)

    @property
    def world(self) -> World:
        """The world with fresh metadata: world.json is stat'ed on every call (cheap)."""
        signature = self._signature(os.path.join(self.path, "world.json"))
        if signature != self._meta_sig:
            with self._lock:
                if signature != self._meta_sig:
                    world = World(self.path)
                    if world.meta != self._world.meta:
                        self._cache.clear()
                    self._world = world
                    self._meta_sig = signature
        return self._world

    @property
    def clock(self) -> datetime:
        return self.world.clock

    def cached(self, key: tuple, depends_on: tuple, build: Callable[[], object]) -> object:
        """A value cached under `key`, rebuilt when `depends_on` (or the clock) changes.

        One build per key at a time, so concurrent first requests do not each build a 1M-row state.
        """
        world = self.world
        signature = (world.meta["clock"], depends_on)
        hit = self._cache.get(key)
        if hit is not None and hit[0] == signature:
            return hit[1]
        with self._lock:
            build_lock = self._build_locks.setdefault(key, threading.Lock())
        with build_lock:
            hit = self._cache.get(key)
            if hit is not None and hit[0] == signature:
                return hit[1]
            value = build()
            self._cache[key] = (signature, value)
            return value

    def file_signature(self, system: str, entity: str) -> tuple:
        path = self._world.entity_file(system, entity)
        return (os.fspath(path), self._signature(os.fspath(path))) if path else ()

    def served(self, system: str, entity: str, shape: Shape, realm: str | None = None) -> Served:
        """The entity's records as of the clock, shaped for its system (and one realm for the ERP)."""
        entity_spec = spec(system, entity)
        key = list(entity_spec.key)

        def build() -> Served:
            source = self.world.entity_file(system, entity)
            if paged_store.eligible(source, entity_spec, self.memory_rows):
                assert source is not None
                return self._served_from_disk(source, system, entity, shape, realm)
            current = self.world.state(system, entity)
            if entity_spec.per_realm and current.height:
                current = current.filter(pl.col("_realm").cast(pl.String) == realm)
            if current.height == 0:
                return Served(current, np.zeros(0, dtype=np.int64))
            shaped = shape(current).with_columns(pl.col("_updated_at").alias(STAMP))
            return Served.build(shaped, key)

        depends = self.file_signature(system, entity)
        return self.cached(("served", system, entity, realm), depends, build)  # type: ignore[return-value]

    def _served_from_disk(
        self, source: Path, system: str, entity: str, shape: Shape, realm: str | None
    ) -> Served:
        """The served state as a stamp-sorted Parquet copy, reused when one was built for this
        clock, file and shape, else built (bounded, atomically); only its stamps are held."""
        world = self.world
        info = os.stat(source)
        key = paged_store.digest(
            world.meta["clock"],
            os.path.abspath(source),
            (info.st_mtime_ns, info.st_size, info.st_ino),
            realm,
            paged_store.shape_fingerprint(shape),
        )
        where = paged_store.digest(os.path.abspath(source))[:8]  # copies of another world's file differ
        prefix = f"{system}.{entity}.{realm or 'all'}.{where}."
        target = self.cache_dir / f"{prefix}{key}.parquet"
        stamps: np.ndarray | None = None
        store = None
        if target.exists():
            schema = paged_store.served_schema(source, shape)
            store = paged_store.open_store(target, key, schema)
            if store is not None:
                stamps = paged_store.read_stamps(store)
        if store is None:
            store, stamps, empty = paged_store.build_store(
                source, spec(system, entity), world.clock, realm, shape, target, key
            )
            if store is None:
                assert empty is not None
                return Served(empty, np.zeros(0, dtype=np.int64))
        paged_store.remove_stale(self.cache_dir, prefix, target)
        assert stamps is not None
        return Served(cast(pl.DataFrame, PagedFrame(store, range(store.height))), stamps)
