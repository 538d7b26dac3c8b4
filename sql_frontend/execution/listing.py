"""LIST: what the workspace holds, and what GET THANOSQL can fetch, as rows (a query's rows too:
`SELECT * FROM (LIST MODEL) WHERE class_name = 'SimCLR'`).

- LIST MODEL: `name, class_name, last_updated_utc` as ThanoSQL lists them (class_name: the
  algorithm, e.g. SimCLR or ConvNeXt_Tiny, or User_HuggingFace / User_PyTorch for uploaded and
  fetched models), then `version` (the serving MLflow version), `trained_on` (the tables it was
  trained on; where an uploaded or fetched model came from) and `quality` (held-out accuracy of a
  classifier, held-out P@4 of a SimCLR model; NULL when not measured).
- LIST THANOSQL MODEL: the same columns for the models GET THANOSQL MODEL can fetch by name:
  torchvision's ImageNet classifiers (quality: their published ImageNet top-1 accuracy) and the
  models of the mirror directory, with `available_offline`. Hugging Face Hub ids not in the
  mirror can be fetched too but are not listed: the Hub is not enumerable offline.
- LIST THANOSQL DATASET: `dataset_name, data_type, available_offline`.
- LIST TABLE: `table_name, rows` and `embedding_columns` (comma-separated, '' for none).
"""

from __future__ import annotations

import datetime as dt

import pandas as pd

from resources import (
    CatalogResource,
    DatasetSourceResource,
    ModelSourceResource,
    WarehouseResource,
)
from resources.model_source import TORCHVISION
from resources.warehouse import quote
from thanosql.errors import QueryError
from thanosql_assets.defs.datasets import DATASETS

MODEL_COLUMNS = ["name", "class_name", "last_updated_utc", "version", "trained_on", "quality"]


def list_models(catalog: CatalogResource) -> pd.DataFrame:
    rows = []
    for entry in sorted(catalog.list("model"), key=lambda entry: entry.name):
        spec, state = entry.spec, entry.state
        trained_on = (spec.get("origin") or spec["source"]) if "source" in spec else ", ".join(spec.get("tables", ()))
        quality = state.get("holdout_accuracy", state.get("holdout_p_at_4"))
        rows.append([entry.name, spec["algorithm"], _utc(entry.updated_at), int(state["version"]), trained_on, quality])
    return _models_frame(rows)


def list_published_models(model_source: ModelSourceResource) -> pd.DataFrame:
    import torchvision  # only here: listing torchvision's weights is worth its import time

    rows = []
    for network in torchvision.models.list_models(module=torchvision.models):
        weights = torchvision.models.get_model_weights(network).DEFAULT
        top1 = weights.meta.get("_metrics", {}).get("ImageNet-1K", {}).get("acc@1")
        name = TORCHVISION + network
        rows.append([name, "User_PyTorch", None, None, "ImageNet-1K", top1 / 100 if top1 else None, model_source.available_offline(name)])
    for name in model_source.mirrored_names():
        if not name.startswith(TORCHVISION):
            rows.append([name, "User_HuggingFace", None, None, None, None, True])
    frame = _models_frame([row[:-1] for row in rows])
    frame["available_offline"] = pd.Series([row[-1] for row in rows], dtype=bool)
    return frame


def list_datasets(dataset_source: DatasetSourceResource) -> pd.DataFrame:
    rows = [
        [recipe.name, recipe.data_type, all(dataset_source.available_offline(filename) for filename in recipe.files)]
        for recipe in sorted(DATASETS.values(), key=lambda recipe: recipe.name)
    ]
    return pd.DataFrame(rows, columns=["dataset_name", "data_type", "available_offline"]).astype({"available_offline": bool})


def list_tables(warehouse: WarehouseResource) -> pd.DataFrame:
    """Tables and views, as information_schema types them (BASE TABLE, VIEW)."""
    tables = warehouse.table_generations(fresh=True)
    listed = [(name, "BASE TABLE") for name in tables] + [(name, "VIEW") for name in warehouse.views()]
    rows = []
    for name, kind in sorted(listed):
        try:
            count = int(warehouse.query(f"SELECT count(*) AS n FROM {quote(name)}")["n"].iloc[0])
        except QueryError:  # a view whose rows cannot be read now (a division by zero since): listed, uncounted
            count = None
        rows.append([name, count, ", ".join(sorted(tables.get(name, {}))), kind])
    return pd.DataFrame(rows, columns=["table_name", "rows", "embedding_columns", "table_type"]).astype({"rows": "Int64"})


def _models_frame(rows: list[list]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=MODEL_COLUMNS)
    return frame.astype({"last_updated_utc": "datetime64[us]", "version": "Int64", "quality": "float64", "name": str, "class_name": str})


def _utc(moment: dt.datetime) -> dt.datetime:
    """As a naive UTC timestamp (a column of one type whatever the catalog's database returns)."""
    return moment.astimezone(dt.timezone.utc).replace(tzinfo=None) if moment.tzinfo else moment
