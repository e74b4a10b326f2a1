"""Write, audit, publish on Spark (BILLABLE_ENGINE=spark; docs/deploy.md, "Spark").

billable.transform drives the same three steps as on DuckDB and PostgreSQL; the Spark side is
billable.spark_engine, each step in its own process (the embedded metastore admits one JVM):

- before the build, `python -m billable.spark_engine register`: the raw lake's external tables and
  the dedup views the sources read;
- write + audit: `dbt build --target spark` into the `build_*` databases;
- publish, only when all passed: `python -m billable.spark_engine publish RUN_ID --extra DIR`
  snapshots every built table as Parquet, adds the runner's own `ops` tables from DIR, re-points
  the published views, and last replaces `published/CURRENT` (an atomic rename).

The runner's records live as Parquet beside the Spark catalog, one file per run, so a failed run
is recorded too (`data/spark/ops/transform_runs/<run_id>.parquet`); each publish carries them into
its snapshot's `ops` with `semantic_manifest` and `publications`.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from billable.child_process import die_with_parent

RUNS_TYPES = {"double": "float64", "integer": "int32", "boolean": "bool", "varchar": "string"}


def arrow_type(sql_type: str) -> Any:
    import pyarrow as pa

    if sql_type.endswith("[]"):
        return pa.list_(arrow_type(sql_type[:-2]))
    if sql_type == "timestamp":
        return pa.timestamp("us")
    return pa.type_for_alias(RUNS_TYPES[sql_type])


def write_parquet(path: Path, rows: list[dict], columns: dict[str, str]) -> None:
    """One Parquet file, written then renamed into place."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    schema = pa.schema([(name, arrow_type(sql_type)) for name, sql_type in columns.items()])
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    pq.write_table(pa.Table.from_pylist(rows, schema), partial)
    os.replace(partial, path)


def utc_naive(stamp: str) -> datetime:
    return datetime.fromisoformat(stamp).astimezone(UTC).replace(tzinfo=None)


class SparkWarehouse:
    """The warehouse on Spark: what billable.transform builds, records and publishes."""

    target = "spark"

    def __init__(self, data_dir: Path) -> None:
        import billable.spark_engine as spark_engine

        self.data_dir = data_dir
        self.engine = spark_engine
        self.home = spark_engine.spark_home(data_dir)
        self.ops = self.home / "ops"

    def describe(self) -> str:
        return f"Spark (catalog and build in {self.home}, published under {self.home / 'published'})"

    def dbt_env(self) -> dict[str, str]:
        return self.engine.dbt_env(self.data_dir)

    def check_inputs(self) -> str | None:
        lake = self.data_dir / self.engine.LAKE_DIR
        if not (lake / "raw_ops").is_dir():
            return f"no raw data in the lake {lake} (raw_ops missing); run `make ingest` first"
        return None

    def spark_step(self, *args: str) -> None:
        """One spark_engine command in its own process (its JVM dies with this runner)."""
        command = [sys.executable, "-m", "billable.spark_engine", "--data", str(self.data_dir), *args]
        done = subprocess.run(
            command, capture_output=True, text=True, check=False, preexec_fn=die_with_parent()
        )
        sys.stdout.write(done.stdout)
        if done.returncode != 0:
            tail = "\n".join(done.stderr.strip().splitlines()[-15:])
            raise RuntimeError(f"spark_engine {args[0]} failed (exit {done.returncode}):\n{tail}")

    def prepare(self) -> None:
        self.spark_step("register")

    def record_run(self, run: dict, columns: dict[str, str]) -> bool:
        try:
            write_parquet(self.ops / "transform_runs" / f"{run['run_id']}.parquet", [run], columns)
        except OSError as err:
            print(f"transform: warning: could not record the run in {self.ops}: {err}", file=sys.stderr)
            return False
        return True

    def input_fingerprints(self) -> dict[str, str]:
        """None kept: the lake's loads are not fingerprinted, so every Spark build is whole."""
        return {}

    def last_run(self) -> dict[str, Any] | None:
        return None

    def store_semantic_manifest(self, run_id: str, manifest: str) -> None:
        folder = self.ops / "semantic_manifest"
        for old in folder.glob("*.parquet") if folder.is_dir() else []:
            old.unlink()
        row = {"run_id": run_id, "stored_at": datetime.now(UTC).replace(tzinfo=None), "manifest": manifest}
        columns = {"run_id": "varchar", "stored_at": "timestamp", "manifest": "varchar"}
        write_parquet(folder / f"{run_id}.parquet", [row], columns)

    def publish(self, metadata: dict) -> None:
        row = {
            "published_at": utc_naive(metadata["published_at"]),
            "run_id": metadata["run_id"],
            "engine": "spark",
            "git_commit": metadata["git_commit"],
            "dbt_version": metadata["dbt_version"],
            "dbt_invocation_id": metadata["dbt_invocation_id"],
            "full_refresh": metadata["full_refresh"],
            "duration_s": metadata["duration_s"],
            "nodes": json.dumps(metadata["nodes"]),
        }
        columns = {
            "published_at": "timestamp",
            "run_id": "varchar",
            "engine": "varchar",
            "git_commit": "varchar",
            "dbt_version": "varchar",
            "dbt_invocation_id": "varchar",
            "full_refresh": "boolean",
            "duration_s": "double",
            "nodes": "varchar",
        }
        # The snapshot's ops: the runs and the manifest as recorded, the earlier publications and
        # this one; this one joins the kept records only once it is published.
        extra = self.home / "publishing-ops"
        shutil.rmtree(extra, ignore_errors=True)
        shutil.copytree(self.ops, extra)
        write_parquet(extra / "publications" / f"{metadata['run_id']}.parquet", [row], columns)
        self.spark_step("publish", metadata["run_id"], "--extra", str(extra))
        write_parquet(self.ops / "publications" / f"{metadata['run_id']}.parquet", [row], columns)
        shutil.rmtree(extra, ignore_errors=True)

    def published_exists(self) -> bool:
        return self.engine.current_run(self.data_dir) is not None
