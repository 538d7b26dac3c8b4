"""Dagster definitions of ThanoSQL objects: an asset per object spec, and retraining schedules."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import dagster as dg

from resources import CatalogResource
from thanosql_assets.defs.datasets import dataset_asset
from thanosql_assets.defs.embedding_op import embedding_assets
from thanosql_assets.defs.evaluations import evaluation_check
from thanosql_assets.defs.generations import partitioned_embedding_assets
from thanosql_assets.defs.models import model_asset, retraining_schedule
from thanosql_assets.defs.predictions import prediction_asset
from thanosql_assets.defs.specs import (
    DatasetSpec,
    EmbeddingSpec,
    ModelSpec,
    PredictionSpec,
    SavedTableSpec,
    Spec,
    TableSpec,
    UploadedModelSpec,
    spec_from_dict,
)
from thanosql_assets.defs.tables import saved_table_asset, table_asset
from thanosql_assets.defs.uploads import uploaded_model_asset

_FACTORIES = {
    DatasetSpec: dataset_asset,
    TableSpec: table_asset,
    SavedTableSpec: saved_table_asset,
    ModelSpec: model_asset,
    UploadedModelSpec: uploaded_model_asset,
    EmbeddingSpec: lambda spec: partitioned_embedding_assets(spec) if spec.partitioned else embedding_assets(spec),
    PredictionSpec: prediction_asset,
}


def _assets_of(spec: Spec) -> list[dg.AssetsDefinition]:
    made = _FACTORIES[type(spec)](spec)
    return made if isinstance(made, list) else [made]


def catalog_specs(catalog: CatalogResource) -> list[Spec]:
    """The spec of every object in the catalog."""
    return [spec_from_dict(entry.kind, entry.spec) for entry in catalog.list()]


def build_definitions(
    specs: Iterable[Spec], resources: dict[str, object], jobs: Sequence[dg.JobDefinition] = ()
) -> dg.Definitions:
    """The assets of `specs`, the evaluation checks and retraining schedules of their models, and
    `jobs`, bound to `resources`."""
    specs = list(specs)
    return dg.Definitions(
        assets=[asset for spec in specs for asset in _assets_of(spec)],
        asset_checks=[evaluation_check(spec) for spec in specs if isinstance(spec, (ModelSpec, UploadedModelSpec)) and spec.is_classifier],
        jobs=list(jobs),
        schedules=[retraining_schedule(spec, spec.schedule) for spec in specs if isinstance(spec, ModelSpec) and spec.schedule],
        resources=resources,
        # Each statement is one heavy step; a subprocess per step would only add seconds.
        executor=dg.in_process_executor,
    )
