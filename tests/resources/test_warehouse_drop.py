"""`WarehouseResource.drop`, `change` and `replace_tables` on both table stores: embedding columns
go with their generation records and only the indexes they needed; views reading a table survive
its replacement, and a change that would break one is refused by both; several tables are replaced all or none."""

from __future__ import annotations

import uuid

import numpy as np
import pandas as pd
import pytest

from resources.warehouse import Generation, TableReplacement
from tests.production_stack import PG, create_database, drop_database, postgres_available
from thanosql.errors import DependentObjectsError


def _rows() -> pd.DataFrame:
    vectors = [np.array([1.0, 0.0], dtype=np.float32), np.array([0.0, 1.0], dtype=np.float32)]
    return pd.DataFrame({"image_path": ["a.jpg", "b.jpg"], "label": [1, 2], "m1_simclr": vectors, "m2_simclr": vectors})


def _generations() -> list[Generation]:
    return [Generation("t", column, f"{column}_collection", "1", "image_path") for column in ("m1_simclr", "m2_simclr")]


@pytest.fixture(params=["duckdb", "postgres"])
def warehouse(request, tmp_path):
    if request.param == "duckdb":
        from resources.duckdb_warehouse import DuckDBWarehouseResource

        yield DuckDBWarehouseResource(path=str(tmp_path / "warehouse.duckdb"))
        return
    if not postgres_available():
        pytest.skip("needs the PostgreSQL server on 127.0.0.1:5432")
    from resources.postgres_warehouse import PostgresWarehouseResource

    database = f"thanosql_drop_{uuid.uuid4().hex[:10]}"
    create_database(database)
    try:
        yield PostgresWarehouseResource(url=f"postgresql+psycopg2://{PG}/{database}", reader_role=f"reader_{database}")
    finally:
        from resources.postgres_warehouse import _engine

        _engine(f"postgresql+psycopg2://{PG}/{database}").dispose()
        drop_database(database)


def _indexed(warehouse, table: str) -> bool:
    if warehouse.dialect == "duckdb":
        with warehouse.connect() as con:
            return bool(con.execute("SELECT count(*) FROM duckdb_indexes() WHERE table_name = ?", [table]).fetchone()[0])
    return bool(warehouse.query(f"SELECT count(*) AS n FROM pg_indexes WHERE tablename = '{table}'")["n"].iloc[0])


def test_dropping_embedding_columns_keeps_the_rows_and_the_index_the_others_need(warehouse):
    warehouse.replace_table("t", _rows(), index_on=["image_path"], generations=_generations())
    warehouse.drop(columns={"t": ["m1_simclr"]})
    assert list(warehouse.columns("t")) == ["image_path", "label", "m2_simclr"]
    assert list(warehouse.table_generations(fresh=True)["t"]) == ["m2_simclr"]
    assert _indexed(warehouse, "t")  # m2_simclr's lookups by image still use it
    warehouse.drop(columns={"t": ["m2_simclr"]})
    assert warehouse.table_generations(fresh=True)["t"] == {}
    assert len(warehouse.query('SELECT * FROM "t"')) == 2
    if warehouse.dialect == "duckdb":
        assert not _indexed(warehouse, "t")  # no embedding column needs it; DuckDB alters no indexed table
        warehouse.change('ALTER TABLE "t" RENAME COLUMN "label" TO "digit"', "t")
        assert list(warehouse.columns("t")) == ["image_path", "digit"]


def test_views_survive_a_replaced_table_and_refuse_losing_their_column(warehouse):
    warehouse.replace_table("t", _rows(), index_on=["image_path"], generations=_generations())
    warehouse.change('CREATE VIEW "v" AS SELECT image_path, m1_simclr FROM "t" WHERE label = 1', "v")
    warehouse.replace_table("t", _rows().iloc[:1], index_on=["image_path"], generations=_generations())
    assert warehouse.query('SELECT image_path FROM "v"')["image_path"].tolist() == ["a.jpg"]
    # Both stores refuse (DuckDB binds a view when it is read: the store checks its views after the change).
    with pytest.raises(DependentObjectsError, match="View 'v' reads what table 't' would no longer have"):
        warehouse.drop(columns={"t": ["m1_simclr"]})
    with pytest.raises(DependentObjectsError, match="View 'v' reads what table 't' would no longer have"):
        warehouse.replace_table("t", _rows().drop(columns=["m1_simclr"]), index_on=["image_path"])
    assert "m1_simclr" in warehouse.columns("t") and len(warehouse.query('SELECT * FROM "t"')) == 1
    warehouse.drop(views=["v"])
    warehouse.drop(columns={"t": ["m1_simclr"]})
    assert "m1_simclr" not in warehouse.columns("t")


def test_a_view_of_every_column_keeps_its_columns_on_both_stores(warehouse):
    warehouse.replace_table("t", _rows(), index_on=["image_path"], generations=_generations())
    warehouse.change('CREATE VIEW "every" AS SELECT * FROM "t"', "every")
    with pytest.raises(DependentObjectsError, match="View 'every' reads what table 't' would no longer have"):
        warehouse.drop(columns={"t": ["m1_simclr"]})
    assert list(warehouse.query('SELECT * FROM "every" LIMIT 0').columns) == ["image_path", "label", "m1_simclr", "m2_simclr"]


def test_tables_replaced_together_change_all_or_none(warehouse):
    warehouse.replace_table("t", _rows(), index_on=["image_path"], generations=_generations())
    derived = Generation("d", "m1_simclr", "d_collection", "1", "image_path")

    with pytest.raises(Exception):  # the second table's index names a column it lacks
        warehouse.replace_tables([TableReplacement("t", _rows().iloc[:1]), TableReplacement("d", _rows(), ("no_such_column",))])
    assert len(warehouse.query('SELECT * FROM "t"')) == 2 and "d" not in warehouse.tables()

    counts = warehouse.replace_tables(
        [TableReplacement("t", _rows().iloc[:1], ("image_path",)), TableReplacement("d", _rows()[["image_path", "m1_simclr"]], ("image_path",), (derived,))]
    )
    assert counts == [1, 2]
    recorded = warehouse.table_generations(fresh=True)
    assert list(recorded["t"]) == ["m1_simclr", "m2_simclr"] and recorded["d"]["m1_simclr"].collection == "d_collection"
