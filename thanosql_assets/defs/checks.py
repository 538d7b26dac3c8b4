"""Checks on the data a statement names, shared by the planner (before anything runs, with the
error's position in the statement) and the assets (when they run: the data may have changed)."""

from collections.abc import Iterable, Sequence
from typing import Any

import pandas as pd

from thanosql.errors import DataError, ObjectNotFoundError

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


def require_image_paths(values: pd.Series, column: str) -> None:
    """Raise unless `column` (OPTIONS image_col) holds text: numbers or booleans are no file paths."""
    if pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values):
        shown = ", ".join(map(str, values.dropna().unique()[:3]))
        raise DataError(
            f"Column {column!r} holds {'booleans' if pd.api.types.is_bool_dtype(values) else 'numbers'} ({shown}...), not image paths.",
            hint="Name the column of image file paths with OPTIONS (image_col='...').",
        )
