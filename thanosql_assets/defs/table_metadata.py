"""A table's row count and column schema, as Dagster shows them on the table's asset page.

The UI's column list is the `dagster/column_schema` of the table's latest materialization, so
every statement that rewrites a table (COPY, CONVERT, CREATE TABLE ... USING) reports it.
"""

import dagster as dg
import pandas as pd

from resources import WarehouseResource
from resources.warehouse import quote, vector_columns


def table_metadata(warehouse: WarehouseResource, name: str, rows: int) -> dict[str, object]:
    return {"dagster/row_count": rows, "dagster/column_schema": column_schema(warehouse.preview(name))}


def report_table_change(
    warehouse: WarehouseResource, instance: dg.DagsterInstance, table: str, statement: str, extra: dict[str, object] | None = None
) -> int:
    """Record that `statement` changed `table` outside a Dagster run (SQL, DELETE MODEL, SEARCH's
    table_name) as a materialization of its asset: rows, columns, the statement and `extra`.
    Returns the row count."""
    rows = int(warehouse.query(f"SELECT count(*) AS n FROM {quote(table)}")["n"].iloc[0])
    metadata = {**table_metadata(warehouse, table, rows), "statement": statement, **(extra or {})}
    instance.report_runless_asset_event(dg.AssetMaterialization(asset_key=dg.AssetKey(["table", table]), metadata=metadata))
    return rows


def column_schema(preview: pd.DataFrame) -> dg.TableSchema:
    """Each column's name and type, judged from a few rows; embedding columns as float32[<dim>]."""
    vectors = set(vector_columns(preview))
    return dg.TableSchema(
        columns=[
            dg.TableColumn(name, f"float32[{len(preview[name].dropna().iloc[0])}]" if name in vectors else str(dtype))
            for name, dtype in preview.dtypes.items()
        ]
    )


def preview_markdown(rows: pd.DataFrame, limit: int = 10) -> str:
    """The first rows as a Markdown table, without embedding columns (a vector of hundreds of
    numbers per row would fill the page; the column schema lists them)."""
    return rows.drop(columns=vector_columns(rows)).head(limit).to_markdown(index=False)
