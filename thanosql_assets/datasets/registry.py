"""The datasets GET THANOSQL DATASET can fetch, by name."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from resources.dataset_source import DatasetSourceResource
from thanosql_assets.datasets import mnist


@dataclass(frozen=True)
class DatasetRecipe:
    name: str
    description: str
    # (source, staging dir, path prefix seen from the workspace, progress) -> counts
    build: Callable[[DatasetSourceResource, Path, str, Callable[[str], None]], dict[str, int]]


def _build_mnist(source: DatasetSourceResource, destination: Path, relative_root: str, progress) -> dict[str, int]:
    fetched = {
        role: source.fetch(filename, [url + filename for url in mnist.SOURCE_URLS], md5s, progress)
        for role, (filename, md5s) in mnist.SOURCE_FILES.items()
    }
    return mnist.build_mnist_data(fetched["images"], fetched["labels"], destination, relative_root, progress)


DATASETS: dict[str, DatasetRecipe] = {
    "mnist_data": DatasetRecipe(
        name="mnist_data",
        description="MNIST handwritten digits: 1,000 train and 200 test JPEG images with mnist_train.csv and mnist_test.csv",
        build=_build_mnist,
    ),
}
