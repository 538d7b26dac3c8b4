"""Settings from the environment, and the resources they configure.

Embedded defaults keep everything under one workspace directory (THANOSQL_HOME, default
./thanosql-workspace): tables in DuckDB, the catalog and MLflow in SQLite, vectors in Qdrant
Edge shards, Dagster's instance in <home>/dagster unless DAGSTER_HOME says otherwise.

Production mode replaces each embedded store by a server, each chosen by one variable:

| variable | what |
| --- | --- |
| `THANOSQL_WAREHOUSE_URL` | the tables' database (`postgresql+psycopg2://...`) instead of DuckDB |
| `THANOSQL_WAREHOUSE_READER_URL` | a login that may only read the tables, which queries run as (default: the warehouse user switches to a NOLOGIN role `thanosql_reader`) |
| `THANOSQL_CATALOG_URL` | the object catalog's database (`postgresql+psycopg2://...`) |
| `THANOSQL_MLFLOW_URI` | an MLflow tracking server (`http://mlflow:5000`); artifacts go where the server says. Not MLFLOW_TRACKING_URI: MLflow sets that itself in-process |
| `THANOSQL_MLFLOW_UI_URL` | the MLflow UI as a browser reaches it, for links from Dagster (default: `THANOSQL_MLFLOW_URI` when it is http(s); none in embedded mode unless you run `mlflow ui` on the workspace's `mlflow/mlflow.db`) |
| `THANOSQL_QDRANT_URL`, `THANOSQL_QDRANT_API_KEY` | a Qdrant server, through qdrant-client |
| `THANOSQL_CONFINE_PATHS=1` | refuse files outside the workspace (the SQL server sets it) |
| `THANOSQL_SERVER_MAX_BYTES`, `THANOSQL_SERVER_MAX_IMAGES` | the SQL server with `THANOSQL_DAGSTER_URL` runs a statement in process (still a Dagster run on the instance) when it copies at most this many bytes of files (default 64 MiB) and runs a model on at most this many images (default 1,000); heavier ones, and training and downloads, go to the run launcher. 0 and 0: every statement is launched |
| `DAGSTER_HOME` | a Dagster instance directory whose dagster.yaml points at PostgreSQL (deploy/dagster.yaml) |
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import dagster as dg

from resources.catalog import CatalogResource
from resources.dataset_source import DatasetSourceResource
from resources.model_registry import ModelRegistryResource
from resources.model_source import ModelSourceResource
from resources.relocation import relocate
from resources.vector_store import VectorStoreResource
from resources.warehouse import WarehouseResource
from resources.workspace import WorkspaceResource
from thanosql.errors import ThanoSQLError

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
    model_mirror: str | None = None
    catalog_url: str | None = None
    warehouse_url: str | None = None
    warehouse_reader_url: str | None = None
    mlflow_tracking_uri: str | None = None
    mlflow_ui_url: str | None = None
    qdrant_url: str | None = None
    qdrant_api_key: str | None = None
    confine_paths: bool = False
    server_max_bytes: int = 64 * 2**20
    server_max_images: int = 1_000

    @property
    def production(self) -> bool:
        """Whether any store is a server (the Dagster instance decides for itself, from DAGSTER_HOME)."""
        return any((self.catalog_url, self.warehouse_url, self.mlflow_tracking_uri, self.qdrant_url))

    @classmethod
    def from_env(cls, home: str | os.PathLike | None = None) -> "Settings":
        home_path = Path(home or os.environ.get("THANOSQL_HOME") or DEFAULT_HOME).expanduser().resolve()
        dagster_home = os.environ.get("DAGSTER_HOME")
        mlflow_tracking_uri = os.environ.get("THANOSQL_MLFLOW_URI") or None
        return cls(
            home=home_path,
            dagster_home=Path(dagster_home).resolve() if dagster_home else home_path / "dagster",
            dataset_mirror=os.environ.get("THANOSQL_DATASET_MIRROR") or None,
            model_mirror=os.environ.get("THANOSQL_MODEL_MIRROR") or None,
            catalog_url=os.environ.get("THANOSQL_CATALOG_URL") or None,
            warehouse_url=os.environ.get("THANOSQL_WAREHOUSE_URL") or None,
            warehouse_reader_url=os.environ.get("THANOSQL_WAREHOUSE_READER_URL") or None,
            mlflow_tracking_uri=mlflow_tracking_uri,
            mlflow_ui_url=os.environ.get("THANOSQL_MLFLOW_UI_URL") or _served_ui(mlflow_tracking_uri),
            qdrant_url=os.environ.get("THANOSQL_QDRANT_URL") or None,
            qdrant_api_key=os.environ.get("THANOSQL_QDRANT_API_KEY") or None,
            confine_paths=os.environ.get("THANOSQL_CONFINE_PATHS", "").lower() in ("1", "true", "yes"),
            server_max_bytes=_count("THANOSQL_SERVER_MAX_BYTES", cls.server_max_bytes),
            server_max_images=_count("THANOSQL_SERVER_MAX_IMAGES", cls.server_max_images),
        )

    def ensure_dirs(self) -> None:
        for directory in (self.home, self.home / "mlflow" / "artifacts", self.home / "vectors", self.dagster_home):
            try:
                directory.mkdir(parents=True, exist_ok=True)
            except (FileExistsError, NotADirectoryError):
                raise ThanoSQLError(
                    f"The workspace {self.home} cannot be used: {directory} is a file, not a directory.",
                    hint="Choose another workspace directory (--home, home=, or $THANOSQL_HOME).",
                ) from None
            except OSError as error:
                raise ThanoSQLError(
                    f"The workspace {self.home} cannot be used: cannot create {directory} ({error.strerror}).",
                    hint="Choose a workspace directory you can write to.",
                ) from None
        dagster_yaml = self.dagster_home / "dagster.yaml"
        if not dagster_yaml.exists():
            dagster_yaml.write_text(_DAGSTER_YAML)
        relocate(self.home)  # a copied or moved workspace: its stores' paths point here first

    def dagster_instance(self) -> dg.DagsterInstance:
        self.ensure_dirs()
        return dg.DagsterInstance.from_config(str(self.dagster_home))


def _count(variable: str, default: int) -> int:
    """A whole number >= 0 from the environment, or `default` when unset."""
    text = os.environ.get(variable, "").strip()
    if not text:
        return default
    try:
        value = int(text.replace("_", ""))
    except ValueError:
        value = -1
    if value < 0:
        raise ThanoSQLError(f"{variable}={text!r} is not a whole number >= 0.", hint=f"Set {variable} to a count, or unset it for {default:,}.")
    return value


def _served_ui(tracking_uri: str | None) -> str | None:
    """An MLflow tracking server over HTTP serves its UI at the same address."""
    return tracking_uri if tracking_uri and tracking_uri.startswith(("http://", "https://")) else None


def _url_user(url: str) -> str:
    from sqlalchemy.engine import make_url

    return make_url(url).username or "thanosql_reader"


def build_resources(settings: Settings) -> dict[str, dg.ConfigurableResource]:
    """One resource per external system, the embedded one unless the settings name a server."""
    home = settings.home
    if settings.mlflow_tracking_uri:
        # The server decides where artifacts go (its --artifacts-destination).
        model_registry = ModelRegistryResource(tracking_uri=settings.mlflow_tracking_uri, ui_url=settings.mlflow_ui_url)
    else:
        model_registry = ModelRegistryResource(
            tracking_uri=f"sqlite:///{home / 'mlflow' / 'mlflow.db'}",
            artifact_location=(home / "mlflow" / "artifacts").as_uri(),
            ui_url=settings.mlflow_ui_url,
            model_files_index=str(home / "mlflow" / "model-files"),
        )
    vector_store: VectorStoreResource
    if settings.qdrant_url:
        from resources.qdrant_server import QdrantServerResource

        vector_store = QdrantServerResource(url=settings.qdrant_url, api_key=settings.qdrant_api_key)
    else:
        from resources.qdrant_edge import QdrantEdgeResource

        vector_store = QdrantEdgeResource(path=str(home / "vectors"))
    warehouse: WarehouseResource
    if settings.warehouse_url:
        from resources.postgres_warehouse import PostgresWarehouseResource

        reader = settings.warehouse_reader_url
        warehouse = PostgresWarehouseResource(
            url=settings.warehouse_url,
            reader_url=reader,
            **({"reader_role": _url_user(reader)} if reader else {}),
        )
    else:
        from resources.duckdb_warehouse import DuckDBWarehouseResource

        warehouse = DuckDBWarehouseResource(path=str(home / "warehouse.duckdb"))
    return {
        "workspace": WorkspaceResource(home=str(home), confine=settings.confine_paths),
        "catalog": CatalogResource(url=settings.catalog_url or f"sqlite:///{home / 'catalog.db'}"),
        "warehouse": warehouse,
        "model_registry": model_registry,
        "vector_store": vector_store,
        "dataset_source": DatasetSourceResource(
            cache_dir=str(home / ".cache" / "downloads"), mirror=settings.dataset_mirror
        ),
        "model_source": ModelSourceResource(cache_dir=str(home / ".cache" / "huggingface"), mirror=settings.model_mirror),
    }
