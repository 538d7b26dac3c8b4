"""Where production mode runs a statement that creates or changes objects.

A light statement runs in the SQL server as an in-process Dagster run on the instance (its run,
logs and materializations are recorded and shown in the UI like any other run) and answers in
about the time it takes embedded: launching a run costs seconds of worker start and code
loading before any work. A heavy one is submitted as a `statement` run that the daemon's run
launcher places (a subprocess, a Kubernetes job), so its work scales out with the launcher and
leaves the server free.

Heavy: training (BUILD, FIT), partitioned embeddings (OPTIONS (partitions=N): one run per partition), downloads (GET THANOSQL DATASET / MODEL), loading a model from
files (UPLOAD MODEL); files to copy beyond `max_bytes`; and a model's work on more than
`max_images` images (CONVERT, PREDICT, CREATE TABLE ... USING, a COPY that refreshes
embeddings), counted before it runs (an upper bound: images already embedded are skipped then).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resources import WarehouseResource, WorkspaceResource
from thanosql_assets.defs.materialize import MaterializationRequest
from thanosql_assets.defs.specs import (
    QUERY_DIALECT,
    DatasetSpec,
    EmbeddingSpec,
    ModelSpec,
    PredictionSpec,
    TableSpec,
    UploadedModelSpec,
)
from thanosql_assets.defs.table_refresh import reading_embeddings


@dataclass(frozen=True)
class Limits:
    """The most work a statement may do in the server (0 and 0: every statement is launched);
    the server's come from its Settings (THANOSQL_SERVER_MAX_BYTES, THANOSQL_SERVER_MAX_IMAGES)."""

    max_bytes: int  # of files a COPY reads
    max_images: int  # a model runs on


@dataclass(frozen=True)
class Placement:
    in_server: bool
    reason: str  # why, for the server's log and the run's tags

    @property
    def tag(self) -> str:
        return "server" if self.in_server else "launcher"


def place(request: MaterializationRequest, resources: dict[str, Any], limits: Limits) -> Placement:
    """Where `request` runs: in the server when every object it makes is light work."""
    workspace, warehouse = resources["workspace"], resources["warehouse"]
    for spec in request.specs:
        heavy = _heavy(spec, request, resources["catalog"], workspace, warehouse, limits)
        if heavy:
            return Placement(False, heavy)
    return Placement(True, "light work")


def launcher_tags(request: MaterializationRequest) -> dict[str, str]:
    """Run tags that size a launched run for its work: a BUILD on several GPUs asks for them (`ModelSpec.run_tags`)."""
    tags: dict[str, str] = {}
    for spec in request.specs:
        if isinstance(spec, ModelSpec):
            tags.update(spec.run_tags)
    return tags


def _heavy(spec, request, catalog, workspace: WorkspaceResource, warehouse: WarehouseResource, limits: Limits) -> str | None:
    """Why making `spec` is heavy work, or None when it is light."""
    if isinstance(spec, ModelSpec):
        return "trains a model"
    if isinstance(spec, (DatasetSpec, UploadedModelSpec)):
        return "downloads or loads files"
    if isinstance(spec, TableSpec):
        paths = [workspace.resolve(source) for source in spec.sources]
        size = sum(path.stat().st_size for path in paths if path.is_file())
        if size > limits.max_bytes:
            return f"copies {size:,} bytes (more than {limits.max_bytes:,})"
        # Embeddings of this table, and of tables that read it, are brought up to date in its run.
        if reading_embeddings(catalog, spec.name):
            rows = _csv_rows(paths)
            if rows is None or rows > limits.max_images:
                return f"refreshes embeddings of {'an unknown number of' if rows is None else f'{rows:,}'} rows"
        return None
    if isinstance(spec, EmbeddingSpec) and spec.partitioned and spec.asset_key in request.selection:
        return f"embeds its images in {spec.partitions} partition runs"
    if isinstance(spec, (EmbeddingSpec, PredictionSpec)):
        if spec.folder:
            images = len(workspace.files_under(spec.folder, spec.file_types))
        else:
            images = int(warehouse.query_from(f"SELECT count(*) AS images FROM ({spec.query}) AS counted", QUERY_DIALECT)["images"].iloc[0])
        return f"runs a model on {images:,} images (more than {limits.max_images:,})" if images > limits.max_images else None
    return None


def _csv_rows(paths: list[Path]) -> int | None:
    """The rows of CSV files, counted by line ends (an upper bound); None unless every file is a CSV."""
    if not paths or any(path.suffix.lower() != ".csv" for path in paths):
        return None
    rows = 0
    for path in paths:
        with open(path, "rb") as file:
            rows += sum(block.count(b"\n") for block in iter(lambda: file.read(2**20), b""))
    return rows
