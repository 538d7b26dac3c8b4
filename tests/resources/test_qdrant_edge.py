"""The embedded Qdrant engine: collections are built whole, searched by cosine similarity."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from resources.qdrant_edge import QdrantEdgeResource
from thanosql.errors import DataError


@pytest.fixture
def store(tmp_path):
    return QdrantEdgeResource(path=str(tmp_path / "vectors"))


def _score_all(store, name: str, vector: np.ndarray) -> dict[str, float]:
    """Every point's cosine similarity to `vector`, by key."""
    return {hit.key: hit.score for hit in store.search(name, vector, limit=store.count(name), exact=True)}


def test_search_ranks_by_cosine_similarity(store):
    rng = np.random.default_rng(0)
    vectors = rng.normal(size=(500, 16)).astype(np.float32)
    keys = [f"img/{i}.jpg" for i in range(500)]
    assert store.build_collection("c1", keys, vectors) == 500
    query = vectors[42] * 3  # cosine ignores length
    hits = store.search("c1", query, limit=5, exact=True)
    expected = vectors @ query / (np.linalg.norm(vectors, axis=1) * np.linalg.norm(query))
    assert [hit.key for hit in hits] == [keys[i] for i in np.argsort(-expected)[:5]]
    assert hits[0].key == "img/42.jpg" and hits[0].score == pytest.approx(1.0, abs=1e-5)
    scores = _score_all(store, "c1", query)
    assert len(scores) == 500
    np.testing.assert_allclose([scores[k] for k in keys], expected, atol=1e-5)


def test_invalid_vectors_build_no_collection(store):
    with pytest.raises(DataError, match="NaN"):
        store.build_collection("bad", ["a"], np.array([[1.0, float("nan")]], dtype=np.float32))
    with pytest.raises(ValueError, match="2 keys"):
        store.build_collection("bad", ["a", "b"], np.ones((1, 2), np.float32))
    assert not store.exists("bad")
    assert list((store._collection_dir("bad")).parent.glob(".staging-*")) == []


def test_collections_are_never_rebuilt_in_place(store):
    store.build_collection("c2", ["a"], np.ones((1, 4), np.float32))
    with pytest.raises(FileExistsError):
        store.build_collection("c2", ["a"], np.ones((1, 4), np.float32))


def test_another_process_can_read_a_collection_this_one_has_open(store):
    store.build_collection("shared", ["a", "b"], np.eye(2, dtype=np.float32))
    assert store.count("shared") == 2  # opened here
    code = (
        "import numpy as np; from resources.qdrant_edge import QdrantEdgeResource;"
        f"s = QdrantEdgeResource(path={store.path!r});"
        "print(s.search('shared', np.array([0, 1], np.float32), limit=1)[0].key)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "b"


def disk_bytes(directory) -> int:
    """Bytes the files under `directory` take on disk (holes in sparse files take none)."""
    return sum(path.stat().st_blocks * 512 for path in directory.rglob("*") if path.is_file())


def test_small_collections_take_little_disk_even_after_an_update(store):
    rng = np.random.default_rng(1)
    vectors = rng.normal(size=(6, 128)).astype(np.float32)
    keys = [f"img/{i}.jpg" for i in range(6)]
    store.build_collection("six", keys, vectors)
    store.extend_collection("six", "six_updated", ["img/new.jpg"], vectors[:1] * 2, remove_keys=["img/5.jpg"])
    # Qdrant sizes each segment's files at 67 MB whatever they hold, as sparse files: copies stay sparse.
    for name in ("six", "six_updated"):
        assert disk_bytes(store._collection_dir(name)) < 1_000_000, name
    fresh_keys, fresh_vectors = [*keys[:5], "img/new.jpg"], np.concatenate([vectors[:5], vectors[:1] * 2])
    store.build_collection("six_fresh", fresh_keys, fresh_vectors)
    query = rng.normal(size=128).astype(np.float32)
    assert _score_all(store, "six_updated", query) == pytest.approx(_score_all(store, "six_fresh", query), abs=1e-6)
    assert store.vectors("six_updated", ["img/new.jpg"])["img/new.jpg"] == pytest.approx(store.vectors("six_fresh", ["img/new.jpg"])["img/new.jpg"])
