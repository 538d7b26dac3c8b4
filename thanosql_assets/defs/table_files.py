"""COPY's sources as one Arrow table: CSV, Parquet, JSON, JSON Lines, spreadsheet and pickle
files, and folders of files.

Each source is read by the reader of its suffix (CSV as `csv_files` reads it, line by line;
`.parquet` with pyarrow; `.json` as pandas' `to_json(orient="records")` writes a DataFrame;
`.jsonl` / `.ndjson` one object per line; `.xlsx` / `.xls` one sheet, with its first row as
column names; `.pkl` / `.pickle` a pickled pandas DataFrame, unpickled by `RestrictedUnpickler`,
which builds pandas' and numpy's data types and nothing else, since unpickling can otherwise run
any code), or, for a folder, as one row per file under it:
`image_path`, `filename`, and `label` (the subfolder's name) when every file sits in a
subfolder of the folder, the ImageFolder layout of classification datasets.

Column names become lowercase identifiers (`Image Path` -> `image_path`), and what was renamed
is said. Appended sources must give the first source's columns, with values of their types.
Every problem is a DataError naming the source; nothing is read partially.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from contextlib import nullcontext
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc

from thanosql.errors import DataError
from thanosql_assets.defs.csv_files import StreamedCsv, column_identifiers, read_csv_files, stream_csv_file

SPREADSHEET_SUFFIXES = (".xlsx", ".xls")
PICKLE_SUFFIXES = (".pkl", ".pickle")
INLINE_DIR = "thanosql-copied"  # COPY FROM '<json string>': the records, as a file of the workspace
TABLE_SUFFIXES = (".csv", ".parquet", ".json", ".jsonl", ".ndjson", *SPREADSHEET_SUFFIXES, *PICKLE_SUFFIXES)


def read_table_files(files: Sequence[tuple[str, Path]], workspace_path=str, sheets: Sequence[str] = ()) -> tuple[pa.Table, list[str]]:
    """(as written in the statement, path) of each source, in order -> (all their rows, notes of renamed columns).

    `workspace_path(path)` writes a folder's file paths as the table stores them; `sheets[i]`
    names the sheet of spreadsheet source i ("" or missing: its only sheet)."""
    if all(path.suffix.lower() == ".csv" and not path.is_dir() for _, path in files):  # CSV appends say which line does not fit
        table, renamed = normalized_names(read_csv_files(files))
        return table, [f'"{files[0][0]}": column {old!r} is {new!r}' for old, new in renamed]
    tables, notes = [], []
    for index, (source, path) in enumerate(files):
        table = _read_one(source, path, workspace_path, sheets[index] if index < len(sheets) else "")
        table, renamed = normalized_names(table)
        notes += [f'"{source}": column {old!r} is {new!r}' for old, new in renamed]
        tables.append((source, table))
    first_source, first = tables[0]
    return pa.concat_tables([first, *(_conform(source, table, first.schema, first_source) for source, table in tables[1:])]), notes


def streamed_table_file(files: Sequence[tuple[str, Path]]) -> tuple[StreamedCsv, list[str]] | None:
    """A lone CSV source read as a stream of record batches (see `StreamedCsv`), and notes of its
    renamed columns; None for other sources, or when its first block leaves a type open."""
    if len(files) != 1 or files[0][1].is_dir() or files[0][1].suffix.lower() != ".csv":
        return None
    source, path = files[0]
    streamed = stream_csv_file(source, path, lambda header: column_identifiers(header)[0])
    if streamed is None:
        return None
    return streamed, [f'"{source}": column {old!r} is {new!r}' for old, new in column_identifiers(streamed.header)[1]]


def normalized_names(table: pa.Table) -> tuple[pa.Table, list[tuple[str, str]]]:
    """The table with lowercase identifier column names (letters, digits, _; not starting with a
    digit; made unique with _2, _3...), and (old, new) for each name that changed."""
    names, renamed = column_identifiers(table.column_names)
    return table.rename_columns(names), renamed


def _read_one(source: str, path: Path, workspace_path, sheet: str) -> pa.Table:
    if path.is_dir():
        return _read_folder(source, path, workspace_path)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return read_csv_files([(source, path)])
    if path.stat().st_size == 0:
        raise DataError(f'COPY: "{source}" is empty.', hint="COPY a file that holds rows.")
    if suffix in SPREADSHEET_SUFFIXES:
        return _read_spreadsheet(source, path, sheet)
    if suffix in PICKLE_SUFFIXES:
        return _read_pickle(source, path)
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            return pq.read_table(path)
        if suffix in (".json", ".jsonl", ".ndjson"):
            return _read_json(path, lines=suffix != ".json")
    except (OSError, ValueError, pa.ArrowException) as error:
        what = {".parquet": "a Parquet file", ".json": "JSON records"}.get(suffix, "JSON Lines")
        reason = str(error).strip().splitlines()[0][:300] if str(error).strip() else type(error).__name__
        raise DataError(f'COPY: "{source}" is not {what} ({reason}).', hint=_FORMAT_HINTS[suffix]) from None
    raise DataError(
        f'COPY: "{source}" is a {suffix or "suffix-less"} file; COPY reads {", ".join(TABLE_SUFFIXES)} files and folders.',
        hint="Save the table in one of those formats.",
    )


_FORMAT_HINTS = {
    ".parquet": "Write it with DataFrame.to_parquet(path) or pyarrow.parquet.write_table.",
    ".json": 'Write it with DataFrame.to_json(path, orient="records"): a list of objects, one per row.',
    ".jsonl": 'Write one JSON object per line, e.g. DataFrame.to_json(path, orient="records", lines=True).',
    ".ndjson": 'Write one JSON object per line, e.g. DataFrame.to_json(path, orient="records", lines=True).',
}


def _read_json(path: Path | io.StringIO, lines: bool) -> pa.Table:
    import pandas as pd

    if not lines:  # pandas reads an object ({...}) too, and says "you must pass an index"
        with (nullcontext(path) if isinstance(path, io.StringIO) else path.open(encoding="utf-8-sig")) as text:
            start = text.read(4096).lstrip()[:1]
            text.seek(0)
        if start and start != "[":
            raise ValueError(f"it starts with {start!r}, not with [: a list of records is [{{...}}, {{...}}]")
    frame = pd.read_json(path, orient="records", lines=lines, dtype=False, convert_dates=False)
    if not isinstance(frame, pd.DataFrame) or frame.empty or len(frame.columns) == 0:
        raise ValueError("no rows of named values")
    mixed = _mixed_column(frame)
    if mixed:
        raise ValueError(mixed)
    return pa.Table.from_pandas(frame, preserve_index=False)


def read_json_records(text: str) -> pa.Table:
    """A JSON string of records (`DataFrame.to_json(orient="records")`), as COPY FROM '<json>' reads it;
    ValueError saying what is wrong."""
    return _read_json(io.StringIO(text), lines=False)


# What a pickled DataFrame is made of: pandas' containers, arrays and dtypes, numpy's arrays and
# dtypes, and the few builtins they use (names of several pandas and numpy versions).
_PICKLE_GLOBALS = {
    "builtins": {"bytearray", "slice", "complex", "frozenset", "set", "range"},
    "__builtin__": {"bytearray", "slice", "complex", "frozenset", "set"},
    "_codecs": {"encode"},
    "copyreg": {"_reconstructor"},
    "datetime": {"date", "datetime", "time", "timedelta", "timezone"},
    "decimal": {"Decimal"},
    "numpy": {"dtype", "ndarray"},
    "numpy.core.multiarray": {"_reconstruct", "scalar"},
    "numpy._core.multiarray": {"_reconstruct", "scalar"},
    "numpy.core.numeric": {"_frombuffer"},
    "numpy._core.numeric": {"_frombuffer"},
    "numpy.dtypes": {"Float64DType", "Float32DType", "Int64DType", "Int32DType", "BoolDType", "ObjectDType", "StrDType", "DateTime64DType"},
    "pandas": {
        "DataFrame", "Series", "Index", "RangeIndex", "MultiIndex", "DatetimeIndex", "TimedeltaIndex", "CategoricalIndex", "PeriodIndex",
        "Categorical", "CategoricalDtype", "DatetimeTZDtype", "PeriodDtype", "IntervalDtype", "StringDtype", "BooleanDtype",
        "Int8Dtype", "Int16Dtype", "Int32Dtype", "Int64Dtype", "UInt8Dtype", "UInt16Dtype", "UInt32Dtype", "UInt64Dtype",
        "Float32Dtype", "Float64Dtype", "ArrowDtype", "NA", "NaT", "Timestamp", "Timedelta", "Period",
    },
    "pandas.core.frame": {"DataFrame"},
    "pandas.core.series": {"Series"},
    "pandas.core.internals.managers": {"BlockManager", "SingleBlockManager"},
    "pandas.core.internals.blocks": {"new_block", "Block", "ObjectBlock", "NumpyBlock", "DatetimeTZBlock", "ExtensionBlock"},
    "pandas._libs.internals": {"_unpickle_block"},
    "pandas._libs.arrays": {"__pyx_unpickle_NDArrayBacked"},
    "pandas._libs.tslibs.timestamps": {"_unpickle_timestamp"},
    "pandas._libs.tslibs.timedeltas": {"_timedelta_unpickle"},
    "pandas._libs.tslibs.nattype": {"__nat_unpickle"},
    "pandas._libs.tslibs.offsets": {"Day", "Hour", "Minute", "Second", "Milli", "Micro", "Nano"},
    "pandas._libs.missing": {"NA"},
    "pandas.core.indexes.base": {"_new_Index", "Index"},
    "pandas.core.indexes.range": {"RangeIndex"},
    "pandas.core.indexes.multi": {"MultiIndex"},
    "pandas.core.indexes.datetimes": {"_new_DatetimeIndex", "DatetimeIndex"},
    "pandas.core.arrays.categorical": {"Categorical"},
    "pandas.core.dtypes.dtypes": {"CategoricalDtype", "DatetimeTZDtype", "PeriodDtype", "IntervalDtype"},
    "pandas.arrays": {
        "ArrowStringArray", "ArrowExtensionArray", "BooleanArray", "DatetimeArray", "FloatingArray", "IntegerArray",
        "TimedeltaArray", "StringArray", "PeriodArray",
    },
    # pandas' default strings are Arrow arrays, pickled as their buffers and lengths.
    "pyarrow.lib": {"_restore_array", "py_buffer", "type_for_alias"},
}  # fmt: skip


class RestrictedUnpickler(pickle._Unpickler):
    """Unpickles pandas DataFrames only: any other global (a function that runs a command, opens a
    file, imports a module) is refused before it is looked up, and no object's state may be set on
    a class (which would change pandas for the whole process). The pure-Python unpickler, since
    the C one cannot be told to check that."""

    dispatch = dict(pickle._Unpickler.dispatch)

    def find_class(self, module: str, name: str):
        if name in _PICKLE_GLOBALS.get(module, ()):
            return super().find_class(module, name)
        raise pickle.UnpicklingError(f"it refers to {module}.{name}, which is not part of a pandas DataFrame")

    def load_build(self) -> None:
        if isinstance(self.stack[-2], type):
            raise pickle.UnpicklingError(f"it sets the state of the class {self.stack[-2].__name__}, not of an object")
        super().load_build()

    dispatch[pickle.BUILD[0]] = load_build


def _read_pickle(source: str, path: Path) -> pa.Table:
    import pandas as pd

    try:
        with path.open("rb") as file:
            frame = RestrictedUnpickler(file).load()
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, ImportError, IndexError, KeyError) as error:
        raise DataError(
            f'COPY: "{source}" is not a pickled pandas DataFrame that COPY can read ({_first_line(error)}).',
            hint="COPY reads DataFrame.to_pickle(path) files; other pickles could run code when loaded. Or save it with DataFrame.to_parquet.",
        ) from None
    if not isinstance(frame, pd.DataFrame):
        raise DataError(
            f'COPY: "{source}" holds a pickled {type(frame).__name__}, not a DataFrame.',
            hint="Pickle a pandas DataFrame: DataFrame.to_pickle(path).",
        )
    _check_arrow_buffers(source, frame)
    if frame.empty or len(frame.columns) == 0:
        raise DataError(f'COPY: "{source}" holds a DataFrame without rows.', hint="COPY a DataFrame that holds rows.")
    mixed = _mixed_column(frame)
    if mixed:
        raise DataError(f'COPY: "{source}": {mixed}.', hint="Give each column one type, e.g. frame[column].astype(str).")
    frame = frame.reset_index(drop=isinstance(frame.index, pd.RangeIndex))
    try:
        return pa.Table.from_pandas(frame, preserve_index=False)
    except (pa.ArrowException, ValueError, TypeError) as error:
        raise DataError(f'COPY: "{source}": {_first_line(error)}.', hint="Give each column values of one plain type.") from None


def _check_arrow_buffers(source: str, frame) -> None:
    """Arrow-backed columns were rebuilt from the lengths and offsets the file gives: before any
    value is read, their buffers must hold what those promise (else reading would go past them)."""
    for column in frame.columns:
        arrow = getattr(frame[column].array, "_pa_array", None)
        if arrow is None:
            continue
        try:
            arrow.validate(full=True)
        except (pa.ArrowException, ValueError) as error:
            raise DataError(
                f'COPY: "{source}": column {column!r} is corrupt ({_first_line(error)}).',
                hint="Pickle the DataFrame again with DataFrame.to_pickle(path), or save it with DataFrame.to_parquet.",
            ) from None


def _mixed_column(frame) -> str | None:
    """What is wrong with the first column mixing text (or other values) and numbers, else None:
    one type per column, as a table has."""
    import numpy as np

    for column in frame.columns:
        kinds = {type(value) for value in frame[column].dropna()}
        numbers = {kind for kind in kinds if issubclass(kind, (int, float, np.integer, np.floating)) and not issubclass(kind, bool)}
        if len(kinds - numbers) > 1 or (numbers and kinds - numbers):
            names = ", ".join(sorted(kind.__name__ for kind in kinds))
            return f"column {column!r} mixes values of types {names}"
    return None


def _read_spreadsheet(source: str, path: Path, sheet: str) -> pa.Table:
    """One sheet (its first row: the column names) of an .xlsx or .xls workbook."""
    import pandas as pd

    hint = "Save it again from the spreadsheet program as .xlsx, or export the sheet as CSV."
    try:
        workbook = pd.ExcelFile(path)
    except Exception as error:  # a file of another format, a damaged archive... (openpyxl and xlrd raise their own types)
        raise DataError(f'COPY: "{source}" is not a spreadsheet ({_first_line(error)}).', hint=hint) from None
    with workbook:
        names = [str(name) for name in workbook.sheet_names]
        if sheet and sheet not in names:
            raise DataError(f'COPY: "{source}" has no sheet {sheet!r}; its sheets: {", ".join(names)}.', hint="Name one of them: OPTIONS (sheet='...').")
        if not sheet and len(names) > 1:
            raise DataError(
                f'COPY: "{source}" has {len(names)} sheets ({", ".join(names)}); which one to copy?',
                hint=f"Name it: COPY ... OPTIONS (sheet='{names[0]}') FROM '{source}'.",
            )
        frame = workbook.parse(sheet or names[0])
    if frame.empty or len(frame.columns) == 0:
        raise DataError(f'COPY: sheet {sheet or names[0]!r} of "{source}" holds no rows.', hint="Its first row names the columns; rows follow.")
    frame.columns = [str(column) for column in frame.columns]
    mixed = _mixed_column(frame)
    if mixed:
        raise DataError(f'COPY: sheet {sheet or names[0]!r} of "{source}": {mixed}.', hint="Give every column one type: numbers, or text.")
    return pa.Table.from_pandas(frame, preserve_index=False)


def _first_line(error: Exception) -> str:
    return (str(error).strip().splitlines() or [type(error).__name__])[0][:300]


def _read_folder(source: str, folder: Path, workspace_path) -> pa.Table:
    files = sorted(path for path in folder.rglob("*") if path.is_file() and not path.name.startswith("."))
    if not files:
        raise DataError(f'COPY: folder "{source}" holds no files.', hint="COPY a folder of files (images, one subfolder per class for labels).")
    columns = {"image_path": [workspace_path(path) for path in files], "filename": [path.name for path in files]}
    if all(len(path.relative_to(folder).parts) == 2 for path in files):  # ImageFolder: folder/<label>/<file>
        columns["label"] = [path.parent.name for path in files]
    return pa.table(columns)


def _conform(source: str, table: pa.Table, schema: pa.Schema, first_source: str) -> pa.Table:
    """`table` with `schema`'s columns, matched by name, and types; a DataError when it has other
    columns or values that do not fit."""
    if sorted(table.column_names) != sorted(schema.names):
        raise DataError(
            f'COPY: "{source}" has columns {", ".join(table.column_names)}; the table has {", ".join(schema.names)} (from "{first_source}").',
            hint="Appended sources must have the table's columns (in any order).",
        )
    table = table.select(schema.names)
    # Empty text where the table has another type is NULL, as a first COPY reads an empty CSV field.
    table = pa.table(
        [_empty_as_null(table.column(field.name)) if pa.types.is_string(table.column(field.name).type) and not pa.types.is_string(field.type)
         else table.column(field.name) for field in schema],
        names=schema.names,
    )
    try:
        return table.cast(schema)
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as error:
        raise DataError(
            f'COPY: "{source}" has values that do not fit the types of "{first_source}" ({str(error).splitlines()[0][:200]}).',
            hint="Give every source the same types per column.",
        ) from None


def _empty_as_null(column: pa.ChunkedArray) -> pa.ChunkedArray:
    return pc.if_else(pc.equal(column, ""), pa.scalar(None, column.type), column)
