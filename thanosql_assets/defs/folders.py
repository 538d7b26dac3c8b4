"""The rows of CREATE TABLE ... USING ... FROM 'folder': one per image file under the folder."""

from __future__ import annotations

import pandas as pd

from resources import WorkspaceResource
from resources.workspace import suffix_set
from thanosql.errors import DataError, ObjectNotFoundError
from thanosql_assets.defs.specs import EmbeddingSpec, PredictionSpec


def folder_rows(workspace: WorkspaceResource, spec: EmbeddingSpec | PredictionSpec) -> pd.DataFrame:
    """One row per image file under the spec's folder (recursively) whose suffix is in its `file_types`."""
    folder = workspace.resolve(spec.folder)
    if not folder.is_dir():
        raise ObjectNotFoundError(f"Folder {spec.folder!r} does not exist (looked at {folder}).", hint="Relative paths start at the workspace directory.")
    files = workspace.files_under(folder, spec.file_types)
    if not files:
        raise DataError(
            f"Folder {spec.folder!r} holds no files of type {', '.join(sorted(suffix_set(spec.file_types)))}.",
            hint="Check the folder path and file_type, e.g. file_type=['.jpg', '.png'].",
        )
    return pd.DataFrame(
        {spec.image_col: [workspace.display_path(path) for path in files], "filename": [path.name for path in files]}
    )
