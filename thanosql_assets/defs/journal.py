"""The journal of statements in flight: what each run built, for `defs.recovery` after a kill.

Each run keeps an entry, `in-flight/<run id>@<process>`, listing the collections it built and,
for an embedding's, what they are (the embedding's spec and vector size), so that the next
process can finish what a dead one left: drop a collection no table uses, or record in the
catalog one that a table was switched to just before the process died. `materialize()` removes
the entry when the run ends.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from resources.processes import ProcessId

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


def journal_collection(home: Path, run_id: str, collection: str, embedding: dict[str, Any] | None = None) -> None:
    """Note in this process's entry for `run_id` that it built `collection` (an entry of its own
    when the run was not started by `materialize`, e.g. from the Dagster UI); `embedding`: what
    the collection holds (`{"spec": ..., "dim": ...}`) when it is an embedding's new generation."""
    entry = JournalEntry.of(home, run_id)
    content = entry.read() or {"started": time.time(), "collections": []}
    content["collections"] = [*content.get("collections", []), collection]
    if embedding is not None:
        content["embeddings"] = {**content.get("embeddings", {}), collection: embedding}
    entry.write(content)
