"""Retrieval quality with labels the model never saw: precision@k of cosine nearest neighbours.

For each query image, the k gallery images most similar to it (cosine) are looked up; P@k is
the share of them carrying the query's label, averaged over queries. Raw pixels give the
baseline every learned embedding must beat.
"""

from collections.abc import Sequence

import numpy as np

from thanosql_assets.models.vectors import l2_normalize


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Images or embeddings as unit rows (N x ... -> N x D)."""
    return l2_normalize(np.asarray(vectors, dtype=np.float32).reshape(len(vectors), -1))


def precision_at_k(
    gallery: np.ndarray,
    gallery_labels: Sequence,
    queries: np.ndarray,
    query_labels: Sequence,
    ks: Sequence[int] = (4, 10),
) -> dict[int, float]:
    """Mean precision@k for each k (k larger than the gallery is clipped to its size)."""
    gallery_labels = np.asarray(gallery_labels)
    query_labels = np.asarray(query_labels)
    similarity = _unit(queries) @ _unit(gallery).T
    deepest = min(max(ks), len(gallery))
    nearest = np.argpartition(-similarity, deepest - 1, axis=1)[:, :deepest]
    order = np.take_along_axis(similarity, nearest, axis=1).argsort(axis=1)[:, ::-1]
    ranked = np.take_along_axis(nearest, order, axis=1)
    hits = gallery_labels[ranked] == query_labels[:, None]
    return {k: float(hits[:, : min(k, deepest)].mean()) for k in ks}


def holdout_split(labels: Sequence, fraction: float, seed: int, limit: int = 1000) -> tuple[np.ndarray, np.ndarray]:
    """Indices (train, held out): about `fraction` of each label held out, at most `limit` in all."""
    labels = np.asarray(labels)
    rng = np.random.default_rng(seed)
    held: list[int] = []
    for label in np.unique(labels):
        members = np.flatnonzero(labels == label)
        held.extend(rng.permutation(members)[: int(round(len(members) * fraction))])
    held_out = np.sort(rng.permutation(np.array(held, dtype=int))[:limit])
    train = np.setdiff1d(np.arange(len(labels)), held_out)
    return train, held_out
