"""The workspace: one directory that holds a user's datasets, files and embedded stores."""

from __future__ import annotations

import os
from collections.abc import Iterable
from functools import lru_cache
from pathlib import Path

import dagster as dg

from thanosql.errors import PathNotAllowedError

DATASETS_DIRNAME = "thanosql-dataset"


class WorkspaceResource(dg.ConfigurableResource):
    """Resolves the paths users write in statements.

    Relative paths resolve against `home`, as `thanosql-dataset/...` does in the tutorials.
    With `confine` (the SQL server's setting), a path that leads outside `home` — absolute, with
    `..`, or through a symlink — is refused.
    """

    home: str
    confine: bool = False

    @property
    def root(self) -> Path:
        return _resolved(self.home)

    @property
    def datasets_dir(self) -> Path:
        return self.root / DATASETS_DIRNAME

    @property
    def outputs_dir(self) -> Path:
        return self.root / "outputs"

    def resolve(self, path: str | Path) -> Path:
        """Absolute path for a path written in a statement or a table (no filesystem access unless confined)."""
        path = Path(path) if self.confine else Path(path).expanduser()
        resolved = path if path.is_absolute() else self.root / path
        if self.confine and not resolved.resolve().is_relative_to(self.root):
            raise PathNotAllowedError(
                f"Path {str(path)!r} is outside the workspace; this server only reads files under its workspace.",
                hint="Use a path relative to the workspace, e.g. thanosql-dataset/mnist_data/mnist_train.csv, "
                "or put the file in the workspace first.",
            )
        return resolved

    def display_path(self, path: str | Path) -> str:
        """The path as a user wrote it into a table: relative to home when inside it."""
        resolved = self.resolve(path).resolve()
        try:
            return resolved.relative_to(self.root).as_posix()
        except ValueError:
            return resolved.as_posix()

    def files_under(self, folder: str | Path, file_types: Iterable[str]) -> list[Path]:
        """The files under `folder` (recursively) whose suffix is one of `file_types` ('.jpg' or 'jpg'), sorted."""
        suffixes = suffix_set(file_types)
        found = []
        # Folders it may not read are passed over, as `find` would report them, rather than ending the scan.
        for directory, _subdirectories, names in os.walk(self.resolve(folder), onerror=lambda _error: None):
            found.extend(Path(directory) / name for name in names if Path(name).suffix.lower() in suffixes)
        return sorted(path for path in found if _is_file(path))


def _is_file(path: Path) -> bool:
    try:
        return path.is_file()
    except OSError:  # a file it may not look at counts as absent
        return False


def suffix_set(file_types: Iterable[str]) -> set[str]:
    """File types as users write them ('.JPG', 'png') as lower-case suffixes ('.jpg', '.png')."""
    return {kind.lower() if kind.startswith(".") else f".{kind.lower()}" for kind in file_types}


@lru_cache(maxsize=64)
def _resolved(home: str) -> Path:
    # Resolving touches the filesystem; CONVERT resolves one path per row.
    return Path(home).resolve()
