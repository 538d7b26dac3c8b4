"""`ModelRegistryResource.load`: a fresh process loads a version the catalog lists from the files its
run logged, noted by an earlier load, without importing MLflow; the same vectors either way."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys

from tests.conftest import REPO

SEARCH = (
    "SELECT image_path, my_image_search_model_simclr_similarity1 AS similarity FROM (SEARCH IMAGE "
    "images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS SELECT * FROM mnist_test) "
    "ORDER BY similarity DESC LIMIT 5"
)
CHILD = f"""
import json, sys, thanosql
rows = thanosql.connect(sys.argv[1], progress=False).execute({SEARCH!r})
print(json.dumps({{"rows": rows.values.tolist(), "mlflow": "mlflow" in sys.modules}}))
"""


def _search_in_a_fresh_process(home) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(home)], capture_output=True, text=True, cwd=REPO, timeout=300)
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout.strip().splitlines()[-1])


def test_a_fresh_process_loads_a_listed_version_from_its_runs_noted_files_without_mlflow(scratch_conn):
    home = scratch_conn.settings.home
    shutil.rmtree(home / "mlflow" / "model-files", ignore_errors=True)

    first = _search_in_a_fresh_process(home)  # through MLflow, which notes where the run's files are
    notes = list((home / "mlflow" / "model-files").glob("*.json"))
    second = _search_in_a_fresh_process(home)

    assert first["mlflow"] and not second["mlflow"]
    assert len(notes) == 1 and (json.loads(notes[0].read_text())["name"], first["rows"]) == ("my_image_search_model", second["rows"])
    assert second["rows"][0][0].endswith("923.jpg") and second["rows"][0][1] > 0.9999
