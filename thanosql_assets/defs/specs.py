"""What each ThanoSQL object is, as the catalog stores it and the code location builds it.

A spec is the statement an object came from, in a form that can be re-run: the Dagster asset
built from it does the same work whether the SQL frontend, the Dagster UI or a schedule asks.
Queries in specs are plain SELECTs as ThanoSQL writes them, that is PostgreSQL's SQL
(`QUERY_DIALECT`); the table store transpiles them to its own when they run.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dagster as dg

from thanosql_assets.models.algorithms import Algorithm, algorithm_of
from thanosql_assets.models.classifiers.config import ClassifierConfig
from thanosql_assets.models.simclr.config import SimCLRConfig

QUERY_DIALECT = "postgres"
PARTITIONED_TAG = "thanosql/partitioned"  # on the assets of partitioned embeddings, which one run cannot materialize together
IMAGES_PER_PARTITION = 1_000_000  # an embedding of more images is partitioned unless OPTIONS (partitions=...) says otherwise


def table_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["table", name])


def model_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["model", name])


def embedding_name(table: str, model: str) -> str:
    return f"{table}/{model}"


def _options_sql(options: dict[str, Any], defaults: dict[str, Any]) -> str:
    """` OPTIONS (name=value, ...)` of the options that are not in `defaults` with the same value ("" if none)."""
    written = [f"{name}={_sql_value(value)}" for name, value in options.items() if name not in defaults or value != defaults[name]]
    return f" OPTIONS ({', '.join(written)})" if written else ""


def _sql_value(value: Any) -> str:
    if isinstance(value, str):
        return "'" + value.replace("'", "''") + "'"
    if isinstance(value, (list, tuple)):
        return f"[{', '.join(_sql_value(item) for item in value)}]"
    return repr(value)  # numbers, True and False as ThanoSQL writes them


class _Record:
    """A spec as the catalog stores it: its fields as JSON values."""

    def to_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]):
        return cls(**{key: tuple(value) if isinstance(value, list) else value for key, value in data.items()})


@dataclass(frozen=True)
class _NamedSpec(_Record):
    """An object whose catalog name is its own name, and whose asset key is `[kind, name]`."""

    kind: ClassVar[str]
    name: str

    @property
    def catalog_name(self) -> str:
        return self.name

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey([self.kind, self.name])


@dataclass(frozen=True)
class DatasetSpec(_NamedSpec):
    kind: ClassVar[str] = "dataset"


@dataclass(frozen=True)
class TableSpec(_NamedSpec):
    """A table copied from files: COPY name FROM "file.csv", then COPY ... OPTIONS (append=True) for more."""

    kind: ClassVar[str] = "table"
    sources: tuple[str, ...]
    datasets: tuple[str, ...] = ()  # the datasets the files belong to, for lineage
    sheets: tuple[str, ...] = ()  # the sheet of each spreadsheet source ("" for other sources)

    @property
    def statement(self) -> str:
        """The COPY statements of this table, `; `-separated: the first made it, the others appended."""
        sheets = (*self.sheets, *[""] * (len(self.sources) - len(self.sheets)))
        return "; ".join(
            f"COPY {self.name}{_options_sql({'sheet': sheet, 'append': index > 0}, {'sheet': '', 'append': False})} FROM {_sql_value(source)}"
            for index, (source, sheet) in enumerate(zip(self.sources, sheets))
        )


@dataclass(frozen=True)
class SavedTableSpec(_NamedSpec):
    """A table kept as plain data, that no ThanoSQL statement rebuilds: made by a SQL statement
    (CREATE TABLE ... AS SELECT; CREATE VIEW when `view`), changed by one (INSERT, UPDATE, ...),
    or made by a statement whose model or source table has since been removed.

    Its asset is observed rather than materialized by Dagster: each statement that changes its
    rows records a materialization (rows, the statement), so the UI keeps its history.
    """

    kind: ClassVar[str] = "table"
    statement: str  # the statement that made it
    tables: tuple[str, ...] = ()  # the tables it was made from (a view: those it reads), for lineage
    view: bool = False


@dataclass(frozen=True)
class ModelSpec(_NamedSpec):
    """A model trained on the rows of a query: BUILD MODEL name USING algorithm OPTIONS (...) AS SELECT ...,
    or FIT MODEL name USING base_model ... (`fit`: a copy of `base_model` trained further).

    SimCLR models learn embeddings (labels only measure quality); classifiers learn `label_col`,
    from scratch, from the encoder of a SimCLR model (`base_model`; `self_training` adds that
    model's other training images, labelled by the classifier itself), or from pretrained weights
    (`pretrained`: True for torchvision's ImageNet weights of the algorithm's network, or the
    name of a classifier of the workspace, e.g. an uploaded one). The catalog keeps every
    option in one `options` mapping, as the statement wrote them.
    """

    kind: ClassVar[str] = "model"
    algorithm: str
    query: str
    tables: tuple[str, ...]
    image_col: str = "image_path"
    label_col: str = "label"  # SimCLR: labels only measure quality, never used for training
    holdout: float = 0.1  # share of labelled rows kept out of training to measure quality
    schedule: str | None = None  # cron string of scheduled retraining
    on_error: str = "raise"  # an unreadable image: "raise" (nothing changes) or "skip" (trained without it, listed)
    base_model: str | None = None  # the model this one starts from (its serving version)
    fit: bool = False  # FIT MODEL: `base_model` is of the same algorithm and trained further
    pretrained: bool | str = False  # classifiers: True for torchvision's ImageNet weights, or a classifier of the workspace
    self_training: bool = True  # with a SimCLR base_model: pseudo-labels for its other training images
    training: SimCLRConfig | ClassifierConfig = field(default_factory=SimCLRConfig)

    @property
    def algorithm_spec(self) -> Algorithm:
        return algorithm_of(self.algorithm)

    @property
    def is_classifier(self) -> bool:
        return self.algorithm_spec.kind == "classifier"

    @property
    def options(self) -> dict[str, Any]:
        """Every option of the statement, by name (MLflow logs them as params)."""
        return {
            "image_col": self.image_col,
            "label_col": self.label_col,
            "holdout": self.holdout,
            "schedule": self.schedule,
            "on_error": self.on_error,
            "base_model": self.base_model,
            "fit": self.fit,
            "pretrained": self.pretrained,
            "self_training": self.self_training,
            **dataclasses.asdict(self.training),
        }

    @property
    def statement(self) -> str:
        """The BUILD (or FIT) MODEL statement of this spec: its image_col and every option that is not the default."""
        default = ModelSpec(self.name, self.algorithm, self.query, self.tables, training=self.algorithm_spec.config())
        defaults = {name: value for name, value in default.options.items() if name != "image_col"}
        if self.fit:
            options = {name: value for name, value in self.options.items() if name not in ("base_model", "fit")}
            return f"FIT MODEL {self.name} USING {self.base_model}{_options_sql(options, defaults)} AS {self.query}"
        return f"BUILD MODEL {self.name} USING {self.algorithm}{_options_sql(self.options, defaults)} AS {self.query}"

    @property
    def run_tags(self) -> dict[str, str]:
        """Tags that size a launched run of this model's training: with devices=N on GPUs, Kubernetes
        (dagster-k8s's per-run `dagster-k8s/config` tag, merged over the launcher's run_k8s_config)
        gives the run's pod N GPUs."""
        if self.training.devices <= 1 or self.training.device == "cpu":
            return {}
        return {"dagster-k8s/config": json.dumps({"container_config": {"resources": {"limits": {"nvidia.com/gpu": self.training.devices}}}})}

    @property
    def start_model(self) -> str | None:
        """The model of the workspace this one starts from: `base_model`, or a `pretrained` model's name."""
        return self.base_model or (self.pretrained if isinstance(self.pretrained, str) else None)

    @property
    def upstream_keys(self) -> list[dg.AssetKey]:
        """What it is trained from: its tables, and the model it starts from."""
        return [table_key(name) for name in self.tables] + ([model_key(self.start_model)] if self.start_model else [])

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "algorithm": self.algorithm, "query": self.query, "tables": list(self.tables), "options": self.options}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelSpec:
        # Models built before self-training existed retrain (on schedule) as they were built.
        options = {"self_training": False, **data["options"]}
        config_type = algorithm_of(data["algorithm"]).config
        training_fields = {f.name for f in dataclasses.fields(config_type)}
        return cls(
            name=data["name"],
            algorithm=data["algorithm"],
            query=data["query"],
            tables=tuple(data["tables"]),
            training=config_type(**{name: value for name, value in options.items() if name in training_fields}),
            **{name: value for name, value in options.items() if name not in training_fields},
        )


@dataclass(frozen=True)
class UploadedModelSpec(_NamedSpec):
    """A classifier trained elsewhere: UPLOAD MODEL name OPTIONS (framework=...) FROM "path", or
    GET THANOSQL MODEL "org/model" AS name (`origin`), which fetches it into the workspace first.

    `source` is a Hugging Face `save_pretrained` directory (framework 'huggingface') or a
    torchvision weights file for one of BUILD MODEL's classifier algorithms (framework
    'pytorch', `network` its torchvision name); the asset loads and checks it, then registers
    it in MLflow as a trained classifier is.
    """

    kind: ClassVar[str] = "model"
    framework: str
    source: str
    network: str | None = None  # framework 'pytorch': the torchvision architecture of the weights
    base_algorithm: str | None = None  # framework 'pytorch': that architecture's BUILD MODEL name, e.g. ResNet18
    origin: str | None = None  # GET THANOSQL MODEL: the published model's Hub id, fetched into `source`

    is_classifier: ClassVar[bool] = True

    @property
    def algorithm(self) -> str:
        """The model's class as ThanoSQL lists it."""
        return "User_HuggingFace" if self.framework == "huggingface" else "User_PyTorch"

    @property
    def algorithm_spec(self) -> Algorithm:
        return algorithm_of(self.algorithm)

    @property
    def statement(self) -> str:
        if self.origin:
            return f"GET THANOSQL MODEL {_sql_value(self.origin)} AS {self.name}"
        options = {"framework": self.framework, **({"algorithm": self.base_algorithm} if self.base_algorithm else {})}
        return f"UPLOAD MODEL {self.name}{_options_sql(options, {})} FROM {_sql_value(self.source)}"

    def to_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "algorithm": self.algorithm}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> UploadedModelSpec:
        return cls(**{key: value for key, value in data.items() if key != "algorithm"})


@dataclass(frozen=True)
class PredictionSpec(_Record):
    """A table of a classifier's predictions: PREDICT USING model OPTIONS (table_name=...) AS SELECT ...,
    or, when `folder` is set, CREATE TABLE name USING model OPTIONS (...) FROM 'folder'.

    The query's rows (or one row per image file under the folder: `image_col`, `filename`) with
    `predicted` and `confidence` (and the top_k labels), by the model's serving version;
    downstream of the tables read and of the model.
    """

    kind: ClassVar[str] = "prediction"
    table: str
    model: str
    query: str | None = None
    tables: tuple[str, ...] = ()
    image_col: str = "image_path"
    batch_size: int = 256
    top_k: int | None = None
    folder: str | None = None
    file_types: tuple[str, ...] = ()
    on_error: str = "raise"  # an unreadable file under the folder: "raise" (nothing changes) or "skip" (NULL prediction, listed)
    labels: tuple[str, ...] = ()  # a zero-shot (CLIP) model's candidate labels

    @property
    def catalog_name(self) -> str:
        return self.table

    @property
    def asset_key(self) -> dg.AssetKey:
        return table_key(self.table)

    @property
    def statement(self) -> str:
        if self.folder:
            options = {"file_type": list(self.file_types), "image_col": self.image_col, "on_error": self.on_error}
            defaults = {"image_col": "image_path", "on_error": "raise"}
            return f"CREATE TABLE {self.table} USING {self.model}{_options_sql(options, defaults)} FROM {_sql_value(self.folder)}"
        options = {"image_col": self.image_col, "batch_size": self.batch_size, "top_k": self.top_k, "labels": list(self.labels)}
        defaults = {"image_col": "image_path", "batch_size": 256, "top_k": None, "labels": []}
        written = _options_sql(options, defaults).removeprefix(" OPTIONS (").removesuffix(")")
        table = f"table_name={_sql_value(self.table)}"
        return f"PREDICT USING {self.model} OPTIONS ({', '.join(filter(None, [table, written]))}) AS {self.query}"


@dataclass(frozen=True)
class EmbeddingSpec(_Record):
    """The images of a table embedded by a model, and the Qdrant collection that indexes them.

    The rows come from a query (CONVERT USING model ... AS SELECT ...) or, when `folder` is set,
    from the image files under a folder (CREATE TABLE name USING model ... FROM 'folder'), in
    which case the table itself is made by this asset too.
    """

    kind: ClassVar[str] = "embedding"
    table: str
    model: str
    algorithm: str
    image_col: str
    query: str | None = None
    tables: tuple[str, ...] = ()
    folder: str | None = None
    file_types: tuple[str, ...] = ()
    batch_size: int = 256  # images per forward pass
    on_error: str = "raise"  # an unreadable image: "raise" (nothing changes) or "skip" (left without embedding, listed)
    partitions: int = 1  # > 1: embedded by one Dagster run per partition of the images (see defs.generations)

    @staticmethod
    def default_partitions(images: int) -> int:
        """Partitions of an embedding of `images` images when the statement names none: one per
        IMAGES_PER_PARTITION, so that tables too large for one machine's run are split."""
        return max(1, -(-images // IMAGES_PER_PARTITION))

    @property
    def catalog_name(self) -> str:
        return embedding_name(self.table, self.model)

    @property
    def partitioned(self) -> bool:
        """Embedded by partition runs, then switched to by a run of its own (see defs.generations)."""
        return self.partitions > 1

    @property
    def switch_keys(self) -> tuple[dg.AssetKey, ...]:
        """The assets a partitioned embedding's switch materializes: the collection, and the table of a folder."""
        return (self.collection_key, *([table_key(self.table)] if self.folder else []))

    @property
    def column(self) -> str:
        """The embedding column's name, `<model>_<algorithm>` as in the tutorials."""
        return f"{self.model}_{self.algorithm.lower()}"

    @property
    def statement(self) -> str:
        """The CONVERT or CREATE TABLE ... USING statement of this spec: what it embeds, and every
        other option that is not the default."""
        defaults = {item.name: item.default for item in dataclasses.fields(self) if item.name in ("batch_size", "on_error", "partitions")}
        if self.folder:
            options = {"file_type": list(self.file_types), "image_col": self.image_col, "on_error": self.on_error, "partitions": self.partitions}
            return f"CREATE TABLE {self.table} USING {self.model}{_options_sql(options, defaults)} FROM {_sql_value(self.folder)}"
        options = {
            "table_name": self.table, "image_col": self.image_col, "batch_size": self.batch_size, "on_error": self.on_error,
            "partitions": self.partitions,
        }
        return f"CONVERT USING {self.model}{_options_sql(options, defaults)} AS {self.query}"

    # Dagster's asset graph labels a node with the last part of its key, so that part tells the
    # model (`model/<model>`), its embedding column and the column's vectors apart.
    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(["embedding", self.table, self.column])

    @property
    def collection_key(self) -> dg.AssetKey:
        return dg.AssetKey(["collection", self.table, f"{self.column}_vectors"])


Spec = DatasetSpec | TableSpec | SavedTableSpec | ModelSpec | UploadedModelSpec | EmbeddingSpec | PredictionSpec
SPEC_TYPES: dict[str, type] = {cls.kind: cls for cls in (DatasetSpec, TableSpec, ModelSpec, EmbeddingSpec, PredictionSpec)}


def spec_from_dict(kind: str, data: dict[str, Any]) -> Spec:
    if kind == "model" and "source" in data:
        return UploadedModelSpec.from_dict(data)
    if kind == "table" and "statement" in data:
        return SavedTableSpec.from_dict(data)
    return SPEC_TYPES[kind].from_dict(data)
