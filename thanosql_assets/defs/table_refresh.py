"""A table's new rows, with every embedding that reads it brought along, switched in one transaction.

What a COPY changes is more than its table: the table's own embedding columns (CONVERT in
place), the tables CONVERT made from queries that read it (`table_name='other'`) and the
embedding columns of other tables whose CONVERT query reads it (a join), and so on down. Each
is computed here from the new rows, without touching the store: a CONVERT's query runs with the
new rows in place of the tables they replace, the images it picks that no collection holds yet
are embedded into new collections, and then every table is replaced in one transaction. Until
it commits the previous tables and collections serve; if anything fails first, the new
collections are dropped (after a kill, by the next process's recovery) and no table changed.
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
from thanosql.errors import InternalError, QueryError
from thanosql_assets.defs.checks import require_column
from thanosql_assets.defs.embeddings import EmbeddingStores, RefreshedEmbedding, refresh_vectors
from thanosql_assets.defs.specs import QUERY_DIALECT, EmbeddingSpec, spec_from_dict

_STAGED = "__thanosql_staged"  # the names new rows go by while the queries that read them run


def in_place_embeddings(catalog: CatalogResource, table: str) -> list[EmbeddingSpec]:
    """The embeddings CONVERT wrote into `table` itself (its embedding columns)."""
    return [spec for spec in _table_embeddings(catalog) if spec.table == table and table in spec.tables]


def reading_embeddings(catalog: CatalogResource, table: str) -> list[EmbeddingSpec]:
    """Every embedding whose CONVERT query reads `table` (its own and other tables'): a COPY into it refreshes them."""
    return [spec for spec in _table_embeddings(catalog) if table in spec.tables]


def _maker(catalog: CatalogResource, table: str) -> EmbeddingSpec | None:
    """The embedding of the CONVERT that made `table` from other tables (`table_name='table'`), if one did."""
    return next((spec for spec in _table_embeddings(catalog) if spec.table == table and table not in spec.tables), None)


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
    try:
        rows = warehouse.query(query.sql(dialect=warehouse.dialect), relations={staged[name]: data for name, data in changed.items()})
    except QueryError as error:
        raise QueryError(
            f"The CONVERT query of {embedding.table}'s column {embedding.column} fails over the new rows of "
            f"{', '.join(changed)}: {error.message}",
            hint="Those tables must keep what that query reads (its columns and their types); "
            f"or DROP TABLE / DELETE MODEL what no longer fits first. The query: {embedding.query}",
        ) from None
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
    name: str,
    data: pa.Table,
    warehouse: WarehouseResource,
    stores: EmbeddingStores,
    progress,
    run_id: str,
) -> ReplacedTables:
    """Replace table `name` with `data`, its own embedding columns refreshed over it, and bring along
    the tables that read it (see the module docstring). One transaction; the new collections are
    dropped if anything fails first."""
    refreshed: list[RefreshedEmbedding] = []
    changed: dict[str, pa.Table] = {}
    replacements: list[TableReplacement] = []

    def refresh(embedding: EmbeddingSpec, rows: pd.DataFrame) -> RefreshedEmbedding:
        refreshed.append(refresh_vectors(embedding, rows[embedding.image_col], stores, progress, rebuild=False, run_id=run_id))
        return refreshed[-1]

    def settle(table: str, rows: pa.Table, columns: list[RefreshedEmbedding]) -> None:
        """`table`'s new rows, its own embedding columns refreshed over them, as a replacement."""
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
            # A table follows what it reads: it is settled once none of that is still to change.
            table = next((table for table, reads in pending.items() if not reads & pending.keys()), None)
            if table is None:
                raise InternalError(f"The tables made from {name} read each other in a circle: {', '.join(pending)}.")
            del pending[table]
            maker = _maker(stores.catalog, table)
            if maker is not None and changed.keys() & set(maker.tables):
                rows = rows_over(warehouse, maker, changed)  # a table CONVERT made: its query's rows again
                column = refresh(maker, rows)
                settle(table, column.add_column(rows), [column])
            else:  # a table whose own embedding columns read a changed table: its rows stay
                settle(table, warehouse.table_rows(table), [])
        counts = warehouse.replace_tables(replacements)
    except BaseException:
        for embedding in refreshed:
            stores.vector_store.drop_collection(embedding.collection)
        raise
    return ReplacedTables(dict(zip((replacement.name for replacement in replacements), counts)), refreshed)


def _reached(catalog: CatalogResource, table: str) -> dict[str, set[str]]:
    """The tables a change of `table` reaches (made from it, or with embedding columns that read it,
    and so on down), each with the tables it reads (its maker's and its embeddings' queries)."""
    reached: dict[str, set[str]] = {}
    frontier = [table]
    while frontier:
        for embedding in reading_embeddings(catalog, frontier.pop()):
            if embedding.table not in reached and embedding.table != table:  # its own columns are settled first
                reads = {name for spec in _table_embeddings(catalog) if spec.table == embedding.table for name in spec.tables}
                reached[embedding.table] = reads - {embedding.table}
                frontier.append(embedding.table)
    return reached
