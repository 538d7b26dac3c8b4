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

from thanosql_assets.defs.objects import build_definitions, catalog_specs
from thanosql_assets.defs.recovery import in_flight
from thanosql_assets.defs.specs import Spec, spec_from_dict
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
    specs = {(spec.kind, spec.catalog_name): spec for spec in catalog_specs(resources["catalog"])}
    specs.update({(spec.kind, spec.catalog_name): spec for spec in request.specs})
    definitions = build_definitions(specs.values(), resources)
    new_keys = [key for key in request.selection if instance.get_latest_materialization_event(key) is None]
    run_id = run_id or str(uuid.uuid4())
    try:
        with in_flight(resources["workspace"].root, run_id):
            # A statement materializes its assets only: checks (EVALUATE's) run when asked for.
            job = definitions.resolve_implicit_global_asset_job_def().get_subset(
                asset_selection=set(request.selection), asset_check_selection=set()
            )
            job.execute_in_process(
                instance=instance,
                run_config={**_QUIET, **request.run_config},
                tags={**(tags or {}), STATEMENT_TAG: statement[:_TAG_LIMIT]},
                run_id=run_id,
            )
    except BaseException:
        # The failed run stays in the run history; the objects it meant to create do not exist,
        # so the asset catalog should not list them.
        if new_keys:
            instance.wipe_assets(new_keys)
        raise
    return run_id
