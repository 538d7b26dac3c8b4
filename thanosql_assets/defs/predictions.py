"""PREDICT: a classifier's labels for the images of a query's rows.

`predicted_rows` is what PREDICT adds to rows, however it runs: as a query (alone or nested in
a SELECT, in process) or, with OPTIONS (table_name=...), as a table asset downstream of the
tables read and of the model. Rows keep their order and columns; `predicted` is the most likely
label (of the label column's type), `confidence` its softmax probability, and `top_k=k` adds
`predicted_1`, `confidence_1` ... `predicted_k`, `confidence_k`, most likely first.
"""


import time
from collections.abc import Sequence
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from resources import CatalogResource, ModelRegistryResource, WarehouseResource, WorkspaceResource
from resources.warehouse import quote
from thanosql.errors import DataError, ObjectNotFoundError
from thanosql_assets.defs.checks import image_path_texts, require_column, require_image_paths
from thanosql_assets.defs.folders import folder_rows
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.skipped import skipped_markdown, skipped_summary
from thanosql_assets.defs.specs import QUERY_DIALECT, PredictionSpec, model_key, table_key
from thanosql_assets.defs.table_metadata import preview_markdown, table_metadata

PREDICTED, CONFIDENCE = "predicted", "confidence"


def prediction_columns(top_k: int | None) -> list[str]:
    """The columns PREDICT adds."""
    ranked = [name for rank in range(1, (top_k or 0) + 1) for name in (f"{PREDICTED}_{rank}", f"{CONFIDENCE}_{rank}")]
    return [PREDICTED, CONFIDENCE, *ranked]


def serving_classifier(
    catalog: CatalogResource, model_registry: ModelRegistryResource, model: str, labels: Sequence[str] | None = None
) -> tuple[Any, str]:
    """The serving version of classifier `model`, loaded, and its version; a zero-shot (CLIP)
    model classifies into `labels`."""
    entry = catalog.get("model", model)
    if entry is None:
        raise ObjectNotFoundError(f"Model {model!r} does not exist.", hint="Create it with BUILD MODEL first.")
    loaded = model_registry.load(model, entry.state["version"], entry.state.get("run_id"), listed=True)
    if getattr(loaded, "zero_shot", False):
        if not labels:
            raise DataError(f"Model {model!r} is a zero-shot (CLIP) model: it needs candidate labels.", hint="Add OPTIONS (labels=['cat', 'dog', ...]).")
        loaded = loaded.for_labels(list(labels))
    return loaded, entry.state["version"]


def predicted_rows(
    rows: pd.DataFrame,
    classifier: Any,
    workspace: WorkspaceResource,
    image_col: str,
    batch_size: int,
    top_k: int | None,
    on_error: str = "raise",
) -> tuple[pd.DataFrame, list[tuple[str, str]]]:
    """`rows` with the prediction columns added, and the (path, why) of each unusable image.

    on_error='raise': a DataError names the first unusable image. 'skip': its row keeps NULL
    predictions, and it is listed."""
    require_column(image_col, list(rows.columns))
    require_image_paths(rows[image_col], image_col)
    paths = [None if path is None else workspace.resolve(path) for path in image_path_texts(rows[image_col])]
    predicted = classifier.predict_files_checked(paths, batch_size, column=image_col, on_error=on_error)
    probabilities = np.full((len(rows), classifier.num_classes), np.nan, dtype=np.float32)
    probabilities[predicted.kept] = predicted.probabilities
    usable = np.zeros(len(rows), dtype=bool)
    usable[predicted.kept] = True
    ranked = np.argsort(-np.nan_to_num(probabilities), axis=1, kind="stable")
    classes = classifier.classes
    result = rows.copy()

    def labels(indices: np.ndarray) -> pd.Series:
        values = [classes[index] if ok else None for index, ok in zip(indices, usable)]
        return pd.Series(values, index=result.index, dtype=None if len(indices) and usable.all() else object)

    def scores(indices: np.ndarray) -> pd.Series:
        values = pd.Series(np.take_along_axis(probabilities, indices[:, None], axis=1)[:, 0].astype(np.float64), index=result.index)
        return values if usable.all() else values.astype("Float64").mask(~usable)  # NULL, not NaN, where nothing was predicted

    result[PREDICTED] = labels(ranked[:, 0])
    result[CONFIDENCE] = scores(ranked[:, 0])
    for rank in range(1, (top_k or 0) + 1):
        result[f"{PREDICTED}_{rank}"] = labels(ranked[:, rank - 1])
        result[f"{CONFIDENCE}_{rank}"] = scores(ranked[:, rank - 1])
    skipped = [(str(image.path) if image.path else "NULL", image.reason) for image in predicted.skipped]
    return result, skipped


def _reusable(warehouse: WarehouseResource, spec: PredictionSpec, previous: Any, version: str) -> pd.DataFrame | None:
    """A folder table's rows already predicted by this model version (rescans predict only new files)."""
    if not spec.folder or previous is None or previous.state.get("model_version") != version or not warehouse.table_exists(spec.table):
        return None
    if previous.spec.get("image_col") != spec.image_col or previous.spec.get("top_k") != spec.top_k:
        return None
    done = warehouse.query(f"SELECT * FROM {quote(spec.table)}")
    return done[done[PREDICTED].notna()] if PREDICTED in done.columns else None


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
        rows = folder_rows(workspace, spec) if spec.folder else warehouse.query_from(spec.query, QUERY_DIALECT)
        classifier, version = serving_classifier(catalog, model_registry, spec.model, spec.labels)
        done = _reusable(warehouse, spec, catalog.get(spec.kind, spec.catalog_name), version)
        new = rows if done is None else rows[~rows[spec.image_col].isin(done[spec.image_col])]
        progress(f"classifying {len(new)} {'new ' if done is not None else ''}images with {spec.model} version {version}")
        result, skipped = predicted_rows(new, classifier, workspace, spec.image_col, spec.batch_size, spec.top_k, spec.on_error)
        if done is not None:
            kept = done[done[spec.image_col].isin(rows[spec.image_col])]
            result = pd.concat([kept, result], ignore_index=True).sort_values(spec.image_col, kind="stable", ignore_index=True)
        if skipped:
            progress(f"skipped {len(skipped)} unusable images (on_error='skip'); their rows have no prediction: {skipped_summary(skipped)}")
        count = warehouse.replace_table(spec.table, result)
        seconds = time.perf_counter() - started
        catalog.put(spec.kind, spec.catalog_name, spec.to_dict(), {"rows": count, "model_version": version})
        progress(f"table {spec.table}: {count} rows, {len(new) - len(skipped)} classified in {seconds:.1f} s")
        return dg.MaterializeResult(
            metadata={
                **table_metadata(warehouse, spec.table, count),
                "model_version": int(version),
                "preview": dg.MetadataValue.md(preview_markdown(warehouse.preview(spec.table))),
                "classified": len(new) - len(skipped),
                "images_per_second": round(len(new) / seconds, 1) if seconds > 0 else None,
                "seconds": round(seconds, 2),
                "skipped_images": len(skipped),
                **({"skipped": dg.MetadataValue.md(skipped_markdown(skipped))} if skipped else {}),
                **({"folder": dg.MetadataValue.path(str(workspace.resolve(spec.folder)))} if spec.folder else {}),
            }
        )

    return _prediction
