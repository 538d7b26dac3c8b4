"""A copied or moved workspace works on its own files: MLflow's, the catalog's and the model
index's absolute paths follow it (resources/relocation.py)."""

from __future__ import annotations

import sqlite3
from contextlib import closing

from resources import Settings, build_resources
from tests.workspace_copies import copy_workspace

SEARCH = (
    "SELECT image_path, my_image_search_model_simclr_similarity1 AS s FROM (SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' "
    "USING my_image_search_model AS SELECT * FROM mnist_test) ORDER BY s DESC LIMIT 4"
)


def _mlflow_locations(home) -> list[str]:
    with closing(sqlite3.connect(home / "mlflow" / "mlflow.db")) as db:
        return [row[0] for query in ("SELECT artifact_location FROM experiments WHERE artifact_location LIKE 'file://%'",
                                     "SELECT artifact_uri FROM runs", "SELECT storage_location FROM model_versions")
                for row in db.execute(query)]


def test_a_copy_of_a_moved_workspace_reads_and_writes_only_its_own_files(tutorial_home, tutorial_results, tmp_path):
    import thanosql

    original = copy_workspace(tutorial_home, tmp_path / "original")
    thanosql.connect(original, progress=False).execute("SELECT 1")  # opened where it is
    copy = copy_workspace(original, tmp_path / "copy")
    original.rename(tmp_path / "moved")  # the original is gone from where its stores said it was

    rows = thanosql.connect(copy, progress=False).execute(SEARCH)
    assert rows["image_path"].tolist() == tutorial_results[7]["image_path"].tolist()
    locations = _mlflow_locations(copy)
    assert locations and all(location.startswith((copy.as_uri() + "/", "models:/")) for location in locations), locations
    assert str(tutorial_home) not in "".join(path.read_text() for path in (copy / "mlflow" / "model-files").glob("*.json"))
    dataset = build_resources(Settings.from_env(copy))["catalog"].get("dataset", "mnist_data")
    assert dataset.state["path"] == str(copy / "thanosql-dataset" / "mnist_data")
    assert (copy / ".location").read_text().strip() == str(copy.resolve())
