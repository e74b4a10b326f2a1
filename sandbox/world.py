"""A world on disk: its metadata, its entity files, and its records' state as of a clock.

The format is documented field by field in docs/sandbox.md. Both the generator (which writes
worlds) and the servers (which read them) go through this module, so the format has one owner.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from datetime import UTC, date, datetime
from pathlib import Path

import polars as pl

FORMAT_VERSION = 1
META_COLUMNS = ("_valid_from", "_deleted", "_realm")
TS = pl.Datetime("us", "UTC")


@dataclass(frozen=True)
class EntitySpec:
    """One entity of one system: where its file lives and what identifies a record."""

    system: str
    entity: str
    key: tuple[str, ...]

    @property
    def per_realm(self) -> bool:
        return self.system == "erp"


def _specs(system: str, keyed: dict[str, tuple[str, ...]]) -> dict[tuple[str, str], EntitySpec]:
    return {(system, name): EntitySpec(system, name, key) for name, key in keyed.items()}


ENTITIES: dict[tuple[str, str], EntitySpec] = {
    **_specs("crm", {name: ("Id",) for name in ("User", "Account", "Opportunity", "Contract")}),
    **_specs(
        "psa",
        {
            name: ("id",)
            for name in ("workspaces", "stories", "assignments", "rate_cards", "rate_card_versions")
        },
    ),
    **_specs(
        "time",
        {name: ("id",) for name in ("users", "clients", "projects", "tasks", "time_entries", "expenses")},
    ),
    **_specs(
        "hr",
        {
            "employees": ("employee_id",),
            "cost_rates": ("employee_id", "effective_from"),
            "time_off": ("employee_id", "date"),
            "holidays": ("legal_entity", "date"),
            "deliveries": ("snapshot_date", "delivered_at"),
        },
    ),
    **_specs(
        "erp",
        {
            **{
                name: ("Id",)
                for name in ("Customer", "Employee", "Item", "TimeActivity", "Invoice", "Payment")
            },
            "ExchangeRate": ("SourceCurrencyCode", "TargetCurrencyCode", "AsOfDate"),
            "period_closes": ("period_end",),
        },
    ),
}


def spec(system: str, entity: str) -> EntitySpec:
    try:
        return ENTITIES[(system, entity)]
    except KeyError:
        known = ", ".join(f"{s}/{e}" for s, e in ENTITIES)
        raise KeyError(f"unknown entity {system}/{entity}; known: {known}") from None


def iso(moment: datetime | date) -> str:
    """Render a timestamp as the world's ISO-8601 UTC form (`2025-03-04T17:20:00Z`) or a date."""
    if isinstance(moment, datetime):
        return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    return moment.isoformat()


def parse_ts(text: str) -> datetime:
    """Parse an ISO-8601 timestamp; a naive one is taken as UTC."""
    moment = datetime.fromisoformat(text.replace("Z", "+00:00"))
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


class WorldError(Exception):
    """A world folder that cannot be read: says which file and why."""


class World:
    """A world folder. Cheap to construct; reads files on demand."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        meta_path = self.path / "world.json"
        if not meta_path.is_file():
            raise WorldError(f"{self.path} is not a world: {meta_path} is missing")
        self.meta: dict = read_meta(meta_path)

    # --- metadata -----------------------------------------------------------------------
    @property
    def seed(self) -> int:
        return int(self.meta["seed"])

    @property
    def clock(self) -> datetime:
        return parse_ts(self.meta["clock"])

    @property
    def cutover_at(self) -> datetime:
        return parse_ts(self.meta["cutover_at"])

    @property
    def legal_entities(self) -> list[dict]:
        return list(self.meta["legal_entities"])

    @property
    def realms(self) -> dict[str, dict]:
        """Legal entities keyed by their ERP realm id."""
        return {str(entity["realm_id"]): entity for entity in self.legal_entities}

    def set_clock(self, moment: datetime) -> None:
        """Move the clock and write world.json atomically (servers notice the change)."""
        self.meta["clock"] = iso(moment)
        write_meta(self.path, self.meta)

    # --- entity files -------------------------------------------------------------------
    def entity_file(self, system: str, entity: str) -> Path | None:
        spec(system, entity)
        for suffix in (".parquet", ".jsonl"):
            candidate = self.path / system / f"{entity}{suffix}"
            if candidate.is_file():
                return candidate
        return None

    def read(self, system: str, entity: str) -> pl.DataFrame:
        """Every stored version of an entity, `_valid_from` parsed, `_deleted` filled."""
        path = self.entity_file(system, entity)
        if path is None:
            return pl.DataFrame(schema={"_valid_from": TS, "_deleted": pl.Boolean})
        try:
            frame = pl.read_parquet(path) if path.suffix == ".parquet" else pl.read_ndjson(path)
        except Exception as err:  # polars raises several types; the message names the problem
            raise WorldError(f"{path}: cannot be read: {err}") from None
        if "_valid_from" not in frame.columns:
            raise WorldError(f"{path}: every row needs a _valid_from timestamp")
        if frame.schema["_valid_from"] != TS:
            frame = frame.with_columns(
                pl.col("_valid_from").cast(pl.String).str.to_datetime(time_zone="UTC", time_unit="us")
            )
        if "_deleted" not in frame.columns:
            frame = frame.with_columns(pl.lit(False).alias("_deleted"))
        else:
            frame = frame.with_columns(pl.col("_deleted").fill_null(False).cast(pl.Boolean))
        entity_spec = spec(system, entity)
        missing = [column for column in entity_spec.key if column not in frame.columns]
        if entity_spec.per_realm and "_realm" not in frame.columns:
            missing.append("_realm")
        if missing and frame.height:
            raise WorldError(f"{path}: key column(s) {missing} missing")
        return frame

    def state(self, system: str, entity: str, as_of: datetime | None = None) -> pl.DataFrame:
        """Each record's current version as of `as_of` (default: the clock).

        Adds `_created_at` (first version), `_updated_at` (current version) and `_version`
        (number of earlier versions); drops deleted records and `_valid_from`/`_deleted`.
        """
        moment = as_of or self.clock
        entity_spec = spec(system, entity)
        versions = self.read(system, entity)
        if versions.height == 0:
            return versions.drop("_valid_from", "_deleted")
        key = [*(["_realm"] if entity_spec.per_realm else []), *entity_spec.key]
        # Which row is each record's current version is decided on the key and meta columns
        # alone; the wide rows are then taken once (holding two copies of an entity at most,
        # not one per sort and window step: the servers build a 4.5-million-row state this way).
        current_rows = (
            versions.select(*key, "_valid_from", "_deleted")
            .with_row_index("_row")
            .filter(pl.col("_valid_from") <= moment)
            .sort([*key, "_valid_from"])
            .group_by(key, maintain_order=True)
            .agg(
                pl.col("_row").last(),
                pl.col("_deleted").last(),
                pl.col("_valid_from").first().alias("_created_at"),
                (pl.len() - 1).cast(pl.Int64).alias("_version"),
            )
            .filter(~pl.col("_deleted"))
        )
        current = versions[current_rows["_row"]].drop("_deleted").rename({"_valid_from": "_updated_at"})
        return current.with_columns(current_rows["_created_at"], current_rows["_version"])


REQUIRED_META = ("seed", "start_date", "cutover_at", "clock", "legal_entities")
REQUIRED_ENTITY = ("code", "realm_id", "currency")


def read_meta(meta_path: Path) -> dict:
    """world.json, checked well enough that nothing downstream trips over it later.

    Raises WorldError naming the file and the first problem (JSON syntax with line and column, a
    missing or malformed field), so an operator reads one line instead of a traceback.
    """
    try:
        meta = json.loads(meta_path.read_text())
    except json.JSONDecodeError as err:
        raise WorldError(f"{meta_path} is not valid JSON: {err}") from None
    except (OSError, UnicodeDecodeError) as err:
        raise WorldError(f"{meta_path} cannot be read: {err}") from None
    if not isinstance(meta, dict):
        raise WorldError(f"{meta_path} must hold a JSON object, not {type(meta).__name__}")
    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise WorldError(f"{meta_path}: format_version {version!r}, expected {FORMAT_VERSION}")
    for name in REQUIRED_META:
        if name not in meta:
            raise WorldError(f"{meta_path}: required field {name!r} is missing")
    try:
        int(meta["seed"])
    except (TypeError, ValueError):
        raise WorldError(f"{meta_path}: seed {meta['seed']!r} is not an integer") from None
    for name in ("clock", "cutover_at"):
        try:
            parse_ts(meta[name])
        except (TypeError, ValueError, AttributeError):
            raise WorldError(f"{meta_path}: {name} {meta[name]!r} is not an ISO-8601 timestamp") from None
    try:
        date.fromisoformat(meta["start_date"])
    except (TypeError, ValueError):
        raise WorldError(
            f"{meta_path}: start_date {meta['start_date']!r} is not a date (YYYY-MM-DD)"
        ) from None
    entities = meta["legal_entities"]
    if not isinstance(entities, list) or not entities:
        raise WorldError(f"{meta_path}: legal_entities must be a non-empty list of legal entities")
    for position, entity in enumerate(entities):
        if not isinstance(entity, dict):
            raise WorldError(f"{meta_path}: legal_entities[{position}] is not an object")
        missing = [name for name in REQUIRED_ENTITY if name not in entity]
        if missing:
            raise WorldError(f"{meta_path}: legal_entities[{position}] misses required field(s) {missing}")
    return meta


def write_meta(path: Path, meta: dict) -> None:
    """Write world.json atomically so a reader never sees half a file."""
    target = Path(path) / "world.json"
    temporary = target.with_suffix(".json.tmp")
    temporary.write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
    os.replace(temporary, target)


def write_entity(world_path: Path, system: str, entity: str, frame: pl.DataFrame) -> Path:
    """Write an entity's versions as Parquet, deterministically (same frame, same bytes)."""
    entity_spec = spec(system, entity)
    missing = [column for column in ("_valid_from", *entity_spec.key) if column not in frame.columns]
    if missing:
        raise WorldError(f"{system}/{entity}: cannot write without column(s) {missing}")
    target = Path(world_path) / system / f"{entity}.parquet"
    target.parent.mkdir(parents=True, exist_ok=True)
    frame.write_parquet(target, compression="zstd", statistics=False)
    return target
