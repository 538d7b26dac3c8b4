"""CONVERT and CREATE TABLE ... USING: a table's images embedded by a model, and their Qdrant collection.

One Dagster op materializes `embedding/<table>/<model>` (the column `<model>_simclr`) and
`collection/<table>/<model>` (one Qdrant point per distinct image, cosine distance), plus
`table/<table>` when the rows come from a folder of images.

Incremental: when the serving model version is the one that built the current collection,
images already in it keep their vectors and only new images are embedded (a COPY that adds
rows, new files in a folder); vectors of images no longer in the table are dropped. A new model
version, no collection yet, or `rebuild` (what a CONVERT statement asks for: image files may
have changed) embeds everything. Either way the new collection is published
under a new name, then the table is replaced in one DuckDB transaction that also records, in
the table's comment, the collection and model version of its embedding column (the
*generation*). SEARCH reads the generation with the rows and checks it with every later read, so
it sees the old state or the new one, never a mix; the previous collection stays until the next
switch for searches that started before this one.

Embeddings are stored L2-normalized (cosine similarity is then a dot product; Qdrant normalizes
on insert anyway, so reused and fresh vectors are alike). When `table_name` is the table being
queried the table is updated in place: every row keeps its place and columns, and rows whose
image the query returned get their embedding. Otherwise a new table is written from the rows.
"""

import datetime as dt
import re
import time
import uuid

import dagster as dg
import numpy as np
import pandas as pd

from resources import (
    CatalogResource,
    Generation,
    ModelRegistryResource,
    VectorStoreResource,
    WarehouseResource,
    WorkspaceResource,
)
from resources.warehouse import quote
from resources.workspace import suffix_set
from thanosql.errors import DataError, ObjectNotFoundError
from thanosql_assets.defs.checks import require_column
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import QUERY_DIALECT, EmbeddingSpec, model_key, table_key
from thanosql_assets.models.images import check_files_exist
from thanosql_assets.models.vectors import l2_normalize


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", name)


def collection_name(spec: EmbeddingSpec) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{_safe(f'{spec.table}__{spec.model}')}__{stamp}_{uuid.uuid4().hex[:6]}"


def with_vector_column(rows: pd.DataFrame, column: str, keys, vectors_by_key: dict[str, np.ndarray], dim: int):
    """Arrow table of `rows` plus a FLOAT[dim] column (null where a row's image was not embedded)."""
    import pyarrow as pa

    table = pa.Table.from_pandas(rows.drop(columns=[column], errors="ignore"), preserve_index=False)
    missing = np.full(dim, np.nan, dtype=np.float32)
    stacked = np.stack([vectors_by_key.get(key, missing) for key in keys]) if len(keys) else np.zeros((0, dim), np.float32)
    mask = np.array([key not in vectors_by_key for key in keys], dtype=bool)
    values = pa.FixedSizeListArray.from_arrays(pa.array(stacked.ravel(), type=pa.float32()), dim, mask=pa.array(mask))
    return table.append_column(column, values)


def folder_rows(workspace: WorkspaceResource, spec: EmbeddingSpec) -> pd.DataFrame:
    """One row per image file under the folder (recursively) whose suffix is in `file_types`."""
    folder = workspace.resolve(spec.folder)
    if not folder.is_dir():
        raise ObjectNotFoundError(f"Folder {spec.folder!r} does not exist (looked at {folder}).", hint="Relative paths start at the workspace directory.")
    files = workspace.files_under(folder, spec.file_types)
    if not files:
        raise DataError(
            f"Folder {spec.folder!r} holds no files of type {', '.join(sorted(suffix_set(spec.file_types)))}.",
            hint="Check the folder path and file_type, e.g. file_type=['.jpg', '.png'].",
        )
    return pd.DataFrame(
        {spec.image_col: [workspace.display_path(path) for path in files], "filename": [path.name for path in files]}
    )


class EmbedConfig(dg.Config):
    rebuild: bool = False  # embed every image again, even those whose vectors are in the collection


def embedding_op_name(spec: EmbeddingSpec) -> str:
    return _safe(f"embed__{spec.table}__{spec.model}")


def rebuild_run_config(spec: EmbeddingSpec) -> dict:
    return {"ops": {embedding_op_name(spec): {"config": {"rebuild": True}}}}


def embedding_assets(spec: EmbeddingSpec) -> dg.AssetsDefinition:
    source = f"FROM '{spec.folder}'" if spec.folder else f"AS {spec.query}"
    specs = [
        dg.AssetSpec(
            spec.asset_key,
            deps=[model_key(spec.model), *(table_key(name) for name in spec.tables or [spec.table])],
            group_name="embeddings",
            kinds={"duckdb", "pytorch"},
            description=(
                f"CREATE TABLE {spec.table} USING {spec.model} {source}"
                if spec.folder
                else f"CONVERT USING {spec.model} OPTIONS (table_name='{spec.table}') {source}"
            ),
            automation_condition=dg.AutomationCondition.eager(),
        ),
        dg.AssetSpec(
            spec.collection_key,
            deps=[spec.asset_key],
            group_name="embeddings",
            kinds={"qdrant"},
            description=f"Qdrant collection of the images of {spec.table} embedded by {spec.model} (cosine)",
        ),
    ]
    if spec.folder:
        specs.insert(
            0,
            dg.AssetSpec(
                table_key(spec.table),
                group_name="tables",
                kinds={"duckdb"},
                description=f"The image files under '{spec.folder}' ({', '.join(spec.file_types)}), embedded by {spec.model}",
            ),
        )

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
        model_entry = catalog.get("model", spec.model)
        if model_entry is None:
            raise ObjectNotFoundError(f"Model {spec.model!r} does not exist.", hint="Create it with BUILD MODEL first.")
        version = model_entry.state["version"]

        rows = folder_rows(workspace, spec) if spec.folder else warehouse.query_from(spec.query, QUERY_DIALECT)
        require_column(spec.image_col, list(rows.columns), rows="the rows to embed")
        keys = list(dict.fromkeys(rows[spec.image_col].astype(str)))

        previous = catalog.get(spec.kind, spec.catalog_name)
        previous_collection = previous.state.get("collection") if previous else None
        reusable = (
            not config.rebuild
            and previous is not None
            and previous.state.get("model_version") == version
            and vector_store.exists(previous_collection)
        )
        reused = vector_store.vectors(previous_collection, keys) if reusable else {}
        new_keys = [key for key in keys if key not in reused]
        new_paths = [workspace.resolve(key) for key in new_keys]
        check_files_exist(new_paths, spec.image_col)
        embed_started = time.perf_counter()
        embedder = model_registry.load(spec.model, version)
        new_vectors = (
            l2_normalize(embedder.embed_files(new_paths, batch_size=spec.batch_size))
            if new_keys
            else np.zeros((0, embedder.embedding_dim), np.float32)
        )
        embed_seconds = time.perf_counter() - embed_started
        progress(
            f"embedded {len(new_keys)} new images with {spec.model} v{version} in {embed_seconds:.1f} s"
            + (f"; reused {len(reused)} vectors" if reusable else "")
        )

        collection = collection_name(spec)
        if reusable:
            stale = sorted(set(vector_store.all_keys(previous_collection)) - set(keys))
            points = vector_store.extend_collection(previous_collection, collection, new_keys, new_vectors, stale)
        else:
            points = vector_store.build_collection(collection, new_keys, new_vectors)
        vectors_by_key = {**reused, **dict(zip(new_keys, new_vectors))}
        dim = embedder.embedding_dim
        in_place = not spec.folder and spec.table in spec.tables
        target_rows = warehouse.query(f"SELECT * FROM {quote(spec.table)}") if in_place else rows
        data = with_vector_column(target_rows, spec.column, target_rows[spec.image_col].astype(str).tolist(), vectors_by_key, dim)
        generation = Generation(spec.table, spec.column, collection, str(version), spec.image_col)
        try:
            row_count = warehouse.replace_table(spec.table, data, index_on=[spec.image_col], generation=generation)
        except BaseException:
            vector_store.drop_collection(collection)
            raise
        # The previous collection is retired, not dropped: a SEARCH that began before the switch
        # still reads it. The one retired before it goes now.
        retired = previous.state.get("retired_collection") if previous else None
        catalog.put(
            spec.kind,
            spec.catalog_name,
            spec.to_dict(),
            {
                "collection": collection,
                "retired_collection": previous_collection,
                "model_version": version,
                "vectors": points,
                "rows": row_count,
                "dim": dim,
            },
        )
        vector_store.point_alias(_safe(f"{spec.table}__{spec.model}"), collection)
        if retired not in (None, collection, previous_collection):
            vector_store.drop_collection(retired)
        progress(f"table {spec.table}: column {spec.column} set on {row_count} rows; collection {collection} holds {points} vectors")
        if spec.folder:
            yield dg.MaterializeResult(
                asset_key=table_key(spec.table),
                metadata={"dagster/row_count": row_count, "folder": dg.MetadataValue.path(str(workspace.resolve(spec.folder)))},
            )
        yield dg.MaterializeResult(
            asset_key=spec.asset_key,
            metadata={
                "table": spec.table,
                "column": spec.column,
                "dagster/row_count": row_count,
                "embedded_images": len(new_keys),
                "reused_vectors": len(reused),
                "embedding_dim": dim,
                "batch_size": spec.batch_size,
                "images_per_second": round(len(new_keys) / max(embed_seconds, 1e-9), 1),
                "model_version": int(version),
                "seconds": round(time.perf_counter() - started, 2),
            },
        )
        yield dg.MaterializeResult(
            asset_key=spec.collection_key,
            metadata={"collection": collection, "vector_count": points, "distance": "cosine", "path": dg.MetadataValue.path(vector_store.location)},
        )

    return _embed
