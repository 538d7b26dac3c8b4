"""DELETE MODEL and DROP TABLE: objects taken out of every store that holds them.

The planner decides what goes (`RemovalRequest`): models, tables, embeddings, and the tables that
stay as plain data because what made them is gone (`SavedTableSpec`). What the user sees switches
in two transactions, first the table store (tables and embedding columns dropped), then the
catalog; the rest follows: the assets' history is wiped from the Dagster instance (the UI lists
them no more once the code location reloads, as it builds assets from the catalog), the models
leave MLflow's registry (their runs stay in the experiment's history), their collections leave
Qdrant. The collections are journaled first, so a process killed midway leaves them to `recover`;
a tidying step that fails is said on the progress log, and the removal stands.

An embedding column goes with its model or its source table: its vectors are the collection's,
and no query image could be embedded to search them.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import dagster as dg

from thanosql_assets.defs.embeddings import discard_generation
from thanosql_assets.defs.journal import JournalEntry, journal_collection
from thanosql_assets.defs.specs import EmbeddingSpec, SavedTableSpec, model_key, spec_from_dict, table_key
from thanosql_assets.defs.table_metadata import report_table_change

progress = logging.getLogger("thanosql.progress")


@dataclass(frozen=True)
class RemovalRequest:
    """What a DELETE MODEL or DROP TABLE statement removes (names, as the catalog and the table store know them)."""

    models: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()  # tables dropped, with everything stored in them
    views: tuple[str, ...] = ()  # views dropped
    embeddings: tuple[str, ...] = ()  # catalog names of the embeddings removed (their column and collections)
    predictions: tuple[str, ...] = ()  # catalog names of prediction tables whose spec goes (the table stays unless dropped)
    saved: tuple[SavedTableSpec, ...] = ()  # tables that stay as plain data, with their new spec


def remove(request: RemovalRequest, resources: dict[str, Any], instance: dg.DagsterInstance, statement: str) -> None:
    """Carry out `request` (planned and checked: every object it names exists); `statement` is
    recorded on the tables that stay but change."""
    catalog, warehouse = resources["catalog"], resources["warehouse"]
    embeddings = {
        name: (spec_from_dict("embedding", entry.spec), entry.state)
        for name in request.embeddings
        if (entry := catalog.get("embedding", name)) is not None
    }
    collections = [
        collection
        for _, state in embeddings.values()
        for collection in (state.get("collection"), state.get("retired_collection"))
        if collection
    ]
    kept_columns: dict[str, list[str]] = {}
    for spec, _ in embeddings.values():
        if spec.table not in request.tables:
            kept_columns.setdefault(spec.table, []).append(spec.column)
    home = resources["workspace"].root
    removal_id = str(uuid.uuid4())
    for collection in collections:  # first: if this process dies from here on, the next start drops them
        journal_collection(home, removal_id, collection)
    try:
        warehouse.drop(tables=request.tables, columns=kept_columns, views=request.views)
        catalog.change(
            deletions=[("model", name) for name in request.models]
            + [("table", name) for name in (*request.tables, *request.views)]
            + [("prediction", name) for name in request.predictions]
            + [("embedding", name) for name in embeddings],
            puts=[(spec.kind, spec.name, spec.to_dict(), _saved_state(warehouse, spec.name)) for spec in request.saved],
        )
    except BaseException:
        JournalEntry.of(home, removal_id).path.unlink(missing_ok=True)  # nothing was removed: the collections serve on
        raise
    # The objects are gone for every reader; what follows tidies the other stores and must not
    # fail the statement. A collection that cannot be dropped now stays journaled for the next start.
    wiped = [model_key(name) for name in request.models] + [table_key(name) for name in (*request.tables, *request.views)]
    wiped += [key for spec, _ in embeddings.values() for key in (spec.asset_key, spec.collection_key)]
    _tidy("wipe the assets' history", lambda: instance.wipe_assets(wiped))
    for table in sorted(set(kept_columns) | {spec.name for spec in request.saved}):
        if table not in request.tables:
            _tidy(f"record table {table}'s new state", lambda table=table: report_table_change(warehouse, instance, table, statement))
    for name in request.models:
        _tidy(f"delete MLflow's registered model {name}", lambda name=name: resources["model_registry"].delete(name))
    dropped = [_tidy(f"drop collection {name}", lambda name=name: resources["vector_store"].drop_collection(name)) for name in collections]
    for spec, _ in embeddings.values():  # a partitioned embedding's unfinished generation
        _tidy(f"remove the staged files of {spec.catalog_name}", lambda spec=spec: discard_generation(home, spec))
    if all(dropped):
        JournalEntry.of(home, removal_id).path.unlink(missing_ok=True)
    progress.info(_removed(request, embeddings))


def _tidy(what: str, step: Callable[[], object]) -> bool:
    """Run one tidying step; whether it was done (a failure is said on the progress log)."""
    try:
        step()
        return True
    except Exception as error:  # noqa: BLE001 - the removal itself is done
        progress.info(f"could not {what} ({type(error).__name__}: {error}); the removal stands")
        return False


def _saved_state(warehouse: Any, table: str) -> dict[str, Any]:
    return {"columns": warehouse.columns(table)}


def _removed(request: RemovalRequest, embeddings: dict[str, tuple[EmbeddingSpec, dict]]) -> str:
    parts = [f"model {name}" for name in request.models] + [f"table {name}" for name in request.tables]
    parts += [f"view {name}" for name in request.views]
    columns = [f"{spec.table}.{spec.column}" for spec, _ in embeddings.values() if spec.table not in request.tables]
    if columns:
        parts.append(f"embedding column{'s' if len(columns) > 1 else ''} {', '.join(columns)}")
    kept = [spec.name for spec in request.saved if spec.name not in request.tables]
    text = f"removed {', '.join(parts)}"
    return text + (f"; table{'s' if len(kept) > 1 else ''} {', '.join(kept)} kept as plain data" if kept else "")
