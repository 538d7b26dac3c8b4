"""A table's new rows, with every embedding that reads it brought along, switched in one transaction.

What a COPY changes, or a CONVERT that makes its table again (`switch_table`), is more than its
table: the table's own embedding columns (CONVERT in place), the tables CONVERT made from
queries that read it (`table_name='other'`) and the embedding columns of other tables whose
CONVERT query reads it (a join), and so on down. Each is computed here from the new rows,
without touching the store: a CONVERT's query runs with the new rows in place of the tables
they replace, the images it picks that no collection holds yet are embedded into new
collections, and then every table is replaced in one transaction. Until it commits the previous
tables and collections serve; if anything fails first, the new collections are dropped (after a
kill, by the next process's recovery) and no table changed. New rows that a CONVERT's query no
longer fits (a column it reads is gone) are refused rather than leave a column behind.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import dagster as dg
import pandas as pd
import pyarrow as pa
import sqlglot
from sqlglot import exp

from resources import CatalogResource, WarehouseResource
from resources.warehouse import TableReplacement
from thanosql.errors import InternalError, QueryError
from thanosql_assets.defs.embeddings import EmbeddingStores, RefreshedEmbedding, publish, refresh_vectors
from thanosql_assets.defs.progress import counted
from thanosql_assets.defs.specs import QUERY_DIALECT, EmbeddingSpec, spec_from_dict, table_key
from thanosql_assets.defs.table_metadata import table_metadata

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
        raise _no_longer_fits(embedding, changed, f"fails over them: {error.message}") from None
    if embedding.image_col not in rows.columns:
        # Its column would be lost while its collection stays in the catalog: refused instead.
        raise _no_longer_fits(embedding, changed, f"gives no column {embedding.image_col!r} over them (it gives {', '.join(rows.columns)})")
    return rows


def _no_longer_fits(embedding: EmbeddingSpec, changed: Mapping[str, pa.Table], what: str) -> QueryError:
    return QueryError(
        f"The new rows of {', '.join(changed)} do not fit the CONVERT that made column {embedding.column} of "
        f"{embedding.table}: its query {what}.",
        hint="Those tables must keep what that query reads (its columns and their types, the column of image "
        f"paths); or DROP TABLE / DELETE MODEL what no longer fits first. The query: {embedding.query}",
    )


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
    *,
    columns: Sequence[RefreshedEmbedding] = (),
) -> ReplacedTables:
    """Replace table `name` with `data`, its own embedding columns refreshed over it, and bring along
    the tables that read it (see the module docstring). `columns`: embeddings already set in
    `data` (the one that made it again). One transaction; the new collections (`columns'` too)
    are dropped if anything fails first."""
    refreshed: list[RefreshedEmbedding] = list(columns)
    changed: dict[str, pa.Table] = {}
    replacements: list[TableReplacement] = []

    def refresh(embedding: EmbeddingSpec, rows: pd.DataFrame) -> RefreshedEmbedding:
        refreshed.append(refresh_vectors(embedding, rows[embedding.image_col], stores, progress, rebuild=False, run_id=run_id))
        return refreshed[-1]

    def settle(table: str, rows: pa.Table, own: list[RefreshedEmbedding]) -> None:
        """`table`'s new rows, its own embedding columns refreshed over them, as a replacement."""
        for embedding in in_place_embeddings(stores.catalog, table):
            own.append(refresh(embedding, rows_over(warehouse, embedding, {**changed, table: rows})))
            rows = own[-1].add_column(rows)
        changed[table] = rows
        index_on = tuple(sorted({embedding.spec.image_col for embedding in own}))
        replacements.append(TableReplacement(table, rows, index_on, tuple(embedding.generation for embedding in own)))

    try:
        settle(name, data, list(columns))
        pending = tables_reached(stores.catalog, name)
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


def tables_reached(catalog: CatalogResource, table: str) -> dict[str, set[str]]:
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


def publish_replaced(context, replaced: ReplacedTables, stores: EmbeddingStores, warehouse: WarehouseResource, *, name: str, progress, started: float) -> None:
    """Once the tables are replaced: publish every refreshed embedding, and log the materializations of
    what changed with table `name` (its embeddings, the tables brought along and theirs)."""
    for embedding in replaced.refreshed:
        rows = replaced.rows[embedding.spec.table]
        embedding.rows = rows
        publish(embedding, rows, stores)
        context.log_event(dg.AssetMaterialization(asset_key=embedding.spec.asset_key, metadata=embedding.metadata(rows, time.perf_counter() - started)))
        context.log_event(dg.AssetMaterialization(asset_key=embedding.spec.collection_key, metadata=embedding.collection_metadata(stores.vector_store)))
    for table, rows in replaced.rows.items():
        if table != name:
            progress(f"table {table}: {rows} rows, brought along from {name}")
            context.log_event(dg.AssetMaterialization(asset_key=table_key(table), metadata=table_metadata(warehouse, table, rows)))


def switch_table(
    context: dg.AssetExecutionContext,
    refreshed: RefreshedEmbedding,
    rows: pd.DataFrame,
    warehouse: WarehouseResource,
    stores: EmbeddingStores,
    progress,
    started: float,
):
    """Switch the embedding's table to `refreshed`'s collection in one transaction, then publish it;
    yields the table's materialization when the table is an asset of the op.

    In place, the table keeps its rows and other columns. A table the CONVERT makes (from a query
    or a folder) is written from `rows` again: its own in-place embedding columns are refreshed
    over them and the tables made from it come along, in the same transaction. The new
    collections are dropped if the switch fails."""
    spec = refreshed.spec
    if not spec.folder and spec.table in spec.tables:  # in place
        try:
            data = refreshed.add_column(warehouse.table_rows(spec.table))
            count = warehouse.replace_table(spec.table, data, index_on=[spec.image_col], generations=[refreshed.generation])
        except BaseException:
            stores.vector_store.drop_collection(refreshed.collection)
            raise
        replaced = ReplacedTables({spec.table: count}, [refreshed])
    else:
        try:
            data = refreshed.add_column(rows)
        except BaseException:
            stores.vector_store.drop_collection(refreshed.collection)
            raise
        replaced = replace_with_embeddings(spec.table, data, warehouse, stores, progress, context.run_id, columns=[refreshed])
    unembedded = data.column(spec.column).null_count
    refreshed.rows = replaced.rows[spec.table]
    publish(refreshed, refreshed.rows, stores)
    others = ReplacedTables(replaced.rows, [embedding for embedding in replaced.refreshed if embedding is not refreshed])
    publish_replaced(context, others, stores, warehouse, name=spec.table, progress=progress, started=started)
    progress(
        f"table {spec.table}: column {spec.column} set on {counted(refreshed.rows, 'row')}"
        + (f" ({unembedded} without an embedding: NULL)" if unembedded else "")
        + f"; collection {refreshed.collection} holds {counted(refreshed.points, 'vector')}"
    )
    table = table_metadata(warehouse, spec.table, refreshed.rows)
    if spec.folder:
        yield dg.MaterializeResult(
            asset_key=table_key(spec.table),
            metadata={**table, "folder": dg.MetadataValue.path(str(stores.workspace.resolve(spec.folder)))},
        )
    else:
        # Not an asset of this op, but rewritten by it: its page shows the new column.
        context.log_event(dg.AssetMaterialization(asset_key=table_key(spec.table), metadata=table))
