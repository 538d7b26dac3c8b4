"""UPLOAD MODEL: a classifier trained elsewhere, registered as a model asset with an MLflow version.

The source is loaded and checked first (a Hugging Face `save_pretrained` directory, or a
torchvision weights file for one of BUILD MODEL's classifier architectures); only a model that
loads is logged, so a bad source changes nothing. What MLflow stores is the loaded classifier
whole (network, preprocessing, labels), as for trained classifiers, so PREDICT, EVALUATE and
CREATE TABLE ... USING treat every classifier the same. Materializing the asset again reads the
source again, as a new version.
"""


import shutil
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg

from resources import CatalogResource, ModelRegistryResource, ModelSourceResource, WorkspaceResource
from thanosql.errors import DataError
from thanosql_assets.defs.classifiers import classifier_signature
from thanosql_assets.defs.evaluations import LAST_EVALUATION
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import UploadedModelSpec
from thanosql_assets.defs.training_runs import mlflow_links


def load_uploaded(spec: UploadedModelSpec, path: Path):
    """The classifier `path` (the spec's source) holds, loaded and checked (a DataError says what is wrong with it)."""
    if spec.framework == "huggingface":
        from thanosql_assets.models.pretrained.huggingface import is_clip_model_dir, load_clip_model, load_huggingface_classifier

        if is_clip_model_dir(path):  # zero-shot: PREDICT names the candidate labels
            return load_clip_model(path, source=spec.origin or spec.source)
        return load_huggingface_classifier(path, source=spec.origin or spec.source)
    if spec.network is None:
        raise DataError(f"Uploaded PyTorch model {spec.name} names no architecture.", hint="Upload it again with OPTIONS (algorithm='ResNet18', ...).")
    from thanosql_assets.models.pretrained.torchvision_weights import load_torchvision_classifier

    return load_torchvision_classifier(path, spec.network)


MODELS_DIR = "thanosql-model"  # where GET THANOSQL MODEL keeps the models it fetched


@contextmanager
def fetched(
    spec: UploadedModelSpec, workspace: WorkspaceResource, model_source: ModelSourceResource, progress: Progress
) -> Iterator[tuple[Path, str]]:
    """GET THANOSQL MODEL: the model's files, verified, in a staging directory while the block
    loads and registers them, then switched in at `spec.source` (removed if the block fails).
    Yields that directory and where the files came from."""
    final = workspace.resolve(spec.source)
    final.parent.mkdir(parents=True, exist_ok=True)
    staging = final.parent / f".{final.name}.{uuid.uuid4().hex[:8]}"
    try:
        yield staging, model_source.fetch(spec.origin, staging, progress)
        if final.exists():
            shutil.rmtree(final)
        staging.rename(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def uploaded_model_asset(spec: UploadedModelSpec) -> dg.AssetsDefinition:
    @dg.asset(
        key=spec.asset_key,
        group_name="models",
        kinds={"huggingface" if spec.framework == "huggingface" else "pytorch", "mlflow"},
        description=spec.statement,
    )
    def _uploaded(
        context: dg.AssetExecutionContext,
        workspace: WorkspaceResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
        model_source: ModelSourceResource,
    ) -> dg.MaterializeResult:
        progress = Progress(context)
        if not spec.origin:
            return _register(context, spec, workspace.resolve(spec.source), catalog, model_registry, progress)
        with fetched(spec, workspace, model_source, progress) as (staging, origin):
            return _register(context, spec, staging, catalog, model_registry, progress, origin)

    return _uploaded


def _register(
    context: dg.AssetExecutionContext,
    spec: UploadedModelSpec,
    path: Path,
    catalog: CatalogResource,
    model_registry: ModelRegistryResource,
    progress: Progress,
    origin: str | None = None,
) -> dg.MaterializeResult:
    import mlflow
    import mlflow.pytorch
    import torch

    progress(f"loading {spec.origin or spec.source} ({spec.algorithm})")
    classifier = load_uploaded(spec, path)
    classes = list(classifier.classes)
    zero_shot = getattr(classifier, "zero_shot", False)
    requirements = [f"torch=={torch.__version__.split('+')[0]}"]
    if spec.framework == "huggingface":
        import transformers

        requirements.append(f"transformers=={transformers.__version__}")
    with model_registry.start_run(run_name=spec.name, tags={"thanosql.model": spec.name, "dagster.run_id": context.run_id}) as run:
        mlflow.log_params({"class_name": spec.algorithm, "source": spec.source[:500], "network": classifier.network[:500], "classes": len(classes)})
        progress("logging the model to MLflow")
        info = mlflow.pytorch.log_model(
            classifier,
            name="model",
            registered_model_name=spec.name,
            serialization_format="pickle",  # keeps the classifier whole: network, preprocessing, labels
            pip_requirements=requirements,
            signature=None if zero_shot else classifier_signature(classifier),
        )
        version = str(info.registered_model_version)
    model_registry.describe_version(spec.name, version, f"```sql\n{spec.statement}\n```\n\n- network: {classifier.network}\n- classes: {len(classes)}")
    model_registry.set_serving(spec.name, version)
    geometry = classifier.geometry
    previous = catalog.get(spec.kind, spec.catalog_name)
    state = {
        "run_id": run.info.run_id,
        "version": version,
        "uri": model_registry.model_uri(spec.name, version),
        "classes": classes,
        "geometry": [geometry.channels, geometry.height, geometry.width],
        "network": classifier.network,
        "class_name": spec.algorithm,
        # torchvision's network name or transformers' model class: what BUILD MODEL ... OPTIONS (pretrained=...) checks
        "architecture": spec.network or type(getattr(classifier, "model", classifier)).__name__,
        "zero_shot": zero_shot,
        **({"origin": spec.origin, "fetched_from": origin} if spec.origin else {}),
        **({LAST_EVALUATION: previous.state[LAST_EVALUATION]} if previous and LAST_EVALUATION in previous.state else {}),
    }
    catalog.put(spec.kind, spec.catalog_name, spec.to_dict(), state)
    what = "zero-shot (labels given by PREDICT)" if zero_shot else f"{len(classes)} classes"
    progress(f"model {spec.name} version {version} registered in MLflow (run {run.info.run_id}): {what}")
    return dg.MaterializeResult(
        metadata={
            **mlflow_links(model_registry, run, spec.name, version),
            "model_version": int(version),
            "model_uri": model_registry.model_uri(spec.name),
            "class_name": spec.algorithm,
            "source": spec.source,
            "network": classifier.network,
            "classes": "zero-shot: each PREDICT names its labels" if zero_shot
            else dg.MetadataValue.json([str(label) for label in classes]) if len(classes) > 20 else ", ".join(map(str, classes)),
            "input": f"{geometry.channels}x{geometry.height}x{geometry.width}",
            **({"origin": spec.origin, "fetched_from": origin} if spec.origin else {}),
        }
    )
