"""CONVERT and CREATE TABLE ... USING: a table's images embedded by a model, and their Qdrant collection.

Its Dagster op (`defs.embedding_op`, or `defs.generations`' when partitioned) materializes
`embedding/<table>/<column>` (the column `<model>_simclr`) and
`collection/<table>/<column>_vectors` (one Qdrant point per distinct image, cosine distance),
plus `table/<table>`, the table it rewrote with the column (a new asset when the rows come from a
folder of images).

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
image the query returned get their embedding. Otherwise a new table is written from the rows,
with the embedding columns CONVERT added to it in place refreshed over them, and the tables made
from it brought along (`defs.table_refresh`).
"""

import dataclasses
import datetime as dt
import json
import logging
import re
import shutil
import time
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from resources import (
    CatalogEntry,
    CatalogResource,
    Generation,
    ModelRegistryResource,
    VectorStoreResource,
    WarehouseResource,
    WorkspaceResource,
)
from thanosql.errors import ObjectNotFoundError
from thanosql_assets.defs.checks import image_path_texts, require_column, require_image_paths
from thanosql_assets.defs.folders import folder_rows
from thanosql_assets.defs.journal import journal_collection
from thanosql_assets.defs.progress import counted
from thanosql_assets.defs.skipped import skipped_markdown, skipped_summary
from thanosql_assets.defs.specs import QUERY_DIALECT, EmbeddingSpec, model_key, table_key
from thanosql_assets.models.images import check_files_exist
from thanosql_assets.models.vectors import l2_normalize


def _safe(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_]+", "_", name)


def collection_name(spec: EmbeddingSpec) -> str:
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    return f"{_safe(f'{spec.table}__{spec.model}')}__{stamp}_{uuid.uuid4().hex[:6]}"


def with_vector_column(rows, column: str, keys, vectors_by_key: dict[str, np.ndarray], dim: int):
    """Arrow table of `rows` (DataFrame or Arrow table) plus a FLOAT[dim] column (null where a row's
    image was not embedded), in place of any column of that name."""
    import pyarrow as pa

    table = rows if isinstance(rows, pa.Table) else pa.Table.from_pandas(rows, preserve_index=False)
    if column in table.column_names:
        table = table.drop_columns([column])
    missing = np.full(dim, np.nan, dtype=np.float32)
    stacked = np.stack([vectors_by_key.get(key, missing) for key in keys]) if len(keys) else np.zeros((0, dim), np.float32)
    mask = np.array([key not in vectors_by_key for key in keys], dtype=bool)
    values = pa.FixedSizeListArray.from_arrays(pa.array(stacked.ravel(), type=pa.float32()), dim, mask=pa.array(mask))
    return table.append_column(column, values)


@dataclass(frozen=True)
class EmbeddingStores:
    """What refreshing an embedding reads and writes besides the table."""

    workspace: WorkspaceResource
    catalog: CatalogResource
    model_registry: ModelRegistryResource
    vector_store: VectorStoreResource

    @classmethod
    def of(cls, resources: dict[str, Any]) -> "EmbeddingStores":
        return cls(*(resources[name] for name in ("workspace", "catalog", "model_registry", "vector_store")))


@dataclass
class RefreshedEmbedding:
    """An embedding's vectors for a set of images, in a new collection that no table points at yet."""

    spec: EmbeddingSpec
    collection: str
    previous: CatalogEntry | None  # the catalog entry before this refresh
    model_version: str
    vectors_by_key: dict[str, np.ndarray]
    dim: int
    points: int
    embedded: int  # images embedded now
    reused: int  # vectors taken from the previous collection
    embed_seconds: float
    skipped: list[tuple[str, str]]  # (image, why) of images left out under on_error='skip'
    rows: int = 0  # the table's rows once switched to this collection
    model_run: str | None = None  # the MLflow run that logged `model_version`

    @property
    def generation(self) -> Generation:
        return Generation(self.spec.table, self.spec.column, self.collection, str(self.model_version), self.spec.image_col, self.model_run)

    def add_column(self, rows) -> Any:
        """`rows` (DataFrame or Arrow table) as an Arrow table with the embedding column set from the
        vectors (null where none)."""
        images = rows.column(self.spec.image_col).to_pylist() if hasattr(rows, "column_names") else rows[self.spec.image_col].tolist()
        keys = [str(image) for image in images]
        return with_vector_column(rows, self.spec.column, keys, self.vectors_by_key, self.dim)

    def metadata(self, row_count: int, seconds: float) -> dict[str, Any]:
        return {
            "table": self.spec.table,
            "column": self.spec.column,
            "dagster/row_count": row_count,
            "embedded_images": self.embedded,
            "reused_vectors": self.reused,
            "embedding_dim": self.dim,
            "batch_size": self.spec.batch_size,
            "images_per_second": round(self.embedded / max(self.embed_seconds, 1e-9), 1),
            "model_version": int(self.model_version),
            "seconds": round(seconds, 2),
            "skipped_images": len(self.skipped),
            **({"skipped": dg.MetadataValue.md(skipped_markdown(self.skipped))} if self.skipped else {}),
        }

    def collection_metadata(self, vector_store: VectorStoreResource) -> dict[str, Any]:
        return {
            "collection": self.collection,
            "vector_count": self.points,
            "distance": "cosine",
            "path": dg.MetadataValue.path(vector_store.location),
        }


@dataclass(frozen=True)
class ImageSelection:
    """Which images a refresh of an embedding embeds now, and which keep their vectors."""

    version: str  # the model version that embeds them
    keys: list[str]  # every distinct image path of the rows, in their order
    previous: CatalogEntry | None  # the embedding's catalog entry before this refresh
    reusable: bool  # the previous collection's vectors stand (same model version, no rebuild)
    reused: dict[str, np.ndarray]  # vectors of `keys` that the previous collection holds, when reusable
    new_keys: list[str]  # the images to embed now: the other `keys`
    skipped: list[tuple[str, str]]  # (image, why) left out so far: rows without a path, under on_error='skip'
    model_run: str | None = None  # the MLflow run that logged `version` (see `ModelRegistryResource.load`)

    @property
    def previous_collection(self) -> str | None:
        return self.previous.state.get("collection") if self.previous else None


def select_images(spec: EmbeddingSpec, image_paths: pd.Series, stores: EmbeddingStores, *, rebuild: bool) -> ImageSelection:
    """What refreshing `spec` over the rows' `image_paths` embeds with the model's serving version.

    Images the previous collection holds keep their vectors when the model version is the same
    and `rebuild` is off. Under on_error='raise', rows without a path and missing files are
    errors here, before any decoding (every missing file in one message).
    """
    model_entry = stores.catalog.get("model", spec.model)
    if model_entry is None:
        raise ObjectNotFoundError(f"Model {spec.model!r} does not exist.", hint="Create it with BUILD MODEL first.")
    version, run = model_entry.state["version"], model_entry.state.get("run_id")
    values = image_path_texts(image_paths)
    keys = list(dict.fromkeys(value for value in values if value is not None))
    skipped = []
    if None in values:
        if spec.on_error == "raise":
            check_files_exist(list(image_paths), spec.image_col)  # says how many rows have no path, and how to leave them out
        skipped.append(("NULL", f"{values.count(None)} rows have no image path"))
    previous = stores.catalog.get(spec.kind, spec.catalog_name)
    previous_collection = previous.state.get("collection") if previous else None
    reusable = (
        not rebuild
        and previous is not None
        and previous.state.get("model_version") == version
        and previous.state.get("model_run") in (None, run)  # None: recorded before runs were
        and stores.vector_store.exists(previous_collection)
    )
    reused = stores.vector_store.vectors(previous_collection, keys) if reusable else {}
    new_keys = [key for key in keys if key not in reused]
    if spec.on_error == "raise":
        check_files_exist([stores.workspace.resolve(key) for key in new_keys], spec.image_col)
    return ImageSelection(version, keys, previous, reusable, reused, new_keys, skipped, run)


def refresh_vectors(
    spec: EmbeddingSpec, image_paths: pd.Series, stores: EmbeddingStores, progress, *, rebuild: bool, run_id: str
) -> RefreshedEmbedding:
    """Vectors for the distinct `image_paths` with the model's serving version, in a new collection.

    Images the previous collection holds keep their vectors when the model version is the same
    and `rebuild` is off; the others are embedded now. No table points at the new collection yet:
    the caller switches the table (and drops the collection if that fails), then `publish`es.
    """
    selection = select_images(spec, image_paths, stores, rebuild=rebuild)
    new_paths = [stores.workspace.resolve(key) for key in selection.new_keys]
    embed_started = time.perf_counter()
    # The version and run are the catalog's: select_images just read them.
    embedder = stores.model_registry.load(spec.model, selection.version, selection.model_run, listed=True)
    embedded = embedder.embed_files_checked(new_paths, batch_size=spec.batch_size, column=spec.image_col, on_error=spec.on_error)
    skipped = [*selection.skipped, *((selection.new_keys[image.index], image.reason) for image in embedded.skipped)]
    new_keys = [selection.new_keys[index] for index in embedded.kept]
    new_vectors = l2_normalize(embedded.vectors) if new_keys else np.zeros((0, embedder.embedding_dim), np.float32)
    embed_seconds = time.perf_counter() - embed_started
    progress(
        f"embedded {counted(len(new_keys), 'new image')} of {spec.table} with {spec.model} v{selection.version} in {embed_seconds:.1f} s"
        + (f"; reused {counted(len(selection.reused), 'vector')}" if selection.reusable else "")
    )
    embedded_selection = dataclasses.replace(selection, new_keys=new_keys, skipped=skipped)
    return store_refreshed(spec, embedded_selection, new_vectors, embedder.embedding_dim, stores, run_id, progress, embed_seconds=embed_seconds)


def store_refreshed(
    spec: EmbeddingSpec,
    selection: ImageSelection,
    new_vectors: np.ndarray,
    dim: int,
    stores: EmbeddingStores,
    run_id: str,
    progress,
    *,
    embed_seconds: float,
    collection: str | None = None,
) -> RefreshedEmbedding:
    """The new collection (`collection`, or a new name) of `selection`'s reused vectors and the
    vectors of its `new_keys` (`new_vectors`, in that order), stale points left out."""
    skipped = list(selection.skipped)
    if skipped:
        progress(f"skipped {len(skipped)} unusable images (on_error='skip'); their rows have no embedding: {skipped_summary(skipped)}")
    collection = collection or collection_name(spec)
    # First: a kill from here on leaves it to recovery (dropped, or recorded if the table was switched to it).
    journal_collection(stores.workspace.root, run_id, collection, {"spec": spec.to_dict(), "dim": dim})
    if selection.reusable:
        stale = sorted(set(stores.vector_store.all_keys(selection.previous_collection)) - set(selection.keys))
        points = stores.vector_store.extend_collection(selection.previous_collection, collection, selection.new_keys, new_vectors, stale)
    else:
        points = stores.vector_store.build_collection(collection, selection.new_keys, new_vectors)
    return RefreshedEmbedding(
        spec=spec,
        collection=collection,
        previous=selection.previous,
        model_version=selection.version,
        vectors_by_key={**selection.reused, **dict(zip(selection.new_keys, new_vectors))},
        dim=dim,
        points=points,
        embedded=len(selection.new_keys),
        reused=len(selection.reused),
        embed_seconds=embed_seconds,
        skipped=skipped,
        model_run=selection.model_run,
    )


def publish(refreshed: RefreshedEmbedding, row_count: int, stores: EmbeddingStores) -> None:
    """After the table points at the new collection: record it in the catalog and retire the old one."""
    spec, previous = refreshed.spec, refreshed.previous
    previous_collection = previous.state.get("collection") if previous else None
    # The previous collection is retired, not dropped: a SEARCH that began before the switch
    # still reads it. The one retired before it goes now.
    retired = previous.state.get("retired_collection") if previous else None
    stores.catalog.put(
        spec.kind,
        spec.catalog_name,
        spec.to_dict(),
        {
            "collection": refreshed.collection,
            "retired_collection": previous_collection,
            "model_version": refreshed.model_version,
            "model_run": refreshed.model_run,
            "vectors": refreshed.points,
            "rows": row_count,
            "dim": refreshed.dim,
        },
    )
    # The table and the catalog are switched: what follows only tidies up, and must not fail the statement.
    try:
        discard_superseded_generation(stores.workspace.root, spec, refreshed.collection)
        stores.vector_store.point_alias(_safe(f"{spec.table}__{spec.model}"), refreshed.collection)
        if retired not in (None, refreshed.collection, previous_collection):
            stores.vector_store.drop_collection(retired)
    except Exception as error:  # noqa: BLE001
        logging.getLogger("thanosql.progress").info("collection %s is live; tidying the store failed: %s", refreshed.collection, error)


GENERATIONS = "generations"  # the workspace folder where partitioned generations are staged


def staging_dir(root: Path, spec: EmbeddingSpec) -> Path:
    """Where `spec`'s partitioned generation is staged (`generations.begin_generation`)."""
    return root / GENERATIONS / f"{spec.table}.{spec.model}"  # names are letters, digits and underscores: no two alike


def discard_generation(root: Path, spec: EmbeddingSpec) -> None:
    """Remove `spec`'s staged generation, and any half-written staging of one (a planning that died
    before its rename), with the object."""
    directory = staging_dir(root, spec)
    for path in (directory, *directory.parent.glob(f".{directory.name}.*")):
        shutil.rmtree(path, ignore_errors=True)


def discard_superseded_generation(root: Path, spec: EmbeddingSpec, collection: str) -> None:
    """Once `spec` serves `collection`: remove its staged generation, which is the one just switched
    in or one begun on an older collection (failed, never retried), unless a statement planned it
    on `collection` meanwhile."""
    directory = staging_dir(root, spec)
    try:
        base = json.loads((directory / "pending.json").read_text()).get("base")
    except (OSError, ValueError):
        base = None
    if base != collection:
        shutil.rmtree(directory, ignore_errors=True)


def embedding_op_name(spec: EmbeddingSpec) -> str:
    return _safe(f"embed__{spec.table}__{spec.model}")


def requested_rebuild(run_config: dict, spec: EmbeddingSpec) -> bool:
    """Whether `run_config` (a MaterializationRequest's) asks `spec` to embed every image again."""
    return bool(run_config.get("ops", {}).get(embedding_op_name(spec), {}).get("config", {}).get("rebuild", False))


def rebuild_run_config(spec: EmbeddingSpec) -> dict:
    return {"ops": {embedding_op_name(spec): {"config": {"rebuild": True}}}}


def asset_specs_of_embedding(spec: EmbeddingSpec) -> list[dg.AssetSpec]:
    """The embedding's assets: its column, the column's collection, and the table when it comes from a folder."""
    specs = [
        dg.AssetSpec(
            spec.asset_key,
            deps=[model_key(spec.model), *(table_key(name) for name in spec.tables or [spec.table])],
            group_name="embeddings",
            kinds={"duckdb", "pytorch"},
            description=spec.statement,
            automation_condition=dg.AutomationCondition.eager(),
        ),
        dg.AssetSpec(
            spec.collection_key,
            deps=[spec.asset_key],
            group_name="embeddings",
            kinds={"qdrant"},
            description=f"The vectors of column {spec.column} of {spec.table} in Qdrant: one point per distinct image, cosine distance",
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
    return specs


def embedding_rows(spec: EmbeddingSpec, workspace: WorkspaceResource, warehouse: WarehouseResource) -> pd.DataFrame:
    """The rows whose images the embedding embeds: the query's, or one per image file under the folder."""
    rows = folder_rows(workspace, spec) if spec.folder else warehouse.query_from(spec.query, QUERY_DIALECT)
    require_column(spec.image_col, list(rows.columns), rows="the rows to embed")
    require_image_paths(rows[spec.image_col], spec.image_col)
    return rows
