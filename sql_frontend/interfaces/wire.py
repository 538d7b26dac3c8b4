"""What the SQL server and its client exchange: results as JSON, errors with their position."""

from __future__ import annotations

import math
from collections.abc import Iterator
from typing import Any

import numpy as np
import pandas as pd

from resources.warehouse import array_columns, typed_array
from sql_frontend.execution.results import PRINT_ATTR
from thanosql import errors


def _value(value: Any) -> Any:
    if isinstance(value, np.ndarray):
        return [_value(v) for v in value.tolist()]
    if isinstance(value, (list, tuple)):
        return [_value(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, pd.Timestamp):
        return value.isoformat()
    return value


def header(rows: pd.DataFrame) -> dict[str, Any]:
    """Everything about a result but its rows."""
    head: dict[str, Any] = {"columns": [str(c) for c in rows.columns], "types": [str(t) for t in rows.dtypes], "row_count": len(rows)}
    arrays = array_columns(rows)
    if arrays:  # JSON lists lose their numpy element type (float32 embeddings, int32, text ...)
        head["array_types"] = {str(column): str(dtype) for column, dtype in arrays.items()}
    if PRINT_ATTR in rows.attrs:
        head["print_image"] = {"column": rows.attrs[PRINT_ATTR]["column"]}
    return head


def row_lists(rows: pd.DataFrame, start: int = 0, stop: int | None = None) -> list[list[Any]]:
    return [[_value(v) for v in row] for row in rows.iloc[start:stop].itertuples(index=False, name=None)]


def encode(rows: pd.DataFrame | None) -> dict[str, Any]:
    if rows is None:
        return {"result": None}
    return {"result": {**header(rows), "rows": row_lists(rows)}}


def ndjson_lines(rows: pd.DataFrame, chunk: int = 1000) -> Iterator[dict[str, Any]]:
    """A result as a header, then its rows in chunks: a client shows the first rows while the rest arrive."""
    yield header(rows)
    for start in range(0, len(rows), chunk):
        yield {"rows": row_lists(rows, start, start + chunk)}


def decode(result: dict[str, Any] | None, rows: list[list[Any]] | None = None) -> pd.DataFrame | None:
    if result is None:
        return None
    frame = pd.DataFrame(rows if rows is not None else result["rows"], columns=result["columns"])
    arrays = result.get("array_types")
    for column, dtype in zip(result["columns"], result["types"]):
        if dtype != "object" and len(frame):
            try:
                frame[column] = frame[column].astype(dtype)
            except (TypeError, ValueError):
                pass
        elif arrays is not None and column in arrays:
            frame[column] = [typed_array(v, arrays[column]) if v is not None else None for v in frame[column]]
        elif arrays is None and len(frame) and isinstance(frame[column].iloc[0], list):
            # A server from before array_types sent only embeddings as lists.
            frame[column] = [np.asarray(v, dtype=np.float32) if v is not None else None for v in frame[column]]
    if "print_image" in result:
        frame.attrs[PRINT_ATTR] = {"column": result["print_image"]["column"]}
    return frame


def encode_error(error: errors.ThanoSQLError) -> dict[str, Any]:
    body = {"type": type(error).__name__, "message": str(error.message), "hint": error.hint}
    if isinstance(error, errors.SQLError):
        body.update(message=error.bare_message, line=error.line, col=error.col, snippet=error.snippet)
    return {"error": body}


def decode_error(body: dict[str, Any]) -> errors.ThanoSQLError:
    error = body["error"]
    kind = getattr(errors, error.get("type", ""), None)
    if not (isinstance(kind, type) and issubclass(kind, errors.ThanoSQLError)):
        kind = errors.ThanoSQLError
    if issubclass(kind, errors.SQLError):
        return kind(error["message"], line=error.get("line"), col=error.get("col"), snippet=error.get("snippet"), hint=error.get("hint"))
    return kind(error["message"], hint=error.get("hint"))
