"""The tutorial's `mnist_data`: 1,000 train and 200 test MNIST digits as JPEG files plus CSVs.

Images are MNIST training-set images named `<index>.jpg` by their training-set index, drawn
deterministically from indices below 18,000 (so the first 18,000 images suffice to build it),
100 per digit for train and 20 per digit for test. Every file name the tutorial shows is
kept in its place: train starts with 6782.jpg and 1810.jpg (5s), test starts with five 6s
(5099, 9239, 2242, 3451, 2631), ends with five 8s (8045 ... 5087), and holds the query image
923.jpg (an 8) and its neighbours 7645.jpg and 4391.jpg.
"""

from __future__ import annotations

import csv
import gzip
from collections.abc import Callable
from pathlib import Path

import numpy as np

from thanosql.errors import DataError

SOURCE_URLS = (
    "https://ossci-datasets.s3.amazonaws.com/mnist/",
    "http://yann.lecun.com/exdb/mnist/",
)
# Accepted checksums: the published full files, and the first-18,000-items files of the mirror.
SOURCE_FILES = {
    "images": (
        "train-images-idx3-ubyte.gz",
        ("f68b3c2dcbeaaa9fbdd348bbdeb94873", "dbed9c7e6eff2fc1eb1be227d7c7255c"),
    ),
    "labels": (
        "train-labels-idx1-ubyte.gz",
        ("d53e105ee54ea40749a09fcbcd1e9432", "e558efea9d5a27f900c142b0c2c8824d"),
    ),
}

INDEX_LIMIT = 18_000
TRAIN_PER_DIGIT = 100
TEST_PER_DIGIT = 20
SELECTION_SEED = 20220601

# Row order of the CSVs: grouped by digit, in the order the tutorial's tables show.
TRAIN_DIGIT_ORDER = (5, 0, 1, 2, 3, 4, 6, 7, 8, 9)
TEST_DIGIT_ORDER = (6, 0, 1, 2, 3, 4, 5, 7, 9, 8)
TRAIN_FIRST = (6782, 1810)
TEST_FIRST = (5099, 9239, 2242, 3451, 2631)
TEST_LAST = (8045, 9591, 7425, 2150, 5087)
TEST_ALSO = (923, 7645, 4391)


def read_idx(path: Path) -> np.ndarray:
    """An IDX file (gzip) as an array: uint8 images (n, 28, 28) or labels (n,)."""
    with gzip.open(path, "rb") as handle:
        data = handle.read()
    magic = int.from_bytes(data[0:4], "big")
    if magic >> 8 != 0x08:
        raise DataError(f"{path.name} is not an IDX file of unsigned bytes (magic {magic:#x}).")
    ndim = magic & 0xFF
    shape = tuple(int.from_bytes(data[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim))
    array = np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim)
    if array.size != int(np.prod(shape)):
        raise DataError(f"{path.name} is truncated: header says {shape}, found {array.size} bytes.")
    return array.reshape(shape)


def select_indices(labels: np.ndarray) -> tuple[list[int], list[int]]:
    """Training-set indices for the train and test splits, in CSV row order."""
    labels = labels[:INDEX_LIMIT]
    rng = np.random.default_rng(SELECTION_SEED)
    pinned_test = set(TEST_FIRST + TEST_LAST + TEST_ALSO)
    pinned_train = set(TRAIN_FIRST)
    train: dict[int, list[int]] = {}
    test: dict[int, list[int]] = {}
    for digit in range(10):
        pool = [int(i) for i in rng.permutation(np.flatnonzero(labels == digit)) if int(i) not in pinned_test | pinned_train]
        fixed_train = [i for i in TRAIN_FIRST if labels[i] == digit]
        fixed_test = [i for i in TEST_FIRST + TEST_ALSO if labels[i] == digit]
        fixed_test_last = [i for i in TEST_LAST if labels[i] == digit]
        n_test = TEST_PER_DIGIT - len(fixed_test) - len(fixed_test_last)
        test[digit] = fixed_test + pool[:n_test] + fixed_test_last
        train[digit] = fixed_train + pool[n_test : n_test + TRAIN_PER_DIGIT - len(fixed_train)]
    return (
        [i for digit in TRAIN_DIGIT_ORDER for i in train[digit]],
        [i for digit in TEST_DIGIT_ORDER for i in test[digit]],
    )


def build_mnist_data(
    images_path: Path,
    labels_path: Path,
    destination: Path,
    relative_root: str,
    progress: Callable[[str], None],
) -> dict[str, int]:
    """Write train/, test/, mnist_train.csv and mnist_test.csv into `destination`.

    `relative_root` prefixes the image_path column (e.g. "thanosql-dataset/mnist_data"), the
    path as seen from the workspace, so tables copied from the CSVs find their images.
    """
    from PIL import Image

    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if len(images) < INDEX_LIMIT or len(labels) < INDEX_LIMIT:
        raise DataError(f"MNIST files hold {len(images)} images and {len(labels)} labels; {INDEX_LIMIT} are needed.")
    train, test = select_indices(labels)
    counts = {}
    for split, indices in (("train", train), ("test", test)):
        folder = destination / split
        folder.mkdir(parents=True)
        rows = []
        for index in indices:
            filename = f"{index}.jpg"
            Image.fromarray(images[index], mode="L").save(folder / filename, quality=95)
            rows.append((f"{relative_root}/{split}/{filename}", filename, int(labels[index])))
        with open(destination / f"mnist_{split}.csv", "w", newline="") as handle:
            writer = csv.writer(handle)
            writer.writerow(["image_path", "filename", "label"])
            writer.writerows(rows)
        counts[split] = len(rows)
        progress(f"wrote {len(rows)} {split} images and mnist_{split}.csv")
    return counts
