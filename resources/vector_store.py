"""Where the vectors live: the interface both Qdrant stores implement, and the layout they share.

Two implementations: Qdrant's engine embedded in the process (`QdrantEdgeResource`, embedded
mode) and a Qdrant server through qdrant-client (`QdrantServerResource`, production mode).

Layout: one collection per (table, model) embedding and build, a named vector `image` (cosine),
one point per distinct image with id uuid5(image path) and payload {"key": image path}, HNSW
m=16 / ef_construct=64, searched with ef=max(128, limit). Collections are built under a new
name and never changed after: the table records which one its embedding column uses (see
`resources.warehouse`), so a reader sees the old or the new one, never one being written.
"""

from __future__ import annotations

import uuid
from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass

import dagster as dg
import numpy as np

from thanosql.errors import DataError

_POINT_NAMESPACE = uuid.UUID("6f1d7c52-3c8e-4d35-9a61-0c6c1f3f2a10")


class CollectionNotFound(FileNotFoundError):
    """The collection is gone: dropped after newer ones replaced it."""


@dataclass(frozen=True)
class ScoredImage:
    key: str
    score: float


@dataclass(frozen=True)
class CollectionLayout:
    """How every collection is laid out, whichever store holds it."""

    vector_name: str = "image"  # the one named vector of a point (cosine)
    hnsw_m: int = 16
    hnsw_ef_construct: int = 64
    search_ef: int = 128  # a search of `limit` points looks at max(search_ef, limit) candidates

    def ef(self, limit: int) -> int:
        return max(self.search_ef, int(limit))

    @staticmethod
    def point_id(key: str) -> str:
        """Stable Qdrant point id for an image path (one point per distinct image)."""
        return str(uuid.uuid5(_POINT_NAMESPACE, key))

    @staticmethod
    def checked(keys: Sequence[str], vectors: np.ndarray, collection: str) -> np.ndarray:
        """`vectors` as a contiguous float32 matrix, one row per key, all finite."""
        vectors = np.ascontiguousarray(vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(keys) != len(vectors):
            raise ValueError(f"{len(keys)} keys for vectors of shape {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise DataError(
                f"Embeddings for collection {collection} contain NaN or infinite values.",
                hint="The model produced invalid outputs (training diverged?); rebuild it, e.g. with a lower learning_rate.",
            )
        return vectors


LAYOUT = CollectionLayout()


class VectorStoreResource(dg.ConfigurableResource):
    """A store of immutable Qdrant collections. Implementations say how to reach it."""

    @property
    @abstractmethod
    def location(self) -> str:
        """The directory or server URL, for messages and metadata."""

    @abstractmethod
    def exists(self, name: str | None) -> bool: ...

    @abstractmethod
    def build_collection(self, name: str, keys: Sequence[str], vectors: np.ndarray) -> int:
        """Create collection `name` holding one point per key (payload {"key": key}), indexed; all
        or nothing. Returns its point count."""

    @abstractmethod
    def extend_collection(
        self, source: str, name: str, add_keys: Sequence[str], add_vectors: np.ndarray, remove_keys: Sequence[str] = ()
    ) -> int:
        """Collection `name`: a copy of `source` with points added and removed; `source` stays as it was."""

    @abstractmethod
    def point_alias(self, alias: str, name: str) -> None:
        """Point `alias` at collection `name`, for people browsing the store (readers go by the table's record)."""

    @abstractmethod
    def drop_collection(self, name: str) -> None: ...

    @abstractmethod
    def collections(self) -> list[str]:
        """Every collection's name (aliases excluded)."""

    @abstractmethod
    def discard_unfinished(self) -> list[str]:
        """Remove what builds that never finished left behind (a killed process's staging files); their names."""

    @abstractmethod
    def count(self, name: str) -> int: ...

    @abstractmethod
    def search(self, name: str, vector: np.ndarray, limit: int, exact: bool = False) -> list[ScoredImage]:
        """The `limit` points most similar to `vector` (cosine similarity, best first)."""

    @abstractmethod
    def scores(self, name: str, vector: np.ndarray, keys: Sequence[str]) -> dict[str, float]:
        """Cosine similarity of `vector` to the points of `keys` (exact), by key."""

    @abstractmethod
    def all_keys(self, name: str) -> list[str]:
        """Every key in the collection."""

    @abstractmethod
    def vectors(self, name: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        """The stored vectors of those `keys` that are in the collection."""
