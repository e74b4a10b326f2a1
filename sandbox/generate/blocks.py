"""Writing one entity's file from frames made block by block, the same bytes whatever the blocks.

Each block's frame is spilled to a part file as it is made; `finish` then streams the parts, in
block order, into the entity's one Parquet file in row groups of a fixed number of rows. Since the
rows (and their order) do not depend on where the blocks were cut, neither do the row groups,
and so neither do the file's bytes. Memory holds one part plus one row group at a time.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import polars as pl
import pyarrow as pa
import pyarrow.parquet as pq

ROWS_PER_GROUP = 262_144


class Parts:
    """Per-block frames of one entity, concatenated into `target` by `finish`."""

    def __init__(self, target: Path, rows_per_group: int = ROWS_PER_GROUP):
        self.target = Path(target)
        self.rows_per_group = rows_per_group
        self.folder = self.target.parent / f".{self.target.stem}.parts"
        if self.folder.exists():
            shutil.rmtree(self.folder)
        self.folder.mkdir(parents=True)
        self.count = 0
        self.empty_first = False

    def add(self, frame: pl.DataFrame) -> None:
        """Spill a block's rows (a block without rows only counts if no block has any)."""
        if frame.height == 0 and self.count:
            return
        if self.count == 1 and self.empty_first:
            self.count = 0
        self.empty_first = frame.height == 0
        frame.write_parquet(self.folder / f"{self.count:06d}.parquet", compression="lz4", statistics=False)
        self.count += 1

    def _schema(self, files: list[Path]) -> dict[str, pl.DataType]:
        """Each column's type: the first part where it is fully typed decides (a block with no
        invoiced entries must not leave the invoice column untyped)."""
        schema: dict[str, pl.DataType] = {}
        for path in files:
            for name, dtype in pl.read_parquet_schema(path).items():
                if name not in schema or (_untyped(schema[name]) and not _untyped(dtype)):
                    schema[name] = dtype
        return schema

    def finish(self) -> Path:
        files = [self.folder / f"{k:06d}.parquet" for k in range(self.count)]
        if not files:  # no block had this entity: no file, which a World reads as an empty entity
            shutil.rmtree(self.folder)
            return self.target
        schema = self._schema(files)
        writer: pq.ParquetWriter | None = None
        pending: list[pa.Table] = []
        held = 0
        try:
            for path in files:
                table = pl.read_parquet(path).cast(schema).to_arrow()  # type: ignore[arg-type]
                if writer is None:
                    writer = pq.ParquetWriter(
                        self.target, table.schema, compression="zstd", write_statistics=False
                    )
                pending.append(table)
                held += table.num_rows
                while held >= self.rows_per_group:
                    joined = pa.concat_tables(pending)
                    writer.write_table(
                        joined.slice(0, self.rows_per_group), row_group_size=self.rows_per_group
                    )
                    rest = joined.slice(self.rows_per_group)
                    pending, held = [rest], rest.num_rows
            if writer is not None and held:
                writer.write_table(pa.concat_tables(pending), row_group_size=self.rows_per_group)
        finally:
            if writer is not None:
                writer.close()
        shutil.rmtree(self.folder)
        return self.target


def _untyped(dtype: pl.DataType) -> bool:
    """Whether a type is, or holds, the Null type (what polars infers from a column of nulls)."""
    if dtype == pl.Null:
        return True
    if isinstance(dtype, pl.Struct):
        return any(_untyped(field.dtype) for field in dtype.fields)  # type: ignore[arg-type]
    if isinstance(dtype, pl.List | pl.Array):
        return _untyped(dtype.inner)  # type: ignore[arg-type]
    return False
