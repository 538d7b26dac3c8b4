"""BUILD MODEL: one asset per model, trained with Lightning and tracked in MLflow.

Each materialization is one MLflow run: every option as a param, loss and images/s per epoch as
metrics, a picture of augmented pairs and the loss curve as artifacts, and the model logged with
its signature and registered as a new version of the registered model named after the ThanoSQL
model, described by its statement, data, loss and quality. When the
rows carry labels (`label_col`), a share of them (`holdout`) is kept out of training and used
to measure retrieval quality (P@4, P@10, beside raw pixels); labels never reach training.
Only once everything succeeded does the `serving` alias move to the new version and the catalog
point at it, so a failed build leaves the serving model untouched.
"""

import dataclasses
import time
from typing import Any
from urllib.parse import urlparse
from urllib.request import url2pathname

import dagster as dg
import numpy as np

from resources import CatalogResource, ModelRegistryResource, WarehouseResource, WorkspaceResource
from thanosql.errors import DataError
from thanosql_assets.defs.checks import image_path_texts, require_column
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.skipped import skipped_markdown, skipped_summary
from thanosql_assets.defs.specs import QUERY_DIALECT, ModelSpec, table_key

MIN_LABELLED_ROWS = 20  # below this a held-out measurement says nothing
STATEMENT_TAG = "thanosql/statement"  # set on runs a ThanoSQL statement started


def model_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=spec.asset_key,
        deps=[table_key(name) for name in spec.tables],
        group_name="models",
        kinds={"pytorch", "mlflow"},
        description=spec.statement,
    )
    def _model(
        context: dg.AssetExecutionContext,
        workspace: WorkspaceResource,
        warehouse: WarehouseResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
    ) -> dg.MaterializeResult:
        import mlflow
        import mlflow.pytorch
        import torch

        from thanosql_assets.models.evaluation import holdout_split, precision_at_k
        from thanosql_assets.models.images import check_files_exist, decode_images, infer_geometry
        from thanosql_assets.models.pictures import augmented_pairs, loss_curve
        from thanosql_assets.models.simclr.trainer import train_simclr

        progress = Progress(context)
        config = spec.training
        rows = warehouse.query_from(spec.query, QUERY_DIALECT)
        image_col, label_col = spec.image_col, spec.label_col
        require_column(image_col, list(rows.columns), rows=f"the training rows of {spec.name}")
        paths = [None if path is None else workspace.resolve(path) for path in image_path_texts(rows[image_col])]
        if spec.on_error == "raise":
            check_files_exist(paths, image_col)  # every missing file in one message, before any decoding
        geometry = infer_geometry(paths, config.image_size, column=image_col, on_error=spec.on_error)
        decode_started = time.perf_counter()
        decoded = decode_images(paths, geometry, column=image_col, on_error=spec.on_error)
        images, rows = decoded.images, rows.iloc[decoded.kept].reset_index(drop=True)
        skipped = [(str(image.path) if image.path else "NULL", image.reason) for image in decoded.skipped]
        progress(f"decoded {len(images)} images in {time.perf_counter() - decode_started:.1f} s")
        if skipped:
            progress(f"skipped {len(skipped)} unusable images (on_error='skip'): {skipped_summary(skipped)}")
        if not len(images):
            raise DataError(f"No usable image to train {spec.name} on: all {len(skipped)} were skipped.", hint="Fix the image files or the query's rows.")

        evaluate = (
            spec.holdout > 0
            and label_col in rows.columns
            and rows[label_col].notna().all()
            and len(rows) >= MIN_LABELLED_ROWS
        )
        labels = rows[label_col].to_numpy() if evaluate else None
        if evaluate:
            train_index, held_index = holdout_split(labels, spec.holdout, config.seed)
            progress(f"holding out {len(held_index)} labelled rows to measure retrieval quality (labels are not used for training)")
        else:
            train_index, held_index = np.arange(len(images)), np.array([], dtype=int)
        train_images = images[train_index]

        with model_registry.start_run(
            run_name=spec.name, tags={"thanosql.model": spec.name, "dagster.run_id": context.run_id}
        ) as run:
            mlflow.log_params({"algorithm": spec.algorithm, "query": spec.query[:500], **spec.options})

            def log_epoch(epoch: int, loss: float, images_per_second: float) -> None:
                mlflow.log_metrics({"loss": loss, "images_per_second": images_per_second}, step=epoch)

            result = train_simclr(train_images, geometry, config, progress, on_epoch=log_epoch)
            requested, resolved = dataclasses.asdict(config), dataclasses.asdict(result.config)
            mlflow.log_params({f"resolved.{key}": value for key, value in resolved.items() if requested[key] != value})
            mlflow.log_metrics({"training_seconds": result.seconds, "train_images": len(train_images)})
            mlflow.log_image(augmented_pairs(train_images, result.module.augment), "augmentations.png")
            mlflow.log_figure(loss_curve(result.epoch_losses, f"{spec.name}: SimCLR loss"), "loss_curve.png")

            quality: dict[str, float] = {}
            if evaluate:
                gallery = result.embedder.embed(train_images)
                queries = result.embedder.embed(images[held_index])
                learned = precision_at_k(gallery, labels[train_index], queries, labels[held_index])
                raw = precision_at_k(train_images, labels[train_index], images[held_index], labels[held_index])
                quality = {
                    "holdout_p_at_4": learned[4],
                    "holdout_p_at_10": learned[10],
                    "raw_pixels_p_at_4": raw[4],
                    "raw_pixels_p_at_10": raw[10],
                }
                mlflow.log_metrics({**quality, "holdout_images": len(held_index)})
                progress(
                    f"retrieval quality on {len(held_index)} held-out rows: P@4 {learned[4]:.3f}, P@10 {learned[10]:.3f} "
                    f"(raw pixels: P@4 {raw[4]:.3f})"
                )
            progress("logging the model to MLflow")
            info = mlflow.pytorch.log_model(
                result.embedder,
                name="model",
                registered_model_name=spec.name,
                # pickle keeps ImageEmbedder whole (preprocessing and `embed`), not just a traced graph
                serialization_format="pickle",
                pip_requirements=[f"torch=={torch.__version__.split('+')[0]}"],
                signature=embedder_signature(result.embedder),
            )
            version = str(info.registered_model_version)

        final_loss = result.epoch_losses[-1]
        model_registry.describe_version(
            spec.name, version, version_description(spec, len(rows), len(train_images), final_loss, quality)
        )
        links = mlflow_links(model_registry, run, spec.name, version)
        previous = catalog.get(spec.kind, spec.catalog_name)
        verdict = promotion(context.run.tags, previous.state if previous else None, quality)
        if verdict is not None:
            # Registered (MLflow keeps every version), but the serving model stays: a scheduled
            # retraining must not make search worse.
            model_registry.client().set_model_version_tag(spec.name, version, "thanosql.promoted", "false")
            progress(f"model {spec.name} version {version} not promoted: {verdict}; version {previous.state['version']} keeps serving")
            return dg.MaterializeResult(
                metadata={
                    **links,
                    "model_version": int(previous.state["version"]),
                    "candidate_version": int(version),
                    "promoted": False,
                    "reason": verdict,
                    **{f"quality/{name}": round(value, 4) for name, value in quality.items()},
                }
            )
        model_registry.set_serving(spec.name, version)
        state = {
            "run_id": run.info.run_id,
            "version": version,
            "uri": model_registry.model_uri(spec.name, version),
            "embedding_dim": result.embedder.embedding_dim,
            "geometry": [geometry.channels, geometry.height, geometry.width],
            "final_loss": final_loss,
            **quality,
        }
        catalog.put(spec.kind, spec.catalog_name, spec.to_dict(), state)
        progress(f"model {spec.name} version {version} registered in MLflow (run {run.info.run_id})")
        return dg.MaterializeResult(
            metadata={
                **links,
                "model_version": int(version),
                "model_uri": model_registry.model_uri(spec.name),
                "final_loss": final_loss,
                "epochs": len(result.epoch_losses),
                "train_images": len(train_images),
                "training_seconds": round(result.seconds, 2),
                "images_per_second": round(result.images_per_second, 1),
                "device": result.device,
                "backbone": result.config.backbone,
                "embedding_dim": result.embedder.embedding_dim,
                "skipped_images": len(skipped),
                **({"skipped": dg.MetadataValue.md(skipped_markdown(skipped))} if skipped else {}),
                **{f"quality/{name}": round(value, 4) for name, value in quality.items()},
                "promoted": True,
            }
        )

    return _model


def embedder_signature(embedder: Any) -> Any:
    """The logged model's signature: uint8 images N x C x H x W in 0..255, what `forward` and `embed`
    take (not floats in 0..1), to float32 embeddings N x D."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    geometry = embedder.geometry
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, geometry.channels, geometry.height, geometry.width))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, embedder.embedding_dim))]),
    )


def version_description(spec: ModelSpec, rows: int, train_images: int, final_loss: float, quality: dict[str, float]) -> str:
    """The model version's description in MLflow (markdown): its statement, data, loss, quality and options."""
    lines = [
        f"```sql\n{spec.statement}\n```",
        "",
        f"- training data: {rows} rows, {train_images} trained on" + (f", {rows - train_images} held out" if quality else ""),
        f"- final loss: {final_loss:.4f}",
    ]
    if quality:
        lines.append(f"- held-out P@4: {quality['holdout_p_at_4']:.4f} (raw pixels: {quality['raw_pixels_p_at_4']:.4f})")
    lines.append("- options: " + ", ".join(f"{name}={value!r}" for name, value in spec.options.items()))
    return "\n".join(lines)


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


def promotion(run_tags: dict[str, str], serving: dict | None, quality: dict[str, float]) -> str | None:
    """Why a newly trained version must not replace the serving one, or None to promote it.

    A BUILD MODEL statement always promotes (the user asked for this model). Retraining that no
    statement asked for — a schedule's tick, a materialization from the UI — promotes only if the
    held-out P@4 does not drop below the serving version's.
    """
    if STATEMENT_TAG in run_tags or serving is None:
        return None
    before, after = serving.get("holdout_p_at_4"), quality.get("holdout_p_at_4")
    if before is None or after is None or after >= before:
        return None
    return f"held-out P@4 {after:.4f} is below the serving version's {before:.4f}"


def retraining_schedule(spec: ModelSpec, cron: str) -> dg.ScheduleDefinition:
    """Retrain `spec` on `cron`, then refresh everything downstream (embeddings, collections)."""
    return dg.ScheduleDefinition(
        name=f"retrain_{spec.name}",
        cron_schedule=cron,
        target=dg.AssetSelection.assets(spec.asset_key).downstream(),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description=f"Retrains model {spec.name} ({cron}), then re-embeds the tables it embedded; the new version serves only if held-out P@4 does not drop.",
    )
