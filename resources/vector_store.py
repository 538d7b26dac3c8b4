"""Vectors: Qdrant collections, one per (table, model) embedding.

Embedded mode runs Qdrant's own engine in-process (qdrant-edge: one shard directory per
collection under the workspace). qdrant-client's local mode was measured on this kind of
machine at 154 s for 10k points on disk and locks its folder to one process; an Edge shard
took 0.13 s and, with its write-ahead log off, can be opened by several processes at once.

A collection is built in a temporary directory and renamed into place when complete, so a
reader never sees a half-built collection; the catalog names the current one.
"""

from __future__ import annotations

import shutil
import threading
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import numpy as np

from sql_frontend.errors import DataError

VECTOR_NAME = "image"
_POINT_NAMESPACE = uuid.UUID("6f1d7c52-3c8e-4d35-9a61-0c6c1f3f2a10")


def point_id(key: str) -> str:
    """Stable Qdrant point id for an image path (one point per distinct image)."""
    return str(uuid.uuid5(_POINT_NAMESPACE, key))


@dataclass(frozen=True)
class ScoredImage:
    key: str
    score: float


_shards: dict[str, Any] = {}
_shards_lock = threading.Lock()


class VectorStoreResource(dg.ConfigurableResource):
    """`path`: directory of embedded collections (Qdrant Edge shards)."""

    path: str

    def _collection_dir(self, name: str) -> Path:
        return Path(self.path) / name

    def exists(self, name: str) -> bool:
        return (self._collection_dir(name) / "edge_config.json").is_file()

    def build_collection(self, name: str, keys: Sequence[str], vectors: np.ndarray) -> int:
        """Create collection `name` holding one point per key (payload {"key": key}); all or nothing."""
        from qdrant_edge import Distance, EdgeConfig, EdgeShard, EdgeVectorParams, Point, UpdateOperation

        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for vectors of shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise DataError(
                f"Embeddings for collection {name} contain NaN or infinite values.",
                hint="The model produced invalid outputs (training diverged?); rebuild it, e.g. with a lower learning_rate.",
            )
        target = self._collection_dir(name)
        if target.exists():
            raise FileExistsError(f"collection {name} already exists at {target}")
        staging = Path(self.path) / f".staging-{name}-{uuid.uuid4().hex[:8]}"
        staging.parent.mkdir(parents=True, exist_ok=True)
        config = EdgeConfig(
            vectors={VECTOR_NAME: EdgeVectorParams(size=int(vectors.shape[1]), distance=Distance.Cosine)},
            wal_enabled=False,
        )
        try:
            shard = EdgeShard.create(str(staging), config)
            for start in range(0, len(keys), 4096):
                points = [
                    Point(point_id(key), {VECTOR_NAME: vector.tolist()}, {"key": key})
                    for key, vector in zip(keys[start : start + 4096], vectors[start : start + 4096])
                ]
                shard.update(UpdateOperation.upsert_points(points))
            shard.flush()
            count = shard.info().points_count
            shard.close()
            staging.rename(target)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        return count

    def drop_collection(self, name: str) -> None:
        with _shards_lock:
            shard = _shards.pop(str(self._collection_dir(name)), None)
        if shard is not None:
            shard.close()
        shutil.rmtree(self._collection_dir(name), ignore_errors=True)

    def count(self, name: str) -> int:
        return self._shard(name).info().points_count

    def search(self, name: str, vector: np.ndarray, limit: int, exact: bool = False) -> list[ScoredImage]:
        """The `limit` points most similar to `vector` (cosine similarity, best first)."""
        from qdrant_edge import Query, QueryRequest, SearchParams

        request = QueryRequest(
            limit=int(limit),
            query=Query.Nearest(np.asarray(vector, dtype=np.float32).tolist(), using=VECTOR_NAME),
            with_payload=True,
            params=SearchParams(exact=exact),
        )
        return [ScoredImage(point.payload["key"], float(point.score)) for point in self._shard(name).query(request)]

    def score_all(self, name: str, vector: np.ndarray) -> dict[str, float]:
        """Cosine similarity of `vector` to every point in the collection, by key."""
        return {hit.key: hit.score for hit in self.search(name, vector, limit=max(1, self.count(name)), exact=True)}

    def _shard(self, name: str) -> Any:
        from qdrant_edge import EdgeShard

        directory = self._collection_dir(name)
        if not self.exists(name):
            raise FileNotFoundError(f"collection {name} does not exist under {self.path}")
        with _shards_lock:
            shard = _shards.get(str(directory))
            if shard is None:
                # Collections never change after they are built, so one open handle per process serves all reads.
                shard = _shards[str(directory)] = EdgeShard.load(str(directory))
            return shard
