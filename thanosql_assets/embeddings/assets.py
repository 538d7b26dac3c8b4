"""CONVERT: the embeddings of a table's images by a model, and the Qdrant collection indexing them.

One Dagster op materializes two assets: `embedding/<table>/<model>` (the column
`<model>_simclr` of the table) and `collection/<table>/<model>` (one Qdrant point per distinct
image, cosine distance). The collection is built under a new name first; then the table is
replaced in one DuckDB statement and the catalog switched to the new collection, so SEARCH sees
either the old state or the new one, never a mix.

When `table_name` is the table being queried, the table is updated in place: every row keeps
its place and columns, and rows whose image the query returned get their embedding. Otherwise
a new table is written from the query's rows.
"""

import datetime as dt
import re
import time
import uuid

import dagster as dg
import numpy as np

from resources import CatalogResource, ModelRegistryResource, VectorStoreResource, WarehouseResource, WorkspaceResource
from sql_frontend.errors import ObjectNotFoundError
from thanosql_assets.progress import Progress
from thanosql_assets.queries import run_query
from thanosql_assets.specs import EmbeddingSpec, model_key, spec_to_dict, table_key


def collection_name(spec: EmbeddingSpec) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    safe = re.sub(r"[^A-Za-z0-9_]+", "_", f"{spec.table}__{spec.model}")
    return f"{safe}__{stamp}_{uuid.uuid4().hex[:6]}"


def with_vector_column(rows, column: str, keys, vectors_by_key: dict[str, np.ndarray], dim: int):
    """Arrow table of `rows` plus a FLOAT[dim] column (null where a row's image was not embedded)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(rows.drop(columns=[column], errors="ignore"), preserve_index=False)
    missing = np.full(dim, np.nan, dtype=np.float32)
    stacked = np.stack([vectors_by_key.get(key, missing) for key in keys]) if len(keys) else np.zeros((0, dim), np.float32)
    mask = np.array([key not in vectors_by_key for key in keys], dtype=bool)
    values = pa.FixedSizeListArray.from_arrays(pa.array(stacked.ravel(), type=pa.float32()), dim, mask=pa.array(mask))
    return table.append_column(column, values)


def embedding_assets(spec: EmbeddingSpec) -> dg.AssetsDefinition:
    @dg.multi_asset(
        name=re.sub(r"[^A-Za-z0-9_]+", "_", f"convert__{spec.table}__{spec.model}"),
        specs=[
            dg.AssetSpec(
                spec.asset_key,
                deps=[model_key(spec.model), *(table_key(name) for name in spec.tables)],
                group_name="embeddings",
                kinds={"duckdb", "pytorch"},
                description=f"CONVERT USING {spec.model} OPTIONS (table_name='{spec.table}') AS {spec.query}",
            ),
            dg.AssetSpec(
                spec.collection_key,
                deps=[spec.asset_key],
                group_name="embeddings",
                kinds={"qdrant"},
                description=f"Qdrant collection of the images of {spec.table} embedded by {spec.model} (cosine)",
            ),
        ],
    )
    def _convert(
        context: dg.AssetExecutionContext,
        workspace: WorkspaceResource,
        warehouse: WarehouseResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
        vector_store: VectorStoreResource,
    ):
        from thanosql_assets.models.images import check_files_exist

        progress = Progress(context)
        started = time.perf_counter()
        model_entry = catalog.get("model", spec.model)
        if model_entry is None:
            raise ObjectNotFoundError(f"Model {spec.model!r} does not exist.", hint="Create it with BUILD MODEL first.")
        version = model_entry.state["version"]
        embedder = model_registry.load(spec.model, version)

        rows = run_query(spec.query, warehouse)
        if spec.image_col not in rows.columns:
            raise ObjectNotFoundError(
                f"CONVERT USING {spec.model}: image_col {spec.image_col!r} is not a column of the query's rows "
                f"(columns: {', '.join(rows.columns)}).",
                hint="Set OPTIONS (image_col='<column with image paths>').",
            )
        keys = list(dict.fromkeys(rows[spec.image_col].astype(str)))
        paths = [workspace.resolve(key) for key in keys]
        check_files_exist(paths, spec.image_col)
        embed_started = time.perf_counter()
        vectors = embedder.embed_files(paths)
        embed_seconds = time.perf_counter() - embed_started
        progress(
            f"embedded {len(keys)} images with {spec.model} v{version} ({vectors.shape[1]}-d) "
            f"in {embed_seconds:.1f} s ({len(keys) / max(embed_seconds, 1e-9):,.0f} images/s)"
        )

        collection = collection_name(spec)
        points = vector_store.build_collection(collection, keys, vectors)
        vectors_by_key = dict(zip(keys, vectors))
        in_place = spec.table in spec.tables
        target_rows = run_query(f'SELECT * FROM "{spec.table}"', warehouse) if in_place else rows
        data = with_vector_column(
            target_rows, spec.column, target_rows[spec.image_col].astype(str).tolist(), vectors_by_key, vectors.shape[1]
        )
        try:
            row_count = warehouse.replace_table(spec.table, data)
        except BaseException:
            vector_store.drop_collection(collection)
            raise
        previous = catalog.get(spec.kind, spec.catalog_name)
        catalog.put(
            spec.kind,
            spec.catalog_name,
            spec_to_dict(spec),
            {"collection": collection, "model_version": version, "vectors": points, "rows": row_count, "dim": int(vectors.shape[1])},
        )
        if previous is not None and previous.state.get("collection") not in (None, collection):
            vector_store.drop_collection(previous.state["collection"])
        progress(f"table {spec.table}: column {spec.column} set on {row_count} rows; collection {collection} holds {points} vectors")
        seconds = round(time.perf_counter() - started, 2)
        yield dg.MaterializeResult(
            asset_key=spec.asset_key,
            metadata={
                "table": spec.table,
                "column": spec.column,
                "dagster/row_count": row_count,
                "embedded_images": len(keys),
                "embedding_dim": int(vectors.shape[1]),
                "images_per_second": round(len(keys) / max(embed_seconds, 1e-9), 1),
                "model_version": int(version),
                "seconds": seconds,
            },
        )
        yield dg.MaterializeResult(
            asset_key=spec.collection_key,
            metadata={"collection": collection, "vector_count": points, "distance": "cosine", "path": dg.MetadataValue.path(vector_store.path)},
        )

    return _convert
