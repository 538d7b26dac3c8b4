"""COPY: one asset per table, copied from a CSV file into the table store."""

import time

import dagster as dg

from resources import CatalogResource, WarehouseResource, WorkspaceResource
from thanosql.errors import DataError
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import TableSpec


def table_asset(spec: TableSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=spec.asset_key,
        deps=[dg.AssetKey(["dataset", name]) for name in spec.datasets],
        group_name="tables",
        kinds={"duckdb"},
        description="; ".join(f'COPY {spec.name} FROM "{source}"' for source in spec.sources),
    )
    def _table(
        context: dg.AssetExecutionContext,
        workspace: WorkspaceResource,
        warehouse: WarehouseResource,
        catalog: CatalogResource,
    ) -> dg.MaterializeResult:
        started = time.perf_counter()
        paths = [workspace.resolve(source) for source in spec.sources]
        for source, path in zip(spec.sources, paths):
            if not path.is_file():
                raise DataError(
                    f'COPY {spec.name}: file "{source}" does not exist (looked at {path}).',
                    hint="Relative paths start at the workspace directory; GET THANOSQL DATASET downloads the tutorial files.",
                )
        rows = warehouse.replace_table_from_csv(spec.name, paths)
        columns = warehouse.columns(spec.name)
        preview = warehouse.preview(spec.name)
        catalog.put(spec.kind, spec.catalog_name, spec.to_dict(), {"rows": rows, "columns": columns})
        Progress(context)(f"table {spec.name}: {rows} rows, columns {', '.join(columns)}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": rows,
                "dagster/column_schema": dg.TableSchema(
                    columns=[dg.TableColumn(name, str(dtype)) for name, dtype in preview.dtypes.items()]
                ),
                "sources": dg.MetadataValue.json([str(path) for path in paths]),
                "preview": dg.MetadataValue.md(preview.to_markdown(index=False)),
                "seconds": round(time.perf_counter() - started, 2),
            }
        )

    return _table
