"""COPY: one asset per table, copied from its files into the table store.

A lone CSV file streams into the table store a block at a time (unless embeddings read the table:
refreshing them needs its rows at hand); other sources are read whole first.

A COPY keeps the embeddings that read its table true, in its own run and one transaction
(`defs.table_refresh`): the table's own embedding columns, and the tables CONVERT made from it.
"""

import time

import dagster as dg

from resources import (
    CatalogResource,
    ModelRegistryResource,
    VectorStoreResource,
    WarehouseResource,
    WorkspaceResource,
)
from thanosql.errors import DataError
from thanosql_assets.defs.csv_files import StreamedCsv
from thanosql_assets.defs.embeddings import EmbeddingStores
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import SavedTableSpec, TableSpec, table_key
from thanosql_assets.defs.table_files import read_table_files, streamed_table_file
from thanosql_assets.defs.table_metadata import column_schema, preview_markdown
from thanosql_assets.defs.table_refresh import publish_replaced, reading_embeddings, replace_with_embeddings


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
        # A lone CSV file without embeddings to refresh streams into the table store a block at a time.
        streamed = None if reading_embeddings(catalog, spec.name) else streamed_table_file(files)
        if streamed is not None:
            rows = _replace_streamed(warehouse, spec.name, *streamed, progress)
            if rows is not None:
                return _copied(spec, warehouse, catalog, progress, paths, rows, streamed[1], started)
        data, renamed = read_table_files(files, workspace.display_path, spec.sheets)
        for note in renamed:
            progress(f"COPY {spec.name}: {note}")
        stores = EmbeddingStores(workspace, catalog, model_registry, vector_store)
        replaced = replace_with_embeddings(spec.name, data, warehouse, stores, progress, context.run_id)
        publish_replaced(context, replaced, stores, warehouse, name=spec.name, progress=progress, started=started)
        return _copied(spec, warehouse, catalog, progress, paths, replaced.rows[spec.name], renamed, started)

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
            "preview": dg.MetadataValue.md(preview_markdown(preview)),
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
