"""A table's new rows, with every embedding that reads it brought along, switched in one transaction.

What a COPY changes is more than its table: the table's own embedding columns (CONVERT in
place), and the tables CONVERT made from queries that read it (`table_name='other'`), with
theirs, and so on down. Each is computed here from the new rows, without touching the store: a
CONVERT's query runs with the new rows in place of the tables they replace, the images it
picks that no collection holds yet are embedded into new collections, and then every table is
replaced in one transaction. So an image that does not decode, or a kill, leaves every table
and collection as it was.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import pandas as pd
import pyarrow as pa
import sqlglot
from sqlglot import exp

from resources import CatalogResource, WarehouseResource
from resources.warehouse import TableReplacement
from thanosql_assets.defs.checks import require_column
from thanosql_assets.defs.embeddings import EmbeddingStores, RefreshedEmbedding, refresh_vectors
from thanosql_assets.defs.specs import QUERY_DIALECT, EmbeddingSpec, spec_from_dict

_STAGED = "__thanosql_staged"  # the names new rows go by while the queries that read them run


def in_place_embeddings(catalog: CatalogResource, table: str) -> list[EmbeddingSpec]:
    """The embeddings CONVERT wrote into `table` itself (its embedding columns)."""
    return [spec for spec in _table_embeddings(catalog) if spec.table == table and table in spec.tables]


def derived_embeddings(catalog: CatalogResource, table: str) -> list[EmbeddingSpec]:
    """The embeddings of the tables CONVERT made from a query that reads `table` (`table_name='other'`)."""
    return [spec for spec in _table_embeddings(catalog) if spec.table != table and table in spec.tables]


def _table_embeddings(catalog: CatalogResource) -> list[EmbeddingSpec]:
    specs = [spec_from_dict("embedding", entry.spec) for entry in catalog.list("embedding")]
    return [spec for spec in specs if not spec.folder]


def rows_over(warehouse: WarehouseResource, embedding: EmbeddingSpec, changed: Mapping[str, pa.Table]) -> pd.DataFrame:
    """The rows the embedding's CONVERT query gives (its WHERE, its joins) once the `changed` tables
    hold their new rows: the query, run with those rows in the tables' places."""
    query = sqlglot.parse_one(embedding.query, read=QUERY_DIALECT)
    staged = {name: f"{_STAGED}_{index}" for index, name in enumerate(changed)}
    for node in query.find_all(exp.Table):
        name = _folded(node.this) if isinstance(node.this, exp.Identifier) else None
        if name in staged and not node.args.get("db"):
            node.set("alias", node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(name)))
            node.set("this", exp.to_identifier(staged[name]))
    rows = warehouse.query(query.sql(dialect=warehouse.dialect), relations={staged[name]: data for name, data in changed.items()})
    require_column(embedding.image_col, list(rows.columns), rows=f"the rows of {embedding.table} (CONVERT's query over the new rows)")
    return rows


def _folded(identifier: exp.Identifier) -> str:
    """A table name as PostgreSQL folds it: lower case unless quoted."""
    return identifier.this if identifier.quoted else identifier.this.lower()


@dataclass(frozen=True)
class ReplacedTables:
    """Tables replaced together: each one's row count, and the embeddings refreshed with them (to publish)."""

    rows: dict[str, int]
    refreshed: list[RefreshedEmbedding]


def replace_with_embeddings(
    name: str, data: pa.Table, warehouse: WarehouseResource, stores: EmbeddingStores, progress, run_id: str
) -> ReplacedTables:
    """Replace table `name` with `data` and bring along every embedding that reads it (see the module
    docstring), in one transaction; the new collections are dropped if anything fails."""
    refreshed: list[RefreshedEmbedding] = []
    changed: dict[str, pa.Table] = {}
    replacements: list[TableReplacement] = []

    def refresh(embedding: EmbeddingSpec, rows: pd.DataFrame) -> RefreshedEmbedding:
        images = rows[embedding.image_col]
        refreshed.append(refresh_vectors(embedding, images, stores, progress, rebuild=False, run_id=run_id))
        return refreshed[-1]

    def settle(table: str, rows: pa.Table, made_by: list[RefreshedEmbedding]) -> None:
        """`table`'s new rows, its own embedding columns refreshed over them, as a replacement."""
        columns = list(made_by)
        for embedding in in_place_embeddings(stores.catalog, table):
            if embedding.image_col in rows.column_names:
                columns.append(refresh(embedding, rows_over(warehouse, embedding, {**changed, table: rows})))
                rows = columns[-1].add_column(rows)
        changed[table] = rows
        index_on = tuple(sorted({embedding.spec.image_col for embedding in columns}))
        replacements.append(TableReplacement(table, rows, index_on, tuple(embedding.generation for embedding in columns)))

    try:
        settle(name, data, [])
        pending = _reached(stores.catalog, name)
        while pending:
            # A table made from others follows them: its query runs once none of them is still to change.
            later = {embedding.table for embedding in pending}
            embedding = next((embedding for embedding in pending if not later & set(embedding.tables)), pending[0])
            pending.remove(embedding)
            rows = rows_over(warehouse, embedding, changed)
            column = refresh(embedding, rows)
            settle(embedding.table, column.add_column(rows), [column])
        counts = warehouse.replace_tables(replacements)
    except BaseException:
        for embedding in refreshed:
            stores.vector_store.drop_collection(embedding.collection)
        raise
    return ReplacedTables(dict(zip((replacement.name for replacement in replacements), counts)), refreshed)


def _reached(catalog: CatalogResource, table: str) -> list[EmbeddingSpec]:
    """The embeddings of tables made from `table`, and of tables made from those, and so on."""
    reached: list[EmbeddingSpec] = []
    tables = [table]
    while tables:
        for embedding in derived_embeddings(catalog, tables.pop()):
            if embedding not in reached:
                reached.append(embedding)
                tables.append(embedding.table)
    return reached
