"""`dbt docs generate` works on a built warehouse, and every mart column is described."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest

from billable.transform import dbt_executable
from tests.ingest_helpers import ROOT
from tests.warehouse_helpers import built, load_tiny_world


@pytest.fixture(scope="module")
def docs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("docs")
    _world, raw_db = load_tiny_world(folder)
    out = folder / "wh"
    built(raw_db, out)
    target = out / "build" / "target"
    project = ROOT / "dbt_project"
    env = {
        **os.environ,
        "BILLABLE_RAW_DB": str(raw_db),
        "BILLABLE_BUILD_DB": str(out / "build" / "warehouse.duckdb"),
    }
    command = [*dbt_executable(), "docs", "generate", "--project-dir", str(project)]
    command += ["--profiles-dir", str(project), "--target-path", str(target), "--log-path", str(out / "logs")]
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-3000:]
    return target


def test_docs_generate_writes_a_catalog_of_every_model(docs: Path) -> None:
    catalog = json.loads((docs / "catalog.json").read_text())
    manifest = json.loads((docs / "manifest.json").read_text())
    models = {key for key, node in manifest["nodes"].items() if node["resource_type"] == "model"}
    assert models and models <= set(catalog["nodes"]), sorted(models - set(catalog["nodes"]))[:10]
    assert (docs / "index.html").is_file()


def test_every_mart_column_is_described(docs: Path) -> None:
    catalog = json.loads((docs / "catalog.json").read_text())
    manifest = json.loads((docs / "manifest.json").read_text())
    undescribed = []
    marts = 0
    for key, node in manifest["nodes"].items():
        if node["resource_type"] != "model" or node["schema"] != "marts":
            continue
        marts += 1
        if not node.get("description", "").strip():
            undescribed.append(f"{node['name']} (the model)")
        documented = {name.lower(): column for name, column in node["columns"].items()}
        for column in catalog["nodes"][key]["columns"]:
            if not documented.get(column.lower(), {}).get("description", "").strip():
                undescribed.append(f"{node['name']}.{column}")
    assert marts >= 10
    assert not undescribed, f"{len(undescribed)} mart columns without a description: {undescribed[:20]}"
