"""Vectors in Qdrant's own engine, embedded in the process (qdrant-edge): embedded mode.

One shard directory per collection under the workspace. qdrant-client's local mode was
measured on this kind of machine at 154 s for 10k points on disk and locks its folder to one
process; an Edge shard took 0.13 s and, with its write-ahead log off, can be opened by several
processes at once.

A collection is built in a staging directory, indexed (HNSW: 60,000 x 128 vectors in about
4 s on two cores, recall@4 of 1.0 on MNIST embeddings) and renamed into place; an incremental
update copies the collection (keeping its files sparse), adds and removes points in the copy
and renames it in under a new name.
"""

import os
import shutil
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from resources.processes import ProcessId
from resources.vector_store import LAYOUT, CollectionNotFound, ScoredImage, VectorStoreResource

FULL_SCAN_THRESHOLD_KB = 10_000  # below this a segment is searched exhaustively (exact)
_BATCH = 4096
_COPY_BLOCK = 16 * 1024  # a few file-system blocks: holes almost as fine as the original's, few system calls

_shards: dict[str, Any] = {}
_shards_lock = threading.Lock()


def _upsert(shard: Any, keys: Sequence[str], vectors: np.ndarray) -> None:
    from qdrant_edge import Point, UpdateOperation

    for start in range(0, len(keys), _BATCH):
        rows = vectors[start : start + _BATCH].tolist()
        points = [Point(LAYOUT.point_id(key), {LAYOUT.vector_name: row}, {"key": key}) for key, row in zip(keys[start : start + _BATCH], rows)]
        shard.update(UpdateOperation.upsert_points(points))


def _copy_sparse(source: str, target: str) -> None:
    """shutil.copy2, except that blocks of zeros stay holes, as with `cp --sparse=always`.

    Qdrant creates each segment's storage files at fixed sizes whatever they hold (a 32 MiB
    vector chunk, a 32 MiB payload page, 1 MiB trackers), as sparse files: 6 vectors take 100 KB
    of disk. A plain copy writes the zeros out, 67 MB for any collection.
    """
    with open(source, "rb") as reader, open(target, "wb") as writer:
        while block := reader.read(_COPY_BLOCK):
            if block.count(0) == len(block):
                writer.seek(len(block), os.SEEK_CUR)
            else:
                writer.write(block)
        writer.truncate()  # the file ends at its last block even when that block is a hole
    shutil.copystat(source, target)


def _abandoned(staging: Path) -> bool:
    """Whether the process writing this staging directory is gone (unnamed ones: after an hour)."""
    process = ProcessId.from_name(staging.name.rpartition("@")[2]) if "@" in staging.name else None
    if process is not None:
        return not process.alive
    return time.time() - staging.stat().st_mtime > 3600


class QdrantEdgeResource(VectorStoreResource):
    """`path`: directory of embedded collections (Qdrant Edge shards)."""

    path: str

    @property
    def location(self) -> str:
        return self.path

    def _collection_dir(self, name: str) -> Path:
        return Path(self.path) / name

    @contextmanager
    def _staged(self, name: str) -> Iterator[Path]:
        """A staging directory for collection `name`, renamed into place if the block succeeds, removed if not."""
        # Named after this process: `discard_unfinished` removes what dead processes left, only.
        staging = Path(self.path) / f".staging-{name}-{uuid.uuid4().hex[:8]}@{ProcessId.current().as_name()}"
        staging.parent.mkdir(parents=True, exist_ok=True)
        try:
            yield staging
            target = self._collection_dir(name)
            if target.exists():
                raise FileExistsError(f"collection {name} already exists at {target}")
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise

    def exists(self, name: str | None) -> bool:
        return bool(name) and (self._collection_dir(name) / "edge_config.json").is_file()

    def collections(self) -> list[str]:
        root = Path(self.path)
        return sorted(path.name for path in root.iterdir() if not path.name.startswith(".") and self.exists(path.name)) if root.is_dir() else []

    def discard_unfinished(self) -> list[str]:
        staged = sorted(Path(self.path).glob(".staging-*")) if Path(self.path).is_dir() else []
        abandoned = [path for path in staged if _abandoned(path)]
        for path in abandoned:
            shutil.rmtree(path, ignore_errors=True)
        return [path.name for path in abandoned]

    def build_collection(self, name: str, keys: Sequence[str], vectors: np.ndarray) -> int:
        from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams, HnswIndexConfig, Memory

        vectors = LAYOUT.checked(keys, vectors, name)
        if self._collection_dir(name).exists():
            raise FileExistsError(f"collection {name} already exists")
        config = EdgeConfig(
            vectors={LAYOUT.vector_name: EdgeVectorParams(size=int(vectors.shape[1]), distance=Distance.Cosine)},
            hnsw_config=HnswIndexConfig(m=LAYOUT.hnsw_m, ef_construct=LAYOUT.hnsw_ef_construct, full_scan_threshold=FULL_SCAN_THRESHOLD_KB),
            wal_enabled=False,
            # Payloads (the image keys) held in memory: every search reads its hits' keys, and
            # from cold storage each new query's reads would fault pages in.
            payload_memory=Memory.Cached,
        )
        with self._staged(name) as staging:
            shard = EdgeShard.create(str(staging), config)
            _upsert(shard, keys, vectors)
            shard.flush()
            shard.optimize()  # build the HNSW index now, not on a reader's first query
            count = shard.info().points_count
            shard.close()
        return count

    def extend_collection(
        self, source: str, name: str, add_keys: Sequence[str], add_vectors: np.ndarray, remove_keys: Sequence[str] = ()
    ) -> int:
        from qdrant_edge import EdgeShard, UpdateOperation

        add_vectors = LAYOUT.checked(add_keys, add_vectors, name)
        with self._staged(name) as staging:
            shutil.copytree(self._collection_dir(source), staging, copy_function=_copy_sparse)
            shard = EdgeShard.load(str(staging))
            if len(add_keys):
                _upsert(shard, add_keys, add_vectors)
            if len(remove_keys):
                shard.update(UpdateOperation.delete_points([LAYOUT.point_id(key) for key in remove_keys]))
            shard.flush()
            count = shard.info().points_count
            if len(add_keys) > 0.2 * count:
                shard.optimize()  # small additions are searched exhaustively; large ones get indexed
            shard.close()
        return count

    def point_alias(self, alias: str, name: str) -> None:
        """Nothing to do here: embedded readers find the serving collection through the table's record."""

    def drop_collection(self, name: str) -> None:
        with _shards_lock:
            shard = _shards.pop(str(self._collection_dir(name)), None)
        if shard is not None:
            shard.close()
        shutil.rmtree(self._collection_dir(name), ignore_errors=True)

    def count(self, name: str) -> int:
        return self._shard(name).info().points_count

    def search(self, name: str, vector: np.ndarray, limit: int, exact: bool = False) -> list[ScoredImage]:
        from qdrant_edge import Query, QueryRequest, SearchParams

        request = QueryRequest(
            limit=int(limit),
            query=Query.Nearest(np.asarray(vector, dtype=np.float32).tolist(), using=LAYOUT.vector_name),
            with_payload=True,
            params=SearchParams(exact=exact, hnsw_ef=LAYOUT.ef(limit)),
        )
        return [ScoredImage(point.payload["key"], float(point.score)) for point in self._shard(name).query(request)]

    def scores(self, name: str, vector: np.ndarray, keys: Sequence[str]) -> dict[str, float]:
        from qdrant_edge import Filter, HasIdCondition, Query, QueryRequest, SearchParams

        if not keys:
            return {}
        request = QueryRequest(
            limit=len(keys),
            query=Query.Nearest(np.asarray(vector, dtype=np.float32).tolist(), using=LAYOUT.vector_name),
            with_payload=True,
            filter=Filter(must=[HasIdCondition({LAYOUT.point_id(key) for key in keys})]),
            params=SearchParams(exact=True),
        )
        return {point.payload["key"]: float(point.score) for point in self._shard(name).query(request)}

    def all_keys(self, name: str) -> list[str]:
        from qdrant_edge import ScrollRequest

        shard, found, offset = self._shard(name), [], None
        while True:
            records, offset = shard.scroll(ScrollRequest(offset=offset, limit=_BATCH, with_payload=True, with_vector=False))
            found.extend(record.payload["key"] for record in records)
            if offset is None:
                return found

    def vectors(self, name: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        found: dict[str, np.ndarray] = {}
        shard = self._shard(name)
        for start in range(0, len(keys), _BATCH):
            records = shard.retrieve([LAYOUT.point_id(key) for key in keys[start : start + _BATCH]], True, [LAYOUT.vector_name])
            for record in records:
                found[record.payload["key"]] = np.asarray(record.vector[LAYOUT.vector_name], dtype=np.float32)
        return found

    def _shard(self, name: str) -> Any:
        from qdrant_edge import EdgeShard

        directory = self._collection_dir(name)
        if not self.exists(name):
            raise CollectionNotFound(f"collection {name} does not exist under {self.path}")
        with _shards_lock:
            shard = _shards.get(str(directory))
            if shard is None:
                # Collections never change after they are published, so one open handle per process serves all reads.
                shard = _shards[str(directory)] = EdgeShard.load(str(directory))
            return shard
