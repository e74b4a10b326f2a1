"""Frames to JSON bytes, fast: whole pages are encoded column-wise by polars, never row by row."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import polars as pl
from polars.datatypes import DataTypeClass

Transform = Callable[[pl.DataFrame], pl.DataFrame]


def served_columns(frame: pl.DataFrame) -> list[str]:
    """The columns a client sees: everything not starting with `_` (the world's meta columns)."""
    return [column for column in frame.columns if not column.startswith("_")]


def json_rows(frame: pl.DataFrame) -> list[str]:
    """One JSON object per row (served columns only), in row order."""
    if frame.height == 0:
        return []
    columns = served_columns(frame)
    if not columns:
        return ["{}"] * frame.height
    return frame.select(pl.struct(columns).struct.json_encode().alias("j")).to_series().to_list()


def json_rows_joined(frame: pl.DataFrame) -> str:
    """The rows of `frame` as comma-separated JSON objects (no brackets)."""
    if frame.height == 0:
        return ""
    columns = served_columns(frame)
    return frame.select(pl.struct(columns).struct.json_encode().str.join(",")).item()


def json_rows_variants(
    frame: pl.DataFrame, variant: np.ndarray | None, transforms: dict[int, Transform]
) -> str:
    """Like `json_rows_joined`, but rows whose `variant` is k are first passed through `transforms[k]`.

    Faults change a column's type for some rows only (hours as strings); a column has one type,
    so each variant is encoded on its own and the rows are put back in their original order.
    """
    if variant is None or frame.height == 0 or not variant.any():
        return json_rows_joined(frame)
    parts: list[tuple[np.ndarray, list[str]]] = []
    for value in np.unique(variant):
        positions = np.flatnonzero(variant == value)
        subset = frame[positions]
        transform = transforms.get(int(value))
        parts.append((positions, json_rows(transform(subset) if transform else subset)))
    ordered: list[str] = [""] * frame.height
    for positions, rows in parts:
        for position, row in zip(positions.tolist(), rows, strict=True):
            ordered[position] = row
    return ",".join(ordered)


def iso_z(column: str | pl.Expr, millis: bool = False) -> pl.Expr:
    """A UTC datetime column rendered as `2025-03-04T17:20:00Z` (optionally with milliseconds)."""
    expr = pl.col(column) if isinstance(column, str) else column
    return expr.dt.strftime("%Y-%m-%dT%H:%M:%S%.3fZ" if millis else "%Y-%m-%dT%H:%M:%SZ")


def _render(expr: pl.Expr, dtype: pl.DataType | DataTypeClass) -> pl.Expr | None:
    """An expression rendering nested datetimes as ISO strings, or None when nothing needs it."""
    if isinstance(dtype, pl.Datetime):
        return (
            expr.dt.convert_time_zone("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
            if dtype.time_zone
            else (expr.dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
        )
    if isinstance(dtype, pl.Struct):
        fields = [(field.name, _render(expr.struct.field(field.name), field.dtype)) for field in dtype.fields]
        if all(rendered is None for _, rendered in fields):
            return None
        return pl.struct(
            [
                (rendered if rendered is not None else expr.struct.field(name)).alias(name)
                for name, rendered in fields
            ]
        )
    if isinstance(dtype, pl.List):
        inner = _render(pl.element(), dtype.inner)
        return None if inner is None else expr.list.eval(inner)
    return None


def render_datetimes(frame: pl.DataFrame) -> pl.DataFrame:
    """Served datetime values (top level or nested) as the world's ISO `Z` strings."""
    updates = []
    for name, dtype in frame.schema.items():
        if name.startswith("_"):
            continue
        rendered = _render(pl.col(name), dtype)
        if rendered is not None:
            updates.append(rendered.alias(name))
    return frame.with_columns(updates) if updates else frame
