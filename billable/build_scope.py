"""What a build must rebuild: the part of the graph downstream of what changed since the last good build.

A production build (`billable.transform`) fingerprints its inputs before dbt starts:

- each raw table the loaders write (`raw_erp.time_activities`, ...): its row count and the newest
  load id on its rows (dlt stamps every row it adds or replaces with its load's `_dlt_load_id`);
- the loaders' log (`ops.load_log`, `raw_ops` off DuckDB): its row count and newest run;
- the reverse-ETL ledger's snapshot: a hash of its content;
- the project itself: a hash of every file dbt reads (models, macros, seeds, YAML, profiles), the
  dbt vars, the engine and dbt's version.

and records them with the run (ops.transform_runs). The next build compares them with the last run
recorded in the working warehouse: when that run passed and the project is the same, only the
models downstream of the changed tables are rebuilt and tested (`--select source:erp.invoices+
...`); the
others keep the rows the last build gave them from the same inputs. Anything else (no earlier run,
the last run failed or was cut short, the code or vars changed, a full refresh, every source
changed, an engine without fingerprints) builds everything. So a scoped build publishes exactly
what a full build of the same inputs would: tests/test_build_scope.py compares the two.

The pipeline's second build of the day (after the sync and the ERP's re-ingest) is the case this is
for: only the ERP, the ledger and the load log changed.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import version as package_version
from pathlib import Path
from typing import Any, Protocol

# dbt source name -> the raw dataset (schema) its loader writes; `ops` and `ledger` are handled apart.
RAW_DATASETS = {
    "firm": "raw_firm",
    "crm": "raw_crm",
    "psa": "raw_psa",
    "time": "raw_time",
    "hr": "raw_hr",
    "erp": "raw_erp",
}
SOURCES = (*RAW_DATASETS, "ops", "ledger")

# Files dbt reads besides the project folder's own: none (no packages). What it writes is left out.
PROJECT_SKIP = {"target", "logs", "dbt_packages", ".user.yml", "package-lock.yml"}


@dataclass(frozen=True)
class Scope:
    """The build's selection (empty: everything) and why, with the fingerprints to record."""

    select: tuple[str, ...]
    reason: str
    sources: dict[str, str]
    project: str

    @property
    def is_full(self) -> bool:
        return not self.select


def project_fingerprint(project_dir: Path, extra: str) -> str:
    """A hash of every file dbt reads in the project, and of `extra` (vars, engine, dbt version)."""
    digest = hashlib.sha256(extra.encode())
    for path in sorted(project_dir.rglob("*")):
        relative = path.relative_to(project_dir)
        if not path.is_file() or relative.parts[0] in PROJECT_SKIP or relative.name.startswith("."):
            continue
        digest.update(str(relative).encode() + b"\0" + path.read_bytes() + b"\0")
    return digest.hexdigest()


def file_fingerprint(path: Path | None) -> str:
    """The content hash of a file (the ledger's snapshot), or "absent"."""
    if path is None or not path.is_file():
        return "absent"
    digest = hashlib.sha256()
    with path.open("rb") as reader:
        for block in iter(lambda: reader.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


Query = Callable[[str], "tuple[Any, ...] | None"]
Listing = Callable[[str], "list[str]"]


def dataset_fingerprints(query: Query, tables: Listing, ops_table: str) -> dict[str, str]:
    """Each raw table's rows and newest load, and the loaders' log, through `query` (one row, or
    None when the table is not there) and `tables` (the tables of a schema).

    Keyed `source.table` as dbt names them (`erp.time_activities`): dlt writes every row it adds
    or replaces with its load's id, so a table a load touched has a new newest id or a new count;
    a table no load touched keeps both. A table whose id cannot be read counts as changed with
    every load of its dataset. A table never loaded is absent, and its first load a change."""
    found: dict[str, str] = {}
    for source, dataset in RAW_DATASETS.items():
        loads = query(f"select count(*), max(load_id) from {dataset}._dlt_loads")
        for table in tables(dataset):
            if table.startswith("_dlt"):
                continue
            row = query(f'select count(*), max(_dlt_load_id) from {dataset}."{table}"')
            found[f"{source}.{table}"] = f"{row[0]}:{row[1]}" if row is not None else f"loads {loads}"
    row = query(f"select count(*), max(run_id) from {ops_table}")
    found["ops"] = "absent" if row is None else f"{row[0]}:{row[1]}"
    return found


def plan(
    previous: dict[str, Any] | None,
    sources: dict[str, str],
    project: str,
    full_refresh: bool,
) -> Scope:
    """The scope of this build, given the last recorded run (None: there is none)."""

    def everything(reason: str) -> Scope:
        return Scope((), reason, sources, project)

    if full_refresh:
        return everything("a full refresh rebuilds everything")
    if not sources:
        return everything("this engine keeps no fingerprints of its inputs: everything is built")
    if previous is None:
        return everything("no earlier build in the working warehouse")
    if previous.get("status") != "passed":
        return everything(f"the last build ({previous.get('run_id')}) did not pass")
    if previous.get("project_fingerprint") != project:
        return everything("the project, its vars or dbt changed since the last build")
    try:
        before = json.loads(previous.get("source_fingerprints") or "")
    except ValueError:
        before = None
    if not isinstance(before, dict):
        return everything("the last build recorded no fingerprints of its inputs")

    def order(key: str) -> tuple[int, str]:
        source = key.split(".")[0]
        return (SOURCES.index(source) if source in SOURCES else len(SOURCES), key)

    keys = sorted(set(sources) | set(before), key=order)
    changed = [key for key in keys if sources.get(key) != before.get(key)]
    if len(changed) == len(keys):
        return everything("every source changed since the last build")
    if not changed:
        # Nothing to do but the build still runs (and publishes): a scheduled run must leave a
        # fresh record, and the as-of clock falls back to the build's own when the ERP has none.
        return everything("nothing changed since the last build")
    select = tuple(f"source:{key}+" for key in changed)
    reason = f"changed since run {previous.get('run_id')}: {', '.join(changed)}"
    reason += f" ({len(keys) - len(changed)} of {len(keys)} inputs unchanged)"
    return Scope(select, reason, sources, project)


def duckdb_fingerprints(raw_db: Path, ledger: Path | None) -> dict[str, str]:
    """The fingerprints of a DuckDB raw file and the ledger's snapshot file beside the warehouse."""
    import duckdb

    with duckdb.connect(str(raw_db), read_only=True) as connection:

        def query(sql: str) -> tuple[Any, ...] | None:
            try:
                return connection.execute(sql).fetchone()
            except duckdb.CatalogException:
                return None

        def tables(schema: str) -> list[str]:
            listed = "select table_name from information_schema.tables where table_schema = ? order by 1"
            return [name for (name,) in connection.execute(listed, [schema]).fetchall()]

        found = dataset_fingerprints(query, tables, "ops.load_log")
    found["ledger"] = file_fingerprint(ledger)
    return found


def last_duckdb_run(working_db: Path) -> dict[str, Any] | None:
    """The newest run recorded in the working file's ops.transform_runs (None: none, or no file)."""
    import duckdb

    if not working_db.is_file():
        return None
    try:
        with duckdb.connect(str(working_db), read_only=True) as connection:
            cursor = connection.execute("select * from ops.transform_runs order by started_at desc limit 1")
            row = cursor.fetchone()
            names = [column[0] for column in cursor.description or []]
    except duckdb.Error:  # no table yet, or a file another process holds: build everything
        return None
    return dict(zip(names, row, strict=True)) if row else None


class FingerprintedStore(Protocol):
    """An engine other than DuckDB's files (billable.transform.WarehouseStore) as seen from here."""

    target: str

    def input_fingerprints(self) -> dict[str, str]: ...
    def last_run(self) -> dict[str, Any] | None: ...


def scope_of_build(
    project_dir: Path,
    store: FingerprintedStore | None,
    full_refresh: bool,
    dbt_vars: str,
    raw_db: Path,
    working_db: Path,
    ledger: Path,
) -> Scope:
    """What this build covers: everything, or what changed since the last (`store` None: DuckDB)."""
    engine = store.target if store is not None else "duckdb"
    project = project_fingerprint(project_dir, f"{engine}\0{dbt_vars}\0{package_version('dbt-core')}")
    try:
        if store is None:
            sources = duckdb_fingerprints(raw_db, ledger if ledger.is_file() else None)
            previous = last_duckdb_run(working_db)
        else:
            sources = store.input_fingerprints()
            previous = store.last_run()
    except Exception as err:  # a fingerprint we cannot take: build everything, and say why
        return Scope((), f"cannot fingerprint the inputs ({err}): everything is built", {}, project)
    return plan(previous, sources, project, full_refresh)
