"""One Dagster resource per external system, and the settings that configure them."""

from resources.catalog import CatalogEntry, CatalogResource
from resources.dataset_source import DatasetSourceResource
from resources.model_registry import ModelRegistryResource
from resources.settings import Settings, build_resources
from resources.vector_store import VectorStoreResource
from resources.warehouse import Generation, StaleGeneration, WarehouseResource
from resources.workspace import WorkspaceResource

__all__ = [
    "CatalogEntry",
    "CatalogResource",
    "DatasetSourceResource",
    "ModelRegistryResource",
    "Settings",
    "VectorStoreResource",
    "Generation",
    "StaleGeneration",
    "WarehouseResource",
    "WorkspaceResource",
    "build_resources",
]
