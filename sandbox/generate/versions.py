"""Collapsing a record's life into the versions the contract asks for.

A history frame has one row per change: the key column(s), `_t` (seconds, when the change
happened), optionally `_deleted`, and the record's full state after the change. The world keeps
the state at the clock (dated at its last change, so change stamps say when it last changed)
plus one version per change after the clock up to the horizon.
"""

from __future__ import annotations

import polars as pl

from sandbox.generate.common import valid_from


def collapse(history: pl.DataFrame, key: list[str], clock: int, horizon: int) -> pl.DataFrame:
    """State at the clock + later changes; `_t` becomes `_valid_from`; rows sorted by key then time."""
    if "_deleted" not in history.columns:
        history = history.with_columns(pl.lit(False).alias("_deleted"))
    history = history.filter(pl.col("_t") <= horizon)
    before = (
        history.filter(pl.col("_t") <= clock)
        .sort([*key, "_t"], maintain_order=True)
        .group_by(key, maintain_order=True)
        .last()
        # a record already deleted at the clock was never seen: it is simply absent
        .filter(~pl.col("_deleted"))
    )
    after = history.filter(pl.col("_t") > clock)
    out = pl.concat([before.select(history.columns), after], how="vertical").sort(
        [*key, "_t"], maintain_order=True
    )
    stamps = valid_from(out["_t"])
    columns = [c for c in history.columns if c not in ("_t", "_deleted")]
    return out.select(columns).with_columns(stamps, out["_deleted"])


def stack(snapshots: list[pl.DataFrame]) -> pl.DataFrame:
    """Concatenate per-event state frames into one history (schemas unified)."""
    return pl.concat([s for s in snapshots if s.height], how="diagonal_relaxed")
