"""GET THANOSQL DATASET: the datasets it can fetch, and one asset per dataset, its files under
<workspace>/thanosql-dataset/<name>."""


import shutil
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from resources import CatalogResource, DatasetSourceResource, WorkspaceResource
from resources.workspace import DATASETS_DIRNAME
from thanosql_assets.defs import mnist
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import DatasetSpec


@dataclass(frozen=True)
class DatasetRecipe:
    name: str
    description: str
    files: tuple[str, ...]  # what `build` fetches from the dataset source
    # (source, staging dir, path prefix seen from the workspace, progress) -> counts
    build: Callable[[DatasetSourceResource, Path, str, Callable[[str], None]], dict[str, int]]
    data_type: str = "image"


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
        files=tuple(filename for filename, _ in mnist.SOURCE_FILES.values()),
        build=_build_mnist,
    ),
}


def dataset_asset(spec: DatasetSpec) -> dg.AssetsDefinition:
    recipe = DATASETS[spec.name]

    @dg.asset(
        key=spec.asset_key,
        group_name="datasets",
        kinds={"file"},
        description=f"GET THANOSQL DATASET {spec.name}: {recipe.description}",
    )
    def _dataset(
        context: dg.AssetExecutionContext,
        workspace: WorkspaceResource,
        dataset_source: DatasetSourceResource,
        catalog: CatalogResource,
    ) -> dg.MaterializeResult:
        progress = Progress(context)
        started = time.perf_counter()
        final = workspace.datasets_dir / spec.name
        staging = workspace.datasets_dir / f".staging-{spec.name}-{uuid.uuid4().hex[:8]}"
        staging.mkdir(parents=True)
        try:
            counts = recipe.build(dataset_source, staging, f"{DATASETS_DIRNAME}/{spec.name}", progress)
            # Swap the finished directory in; the old one is kept until the new one is in place.
            retired = final.with_name(f".retired-{spec.name}-{uuid.uuid4().hex[:8]}")
            if final.exists():
                final.rename(retired)
            staging.rename(final)
            shutil.rmtree(retired, ignore_errors=True)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
        catalog.put(spec.kind, spec.catalog_name, spec.to_dict(), {"path": str(final), "files": counts})
        progress(f"dataset {spec.name} ready in {final}")
        return dg.MaterializeResult(
            metadata={
                "path": dg.MetadataValue.path(str(final)),
                **{f"{split}_images": count for split, count in counts.items()},
                "source": dataset_source.mirror or "download",
                "seconds": round(time.perf_counter() - started, 2),
            }
        )

    return _dataset
