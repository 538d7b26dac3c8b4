"""GET THANOSQL DATASET mnist_data: the tutorial's layout, drawn deterministically from MNIST."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from tests.conftest import MIRROR
from thanosql_assets.defs import mnist


@pytest.fixture(scope="module")
def labels():
    return mnist.read_idx(MIRROR / "train-labels-idx1-ubyte.gz")


def test_mirror_files_read_as_idx(labels):
    images = mnist.read_idx(MIRROR / "train-images-idx3-ubyte.gz")
    assert images.shape == (18000, 28, 28) and images.dtype == np.uint8
    assert labels.shape == (18000,)
    assert np.bincount(labels).tolist() == [1783, 2051, 1740, 1883, 1747, 1587, 1771, 1900, 1732, 1806]


def test_selection_is_balanced_disjoint_and_below_18000(labels):
    train, test = mnist.select_indices(labels)
    assert len(train) == 1000 and len(test) == 200
    assert not set(train) & set(test)
    assert max(train + test) < 18000
    assert np.bincount(labels[train]).tolist() == [100] * 10
    assert np.bincount(labels[test]).tolist() == [20] * 10


def test_selection_keeps_the_files_the_tutorial_shows(labels):
    train, test = mnist.select_indices(labels)
    assert train[:2] == [6782, 1810]
    assert test[:5] == [5099, 9239, 2242, 3451, 2631]
    assert test[-5:] == [8045, 9591, 7425, 2150, 5087]
    assert {923, 7645, 4391} <= set(test)
    assert labels[923] == 8


def test_selection_is_deterministic(labels):
    assert mnist.select_indices(labels) == mnist.select_indices(labels.copy())


def test_build_writes_images_and_csvs(tmp_path, labels):
    destination = tmp_path / "mnist_data"
    destination.mkdir()
    messages = []
    counts = mnist.build_mnist_data(
        MIRROR / "train-images-idx3-ubyte.gz", MIRROR / "train-labels-idx1-ubyte.gz", destination,
        "thanosql-dataset/mnist_data", messages.append,
    )
    assert counts == {"train": 1000, "test": 200}
    assert len(list((destination / "train").glob("*.jpg"))) == 1000
    assert len(list((destination / "test").glob("*.jpg"))) == 200
    with open(destination / "mnist_test.csv") as handle:
        rows = list(csv.DictReader(handle))
    assert list(rows[0]) == ["image_path", "filename", "label"]
    row_923 = next(row for row in rows if row["filename"] == "923.jpg")
    assert row_923 == {"image_path": "thanosql-dataset/mnist_data/test/923.jpg", "filename": "923.jpg", "label": "8"}
    with Image.open(destination / "test" / "923.jpg") as image:
        assert image.mode == "L" and image.size == (28, 28)
        original = mnist.read_idx(MIRROR / "train-images-idx3-ubyte.gz")[923].astype(int)
        assert np.abs(np.asarray(image, dtype=int) - original).mean() < 3  # JPEG at quality 95
    assert messages
