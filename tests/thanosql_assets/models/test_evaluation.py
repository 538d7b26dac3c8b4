"""P@k of cosine nearest neighbours, and the stratified held-out split."""

import numpy as np
import pytest

from thanosql_assets.models.evaluation import holdout_split, precision_at_k


def test_precision_at_k_by_hand():
    gallery = np.array([[1, 0], [0.9, 0.1], [0, 1], [0.1, 0.9], [-1, 0]], dtype=np.float32)
    labels = np.array(["a", "a", "b", "b", "c"])
    queries = np.array([[1, 0.05], [0.05, 1]], dtype=np.float32)
    result = precision_at_k(gallery, labels, queries, np.array(["a", "b"]), ks=(1, 2, 4))
    assert result == {1: 1.0, 2: 1.0, 4: 0.5}


def test_cosine_ignores_length():
    gallery = np.array([[10, 0], [0, 0.1]], dtype=np.float32)
    assert precision_at_k(gallery, [0, 1], np.array([[0, 5.0]]), [1], ks=(1,)) == {1: 1.0}


def test_k_larger_than_the_gallery_is_clipped():
    assert precision_at_k(np.eye(3), [0, 0, 1], np.eye(3)[:1], [0], ks=(10,)) == {10: pytest.approx(2 / 3)}


def test_holdout_is_stratified_disjoint_and_deterministic():
    labels = np.repeat(np.arange(10), 100)
    train, held = holdout_split(labels, 0.1, seed=0)
    assert len(held) == 100 and np.bincount(labels[held]).tolist() == [10] * 10
    assert not set(train) & set(held) and len(train) + len(held) == 1000
    again = holdout_split(labels, 0.1, seed=0)
    assert np.array_equal(train, again[0]) and np.array_equal(held, again[1])


def test_holdout_is_capped():
    labels = np.repeat(np.arange(2), 10_000)
    assert len(holdout_split(labels, 0.5, seed=1, limit=1000)[1]) == 1000
