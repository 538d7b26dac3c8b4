"""Setting a workspace right after a process died in the middle of a statement.

Statements build everything new beside what serves (a table in a transaction, a collection under
a new name, a model version that the `serving` alias reaches last), so a killed statement never
leaves a half-switched state. It does leave its unfinished work: a Dagster run in STARTED, an
MLflow run in RUNNING, staging files, collections no table points at. Each run keeps a journal
entry, `in-flight/<run id>@<process>`, listing the collections it built; `materialize()` removes
it when the run ends. The next process that opens the workspace finishes the entries of dead
processes: it marks their runs failed and killed, and drops the collections they built that no
table or catalog entry uses. It touches nothing of a live process, and nothing no entry names.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

from resources.processes import ProcessId

log = logging.getLogger("thanosql.progress")
JOURNAL = "in-flight"


@dataclass(frozen=True)
class JournalEntry:
    path: Path
    run_id: str
    process: ProcessId

    @classmethod
    def of(cls, home: Path, run_id: str, process: ProcessId | None = None) -> JournalEntry:
        process = process or ProcessId.current()
        return cls(home / JOURNAL / f"{run_id}@{process.as_name()}", run_id, process)

    @classmethod
    def parse(cls, path: Path) -> JournalEntry | None:
        run_id, _, name = path.name.partition("@")
        process = ProcessId.from_name(name)
        return cls(path, run_id, process) if run_id and process else None

    def read(self) -> dict[str, Any]:
        try:
            return json.loads(self.path.read_text())
        except (OSError, ValueError):
            return {}

    def write(self, content: dict[str, Any]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(json.dumps(content))


@contextmanager
def in_flight(home: Path, run_id: str) -> Iterator[None]:
    """A journal entry for the Dagster run `run_id` of this process while the block runs."""
    entry = JournalEntry.of(home, run_id)
    entry.write({"started": time.time(), "collections": []})
    try:
        yield
    finally:
        entry.path.unlink(missing_ok=True)


def journal_collection(home: Path, run_id: str, collection: str) -> None:
    """Note in this process's entry for `run_id` that it built `collection` (an entry of its own
    when the run was not started by `materialize`, e.g. from the Dagster UI)."""
    entry = JournalEntry.of(home, run_id)
    content = entry.read() or {"started": time.time(), "collections": []}
    content["collections"] = [*content.get("collections", []), collection]
    entry.write(content)


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
        instance().report_run_failed(run, message=f"Its process ({entry.process.pid}) ended before the run finished; nothing it built was switched in.")
        done.append(f"Dagster run {entry.run_id} marked failed")
    for mlflow_run in resources["model_registry"].end_abandoned_runs(entry.run_id):
        done.append(f"MLflow run {mlflow_run} marked killed")
    built = entry.read().get("collections", [])
    if built:
        used = _collections_in_use(resources)
        for name in built:
            if name not in used and resources["vector_store"].exists(name):
                resources["vector_store"].drop_collection(name)
                done.append(f"collection {name} removed (no table used it)")
    return done


def _collections_in_use(resources: dict[str, Any]) -> set[str]:
    used = {
        generation.collection
        for columns in resources["warehouse"].table_generations(fresh=True).values()
        for generation in columns.values()
    }
    for entry in resources["catalog"].list("embedding"):
        used.update(name for name in (entry.state.get("collection"), entry.state.get("retired_collection")) if name)
    return used
