"""Checks on the data a statement names, shared by the planner (before anything runs, with the
error's position in the statement) and the assets (when they run: the data may have changed)."""

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from thanosql.errors import ObjectNotFoundError

_WHAT_COLUMNS_HOLD = {"label_col": "the labels"}


def require_column(column: str, columns: Sequence[str], *, option: str = "image_col", rows: str = "the query's rows", **where: Any) -> None:
    """Raise unless `column` (named by OPTIONS `option`) is one of `columns`; `where` locates the error."""
    if column not in columns:
        raise ObjectNotFoundError(
            f"{option} {column!r} is not a column of {rows} (columns: {', '.join(map(str, columns))}).",
            **where,
            hint=f"Set OPTIONS ({option}='<column with {_WHAT_COLUMNS_HOLD.get(option, 'image paths')}>').",
        )


def image_path_texts(values: Iterable[Any]) -> list[str | None]:
    """A column's image paths as text; None for a row without one (NULL, NaN or empty)."""
    return [None if pd.isna(value) or str(value) == "" else str(value) for value in values]
