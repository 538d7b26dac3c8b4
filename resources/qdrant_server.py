"""Vectors on a Qdrant server (production mode), through qdrant-client.

The layout of `resources.vector_store`; an alias `<table>__<model>` follows the newest build
for people browsing the server.

`url=":memory:"` runs qdrant-client's own in-process engine with the same API: the tests use it,
because no Qdrant server can be installed on the machines they run on.
"""

import threading
from collections.abc import Sequence
from typing import Any

import numpy as np

from resources.vector_store import LAYOUT, CollectionNotFound, ScoredImage, VectorStoreResource

_BATCH = 1024
_clients: dict[tuple[str, str | None], Any] = {}
_clients_lock = threading.Lock()


class QdrantServerResource(VectorStoreResource):
    """`url`: the Qdrant server (http://qdrant:6333), or ":memory:" for qdrant-client's local engine."""

    url: str
    api_key: str | None = None

    @property
    def location(self) -> str:
        return self.url

    def _client(self) -> Any:
        from qdrant_client import QdrantClient

        key = (self.url, self.api_key)
        with _clients_lock:
            if key not in _clients:
                _clients[key] = (
                    QdrantClient(location=":memory:") if self.url == ":memory:" else QdrantClient(url=self.url, api_key=self.api_key)
                )
            return _clients[key]

    def exists(self, name: str | None) -> bool:
        return bool(name) and self._client().collection_exists(name)

    def build_collection(self, name: str, keys: Sequence[str], vectors: np.ndarray) -> int:
        from qdrant_client import models

        vectors = LAYOUT.checked(keys, vectors, name)
        client = self._client()
        if client.collection_exists(name):
            raise FileExistsError(f"collection {name} already exists")
        client.create_collection(
            name,
            vectors_config={LAYOUT.vector_name: models.VectorParams(size=int(vectors.shape[1]), distance=models.Distance.COSINE)},
            hnsw_config=models.HnswConfigDiff(m=LAYOUT.hnsw_m, ef_construct=LAYOUT.hnsw_ef_construct),
        )
        try:
            self._upsert(name, keys, vectors)
        except BaseException:
            client.delete_collection(name)
            raise
        return self.count(name)

    def extend_collection(
        self, source: str, name: str, add_keys: Sequence[str], add_vectors: np.ndarray, remove_keys: Sequence[str] = ()
    ) -> int:
        add_vectors = LAYOUT.checked(add_keys, add_vectors, name)
        removed = set(remove_keys) | set(add_keys)
        kept = {key: vector for key, vector in self._all_vectors(source).items() if key not in removed}
        keys = [*kept, *add_keys]
        dim = add_vectors.shape[1] if len(add_keys) else len(next(iter(kept.values())))
        vectors = np.concatenate([np.asarray(list(kept.values()), np.float32).reshape(-1, dim), add_vectors.reshape(-1, dim)])
        return self.build_collection(name, keys, vectors)

    def point_alias(self, alias: str, name: str) -> None:
        from qdrant_client import models

        self._client().update_collection_aliases(
            change_aliases_operations=[models.CreateAliasOperation(create_alias=models.CreateAlias(collection_name=name, alias_name=alias))]
        )

    def collections(self) -> list[str]:
        return sorted(collection.name for collection in self._client().get_collections().collections)

    def discard_unfinished(self) -> list[str]:
        return []  # a collection is created and filled by one request at a time: nothing is staged

    def drop_collection(self, name: str) -> None:
        client = self._client()
        if client.collection_exists(name):
            client.delete_collection(name)

    def count(self, name: str) -> int:
        self._require(name)
        return self._client().count(name, exact=True).count

    def search(self, name: str, vector: np.ndarray, limit: int, exact: bool = False) -> list[ScoredImage]:
        from qdrant_client import models

        params = models.SearchParams(hnsw_ef=LAYOUT.ef(limit), exact=exact)
        return self._nearest(name, vector, int(limit), params)

    def scores(self, name: str, vector: np.ndarray, keys: Sequence[str]) -> dict[str, float]:
        from qdrant_client import models

        if not keys:
            return {}
        only = models.Filter(must=[models.HasIdCondition(has_id=[LAYOUT.point_id(key) for key in keys])])
        hits = self._nearest(name, vector, len(keys), models.SearchParams(exact=True), only)
        return {hit.key: hit.score for hit in hits}

    def _nearest(self, name: str, vector: np.ndarray, limit: int, params: Any, query_filter: Any = None) -> list[ScoredImage]:
        self._require(name)
        points = self._client().query_points(
            name,
            query=np.asarray(vector, dtype=np.float32).tolist(),
            using=LAYOUT.vector_name,
            limit=limit,
            with_payload=True,
            query_filter=query_filter,
            search_params=params,
        ).points
        return [ScoredImage(point.payload["key"], float(point.score)) for point in points]

    def all_keys(self, name: str) -> list[str]:
        return list(self._scroll(name, with_vectors=False))

    def vectors(self, name: str, keys: Sequence[str]) -> dict[str, np.ndarray]:
        self._require(name)
        found: dict[str, np.ndarray] = {}
        for start in range(0, len(keys), _BATCH):
            records = self._client().retrieve(
                name, [LAYOUT.point_id(key) for key in keys[start : start + _BATCH]], with_payload=True, with_vectors=[LAYOUT.vector_name]
            )
            for record in records:
                found[record.payload["key"]] = np.asarray(record.vector[LAYOUT.vector_name], dtype=np.float32)
        return found

    def _all_vectors(self, name: str) -> dict[str, np.ndarray]:
        return {key: np.asarray(vector, np.float32) for key, vector in self._scroll(name, with_vectors=True).items()}

    def _scroll(self, name: str, with_vectors: bool) -> dict[str, Any]:
        self._require(name)
        found, offset = {}, None
        while True:
            records, offset = self._client().scroll(
                name, limit=_BATCH, offset=offset, with_payload=True, with_vectors=[LAYOUT.vector_name] if with_vectors else False
            )
            for record in records:
                found[record.payload["key"]] = record.vector[LAYOUT.vector_name] if with_vectors else None
            if offset is None:
                return found

    def _upsert(self, name: str, keys: Sequence[str], vectors: np.ndarray) -> None:
        from qdrant_client import models

        for start in range(0, len(keys), _BATCH):
            batch = keys[start : start + _BATCH]
            self._client().upsert(
                name,
                points=models.Batch(
                    ids=[LAYOUT.point_id(key) for key in batch],
                    vectors={LAYOUT.vector_name: vectors[start : start + _BATCH].tolist()},
                    payloads=[{"key": key} for key in batch],
                ),
                wait=True,
            )

    def _require(self, name: str) -> None:
        if not self.exists(name):
            raise CollectionNotFound(f"collection {name} does not exist on {self.url}")
