"""`WarehouseResource.held`: the epoch in which what was read from the table store may be reused."""

from __future__ import annotations

import pandas as pd

from resources.duckdb_warehouse import DuckDBWarehouseResource, release
from resources.postgres_warehouse import PostgresWarehouseResource


def _epoch(warehouse) -> int | None:
    with warehouse.held() as epoch:
        return epoch


def test_a_duckdb_epoch_lasts_until_this_process_writes_or_opens_the_file_again(tmp_path):
    path = tmp_path / "warehouse.duckdb"
    warehouse = DuckDBWarehouseResource(path=str(path), idle_release_s=60)
    warehouse.replace_table("t", pd.DataFrame({"image_path": ["a.jpg"], "label": [1]}))
    with warehouse.held() as epoch:
        warehouse.query("SELECT * FROM t")
        assert warehouse.columns("t") == ["image_path", "label"]
        assert _epoch(warehouse) == epoch  # reads keep it
    assert _epoch(warehouse) == epoch  # and so does the file staying open

    writes = [
        lambda: warehouse.change("INSERT INTO t VALUES ('b.jpg', 2)", "t"),
        lambda: warehouse.change("ALTER TABLE t ADD COLUMN note TEXT", "t"),
        lambda: warehouse.replace_table("u", pd.DataFrame({"x": [1]})),
        lambda: warehouse.drop(tables=["u"]),
        lambda: release(path),  # another process may write before this one opens the file again
    ]
    seen = {epoch}
    for write in writes:
        write()
        seen.add(_epoch(warehouse))
    assert len(seen) == len(writes) + 1
    assert warehouse.columns("t") == ["image_path", "label", "note"]  # column names read again in the new epoch


def test_a_failed_write_still_ends_the_epoch(tmp_path):
    warehouse = DuckDBWarehouseResource(path=str(tmp_path / "warehouse.duckdb"), idle_release_s=60)
    warehouse.replace_table("t", pd.DataFrame({"label": [1]}))
    before = _epoch(warehouse)
    try:
        warehouse.change("INSERT INTO t VALUES ('not a number')", "t")
    except Exception:
        pass
    assert _epoch(warehouse) != before


def test_postgresql_promises_no_epoch():
    # Other processes (run workers, the SQL server) write it at any time.
    warehouse = PostgresWarehouseResource(url="postgresql+psycopg2://localhost/unused")
    assert _epoch(warehouse) is None
