"""GET THANOSQL DATASET: one asset per dataset, its files under <workspace>/thanosql-dataset/<name>."""

import shutil
import time
import uuid

import dagster as dg

from resources import CatalogResource, DatasetSourceResource, WorkspaceResource
from resources.workspace import DATASETS_DIRNAME
from thanosql_assets.datasets.registry import DATASETS
from thanosql_assets.progress import Progress
from thanosql_assets.specs import DatasetSpec, spec_to_dict


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
        catalog.put(spec.kind, spec.catalog_name, spec_to_dict(spec), {"path": str(final), "files": counts})
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
