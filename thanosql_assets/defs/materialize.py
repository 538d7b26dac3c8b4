"""Materializing what a statement asks for, in process, on the workspace's Dagster instance.

The SQL frontend plans a statement into a `MaterializationRequest`: the objects it defines or
changes (specs) and the assets to materialize. Embedded mode materializes it in the caller's
process; production mode hands it, serialized, to a run of the `statement` job, which
materializes it where the run launcher placed the run. Either way the work is the same: the
definitions of every object in the catalog plus the request's, and one in-process run of the
selected assets, tagged with the statement.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from thanosql_assets.defs.embeddings import EmbeddingStores, embedding_op_name, embedding_rows, requested_rebuild
from thanosql_assets.defs.generations import GENERATION_TAG, PendingGeneration, begin_generation
from thanosql_assets.defs.journal import in_flight
from thanosql_assets.defs.objects import build_definitions, catalog_specs
from thanosql_assets.defs.partition_job import PARTITION_RUN_KIND
from thanosql_assets.defs.progress import Progress
from thanosql_assets.defs.specs import EmbeddingSpec, Spec, spec_from_dict
from thanosql_assets.defs.training_runs import STATEMENT_TAG

# In-process runs log to the Dagster event log (the UI); the console gets our progress lines only.
_QUIET = {"loggers": {"console": {"config": {"log_level": "CRITICAL"}}}}
_TAG_LIMIT = 2000


@dataclass(frozen=True)
class MaterializationRequest:
    """Define `specs` (objects new or changed) and materialize the assets in `selection`."""

    specs: tuple[Spec, ...]
    selection: tuple[dg.AssetKey, ...]
    run_config: Mapping[str, Any] = field(default_factory=dict)

    def to_json(self) -> str:
        return json.dumps(
            {
                "specs": [{"kind": spec.kind, "spec": spec.to_dict()} for spec in self.specs],
                "selection": [list(key.path) for key in self.selection],
                "run_config": self.run_config,
            }
        )

    @classmethod
    def from_json(cls, text: str) -> MaterializationRequest:
        data = json.loads(text)
        return cls(
            specs=tuple(spec_from_dict(item["kind"], item["spec"]) for item in data["specs"]),
            selection=tuple(dg.AssetKey(path) for path in data["selection"]),
            run_config=data["run_config"],
        )


def materialize(
    request: MaterializationRequest,
    resources: dict[str, Any],
    instance: dg.DagsterInstance,
    statement: str,
    tags: Mapping[str, str] | None = None,
    run_id: str | None = None,
) -> str:
    """Run the request's selection in process as run `run_id` (a new id by default), tagged with
    the statement and `tags`: the run's id. Raises what the run raised (nothing it created stays listed)."""
    specs = defined_specs(request, resources["catalog"])
    definitions = build_definitions(specs, resources)
    new_keys = [key for key in request.selection if instance.get_latest_materialization_event(key) is None]
    partitioned, rest = split_partitioned(request, specs)
    run_config = {**_QUIET, **{name: value for name, value in request.run_config.items() if name != "ops"}}
    ops = {name: value for name, value in request.run_config.get("ops", {}).items() if name not in {embedding_op_name(spec) for spec in partitioned}}
    run_id = run_id or str(uuid.uuid4())
    tags = {**(tags or {}), STATEMENT_TAG: statement[:_TAG_LIMIT]}
    try:
        if rest:
            _execute(definitions, set(rest), instance, {**run_config, **({"ops": ops} if ops else {})}, tags, resources, run_id)
        for spec in partitioned:
            generation = begin_partitioned(spec, resources, rebuild=requested_rebuild(request.run_config, spec))
            failures = {}
            for partition in generation.unfinished(resources["workspace"].root, spec):
                # As in a backfill, a failed partition stops neither the others nor their runs' work.
                try:
                    run_partition(definitions, spec, partition, generation, instance, tags, resources)
                except Exception as error:  # noqa: BLE001 - raised below, after the other partitions ran
                    failures[partition] = error
            if failures:
                Progress()(
                    f"partition{'s' if len(failures) > 1 else ''} {', '.join(failures)} of generation {generation.collection} failed; "
                    "the other partitions' vectors are kept: "
                    + RETRY_FAILED_PARTITIONS
                )
                raise next(iter(failures.values()))
            switch_tags = {**tags, GENERATION_TAG: generation.collection}
            _execute(definitions, set(spec.switch_keys), instance, run_config, switch_tags, resources, run_id if not rest else str(uuid.uuid4()))
    except BaseException:
        # The failed run stays in the run history; the objects it meant to create do not exist,
        # so the asset catalog should not list them.
        if new_keys:
            instance.wipe_assets(new_keys)
        raise
    return run_id


def defined_specs(request: MaterializationRequest, catalog) -> list[Spec]:
    """The spec of every object in the catalog, with the request's new or changed ones in their place."""
    specs = {(spec.kind, spec.catalog_name): spec for spec in catalog_specs(catalog)}
    specs.update({(spec.kind, spec.catalog_name): spec for spec in request.specs})
    return list(specs.values())


def split_partitioned(request: MaterializationRequest, specs: list[Spec]) -> tuple[list[EmbeddingSpec], tuple[dg.AssetKey, ...]]:
    """The partitioned embeddings the request refreshes (each: begin, partition runs, switch), and
    the rest of its selection (materialized first, as one run)."""
    partitioned = [spec for spec in specs if isinstance(spec, EmbeddingSpec) and spec.partitioned and spec.asset_key in request.selection]
    theirs = {key for spec in partitioned for key in (spec.asset_key, *spec.switch_keys)}
    return partitioned, tuple(key for key in request.selection if key not in theirs)


RETRY_FAILED_PARTITIONS = "run the statement again to embed the failed ones only (or re-execute their runs in the Dagster UI, then run it)"


def begin_partitioned(spec: EmbeddingSpec, resources: dict[str, Any], *, rebuild: bool) -> PendingGeneration:
    """Plan `spec`'s next generation over its rows now (see `defs.generations`)."""
    stores = EmbeddingStores.of(resources)
    rows = embedding_rows(spec, resources["workspace"], resources["warehouse"])
    return begin_generation(spec, rows[spec.image_col], stores, Progress(), rebuild=rebuild)


def run_partition(
    definitions: dg.Definitions,
    spec: EmbeddingSpec,
    partition: str,
    generation: PendingGeneration,
    instance: dg.DagsterInstance,
    tags: Mapping[str, str],
    resources: dict[str, Any],
) -> None:
    """One partition of `generation` as a run of its own, in this process (as a run worker would)."""
    partition_tags = {**tags, GENERATION_TAG: generation.collection, "thanosql/kind": PARTITION_RUN_KIND}
    _execute(definitions, {spec.asset_key}, instance, _QUIET, partition_tags, resources, str(uuid.uuid4()), partition_key=partition)


def _execute(
    definitions: dg.Definitions,
    selection: set[dg.AssetKey],
    instance: dg.DagsterInstance,
    run_config: Mapping[str, Any],
    tags: Mapping[str, str],
    resources: dict[str, Any],
    run_id: str,
    partition_key: str | None = None,
) -> None:
    with in_flight(resources["workspace"].root, run_id):
        # A statement materializes its assets only: checks (EVALUATE's) run when asked for.
        job = definitions.resolve_implicit_global_asset_job_def().get_subset(asset_selection=selection, asset_check_selection=set())
        job.execute_in_process(instance=instance, run_config=dict(run_config), tags=dict(tags), run_id=run_id, partition_key=partition_key)
