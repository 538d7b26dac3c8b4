"""Settings from the environment, and the resources they configure.

Embedded defaults keep everything under one workspace directory (THANOSQL_HOME, default
./thanosql-workspace): tables in DuckDB, the catalog and MLflow in SQLite, vectors in Qdrant
Edge shards, Dagster's instance in <home>/dagster unless DAGSTER_HOME says otherwise.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from resources.catalog import CatalogResource
from resources.dataset_source import DatasetSourceResource
from resources.model_registry import ModelRegistryResource
from resources.vector_store import VectorStoreResource
from resources.warehouse import WarehouseResource
from resources.workspace import WorkspaceResource

DEFAULT_HOME = "thanosql-workspace"

_DAGSTER_YAML = """\
# Written by ThanoSQL for embedded mode: Dagster's default local storage in this directory.
telemetry:
  enabled: false
"""


@dataclass(frozen=True)
class Settings:
    home: Path
    dagster_home: Path
    dataset_mirror: str | None = None

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None) -> "Settings":
        home_path = Path(home or os.environ.get("THANOSQL_HOME") or DEFAULT_HOME).expanduser().resolve()
        dagster_home = os.environ.get("DAGSTER_HOME")
        return cls(
            home=home_path,
            dagster_home=Path(dagster_home).resolve() if dagster_home else home_path / "dagster",
            dataset_mirror=os.environ.get("THANOSQL_DATASET_MIRROR") or None,
        )

    def ensure_dirs(self) -> None:
        for directory in (self.home, self.home / "mlflow" / "artifacts", self.home / "vectors", self.dagster_home):
            directory.mkdir(parents=True, exist_ok=True)
        dagster_yaml = self.dagster_home / "dagster.yaml"
        if not dagster_yaml.exists():
            dagster_yaml.write_text(_DAGSTER_YAML)

    def dagster_instance(self) -> dg.DagsterInstance:
        self.ensure_dirs()
        return dg.DagsterInstance.from_config(str(self.dagster_home))


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    home = settings.home
    return {
        "workspace": WorkspaceResource(home=str(home)),
        "catalog": CatalogResource(url=f"sqlite:///{home / 'catalog.db'}"),
        "warehouse": WarehouseResource(path=str(home / "warehouse.duckdb")),
        "model_registry": ModelRegistryResource(
            tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
            artifact_location=(home / "mlflow" / "artifacts").as_uri(),
        ),
        "vector_store": VectorStoreResource(path=str(home / "vectors")),
        "dataset_source": DatasetSourceResource(
            cache_dir=str(home / ".cache" / "downloads"), mirror=settings.dataset_mirror
        ),
    }
