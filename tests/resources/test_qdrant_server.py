"""The production vector store: qdrant-client against a Qdrant server.

No Qdrant server can be installed where these tests run, so they drive qdrant-client's own
in-process engine (url=":memory:") through exactly the calls the server path makes, and check it
against the embedded store on the same data: same keys, same order, same scores.
"""

from __future__ import annotations

import uuid

import numpy as np
import pytest

from resources.qdrant_edge import QdrantEdgeResource
from resources.qdrant_server import QdrantServerResource
from resources.vector_store import CollectionNotFound
from thanosql.errors import DataError


@pytest.fixture
def server():
    return QdrantServerResource(url=":memory:")


@pytest.fixture
def data():
    rng = np.random.default_rng(3)
    vectors = rng.normal(size=(300, 16)).astype(np.float32)
    return [f"img/{i}.jpg" for i in range(300)], vectors


def name() -> str:
    return f"c_{uuid.uuid4().hex[:8]}"


def test_server_and_embedded_stores_answer_alike(server, data, tmp_path):
    keys, vectors = data
    embedded = QdrantEdgeResource(path=str(tmp_path / "vectors"))
    a, b = name(), name()
    assert server.build_collection(a, keys, vectors) == embedded.build_collection(b, keys, vectors) == 300
    query = vectors[7] + 0.1
    for limit in (4, 32):
        left, right = server.search(a, query, limit=limit, exact=True), embedded.search(b, query, limit=limit, exact=True)
        assert [h.key for h in left] == [h.key for h in right]
        np.testing.assert_allclose([h.score for h in left], [h.score for h in right], atol=1e-5)
    assert server.scores(a, query, keys[:5]) == pytest.approx(embedded.scores(b, query, keys[:5]), abs=1e-5)
    assert sorted(server.all_keys(a)) == sorted(keys)
    stored = server.vectors(a, keys[:3])
    np.testing.assert_allclose(stored[keys[0]], vectors[0] / np.linalg.norm(vectors[0]), atol=1e-5)


def test_extend_copies_into_a_new_collection_and_leaves_the_source(server, data):
    keys, vectors = data
    source, extended = name(), name()
    server.build_collection(source, keys[:200], vectors[:200])
    count = server.extend_collection(source, extended, keys[200:], vectors[200:], remove_keys=keys[:10])
    assert count == 290 and server.count(source) == 200
    assert set(server.all_keys(extended)) == set(keys[10:])
    server.point_alias("table__model", extended)
    assert server.count("table__model") == 290


def test_bad_vectors_and_missing_collections(server):
    with pytest.raises(DataError, match="NaN"):
        server.build_collection("bad", ["a"], np.array([[1.0, float("nan")]], dtype=np.float32))
    assert not server.exists("bad")
    with pytest.raises(CollectionNotFound):
        server.search("never_built", np.ones(2, np.float32), limit=1)
    built = name()
    server.build_collection(built, ["a"], np.ones((1, 4), np.float32))
    with pytest.raises(FileExistsError):
        server.build_collection(built, ["a"], np.ones((1, 4), np.float32))
    server.drop_collection(built)
    assert not server.exists(built)
