"""SEARCH and PRINT as on-demand Dagster ops: they read the latest materialized assets and
re-run nothing upstream. Launch the `search` job from the UI with a statement as config, or let
the SQL frontend run it."""

import dagster as dg
import pandas as pd
from pydantic import Field

from resources import CatalogResource, ModelRegistryResource, VectorStoreResource, WarehouseResource, WorkspaceResource
from sql_frontend.parser import parse_statement
from thanosql_assets.search.engine import QueryEngine

RESULTS_IO_MANAGER = "search_results_io_manager"


class StatementConfig(dg.Config):
    sql: str = Field(description="A SEARCH, PRINT IMAGE or SELECT statement")


def result_preview(rows: pd.DataFrame, limit: int = 10) -> str:
    """Markdown preview without the (long) embedding vectors."""
    vector_columns = [c for c in rows.columns if len(rows) and hasattr(rows[c].iloc[0], "__len__") and not isinstance(rows[c].iloc[0], str)]
    return rows.drop(columns=vector_columns).head(limit).to_markdown(index=False)


@dg.op(out=dg.Out(pd.DataFrame, io_manager_key=RESULTS_IO_MANAGER), tags={"kind": "thanosql"})
def run_statement(
    context: dg.OpExecutionContext,
    config: StatementConfig,
    workspace: WorkspaceResource,
    warehouse: WarehouseResource,
    catalog: CatalogResource,
    model_registry: ModelRegistryResource,
    vector_store: VectorStoreResource,
) -> pd.DataFrame:
    statement = parse_statement(config.sql)
    engine = QueryEngine(
        workspace=workspace,
        warehouse=warehouse,
        catalog=catalog,
        model_registry=model_registry,
        vector_store=vector_store,
        sql=statement.sql,
    )
    rows = engine.run(statement.expression)
    context.add_output_metadata({"rows": len(rows), "preview": dg.MetadataValue.md(result_preview(rows))})
    return rows


@dg.job(name="search", executor_def=dg.in_process_executor, tags={"thanosql/kind": "query"})
def search_job():
    run_statement()
