"""PostgreSQL statements passed through to the table store (DuckDB here; PostgreSQL in
tests/production): each changes the table, records a materialization of its asset, keeps the
catalog true, and is refused with a hint, changing nothing, where it would break what ThanoSQL
keeps consistent."""

from __future__ import annotations

import dagster as dg
import pytest

from resources import Settings, build_resources
from tests.sql_frontend.interfaces.test_cli import thanosql as thanosql_cli
from tests.sql_frontend.test_bad_input_catalogue import refused, refused_naming
from tests.workspace_state import snapshot
from thanosql.errors import DependentObjectsError, ObjectExistsError, ObjectNotFoundError, SQLError
from thanosql_assets.defs.objects import build_definitions, catalog_specs

MODEL = "my_image_search_model"
SEARCH = f"SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING {MODEL} AS SELECT * FROM mnist_test"


def _stores(conn) -> tuple[dict, dg.DagsterInstance]:
    settings = Settings.from_env(conn.settings.home)
    return build_resources(settings), settings.dagster_instance()


def _history(conn, table: str) -> list[dict]:
    """The metadata of the table asset's materializations, oldest first."""
    _, instance = _stores(conn)
    records = instance.fetch_materializations(dg.AssetKey(["table", table]), limit=100).records
    return [record.asset_materialization.metadata for record in reversed(records)]


def _graph(conn) -> dg.AssetGraph:
    resources, _ = _stores(conn)
    return build_definitions(catalog_specs(resources["catalog"]), resources).resolve_asset_graph()


def test_create_insert_update_delete_change_the_table_and_its_asset_history(scratch_conn):
    conn = scratch_conn
    assert conn.execute("CREATE TABLE eights AS SELECT * FROM mnist_train WHERE label = 8") is None
    conn.execute("INSERT INTO eights SELECT * FROM mnist_train WHERE label = 9 LIMIT 3")
    conn.execute("UPDATE eights SET label = 99 WHERE label = 9")
    conn.execute("DELETE FROM eights WHERE label = 99 AND filename <> (SELECT min(filename) FROM eights WHERE label = 99)")

    counts = conn.execute("SELECT label, count(*) AS n FROM eights GROUP BY label ORDER BY label")
    assert counts.values.tolist() == [[8, 100], [99, 1]]
    history = _history(conn, "eights")
    assert [entry["statement"].value.split()[0] for entry in history] == ["CREATE", "INSERT", "UPDATE", "DELETE"]
    assert [entry["dagster/row_count"].value for entry in history] == [100, 103, 103, 101]
    assert [entry["rows_changed"].value for entry in history[1:]] == [3, 3, 2]
    # A table of the workspace: listed, an asset downstream of what it was made from.
    assert conn.execute("SELECT rows FROM (LIST TABLE) AS t WHERE table_name = 'eights'")["rows"].tolist() == [101]
    node = _graph(conn).get(dg.AssetKey(["table", "eights"]))
    assert node.parent_keys == {dg.AssetKey(["table", "mnist_train"])} and not node.is_materializable


def test_rows_inserted_into_an_embedded_table_are_embedded_next_time_alone(scratch_conn):
    from thanosql_assets.defs.materialize import MaterializationRequest, materialize
    from thanosql_assets.defs.specs import EmbeddingSpec

    conn = scratch_conn
    conn.execute("INSERT INTO mnist_test (image_path, filename, label) SELECT image_path, filename, label FROM mnist_train LIMIT 3")
    searched = conn.execute(SEARCH)
    assert len(searched) == 203 and searched[f"{MODEL}_simclr_similarity1"].isna().sum() == 3

    # The embedding asset is stale (its table changed after it); materializing it, as the UI's
    # button or automation does, embeds the three new images and reuses the other vectors.
    resources, instance = _stores(conn)
    embedding = EmbeddingSpec.from_dict(resources["catalog"].get("embedding", f"mnist_test/{MODEL}").spec)
    table_time = instance.get_latest_materialization_event(dg.AssetKey(["table", "mnist_test"])).timestamp
    assert instance.get_latest_materialization_event(embedding.asset_key).timestamp < table_time
    materialize(MaterializationRequest((), (embedding.asset_key, embedding.collection_key)), resources, instance, statement="(from the UI)")
    metadata = instance.get_latest_materialization_event(embedding.asset_key).asset_materialization.metadata
    assert (metadata["embedded_images"].value, metadata["reused_vectors"].value) == (3, 200)
    searched = conn.execute(SEARCH)
    assert len(searched) == 203 and searched[f"{MODEL}_simclr_similarity1"].notna().all()


def test_an_updated_image_path_leaves_its_row_unembedded_until_the_embedding_refreshes(scratch_conn):
    conn = scratch_conn
    moved = "thanosql-dataset/mnist_data/test/923.jpg"  # another row's image: the collection holds its vector
    conn.execute(f"UPDATE mnist_test SET (image_path, label) = ('{moved}', 4) WHERE filename = '5087.jpg'")

    assert conn.execute(f"SELECT {MODEL}_simclr IS NULL AS unembedded FROM mnist_test WHERE filename = '5087.jpg'")["unembedded"].tolist() == [True]
    similarity = f"{MODEL}_simclr_similarity1"
    top = f"SELECT filename, {similarity} FROM ({SEARCH}) ORDER BY {similarity} DESC NULLS LAST LIMIT 3"
    exhaustive = f"SELECT filename, {similarity} FROM ({SEARCH}) ORDER BY round({similarity}, 6) DESC NULLS LAST, filename LIMIT 3"
    ranked = conn.execute(top)
    assert "5087.jpg" not in ranked["filename"].tolist()  # not ranked by the vector of the image it no longer names
    assert ranked["filename"].tolist() == conn.execute(exhaustive)["filename"].tolist()


def test_alter_table_rename_moves_the_table_and_its_asset(scratch_conn):
    conn = scratch_conn
    conn.execute("CREATE TABLE eights AS SELECT * FROM mnist_train WHERE label = 8")
    conn.execute("ALTER TABLE eights RENAME TO only_eights")
    conn.execute("ALTER TABLE only_eights RENAME COLUMN label TO digit")
    conn.execute("ALTER TABLE only_eights ADD COLUMN checked BOOLEAN")

    assert list(conn.execute("SELECT * FROM only_eights LIMIT 1").columns) == ["image_path", "filename", "digit", "checked"]
    resources, instance = _stores(conn)
    assert resources["catalog"].get("table", "eights") is None
    assert resources["catalog"].get("table", "only_eights").spec["statement"].startswith("CREATE TABLE eights AS")
    keys = {key.to_user_string() for key in instance.get_asset_keys()}
    assert "table/only_eights" in keys and "table/eights" not in keys
    assert dg.AssetKey(["table", "eights"]) not in _graph(conn).get_all_asset_keys()
    with pytest.raises(ObjectNotFoundError, match="'eights' does not exist"):
        conn.execute("SELECT * FROM eights")


def test_a_changed_copy_table_is_plain_data_that_copy_no_longer_rebuilds(scratch_conn):
    conn = scratch_conn
    conn.execute("UPDATE mnist_train SET label = 0 WHERE label = 1")
    entry = _stores(conn)[0]["catalog"].get("table", "mnist_train")
    assert entry.spec["statement"] == "COPY mnist_train FROM 'thanosql-dataset/mnist_data/mnist_train.csv'"
    assert not _graph(conn).get(dg.AssetKey(["table", "mnist_train"])).is_materializable
    error = refused(conn, 'COPY mnist_train OPTIONS (append=True) FROM "thanosql-dataset/mnist_data/mnist_test.csv"', ObjectExistsError)
    assert "changed by SQL statements" in str(error) and "INSERT INTO mnist_train SELECT" in error.hint
    assert conn.execute("SELECT count(*) AS n FROM mnist_train WHERE label = 1")["n"].item() == 0


def test_views_are_read_like_tables_and_needed_by_what_they_read(scratch_conn):
    conn = scratch_conn
    conn.execute("CREATE VIEW sevens AS SELECT * FROM mnist_train WHERE label = 7")
    assert conn.execute("SELECT count(*) AS n FROM sevens")["n"].item() == 100
    assert _graph(conn).get(dg.AssetKey(["table", "sevens"])).parent_keys == {dg.AssetKey(["table", "mnist_train"])}
    error = refused(conn, "DROP TABLE mnist_train", DependentObjectsError)
    assert "view sevens (it reads mnist_train)" in str(error)
    assert "is a view" in str(refused(conn, "DROP TABLE sevens", SQLError))
    assert "its query" in str(refused(conn, "INSERT INTO sevens SELECT * FROM mnist_train LIMIT 1", SQLError))
    conn.execute("CREATE VIEW test_sevens AS SELECT * FROM mnist_test WHERE label = 7")
    searched = f"SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING {MODEL} AS SELECT * FROM test_sevens"
    assert "'test_sevens' is a view" in str(refused(conn, searched, ObjectNotFoundError))
    in_place = f"CONVERT USING {MODEL} AS SELECT * FROM test_sevens"
    assert "table_name='embedded_test_sevens'" in refused(conn, in_place, ObjectExistsError).hint
    conn.execute("CREATE OR REPLACE VIEW sevens AS SELECT * FROM mnist_train WHERE label = 7 LIMIT 5")
    assert conn.execute("SELECT count(*) AS n FROM sevens")["n"].item() == 5
    conn.execute("DROP VIEW sevens")
    assert "table/sevens" not in {key.to_user_string() for key in _stores(conn)[1].get_asset_keys()}
    conn.execute("DROP TABLE IF EXISTS sevens")


def test_a_model_whose_embedding_column_a_view_reads_is_not_deleted(scratch_conn):
    conn = scratch_conn
    conn.execute(f"CREATE VIEW embedded AS SELECT image_path, {MODEL}_simclr FROM mnist_test")
    error = refused(conn, f"DELETE MODEL\n  {MODEL}", DependentObjectsError)
    assert (error.line, error.col) == (2, 3) and "View 'embedded' reads what table 'mnist_test' would no longer have" in error.bare_message
    assert error.hint.startswith("DROP VIEW embedded first")
    assert MODEL in set(conn.execute("LIST MODEL")["name"])


def test_alter_table_if_exists_of_no_table_changes_nothing(tutorial_conn):
    before = snapshot(tutorial_conn.settings.home)
    assert tutorial_conn.execute("ALTER TABLE IF EXISTS nowhere ADD COLUMN x INT") is None
    assert snapshot(tutorial_conn.settings.home) == before


def test_names_fold_to_lower_case_as_in_postgresql(scratch_conn):
    conn = scratch_conn
    conn.execute("CREATE TABLE Eights AS SELECT * FROM mnist_train WHERE label = 8")
    conn.execute("INSERT INTO EIGHTS SELECT * FROM mnist_train WHERE label = 9 LIMIT 1")
    conn.execute('ALTER TABLE eights RENAME TO "Only8"')
    assert "Only8" in set(conn.execute("LIST TABLE")["table_name"])
    assert conn.execute('SELECT count(*) AS n FROM "Only8"')["n"].item() == 101
    conn.execute('DROP TABLE "Only8"')
    assert sorted(conn.execute("LIST TABLE")["table_name"]) == ["mnist_test", "mnist_train"]


def test_views_dropped_together_need_no_cascade_and_views_are_not_written(scratch_conn):
    conn = scratch_conn
    conn.execute("CREATE VIEW v1 AS SELECT * FROM mnist_train WHERE label < 5")
    conn.execute("CREATE VIEW v2 AS SELECT * FROM v1 WHERE label = 1")
    assert "view v2 (it reads v1)" in str(refused(conn, "DROP VIEW v1", DependentObjectsError))
    assert "is a view" in str(refused(conn, "COPY v1 OPTIONS (overwrite=True) FROM 'thanosql-dataset/mnist_data/mnist_test.csv'", ObjectExistsError))
    conn.execute("DROP VIEW v1, v2")
    assert not _stores(conn)[0]["warehouse"].views()


def test_insert_into_a_table_convert_rewrites_is_refused(scratch_conn):
    conn = scratch_conn
    conn.execute(f"CONVERT USING {MODEL} OPTIONS (table_name='test_vectors') AS SELECT * FROM mnist_test WHERE label < 5")
    error = refused(conn, "DELETE FROM test_vectors WHERE label = 0", SQLError)
    assert "CONVERT's query over mnist_test" in str(error) and "CREATE TABLE my_test_vectors AS" in error.hint


@pytest.mark.parametrize(
    "sql, error_type, words",
    [
        pytest.param(f"UPDATE mnist_test SET {MODEL}_simclr = NULL", SQLError, ["holds embeddings", "Qdrant"], id="update-embedding-column"),
        pytest.param(f"UPDATE mnist_test SET (label, {MODEL}_simclr) = (1, NULL)", SQLError, ["holds embeddings"], id="update-embedding-column-in-a-tuple"),
        pytest.param(f"UPDATE mnist_test SET ({MODEL}_simclr) = (NULL)", SQLError, ["holds embeddings"], id="update-embedding-column-in-parentheses"),
        pytest.param(f"INSERT INTO mnist_test (image_path, {MODEL}_simclr) VALUES ('a.jpg', NULL)", SQLError, ["holds embeddings"], id="insert-embedding-column"),
        pytest.param(
            "INSERT INTO mnist_test SELECT * FROM mnist_test LIMIT 1", SQLError, ["without a list of columns", "INSERT INTO mnist_test (image_path, filename, label)"], id="insert-every-column"
        ),
        pytest.param("ALTER TABLE mnist_test RENAME TO renamed", DependentObjectsError, ["embedding column", "CREATE TABLE my_mnist_test AS"], id="alter-embedded-table"),
        pytest.param("ALTER TABLE mnist_train DROP COLUMN label", DependentObjectsError, [f"model {MODEL} (trained on mnist_train)"], id="alter-training-table"),
        pytest.param("CREATE TABLE thanosql_objects AS SELECT 1 AS a", SQLError, ["workspace itself"], id="create-catalog-table"),
        pytest.param("DELETE FROM thanosql_objects", SQLError, ["workspace itself"], id="delete-catalog-table"),
        pytest.param("CREATE TABLE mnist_test AS SELECT 1 AS a", ObjectExistsError, ["already exists", "DROP TABLE mnist_test"], id="create-existing"),
        pytest.param("INSERT INTO nowhere SELECT * FROM mnist_train", ObjectNotFoundError, ["'nowhere' does not exist", "Existing tables: mnist_test"], id="insert-missing-table"),
        pytest.param("ALTER TABLE nowhere RENAME COLUMN a TO b", ObjectNotFoundError, ["'nowhere' does not exist", "Existing tables: mnist_test"], id="alter-missing-table"),
        pytest.param("INSERT INTO mnist_train SELECT * FROM nowhere", ObjectNotFoundError, ["'nowhere' does not exist"], id="insert-from-missing-table"),
        pytest.param("INSERT INTO mnist_train SELECT * FROM read_csv('/etc/passwd')", SQLError, ["read_csv"], id="insert-from-file"),
        pytest.param("DELETE FROM mnist_train WHERE pg_sleep(1) IS NULL", SQLError, ["pg_sleep"], id="delete-with-sleep"),
        pytest.param("DELETE FROM mnist_train RETURNING *", SQLError, ["RETURNING"], id="returning"),
        pytest.param("CREATE TEMPORARY TABLE t AS SELECT 1 AS a", SQLError, ["temporary"], id="temporary-table"),
        pytest.param("CREATE TABLE other.t AS SELECT 1 AS a", SQLError, ["without a schema"], id="schema-qualified"),
        pytest.param("CREATE TABLE t AS SELECT * FROM (SEARCH IMAGE images='a.jpg' USING m AS SELECT * FROM mnist_test)", SQLError, ["SEARCH cannot stand inside CREATE"], id="search-inside"),
        pytest.param("CREATE VIEW vl AS SELECT * FROM (LIST TABLE)", SQLError, ["LIST cannot stand inside CREATE", "line 1:"], id="list-inside"),
        pytest.param("ALTER TABLE mnist_train ALTER COLUMN label TYPE TEXT", SQLError, ["not supported"], id="alter-type"),
        pytest.param("INSERT INTO mnist_train (label) VALUES ('not a number')", SQLError, ["not a number"], id="store-refuses"),
        pytest.param("ALTER TABLE mnist_train ADD COLUMN s TEXT DEFAULT pg_read_file('/etc/passwd')", SQLError, ["pg_read_file"], id="alter-default-reads-file"),
        pytest.param("CREATE VIEW tokens AS SELECT * FROM thanosql_api_tokens", SQLError, ["workspace itself"], id="view-of-tokens"),
        pytest.param("CREATE VIEW roles AS SELECT * FROM pg_catalog.pg_authid", SQLError, ["without a schema"], id="view-of-pg-catalog"),
        pytest.param("INSERT INTO mnist_train SELECT * FROM main.mnist_test", SQLError, ["without a schema"], id="qualified-source"),
        pytest.param("CREATE MATERIALIZED VIEW m AS SELECT * FROM mnist_train", SQLError, ["MATERIALIZED", "not supported"], id="materialized-view"),
        pytest.param("CREATE TABLE child (a INT) INHERITS (mnist_train)", SQLError, ["not supported"], id="inherits"),
        pytest.param("DROP TABLE main.mnist_test", SQLError, ["without a schema"], id="drop-qualified"),
    ],
)
def test_bad_passthrough_is_refused_cleanly(tutorial_conn, sql, error_type, words):
    refused_naming(tutorial_conn, sql, words, error_type)


def test_the_cli_runs_passthrough_and_removal_statements(scratch_conn, tmp_path):
    script = tmp_path / "manage.sql"
    script.write_text(
        "CREATE TABLE eights AS SELECT * FROM mnist_train WHERE label = 8;\n"
        "INSERT INTO eights SELECT * FROM mnist_train WHERE label = 9;\n"
        "SELECT count(*) AS n FROM eights;\n"
        "DROP TABLE eights;\n"
        f"DELETE MODEL {MODEL};\n"
        "LIST MODEL;\n"
    )
    result = thanosql_cli("--home", str(scratch_conn.settings.home), "run", str(script))
    assert result.returncode == 0, result.stderr
    assert "[3/6] SELECT count(*)" in result.stdout and "200" in result.stdout
    assert "inserted 100 rows into table eights: 200 rows" in result.stderr
    assert f"removed model {MODEL}" in result.stderr
    assert scratch_conn.execute("LIST TABLE")["table_name"].tolist() == ["mnist_test", "mnist_train"]


SAVED_SEARCH = (
    f"SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING {MODEL} OPTIONS (table_name='near_923'{{}}) "
    "AS SELECT * FROM mnist_test"
)


def test_search_table_name_saves_the_rows_as_a_table(scratch_conn):
    conn = scratch_conn
    rows = conn.execute(SAVED_SEARCH.format(""))
    saved = conn.execute("SELECT * FROM near_923")
    assert len(rows) == len(saved) == 200 and list(saved.columns) == list(rows.columns)
    best = conn.execute(f"SELECT image_path FROM near_923 ORDER BY {MODEL}_simclr_similarity1 DESC LIMIT 1")
    assert best["image_path"].item() == "thanosql-dataset/mnist_data/test/923.jpg"
    node = _graph(conn).get(dg.AssetKey(["table", "near_923"]))
    assert node.parent_keys == {dg.AssetKey(["table", "mnist_test"])}
    assert _history(conn, "near_923")[-1]["dagster/row_count"].value == 200
    # Plain data: no embedding column of its own to search.
    assert not conn.execute("SELECT embedding_columns FROM (LIST TABLE) AS t WHERE table_name = 'near_923'")["embedding_columns"].item()

    assert "overwrite=True" in refused(conn, SAVED_SEARCH.format(""), ObjectExistsError).hint
    conn.execute(SAVED_SEARCH.format(", overwrite=True").replace("AS SELECT * FROM mnist_test", "AS SELECT * FROM mnist_test WHERE label = 8"))
    assert len(conn.execute("SELECT * FROM near_923")) == 20


@pytest.mark.parametrize(
    "sql, words",
    [
        pytest.param(SAVED_SEARCH.format("").replace("'near_923'", "'mnist_test'"), ["which its query reads"], id="replaces-its-source"),
        pytest.param(SAVED_SEARCH.format("").replace("'near_923'", "'mnist_train'"), ["not saved by SEARCH"], id="replaces-a-copy-table"),
        pytest.param(f"SELECT * FROM ({SAVED_SEARCH.format('')}) AS s LIMIT 1", ["statement of its own"], id="nested"),
        pytest.param(SAVED_SEARCH.format(", overwrite=1"), ["overwrite"], id="bad-option"),
    ],
)
def test_bad_search_table_name_is_refused_cleanly(tutorial_conn, sql, words):
    message = str(refused(tutorial_conn, sql, SQLError))
    for word in words:
        assert word in message, message
