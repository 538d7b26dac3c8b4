"""The resources layer: one Dagster resource per external system, each behind an interface that
its embedded and its server implementation share, and the settings that pick between them.

| system | interface | embedded | server |
| --- | --- | --- | --- |
| tables | `WarehouseResource` | `DuckDBWarehouseResource` | `PostgresWarehouseResource` |
| vectors | `VectorStoreResource` | `QdrantEdgeResource` | `QdrantServerResource` |
| catalog, API tokens | `CatalogResource`, `TokenStore` (SQLAlchemy) | SQLite | PostgreSQL |
| models | `ModelRegistryResource` (MLflow) | SQLite + artifact directory | tracking server |
| files | `WorkspaceResource`, `DatasetSourceResource`, `ModelSourceResource` | the workspace directory, download mirrors | |

Resources import nothing of the project but `thanosql.errors`.
"""

from resources.catalog import CatalogEntry, CatalogResource
from resources.dataset_source import DatasetSourceResource
from resources.model_registry import ModelRegistryResource
from resources.model_source import ModelSourceResource
from resources.settings import Settings, build_resources
from resources.vector_store import CollectionNotFound, VectorStoreResource
from resources.warehouse import Generation, StaleGeneration, WarehouseResource
from resources.workspace import WorkspaceResource

__all__ = [
    "CatalogEntry",
    "CatalogResource",
    "CollectionNotFound",
    "DatasetSourceResource",
    "Generation",
    "ModelRegistryResource",
    "ModelSourceResource",
    "Settings",
    "StaleGeneration",
    "VectorStoreResource",
    "WarehouseResource",
    "WorkspaceResource",
    "build_resources",
]
