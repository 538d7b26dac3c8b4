"""Tables in PostgreSQL (THANOSQL_WAREHOUSE_URL): the seed tutorial gives the DuckDB results,
and SEARCH's top-k plan gives the exhaustive plan's rows, on the machine's PostgreSQL server."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from tests.production_stack import PG, create_database, drop_database, postgres_available
from tests.seeds import seed_cells

pytestmark = pytest.mark.skipif(not postgres_available(), reason="needs the PostgreSQL server on 127.0.0.1:5432")
SIMILARITY = "my_image_search_model_simclr_similarity1"


@pytest.fixture(scope="module")
def pg_conn(tmp_path_factory):
    import thanosql

    database = f"thanosql_tables_{uuid.uuid4().hex[:10]}"
    create_database(database)
    patch = pytest.MonkeyPatch()
    patch.setenv("THANOSQL_WAREHOUSE_URL", f"postgresql+psycopg2://{PG}/{database}")
    try:
        conn = thanosql.connect(tmp_path_factory.mktemp("pg") / "workspace", progress=False)
        conn.results = [conn.execute(cell) for cell in seed_cells("001")]
        yield conn
    finally:
        patch.undo()
        drop_database(database)


def test_the_tutorial_on_postgres_tables_gives_the_duckdb_results(pg_conn, tutorial_results):
    from resources.postgres_warehouse import PostgresWarehouseResource

    assert isinstance(pg_conn._runner.resources["warehouse"], PostgresWarehouseResource)
    results = pg_conn.results
    assert [r is None for r in results] == [r is None for r in tutorial_results]
    pd.testing.assert_frame_equal(results[3], tutorial_results[3], check_dtype=False)
    np.testing.assert_allclose(
        np.stack(results[5]["my_image_search_model_simclr"]), np.stack(tutorial_results[5]["my_image_search_model_simclr"]), atol=1e-5
    )
    assert len(results[6]) == 200
    assert results[7]["image_path"].tolist() == tutorial_results[7]["image_path"].tolist()
    np.testing.assert_allclose(results[7][SIMILARITY], tutorial_results[7][SIMILARITY], atol=1e-5)


ARITHMETIC = "SELECT label / 2 AS half, -7 / 2 AS negative, 7.0 / 2 AS exact, label % 3 AS rest, count(*) AS n FROM mnist_test GROUP BY 1, 2, 3, 4 ORDER BY 1, 4"


@pytest.fixture
def duckdb_conn(tutorial_home, monkeypatch):
    """The tutorial workspace on its DuckDB tables (pg_conn's environment points elsewhere)."""
    import thanosql
    from resources.duckdb_warehouse import DuckDBWarehouseResource

    monkeypatch.delenv("THANOSQL_WAREHOUSE_URL")
    conn = thanosql.connect(tutorial_home, progress=False)
    assert isinstance(conn._runner.resources["warehouse"], DuckDBWarehouseResource)
    return conn


def test_arithmetic_on_postgres_tables_gives_the_duckdb_results(pg_conn, duckdb_conn):
    # PostgreSQL's integer division (7 / 2 = 3) in both stores: five buckets of labels, not ten.
    on_postgres, on_duckdb = pg_conn.execute(ARITHMETIC), duckdb_conn.execute(ARITHMETIC)
    pd.testing.assert_frame_equal(on_postgres, on_duckdb, check_dtype=False)
    assert sorted(set(on_duckdb["half"])) == [0, 1, 2, 3, 4] and set(on_duckdb["negative"]) == {-3}


SHAPES = (
    "SELECT count(*), count(label), label, label, ARRAY['a', 'b'] AS texts, ARRAY[16777217, 5] AS numbers, ARRAY[1, NULL] AS holes, "
    "DATE '2024-01-02' AS day, sum(label) AS total, avg(label) AS mean FROM mnist_test GROUP BY label ORDER BY label LIMIT 2"
)


def test_result_shapes_on_postgres_are_the_duckdb_ones(pg_conn, duckdb_conn):
    # Repeated column names made unique alike, arrays of their elements' type (not float32), dates as dates.
    on_postgres, on_duckdb = pg_conn.execute(SHAPES), duckdb_conn.execute(SHAPES)
    assert on_postgres.columns.tolist() == on_duckdb.columns.tolist() == [
        "count", "count_1", "label", "label_1", "texts", "numbers", "holes", "day", "total", "mean"
    ]
    assert on_postgres["total"].dtype == on_duckdb["total"].dtype == on_postgres["mean"].dtype == np.float64  # not Decimal objects
    for frame in on_postgres, on_duckdb:
        assert frame["texts"].iloc[0].tolist() == ["a", "b"] and frame["numbers"].iloc[0].tolist() == [16777217, 5]
        assert frame["numbers"].iloc[0].dtype.kind == "i" and frame["day"].dtype.kind == "M"
        assert frame["holes"].iloc[0].tolist() == [1, None]  # a NULL element stays NULL
    pd.testing.assert_frame_equal(
        on_postgres.drop(columns=["texts", "numbers", "holes"]), on_duckdb.drop(columns=["texts", "numbers", "holes"]), check_dtype=False
    )


def test_arrays_of_a_search_result_keep_their_types_in_postgresql(pg_conn):
    # A query over a result the store holds as a temporary table (SEARCH's) reads its arrays back as they were.
    search = (
        "SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model "
        "AS SELECT *, ARRAY[label, NULL] AS holes, ARRAY[filename] AS names, ARRAY[label > 4] AS big FROM mnist_test"
    )
    rows = pg_conn.execute(f"SELECT holes, names, big, holes[1] + 1 AS next FROM ({search}) ORDER BY label LIMIT 1")
    assert rows["holes"].iloc[0].tolist() == [0, None] and rows["names"].iloc[0].tolist()[0].endswith(".jpg")
    assert rows["big"].iloc[0].tolist() == [False] and rows["next"].iloc[0] == 1  # integers, not text


@pytest.mark.parametrize("conn_name", ["pg_conn", "duckdb_conn"])
def test_division_by_zero_is_an_error_at_the_division(conn_name, request):
    from thanosql.errors import QueryError

    with pytest.raises(QueryError) as caught:
        request.getfixturevalue(conn_name).execute("SELECT\n  label,\n  label / (label - label) AS e FROM mnist_test")
    assert "division by zero" in caught.value.message.lower() and "NULLIF" in caught.value.hint
    assert "SET" not in str(caught.value)
    if conn_name == "duckdb_conn":  # DuckDB quotes the expression, so the caret finds it; PostgreSQL does not
        assert (caught.value.line, caught.value.col) == (3, 3)


def test_top_k_on_postgres_equals_the_exhaustive_plan(pg_conn):
    search = "SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model AS SELECT * FROM mnist_test"
    every = pg_conn.execute(search).sort_values(SIMILARITY, ascending=False, kind="stable")
    top = pg_conn.execute(f"SELECT filename, {SIMILARITY} FROM ({search}) WHERE label = 3 ORDER BY {SIMILARITY} DESC LIMIT 6")
    assert pg_conn.last_plan.startswith("top-k")
    want = every[every.label == 3].head(6)
    assert top["filename"].tolist() == want["filename"].tolist()
    np.testing.assert_allclose(top[SIMILARITY], want[SIMILARITY], atol=1e-5)


def test_top_k_on_postgres_with_a_with_query_and_a_percent_sign(pg_conn):
    search = (
        "SEARCH IMAGE images='thanosql-dataset/mnist_data/test/923.jpg' USING my_image_search_model "
        "AS WITH digits AS (SELECT * FROM mnist_test) SELECT * FROM digits"
    )
    every = pg_conn.execute(search).sort_values(SIMILARITY, ascending=False, kind="stable")
    top = pg_conn.execute(f"SELECT filename, {SIMILARITY} FROM ({search}) WHERE filename LIKE '%8%' ORDER BY {SIMILARITY} DESC LIMIT 5")
    assert pg_conn.last_plan.startswith("top-k")
    want = every[every.filename.str.contains("8")].head(5)
    assert top["filename"].tolist() == want["filename"].tolist()
    np.testing.assert_allclose(top[SIMILARITY], want[SIMILARITY], atol=1e-5)


def test_copy_append_on_postgres_keeps_vectors_and_embeds_the_new_rows(pg_conn):
    home = pg_conn.settings.home
    pd.read_csv(home / "thanosql-dataset/mnist_data/mnist_train.csv").head(10).to_csv(home / "extra.csv", index=False)
    pg_conn.execute("COPY mnist_test OPTIONS (append=True) FROM 'extra.csv'")
    rows = pg_conn.execute("SELECT image_path, my_image_search_model_simclr FROM mnist_test")
    assert len(rows) == 210 and rows["my_image_search_model_simclr"].notna().all()
