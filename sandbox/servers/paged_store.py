"""Large served entities paged from a stamp-sorted Parquet copy on disk, not held in memory.

An entity with more stored versions than the threshold (SANDBOX_MEMORY_ROWS, default
DEFAULT_MEMORY_ROWS) is served from a Parquet file holding its state as of the clock, shaped for
its system and sorted by (change stamp, key), in row groups of ROW_GROUP rows. In memory the
server keeps only the stamp array (for the binary searches of `updated since`) and the file's
row-group offsets; a page reads the one or two row groups it spans.

The file is built once per clock and entity by DuckDB with a memory limit (it spills to disk
rather than load the entity), streamed through the system's `shape` a batch at a time, and
written under a temporary name then renamed into place. Its name carries a digest of everything
it depends on (the clock, the entity file's path / mtime / size / inode, the shape function, this
module's format), so a moved clock or a rewritten file names another file, and a file that is not
a readable Parquet file with that digest in its metadata is rebuilt, never served.

`PagedFrame` stands in for the `polars.DataFrame` the dialects page: it answers `height`,
`columns`, `schema`, `slice`, `head`, `reverse`, `filter` (row-wise predicates, evaluated a block
at a time on the columns they name), `sort`, `frame["column"]` and `frame[positions]` without
reading the rows it does not return; anything else materialises the view (a page, in practice).
"""

from __future__ import annotations

import hashlib
import os
import sys
import threading
from collections import OrderedDict
from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from types import CodeType

import duckdb
import numpy as np
import polars as pl
import pyarrow.parquet as pq

from sandbox.world import TS, EntitySpec

Shape = Callable[[pl.DataFrame], pl.DataFrame]
STAMP = "_stamp"
FORMAT = "served-1"
ROW_GROUP = 16_384
BLOCK = 1_048_576  # rows read at a time when a filter or a column read spans a large view
SMALL_VIEW = 65_536  # a view this small is read once and kept (a page and its encodings)
DEFAULT_MEMORY_ROWS = 250_000
DEFAULT_BUILD_MEMORY = "768MB"
DIGEST_KEY = b"billable.served.digest"
_BUILD_GATE = threading.Lock()  # one disk build at a time per process: its memory is bounded once


def memory_rows() -> int:
    """Entities with more stored versions than this are served from disk (SANDBOX_MEMORY_ROWS)."""
    raw = os.environ.get("SANDBOX_MEMORY_ROWS", "")
    if not raw:
        return DEFAULT_MEMORY_ROWS
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"SANDBOX_MEMORY_ROWS must be a whole number of rows, got {raw!r}") from None
    if value < 0:
        raise ValueError(f"SANDBOX_MEMORY_ROWS must be 0 or more, got {value}")
    return value


def cache_dir(world_path: str | os.PathLike[str]) -> Path:
    """Where the served copies live: SANDBOX_CACHE_DIR, or `.<world>.served` beside the world."""
    configured = os.environ.get("SANDBOX_CACHE_DIR")
    if configured:
        return Path(configured)
    world = Path(os.path.abspath(world_path))
    return world.parent / f".{world.name}.served"


# --- the store: one served entity's Parquet file ----------------------------------------------
class ParquetStore:
    """A stamp-sorted served state on disk: row-group offsets in memory, rows read on demand."""

    def __init__(self, path: Path, schema: pl.Schema):
        self.path = path
        self.schema = schema
        self._file = pq.ParquetFile(path)  # held open: a later rebuild replacing the name is harmless
        meta = self._file.metadata
        sizes = [meta.row_group(i).num_rows for i in range(meta.num_row_groups)]
        self.starts = np.concatenate([[0], np.cumsum(sizes, dtype=np.int64)]).astype(np.int64)
        self.height = int(self.starts[-1])
        self._lock = threading.Lock()
        self._recent: OrderedDict[tuple, pl.DataFrame] = OrderedDict()
        self.largest_read = 0  # the most rows one read returned (tests check that pages stay pages)

    def _group(self, group: int, columns: tuple[str, ...]) -> pl.DataFrame:
        key = (group, columns)
        with self._lock:
            hit = self._recent.get(key)
            if hit is not None:
                self._recent.move_to_end(key)
                return hit
            table = self._file.read_row_group(group, columns=list(columns))
            frame = pl.from_arrow(table)
            assert isinstance(frame, pl.DataFrame)
            wanted = pl.Schema({name: self.schema[name] for name in columns})
            if frame.schema != wanted:
                frame = frame.cast(wanted)
            self._recent[key] = frame
            while len(self._recent) > 4:
                self._recent.popitem(last=False)
            return frame

    def take(self, positions: np.ndarray, columns: list[str] | None = None) -> pl.DataFrame:
        """The rows at `positions` (in that order), all columns or the named ones."""
        names = tuple(columns if columns is not None else self.schema.names())
        if positions.size == 0:
            return pl.DataFrame(schema={name: self.schema[name] for name in names})
        groups = np.searchsorted(self.starts, positions, side="right") - 1
        wanted = np.unique(groups)
        parts = [self._group(int(group), names) for group in wanted]
        frame = parts[0] if len(parts) == 1 else pl.concat(parts, rechunk=False)
        bases = np.concatenate([[0], np.cumsum([part.height for part in parts[:-1]], dtype=np.int64)])
        local = positions - self.starts[groups] + bases[np.searchsorted(wanted, groups)]
        self.largest_read = max(self.largest_read, int(positions.size))
        return frame[local]


class PagedFrame:
    """A view (rows in order) of a ParquetStore that the dialects use like a polars.DataFrame."""

    def __init__(self, store: ParquetStore, rows: range | np.ndarray):
        self._store = store
        self._rows = rows
        self._frame: pl.DataFrame | None = None

    # --- what a frame knows without reading rows
    @property
    def height(self) -> int:
        return len(self._rows)

    def __len__(self) -> int:
        return len(self._rows)

    @property
    def columns(self) -> list[str]:
        return self._store.schema.names()

    @property
    def schema(self) -> pl.Schema:
        return self._store.schema

    @property
    def width(self) -> int:
        return len(self._store.schema)

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def is_empty(self) -> bool:
        return self.height == 0

    def __repr__(self) -> str:
        return f"PagedFrame({self._store.path.name}, {self.height} rows)"

    # --- views
    def _positions(self, rows: range | np.ndarray | None = None) -> np.ndarray:
        rows = self._rows if rows is None else rows
        if isinstance(rows, range):
            return np.arange(rows.start, rows.stop, rows.step, dtype=np.int64)
        return rows

    def _view(self, rows: range | np.ndarray) -> PagedFrame:
        return PagedFrame(self._store, rows)

    def slice(self, offset: int, length: int | None = None) -> PagedFrame:
        height = self.height
        start = offset + height if offset < 0 else offset
        start = min(max(start, 0), height)
        stop = height if length is None else min(start + max(length, 0), height)
        return self._view(self._rows[start:stop])

    def head(self, n: int = 5) -> PagedFrame:
        return self.slice(0, n if n >= 0 else max(self.height + n, 0))

    def tail(self, n: int = 5) -> PagedFrame:
        keep = min(n, self.height) if n >= 0 else max(self.height + n, 0)
        return self.slice(self.height - keep)

    def reverse(self) -> PagedFrame:
        return self._view(self._rows[::-1])

    def _blocks(self) -> Iterator[np.ndarray]:
        for start in range(0, self.height, BLOCK):
            yield self._positions(self._rows[start : start + BLOCK])

    def filter(self, *predicates: pl.Expr | pl.Series | np.ndarray | list[bool]) -> PagedFrame:
        """The rows every predicate keeps (null counts as not kept, as in polars)."""
        keep = np.ones(self.height, dtype=bool)
        for predicate in predicates:
            if isinstance(predicate, pl.Expr):
                keep &= self._mask(predicate)
            else:
                mask = pl.Series(predicate).fill_null(False).to_numpy().astype(bool)
                if mask.size != self.height:
                    raise ValueError(f"filter mask of {mask.size} rows on a frame of {self.height}")
                keep &= mask
        return self._view(self._positions()[keep])

    def _mask(self, predicate: pl.Expr) -> np.ndarray:
        names = list(dict.fromkeys(predicate.meta.root_names())) or [STAMP]
        parts = []
        for positions in self._blocks():
            block = self._store.take(positions, names)
            result = block.with_columns(predicate.alias("__keep"))["__keep"]
            parts.append(result.fill_null(False).to_numpy().astype(bool))
        return np.concatenate(parts) if parts else np.zeros(0, dtype=bool)

    def sort(
        self,
        by: str | list[str],
        *more_by: str,
        descending: bool | list[bool] = False,
        nulls_last: bool | list[bool] = False,
        maintain_order: bool = False,
    ) -> PagedFrame:
        """Sorted on the named columns (stable: rows that tie keep their order)."""
        names = [by] if isinstance(by, str) else list(by)
        names += list(more_by)
        keys = pl.concat([self._store.take(block, names) for block in self._blocks()] or [self._empty(names)])
        keys = keys.with_columns(pl.Series("__row", self._positions()))
        ordered = keys.sort(names, descending=descending, nulls_last=nulls_last, maintain_order=True)
        return self._view(ordered["__row"].to_numpy())

    def _empty(self, names: list[str]) -> pl.DataFrame:
        return pl.DataFrame(schema={name: self._store.schema[name] for name in names})

    # --- reading rows
    def column(self, name: str) -> pl.Series:
        if self._frame is not None or self.height <= SMALL_VIEW:
            return self.materialize()[name]
        parts = [self._store.take(block, [name])[name] for block in self._blocks()]
        return pl.concat(parts) if parts else self._empty([name])[name]

    def materialize(self) -> pl.DataFrame:
        """The view's rows as a DataFrame (kept when small: a page is encoded from one read)."""
        if self._frame is not None:
            return self._frame
        frame = self._store.take(self._positions())
        if self.height <= SMALL_VIEW:
            self._frame = frame
        return frame

    def __getitem__(self, item: object) -> object:
        if isinstance(item, str):
            return self.column(item)
        if isinstance(item, slice) and item.step in (None, 1):
            start, stop, _ = item.indices(self.height)
            return self.slice(start, max(stop - start, 0))
        if isinstance(item, (np.ndarray, list, pl.Series, range)):
            positions = np.asarray(item.to_numpy() if isinstance(item, pl.Series) else item, dtype=np.int64)
            positions = np.where(positions < 0, positions + self.height, positions)
            if positions.size and (positions.min() < 0 or positions.max() >= self.height):
                raise IndexError(f"row index out of bounds for a frame of {self.height} rows")
            chosen = self._positions()[positions]
            if self._frame is not None:
                return self._frame[positions]
            return self._store.take(chosen)
        return self.materialize()[item]  # type: ignore[call-overload]

    def __iter__(self) -> Iterator[pl.Series]:
        return iter(self.materialize())

    def __getattr__(self, name: str) -> object:
        if name.startswith("_"):
            raise AttributeError(name)
        return getattr(self.materialize(), name)


# --- building a store ---------------------------------------------------------------------------
def _file_schema(path: Path) -> pl.Schema:
    return pl.Schema(pl.read_parquet_schema(path))


def state_schema(versions: pl.Schema) -> pl.Schema:
    """The schema World.state gives a file with these columns (see World.read and World.state)."""
    columns: dict[str, pl.DataType] = {}
    for name, dtype in versions.items():
        if name == "_deleted":
            continue
        columns["_updated_at" if name == "_valid_from" else name] = dtype
    columns["_created_at"] = TS
    columns["_version"] = pl.Int64()
    return pl.Schema(columns)


def served_schema(source: Path, shape: Shape) -> pl.Schema:
    """The columns and types a served page of this file has: its state schema, shaped, stamped."""
    empty = pl.DataFrame(schema=state_schema(_file_schema(source)))
    return shape(empty).with_columns(pl.col("_updated_at").alias(STAMP)).schema


def eligible(path: Path | None, entity_spec: EntitySpec, threshold: int) -> bool:
    """Whether the entity is served from disk: a Parquet file the on-disk build can read exactly
    as World.read does, with more stored versions than the threshold. Anything else (JSON lines,
    a file World.read would reject or convert) takes the in-memory path and its errors."""
    if path is None or path.suffix != ".parquet":
        return False
    try:
        info = pq.ParquetFile(path)
        rows = info.metadata.num_rows
        versions = _file_schema(path)
    except Exception:  # World.read reports an unreadable file with its reason
        return False
    if rows <= threshold or rows == 0 or versions.get("_valid_from") != TS:
        return False
    needed = [*entity_spec.key, *(["_realm"] if entity_spec.per_realm else [])]
    if any(name not in versions for name in needed):
        return False
    return "_deleted" not in versions or versions["_deleted"] == pl.Boolean


def shape_fingerprint(shape: Shape) -> str:
    """What identifies a shape function's behaviour across processes: its name, its code (nested
    code objects included, without their addresses) and the values it closes over."""
    cells = tuple(repr(cell.cell_contents) for cell in (getattr(shape, "__closure__", None) or ()))
    code = getattr(shape, "__code__", None)
    name = f"{getattr(shape, '__module__', '')}.{getattr(shape, '__qualname__', repr(shape))}"
    return repr((name, _code_fingerprint(code) if code is not None else "", cells))


def _code_fingerprint(code: CodeType) -> tuple:
    consts = tuple(_code_fingerprint(c) if isinstance(c, CodeType) else repr(c) for c in code.co_consts)
    return (code.co_code.hex(), code.co_names, consts)


def digest(*parts: object) -> str:
    return hashlib.sha256(repr((FORMAT, ROW_GROUP, *parts)).encode()).hexdigest()[:24]


def open_store(path: Path, key: str, schema: pl.Schema) -> ParquetStore | None:
    """The store at `path` when it is a whole Parquet file built for `key`; None (and one line on
    stderr saying why) when it is missing, unreadable or built for something else."""
    if not path.exists():
        return None
    try:
        store = ParquetStore(path, schema)
        found = (store._file.schema_arrow.metadata or {}).get(DIGEST_KEY)
        if found != key.encode():
            raise ValueError(f"built for {found!r}, not {key!r}")
        if store._file.schema_arrow.names != schema.names():
            raise ValueError("its columns differ from the served ones")
        return store
    except Exception as err:
        print(f"sandbox: served cache {path} is not usable ({err}); rebuilding it", file=sys.stderr)
        return None


def read_stamps(store: ParquetStore) -> np.ndarray:
    parts = [
        store.take(np.arange(store.starts[g], store.starts[g + 1]), [STAMP])[STAMP].dt.epoch("us").to_numpy()
        for g in range(len(store.starts) - 1)
    ]
    return np.concatenate(parts).astype(np.int64) if parts else np.zeros(0, dtype=np.int64)


def _quote(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def build_store(
    source: Path,
    entity_spec: EntitySpec,
    moment: datetime,
    realm: str | None,
    shape: Shape,
    target: Path,
    key: str,
) -> tuple[ParquetStore | None, np.ndarray, pl.DataFrame | None]:
    """Write the served state of `source` as of `moment` to `target` (atomically) and open it.

    Returns (store, stamps, None), or (None, empty stamps, the empty state frame) when no record
    is current (the caller serves that in memory, as before)."""
    versions = _file_schema(source)
    state = state_schema(versions)
    served = served_schema(source, shape)
    group_key = [*(["_realm"] if entity_spec.per_realm else []), *entity_spec.key]
    order = [
        f"CAST(v.{_quote(name)} AS VARCHAR)"
        if served[name] == pl.String and state[name] != pl.String
        else f"v.{_quote(name)}"
        for name in entity_spec.key
    ]
    selected = ", ".join(
        f"v.{_quote(name)} AS {_quote('_updated_at' if name == '_valid_from' else name)}"
        for name in versions.names()
        if name != "_deleted"
    )
    realm_filter = "AND CAST(_realm AS VARCHAR) = $realm" if entity_spec.per_realm else ""
    deleted = "coalesce(v._deleted, false)" if "_deleted" in versions else "false"
    sql = f"""
        WITH v AS (
            SELECT * FROM read_parquet($source, file_row_number = true)
            WHERE _valid_from <= $moment {realm_filter}
        ), picks AS (
            SELECT max({{'v': _valid_from, 'r': file_row_number}}).r AS _pick,
                   min(_valid_from) AS _created_at, CAST(count(*) - 1 AS BIGINT) AS _version
            FROM v GROUP BY {", ".join(_quote(name) for name in group_key)}
        )
        SELECT {selected}, picks._created_at, picks._version
        FROM v JOIN picks ON v.file_row_number = picks._pick
        WHERE NOT {deleted}
        ORDER BY v._valid_from, {", ".join(order)}
    """
    params: dict[str, object] = {"source": str(source), "moment": moment}
    if entity_spec.per_realm:
        params["realm"] = realm
    target.parent.mkdir(parents=True, exist_ok=True)
    temporary = target.with_name(f"{target.name}.tmp-{os.getpid()}-{threading.get_ident()}")
    spill = target.parent / f"duckdb-spill-{os.getpid()}"
    stamps: list[np.ndarray] = []
    writer: pq.ParquetWriter | None = None
    try:
        with _BUILD_GATE, duckdb.connect() as connection:
            connection.execute("SET TimeZone = 'UTC'")
            connection.execute(
                f"SET memory_limit = '{os.environ.get('SANDBOX_BUILD_MEMORY', DEFAULT_BUILD_MEMORY)}'"
            )
            connection.execute(f"SET temp_directory = '{spill}'")
            connection.execute("SET preserve_insertion_order = true")
            reader = connection.sql(sql, params=params).to_arrow_reader(ROW_GROUP)
            pending: list[pl.DataFrame] = []
            pending_rows = 0
            for batch in reader:
                part = pl.from_arrow(batch)
                assert isinstance(part, pl.DataFrame)
                pending.append(part)
                pending_rows += part.height
                while pending_rows >= ROW_GROUP:
                    chunk = pl.concat(pending, rechunk=True)
                    writer = _write(
                        writer, chunk.head(ROW_GROUP), state, served, shape, temporary, key, stamps
                    )
                    rest = chunk.slice(ROW_GROUP).rechunk()  # a slice would keep the whole chunk alive
                    pending, pending_rows = ([rest] if rest.height else []), rest.height
            if pending_rows:
                writer = _write(writer, pl.concat(pending), state, served, shape, temporary, key, stamps)
        if writer is None:
            return None, np.zeros(0, dtype=np.int64), pl.DataFrame(schema=state)
        writer.close()
        writer = None
        os.replace(temporary, target)
    finally:
        if writer is not None:
            writer.close()
        temporary.unlink(missing_ok=True)
        if spill.exists():
            for leftover in spill.iterdir():
                leftover.unlink(missing_ok=True)
            spill.rmdir()
    store = ParquetStore(target, served)
    return store, np.concatenate(stamps).astype(np.int64), None


def _write(
    writer: pq.ParquetWriter | None,
    chunk: pl.DataFrame,
    state: pl.Schema,
    served: pl.Schema,
    shape: Shape,
    temporary: Path,
    key: str,
    stamps: list[np.ndarray],
) -> pq.ParquetWriter:
    """Shape one row group of the state, record its stamps, append it to the file being written."""
    shaped = shape(chunk.cast(state)).with_columns(pl.col("_updated_at").alias(STAMP))
    if shaped.schema != served:
        shaped = shaped.cast(served)
    # a copy: a view would keep the whole batch it came from (every column) alive
    stamps.append(shaped[STAMP].dt.epoch("us").to_numpy().copy())
    table = shaped.to_arrow()
    if writer is None:
        schema = table.schema.with_metadata({DIGEST_KEY: key.encode()})
        writer = pq.ParquetWriter(temporary, schema, compression="zstd")
    writer.write_table(table, row_group_size=ROW_GROUP)
    return writer


def remove_stale(directory: Path, prefix: str, keep: Path) -> None:
    """Delete the entity's served copies for other clocks or files, and temporary files left by
    processes that no longer run (an open copy stays readable to whoever holds it)."""
    for candidate in directory.glob(f"{prefix}*"):
        if candidate == keep:
            continue
        if ".tmp-" in candidate.name:
            pid = candidate.name.split(".tmp-", 1)[1].split("-", 1)[0]
            if pid.isdigit() and _running(int(pid)):
                continue
        candidate.unlink(missing_ok=True)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True
