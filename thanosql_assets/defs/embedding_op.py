"""The op of an unpartitioned embedding: CONVERT's (and CREATE TABLE ... USING's) one Dagster run.

It materializes `embedding/<table>/<column>` and `collection/<table>/<column>_vectors` (and
`table/<table>` when the rows come from a folder): the query's images are embedded
(`defs.embeddings`), then the table is switched to the new collection (`defs.table_refresh`: a
table the CONVERT makes comes with what reads it). A partitioned embedding's ops are in `defs.generations`.
"""

import time

import dagster as dg

from resources import CatalogResource, ModelRegistryResource, VectorStoreResource, WarehouseResource, WorkspaceResource
from thanosql_assets.defs.embeddings import (
    EmbeddingStores,
    asset_specs_of_embedding,
    embedding_op_name,
    embedding_rows,
    refresh_vectors,
)
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import EmbeddingSpec
from thanosql_assets.defs.table_refresh import switch_table


class EmbedConfig(dg.Config):
    rebuild: bool = False  # embed every image again, even those whose vectors are in the collection


def embedding_assets(spec: EmbeddingSpec) -> dg.AssetsDefinition:
    specs = asset_specs_of_embedding(spec)

    @dg.multi_asset(name=embedding_op_name(spec), specs=specs)
    def _embed(
        context: dg.AssetExecutionContext,
        config: EmbedConfig,
        workspace: WorkspaceResource,
        warehouse: WarehouseResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
        vector_store: VectorStoreResource,
    ):
        progress = Progress(context)
        started = time.perf_counter()
        rows = embedding_rows(spec, workspace, warehouse)
        stores = EmbeddingStores(workspace, catalog, model_registry, vector_store)
        refreshed = refresh_vectors(spec, rows[spec.image_col], stores, progress, rebuild=config.rebuild, run_id=context.run_id)
        yield from switch_table(context, refreshed, rows, warehouse, stores, progress, started)
        yield dg.MaterializeResult(asset_key=spec.asset_key, metadata=refreshed.metadata(refreshed.rows, time.perf_counter() - started))
        yield dg.MaterializeResult(asset_key=spec.collection_key, metadata=refreshed.collection_metadata(vector_store))

    return _embed


