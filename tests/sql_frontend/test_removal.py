"""DELETE MODEL and DROP TABLE on real stores: everything an object had goes from the catalog,
the table store, Qdrant, MLflow and Dagster; what other objects need is refused without
CASCADE; tables made from what goes keep their rows as plain data."""

from __future__ import annotations

import dagster as dg
import pytest

from resources import Settings, build_resources
from tests.sql_frontend.test_bad_input_catalogue import refused
from tests.workspace_copies import copy_workspace
from thanosql.errors import DependentObjectsError, ObjectNotFoundError, SQLError
from thanosql_assets.defs.objects import build_definitions, catalog_specs

MODEL = "my_image_search_model"
COLUMN = f"{MODEL}_simclr"
SEARCH = f"SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING {MODEL} AS SELECT * FROM mnist_test"


@pytest.fixture
def classified(classifier_home, tmp_path):
    """A private copy of the workspace with the tutorial's model and two classifiers (`digits` starts from it)."""
    import thanosql

    home = tmp_path / "workspace"
    copy_workspace(classifier_home, home)
    return thanosql.connect(home)


def _stores(conn) -> tuple[dict, dg.DagsterInstance]:
    settings = Settings.from_env(conn.settings.home)
    return build_resources(settings), settings.dagster_instance()


def _asset_keys(conn) -> set[str]:
    """Every asset the UI would list: those the code location defines and those with history."""
    resources, instance = _stores(conn)
    defined = build_definitions(catalog_specs(resources["catalog"]), resources).resolve_asset_graph().get_all_asset_keys()
    return {key.to_user_string() for key in (*defined, *instance.get_asset_keys())}


def _catalog(conn) -> set[tuple[str, str]]:
    return {(entry.kind, entry.name) for entry in _stores(conn)[0]["catalog"].list()}


def test_delete_model_removes_it_from_every_store_and_keeps_the_rows(scratch_conn):
    conn = scratch_conn
    resources, instance = _stores(conn)
    collections = {entry.state["collection"] for entry in resources["catalog"].list("embedding")}
    assert collections and all(resources["vector_store"].exists(name) for name in collections)
    conn.execute(SEARCH)
    old_model = resources["model_registry"].load(MODEL, 1)  # the one this process loaded for the SEARCH

    assert conn.execute(f"DELETE MODEL {MODEL}") is None

    assert _catalog(conn) == {("dataset", "mnist_data"), ("table", "mnist_train"), ("table", "mnist_test")}
    assert conn.execute("LIST MODEL").empty
    listed = conn.execute("LIST TABLE").set_index("table_name")
    assert listed.loc["mnist_test", "rows"] == 200 and not listed.loc["mnist_test", "embedding_columns"]
    assert COLUMN not in conn.execute("SELECT * FROM mnist_test LIMIT 1").columns
    assert not any(resources["vector_store"].exists(name) for name in collections)
    assert resources["model_registry"].client().search_registered_models() == []
    keys = _asset_keys(conn)
    assert not [key for key in keys if MODEL in key], keys
    assert {"table/mnist_test", "table/mnist_train"} <= keys
    latest = instance.get_latest_materialization_event(dg.AssetKey(["table", "mnist_test"])).asset_materialization.metadata
    assert latest["statement"].value == f"DELETE MODEL {MODEL}"
    assert [column.name for column in latest["dagster/column_schema"].schema.columns] == ["image_path", "filename", "label"]

    with pytest.raises(ObjectNotFoundError, match=f"Model '{MODEL}' does not exist"):
        conn.execute(SEARCH)

    # A model built again under the name starts at version 1 in MLflow: the new one serves, not the
    # one this process loaded before.
    conn.execute(f"BUILD MODEL {MODEL} USING SimCLR OPTIONS (max_epochs=1) AS SELECT * FROM mnist_train WHERE label < 5")
    conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='mnist_test') AS SELECT * FROM mnist_test")
    assert resources["catalog"].get("model", MODEL).state["version"] == "1"
    new_model = resources["model_registry"].load(MODEL, 1)
    assert new_model is not old_model
    assert any((a != b).any() for a, b in zip(old_model.state_dict().values(), new_model.state_dict().values()))
    assert len(conn.execute(SEARCH)) == 200


def test_delete_model_if_exists_of_nothing_changes_nothing(tutorial_conn):
    home = tutorial_conn.settings.home
    from tests.workspace_state import snapshot

    before = snapshot(home)
    assert tutorial_conn.execute("DELETE MODEL IF EXISTS no_such_model") is None
    assert tutorial_conn.execute("DROP TABLE IF EXISTS no_such_table") is None
    assert snapshot(home) == before


@pytest.mark.parametrize(
    "sql, error_type, words",
    [
        pytest.param("DELETE MODEL no_such_model", ObjectNotFoundError, ["'no_such_model' does not exist", MODEL], id="missing-model"),
        pytest.param("DROP TABLE no_such_table", ObjectNotFoundError, ["'no_such_table' does not exist", "mnist_test"], id="missing-table"),
        pytest.param(
            "DROP TABLE mnist_train", DependentObjectsError, [f"model {MODEL} (trained on mnist_train)", "CASCADE", f"DELETE MODEL {MODEL}"],
            id="table-a-model-was-trained-on",
        ),
        pytest.param("DROP TABLE thanosql_objects", SQLError, ["workspace itself"], id="catalog-table"),
        pytest.param("DROP VIEW mnist_test", SQLError, ["is a table, not a view", "DROP TABLE mnist_test"], id="drop-view-of-a-table"),
    ],
)
def test_bad_removals_are_refused_cleanly(tutorial_conn, sql, error_type, words):
    message = str(refused(tutorial_conn, sql, error_type))
    for word in words:
        assert word in message, message


def test_dropping_several_tables_points_at_the_one_that_is_needed(tutorial_conn):
    error = refused(tutorial_conn, "DROP TABLE mnist_test, mnist_train", DependentObjectsError)
    assert (error.line, error.col) == (1, 24)
    assert error.bare_message == f"Table 'mnist_train' is needed by model {MODEL} (trained on mnist_train)."
    assert "tables made from mnist_train keep their rows" in error.hint


def test_a_model_others_start_from_is_not_deleted(classifier_home):
    import thanosql

    conn = thanosql.connect(classifier_home)
    error = refused(conn, f"DELETE MODEL {MODEL}", DependentObjectsError)
    assert f"model digits (it starts from {MODEL})" in str(error) and "DELETE MODEL digits" in error.hint


def test_drop_table_cascade_deletes_the_models_trained_on_it(classified):
    conn = classified
    conn.execute("PREDICT USING digits OPTIONS (table_name='test_predictions') AS SELECT * FROM mnist_test")
    conn.execute("DROP TABLE mnist_train CASCADE")

    assert conn.execute("LIST MODEL").empty  # the SimCLR model and the classifiers trained on mnist_train
    assert sorted(conn.execute("LIST TABLE")["table_name"]) == ["mnist_test", "test_predictions"]
    assert COLUMN not in conn.execute("SELECT * FROM mnist_test LIMIT 1").columns
    # The predictions keep their rows, as plain data whose asset no longer reads the model.
    assert len(conn.execute("SELECT * FROM test_predictions")) == 200
    catalog = _stores(conn)[0]["catalog"]
    assert catalog.get("prediction", "test_predictions") is None
    assert catalog.get("table", "test_predictions").spec["statement"].startswith("PREDICT USING digits")
    keys = _asset_keys(conn)
    assert keys == {"dataset/mnist_data", "table/mnist_test", "table/test_predictions"}, keys


def test_drop_table_cascade_keeps_tables_made_from_it(classified):
    conn = classified
    conn.execute("PREDICT USING digits OPTIONS (table_name='test_predictions') AS SELECT * FROM mnist_test")
    error = refused(conn, "DROP TABLE mnist_test", DependentObjectsError)
    assert "table test_predictions (PREDICT read mnist_test)" in str(error)

    conn.execute("DROP TABLE mnist_test CASCADE")

    assert sorted(conn.execute("LIST TABLE")["table_name"]) == ["mnist_train", "test_predictions"]
    assert sorted(conn.execute("LIST MODEL")["name"]) == ["digits", MODEL, "zero_or_one"]
    resources, _ = _stores(conn)
    assert resources["catalog"].list("embedding") == []
    graph = build_definitions(catalog_specs(resources["catalog"]), resources).resolve_asset_graph()
    assert graph.get(dg.AssetKey(["table", "test_predictions"])).parent_keys == set()
    assert "table/mnist_test" not in _asset_keys(conn)
    # The model that embedded mnist_test still searches nothing there, and says why.
    with pytest.raises(ObjectNotFoundError, match="'mnist_test' does not exist"):
        conn.execute(SEARCH)


def test_a_model_deleted_and_built_again_by_another_process_is_not_served_from_this_ones_cache(scratch_conn):
    import subprocess
    import sys

    top = f"SELECT image_path, {COLUMN}_similarity1 AS similarity FROM ({SEARCH}) ORDER BY similarity DESC LIMIT 1"
    assert scratch_conn.execute(top)["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-3)  # this process holds version 1
    script = (
        f"DELETE MODEL {MODEL};\n"
        f"BUILD MODEL {MODEL} USING SimCLR OPTIONS (max_epochs=1, seed=5) AS SELECT * FROM mnist_train;\n"
        f"CONVERT USING {MODEL} AS SELECT * FROM mnist_test;\n"
    )
    other = subprocess.run(
        [sys.executable, "-m", "sql_frontend.interfaces.cli", "--home", str(scratch_conn.settings.home), "run", "-"],
        input=script, capture_output=True, text=True, timeout=600,
    )
    assert other.returncode == 0, other.stderr
    assert build_resources(scratch_conn.settings)["catalog"].get("model", MODEL).state["version"] == "1"  # the same number

    # The table's vectors come from the new version 1: the query image must be embedded by it too.
    best = scratch_conn.execute(top)
    assert best["image_path"].iloc[0].endswith("923.jpg") and best["similarity"].iloc[0] == pytest.approx(1.0, abs=1e-3)
    with pytest.raises(ObjectNotFoundError, match="deleted and built again"):  # a version another run logged is refused
        build_resources(scratch_conn.settings)["model_registry"].load(MODEL, "1", "a-run-before-the-delete")
