"""The Dagster code location: one asset per ThanoSQL object in the catalog, plus the search job.

`dagster dev -w workspace.yaml` loads this module (with THANOSQL_HOME pointing at the
workspace); the SQL frontend builds the same definitions, plus the object a statement is
about to create, and materializes them in process.
"""

from __future__ import annotations

from collections.abc import Iterable

import dagster as dg

from resources import CatalogResource, Settings, build_resources
from thanosql_assets.datasets.assets import dataset_asset
from thanosql_assets.embeddings.assets import embedding_assets
from thanosql_assets.models.assets import model_asset, retraining_schedule
from thanosql_assets.search.ops import RESULTS_IO_MANAGER, search_job
from thanosql_assets.specs import DatasetSpec, EmbeddingSpec, ModelSpec, Spec, TableSpec, spec_from_dict
from thanosql_assets.statements import statement_job
from thanosql_assets.tables.assets import table_asset

_FACTORIES = {
    DatasetSpec: dataset_asset,
    TableSpec: table_asset,
    ModelSpec: model_asset,
    EmbeddingSpec: embedding_assets,
}


def catalog_specs(catalog: CatalogResource) -> list[Spec]:
    return [spec_from_dict(entry.kind, entry.spec) for entry in catalog.list()]


def build_definitions(specs: Iterable[Spec], resources: dict[str, object]) -> dg.Definitions:
    specs = list(specs)
    return dg.Definitions(
        assets=[_FACTORIES[type(spec)](spec) for spec in specs],
        jobs=[search_job, statement_job],
        schedules=[
            retraining_schedule(spec, spec.options["schedule"])
            for spec in specs
            if isinstance(spec, ModelSpec) and spec.options.get("schedule")
        ],
        resources={**resources, RESULTS_IO_MANAGER: dg.mem_io_manager},
        # Each statement is one heavy step; a subprocess per step would only add seconds.
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    settings = Settings.from_env()
    settings.ensure_dirs()
    resources = build_resources(settings)
    return build_definitions(catalog_specs(resources["catalog"]), resources)
