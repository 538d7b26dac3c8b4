"""What each ThanoSQL object is, as the catalog stores it and the code location builds it.

A spec is the statement an object came from, in a form that can be re-run: the Dagster asset
built from it does the same work whether the SQL frontend, the Dagster UI or a schedule asks.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, ClassVar

import dagster as dg


@dataclass(frozen=True)
class DatasetSpec:
    kind: ClassVar[str] = "dataset"
    name: str

    @property
    def catalog_name(self) -> str:
        return self.name

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(["dataset", self.name])


@dataclass(frozen=True)
class TableSpec:
    """A table copied from files: COPY name FROM "file.csv", then COPY ... OPTIONS (append=True) for more."""

    kind: ClassVar[str] = "table"
    name: str
    sources: tuple[str, ...]
    datasets: tuple[str, ...] = ()  # the datasets the files belong to, for lineage

    @property
    def catalog_name(self) -> str:
        return self.name

    @property
    def asset_key(self) -> dg.AssetKey:
        return table_key(self.name)


@dataclass(frozen=True)
class ModelSpec:
    """A model trained on the rows of a query (BUILD MODEL name USING algorithm AS SELECT ...)."""

    kind: ClassVar[str] = "model"
    name: str
    algorithm: str
    query: str
    tables: tuple[str, ...]
    options: dict[str, Any] = field(default_factory=dict)

    @property
    def catalog_name(self) -> str:
        return self.name

    @property
    def asset_key(self) -> dg.AssetKey:
        return model_key(self.name)


@dataclass(frozen=True)
class EmbeddingSpec:
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

    @property
    def catalog_name(self) -> str:
        return embedding_name(self.table, self.model)

    @property
    def column(self) -> str:
        """The embedding column's name, `<model>_<algorithm>` as in the tutorials."""
        return f"{self.model}_{self.algorithm.lower()}"

    @property
    def asset_key(self) -> dg.AssetKey:
        return dg.AssetKey(["embedding", self.table, self.model])

    @property
    def collection_key(self) -> dg.AssetKey:
        return dg.AssetKey(["collection", self.table, self.model])


Spec = DatasetSpec | TableSpec | ModelSpec | EmbeddingSpec
SPEC_TYPES: dict[str, type] = {cls.kind: cls for cls in (DatasetSpec, TableSpec, ModelSpec, EmbeddingSpec)}


def table_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["table", name])


def model_key(name: str) -> dg.AssetKey:
    return dg.AssetKey(["model", name])


def embedding_name(table: str, model: str) -> str:
    return f"{table}/{model}"


def spec_to_dict(spec: Spec) -> dict[str, Any]:
    return dataclasses.asdict(spec)


def spec_from_dict(kind: str, data: dict[str, Any]) -> Spec:
    cls = SPEC_TYPES[kind]
    values = {key: tuple(value) if isinstance(value, list) else value for key, value in data.items()}
    return cls(**values)
