"""EVALUATE: a classifier's quality on labelled rows, logged to MLflow and shown on the model's asset.

`evaluate` scores the serving version on the rows (ThanoSQL's metrics: `Accuracy`, macro
recall, precision and F1 for several classes; accuracy, ROC AUC, recall, precision, F1, Cohen's
kappa and MCC for two). `record` logs each evaluation as an MLflow run tagged with the model
version (metrics and a confusion matrix), tags the version with the metrics, and remembers the
statement in the catalog. The model asset's `evaluation` check shows the latest evaluation in
Dagster: an EVALUATE statement reports it, and executing the check from the UI runs the last
EVALUATE again on the current data.
"""


from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from resources import CatalogResource, ModelRegistryResource, WarehouseResource, WorkspaceResource
from thanosql.errors import DataError
from thanosql_assets.defs.checks import image_path_texts, require_column
from thanosql_assets.defs.labels import check_known_labels, check_labels, class_indices
from thanosql_assets.defs.predictions import serving_classifier
from thanosql_assets.defs.specs import QUERY_DIALECT, ModelSpec
from thanosql_assets.defs.training_runs import mlflow_links

EVALUATION_CHECK = "evaluation"
LAST_EVALUATION = "last_evaluation"  # model state: the last EVALUATE's query and options


@dataclass(frozen=True)
class EvaluationRequest:
    """What EVALUATE USING model OPTIONS (...) AS query asks (query in `QUERY_DIALECT`)."""

    model: str
    query: str
    image_col: str = "image_path"
    label_col: str = "label"
    batch_size: int = 256

    @property
    def statement(self) -> str:
        options = {"image_col": (self.image_col, "image_path"), "label_col": (self.label_col, "label")}
        written = ", ".join(f"{name}='{value}'" for name, (value, default) in options.items() if value != default)
        return f"EVALUATE USING {self.model}{f' OPTIONS ({written})' if written else ''} AS {self.query}"


@dataclass(frozen=True)
class Evaluation:
    request: EvaluationRequest
    version: str
    metrics: dict[str, float]  # ThanoSQL's names, in ThanoSQL's order
    targets: np.ndarray  # class index of each row's label
    predictions: np.ndarray  # class index predicted for each row
    classes: list[Any]

    def table(self) -> pd.DataFrame:
        """EVALUATE's result: one row per metric."""
        return pd.DataFrame({"metrics": list(self.metrics), "value": list(self.metrics.values())})

    def metadata(self, links: dict[str, Any]) -> dict[str, Any]:
        return {
            **{name: float(round(value, 4)) for name, value in self.metrics.items()},
            "rows": len(self.targets),
            "model_version": int(self.version),
            "statement": dg.MetadataValue.md(f"```sql\n{self.request.statement}\n```"),
            **links,
        }


def evaluate(
    request: EvaluationRequest,
    warehouse: WarehouseResource,
    workspace: WorkspaceResource,
    catalog: CatalogResource,
    model_registry: ModelRegistryResource,
    rows: pd.DataFrame | None = None,
) -> Evaluation:
    """Score the serving version of `request.model` on `rows` (default: the request's query)."""
    from thanosql_assets.models.classifiers.metrics import classification_metrics

    rows = warehouse.query_from(request.query, QUERY_DIALECT) if rows is None else rows
    described = "the rows of EVALUATE"
    for option, column in (("image_col", request.image_col), ("label_col", request.label_col)):
        require_column(column, list(rows.columns), option=option, rows=described)
    if not len(rows):
        raise DataError("EVALUATE's query returned no rows: there is nothing to evaluate.", hint="Check the query's WHERE.")
    classifier, version = serving_classifier(catalog, model_registry, request.model)
    check_known_labels(check_labels(rows[request.label_col], request.label_col, described), classifier.classes, request.model, request.label_col)
    paths = [None if path is None else workspace.resolve(path) for path in image_path_texts(rows[request.image_col])]
    probabilities = classifier.predict_files_checked(paths, request.batch_size, column=request.image_col).probabilities
    targets = class_indices(rows[request.label_col], classifier.classes)
    return Evaluation(
        request=request,
        version=str(version),
        metrics=classification_metrics(targets, probabilities),
        targets=targets,
        predictions=probabilities.argmax(axis=1),
        classes=list(classifier.classes),
    )


def record(evaluation: Evaluation, catalog: CatalogResource, model_registry: ModelRegistryResource, run_id: str | None = None) -> dict[str, Any]:
    """Log `evaluation` to MLflow against its model version and remember its request; MLflow links."""
    import mlflow

    from thanosql_assets.models.pictures import confusion_matrix_figure

    request = evaluation.request
    tags = {"thanosql.model": request.model, "thanosql.model_version": evaluation.version, "thanosql.evaluation": "true"}
    if run_id:
        tags["dagster.run_id"] = run_id
    with model_registry.start_run(run_name=f"{request.model} v{evaluation.version} evaluation", tags=tags) as run:
        mlflow.log_params({"statement": request.statement[:500], "rows": len(evaluation.targets)})
        mlflow.log_metrics(evaluation.metrics)
        mlflow.log_figure(
            confusion_matrix_figure(evaluation.targets, evaluation.predictions, evaluation.classes, f"{request.model} v{evaluation.version}"),
            "confusion_matrix.png",
        )
    client = model_registry.client()
    for name, value in evaluation.metrics.items():
        client.set_model_version_tag(request.model, evaluation.version, f"evaluation.{name}", f"{value:.4f}")
    client.set_model_version_tag(request.model, evaluation.version, "evaluation.run_id", run.info.run_id)
    entry = catalog.get("model", request.model)
    if entry is not None:
        remembered = {"query": request.query, "image_col": request.image_col, "label_col": request.label_col, "batch_size": request.batch_size}
        catalog.put("model", request.model, entry.spec, {**entry.state, LAST_EVALUATION: remembered})
    return mlflow_links(model_registry, run, request.model, evaluation.version)


def check_evaluation(spec_key: dg.AssetKey, evaluation: Evaluation, links: dict[str, Any]) -> dg.AssetCheckEvaluation:
    """The `evaluation` check's result for an evaluation that ran outside Dagster (an EVALUATE statement)."""
    return dg.AssetCheckEvaluation(asset_key=spec_key, check_name=EVALUATION_CHECK, passed=True, metadata=evaluation.metadata(links))


def evaluation_check(spec: ModelSpec) -> dg.AssetChecksDefinition:
    """The model asset's `evaluation` check: the latest EVALUATE, or run it again from the UI."""

    @dg.asset_check(
        asset=spec.asset_key,
        name=EVALUATION_CHECK,
        description=f"The latest EVALUATE USING {spec.name}; executing the check runs that EVALUATE again on the current rows.",
    )
    def _evaluation(
        context: dg.AssetCheckExecutionContext,
        workspace: WorkspaceResource,
        warehouse: WarehouseResource,
        catalog: CatalogResource,
        model_registry: ModelRegistryResource,
    ) -> dg.AssetCheckResult:
        entry = catalog.get("model", spec.name)
        remembered = entry.state.get(LAST_EVALUATION) if entry else None
        if not remembered:
            return dg.AssetCheckResult(
                passed=False,
                severity=dg.AssetCheckSeverity.WARN,
                description=f"Not evaluated yet: run EVALUATE USING {spec.name} AS SELECT ... on labelled rows.",
            )
        evaluation = evaluate(EvaluationRequest(spec.name, **remembered), warehouse, workspace, catalog, model_registry)
        links = record(evaluation, catalog, model_registry, context.run.run_id)
        context.log.info(", ".join(f"{name} {value:.4f}" for name, value in evaluation.metrics.items()))
        return dg.AssetCheckResult(passed=True, metadata=evaluation.metadata(links))

    return _evaluation
