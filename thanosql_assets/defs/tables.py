"""COPY: one asset per table, copied from its files into the table store.

A lone CSV file streams into the table store a block at a time (unless the table has embedding
columns to refresh, which need its rows at hand); other sources are read whole first.

A COPY keeps the embeddings that read its table true, in its own run: the table's own embedding
columns (CONVERT in place), and the tables CONVERT made from it (`table_name='other'`), whose
rows are its query's over the new rows. Their new images are embedded (images already in a
collection keep their vectors) into new collections, then the table and every table made from
it are replaced, with their embedding columns, in one transaction. Until that transaction
commits, the previous tables and collections serve; a COPY that fails (an image that does not
decode, say) or is killed midway leaves them all as they were.
"""

import time

import dagster as dg
import pandas as pd
import pyarrow as pa
import sqlglot
from sqlglot import exp

from resources import (
    CatalogResource,
    ModelRegistryResource,
    VectorStoreResource,
    WarehouseResource,
    WorkspaceResource,
)
from resources.warehouse import TableReplacement
from thanosql.errors import DataError
from thanosql_assets.defs.checks import require_column
from thanosql_assets.defs.csv_files import StreamedCsv
from thanosql_assets.defs.embeddings import EmbeddingStores, RefreshedEmbedding, publish, refresh_vectors
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import QUERY_DIALECT, EmbeddingSpec, SavedTableSpec, TableSpec, spec_from_dict, table_key
from thanosql_assets.defs.table_files import read_table_files, streamed_table_file
from thanosql_assets.defs.table_metadata import column_schema, table_metadata

_STAGED = "__thanosql_staged"  # the name a table's new rows go by while its embeddings are refreshed


def in_place_embeddings(catalog: CatalogResource, table: str) -> list[EmbeddingSpec]:
    """The embeddings CONVERT wrote into `table` itself (its embedding columns)."""
    return [spec for spec in _table_embeddings(catalog) if spec.table == table and table in spec.tables]


def derived_embeddings(catalog: CatalogResource, table: str) -> list[EmbeddingSpec]:
    """The embeddings of the tables CONVERT made from a query that reads `table` (`table_name='other'`)."""
    return [spec for spec in _table_embeddings(catalog) if spec.table != table and table in spec.tables]


def _table_embeddings(catalog: CatalogResource) -> list[EmbeddingSpec]:
    specs = [spec_from_dict("embedding", entry.spec) for entry in catalog.list("embedding")]
    return [spec for spec in specs if not spec.folder]


def rows_over(warehouse: WarehouseResource, embedding: EmbeddingSpec, table: str, data: pa.Table) -> pd.DataFrame:
    """The rows the embedding's CONVERT query gives (its WHERE, its joins) once `table` holds `data`:
    the query, run with the new rows in the table's place."""
    query = sqlglot.parse_one(embedding.query, read=QUERY_DIALECT)
    for node in query.find_all(exp.Table):
        if isinstance(node.this, exp.Identifier) and _folded(node.this) == table and not node.args.get("db"):
            node.set("alias", node.args.get("alias") or exp.TableAlias(this=exp.to_identifier(table)))
            node.set("this", exp.to_identifier(_STAGED))
    rows = warehouse.query(query.sql(dialect=warehouse.dialect), relations={_STAGED: data})
    require_column(embedding.image_col, list(rows.columns), rows=f"the rows of {embedding.table} (CONVERT's query over the copied rows)")
    return rows


def _folded(identifier: exp.Identifier) -> str:
    """A table name as PostgreSQL folds it: lower case unless quoted."""
    return identifier.this if identifier.quoted else identifier.this.lower()


def table_asset(spec: TableSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=spec.asset_key,
        deps=[dg.AssetKey(["dataset", name]) for name in spec.datasets],
        group_name="tables",
        kinds={"duckdb"},
        description=spec.statement,
    )
    def _table(
        context: dg.AssetExecutionContext,
        workspace: WorkspaceResource,
        warehouse: WarehouseResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
        vector_store: VectorStoreResource,
    ) -> dg.MaterializeResult:
        started = time.perf_counter()
        progress = Progress(context)
        paths = [workspace.resolve(source) for source in spec.sources]
        for source, path in zip(spec.sources, paths):
            if not path.exists():
                raise DataError(
                    f'COPY {spec.name}: "{source}" does not exist (looked at {path}).',
                    hint="Relative paths start at the workspace directory; GET THANOSQL DATASET downloads the tutorial files.",
                )
        files = list(zip(spec.sources, paths))
        embeddings, derived = in_place_embeddings(catalog, spec.name), derived_embeddings(catalog, spec.name)
        # A lone CSV file without embeddings to refresh streams into the table store a block at a time.
        streamed = None if embeddings or derived else streamed_table_file(files)
        if streamed is not None:
            rows = _replace_streamed(warehouse, spec.name, *streamed, progress)
            if rows is not None:
                return _copied(spec, warehouse, catalog, progress, paths, rows, streamed[1], started)
        data, renamed = read_table_files(files, workspace.display_path, spec.sheets)
        for note in renamed:
            progress(f"COPY {spec.name}: {note}")
        stores = EmbeddingStores(workspace, catalog, model_registry, vector_store)
        refreshed: list[RefreshedEmbedding] = []
        try:
            for embedding in embeddings:
                if embedding.image_col in data.column_names:
                    images = rows_over(warehouse, embedding, spec.name, data)[embedding.image_col]
                    refreshed.append(refresh_vectors(embedding, images, stores, progress, rebuild=False, run_id=context.run_id))
                    data = refreshed[-1].add_column(data)
            own = TableReplacement(
                spec.name, data, tuple(sorted({embedding.spec.image_col for embedding in refreshed})), tuple(e.generation for e in refreshed)
            )
            replacements = [own]
            for embedding in derived:
                rows = rows_over(warehouse, embedding, spec.name, data)
                refreshed.append(refresh_vectors(embedding, rows[embedding.image_col], stores, progress, rebuild=False, run_id=context.run_id))
                replacements.append(
                    TableReplacement(embedding.table, refreshed[-1].add_column(rows), (embedding.image_col,), (refreshed[-1].generation,))
                )
            counts = dict(zip((replacement.name for replacement in replacements), warehouse.replace_tables(replacements)))
        except BaseException:
            for embedding in refreshed:
                vector_store.drop_collection(embedding.collection)
            raise
        for embedding in refreshed:
            table_rows = counts[embedding.spec.table]
            publish(embedding, table_rows, stores)
            _report_embedding(context, embedding, vector_store, table_rows, time.perf_counter() - started)
            if embedding.spec.table != spec.name:
                progress(f"table {embedding.spec.table}: {table_rows} rows, column {embedding.spec.column} brought up to date")
                metadata = table_metadata(warehouse, embedding.spec.table, table_rows)
                context.log_event(dg.AssetMaterialization(asset_key=table_key(embedding.spec.table), metadata=metadata))
        return _copied(spec, warehouse, catalog, progress, paths, counts[spec.name], renamed, started)

    return _table


def _replace_streamed(warehouse: WarehouseResource, name: str, streamed: StreamedCsv, renamed: list[str], progress) -> int | None:
    """The row count once the file's batches replaced the table; None when a later block did not
    fit the first block's types (the table is as it was, and the caller reads the file whole)."""
    for note in renamed:
        progress(f"COPY {name}: {note}")
    try:
        return warehouse.replace_table(name, streamed.reader())
    except Exception:
        if streamed.types_changed:
            progress(f"COPY {name}: a later part of {streamed.source!r} has values of other types than its start; reading it whole")
            return None
        raise


def _copied(spec: TableSpec, warehouse, catalog, progress, paths, rows: int, renamed: list[str], started: float) -> dg.MaterializeResult:
    """Record the copied table in the catalog, and its materialization's metadata."""
    columns = warehouse.columns(spec.name)
    preview = warehouse.preview(spec.name)
    catalog.put(spec.kind, spec.catalog_name, spec.to_dict(), {"rows": rows, "columns": columns})
    progress(f"table {spec.name}: {rows} rows, columns {', '.join(columns)}")
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": rows,
            "dagster/column_schema": column_schema(preview),
            "sources": dg.MetadataValue.json([str(path) for path in paths]),
            "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
            **({"renamed_columns": dg.MetadataValue.json(renamed)} if renamed else {}),
            "seconds": round(time.perf_counter() - started, 2),
        }
    )


def saved_table_asset(spec: SavedTableSpec) -> dg.AssetSpec:
    """A table no statement rebuilds: Dagster observes it (statements that change it report materializations)."""
    return dg.AssetSpec(
        spec.asset_key,
        deps=[table_key(name) for name in spec.tables if name != spec.name],
        group_name="tables",
        kinds={"duckdb"},
        description=f"{'A view' if spec.view else 'Plain data'}, made by: {spec.statement}",
    )


def _report_embedding(context, embedding: RefreshedEmbedding, vector_store: VectorStoreResource, rows: int, seconds: float) -> None:
    """The embedding and collection assets changed with the table: their materializations say so."""
    context.log_event(dg.AssetMaterialization(asset_key=embedding.spec.asset_key, metadata=embedding.metadata(rows, seconds)))
    context.log_event(dg.AssetMaterialization(asset_key=embedding.spec.collection_key, metadata=embedding.collection_metadata(vector_store)))
