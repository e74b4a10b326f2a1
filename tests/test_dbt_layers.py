"""dbt's layers flow one way, and the raw sources say how fresh they must be.

The layers: a model reads only its own layer or lower ones, by the folder it lives in under
dbt_project/models/: staging < intermediate < marts < semantic; within marts, a report (rpt_*)
may read the dimensions and facts, never the reverse. So `dbt ls -s intermediate`
is what builds before the marts. Read from dbt's own manifest (`dbt parse`), so a ref() inside a
macro (with_names) counts like one in the model. A copy of the project with one upward ref
proves the check can fail.

The sources: every raw table is described and either has a freshness (warn/error after) on
dlt's load stamp or is declared `freshness: null`; `dbt source freshness` runs on a freshly
loaded tiny world's raw database and reports on every table that has one, all fresh."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path

import pytest

from billable.transform import dbt_executable
from tests.ingest_helpers import ROOT
from tests.warehouse_helpers import load_tiny_world

PROJECT = ROOT / "dbt_project"
LAYERS = ("staging", "intermediate", "marts", "semantic")


def layer(node: dict) -> tuple[int, str]:
    """(rank, name) of a model's layer: its folder under models/; rpt_* one step above marts."""
    parts = Path(node["original_file_path"]).parts
    assert parts[0] == "models" and parts[1] in LAYERS, f"{node['name']}: not in a layer folder ({parts})"
    rank = LAYERS.index(parts[1]) * 2
    if parts[1] == "marts" and node["name"].startswith("rpt_"):
        return rank + 1, "marts (report)"
    return rank, parts[1]


def upward_references(manifest: dict) -> list[str]:
    """Every model -> model reference from a lower layer to a higher one, as readable lines."""
    nodes = manifest["nodes"]
    models = {key: node for key, node in nodes.items() if node["resource_type"] == "model"}
    found = []
    for _key, node in sorted(models.items()):
        for parent_key in node["depends_on"]["nodes"]:
            parent = models.get(parent_key)
            if parent is None:  # seeds, sources
                continue
            (rank, name), (parent_rank, parent_name) = layer(node), layer(parent)
            if parent_rank > rank:
                found.append(f"{node['name']} ({name}) reads {parent['name']} ({parent_name})")
    return found


def dbt(
    project: Path, work: Path, *arguments: str, raw_db: Path | None = None
) -> subprocess.CompletedProcess:
    """A dbt command on `project` with the target and logs under `work` (and the build database
    there); the raw database is `raw_db` (none needed but for `dbt source freshness`)."""
    command = [*dbt_executable(), *arguments, "--project-dir", str(project), "--profiles-dir", str(project)]
    command += ["--target-path", str(work / "target"), "--log-path", str(work / "logs")]
    env = {
        **os.environ,
        "BILLABLE_RAW_DB": str(raw_db or work / "raw.duckdb"),
        "BILLABLE_BUILD_DB": str(work / "warehouse.duckdb"),
        "DBT_USE_COLORS": "false",
    }
    result = subprocess.run(command, cwd=project, env=env, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    return result


def parsed(project: Path, work: Path) -> dict:
    dbt(project, work, "parse")
    return json.loads((work / "target" / "manifest.json").read_text())


@pytest.fixture(scope="module")
def work(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("dbt_layers")


@pytest.fixture(scope="module")
def manifest(work: Path) -> dict:
    return parsed(PROJECT, work)


def test_no_model_reads_a_higher_layer(manifest: dict) -> None:
    upward = upward_references(manifest)
    assert not upward, f"{len(upward)} upward reference(s):\n" + "\n".join(upward)


def test_every_model_lives_in_a_layer_folder(manifest: dict) -> None:
    models = [node for node in manifest["nodes"].values() if node["resource_type"] == "model"]
    assert len(models) > 100
    for node in models:
        layer(node)  # asserts


def test_dbt_ls_intermediate_is_the_intermediate_folder(manifest: dict, work: Path) -> None:
    result = dbt(
        PROJECT,
        work,
        "ls",
        "--select",
        "intermediate",
        "--resource-type",
        "model",
        "--output",
        "name",
        "--quiet",
    )
    listed = set(result.stdout.split())
    files = {path.stem for path in (PROJECT / "models" / "intermediate").rglob("*.sql")}
    assert listed == files


def test_the_check_flags_an_upward_reference(work: Path) -> None:
    """A copy of the project with an intermediate model reading a dim, and a dim reading a report."""
    copy = work / "copy"
    shutil.copytree(PROJECT, copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    (copy / "models" / "intermediate" / "int_probe.sql").write_text("select * from {{ ref('dim_dates') }}\n")
    (copy / "models" / "marts" / "dim_probe.sql").write_text("select * from {{ ref('rpt_dso') }}\n")
    upward = upward_references(parsed(copy, work / "copy_work"))
    assert upward == [
        "dim_probe (marts) reads rpt_dso (marts (report))",
        "int_probe (intermediate) reads dim_dates (marts)",
    ]


def checked_sources(manifest: dict) -> set[str]:
    """unique_ids of the source tables with a warn_after or error_after."""
    checked = set()
    for key, node in manifest["sources"].items():
        freshness = node.get("freshness") or {}
        if any((freshness.get(bound) or {}).get("count") for bound in ("warn_after", "error_after")):
            checked.add(key)
    return checked


def test_every_source_is_described_and_declares_its_freshness(manifest: dict) -> None:
    sources = manifest["sources"]
    assert len(sources) > 40
    undescribed = sorted(key for key, node in sources.items() if not node["description"].strip())
    assert not undescribed, undescribed
    unsourced = sorted(key for key, node in sources.items() if not node["source_description"].strip())
    assert not unsourced, unsourced
    checked = checked_sources(manifest)
    for key in checked:
        assert sources[key]["loaded_at_field"], key
    # the feeds are checked; what never changes is declared so, not forgotten
    assert "source.billable.time.time_entries" in checked
    assert "source.billable.ops.load_log" in checked
    assert "source.billable.firm.legal_entities" not in checked
    assert "source.billable.ledger.line_states" not in checked


def test_source_freshness_runs_on_the_raw_database(manifest: dict, work: Path) -> None:
    folder = work / "freshness"
    folder.mkdir()
    _world, raw_db = load_tiny_world(folder)
    dbt(PROJECT, folder, "source", "freshness", raw_db=raw_db)
    results = json.loads((folder / "target" / "sources.json").read_text())["results"]
    reported = {result["unique_id"]: result["status"] for result in results}
    assert set(reported) == checked_sources(manifest)
    # just loaded: every table with rows was loaded now, and every checked table has rows
    assert set(reported.values()) == {"pass"}, reported
