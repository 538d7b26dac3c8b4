"""BUILD MODEL and FIT MODEL: one asset per model, trained with Lightning and tracked in MLflow.

`model_asset` builds the asset of either kind: SimCLR models here, classifiers in
`classifiers.py`. Each materialization is one MLflow run: every option as a param, loss and
images/s per epoch as metrics, pictures as artifacts, and the model logged with its signature
and registered as a new version of the registered model named after the ThanoSQL model,
described by its statement, data, loss and quality. Only once everything succeeded does the
`serving` alias move to the new version and the catalog point at it, so a failed build leaves
the serving model untouched.

SimCLR: when the rows carry labels (`label_col`), a share of them (`holdout`) is kept out of
training and used to measure retrieval quality (P@4, P@10, beside raw pixels); labels never
reach training. FIT MODEL continues from the encoder of the model it names.
"""

import dataclasses
from typing import Any

import dagster as dg
import numpy as np

from resources import CatalogResource, ModelRegistryResource, WarehouseResource, WorkspaceResource
from thanosql_assets.defs.classifiers import classifier_asset
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import PARTITIONED_TAG, ModelSpec
from thanosql_assets.defs.training_runs import (
    MIN_LABELLED_ROWS,
    mlflow_links,
    not_promoted,
    promotion,
    starting_model,
    training_images,
)


def model_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    return classifier_asset(spec) if spec.is_classifier else simclr_asset(spec)


def simclr_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=spec.asset_key,
        deps=spec.upstream_keys,
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
        from thanosql_assets.models.pictures import augmented_pairs, loss_curve
        from thanosql_assets.models.simclr.trainer import train_simclr

        progress = Progress(context)
        config = spec.training
        start = starting_model(spec, catalog, model_registry) if spec.fit else None
        if start is not None:  # FIT keeps the encoder it continues: name it as its model did
            config = dataclasses.replace(config, backbone=catalog.get("model", spec.base_model).state.get("backbone", "small_cnn"))
        data = training_images(spec, workspace, warehouse, progress, config.image_size, start.geometry if start else None)
        images, rows = data.images, data.rows
        label_col = spec.label_col

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

            result = train_simclr(train_images, data.geometry, config, progress, on_epoch=log_epoch, start=start)
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
        quality_metadata = {f"quality/{name}": round(value, 4) for name, value in quality.items()}
        previous = catalog.get(spec.kind, spec.catalog_name)

        def serving_p_at_4() -> float | None:
            """The serving version's P@4 on this training's split, if it sees images as this one does."""
            serving = model_registry.load(spec.name, previous.state["version"])
            if not evaluate or not hasattr(serving, "embed") or getattr(serving, "geometry", None) != data.geometry:
                return None
            return precision_at_k(serving.embed(train_images), labels[train_index], serving.embed(images[held_index]), labels[held_index])[4]

        verdict = promotion(
            context.run.tags, previous.state if previous else None, quality, "holdout_p_at_4", "held-out P@4", rescore=serving_p_at_4
        )
        if verdict is not None:
            # A scheduled retraining must not make search worse.
            return not_promoted(model_registry, spec, version, previous.state, verdict, progress, {**links, **quality_metadata})
        model_registry.set_serving(spec.name, version)
        state = {
            "run_id": run.info.run_id,
            "version": version,
            "uri": model_registry.model_uri(spec.name, version),
            "embedding_dim": result.embedder.embedding_dim,
            "geometry": [data.geometry.channels, data.geometry.height, data.geometry.width],
            "backbone": result.config.backbone,
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
                **data.skipped_metadata(),
                **quality_metadata,
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


def retraining_schedule(spec: ModelSpec, cron: str) -> dg.ScheduleDefinition:
    """Retrain `spec` on `cron`, then refresh everything downstream (embeddings, collections)."""
    quality = "held-out accuracy" if spec.is_classifier else "held-out P@4"
    return dg.ScheduleDefinition(
        name=f"retrain_{spec.name}",
        cron_schedule=cron,
        # Partitioned embeddings are left out: a partitioned CONVERT is several runs (run it again to re-embed).
        target=dg.AssetSelection.assets(spec.asset_key).downstream() - dg.AssetSelection.tag(PARTITIONED_TAG, "true"),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        tags=spec.run_tags,  # a model trained on several GPUs gets them again
        description=f"Retrains model {spec.name} ({cron}), then refreshes what depends on it; the new version serves only if {quality} does not drop.",
    )
