"""PREDICT: a classifier's labels for the images of a query's rows.

`predicted_rows` is what PREDICT adds to rows, however it runs: as a query (alone or nested in
a SELECT, in process) or, with OPTIONS (table_name=...), as a table asset downstream of the
tables read and of the model. Rows keep their order and columns; `predicted` is the most likely
label (of the label column's type), `confidence` its softmax probability, and `top_k=k` adds
`predicted_1`, `confidence_1` ... `predicted_k`, `confidence_k`, most likely first.
"""


import time
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from resources import CatalogResource, ModelRegistryResource, WarehouseResource, WorkspaceResource
from thanosql.errors import ObjectNotFoundError
from thanosql_assets.defs.checks import image_path_texts, require_column
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import QUERY_DIALECT, PredictionSpec, model_key, table_key
from thanosql_assets.defs.table_metadata import table_metadata

PREDICTED, CONFIDENCE = "predicted", "confidence"


def prediction_columns(top_k: int | None) -> list[str]:
    """The columns PREDICT adds."""
    ranked = [name for rank in range(1, (top_k or 0) + 1) for name in (f"{PREDICTED}_{rank}", f"{CONFIDENCE}_{rank}")]
    return [PREDICTED, CONFIDENCE, *ranked]


def serving_classifier(catalog: CatalogResource, model_registry: ModelRegistryResource, model: str) -> tuple[Any, str]:
    """The serving version of classifier `model`, loaded, and its version."""
    entry = catalog.get("model", model)
    if entry is None:
        raise ObjectNotFoundError(f"Model {model!r} does not exist.", hint="Create it with BUILD MODEL first.")
    return model_registry.load(model, entry.state["version"]), entry.state["version"]


def predicted_rows(
    rows: pd.DataFrame, classifier: Any, workspace: WorkspaceResource, image_col: str, batch_size: int, top_k: int | None
) -> pd.DataFrame:
    """`rows` with the prediction columns added (a DataError names the first unusable image)."""
    require_column(image_col, list(rows.columns))
    paths = [None if path is None else workspace.resolve(path) for path in image_path_texts(rows[image_col])]
    probabilities = classifier.predict_files_checked(paths, batch_size, column=image_col).probabilities
    ranked = np.argsort(-probabilities, axis=1, kind="stable")
    classes = classifier.classes
    result = rows.copy()

    def labels(indices: np.ndarray) -> pd.Series:
        return pd.Series([classes[index] for index in indices], index=result.index, dtype=None if len(indices) else object)

    def scores(indices: np.ndarray) -> pd.Series:
        return pd.Series(np.take_along_axis(probabilities, indices[:, None], axis=1)[:, 0].astype(np.float64), index=result.index)

    result[PREDICTED] = labels(ranked[:, 0])
    result[CONFIDENCE] = scores(ranked[:, 0])
    for rank in range(1, (top_k or 0) + 1):
        result[f"{PREDICTED}_{rank}"] = labels(ranked[:, rank - 1])
        result[f"{CONFIDENCE}_{rank}"] = scores(ranked[:, rank - 1])
    return result


def prediction_asset(spec: PredictionSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=spec.asset_key,
        deps=[*(table_key(name) for name in spec.tables), model_key(spec.model)],
        group_name="tables",
        kinds={"duckdb", "pytorch"},
        description=spec.statement,
    )
    def _prediction(
        context: dg.AssetExecutionContext,
        workspace: WorkspaceResource,
        warehouse: WarehouseResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
    ) -> dg.MaterializeResult:
        started = time.perf_counter()
        progress = Progress(context)
        rows = warehouse.query_from(spec.query, QUERY_DIALECT)
        classifier, version = serving_classifier(catalog, model_registry, spec.model)
        progress(f"classifying {len(rows)} images with {spec.model} version {version}")
        result = predicted_rows(rows, classifier, workspace, spec.image_col, spec.batch_size, spec.top_k)
        count = warehouse.replace_table(spec.table, result)
        seconds = time.perf_counter() - started
        catalog.put(spec.kind, spec.catalog_name, spec.to_dict(), {"rows": count, "model_version": version})
        progress(f"table {spec.table}: {count} rows classified in {seconds:.1f} s")
        return dg.MaterializeResult(
            metadata={
                **table_metadata(warehouse, spec.table, count),
                "model_version": int(version),
                "preview": dg.MetadataValue.md(warehouse.preview(spec.table).to_markdown(index=False)),
                "images_per_second": round(count / seconds, 1) if seconds > 0 else None,
                "seconds": round(seconds, 2),
            }
        )

    return _prediction
