"""A partitioned embedding's next generation: begun once, embedded by partition runs, switched to once.

A table with millions of images is embedded by several Dagster runs, one per partition of the
embedding asset, that the run launcher can place on as many machines. An image belongs to
partition `blake2b(path) mod N`: hashing the path rather than numbering rows puts every row of
one image in the same partition (embedded once, as one point), keeps an image in its partition
whatever rows are added or removed around it, and so lets an append touch only the partitions
its new images fall in. Row ranges would shift with every insert and delete.

A refresh goes in three steps, with everything staged under `generations/<table>.<model>/` in
the workspace (a volume every run worker mounts in production):

1. `begin_generation` (the statement): picks the model version and the images to embed, exactly
   as an unpartitioned refresh does, and writes each partition's share of them (`keys/<p>.parquet`)
   and the plan (`pending.json`). Only partitions with images to embed get a run.
2. `embed_partition` (one Dagster run per partition, retried alone if it fails): embeds its share
   and writes `vectors/<p>.npy` beside `vectors/<p>.json` (keys, skipped images), the latter last,
   so a partition is done exactly when its JSON file exists.
3. `finish_generation` (the switch asset, after the last partition): checks every partition is
   done, builds the new collection from the previous one's reused vectors and the partitions'
   new ones, and returns the refreshed embedding that the caller switches the table to in one
   transaction, as an unpartitioned refresh does. Until then SEARCH reads the previous generation.
"""


import hashlib
import json
import os
import shutil
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import pandas as pd

from resources import CatalogResource, ModelRegistryResource, VectorStoreResource, WarehouseResource, WorkspaceResource
from thanosql.errors import DataError
from thanosql_assets.defs.checks import image_path_texts
from thanosql_assets.defs.embeddings import (
    EmbeddingStores,
    ImageSelection,
    RefreshedEmbedding,
    asset_specs_of_embedding,
    collection_name,
    embedding_op_name,
    embedding_rows,
    select_images,
    staging_dir,
    store_refreshed,
)
from thanosql_assets.defs.progress import Progress, counted
from thanosql_assets.defs.specs import PARTITIONED_TAG, EmbeddingSpec, model_key, table_key
from thanosql_assets.defs.table_refresh import switch_table
from thanosql_assets.models.vectors import l2_normalize

GENERATION_TAG = "thanosql/generation"  # on partition runs: the collection their generation builds


def partition_of(key: str, partitions: int) -> int:
    """The partition of image path `key`: the same on every machine and Python process (unlike `hash`)."""
    return int.from_bytes(hashlib.blake2b(key.encode(), digest_size=8).digest(), "big") % partitions


def partition_names(partitions: int) -> list[str]:
    """Dagster partition keys `0`..`N-1`, zero-padded so that the UI lists them in order."""
    width = len(str(partitions - 1))
    return [str(index).zfill(width) for index in range(partitions)]


@dataclass(frozen=True)
class PendingGeneration:
    """The plan of a generation being built (`pending.json`)."""

    table: str
    model: str
    collection: str  # the new collection's name
    model_version: str
    partitions: int
    runs: tuple[int, ...]  # the partitions with images to embed
    base: str | None  # the previous collection whose vectors are reused (None: everything embedded)
    skipped: tuple[tuple[str, str], ...]  # images left out before embedding (rows without a path)
    plan: str  # digest of what it embeds and reuses: a statement planning the same generation again resumes it
    model_run: str | None = None  # the MLflow run that logged `model_version`

    def unfinished(self, root: Path, spec: EmbeddingSpec) -> list[str]:
        """The partition keys of the partitions with images to embed that have not finished."""
        names = partition_names(self.partitions)
        return [names[index] for index in self.runs if _partition_done(staging_dir(root, spec), index, self.collection) is None]


def _partition_done(directory: Path, index: int, collection: str) -> dict | None:
    """What partition `index` of generation `collection` wrote when it finished, or None."""
    try:
        done = json.loads((directory / "vectors" / f"{index}.json").read_text())
    except (OSError, ValueError):
        return None
    return done if done.get("generation") == collection else None


def pending_generation(root: Path, spec: EmbeddingSpec) -> PendingGeneration | None:
    """The generation of `spec` being built, if any."""
    path = staging_dir(root, spec) / "pending.json"
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return PendingGeneration(**{**data, "runs": tuple(data["runs"]), "skipped": tuple(map(tuple, data["skipped"]))})


def begin_generation(
    spec: EmbeddingSpec, image_paths: pd.Series, stores: EmbeddingStores, progress, *, rebuild: bool
) -> PendingGeneration:
    """Plan the next generation of `spec` over the rows' `image_paths` and stage each partition's
    images; it replaces a generation that was begun and never finished."""
    selection = select_images(spec, image_paths, stores, rebuild=rebuild)
    shares: dict[int, list[str]] = {}
    for key in selection.new_keys:
        shares.setdefault(partition_of(key, spec.partitions), []).append(key)
    base = selection.previous_collection if selection.reusable else None
    digest = hashlib.blake2b(json.dumps([str(selection.version), selection.model_run, base, spec.on_error, selection.keys, sorted(shares.items())]).encode())
    pending = pending_generation(stores.workspace.root, spec)
    switched = pending is not None and (pending.collection == selection.previous_collection or stores.vector_store.exists(pending.collection))
    if pending is not None and not switched and pending.plan == digest.hexdigest() and pending.partitions == spec.partitions:
        progress(f"generation {pending.collection} resumes: {len(pending.unfinished(stores.workspace.root, spec))} of {len(pending.runs)} partitions to run")
        return pending
    generation = PendingGeneration(
        table=spec.table,
        model=spec.model,
        collection=collection_name(spec),
        model_version=str(selection.version),
        partitions=spec.partitions,
        runs=tuple(sorted(shares)),
        base=base,
        skipped=tuple(selection.skipped),
        plan=digest.hexdigest(),
        model_run=selection.model_run,
    )
    directory = staging_dir(stores.workspace.root, spec)
    staging = directory.with_name(f".{directory.name}.{generation.collection}")
    (staging / "keys").mkdir(parents=True)
    (staging / "vectors").mkdir()
    _write_keys(staging / "keys.parquet", selection.keys)
    for index, keys in shares.items():
        _write_keys(staging / "keys" / f"{index}.parquet", keys)
    (staging / "pending.json").write_text(json.dumps(asdict(generation)))
    shutil.rmtree(directory, ignore_errors=True)  # an unfinished generation's files: superseded
    staging.rename(directory)
    progress(
        f"generation {generation.collection}: {counted(len(selection.new_keys), 'image')} to embed in {len(shares)} of "
        f"{counted(spec.partitions, 'partition')}"
        + (f"; {counted(len(selection.reused), 'vector')} reused" if selection.reusable else "")
    )
    return generation


def _embedder(spec: EmbeddingSpec, generation: PendingGeneration, stores: EmbeddingStores):
    """The model version the generation was planned with (partition runs are fresh processes: from its local files when the catalog still lists it)."""
    listed = stores.catalog.lists_model_version(spec.model, generation.model_version, generation.model_run)
    return stores.model_registry.load(spec.model, generation.model_version, generation.model_run, listed=listed)


def embed_partition(spec: EmbeddingSpec, partition: str, collection: str | None, stores: EmbeddingStores, progress) -> dict:
    """Embed partition `partition`'s share of the pending generation (the one building `collection`,
    when given); its metadata. Run again, it embeds the share again."""
    directory = staging_dir(stores.workspace.root, spec)
    generation = _current(stores.workspace.root, spec, collection)
    index = int(partition)
    keys_file = directory / "keys" / f"{index}.parquet"
    keys = _read_keys(keys_file) if keys_file.is_file() else []
    embedder = _embedder(spec, generation, stores)
    started = time.perf_counter()
    paths = [stores.workspace.resolve(key) for key in keys]
    embedded = embedder.embed_files_checked(paths, batch_size=spec.batch_size, column=spec.image_col, on_error=spec.on_error)
    kept = [keys[position] for position in embedded.kept]
    vectors = l2_normalize(embedded.vectors) if kept else np.zeros((0, embedder.embedding_dim), np.float32)
    skipped = [(keys[image.index], image.reason) for image in embedded.skipped]
    seconds = time.perf_counter() - started
    _current(stores.workspace.root, spec, generation.collection)  # not replaced meanwhile by another statement's plan
    vectors_file = directory / "vectors" / f"{index}.npy"
    with open(_temporary(vectors_file), "wb") as file:
        np.save(file, vectors)
    os.replace(_temporary(vectors_file), vectors_file)
    done = directory / "vectors" / f"{index}.json"
    record = {"generation": generation.collection, "planned": len(keys), "keys": kept, "skipped": skipped, "seconds": seconds}
    _temporary(done).write_text(json.dumps(record))
    os.replace(_temporary(done), done)  # last: the partition is done
    progress(f"partition {partition} of generation {generation.collection}: embedded {counted(len(kept), 'image')} in {seconds:.1f} s")
    return {
        "generation": generation.collection,
        "embedded_images": len(kept),
        "skipped_images": len(skipped),
        "images_per_second": round(len(kept) / max(seconds, 1e-9), 1),
        "model_version": int(generation.model_version),
    }


def _current(root: Path, spec: EmbeddingSpec, collection: str | None) -> PendingGeneration:
    """The pending generation of `spec` (the one building `collection`, when given)."""
    generation = pending_generation(root, spec)
    if generation is None or (collection and generation.collection != collection):
        raise DataError(
            f"No new generation of {spec.table}'s column {spec.column} is being built"
            + (f" for collection {collection}: it was switched in or replaced by a newer statement's." if collection else "."),
            hint="Run the CONVERT statement again: it plans a generation, runs its partitions, then switches the table.",
        )
    return generation


def finish_generation(
    spec: EmbeddingSpec, image_paths: pd.Series, stores: EmbeddingStores, run_id: str, progress, collection: str | None = None
) -> RefreshedEmbedding:
    """The pending generation's new collection (the one named `collection`, when given), built from
    the previous one's vectors and every partition's, for rows whose images are `image_paths`; the
    caller switches the table to it and `publish`es, which discards the staged files."""
    root = stores.workspace.root
    generation = _current(root, spec, collection)
    directory = staging_dir(root, spec)
    unfinished = generation.unfinished(root, spec)
    if unfinished:
        raise DataError(
            f"Partitions {', '.join(unfinished)} of {spec.table}'s column {spec.column} (generation {generation.collection}) have not finished; "
            "SEARCH still answers from the previous generation.",
            hint="Retry the failed partition runs (Dagster UI: the run, then Re-execute); the switch follows the last one.",
        )
    previous = stores.catalog.get(spec.kind, spec.catalog_name)
    current = previous.state.get("collection") if previous else None
    if generation.base is not None and generation.base != current:
        raise DataError(
            f"Generation {generation.collection} was planned on collection {generation.base}, which {current or 'nothing'} has since replaced.",
            hint="Run the CONVERT statement again.",
        )
    keys = _read_keys(directory / "keys.parquet")
    if set(image_path_texts(image_paths)) - {None} != set(keys):
        raise DataError(
            f"The rows of {spec.table}'s column {spec.column} name other images than when generation {generation.collection} was planned "
            "(rows were added, removed or changed meanwhile); nothing was switched.",
            hint="Run the CONVERT statement again: it plans a new generation over the rows as they are.",
        )
    new_keys, parts, skipped = [], [], list(generation.skipped)
    for index in generation.runs:
        done = _partition_done(directory, index, generation.collection)
        new_keys += done["keys"]
        skipped += [tuple(item) for item in done["skipped"]]
        parts.append(np.load(directory / "vectors" / f"{index}.npy"))
    embedder_dim = int(previous.state["dim"]) if previous and generation.base else None
    dim = parts[0].shape[1] if parts else embedder_dim
    if dim is None:
        dim = _embedder(spec, generation, stores).embedding_dim
    reused = stores.vector_store.vectors(generation.base, keys) if generation.base else {}
    selection = ImageSelection(
        generation.model_version, keys, previous, generation.base is not None, reused, new_keys, skipped, generation.model_run
    )
    vectors = np.concatenate(parts) if parts else np.zeros((0, dim), np.float32)
    seconds = sum(_partition_done(directory, index, generation.collection)["seconds"] for index in generation.runs)
    return store_refreshed(spec, selection, vectors, dim, stores, run_id, progress, embed_seconds=seconds, collection=generation.collection)


def _write_keys(path: Path, keys: list[str]) -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    pq.write_table(pa.table({"key": pa.array(keys, type=pa.string())}), path)


def _read_keys(path: Path) -> list[str]:
    import pyarrow.parquet as pq

    return pq.read_table(path).column("key").to_pylist()


def _temporary(path: Path) -> Path:
    return path.with_name(f".{path.name}.{os.getpid()}")


def switch_op_name(spec: EmbeddingSpec) -> str:
    return embedding_op_name(spec).replace("embed__", "switch__", 1)


def partitioned_embedding_assets(spec: EmbeddingSpec) -> list[dg.AssetsDefinition]:
    """The assets of an embedding made by partition runs: the embedding column, one partition per
    share of the images, and the switch, which materializes the collection (and the table of a
    folder) once every partition of the pending generation is done."""
    collection, column, *table = reversed(asset_specs_of_embedding(spec))
    deps = [model_key(spec.model), *(table_key(name) for name in spec.tables)]

    @dg.asset(
        key=spec.asset_key,
        partitions_def=dg.StaticPartitionsDefinition(partition_names(spec.partitions)),
        deps=deps,
        group_name=column.group_name,
        kinds={"pytorch"},
        description=spec.statement,
        tags={PARTITIONED_TAG: "true"},
    )
    def _embed_partition(
        context: dg.AssetExecutionContext,
        workspace: WorkspaceResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
        vector_store: VectorStoreResource,
    ) -> dg.MaterializeResult:
        stores = EmbeddingStores(workspace, catalog, model_registry, vector_store)
        metadata = embed_partition(spec, context.partition_key, context.run.tags.get(GENERATION_TAG), stores, Progress(context))
        return dg.MaterializeResult(metadata=metadata)

    switched = [item.merge_attributes(tags={PARTITIONED_TAG: "true"}) for item in (*table, collection)]

    @dg.multi_asset(name=switch_op_name(spec), specs=switched)
    def _switch(
        context: dg.AssetExecutionContext,
        workspace: WorkspaceResource,
        warehouse: WarehouseResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
        vector_store: VectorStoreResource,
    ):
        progress = Progress(context)
        started = time.perf_counter()
        stores = EmbeddingStores(workspace, catalog, model_registry, vector_store)
        rows = embedding_rows(spec, workspace, warehouse)
        refreshed = finish_generation(spec, rows[spec.image_col], stores, context.run_id, progress, context.run.tags.get(GENERATION_TAG))
        yield from switch_table(context, refreshed, rows, warehouse, stores, progress, started)  # discards the staged files
        metadata = {**refreshed.metadata(refreshed.rows, time.perf_counter() - started), **refreshed.collection_metadata(vector_store)}
        yield dg.MaterializeResult(asset_key=spec.collection_key, metadata={**metadata, "partitions": spec.partitions})

    return [_embed_partition, _switch]
