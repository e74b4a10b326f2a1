"""Production code never imports the sandbox or the benchmarks (issue 15).

The production packages (the runners, the loaders, the reverse ETL, the dashboard) reach the
sandbox only as a program: its command line and its HTTP endpoints. The benchmarks drive the
sandbox and may import it; nothing in production imports them. This walks the syntax tree of every
module, so an import inside a function or under `if TYPE_CHECKING` counts too.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PRODUCTION = ("billable", "ingestion", "reverse_etl", "dashboards")
FORBIDDEN = ("sandbox", "benchmarks")


def forbidden_imports(source: str, filename: str = "<snippet>") -> list[str]:
    """`line: module` for every import of a forbidden top-level package in `source`."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names = [node.module]
        else:
            continue
        found += [f"{node.lineno}: {name}" for name in names if name.split(".")[0] in FORBIDDEN]
    return found


def production_modules() -> list[Path]:
    return sorted(path for package in PRODUCTION for path in (ROOT / package).rglob("*.py"))


def test_the_check_catches_every_form_of_import() -> None:
    snippet = (
        "import os\n"
        "import sandbox.world\n"
        "from sandbox import hr_drop\n"
        "def f():\n"
        "    from benchmarks.bare_clients import harvest\n"
        "    import benchmarks as b\n"
        "from billable.sandbox_process import running_sandbox\n"
        "from . import sandbox\n"
    )
    assert forbidden_imports(snippet) == [
        "2: sandbox.world",
        "3: sandbox",
        "5: benchmarks.bare_clients",
        "6: benchmarks",
    ]


def test_there_are_production_modules_to_check() -> None:
    found = {path.relative_to(ROOT).parts[0] for path in production_modules()}
    assert found == set(PRODUCTION)


@pytest.mark.parametrize("module", production_modules(), ids=lambda path: str(path.relative_to(ROOT)))
def test_production_code_never_imports_the_sandbox_or_the_benchmarks(module: Path) -> None:
    assert forbidden_imports(module.read_text(), str(module)) == [], module
