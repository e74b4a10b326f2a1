"""DuckDB's memory limit and threads, one setting for every process of the pipeline.

DuckDB takes 80 % of the machine's memory and every core by default, in each process that opens
it: the loaders, dbt's build, the sync's plan, the dashboards. On a laptop shared with other work
that is too much, and a build of `large` peaked at 7.6 GiB. Each of those processes opens DuckDB
with these settings instead (docs/deploy.md, "Memory"):

- `billable.duckdb.memory_limit` (environment `BILLABLE__DUCKDB__MEMORY_LIMIT`), default 3 GiB:
  what DuckDB's buffer manager may hold; beyond it, operators that can (joins, aggregates, sorts)
  spill to the temporary directory;
- `billable.duckdb.threads` (`BILLABLE__DUCKDB__THREADS`), default every core;
- `billable.duckdb.temp_directory` (`BILLABLE__DUCKDB__TEMP_DIRECTORY`), default DuckDB's own
  (`<database>.tmp` beside the file; in-memory databases have none unless it is set).

They are read like the rest of the configuration: the environment, then `.dlt/config.toml`
(`[billable.duckdb]`). A value DuckDB cannot take is refused before anything runs (exit 2).
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

from billable.engine import EngineError, configured

DEFAULT_MEMORY_LIMIT = "3GiB"
SIZE = re.compile(r"^\s*\d+(\.\d+)?\s*(B|KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.IGNORECASE)


def duckdb_config() -> dict[str, Any]:
    """The settings to open DuckDB with (duckdb.connect's `config`)."""
    memory = configured("billable.duckdb.memory_limit") or DEFAULT_MEMORY_LIMIT
    if not SIZE.match(memory):
        raise EngineError(
            f"billable.duckdb.memory_limit must be a size such as 2GiB or 1500MB, got {memory!r}"
        )
    threads_text = configured("billable.duckdb.threads") or str(os.cpu_count() or 1)
    if not threads_text.isdigit() or int(threads_text) < 1:
        raise EngineError(f"billable.duckdb.threads must be a whole number, 1 or more, got {threads_text!r}")
    config: dict[str, Any] = {"memory_limit": memory.replace(" ", ""), "threads": int(threads_text)}
    temp = configured("billable.duckdb.temp_directory")
    if temp:
        config["temp_directory"] = str(Path(temp).expanduser())
    return config


def dbt_env() -> dict[str, str]:
    """The same settings for dbt's DuckDB profile (dbt_project/profiles.yml reads these)."""
    config = duckdb_config()
    env = {
        "BILLABLE_DUCKDB_MEMORY_LIMIT": str(config["memory_limit"]),
        "BILLABLE_DUCKDB_THREADS": str(config["threads"]),
    }
    if "temp_directory" in config:
        env["BILLABLE_DUCKDB_TEMP_DIRECTORY"] = str(config["temp_directory"])
    return env
