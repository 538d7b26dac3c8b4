"""Embedding vectors: stored and compared L2-normalized, so cosine similarity is a dot product."""

import numpy as np


def l2_normalize(vectors: np.ndarray) -> np.ndarray:
    """float32 rows of unit length (N x D -> N x D); zero rows stay zero."""
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
