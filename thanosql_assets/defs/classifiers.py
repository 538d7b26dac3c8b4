"""BUILD MODEL ... USING <classifier> and FIT MODEL of a classifier: an image classifier asset.

Trained on the query's labelled rows: from scratch (a torchvision network), from the encoder
of a SimCLR model of the workspace (`base_model`: few labels go a long way, further with
self-training on that model's other, unlabelled, training images), from pretrained
weights (`pretrained`: torchvision's ImageNet weights, fetched once into the model cache, or
a classifier of the workspace such as an uploaded one), or, for FIT MODEL, from a copy of
another classifier, which fixes the classes. A share of the rows
(`holdout`, stratified by label) is kept out of training to measure accuracy; it is logged to
MLflow with a confusion matrix and decides whether scheduled retraining may replace the
serving version. The model logged is the whole `ImageClassifier` (network, preprocessing and
classes), so PREDICT and EVALUATE load exactly what trained.
"""


import dataclasses
from typing import Any

import dagster as dg
import numpy as np

from resources import CatalogResource, ModelRegistryResource, ModelSourceResource, WarehouseResource, WorkspaceResource
from resources.model_source import TORCHVISION
from thanosql_assets.defs.evaluations import LAST_EVALUATION
from thanosql_assets.defs.labels import check_classes, check_known_labels, check_labels, class_indices
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import ModelSpec
from thanosql_assets.defs.training_runs import (
    MIN_LABELLED_ROWS,
    mlflow_links,
    not_promoted,
    promotion,
    starting_model,
    training_images,
    unlabelled_images,
)


def classifier_asset(spec: ModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=spec.asset_key,
        deps=spec.upstream_keys,
        group_name="models",
        kinds={"pytorch", "mlflow"},
        description=spec.statement,
    )
    def _classifier(
        context: dg.AssetExecutionContext,
        workspace: WorkspaceResource,
        warehouse: WarehouseResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
        model_source: ModelSourceResource,
    ) -> dg.MaterializeResult:
        import mlflow
        import mlflow.pytorch

        from thanosql_assets.models.classifiers.metrics import classification_metrics
        from thanosql_assets.models.classifiers.trainer import train_classifier
        from thanosql_assets.models.evaluation import holdout_split
        from thanosql_assets.models.pictures import confusion_matrix_figure, loss_curve

        progress = Progress(context)
        config = spec.training
        start, geometry = _starting_point(spec, catalog, model_registry, model_source, progress)
        data = training_images(spec, workspace, warehouse, progress, config.input_size, geometry, columns=(("label_col", spec.label_col),))
        images, rows = data.images, data.rows
        rows_name = f"the training rows of {spec.name}"
        labels = check_labels(rows[spec.label_col], spec.label_col, rows_name)
        if spec.fit:  # FIT: the classes of the model it continues
            check_known_labels(labels, start.classes, spec.base_model, spec.label_col)
            classes = list(start.classes)
        else:
            check_classes(labels, spec.label_col, rows_name)
            # a pretrained classifier of exactly these labels keeps its head, and so its class order
            own = list(getattr(start, "classes", None) or [])
            classes = own if set(own) == set(labels) else labels
        targets = class_indices(rows[spec.label_col], classes)

        unlabelled = (
            unlabelled_images(spec, data, catalog, workspace, warehouse, progress)
            if spec.base_model and not spec.fit and spec.self_training else None
        )

        evaluate = spec.holdout > 0 and len(rows) >= MIN_LABELLED_ROWS
        if evaluate:
            train_index, held_index = holdout_split(targets, spec.holdout, config.seed)
            evaluate = len(held_index) > 0  # none when no label has rows to spare
        if evaluate:
            progress(f"holding out {len(held_index)} of {len(rows)} rows to measure accuracy")
        else:
            train_index, held_index = np.arange(len(images)), np.array([], dtype=int)
            if spec.holdout > 0:
                why = f"only {len(rows)} rows" if len(rows) < MIN_LABELLED_ROWS else "no label has rows to spare"
                progress(f"holding out no rows ({why}): the model's accuracy is not measured")

        with model_registry.start_run(run_name=spec.name, tags={"thanosql.model": spec.name, "dagster.run_id": context.run_id}) as run:
            mlflow.log_params({"algorithm": spec.algorithm, "query": spec.query[:500], **spec.options})

            def log_epoch(epoch: int, loss: float, images_per_second: float) -> None:
                mlflow.log_metrics({"loss": loss, "images_per_second": images_per_second}, step=epoch)

            result = train_classifier(
                images[train_index], targets[train_index], classes, data.geometry, config, spec.algorithm_spec.network,
                progress, on_epoch=log_epoch, start=start, unlabelled=unlabelled,
            )
            requested, resolved = dataclasses.asdict(config), dataclasses.asdict(result.config)
            mlflow.log_params({f"resolved.{key}": value for key, value in resolved.items() if requested[key] != value})
            mlflow.log_params({"network": result.network[:500], "classes": ", ".join(map(str, classes))[:500]})
            mlflow.log_metrics({"training_seconds": result.seconds, "train_images": len(train_index), "pseudo_labelled": result.pseudo_labelled})
            mlflow.log_figure(loss_curve(result.epoch_losses, f"{spec.name}: training loss", ylabel="cross-entropy"), "loss_curve.png")

            quality: dict[str, float] = {}
            if evaluate:
                probabilities = result.classifier.predict_proba(images[held_index])
                metrics = classification_metrics(targets[held_index], probabilities)
                accuracy_name, accuracy = next(iter(metrics.items()))  # "Accuracy", or "accuracy" for two classes
                quality = {"holdout_accuracy": accuracy, **{f"holdout_{name}": value for name, value in metrics.items() if name != accuracy_name}}
                mlflow.log_metrics({**quality, "holdout_images": len(held_index)})
                mlflow.log_figure(
                    confusion_matrix_figure(targets[held_index], probabilities.argmax(axis=1), classes, f"{spec.name}: held-out rows"),
                    "holdout_confusion_matrix.png",
                )
                progress(f"held-out accuracy on {len(held_index)} rows: {quality['holdout_accuracy']:.4f}")
            progress("logging the model to MLflow")
            info = mlflow.pytorch.log_model(
                result.classifier,
                name="model",
                registered_model_name=spec.name,
                serialization_format="pickle",  # keeps ImageClassifier whole: network, preprocessing, classes
                pip_requirements=_requirements(result.classifier),
                signature=classifier_signature(result.classifier),
            )
            version = str(info.registered_model_version)

        final_loss = result.epoch_losses[-1]
        model_registry.describe_version(spec.name, version, _description(spec, result, len(rows), len(train_index), quality))
        links = mlflow_links(model_registry, run, spec.name, version)
        quality_metadata = {f"quality/{name}": round(value, 4) for name, value in quality.items()}
        previous = catalog.get(spec.kind, spec.catalog_name)

        def serving_accuracy() -> float | None:
            """The serving version's accuracy on this training's held-out rows, if it sees images as this one does."""
            serving = model_registry.load(spec.name, previous.state["version"])
            if not evaluate or not hasattr(serving, "predict_proba") or getattr(serving, "geometry", None) != result.classifier.geometry:
                return None
            predicted = np.asarray(serving.classes, dtype=object)[serving.predict_proba(images[held_index]).argmax(axis=1)]
            return float(np.mean(predicted == np.asarray(classes, dtype=object)[targets[held_index]]))

        verdict = promotion(
            context.run.tags, previous.state if previous else None, quality, "holdout_accuracy", "held-out accuracy", rescore=serving_accuracy
        )
        if verdict is not None:
            return not_promoted(model_registry, spec, version, previous.state, verdict, progress, {**links, **quality_metadata})
        model_registry.set_serving(spec.name, version)
        state = {
            "run_id": run.info.run_id,
            "version": version,
            "uri": model_registry.model_uri(spec.name, version),
            "classes": classes,
            "geometry": [data.geometry.channels, data.geometry.height, data.geometry.width],
            "network": result.network,
            "final_loss": final_loss,
            **quality,
            # what the `evaluation` check runs again: kept across versions
            **({LAST_EVALUATION: previous.state[LAST_EVALUATION]} if previous and LAST_EVALUATION in previous.state else {}),
        }
        catalog.put(spec.kind, spec.catalog_name, spec.to_dict(), state)
        progress(f"model {spec.name} version {version} registered in MLflow (run {run.info.run_id})")
        return dg.MaterializeResult(
            metadata={
                **links,
                "model_version": int(version),
                "model_uri": model_registry.model_uri(spec.name),
                "classes": dg.MetadataValue.json([str(label) for label in classes]) if len(classes) > 20 else ", ".join(map(str, classes)),
                "network": result.network,
                "final_loss": final_loss,
                "epochs": len(result.epoch_losses),
                "train_images": len(train_index),
                **({"unlabelled_images": len(unlabelled), "pseudo_labelled": result.pseudo_labelled} if unlabelled is not None else {}),
                "training_seconds": round(result.seconds, 2),
                "images_per_second": round(result.images_per_second, 1),
                "device": result.device,
                **data.skipped_metadata(),
                **quality_metadata,
                "promoted": True,
            }
        )

    return _classifier


def _starting_point(
    spec: ModelSpec, catalog: CatalogResource, model_registry: ModelRegistryResource, model_source: ModelSourceResource, progress: Progress
) -> tuple[Any, Any]:
    """The model training starts from (None: a new network) and the geometry images decode at (None: inferred)."""
    if spec.pretrained is True:  # torchvision's ImageNet weights of the algorithm's network
        from thanosql_assets.models.pretrained.torchvision_weights import load_torchvision_classifier

        network = spec.algorithm_spec.network
        directory = model_source.cached(TORCHVISION + network, progress)
        start = load_torchvision_classifier(directory, network, **({"input_size": spec.training.input_size} if spec.training.input_size else {}))
        return start, start.geometry
    if spec.start_model:
        start = starting_model(spec, catalog, model_registry)
        return start, start.geometry
    return None, None


def _requirements(classifier: Any) -> list[str]:
    """What loading the logged classifier needs: torch, and transformers for a Hugging Face network."""
    import torch

    requirements = [f"torch=={torch.__version__.split('+')[0]}"]
    if any(type(module).__module__.startswith("transformers.") for module in classifier.modules()):
        import transformers

        requirements.append(f"transformers=={transformers.__version__}")
    return requirements


def classifier_signature(classifier: Any) -> Any:
    """The logged model's signature: uint8 images N x C x H x W in 0..255 to float32 logits N x K
    (`predict_proba` gives the softmax)."""
    from mlflow.models import ModelSignature
    from mlflow.types import Schema, TensorSpec

    geometry = classifier.geometry
    return ModelSignature(
        inputs=Schema([TensorSpec(np.dtype(np.uint8), (-1, geometry.channels, geometry.height, geometry.width))]),
        outputs=Schema([TensorSpec(np.dtype(np.float32), (-1, classifier.num_classes))]),
    )


def _description(spec: ModelSpec, result: Any, rows: int, trained: int, quality: dict[str, float]) -> str:
    """The model version's description in MLflow (markdown)."""
    lines = [
        f"```sql\n{spec.statement}\n```",
        "",
        f"- network: {result.network}",
        f"- classes: {', '.join(map(str, result.classifier.classes))}",
        f"- training data: {rows} rows, {trained} trained on" + (f", {rows - trained} held out" if quality else ""),
        f"- final loss: {result.epoch_losses[-1]:.4f}",
    ]
    if quality:
        lines.append(f"- held-out accuracy: {quality['holdout_accuracy']:.4f}")
    lines.append("- options: " + ", ".join(f"{name}={value!r}" for name, value in spec.options.items()))
    return "\n".join(lines)
