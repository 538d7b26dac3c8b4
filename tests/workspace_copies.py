"""Copies of test workspaces that a test may change without touching the original."""

from __future__ import annotations

import shutil
from pathlib import Path


def copy_workspace(source: Path, target: Path) -> Path:
    """A copy of workspace `source` at `target`. This process's idle handle on its table store is
    closed first: closing it checkpoints the write-ahead log, and a copy taken while that
    happened (the handle closes by itself after an idle second) found a WAL file that vanished."""
    from resources.duckdb_warehouse import release

    release(Path(source) / "warehouse.duckdb")
    shutil.copytree(source, target)
    return target
