"""A workspace moved or copied to another directory works there on its own files.

Embedded mode's stores keep absolute paths: MLflow records where each experiment's, run's and
model version's artifacts are, the model-files index notes where each run's files are, and the
catalog records where a dataset was downloaded. `LOCATION` notes the directory the workspace was
last opened at. Opened anywhere else, those paths are rewritten to the new directory first, so
a copy neither writes into its original nor fails once the original is gone.
"""

from __future__ import annotations

import os
import sqlite3
from contextlib import closing
from pathlib import Path
from urllib.parse import urlparse
from urllib.request import url2pathname

LOCATION = ".location"

# Columns of MLflow's SQLite store that hold artifact locations (those this MLflow has are rewritten).
_MLFLOW_COLUMNS = {
    "experiments": ("artifact_location",),
    "runs": ("artifact_uri",),
    "model_versions": ("source", "storage_location"),
    "logged_models": ("artifact_location",),
}
_CATALOG_COLUMNS = {"thanosql_objects": ("spec", "state")}


def relocate(home: Path) -> bool:
    """Rewrite the embedded stores' paths under the directory `home` was last opened at to
    `home`; whether there was anything to rewrite. Idempotent: two processes opening a moved
    workspace at once rewrite the same."""
    marker = home / LOCATION
    here = str(home.resolve())
    try:
        before = marker.read_text().strip()
    except FileNotFoundError:
        before = _home_mlflow_knows(home)  # a workspace from before the note was kept
    if before == here:
        return False
    moved = bool(before)
    if moved:
        # The file URI first (it may escape characters the plain path has), then the plain path.
        prefixes = [(Path(before).as_uri() + "/", Path(here).as_uri() + "/"), (before + "/", here + "/")]
        _rewrite_sqlite(home / "mlflow" / "mlflow.db", _MLFLOW_COLUMNS, prefixes)
        _rewrite_sqlite(home / "catalog.db", _CATALOG_COLUMNS, prefixes)
        index = home / "mlflow" / "model-files"
        for note in index.glob("*.json") if index.is_dir() else []:
            note.write_text(_replaced(note.read_text(), prefixes))
    staged = marker.with_name(f"{LOCATION}.{os.getpid()}")
    staged.write_text(here + "\n")
    staged.replace(marker)
    return moved


def _home_mlflow_knows(home: Path) -> str | None:
    """The directory ThanoSQL's MLflow experiment was made in (its artifacts are `<home>/mlflow/artifacts`)."""
    path = home / "mlflow" / "mlflow.db"
    if not path.is_file():
        return None
    with closing(sqlite3.connect(path, timeout=30)) as db:
        locations = [row[0] for row in db.execute("SELECT artifact_location FROM experiments WHERE artifact_location LIKE 'file://%/mlflow/artifacts'")]
    return str(Path(url2pathname(urlparse(locations[0]).path)).parent.parent) if locations else None


def _replaced(text: str, prefixes: list[tuple[str, str]]) -> str:
    for old, new in prefixes:
        text = text.replace(old, new)
    return text


def _rewrite_sqlite(path: Path, columns: dict[str, tuple[str, ...]], prefixes: list[tuple[str, str]]) -> None:
    if not path.is_file():
        return
    with closing(sqlite3.connect(path, timeout=30)) as db, db:  # one transaction, committed on leaving
        for table, names in columns.items():
            present = {row[1] for row in db.execute(f'PRAGMA table_info("{table}")')}
            for column in (name for name in names if name in present):
                for old, new in prefixes:
                    db.execute(f'UPDATE "{table}" SET "{column}" = replace("{column}", ?, ?) WHERE instr("{column}", ?) > 0', (old, new, old))
