"""What every model asset shares: its training images, its MLflow links, and whether a new
version replaces the serving one."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import dagster as dg
import numpy as np
import pandas as pd

from resources import CatalogResource, ModelRegistryResource, WarehouseResource, WorkspaceResource
from thanosql.errors import DataError, ThanoSQLError
from thanosql_assets.defs.checks import image_path_texts, require_column, require_image_paths
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.skipped import skipped_markdown, skipped_summary
from thanosql_assets.defs.specs import QUERY_DIALECT, ModelSpec
from thanosql_assets.models.images import ImageGeometry

MIN_LABELLED_ROWS = 20  # below this a held-out measurement says nothing
MAX_UNLABELLED = 10_000  # self-training takes a seeded sample of at most this many unlabelled images
STATEMENT_TAG = "thanosql/statement"  # set on runs a ThanoSQL statement started


@dataclass(frozen=True)
class TrainingImages:
    """A model's training rows with their images decoded (rows without a usable image left out under on_error='skip')."""

    images: np.ndarray  # uint8 N x C x H x W
    rows: pd.DataFrame  # the N rows they come from
    geometry: ImageGeometry
    skipped: list[tuple[str, str]]  # (path or "NULL", why) of each row left out

    def skipped_metadata(self) -> dict[str, Any]:
        return {
            "skipped_images": len(self.skipped),
            **({"skipped": dg.MetadataValue.md(skipped_markdown(self.skipped))} if self.skipped else {}),
        }


def starting_model(spec: ModelSpec, catalog: CatalogResource, model_registry: ModelRegistryResource) -> Any:
    """The serving version of the model `spec` starts from (`base_model`, or a `pretrained` model), loaded."""
    name = spec.start_model
    entry = catalog.get("model", name)
    if entry is None:
        raise DataError(
            f"Model {spec.name} starts from model {name!r}, which no longer exists.",
            hint=f"Build or upload {name} again, or build {spec.name} without it.",
        )
    return model_registry.load(name, entry.state["version"], entry.state.get("run_id"), listed=True)


def training_images(
    spec: ModelSpec,
    workspace: WorkspaceResource,
    warehouse: WarehouseResource,
    progress: Progress,
    image_size: int | None,
    geometry: ImageGeometry | None = None,
    columns: tuple[tuple[str, str], ...] = (),
) -> TrainingImages:
    """The rows of `spec.query` and their images, decoded at `geometry` (default: inferred from the
    images, resized to `image_size` when large); `columns` ((option, column) pairs) must be among the rows' columns too."""
    from thanosql_assets.models.images import check_files_exist, decode_images, infer_geometry

    rows = warehouse.query_from(spec.query, QUERY_DIALECT)
    image_col = spec.image_col
    require_column(image_col, list(rows.columns), rows=f"the training rows of {spec.name}")
    for option, column in columns:
        require_column(column, list(rows.columns), option=option, rows=f"the training rows of {spec.name}")
    require_image_paths(rows[image_col], image_col)
    paths = [None if path is None else workspace.resolve(path) for path in image_path_texts(rows[image_col])]
    if spec.on_error == "raise":
        check_files_exist(paths, image_col)  # every missing file in one message, before any decoding
    geometry = geometry or infer_geometry(paths, image_size, column=image_col, on_error=spec.on_error)
    started = time.perf_counter()
    decoded = decode_images(paths, geometry, column=image_col, on_error=spec.on_error)
    skipped = [(str(image.path) if image.path else "NULL", image.reason) for image in decoded.skipped]
    progress(f"decoded {len(decoded.images)} images in {time.perf_counter() - started:.1f} s")
    if skipped:
        progress(f"skipped {len(skipped)} unusable images (on_error='skip'): {skipped_summary(skipped)}")
    if not len(decoded.images):
        raise DataError(f"No usable image to train {spec.name} on: all {len(skipped)} were skipped.", hint="Fix the image files or the query's rows.")
    return TrainingImages(decoded.images, rows.iloc[decoded.kept].reset_index(drop=True), geometry, skipped)


def unlabelled_images(
    spec: ModelSpec, data: TrainingImages, catalog: CatalogResource, workspace: WorkspaceResource, warehouse: WarehouseResource, progress: Progress
) -> np.ndarray:
    """Self-training's images (uint8 N x C x H x W at the classifier's geometry): those of the
    SimCLR base model's training rows that `spec`'s own rows do not name (held-out rows
    included, so they stay unseen), at most MAX_UNLABELLED of them; unusable files are left out."""
    from thanosql_assets.defs.specs import spec_from_dict
    from thanosql_assets.models.images import decode_images

    base = spec_from_dict("model", catalog.get("model", spec.base_model).spec)
    geometry = data.geometry
    nothing = np.zeros((0, geometry.channels, geometry.height, geometry.width), dtype=np.uint8)
    try:
        rows = warehouse.query_from(base.query, QUERY_DIALECT)
    except ThanoSQLError as error:  # its table was dropped or changed since: train on the labelled rows alone
        progress(f"self-training skipped: {base.name}'s training rows cannot be read now ({error.message})")
        return nothing
    if base.image_col not in rows.columns:
        progress(f"self-training skipped: {base.name}'s training rows no longer have column {base.image_col!r}")
        return nothing
    labelled = {workspace.resolve(path) for path in image_path_texts(data.rows[spec.image_col]) if path is not None}
    paths = [path for path in dict.fromkeys(workspace.resolve(path) for path in image_path_texts(rows[base.image_col]) if path is not None) if path not in labelled]
    if len(paths) > MAX_UNLABELLED:
        chosen = np.random.default_rng(spec.training.seed).choice(len(paths), MAX_UNLABELLED, replace=False)
        paths = [paths[index] for index in sorted(chosen)]
    if not paths:
        progress(f"self-training: {base.name} was trained on no images beyond these labelled rows")
        return nothing
    decoded = decode_images(paths, geometry, on_error="skip")
    unusable = f" ({len(decoded.skipped)} unusable files left out)" if decoded.skipped else ""
    progress(f"self-training: {len(decoded.images)} unlabelled images from {base.name}'s training rows{unusable}")
    return decoded.images


def mlflow_links(model_registry: ModelRegistryResource, run: Any, name: str, version: str) -> dict[str, Any]:
    """Where to find the run, its artifacts and the model version: pages of the MLflow UI when there is one."""
    run_url = model_registry.run_url(run.info.experiment_id, run.info.run_id)
    if run_url is None:
        return {"mlflow_run_id": run.info.run_id, "artifacts": _artifact_location(run.info.artifact_uri)}
    return {
        "mlflow_run_id": run.info.run_id,
        "mlflow_run": dg.MetadataValue.url(run_url),
        "mlflow_model_version": dg.MetadataValue.url(model_registry.model_version_url(name, version)),
        "artifacts": dg.MetadataValue.url(f"{run_url}/artifacts"),
    }


def _artifact_location(uri: str) -> dg.MetadataValue:
    """A local artifact directory as a path (browsers do not open file:// links from a web page)."""
    parsed = urlparse(uri)
    return dg.MetadataValue.path(url2pathname(parsed.path) if parsed.scheme == "file" else uri)


def promotion(
    run_tags: dict[str, str],
    serving: dict | None,
    quality: dict[str, float],
    metric: str,
    label: str,
    rescore: Callable[[], float | None] | None = None,
) -> str | None:
    """Why a newly trained version must not replace the serving one, or None to promote it.

    A BUILD MODEL statement always promotes (the user asked for this model). Retraining that no
    statement asked for — a schedule's tick, a materialization from the UI — promotes only if the
    held-out quality (`metric` of the state, shown as `label`) does not drop below the serving
    version's, measured again on the same held-out rows (`rescore`): the rows, or their labels,
    may have changed since the serving version was measured, and then its recorded figure says
    nothing of the new version. The recorded figure serves where it cannot be measured again.
    """
    if STATEMENT_TAG in run_tags or serving is None:
        return None
    after = quality.get(metric)
    if after is None:
        return None
    before = rescore() if rescore is not None else None
    same_rows = before is not None
    before = before if same_rows else serving.get(metric)
    if before is None or after >= before:
        return None
    return f"{label} {after:.4f} is below the serving version's {before:.4f}" + (" on the same held-out rows" if same_rows else "")


def not_promoted(
    model_registry: ModelRegistryResource, spec: ModelSpec, version: str, serving: dict, reason: str, progress: Progress, metadata: dict
) -> dg.MaterializeResult:
    """Keep the serving version: the new one stays registered in MLflow (tagged), not served."""
    model_registry.client().set_model_version_tag(spec.name, version, "thanosql.promoted", "false")
    progress(f"model {spec.name} version {version} not promoted: {reason}; version {serving['version']} keeps serving")
    return dg.MaterializeResult(
        metadata={**metadata, "model_version": int(serving["version"]), "candidate_version": int(version), "promoted": False, "reason": reason}
    )
