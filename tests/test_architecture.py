"""The layers of README's "How it is built": the import-linter contracts hold, a back-edge of
each kind breaks them, and the layers that must stay light load without what they must not use."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
PACKAGES = ("thanosql", "sql_frontend", "thanosql_assets", "resources")
LINT_IMPORTS = Path(sys.executable).with_name("lint-imports")


def lint_imports(root: Path) -> subprocess.CompletedProcess:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache"],
        cwd=root,
        env={**os.environ, "PYTHONPATH": str(root)},
        capture_output=True,
        text=True,
        timeout=300,
    )


def test_the_code_keeps_every_contract():
    result = lint_imports(REPO)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


@pytest.mark.parametrize(
    ("module", "back_edge", "contract"),
    [
        ("resources/workspace.py", "import sql_frontend.interfaces.api", "Resources import nothing of ours above them"),
        ("thanosql_assets/models/images.py", "import dagster", "The ML library imports no Dagster"),
        ("thanosql_assets/models/embedder.py", "import resources.catalog", "The ML library imports no Dagster"),
        ("thanosql_assets/defs/specs.py", "import sql_frontend.planning.planner", "One way"),
        ("sql_frontend/planning/options.py", "import sql_frontend.execution.runner", "One way"),
        ("sql_frontend/language/names.py", "import resources.warehouse", "The language layer is SQL only"),
        ("sql_frontend/interfaces/wire.py", "import sql_frontend.interfaces.remote", "No import cycles"),
    ],
)
def test_a_back_edge_breaks_a_contract(tmp_path, module, back_edge, contract):
    for package in PACKAGES:
        shutil.copytree(REPO / package, tmp_path / package, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(REPO / "pyproject.toml", tmp_path / "pyproject.toml")
    with open(tmp_path / module, "a") as handle:
        handle.write(f"\n{back_edge}  # a back-edge\n")
    result = lint_imports(tmp_path)
    assert result.returncode != 0, result.stdout
    broken = [line for line in result.stdout.splitlines() if line.endswith("BROKEN")]
    assert any(line.startswith(contract) for line in broken), result.stdout


def modules_loaded_by(code: str) -> set[str]:
    """The top-level packages a fresh interpreter holds after running `code`."""
    probe = f"{code}\nimport sys\nprint(' '.join(sorted({{name.split('.')[0] for name in sys.modules}})))"
    result = subprocess.run([sys.executable, "-c", probe], cwd=REPO, capture_output=True, text=True, check=True, timeout=300)
    return set(result.stdout.split())


def test_the_ml_library_loads_without_dagster_sql_or_stores():
    loaded = modules_loaded_by(
        "import thanosql_assets.models.simclr.trainer, thanosql_assets.models.evaluation, thanosql_assets.models.pictures"
    )
    assert "torch" in loaded and "lightning" in loaded
    assert not loaded & {"dagster", "sqlglot", "duckdb", "sqlalchemy", "mlflow", "resources", "sql_frontend"}


def test_the_code_location_and_the_planner_load_without_torch():
    # Runs launched by the daemon start from the code location; option checks run in the SQL server.
    loaded = modules_loaded_by("import thanosql_assets.definitions, sql_frontend.planning.planner")
    assert "dagster" in loaded and "sqlglot" in loaded
    assert not loaded & {"torch", "torchvision", "lightning", "mlflow"}


def test_errors_load_nothing_of_the_product():
    loaded = modules_loaded_by("import thanosql.errors")
    assert not loaded & {"sql_frontend", "thanosql_assets", "resources", "dagster", "sqlglot", "pandas"}
