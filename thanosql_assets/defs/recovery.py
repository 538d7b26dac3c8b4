"""Setting a workspace right after a process died in the middle of a statement.

Statements build everything new beside what serves (a table in a transaction, a collection under
a new name, a model version that the `serving` alias reaches last), so a killed statement never
leaves a half-switched state. It does leave its unfinished work: a Dagster run in STARTED, an
MLflow run in RUNNING, staging files and collections no table points at. Each materialization
writes a journal entry (`in-flight/<host>--<pid>--<run id>`) and removes it when it ends; the
next process that opens the workspace finds the entries of dead processes and finishes them.
"""

from __future__ import annotations

import json
import logging
import os
import socket
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg

log = logging.getLogger("thanosql.progress")
JOURNAL = "in-flight"
_SEPARATOR = "--"


@dataclass(frozen=True)
class JournalEntry:
    path: Path
    host: str
    pid: int
    run_id: str

    @classmethod
    def parse(cls, path: Path) -> JournalEntry | None:
        parts = path.name.split(_SEPARATOR)
        if len(parts) != 3 or not parts[1].isdigit():
            return None
        return cls(path, parts[0], int(parts[1]), parts[2])

    @property
    def alive(self) -> bool:
        """Whether its process still runs (entries of other hosts count as alive: we cannot tell)."""
        if self.host != socket.gethostname():
            return True
        try:
            os.kill(self.pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True


@contextmanager
def in_flight(home: Path, run_id: str) -> Iterator[None]:
    """A journal entry for the Dagster run `run_id` of this process while the block runs."""
    directory = home / JOURNAL
    directory.mkdir(parents=True, exist_ok=True)
    entry = directory / _SEPARATOR.join((socket.gethostname(), str(os.getpid()), run_id))
    entry.write_text(json.dumps({"started": time.time()}))
    try:
        yield
    finally:
        entry.unlink(missing_ok=True)


def recover(home: Path, resources: dict[str, Any], instance: Callable[[], dg.DagsterInstance]) -> list[str]:
    """Finish what dead processes left in the workspace at `home`; what was done, one line each."""
    directory = home / JOURNAL
    entries = [entry for path in sorted(directory.iterdir()) if (entry := JournalEntry.parse(path))] if directory.is_dir() else []
    dead = [entry for entry in entries if not entry.alive]
    if not dead:
        return []
    done = []
    for entry in dead:
        run = instance().get_run_by_id(entry.run_id)
        if run is not None and not run.is_finished:
            instance().report_run_failed(run, message=f"Its process ({entry.pid}) ended before the run finished; nothing it built was switched in.")
            done.append(f"Dagster run {entry.run_id} marked failed")
        for mlflow_run in resources["model_registry"].end_abandoned_runs(entry.run_id):
            done.append(f"MLflow run {mlflow_run} marked killed")
        entry.path.unlink(missing_ok=True)
    if len(dead) == len(entries):  # no statement is running: what no table or catalog entry uses is leftover
        vector_store = resources["vector_store"]
        done += [f"staging files {name} removed" for name in vector_store.discard_unfinished()]
        used = _collections_in_use(resources)
        for name in vector_store.collections():
            if name not in used:
                vector_store.drop_collection(name)
                done.append(f"collection {name} removed (no table used it)")
    for line in done:
        log.info("recovered from an interrupted statement: %s", line)
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
