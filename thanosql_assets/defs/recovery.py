"""Setting a workspace right after a process died in the middle of a statement.

Statements build everything new beside what serves (a table in a transaction, a collection under
a new name, a model version that the `serving` alias reaches last), so a killed statement never
leaves a half-switched state. It does leave its unfinished work: a Dagster run in STARTED, an
MLflow run in RUNNING, staging files, collections no table points at, and, when it died between
switching a table and recording the switch in the catalog, a collection that serves but that the
catalog does not name. The next process that opens the workspace finishes the journal entries
(`defs.journal`) of dead processes: it marks their runs failed and killed, records in the
catalog the collections tables were switched to (as the statement would have: the one they
replace is retired), and drops the collections they built that no table or catalog entry uses.
It touches nothing of a live process, and nothing no entry names.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path
from typing import Any

import dagster as dg

from resources import Generation
from resources.warehouse import quote
from thanosql_assets.defs.embeddings import EmbeddingStores, RefreshedEmbedding, publish
from thanosql_assets.defs.journal import JOURNAL, JournalEntry
from thanosql_assets.defs.specs import spec_from_dict

log = logging.getLogger("thanosql.progress")


def recover(home: Path, resources: dict[str, Any], instance: Callable[[], dg.DagsterInstance]) -> list[str]:
    """Finish what dead processes left in the workspace at `home`; what was done, one line each.
    Never raises: an entry it cannot finish now (a store is down) is kept for the next start."""
    directory = home / JOURNAL
    entries = [entry for path in sorted(directory.iterdir()) if (entry := JournalEntry.parse(path))] if directory.is_dir() else []
    done = []
    for entry in (entry for entry in entries if not entry.process.alive):
        try:
            done += _finish(entry, resources, instance)
            entry.path.unlink(missing_ok=True)
        except Exception as error:  # noqa: BLE001 - recovery must not stop the workspace from opening
            log.info("could not yet clean up after interrupted run %s (%s); trying again at the next start", entry.run_id, error)
    try:
        done += [f"staging files {name} removed" for name in resources["vector_store"].discard_unfinished()]
    except Exception as error:  # noqa: BLE001
        log.info("could not yet remove unfinished collection files (%s)", error)
    for line in done:
        log.info("recovered from an interrupted statement: %s", line)
    return done


def _finish(entry: JournalEntry, resources: dict[str, Any], instance: Callable[[], dg.DagsterInstance]) -> list[str]:
    done = []
    run = instance().get_run_by_id(entry.run_id)
    if run is not None and not run.is_finished:
        instance().report_run_failed(run, message=f"Its process ({entry.process.pid}) ended before the run finished.")
        done.append(f"Dagster run {entry.run_id} marked failed")
    for mlflow_run in resources["model_registry"].end_abandoned_runs(entry.run_id):
        done.append(f"MLflow run {mlflow_run} marked killed")
    content = entry.read()
    built = content.get("collections", [])
    if built:
        switched = _switched_to(resources)
        for name, embedding in content.get("embeddings", {}).items():
            if name in switched:
                done += _record_switch(switched[name], embedding, resources)
        used = _collections_in_use(resources)
        for name in built:
            if name not in used and resources["vector_store"].exists(name):
                resources["vector_store"].drop_collection(name)
                done.append(f"collection {name} removed (no table used it)")
    return done


def _switched_to(resources: dict[str, Any]) -> dict[str, Generation]:
    """The generation of each collection a table serves that the catalog does not name as its embedding's."""
    named = {entry.state.get("collection") for entry in resources["catalog"].list("embedding")}
    return {
        generation.collection: generation
        for columns in resources["warehouse"].table_generations(fresh=True).values()
        for generation in columns.values()
        if generation.collection not in named
    }


def _record_switch(generation: Generation, embedding: dict[str, Any], resources: dict[str, Any]) -> list[str]:
    """Publish what the dead process switched the table to and did not publish."""
    spec = spec_from_dict("embedding", embedding["spec"])
    if (spec.table, spec.column) != (generation.table, generation.column):
        return []
    stores = EmbeddingStores.of(resources)
    # Read again just before recording: a live process may have switched the table since.
    serving = resources["warehouse"].table_generations(fresh=True).get(spec.table, {}).get(spec.column)
    if serving is None or serving.collection != generation.collection:
        return []
    rows = int(resources["warehouse"].query(f"SELECT count(*) AS n FROM {quote(spec.table)}")["n"].iloc[0])
    refreshed = RefreshedEmbedding(
        spec=spec,
        collection=generation.collection,
        previous=stores.catalog.get(spec.kind, spec.catalog_name),
        model_version=generation.model_version,
        vectors_by_key={},
        dim=int(embedding["dim"]),
        points=stores.vector_store.count(generation.collection),
        embedded=0,
        reused=0,
        embed_seconds=0.0,
        skipped=[],
        rows=rows,
        model_run=generation.model_run,
    )
    publish(refreshed, rows, stores)
    return [f"collection {generation.collection} recorded as {spec.table}.{spec.column}'s (the table was switched to it)"]


def _collections_in_use(resources: dict[str, Any]) -> set[str]:
    used = {
        generation.collection
        for columns in resources["warehouse"].table_generations(fresh=True).values()
        for generation in columns.values()
    }
    for entry in resources["catalog"].list("embedding"):
        used.update(name for name in (entry.state.get("collection"), entry.state.get("retired_collection")) if name)
    return used
