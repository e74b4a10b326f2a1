"""`make docs`: dbt's documentation site for the *published* warehouse, served read-only.

    python -m billable.docs_server [--warehouse data/warehouse.duckdb] [--port 8080] [--generate-only]

dbt needs a database it may open read-write to generate its catalog, so it never gets the
published file (readers hold it) nor the build's working file (the next transform writes it): it
gets a copy of the published warehouse in `data/docs/`, made afresh each time, and an empty
stand-in for the raw database (the site documents what was published; the sources' own catalog
is the loaders'). Nothing published yet: one line, exit 2. DuckDB only.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import sys
from pathlib import Path

import duckdb

from billable import engine as engines
from billable.child_process import die_with_parent
from billable.transform import dbt_executable

ROOT = Path(__file__).resolve().parent.parent
PROJECT = ROOT / "dbt_project"


def prepare(warehouse: Path, folder: Path) -> dict[str, str]:
    """The read-only copy and an empty raw stand-in in `folder`; the environment dbt runs with."""
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    copy = folder / warehouse.name  # the catalog is named after the file: keep the published name
    shutil.copyfile(warehouse, copy)
    raw = folder / "raw.duckdb"
    duckdb.connect(str(raw)).close()
    return {
        "BILLABLE_BUILD_DB": str(copy),
        "BILLABLE_RAW_DB": str(raw),
        "BILLABLE_DUCKDB_TEMP_DIRECTORY": str(folder / "tmp"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m billable.docs_server", description=__doc__)
    parser.add_argument("--warehouse", type=Path, default=Path("data") / "warehouse.duckdb")
    parser.add_argument("--port", type=int, default=8080)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--generate-only", action="store_true", help="write the site, do not serve it")
    args = parser.parse_args(argv)
    if engines.engine_name() != "duckdb":
        print(f"docs: make docs serves the DuckDB warehouse only (BILLABLE_ENGINE={engines.engine_name()})")
        return 2
    warehouse = args.warehouse.resolve()
    if not warehouse.is_file():
        print(f"docs: nothing is published at {warehouse}; run `make pipeline` or `make transform` first")
        return 2
    folder = warehouse.parent / "docs"
    env = {**os.environ, **prepare(warehouse, folder)}
    common = ["--project-dir", str(PROJECT), "--profiles-dir", str(PROJECT)]
    common += ["--target-path", str(folder / "target"), "--log-path", str(folder / "logs")]
    print(f"docs: generating the site from a copy of {warehouse} in {folder} …", flush=True)
    generate = subprocess.run(
        [*dbt_executable(), "--quiet", "docs", "generate", *common],
        cwd=PROJECT,
        env=env,
        check=False,
        preexec_fn=die_with_parent(),
    )
    if generate.returncode != 0:
        print(f"docs: dbt docs generate failed (exit {generate.returncode}); its log: {folder / 'logs'}")
        return 1
    if args.generate_only:
        print(f"docs: the site is in {folder / 'target'} (index.html, manifest.json, catalog.json)")
        return 0
    print(f"docs: http://{args.host}:{args.port} (Ctrl-C stops)", flush=True)
    serve = [*dbt_executable(), "docs", "serve", *common, "--port", str(args.port), "--host", args.host]
    serve.append("--no-browser")
    try:
        return subprocess.run(
            serve, cwd=PROJECT, env=env, check=False, preexec_fn=die_with_parent()
        ).returncode
    except KeyboardInterrupt:
        return 0


if __name__ == "__main__":
    sys.exit(main())
