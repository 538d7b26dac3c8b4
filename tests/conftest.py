"""Shared fixtures: real DuckDB, Qdrant Edge, MLflow (SQLite), Dagster instance, per workspace.

No data is downloaded: GET THANOSQL DATASET reads the MNIST mirror in ../shared/datasets.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.seeds import seed_cells
from tests.workspace_copies import copy_workspace

REPO = Path(__file__).resolve().parents[1]
MIRROR = REPO.parent / "shared" / "datasets" / "mnist-train-head18k"

# Every workspace gets its own Dagster instance (<home>/dagster), whatever the caller's shell has.
os.environ.pop("DAGSTER_HOME", None)
os.environ.pop("THANOSQL_HOME", None)
os.environ["THANOSQL_DATASET_MIRROR"] = str(MIRROR)


@pytest.fixture(scope="session")
def tutorial_home(tmp_path_factory) -> Path:
    """A workspace where the seed 001 tutorial ran, verbatim, through the Python API."""
    import thanosql

    home = tmp_path_factory.mktemp("tutorial") / "workspace"
    conn = thanosql.connect(home)
    results = [conn.execute(cell) for cell in seed_cells("001")]
    (home / ".tutorial-results.pkl").write_bytes(__import__("pickle").dumps(results))
    return home


@pytest.fixture(scope="session")
def tutorial_results(tutorial_home):
    import pickle

    return pickle.loads((tutorial_home / ".tutorial-results.pkl").read_bytes())


@pytest.fixture
def tutorial_conn(tutorial_home):
    """A connection on the tutorial workspace, for tests that only read it or must leave it unchanged."""
    import thanosql

    return thanosql.connect(tutorial_home)


@pytest.fixture
def scratch_conn(tutorial_home, tmp_path):
    """A connection on a private copy of the tutorial workspace, for tests that change things."""
    import thanosql

    home = tmp_path / "workspace"
    copy_workspace(tutorial_home, home)
    return thanosql.connect(home)
