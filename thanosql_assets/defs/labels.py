"""Labels of a classifier: which values a label column may hold, and the classes they make.

Shared by the planner (on the distinct labels, before anything runs, with the error's position)
and the assets (on the rows they train or evaluate on: the data may have changed since).
Labels are integers, text or booleans; the classes are the distinct labels in sorted order, as
Python values, so PREDICT gives back labels of the label column's own type.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from pandas.api import types

from thanosql.errors import DataError


def _python(value: Any) -> Any:
    return value.item() if isinstance(value, np.generic) else value


def _shown(values: Sequence[Any], limit: int = 5) -> str:
    shown = ", ".join(repr(value) for value in values[:limit])
    return shown + (f" and {len(values) - limit} more" if len(values) > limit else "")


def check_labels(values: pd.Series, label_col: str, rows: str) -> list[Any]:
    """The sorted distinct labels of `values` (column `label_col` of `rows`); a DataError for NULLs,
    non-integral numbers or mixed types."""
    nested = next((value for value in values if isinstance(value, (list, tuple, dict, np.ndarray))), None)
    if nested is not None:
        raise DataError(
            f"Column {label_col!r} holds {type(nested).__name__ if not isinstance(nested, np.ndarray) else 'array'} values in {rows}; "
            "labels are integers, text or booleans.",
            hint="Name the column of labels with OPTIONS (label_col='...').",
        )
    if values.isna().any():  # the planner checks the distinct labels: how many rows is not known here
        raise DataError(
            f"Column {label_col!r} has NULL labels (rows without a label) in {rows}.",
            hint=f"Leave unlabelled rows out: ... WHERE {label_col} IS NOT NULL.",
        )
    if types.is_float_dtype(values) or types.is_complex_dtype(values):
        raise DataError(
            f"Column {label_col!r} holds numbers with decimals ({_shown(values.unique().tolist())}); labels are classes, not measurements.",
            hint=f"Use integer or text labels, e.g. CAST({label_col} AS INTEGER) AS {label_col} in the query.",
        )
    distinct = [_python(value) for value in values.unique()]
    kinds = {bool if isinstance(v, bool) else int if isinstance(v, int) else str if isinstance(v, str) else type(v) for v in distinct}
    if not kinds <= {bool, int, str} or len(kinds) > 1:
        raise DataError(
            f"Column {label_col!r} holds labels of types {', '.join(sorted(k.__name__ for k in kinds))}; labels are integers, text or booleans of one type.",
            hint=f"Cast the labels to one type, e.g. CAST({label_col} AS TEXT).",
        )
    return sorted(distinct)


def check_classes(classes: list[Any], label_col: str, rows: str) -> None:
    """A classifier learns at least two classes."""
    if len(classes) < 2:
        raise DataError(
            f"Column {label_col!r} has {'one label' if classes else 'no label'}{f' ({classes[0]!r})' if classes else ''} "
            f"in {rows}: a classifier needs at least two classes to tell apart.",
            hint="Train on rows of two or more labels (check the query's WHERE), or name another label_col.",
        )


def check_known_labels(labels: list[Any], classes: list[Any], model: str, label_col: str) -> None:
    """Every label is one of a model's classes (FIT, EVALUATE)."""
    unknown = [label for label in labels if label not in set(classes)]
    if unknown:
        raise DataError(
            f"Column {label_col!r} has labels that model {model!r} does not know: {_shown(unknown)} "
            f"(its classes: {_shown(classes, 12)}).",
            hint="Use rows whose labels are the model's classes (same values and type), or BUILD a new model for the new labels.",
        )


def class_indices(values: pd.Series, classes: list[Any]) -> np.ndarray:
    """int64 index into `classes` of each value (all checked to be classes)."""
    position = {label: index for index, label in enumerate(classes)}
    return np.array([position[_python(value)] for value in values], dtype=np.int64)
