"""The table stores run queries read-only whatever their text: the store-level half of the promise
(the planner refuses such queries before they reach a store, tests/sql_frontend/test_bad_input_catalogue.py)."""

from __future__ import annotations

import uuid
from contextlib import contextmanager

import pandas as pd
import pytest

from resources.duckdb_warehouse import DuckDBWarehouseResource
from tests.production_stack import PG, create_database, drop_database, postgres_available
from thanosql.errors import QueryError

CHANGES = [
    "WITH d AS (DELETE FROM t RETURNING *) SELECT count(*) AS n FROM d",
    "WITH d AS (UPDATE t SET a = 0 RETURNING *) SELECT count(*) AS n FROM d",
    "WITH d AS (INSERT INTO t SELECT * FROM t RETURNING *) SELECT count(*) AS n FROM d",
]


@pytest.fixture
def duckdb_store(tmp_path):
    store = DuckDBWarehouseResource(path=str(tmp_path / "w.duckdb"))
    store.replace_table("t", pd.DataFrame({"a": [1, 2, 3]}))
    return store


@pytest.mark.parametrize("sql", CHANGES)
def test_duckdb_rolls_back_whatever_a_query_changes(duckdb_store, sql):
    duckdb_store.query(sql)
    assert duckdb_store.query("SELECT a FROM t ORDER BY a")["a"].tolist() == [1, 2, 3]


@pytest.mark.parametrize(
    "sql",
    ["SELECT * FROM read_csv('/etc/passwd')", "SELECT * FROM '/etc/passwd'", "COPY t TO '/tmp/leak.csv'", "ATTACH '/tmp/other.duckdb'"],
)
def test_duckdb_queries_reach_no_file(duckdb_store, sql):
    with pytest.raises(QueryError) as caught:
        duckdb_store.query(sql)
    assert "LINE" not in caught.value.message and caught.value.hint


def test_duckdb_query_errors_are_query_errors_without_the_stores_sql(duckdb_store):
    with pytest.raises(QueryError) as caught:
        duckdb_store.query("SELECT nope FROM t")
    assert 'nope' in caught.value.message and "^" not in caught.value.message
    assert "column" in caught.value.hint


@contextmanager
def _postgres_store(**reader: str):
    """A warehouse on a database of its own on the machine's PostgreSQL, holding table t (a: 1, 2, 3);
    `reader` settings may name `{database}` in a URL."""
    if not postgres_available():
        pytest.skip("needs the PostgreSQL server on 127.0.0.1:5432")
    from resources.postgres_warehouse import PostgresWarehouseResource

    database = f"thanosql_read_only_{uuid.uuid4().hex[:10]}"
    create_database(database)
    try:
        settings = {key: value.format(database=database) for key, value in reader.items()}
        store = PostgresWarehouseResource(url=f"postgresql+psycopg2://{PG}/{database}", **settings)
        store.replace_table("t", pd.DataFrame({"a": [1, 2, 3]}))
        yield store
    finally:
        drop_database(database)


@pytest.fixture(scope="module")
def postgres_store():
    with _postgres_store() as store:
        yield store


@pytest.mark.parametrize("sql", [*CHANGES, "SELECT pg_read_file('/etc/passwd')", "SELECT * FROM pg_ls_dir('/')"])
def test_postgres_runs_queries_read_only_as_a_reader(postgres_store, sql):
    with pytest.raises(QueryError):
        postgres_store.query(sql)
    assert postgres_store.query("SELECT a FROM t ORDER BY a")["a"].tolist() == [1, 2, 3]


def test_postgres_queries_still_read_relations_passed_to_them(postgres_store):
    rows = postgres_store.query("SELECT t.a, r.b FROM t JOIN r ON r.a = t.a ORDER BY t.a", relations={"r": pd.DataFrame({"a": [2], "b": ["x"]})})
    assert rows.to_dict("records") == [{"a": 2, "b": "x"}]


@pytest.fixture(scope="module")
def postgres_reader_store():
    """A warehouse whose queries log in as a reader login, as docker-compose sets it up."""
    if postgres_available():
        import sqlalchemy as sa

        admin = sa.create_engine(f"postgresql+psycopg2://{PG}/postgres")
        with admin.begin() as conn:
            if not conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = 'thanosql_test_reader'")).first():
                conn.execute(sa.text("CREATE ROLE thanosql_test_reader LOGIN"))
        admin.dispose()
    host = PG.split("@")[-1]
    with _postgres_store(
        reader_url=f"postgresql+psycopg2://thanosql_test_reader@{host}/{{database}}", reader_role="thanosql_test_reader"
    ) as store:
        yield store


def test_a_reader_login_cannot_switch_back_to_the_warehouse_user(postgres_reader_store):
    # The planner refuses set_config; the store alone must hold too: the session user is the reader.
    with pytest.raises(QueryError, match="permission denied"):
        postgres_reader_store.query(
            "SELECT set_config('role', 'none', true) AS r, query_to_xml('SELECT pg_read_file(''/etc/hostname'')', true, false, '') AS x"
        )
    assert postgres_reader_store.query("SELECT a FROM t ORDER BY a")["a"].tolist() == [1, 2, 3]


def test_a_readers_query_holds_no_lock_past_its_end(postgres_reader_store):
    postgres_reader_store.query("SELECT pg_advisory_lock(4242) AS locked")
    locks = postgres_reader_store.query("SELECT count(*) AS n FROM pg_locks WHERE locktype = 'advisory' AND objid = 4242")
    assert locks["n"].iloc[0] == 0
