"""Statements killed midway (SIGKILL, in a real child process) leave the previous state serving,
and the next process that opens the workspace clears what they left: no staging files, no
collection that no table uses, no Dagster run STARTED, no MLflow run RUNNING.

The child stops at a fault point (a real function of the product, wrapped to announce itself
and wait), so each kill lands at a known step rather than wherever a timer happens to fall.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from resources import Settings, build_resources
from tests.conftest import REPO
from thanosql_assets.defs.journal import JOURNAL

SEARCH = (
    "SELECT image_path, my_image_search_model_simclr_similarity1 FROM (SEARCH IMAGE "
    "images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS SELECT * FROM mnist_test) "
    "ORDER BY my_image_search_model_simclr_similarity1 DESC LIMIT 10"
)
REACHED = "FAULT POINT REACHED"

# Runs one statement (through the Python API, or the SQL server's statement service), stopping
# for good at the fault point named by argv[3].
CHILD = textwrap.dedent(
    f"""
    import sys, time
    home, sql, point, via = sys.argv[1:5]

    def pause_after(owner, name):
        original = getattr(owner, name)
        def paused(*args, **kwargs):
            result = original(*args, **kwargs)
            print("{REACHED}", file=sys.stderr, flush=True)
            time.sleep(600)
            return result
        setattr(owner, name, paused)

    from resources import qdrant_edge
    if point == "collection built":  # the new collection exists; the table does not point at it yet
        pause_after(qdrant_edge.QdrantEdgeResource, "build_collection")
        pause_after(qdrant_edge.QdrantEdgeResource, "extend_collection")
    elif point == "staging written":  # points written into a staging directory, not yet renamed into place
        pause_after(qdrant_edge, "_upsert")
    elif point == "table switched":  # the table serves the new collection; the catalog does not know yet
        from resources import duckdb_warehouse
        pause_after(duckdb_warehouse.DuckDBWarehouseResource, "replace_tables")

    if via == "server":
        from resources import Settings
        from sql_frontend.interfaces.server import StatementService
        from sql_frontend.language.parser import parse_statement
        StatementService(Settings.from_env(home), dagster_url=None).execute(parse_statement(sql), "killed")
    else:
        import thanosql
        thanosql.connect(home).execute(sql)
    """
)


def run_and_kill(home: Path, sql: str, point: str, via: str = "api", marker: str = REACHED) -> str:
    """Run `sql` in a child process and SIGKILL it when its stderr shows `marker`; its stderr."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    child = subprocess.Popen(
        [sys.executable, "-c", CHILD, str(home), sql, point, via], stderr=subprocess.PIPE, text=True, env=env, cwd=REPO
    )
    seen = []
    try:
        for line in child.stderr:
            seen.append(line)
            if marker in line:
                child.kill()
                break
    finally:
        child.kill()
        child.wait(timeout=60)
    output = "".join(seen)
    assert child.returncode == -9 and marker in output, f"the child ended before the fault point:\n{output}"
    return output


def state(home: Path) -> dict:
    """What a user can observe, read through a fresh process's view (which recovers the workspace)."""
    import thanosql

    conn = thanosql.connect(home, progress=False)
    rows = conn.execute(SEARCH)
    table = conn.execute("SELECT image_path, label FROM mnist_test ORDER BY image_path")
    return {"search": rows, "table": table, "conn": conn}


def leftovers(home: Path) -> dict:
    """Everything an interrupted statement could leave behind."""
    resources = build_resources(Settings.from_env(home))
    instance = Settings.from_env(home).dagster_instance()
    unfinished = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.STARTING]))
    client = resources["model_registry"].client()
    running = client.search_runs([resources["model_registry"].experiment_id()], filter_string="attributes.status = 'RUNNING'")
    used = {g.collection for columns in resources["warehouse"].table_generations(fresh=True).values() for g in columns.values()}
    for entry in resources["catalog"].list("embedding"):
        used.update(name for name in (entry.state.get("collection"), entry.state.get("retired_collection")) if name)
    return {
        "staging": sorted(p.name for p in (home / "vectors").glob(".staging-*")),
        "unused collections": sorted(set(resources["vector_store"].collections()) - used),
        "unfinished dagster runs": [run.run_id for run in unfinished],
        "running mlflow runs": [run.info.run_id for run in running],
        "journal": sorted(p.name for p in (home / JOURNAL).glob("*")) if (home / JOURNAL).exists() else [],
    }


NOTHING_LEFT = {"staging": [], "unused collections": [], "unfinished dagster runs": [], "running mlflow runs": [], "journal": []}


def assert_same(before: dict, after: dict) -> None:
    pd.testing.assert_frame_equal(before["search"], after["search"])
    pd.testing.assert_frame_equal(before["table"], after["table"])


@pytest.fixture
def home(scratch_conn) -> Path:
    return scratch_conn.settings.home


def _mixed_csv(home: Path) -> str:
    """150 of mnist_test's rows and 50 images it does not have."""
    test = pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_test.csv")
    train = pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_train.csv")
    pd.concat([test.iloc[:150], train.iloc[:50]]).to_csv(home / "mixed.csv", index=False)
    return "mixed.csv"


@pytest.mark.parametrize(
    "point, via", [("collection built", "api"), ("collection built", "server"), ("staging written", "api")]
)
def test_copy_killed_midway_leaves_the_old_table_and_embeddings(home, point, via):
    before = state(home)
    source = _mixed_csv(home)
    copy = f"COPY mnist_test OPTIONS (overwrite=True) FROM '{source}'"
    run_and_kill(home, copy, point, via=via)
    after = state(home)
    assert_same(before, after)
    assert leftovers(home) == NOTHING_LEFT
    after["conn"].execute(copy)  # the next statement works without manual cleanup
    rows = after["conn"].execute("SELECT count(*) AS n, count(my_image_search_model_simclr) AS embedded FROM mnist_test")
    assert rows.iloc[0].tolist() == [200, 200]


@pytest.mark.parametrize("point", ["staging written", "collection built"])
def test_convert_killed_midway_leaves_the_old_embeddings_and_nothing_behind(home, point):
    before = state(home)
    convert = "CONVERT USING my_image_search_model OPTIONS (table_name='mnist_test') AS SELECT * FROM mnist_test"
    run_and_kill(home, convert, point)
    if point == "staging written":
        assert list((home / "vectors").glob(".staging-*")), "the kill should leave a staging directory to clean up"
    after = state(home)
    assert_same(before, after)
    assert leftovers(home) == NOTHING_LEFT
    after["conn"].execute(convert)


def test_build_model_killed_mid_training_keeps_the_serving_version(home):
    before = state(home)
    serving = build_resources(Settings.from_env(home))["model_registry"].serving_version("my_image_search_model")
    build = "BUILD MODEL my_image_search_model USING SimCLR OPTIONS (max_epochs=50, overwrite=True) AS SELECT * FROM mnist_train"
    run_and_kill(home, build, "none", marker="epoch 2/50")
    after = state(home)
    assert_same(before, after)
    assert build_resources(Settings.from_env(home))["model_registry"].serving_version("my_image_search_model") == serving
    assert leftovers(home) == NOTHING_LEFT


def _served_and_named(home: Path, table: str) -> tuple[str, str | None, str | None]:
    """The collection `table`'s embedding column serves, and the catalog's collection and retired one."""
    resources = build_resources(Settings.from_env(home))
    served = resources["warehouse"].table_generations(fresh=True)[table]["my_image_search_model_simclr"].collection
    entry = resources["catalog"].get("embedding", f"{table}/my_image_search_model")
    return served, *((entry.state.get("collection"), entry.state.get("retired_collection")) if entry else (None, None))


def test_a_statement_killed_after_switching_its_table_is_recorded_by_the_next_process(home):
    before = state(home)
    served_before, _, _ = _served_and_named(home, "mnist_test")
    convert = "CONVERT USING my_image_search_model OPTIONS (table_name='mnist_test') AS SELECT * FROM mnist_test"
    run_and_kill(home, convert, "table switched")

    after = state(home)  # recovers
    assert_same(before, after)  # the same model version: the same vectors, now in the new collection
    served, named, retired = _served_and_named(home, "mnist_test")
    assert served != served_before and (named, retired) == (served, served_before)
    assert leftovers(home) == NOTHING_LEFT
    after["conn"].execute(convert)  # the next switch retires what the killed one switched to, and drops the one before
    assert leftovers(home) == NOTHING_LEFT
    assert _served_and_named(home, "mnist_test")[2] == served


def test_a_first_convert_killed_after_switching_its_table_leaves_an_embedding_that_drop_table_removes(home):
    convert = "CONVERT USING my_image_search_model OPTIONS (table_name='fours') AS SELECT * FROM mnist_test WHERE label = 4"
    run_and_kill(home, convert, "table switched")

    conn = state(home)["conn"]
    served, named, _ = _served_and_named(home, "fours")
    assert named == served  # the catalog knows the embedding: its asset, DROP TABLE, DELETE MODEL see it
    searched = conn.execute("SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS SELECT * FROM fours")
    assert searched["my_image_search_model_simclr_similarity1"].notna().all()
    conn.execute("DROP TABLE fours")
    assert leftovers(home) == NOTHING_LEFT
