"""The Dagster code location: the one composition root, allowed to import every layer.

`dagster dev -w workspace.yaml` (or `dagster api grpc -m thanosql_assets.definitions`) loads
`defs`, with THANOSQL_HOME pointing at the workspace:

- one asset per ThanoSQL object in the catalog (`thanosql_assets.defs`), and the retraining
  schedules of models built with OPTIONS (schedule=...);
- the `statement` job, which materializes a statement the SQL server planned;
- the `embedding_partition` job: one partition of a partitioned CONVERT, submitted by the SQL server;
- the `search` job: SEARCH, PREDICT, PRINT IMAGE and SELECT statements launched from the UI, parsed,
  planned and evaluated by the SQL frontend over the latest materialized assets (re-running
  nothing upstream), with a preview of the rows as metadata.
"""


import dagster as dg
import pandas as pd
from pydantic import Field

from resources import (
    CatalogResource,
    DatasetSourceResource,
    ModelRegistryResource,
    ModelSourceResource,
    Settings,
    VectorStoreResource,
    WarehouseResource,
    WorkspaceResource,
    build_resources,
)
from sql_frontend.execution.runner import StatementRunner
from sql_frontend.language.parser import parse_statement
from sql_frontend.planning.planner import Planner
from sql_frontend.planning.plans import Query
from thanosql.errors import ThanoSQLError
from thanosql_assets.defs.objects import build_definitions, catalog_specs
from thanosql_assets.defs.partition_job import partition_job
from thanosql_assets.defs.statement_job import statement_job
from thanosql_assets.defs.table_metadata import preview_markdown

RESULTS_IO_MANAGER = "search_results_io_manager"


class SearchConfig(dg.Config):
    sql: str = Field(description="A SEARCH, PREDICT, PRINT IMAGE, LIST or SELECT statement")


@dg.op(out=dg.Out(pd.DataFrame, io_manager_key=RESULTS_IO_MANAGER), tags={"kind": "thanosql"})
def run_statement(
    context: dg.OpExecutionContext,
    config: SearchConfig,
    workspace: WorkspaceResource,
    warehouse: WarehouseResource,
    catalog: CatalogResource,
    model_registry: ModelRegistryResource,
    vector_store: VectorStoreResource,
    model_source: ModelSourceResource,
    dataset_source: DatasetSourceResource,
) -> pd.DataFrame:
    statement = parse_statement(config.sql)
    plan = Planner(workspace=workspace, warehouse=warehouse, catalog=catalog).plan(statement)
    if not isinstance(plan, Query) or plan.converts:
        raise ThanoSQLError(
            "The search job runs queries only: SEARCH, PREDICT, PRINT IMAGE and SELECT (without CONVERT).",
            hint="Run statements that create or change objects with the SQL frontend (thanosql.connect(), the CLI or %%thanosql).",
        )
    resources = {
        "workspace": workspace, "warehouse": warehouse, "catalog": catalog, "model_registry": model_registry,
        "vector_store": vector_store, "model_source": model_source, "dataset_source": dataset_source,
    }
    rows = StatementRunner(resources, instance=lambda: context.instance).run(plan, statement)
    context.add_output_metadata({"rows": len(rows), "preview": dg.MetadataValue.md(preview_markdown(rows))})
    return rows


@dg.job(name="search", executor_def=dg.in_process_executor, tags={"thanosql/kind": "query"})
def search_job():
    run_statement()


@dg.definitions
def defs() -> dg.Definitions:
    settings = Settings.from_env()
    settings.ensure_dirs()
    resources = build_resources(settings)
    return build_definitions(
        catalog_specs(resources["catalog"]),
        {**resources, RESULTS_IO_MANAGER: dg.mem_io_manager},
        jobs=[search_job, statement_job, partition_job],
    )
